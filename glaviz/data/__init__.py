"""Data: sample fetching, scene I/O, conversion, scaling, slope, outlines and synthetic scenes."""

from glaviz.data.fetch import ChecksumError, DataUnavailableError, fetch, sample_info
from glaviz.data.outlines import rasterize_outlines, read_outlines
from glaviz.data.scaling import scale
from glaviz.data.scene import SceneError, band_dim, group_array, open_scene, scene_groups
from glaviz.data.synthetic import synthetic_scene
from glaviz.data.terrain import slope

__all__ = [
    "ChecksumError",
    "DataUnavailableError",
    "SceneError",
    "band_dim",
    "fetch",
    "group_array",
    "open_scene",
    "rasterize_outlines",
    "read_outlines",
    "sample_info",
    "scale",
    "scene_groups",
    "slope",
    "synthetic_scene",
]
