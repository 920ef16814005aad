"""Type aliases shared by the public signatures (importing this module costs nothing).

Examples
--------
>>> from glaviz.types import CRSLike, ChunksLike
>>> isinstance("EPSG:32645", str)  # a CRSLike
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pyproj import CRS as _ProjCRS
    from rasterio.crs import CRS as _RioCRS

__all__ = ["CRSLike", "ChunksLike"]

#: What :meth:`pyproj.CRS.from_user_input` and rasterio accept: a CRS object, "EPSG:32645",
#: 32645, a WKT string or a PROJ dict.
CRSLike: TypeAlias = "_ProjCRS | _RioCRS | str | int | dict[str, Any]"

#: Dask chunks as xarray/rioxarray take them: a size, "auto", a tuple, or per dimension.
ChunksLike: TypeAlias = "int | str | bool | tuple[int, ...] | Mapping[str, int | str]"
