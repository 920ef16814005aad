"""Tests of glaviz.data.benchmark on tiny files written at test time in the benchmark layout."""

from __future__ import annotations

import multiprocessing
import pickle
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from pyproj import Transformer

from glaviz.catalog import GROUPS, load_catalog
from glaviz.data.benchmark import (
    ATTRIBUTES,
    BenchmarkError,
    BenchmarkTile,
    open_benchmark,
    pad_before,
    write_tile,
)
from glaviz.data.tiles import IGNORE, Tile

sys.path.insert(0, str(Path(__file__).parent))
from make_benchmark import make_benchmark  # noqa: E402

SAR = ("co_pol_sar", "cross_pol_sar", "in_sar")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    """The written tiles by name (padded arrays, label, valid, attributes, file)."""
    return make_benchmark(tmp_path_factory.mktemp("benchmark"))


@pytest.fixture(scope="module")
def pattern(bench) -> str:
    return str(Path(bench["ALP-0-0"]["file"]).parent / "tiny_*.hdf5")


def _window(arr: np.ndarray, y: int, x: int, size: int, fill) -> np.ndarray:
    """``arr[y:y+size, x:x+size]`` of a (H, W, ...) array, ``fill`` outside (not glaviz's code)."""
    ys, xs = np.arange(y, y + size), np.arange(x, x + size)
    iy = np.flatnonzero((ys >= 0) & (ys < arr.shape[0]))
    ix = np.flatnonzero((xs >= 0) & (xs < arr.shape[1]))
    out = np.full((size, size, *arr.shape[2:]), fill, arr.dtype)
    out[np.ix_(iy, ix)] = arr[np.ix_(ys[iy], xs[ix])]
    return out


