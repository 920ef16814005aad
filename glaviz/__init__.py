"""glaviz: GlaViTU glacier mapping in Jupyter.

The top-level namespace gathers the functions of the data flow; submodules are imported on first
use so that ``import glaviz`` stays fast (PyTorch loads only when a model is needed). The names
are listed once, in the type stub ``__init__.pyi``: type checkers and editors read it, and
``lazy_loader.attach_stub`` builds the lazy ``__getattr__`` from it (:mod:`glaviz._lazy`).

Examples
--------
>>> import glaviz
>>> ds = glaviz.data.synthetic_scene(height=64, width=64, seed=0)
>>> scaled = glaviz.scale(ds)
>>> scaled.attrs["scaled"]
1
"""

from __future__ import annotations

from glaviz._lazy import attach_stub

#: The one version source (pyproject.toml reads it: ``[tool.setuptools.dynamic]``).
__version__ = "0.1.0.dev0"

__getattr__, _lazy_dir, _lazy_all = attach_stub(__name__, __file__)
__all__ = sorted([*_lazy_all, "__version__"])


def __dir__() -> list[str]:
    return list(__all__)
