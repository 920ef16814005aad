"""``glaviz fetch``: a sample dataset's files, from the local mirror or downloaded."""

from __future__ import annotations

import argparse
from typing import Any

from glaviz.cli._common import add_command

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Fetch the sample and print ``file<TAB>path`` lines."""
    from glaviz.data import fetch

    paths = fetch(args.name)
    for name, path in sorted(paths.items()):
        print(f"{name}\t{path}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``fetch``."""
    p = add_command(
        sub, "fetch", help="fetch a sample dataset (mirror or download)",
        description="Fetch a catalog sample dataset (GLAVIZ_DATA_MIRROR first, then a "
        "sha256-checked download into GLAVIZ_CACHE) and list its files.",
        example="glaviz fetch everest_landsat7", handler=run,
    )  # fmt: skip
    p.add_argument("name", help="sample name (data_catalog/samples.yml)")
    return p
