"""What data *is*: content identities of files, arrays, scenes and tiles, for resuming safely.

A resumed run must be the same run. :func:`scene_identity` gives, per variable of a scene, a
sha256 that changes whenever the values would:

- in-memory (NumPy) variables: the hash of their bytes, dtype, shape and band names;
- lazy variables exactly as :func:`glaviz.open_scene` (and then :func:`glaviz.scale`) made
  them: the hash of how they were made: each source file's identity (path, size, mtime and
  the sha256 of its content) and the reading settings (sensor, nodata, metadata, grid, scaling
  table). Each file is hashed in one streaming pass, once; the digest is cached in memory and
  on disk (``<GLAVIZ_CACHE>/file-sha256.json``) by path, size, mtime and inode;
- any other lazy variable (sliced, edited, from another reader): the hash of its values,
  computed chunk by chunk (one full read).

Lazy arrays are recognised by their dask name, which changes with any operation on them.

Examples
--------
>>> from glaviz.data import synthetic_scene
>>> a = synthetic_scene(height=32, width=32, seed=0, groups=["dem"])
>>> b = synthetic_scene(height=32, width=32, seed=1, groups=["dem"])
>>> scene_identity(a, ["dem"]) == scene_identity(a.copy(deep=True), ["dem"])
True
>>> scene_identity(a, ["dem"]) == scene_identity(b, ["dem"])
False
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "array_identity",
    "file_identity",
    "file_sha256",
    "is_registered",
    "register",
    "scene_identity",
    "tile_identity",
]

_CHUNK = 8 << 20  # bytes per read when hashing a file
_MEMORY: dict[tuple[str, int, int, int], str] = {}
_LOCK = threading.Lock()
#: dask name -> JSON-able description of how the array was made (see :func:`register`)
_PROVENANCE: dict[str, Any] = {}
_MAX_PROVENANCE = 1024


def _cache_file() -> Path:
    from glaviz.data.fetch import cache_dir

    return cache_dir() / "file-sha256.json"


def _disk_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(key: str, digest: str) -> None:
    from glaviz._io import atomic_write

    try:
        cache = _disk_cache()
        cache[key] = digest
        if len(cache) > 4096:  # keep the newest entries
            cache = dict(list(cache.items())[-4096:])
        text = json.dumps(cache)
        atomic_write(_cache_file(), lambda tmp: tmp.write_text(text))
    except OSError:  # a read-only cache only costs a re-hash next time
        pass


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's content, read once in a streaming pass, then cached.

    The cache (in memory and in ``<GLAVIZ_CACHE>/file-sha256.json``) is keyed by the resolved
    path, size, modification time (ns) and inode: a file rewritten in place is hashed again.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
    with _LOCK:
        if key in _MEMORY:
            return _MEMORY[key]
    text_key = "|".join(map(str, key))
    digest = _disk_cache().get(text_key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        _store(text_key, digest)
    with _LOCK:
        _MEMORY[key] = digest
    return digest


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """``{"path", "size", "mtime_ns", "sha256"}`` of a file (see :func:`file_sha256`)."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": file_sha256(p)}  # fmt: skip


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def register(data: xr.DataArray, description: Mapping[str, Any]) -> None:
    """Record how the lazy ``data`` was made (a no-op for in-memory data).

    ``description`` is JSON-able; ``{"file": path}`` entries are resolved to
    :func:`file_identity` and ``{"array": name}`` entries to the identity of a registered array
    when an identity is asked for.
    """
    name = getattr(data.data, "name", None)
    if name is None:
        return
    with _LOCK:
        _PROVENANCE[name] = json.loads(json.dumps(description, default=str))
        while len(_PROVENANCE) > _MAX_PROVENANCE:
            del _PROVENANCE[next(iter(_PROVENANCE))]


def is_registered(data: xr.DataArray) -> bool:
    """Whether ``data`` is, unchanged, a lazy array :func:`register` saw."""
    name = getattr(data.data, "name", None)
    return name is not None and name in _PROVENANCE


def _resolve(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"file"}:
            return file_identity(obj["file"])
        if set(obj) == {"array"}:
            return _resolve(_PROVENANCE[obj["array"]])
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    return obj


def _hash_values(data: xr.DataArray) -> str:
    h = hashlib.sha256()
    h.update(f"{data.dtype}|{data.shape}|{data.dims}|".encode())
    for dim in data.dims:
        if dim not in ("y", "x") and dim in data.coords:
            h.update(repr([str(v) for v in data[dim].values]).encode())
    arr = data.data
    if hasattr(arr, "to_delayed"):  # dask: one block at a time, in a fixed order
        for block in arr.to_delayed().ravel():
            h.update(np.ascontiguousarray(block.compute()).tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(arr)).data.cast("B"))
    return h.hexdigest()


def array_identity(data: xr.DataArray) -> str:
    """sha256 of what ``data`` holds: its bytes, or for registered lazy arrays their making."""
    name = getattr(data.data, "name", None)
    if name is not None and name in _PROVENANCE:
        return _digest({"made": _resolve(_PROVENANCE[name]), "shape": list(data.shape)})
    return _hash_values(data)


def scene_identity(scene: xr.Dataset, variables: Sequence[str]) -> dict[str, str]:
    """``{variable: sha256}`` of the scene's ``variables`` (see the module notes)."""
    return {v: array_identity(scene[v]) for v in variables}


def tile_identity(tile: Any) -> str:
    """sha256 of a training tile's content (a :class:`~glaviz.data.tiles.Tile`).

    In-memory tiles (:class:`~glaviz.data.tiles.SceneTile`) hash their arrays; tiles read from a
    file (benchmark HDF5) hash the file's identity and their place in it; others their
    ``identity()`` if they have one, else every pixel through ``tile.read``.
    """
    base = {
        "type": type(tile).__name__,
        "name": getattr(tile, "name", None),
        "region": getattr(tile, "region", None),
        "subregion": getattr(tile, "subregion", None),
        "groups": list(getattr(tile, "groups", ()) or ()),
        "shape": list(getattr(tile, "shape", ()) or ()),
    }
    arrays = getattr(tile, "_arrays", None)
    if isinstance(arrays, Mapping):
        h = hashlib.sha256()
        for key in sorted(arrays):
            h.update(key.encode())
            h.update(np.ascontiguousarray(arrays[key]).data.cast("B"))
        for extra in ("_label", "_valid"):
            value = getattr(tile, extra, None)
            if value is not None:
                h.update(np.ascontiguousarray(value).data.cast("B"))
        return _digest({**base, "content": h.hexdigest()})
    if isinstance(getattr(tile, "file", None), (str, os.PathLike)) and Path(tile.file).is_file():
        return _digest({**base, "file": file_identity(tile.file)})
    if callable(getattr(tile, "identity", None)):
        return _digest({**base, "identity": tile.identity()})
    h = hashlib.sha256()
    height, width = tile.shape
    patch = tile.read(0, 0, max(height, width))
    for key in sorted(patch.inputs):
        h.update(np.ascontiguousarray(patch.inputs[key]).tobytes())
    h.update(np.ascontiguousarray(patch.label).tobytes())
    return _digest({**base, "content": h.hexdigest()})
