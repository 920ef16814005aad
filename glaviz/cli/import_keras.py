"""``glaviz import-keras``: the authors' Keras ``.h5`` weights as a glaviz checkpoint."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from glaviz.cli._common import (
    CHECKPOINT_SUFFIXES,
    UsageError,
    add_command,
    check_input,
    check_output,
)

__all__ = ["add_parser", "run"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    """Convert the weights and write the checkpoint."""
    import glaviz

    weights = check_input(args.weights, "weights", (".h5", ".hdf5"))
    target = args.output or weights.with_suffix(".safetensors")
    output = check_output(target, "--output", CHECKPOINT_SUFFIXES, overwrite=args.overwrite)
    config: dict[str, Any] = {}
    if args.config:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config is not JSON ({exc}); e.g. '{{\"dropout\": 0.1}}'") from None
        if not isinstance(config, dict):
            raise UsageError("--config must be a JSON object, e.g. '{\"dropout\": 0.1}'")
    if args.no_deep_supervision:
        config["deep_supervision"] = False
    model = glaviz.load_keras_weights(weights, config=config or None)
    provenance = {"imported_from": weights.name, "keras_sha256": _sha256(weights)}
    glaviz.save_checkpoint(model, output, metadata={"provenance": provenance},
                           overwrite=args.overwrite)  # fmt: skip
    cfg = model.config
    groups = ", ".join(f"{g} ({c})" for g, c in cfg["input_channels"].items())
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {output}: GlaViTU, inputs {groups}, location encoding "
          f"{cfg.get('location_encoding', 'none')}, {n:,} parameters")  # fmt: skip
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``import-keras``."""
    p = add_command(
        sub, "import-keras", help="convert the authors' Keras .h5 weights to a checkpoint",
        description="Read a GlaViTU Keras weight file of the original authors (input groups, "
        "channels and location encoding are inferred from the file; nothing is unpickled) and "
        "write it as a self-describing glaviz .safetensors checkpoint.",
        example="glaviz import-keras A_global_weights.h5 --output models/global.safetensors\n"
        "glaviz predict --checkpoint models/global.safetensors --optical ... --dem dem.tif ...",
        handler=run,
    )  # fmt: skip
    p.add_argument("weights", help="the Keras weight file (.h5)")
    p.add_argument("--output", help="the checkpoint (default: WEIGHTS with .safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--config", metavar="JSON",
                   help="constructor arguments overriding the inferred ones")  # fmt: skip
    p.add_argument("--no-deep-supervision", action="store_true",
                   help="drop the deep-supervision head (inference only)")  # fmt: skip
    return p
