"""glaviz's exceptions and warnings: one base, small specific subclasses.

Every error glaviz raises on purpose derives from :class:`GlavizError` *and* from the builtin it
replaced (``ValueError``, ``KeyError``, ``FileNotFoundError``, ...), so code that catches the
builtin keeps working while new code can catch precisely::

    GlavizError
    ├── CatalogError (ValueError)           a malformed data_catalog/*.yml
    ├── DataUnavailableError (FileNotFoundError)
    ├── ChecksumError (ValueError)          a sample file's sha256 differs from the catalog
    ├── BenchmarkError (ValueError)         a benchmark HDF5 file that does not fit the layout
    ├── InputError (ValueError)             bad input data, naming the file/variable and the fix
    │   ├── SceneError                      a scene cannot be assembled (open_scene)
    │   │   ├── SceneCRSError (+ MissingCRSError)
    │   │   └── SceneGridError (+ GridMismatchError)
    │   ├── MissingCRSError                 a raster, array or outlines without CRS
    │   ├── GridMismatchError               grids or footprints that do not match or overlap
    │   └── InputValueError                 values that cannot be used (too small, out of range)
    ├── InputTypeError (TypeError)          an object of the wrong kind (an ndarray for a grid)
    ├── CorruptFileError (OSError)          a truncated or corrupt raster
    ├── OutputNotWritableError (PermissionError)
    ├── RegistryError (ValueError)          unknown model name or config key
    ├── KerasImportError (ValueError)       a Keras weight file that cannot be mapped
    ├── CheckpointError (ValueError)        a checkpoint that cannot be written, read or rebuilt
    │   ├── IncompatibleSceneError          a scene that does not match a checkpoint's inputs
    │   └── CheckpointMismatchError         weights or state that do not fit the model
    └── ResumeMismatchError (ValueError)    resuming would splice two different runs

Warnings derive from :class:`GlavizWarning` (a ``UserWarning``): :class:`InputWarning` for input
that is probably wrong but usable (undeclared nodata, values outside the sensor's range,
non-polygonal outlines, outlines that miss the scene) and :class:`PerformanceWarning` (e.g. bf16
requested on a CPU without native bf16). Turn them into errors with
``warnings.simplefilter("error", glaviz.errors.InputWarning)``.

This module imports nothing beyond the standard library.

Examples
--------
>>> err = MissingCRSError.of("'dem.tif'", kind="file")
>>> isinstance(err, ValueError), str(err)  # doctest: +ELLIPSIS
(True, "'dem.tif' has no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:xxxx <file>`...")
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType
from typing import Literal

__all__ = [
    "BenchmarkError",
    "CatalogError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ChecksumError",
    "CorruptFileError",
    "DataUnavailableError",
    "GlavizError",
    "GlavizWarning",
    "GridMismatchError",
    "IncompatibleSceneError",
    "InputError",
    "InputTypeError",
    "InputValueError",
    "InputWarning",
    "KerasImportError",
    "MissingCRSError",
    "OutputNotWritableError",
    "PerformanceWarning",
    "RegistryError",
    "ResumeMismatchError",
    "SceneCRSError",
    "SceneError",
    "SceneGridError",
    "warn",
]


class GlavizError(Exception):
    """Base of every error glaviz raises on purpose; the message says what to do."""


# ------------------------------------------------------------------------------------------
# catalog and sample data


class CatalogError(GlavizError, ValueError):
    """A catalog file is malformed; the message names the file and the entry."""


class DataUnavailableError(GlavizError, FileNotFoundError):
    """A sample file is neither in the mirror nor in the cache and cannot be downloaded."""


class ChecksumError(GlavizError, ValueError):
    """A sample file's sha256 does not match the catalog."""


class BenchmarkError(GlavizError, ValueError):
    """A benchmark file or request does not fit the layout; the message names the file."""


# ------------------------------------------------------------------------------------------
# input data

CRSKind = Literal["file", "array", "outlines", "outline_file"]

