"""Write tiny files in the GlaViTU benchmark HDF5 layout at test time (nothing binary is committed).

Plain h5py, independent of ``glaviz.data.benchmark``: the reader is checked against the layout of
``GLAVITU.md`` ("Benchmark dataset"), not against its own writer. One group per tile named
``<REGION>-<row>-<col>`` with the layout's attributes; float64 ``H x W x C`` datasets zero-padded
(centred) to multiples of 384; ``outlines`` 2-channel one-hot (not glacier, glacier), (0, 0) where
unlabelled and on the padding.

``python tests/data/make_benchmark.py DIR`` writes the files into ``DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

#: Channels per input group (data_catalog/scaling.yml).
CHANNELS = {"optical": 6, "dem": 2, "co_pol_sar": 2, "cross_pol_sar": 2, "in_sar": 2, "thermal": 1}

#: Tiles of the train file: two regions, odd and even padding, some without SAR, one chunked.
TRAIN = [
    {
        "key": "ALP-0-0", "region": "ALP", "subregion": "ALP-west", "tile_name": "32TLS",
        "epsg": 32632, "original": (350, 700), "padded": (384, 768), "xmin": 300000.0,
        "ymax": 5100000.0, "res": 10.0, "groups": tuple(CHANNELS), "chunks": None,
    },
    {
        "key": "ALP-0-1", "region": "ALP", "subregion": "ALP-east", "tile_name": "32TMS",
        "epsg": 32632, "original": (300, 384), "padded": (384, 384), "xmin": 307680.0,
        "ymax": 5100000.0, "res": 10.0, "groups": ("optical", "dem"), "chunks": None,
    },
    {
        "key": "HMA-1-0", "region": "HMA", "subregion": "HMA-karakoram", "tile_name": "43SFV",
        "epsg": 32643, "original": (383, 383), "padded": (384, 384), "xmin": 500000.0,
        "ymax": 4000000.0, "res": 10.0, "chunks": (96, 96),
        "groups": ("optical", "dem", "co_pol_sar", "cross_pol_sar", "in_sar"),
    },
]  # fmt: skip

#: Tiles of the val file (written with ``padding_*`` as the total padding).
VAL = [
    {
        "key": "SVAL-0-0", "region": "SVAL", "subregion": "SVAL", "tile_name": "33XVG",
        "epsg": 32633, "original": (380, 384), "padded": (384, 384), "xmin": 450000.0,
        "ymax": 8700000.0, "res": 20.0, "groups": ("optical", "dem"), "chunks": None,
    },
]  # fmt: skip


def write_file(path: Path, tiles: list[dict], *, padding: str = "before", seed: int = 0) -> dict:
    """Write ``tiles`` to ``path``; return per tile what was written (padded arrays and more).

    ``padding="before"``: ``padding_height`` is the top padding (``total // 2``);
    ``"total"``: it is the total padding.
    """
    rng = np.random.default_rng(seed)
    out = {}
    with h5py.File(path, "w") as f:
        for spec in tiles:
            (h, w), (H, W) = spec["original"], spec["padded"]
            top, left = (H - h) // 2, (W - w) // 2
            inner = (slice(top, top + h), slice(left, left + w))
            data = {}
            for g in spec["groups"]:
                arr = np.zeros((H, W, CHANNELS[g]))
                arr[inner] = rng.uniform(0.001, 1.0, (h, w, CHANNELS[g]))
                data[g] = arr
            yy, xx = np.mgrid[0:h, 0:w]
            lab = ((yy // 40 + xx // 50) % 2).astype(np.uint8)  # 1 glacier, 0 not
            lab[10:60, 20:90] = 255  # unlabelled block
            label = np.full((H, W), 255, np.uint8)
            label[inner] = lab
            data["outlines"] = np.stack([label == 0, label == 1], axis=-1).astype(np.float64)
            grp = f.create_group(spec["key"])
            for name, arr in data.items():
                chunks = (*spec["chunks"], arr.shape[2]) if spec["chunks"] else None
                grp.create_dataset(name, data=arr, chunks=chunks)
            ph, pw = (top, left) if padding == "before" else (H - h, W - w)
            res = spec["res"]
            attrs = {
                "region": spec["region"], "subregion": spec["subregion"],
                "tile_name": spec["tile_name"], "epsg": spec["epsg"], "height": H, "width": W,
                "original_height": h, "original_width": w, "padding_height": ph,
                "padding_width": pw, "xmin": spec["xmin"], "xmax": spec["xmin"] + w * res,
                "ymin": spec["ymax"] - h * res, "ymax": spec["ymax"],
            }  # fmt: skip
            grp.attrs.update(attrs)
            valid = np.zeros((H, W), bool)
            valid[inner] = True
            out[spec["key"]] = {
                **spec, "attrs": attrs, "data": data, "label": label, "valid": valid,
                "top": top, "left": left, "file": str(path),
            }  # fmt: skip
    return out


def make_benchmark(directory: Path) -> dict:
    """Write ``tiny_train_ps384.hdf5`` and ``tiny_val_ps384.hdf5``; return their tiles by name."""
    directory = Path(directory)
    tiles = write_file(directory / "tiny_train_ps384.hdf5", TRAIN, padding="before", seed=0)
    tiles |= write_file(directory / "tiny_val_ps384.hdf5", VAL, padding="total", seed=1)
    return tiles


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    target.mkdir(parents=True, exist_ok=True)
    for name, t in make_benchmark(target).items():
        print(f"{t['file']}: {name} {t['padded']} groups {t['groups']}")
