"""Scene inference: blended sliding windows, confidence and calibration, outputs, scale-out.

(The package is called ``inference`` so that ``glaviz.predict`` stays the function.)
"""

from glaviz.calibration import binary_confidence
from glaviz.inference.calibrate import calibrate
from glaviz.inference.distributed import predict_many
from glaviz.inference.predict_scene import predict
from glaviz.inference.sinks import open_prediction
from glaviz.inference.stats import PredictStats
from glaviz.inference.windows import gaussian_weights, window_starts

__all__ = [
    "PredictStats",
    "binary_confidence",
    "calibrate",
    "gaussian_weights",
    "open_prediction",
    "predict",
    "predict_many",
    "window_starts",
]