#: How to give each kind of object a CRS: the one wording of "has no CRS" in glaviz.
_CRS_FIXES: dict[str, str] = {
    "file": "assign one, e.g. `gdal_edit.py -a_srs EPSG:xxxx <file>` (or open the array "
    "yourself and set it with .rio.write_crs)",
    "array": "set it with .rio.write_crs('EPSG:xxxx')",
    "outlines": "set the one they are in with .set_crs('EPSG:xxxx')",
    "outline_file": "add a .prj file beside it, or set the CRS after reading with "
    "gdf.set_crs('EPSG:xxxx')",
}


class InputError(GlavizError, ValueError):
    """Input data that cannot be used; the message names the file or variable and the fix."""


class SceneError(InputError):
    """A scene cannot be assembled; the message names the file or variable and the fix."""


class MissingCRSError(InputError):
    """A raster, array or set of outlines without a coordinate reference system."""

    @classmethod
    def of(
        cls, what: str, *, kind: CRSKind = "array", why: str = "", plural: bool | None = None
    ) -> MissingCRSError:
        """The error for ``what`` (e.g. ``"dem: 'x.tif'"``), with the fix for its ``kind``.

        Parameters
        ----------
        what : str
            The object, naming the file or variable.
        kind : {"file", "array", "outlines", "outline_file"}
            Decides the fix the message gives.
        why : str, optional
            What the CRS is needed for (``"slope needs pixel sizes in metres"``).
        plural : bool, optional
            "have" instead of "has"; default True for outlines.

        Returns
        -------
        MissingCRSError
            The error (of the class it is called on), to be raised.
        """
        if kind not in _CRS_FIXES:
            raise ValueError(f"kind must be one of {sorted(_CRS_FIXES)}, got {kind!r}")
        plural = kind.startswith("outline") if plural is None else plural
        reason = f" ({why})" if why else ""
        return cls(f"{what} {'have' if plural else 'has'} no CRS{reason}; {_CRS_FIXES[kind]}")


class SceneCRSError(SceneError, MissingCRSError):
    """A scene's raster or array without CRS: both a :class:`SceneError` and a missing CRS."""


class GridMismatchError(InputError):
    """Grids or footprints that do not match or do not overlap."""


class SceneGridError(SceneError, GridMismatchError):
    """A scene's raster that does not overlap the scene grid (both kinds)."""


class InputValueError(InputError):
    """Values that cannot be used as given (too few pixels, impossible ranges, ...)."""


class InputTypeError(GlavizError, TypeError):
    """An argument of the wrong kind (e.g. a NumPy array where a georeferenced grid is needed)."""


class CorruptFileError(GlavizError, OSError):
    """A file that exists but cannot be read: truncated or corrupt."""


class OutputNotWritableError(GlavizError, PermissionError):
    """An output folder (or file) that cannot be written."""


# ------------------------------------------------------------------------------------------
# models, checkpoints, runs


class RegistryError(GlavizError, ValueError):
    """An unknown model name, an unknown config key, or a name registered twice."""


class KerasImportError(GlavizError, ValueError):
    """A weight file that cannot be mapped onto GlaViTU (the message says where and why)."""


class CheckpointError(GlavizError, ValueError):
    """A checkpoint that cannot be written, read or rebuilt; the message says why and what to do."""


class IncompatibleSceneError(CheckpointError):
    """A scene whose input groups or bands do not match a checkpoint's inputs."""


class CheckpointMismatchError(CheckpointError):
    """Weights or a training state that do not fit the model they are loaded into."""


class ResumeMismatchError(GlavizError, ValueError):
    """Resuming would splice two different runs (another model, scene, settings or data)."""


# ------------------------------------------------------------------------------------------
# warnings


class GlavizWarning(UserWarning):
    """Base of glaviz's warnings."""


class InputWarning(GlavizWarning):
    """Input that is probably wrong but usable: the message names the file and the fix."""


class PerformanceWarning(GlavizWarning):
    """A setting that runs much slower than expected here (and what glaviz did about it)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = InputWarning) -> None:
    """Issue a warning attributed to the first caller outside glaviz (the user's line).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn("suspicious input")
    >>> seen[0].category.__name__, str(seen[0].message)
    ('InputWarning', 'suspicious input')
    """
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
