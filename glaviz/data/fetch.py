"""Sample data: a local mirror first, then a pooch download into a cache, always sha256-checked.

Environment variables
---------------------
``GLAVIZ_DATA_MIRROR``
    A folder laid out as ``<mirror>/<mirror_dir>/<file>`` (the project's ``../shared/data``);
    files found there are used in place after their sha256 is checked.
``GLAVIZ_CACHE``
    Where downloads go (default: pooch's per-user cache, ``pooch.os_cache("glaviz")``).
``GLAVIZ_OFFLINE``
    ``1`` forbids downloads: a file missing from the mirror and the cache is an error at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import overload

import pooch

from glaviz.catalog import SampleDataset, load_catalog
from glaviz.errors import ChecksumError, DataUnavailableError

__all__ = ["ChecksumError", "DataUnavailableError", "fetch", "sample_info"]

MIRROR_VAR = "GLAVIZ_DATA_MIRROR"
CACHE_VAR = "GLAVIZ_CACHE"
OFFLINE_VAR = "GLAVIZ_OFFLINE"

_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = pooch.file_hash(str(path), alg="sha256")
    return _HASHES[key]


def _dataset(name: str) -> SampleDataset:
    cat = load_catalog()
    if name not in cat.samples:
        raise KeyError(f"unknown sample dataset {name!r}; known: {sorted(cat.samples)}")
    return cat.samples[name]


def cache_dir() -> Path:
    """The download cache: ``$GLAVIZ_CACHE`` if set, else pooch's per-user cache for glaviz.

    Returns
    -------
    pathlib.Path
        The folder (it may not exist yet).

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"GLAVIZ_CACHE": "/tmp/glaviz-cache"}):
    ...     cache_dir().as_posix()
    '/tmp/glaviz-cache'
    """
    env = os.environ.get(CACHE_VAR)
    return Path(env) if env else Path(pooch.os_cache("glaviz"))


def _from_mirror(ds: SampleDataset, fname: str) -> Path | None:
    mirror = os.environ.get(MIRROR_VAR)
    if not mirror:
        return None
    path = Path(mirror) / ds.mirror_dir / fname
    if not path.is_file():
        return None
    expected = ds.files[fname].sha256
    found = _sha256(path)
    if found != expected:
        raise ChecksumError(
            f"{path}: sha256 {found} does not match the catalog ({expected}) for sample "
            f"{ds.name!r}, file {fname!r}. The mirror copy is corrupt or a different version: "
            f"replace it with the original file, or unset {MIRROR_VAR} to download it."
        )
    return path


def _download(ds: SampleDataset, fname: str) -> Path:
    spec = ds.files[fname]
    target = cache_dir() / ds.name / fname
    if target.is_file() and _sha256(target) == spec.sha256:
        return target
    hint = (
        f"Set {MIRROR_VAR} to a folder holding {ds.mirror_dir}/{fname} "
        f"(e.g. the project's ../shared/data), or connect to the internet"
    )
    if spec.remote is None:
        raise DataUnavailableError(
            f"sample {ds.name!r}, file {fname!r} has no public download location; {hint}."
        )
    if os.environ.get(OFFLINE_VAR, "") not in ("", "0"):
        raise DataUnavailableError(
            f"sample {ds.name!r}, file {fname!r} is not in the mirror or the cache and "
            f"{OFFLINE_VAR} forbids downloads. {hint} and unset {OFFLINE_VAR}."
        )
    url = ds.base_url + spec.remote
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{spec.sha256}",
            fname=fname,
            path=cache_dir() / ds.name,
            downloader=pooch.HTTPDownloader(timeout=60, progressbar=False),
        )
    except ValueError as err:  # pooch's hash mismatch
        raise ChecksumError(
            f"download of {url} for sample {ds.name!r}, file {fname!r} does not match the "
            f"catalog sha256 ({err}); the remote file changed, report it to glaviz."
        ) from err
    except Exception as err:  # network errors of any kind
        raise DataUnavailableError(
            f"sample {ds.name!r}, file {fname!r}: download from {url} failed "
            f"({type(err).__name__}: {err}). {hint}."
        ) from err
    return Path(path)


def _siblings(ds: SampleDataset, fname: str) -> list[str]:
    """A shapefile comes with its sidecars (.shx, .dbf, .prj, .cpg)."""
    stem, _, ext = fname.rpartition(".")
    if ext.lower() != "shp":
        return [fname]
    return [f for f in ds.files if f.rpartition(".")[0] == stem]


@overload
def fetch(name: str, file: None = None) -> dict[str, Path]: ...


@overload
def fetch(name: str, file: str) -> Path: ...


def fetch(name: str, file: str | None = None) -> Path | dict[str, Path]:
    """Local paths of a sample dataset's files, from the mirror or the cache.

    Parameters
    ----------
    name : str
        Sample dataset name in the catalog (``glaviz.catalog.load_catalog().samples``).
    file : str, optional
        One file of the dataset. A shapefile brings its sidecar files along.

    Returns
    -------
    pathlib.Path or dict of str to pathlib.Path
        The path of ``file``, or every file of the dataset keyed by file name (files with no
        public download location, such as test references, only when the mirror or the
        cache has them).

    Raises
    ------
    DataUnavailableError
        Offline (or ``GLAVIZ_OFFLINE=1``) and the file is neither in the mirror nor the cache;
        the message names the dataset, the file and ``GLAVIZ_DATA_MIRROR``.
    ChecksumError
        A mirror copy or a download does not match the catalog's sha256.

    Examples
    --------
    >>> path = fetch("everest_landsat7", "LE71400412000304SGS00_B4.tif")
    >>> path.name
    'LE71400412000304SGS00_B4.tif'
    >>> files = fetch("everest_landsat7")  # no file: every file, by name
    >>> files["LE71400412000304SGS00_B4.tif"] == path
    True
    """
    ds = _dataset(name)
    if file is not None and file not in ds.files:
        raise KeyError(f"sample {name!r} has no file {file!r}; files: {sorted(ds.files)}")
    wanted = list(ds.files) if file is None else _siblings(ds, file)
    paths: dict[str, Path] = {}
    for f in wanted:
        local = _from_mirror(ds, f)
        if local is None and file is None and ds.files[f].remote is None:
            cached = cache_dir() / ds.name / f
            if not (cached.is_file() and _sha256(cached) == ds.files[f].sha256):
                continue  # mirror-only extras (test references) come only with the mirror
            local = cached
        paths[f] = local or _download(ds, f)
    return paths if file is None else paths[file]


def sample_info(name: str) -> SampleDataset:
    """The catalog entry of a sample dataset (description, licence, attribution, files)."""
    return _dataset(name)
