"""Training: the paper's recipe, the five strategies, resumable runs."""

from glaviz.train.augment import AUGMENTATIONS, Augmentation
from glaviz.train.fit import STRATEGIES, WarmRestarts, fit
from glaviz.train.losses import FocalDiceLoss, FocalLoss, deep_supervision_loss
from glaviz.train.sampling import PatchDataset, epoch_batches, location_vector
from glaviz.train.strategies import RegionAdaptation, adapt_region, finetune, fit_regional
from glaviz.train.validation import validate

__all__ = [
    "AUGMENTATIONS",
    "STRATEGIES",
    "Augmentation",
    "FocalDiceLoss",
    "FocalLoss",
    "PatchDataset",
    "RegionAdaptation",
    "WarmRestarts",
    "adapt_region",
    "deep_supervision_loss",
    "epoch_batches",
    "finetune",
    "fit",
    "fit_regional",
    "location_vector",
    "validate",
]
