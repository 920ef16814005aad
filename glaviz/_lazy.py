"""The lazy namespaces of ``glaviz`` and ``glaviz.viz``, built from their ``__init__.pyi`` stubs.

:func:`attach_stub` wraps :func:`lazy_loader.attach_stub`: the stub lists the names once (type
checkers and editors read it), submodules are imported on first use, and a function is looked
up in its module on every access (never cached in the package), so that replacing
``glaviz.evaluation.evaluate`` (a test's monkeypatch, a user's wrapper) also changes
``glaviz.evaluate``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import lazy_loader


def attach_stub(
    package: str, file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of ``package`` from its ``__init__.pyi``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    file : str
        The package's ``__file__`` (the stub lies beside it).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__, __all__)``; ``__all__`` is sorted.

    Examples
    --------
    >>> import glaviz, glaviz.vector
    >>> glaviz.to_outlines is glaviz.vector.to_outlines
    True
    >>> "to_outlines" in vars(glaviz)  # looked up again on every access
    False
    """
    resolve, _, names = lazy_loader.attach_stub(package, file)

    def __getattr__(name: str) -> Any:
        value = resolve(name)
        if not isinstance(value, types.ModuleType):
            vars(sys.modules[package]).pop(name, None)  # lazy_loader caches; glaviz does not
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__, sorted(names)
