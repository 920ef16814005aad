"""Atomic file writes: a temporary file beside the target, then one rename.

A reader never sees half a file, a crash never corrupts an existing output, and the result gets
the ordinary permissions of the process umask (``mkstemp`` alone would leave it 0600).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]

_UMASK = os.umask(0o022)  # read the process umask once (and restore it)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, suffix: str = ".tmp"):
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync, then rename onto ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, lambda tmp: tmp.write_text("done"))
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
