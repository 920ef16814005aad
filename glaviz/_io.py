"""Atomic file writes: a temporary file beside the target, then one rename.

A reader never sees half a file, a crash never corrupts an existing output, and the result gets
the ordinary permissions of the process umask (``mkstemp`` alone would leave it 0600).
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from glaviz.errors import OutputNotWritableError

__all__ = ["atomic_write", "check_writable", "remove_stale_temporaries"]

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _not_writable(path: Path, exc: OSError, what: str = "") -> OutputNotWritableError:
    return OutputNotWritableError(
        f"cannot write {what or repr(str(path))}: the folder {str(path.parent)!r} is not "
        f"writable ({exc.strerror or exc}); choose another output folder or fix its permissions"
    )


def _mkstemp(path: Path, suffix: str, what: str = "") -> Path:
    """A new temporary file beside ``path`` (its name starts with ``.<name>.``)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        if exc.errno in _DENIED:
            raise _not_writable(path, exc, what) from None
        raise
    os.close(fd)
    return Path(name)


def check_writable(path: str | os.PathLike, what: str = "") -> None:
    """Fail early, naming ``path`` (or ``what``) and its folder, if it cannot be written.

    Raises
    ------
    OutputNotWritableError
        The folder (or its parent, to create it) is read-only or not ours.
    """
    _mkstemp(Path(path), ".probe", what).unlink()


def remove_stale_temporaries(path: str | os.PathLike, suffix: str = ".tmp") -> list[Path]:
    """Delete temporaries an interrupted :func:`atomic_write` of ``path`` left beside it.

    Only names of the exact form ``atomic_write`` creates (``.<name>.<8 random>.<suffix>``)
    are removed; call it before writing ``path`` again. Returns the paths removed.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}{re.escape(suffix)}")
    removed = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            if pattern.fullmatch(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


_UMASK = os.umask(0o022)  # read the process umask once (and restore it)
os.umask(_UMASK)


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], *, suffix: str = ".tmp"
) -> None:
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
    tmp = _mkstemp(path, suffix)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