class _Reads:
    """Records every data read of h5py datasets (slicing, np.asarray, read_direct)."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, tuple, object]] = []
        for meth in ("__getitem__", "__array__", "read_direct"):
            orig = getattr(h5py.Dataset, meth)

            def spy(ds, *a, _orig=orig, _meth=meth, **k):
                self.calls.append((ds.name, ds.shape, a[0] if a else _meth))
                return _orig(ds, *a, **k)

            monkeypatch.setattr(h5py.Dataset, meth, spy)


def test_listing_table_and_splits(bench, pattern):
    with pytest.warns(UserWarning, match=r"dropped 2 of 4 tile\(s\).*'co_pol_sar': 2"):
        sar = open_benchmark(pattern, groups=("optical", "dem", "co_pol_sar"))
    assert [t.name for t in sar] == ["ALP-0-0", "HMA-1-0"]
    bs = open_benchmark(pattern)
    assert len(bs) == 4 and len(bs.dropped) == 0
    assert [t.name for t in bs] == ["ALP-0-0", "ALP-0-1", "HMA-1-0", "SVAL-0-0"]
    assert bs.regions == ("ALP", "HMA", "SVAL")
    assert isinstance(bs[0], Tile) and isinstance(bs[-1], BenchmarkTile)
    assert [t.name for t in bs[1:3]] == ["ALP-0-1", "HMA-1-0"] and "ALP-0-0" in repr(bs[0])
    t = bs.table
    assert {"file", "tile", "split", "pad_top", "pad_left", "groups", *ATTRIBUTES} <= set(t.columns)
    for _, row in t.iterrows():
        want = bench[row["tile"]]
        for k, v in want["attrs"].items():
            assert row[k] == v, (row["tile"], k)
        assert row["file"] == str(Path(want["file"]).resolve())
        assert row["groups"] == tuple(g for g in GROUPS if g in want["groups"])
        assert (row["pad_top"], row["pad_left"]) == (want["top"], want["left"])
    assert t["split"].tolist() == ["train", "train", "train", "val"]
    # the val file stores the total padding (4 rows): auto reads it as 2 on top
    assert bs.tile("SVAL-0-0").inner == (slice(2, 382), slice(0, 384))
    assert bs.tile("ALP-0-0").inner == (slice(17, 367), slice(34, 734))
    assert bs.tile("HMA-1-0").shape == (384, 384) and bs.tile("HMA-1-0").inner[0] == slice(0, 383)
    # one path, a list with duplicates, a Path
    files = sorted({v["file"] for v in bench.values()})
    assert len(open_benchmark(files + files[:1])) == 4
    assert len(open_benchmark(Path(files[1]))) == 1


def test_filters_and_dropped(pattern):
    assert [t.name for t in open_benchmark(pattern, split="val")] == ["SVAL-0-0"]
    assert len(open_benchmark(pattern, split=("train", "val"))) == 4
    assert [t.name for t in open_benchmark(pattern, regions="HMA")] == ["HMA-1-0"]
    bs = open_benchmark(pattern, subregions=["ALP-east", "SVAL"], split="train")
    assert [t.name for t in bs] == ["ALP-0-1"]
    assert dict(zip(bs.dropped["tile"], bs.dropped["reason"])) == {
        "ALP-0-0": "subregion not in ['ALP-east', 'SVAL']",
        "HMA-1-0": "subregion not in ['ALP-east', 'SVAL']",
        "SVAL-0-0": "split not in ['train']",
    }
    with pytest.warns(UserWarning, match=r"dropped 3 of 4 tile\(s\).*'thermal': 3"):
        bs = open_benchmark(pattern, groups=("thermal", "optical"))
    assert [t.name for t in bs] == ["ALP-0-0"] and bs[0].groups == ("optical", "thermal")
    assert set(bs.dropped["reason"]) == {"lacks input group(s) ['thermal']"}
    keep = open_benchmark(pattern, groups=("optical", *SAR), require_groups=False)
    assert len(keep) == 4 and len(keep.dropped) == 0
    assert keep.tile("ALP-0-1").groups == ("optical",)
    assert keep.tile("HMA-1-0").groups == ("optical", *SAR)
    assert keep.tile("ALP-0-1").available == ("optical", "dem")
    with pytest.raises(KeyError, match=r"ALP-0-1.*no input group\(s\) \['co_pol_sar'\]"):
        keep.tile("ALP-0-1").read(0, 0, 16, groups=("co_pol_sar",))
    every = open_benchmark(pattern, groups=None)
    assert every.tile("ALP-0-0").groups == GROUPS and every.tile("SVAL-0-0").groups == (
        "optical",
        "dem",
    )


@pytest.mark.parametrize(
    ("name", "y", "x", "size"),
    [
        ("ALP-0-0", 0, 0, 384),  # the whole first square, padding at the borders
        ("ALP-0-0", 100, 300, 64),  # interior
        ("ALP-0-0", -20, 740, 64),  # across the top-right corner of the tile
        ("HMA-1-0", 330, -10, 64),  # chunked dataset, across the bottom-left edge
        ("SVAL-0-0", 370, 100, 32),  # total-padding file, across the bottom
        ("ALP-0-1", 500, 500, 16),  # wholly outside
    ],
)
def test_window_reads_equal_written(bench, pattern, name, y, x, size):
    tile = open_benchmark(pattern, groups=None).tile(name)
    want = bench[name]
    p = tile.read(y, x, size)
    assert tuple(p.inputs) == tile.groups
    for g, arr in p.inputs.items():
        n = len(load_catalog().groups[g].bands)
        assert arr.dtype == np.float32 and arr.shape == (n, size, size)
        expected = _window(want["data"][g], y, x, size, 0.0).transpose(2, 0, 1)
        np.testing.assert_array_equal(arr, expected.astype(np.float32))
    np.testing.assert_array_equal(p.label, _window(want["label"], y, x, size, IGNORE))
    np.testing.assert_array_equal(p.valid, _window(want["valid"], y, x, size, False))
    assert p.label.dtype == np.uint8 and p.valid.dtype == bool and p.region == want["region"]


def test_labels_and_valid_mask(bench, pattern):
    tile = open_benchmark(pattern).tile("ALP-0-0")
    p = tile.read(0, 0, 384)
    top, left = bench["ALP-0-0"]["top"], bench["ALP-0-0"]["left"]  # 17, 34
    assert not p.valid[:top].any() and not p.valid[top + 350 :].any()
    assert not p.valid[:, :left].any() and p.valid[top : top + 350, left:].all()
    assert (p.label[~p.valid] == IGNORE).all()
    assert (p.label[top + 10 : top + 60, left + 20 : left + 90] == IGNORE).all()  # unlabelled
    assert p.label[top, left] == 0 and p.label[top, left + 50] == 1  # checkerboard of 40 x 50
    assert set(np.unique(p.label)) == {0, 1, IGNORE}
    # 0 in the data is a value, not a hole: valid stays True where inputs are zero
    assert p.valid[top, left]


def test_padding_is_ignored_even_if_labelled(tmp_path):
    outlines = np.zeros((8, 8, 2))
    outlines[..., 0] = 1  # "not glacier" written over the padding rows too
    tile = open_benchmark(_small(tmp_path / "p_train_.hdf5", data={"outlines": outlines}))[0]
    p = tile.read(-2, 0, 12)
    assert (p.label[:3] == IGNORE).all() and (p.label[3:9, :8] == 0).all()
    assert (p.label[9:] == IGNORE).all() and (p.label[:, 8:] == IGNORE).all()
    assert (tile.to_scene(crop=False)["reference_mask"].values[[0, 7]] == IGNORE).all()


def test_lonlat_of_window_centre(pattern):
    tile = open_benchmark(pattern).tile("ALP-0-0")
    p = tile.read(-50, 600, 128)
    col, row = 600 + 64 - 34, -50 + 64 - 17  # unpadded pixel coordinates of the centre
    lon, lat = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True).transform(
        300000.0 + 10.0 * col, 5100000.0 - 10.0 * row
    )
    assert p.lonlat == pytest.approx((lon, lat), abs=1e-9)
    assert 6 < lon < 7 and 45 < lat < 47


def test_n_windows_and_windows(pattern):
    bs = open_benchmark(pattern)
    assert bs.n_windows() == 2 + 1 + 1 + 1
    assert bs.n_windows(128) == 3 * 6 + 9 + 9 + 9 == len(list(bs.windows(128)))
    assert bs.n_windows(500) == 0
    assert list(bs.windows(384))[:3] == [(0, 0, 0), (0, 0, 384), (1, 0, 0)]
    with pytest.raises(ValueError, match="positive"):
        bs.n_windows(0)


def test_to_scene_grid_crs_and_values(bench, pattern):
    tile = open_benchmark(pattern, groups=None).tile("ALP-0-0")
    want = bench["ALP-0-0"]
    ds = tile.to_scene()
    assert ds.attrs["scaled"] == 1 and ds.attrs["tile"] == "ALP-0-0"
    assert ds.rio.crs.to_epsg() == 32632
    assert tuple(ds.rio.transform())[:6] == (10.0, 0.0, 300000.0, 0.0, -10.0, 5100000.0)
    assert ds.rio.bounds() == (300000.0, 5100000.0 - 3500.0, 307000.0, 5100000.0)
    assert dict(ds.sizes)["y"] == 350 and dict(ds.sizes)["x"] == 700
    assert ds.x.values[0] == 300005.0 and ds.y.values[0] == 5099995.0
    inner = (slice(17, 367), slice(34, 734))
    for g in GROUPS:
        assert ds[g].dims == (f"{g}_band", "y", "x") and ds[g].dtype == np.float32
        assert tuple(ds[g][f"{g}_band"].values) == load_catalog().groups[g].bands
        expected = want["data"][g][inner].transpose(2, 0, 1).astype(np.float32)
        np.testing.assert_array_equal(ds[g].values, expected)
    assert ds["valid"].values.all()
    assert ds["reference_mask"].dtype == np.uint8
    np.testing.assert_array_equal(ds["reference_mask"].values, want["label"][inner])
    padded = tile.to_scene(("dem",), crop=False)
    assert list(padded.data_vars) == ["dem", "valid", "reference_mask"]
    assert dict(padded.sizes)["y"] == 384 and padded.rio.transform().c == 300000.0 - 340.0
    assert padded.rio.transform().f == 5100000.0 + 170.0
    np.testing.assert_array_equal(padded["valid"].values, want["valid"])
    np.testing.assert_array_equal(padded["reference_mask"].values, want["label"])
    # a scene from the tile is usable as a SceneTile and reads the same windows
    from glaviz.data.tiles import SceneTile

    st = SceneTile(ds[["optical", "dem", "valid"]], ds["reference_mask"], name="x")
    a, b = st.read(5, 5, 32), tile.read(17 + 5, 34 + 5, 32, groups=("optical", "dem"))
    np.testing.assert_array_equal(a.inputs["optical"], b.inputs["optical"])
    np.testing.assert_array_equal(a.label, b.label)
    assert a.lonlat == pytest.approx(b.lonlat)


def test_streaming_reads_only_windows(pattern, monkeypatch):
    reads = _Reads(monkeypatch)
    bs = open_benchmark(pattern, groups=None)
    assert reads.calls == []  # listing reads attributes and shapes only
    tile = bs.tile("ALP-0-0")
    tile.read(-10, 700, 64)
    assert len(reads.calls) == len(GROUPS) + 1  # one slab per group and one of the labels
    for name, shape, key in reads.calls:
        ys, xs, cs = key
        assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 54, 700, 764), name
        assert cs == slice(None) and shape[:2] == (384, 768)
    reads.calls.clear()
    bs.tile("HMA-1-0").read(100, 100, 128, groups=("dem",))
    assert [c[0] for c in reads.calls] == ["/HMA-1-0/dem", "/HMA-1-0/outlines"]
    assert all(k[0] == slice(100, 228) and k[1] == slice(100, 228) for _, _, k in reads.calls)
    bs.close()


def test_pickle_and_fork(bench, pattern):
    bs = open_benchmark(pattern)
    before = bs[0].read(10, 20, 32)  # opens the file in this process
    clone = pickle.loads(pickle.dumps(bs))
    assert clone[0]._files is clone._files is clone[1]._files
    np.testing.assert_array_equal(clone[0].read(10, 20, 32).inputs["dem"], before.inputs["dem"])
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_read_in_child, args=(bs, queue))  # fork: nothing pickled
    proc.start()
    child = queue.get(timeout=30)
    proc.join(timeout=30)
    assert proc.exitcode == 0 and child["reopened"]
    np.testing.assert_array_equal(child["optical"], before.inputs["optical"])
    # the parent's handle survived the child
    np.testing.assert_array_equal(
        bs[0].read(10, 20, 32).inputs["optical"], before.inputs["optical"]
    )
    bs.close()
    clone.close()


def _read_in_child(bs, queue) -> None:
    inherited = dict(bs._files._open)
    p = bs[0].read(10, 20, 32)
    reopened = all(bs._files._open[k] is not f for k, f in inherited.items())
    queue.put({"optical": p.inputs["optical"], "reopened": reopened and bool(inherited)})


def test_write_tile_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    opt, dem = rng.random((6, 50, 70)), rng.random((2, 50, 70))
    label = (rng.random((50, 70)) > 0.5).astype(np.uint8)
    label[:5] = 255
    with h5py.File(tmp_path / "own_test_x.hdf5", "w") as f:
        write_tile(f, "NZ-0-0", {"optical": opt, "dem": dem}, label, region="NZ", subregion="NZ",
                   epsg=2193, xmin=1.5e6, ymax=5.1e6, resolution=10.0, multiple=64)  # fmt: skip
    bs = open_benchmark(tmp_path / "own_test_x.hdf5", split="test")
    assert bs[0].shape == (64, 128) and bs[0].inner == (slice(7, 57), slice(29, 99))
    ds = bs[0].to_scene()
    np.testing.assert_allclose(ds["optical"].values, opt.astype(np.float32))
    np.testing.assert_array_equal(ds["reference_mask"].values, label)
    assert ds.rio.transform().c == 1.5e6 and ds.rio.crs.to_epsg() == 2193
    with h5py.File(tmp_path / "bad.hdf5", "w") as f, pytest.raises(ValueError, match="unknown"):
        write_tile(f, "NZ-0-0", {"sar": opt}, label, region="NZ", subregion="NZ", epsg=2193,
                   xmin=0.0, ymax=0.0, resolution=10.0)  # fmt: skip


def test_pad_before_conventions():
    assert pad_before(17, 34) == 17 and pad_before(34, 34) == 17 and pad_before(0, 0) == 0
    assert pad_before(34, 34, "before") == 34 and pad_before(4, 4, "total") == 2
    with pytest.raises(ValueError, match="not the total"):
        pad_before(17, 34, "total")
    with pytest.raises(ValueError, match="outside"):
        pad_before(40, 34)
    with pytest.raises(ValueError, match="convention"):
        pad_before(1, 2, "centre")


# --- errors ------------------------------------------------------------------------------------


def _small(path: Path, *, drop=(), attrs=None, data=None, key="GR-0-0") -> Path:
    """One 8 x 8 tile (6 x 8 padded by one row above and below), with changes."""
    a = {"region": "GR", "subregion": "GR-south", "tile_name": "T", "epsg": 3413, "height": 8,
         "width": 8, "original_height": 6, "original_width": 8, "padding_height": 1,
         "padding_width": 0, "xmin": 0.0, "xmax": 80.0, "ymin": 0.0, "ymax": 60.0}  # fmt: skip
    a.update(attrs or {})
    d = {
        "optical": np.zeros((8, 8, 6)),
        "dem": np.zeros((8, 8, 2)),
        "outlines": np.zeros((8, 8, 2)),
    }
    d.update(data or {})
    with h5py.File(path, "a") as f:
        g = f.create_group(key)
        for k, v in d.items():
            if v is not None:
                g[k] = v
        g.attrs.update({k: v for k, v in a.items() if k not in drop})
    return path


def test_error_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope_train_.hdf5"))):
        open_benchmark(tmp_path / "nope_train_.hdf5")
    with pytest.raises(FileNotFoundError, match="no benchmark file matches.*zz_"):
        open_benchmark(str(tmp_path / "zz_*.hdf5"))
    with pytest.raises(FileNotFoundError, match="empty"):
        open_benchmark([])
    (tmp_path / "text_train_.hdf5").write_text("not hdf5")
    with pytest.raises(BenchmarkError, match="text_train_.hdf5.*not a readable HDF5"):
        open_benchmark(tmp_path / "text_train_.hdf5")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"drop": ("epsg", "xmax")}, r"GR-0-0.*missing attribute\(s\) \['epsg', 'xmax'\]"),
        ({"data": {"optical": np.zeros((8, 8))}}, r"'optical' has shape \(8, 8\).*\(8, 8, 6\)"),
        ({"data": {"dem": np.zeros((8, 9, 2))}}, r"'dem' has shape \(8, 9, 2\)"),
        ({"data": {"optical": np.zeros((8, 8, 5))}}, r"'optical' has shape \(8, 8, 5\)"),
        ({"data": {"outlines": np.zeros((8, 8, 3))}}, r"'outlines' has shape \(8, 8, 3\)"),
        ({"data": {"outlines": None}}, "no 'outlines' dataset"),
        ({"attrs": {"region": "XX"}}, r"unknown region 'XX'; known: \['ALP'.*'SVAL'\]"),
        ({"attrs": {"padding_height": 3}}, "inconsistent attributes: padding 3 outside 0..2"),
        ({"attrs": {"epsg": 1}}, "inconsistent attributes"),
        ({"attrs": {"height": 8.5}}, "height=8.5 is not an integer"),
    ],
)
def test_error_layout(tmp_path, changes, message):
    path = _small(tmp_path / "bad_train_.hdf5", **changes)
    with pytest.raises(BenchmarkError, match=f"bad_train_.hdf5.*{message}"):
        open_benchmark(path)


def test_error_layout_file_level(tmp_path):
    with h5py.File(tmp_path / "root_val_.hdf5", "w") as f:
        f["optical"] = np.zeros((8, 8, 6))
    with pytest.raises(BenchmarkError, match="root_val_.hdf5.*'optical' is a dataset at the file"):
        open_benchmark(tmp_path / "root_val_.hdf5")
    h5py.File(tmp_path / "empty_val_.hdf5", "w").close()
    with pytest.raises(BenchmarkError, match="empty_val_.hdf5.*holds no tile group"):
        open_benchmark(tmp_path / "empty_val_.hdf5")
    # a channel count other than the catalog's is fine for a group that is not read
    path = _small(tmp_path / "ok_val_.hdf5", data={"thermal": np.zeros((8, 8, 3))})
    assert open_benchmark(path)[0].available == ("optical", "dem", "thermal")
    with pytest.raises(BenchmarkError, match=r"'thermal' has shape \(8, 8, 3\)"):
        open_benchmark(path, groups=None)
    # no split in the file name: split None, so a split filter removes the tile
    plain = _small(tmp_path / "plain.hdf5")
    assert open_benchmark(plain).table["split"].tolist() == [None]
    with pytest.raises(BenchmarkError, match=r"split=\['val'\] kept 0;.*\(splits \['None'\]"):
        open_benchmark(plain, split="val")
    # padding convention forced against the file
    with pytest.raises(BenchmarkError, match="not the total padding"):
        open_benchmark(path, padding="total")


def test_error_requests(pattern):
    codes = ", ".join(repr(c) for c in load_catalog().region_codes)
    with pytest.raises(
        BenchmarkError, match=re.escape(f"unknown region(s) ['XX']; known: [{codes}]")
    ):
        open_benchmark(pattern, regions=["ALP", "XX"])
    with pytest.raises(BenchmarkError, match=r"unknown input group\(s\) \['sar'\].*'optical'"):
        open_benchmark(pattern, groups=("optical", "sar"))
    with pytest.raises(BenchmarkError, match=r"unknown split\(s\) \['training'\].*'train'"):
        open_benchmark(pattern, split="training")
    with pytest.raises(BenchmarkError, match=r"unknown subregion\(s\) \['Alps'\].*'ALP-east'"):
        open_benchmark(pattern, subregions="Alps")
    with pytest.raises(BenchmarkError, match=r"no tile left.*split=\['test'\] kept 0.*'train'"):
        open_benchmark(pattern, split="test")
    with pytest.raises(
        BenchmarkError, match=r"region=\['HMA'\] kept 1; groups=\['thermal'\] kept 0"
    ):
        with pytest.warns(UserWarning, match="dropped 1 of 1"):
            open_benchmark(pattern, regions="HMA", groups="thermal")
    with pytest.raises(KeyError, match="no tile named 'ALP-9-9'"):
        open_benchmark(pattern).tile("ALP-9-9")
    with pytest.raises(TypeError, match="strings"):
        open_benchmark(pattern, regions=[1])


def test_docstring_examples_run():
    import doctest

    import glaviz.data.benchmark as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
