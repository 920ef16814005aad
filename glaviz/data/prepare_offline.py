"""Make a machine ready for a workshop without internet: every sample in the cache, checked.

Run it once per laptop while it is online (or has the data mirror)::

    python -m glaviz.data.prepare_offline                  # every sample of the catalog
    python -m glaviz.data.prepare_offline everest_landsat7  # only some

For each file of each catalog sample, :func:`glaviz.fetch` finds it (the mirror named by
``GLAVIZ_DATA_MIRROR``, else the cache, else a download) and checks its sha256; files that came
from the mirror are copied into the cache (``GLAVIZ_CACHE``, default the per-user cache), so the
laptop needs neither the mirror nor the internet afterwards. Then every file is looked up again
the way it will be at the venue (``GLAVIZ_OFFLINE=1``, no mirror), which checks each sha256 once
more. The command prints what is ready and exits with status 1 when anything is missing.

At the venue, start Jupyter with ``GLAVIZ_OFFLINE=1`` and the same ``GLAVIZ_CACHE`` (if you set
one): a missing file then fails at once with a message instead of trying the network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from glaviz.catalog import load_catalog
from glaviz.data.fetch import (
    CACHE_VAR,
    MIRROR_VAR,
    OFFLINE_VAR,
    ChecksumError,
    DataUnavailableError,
    cache_dir,
    fetch,
)

__all__ = ["FileStatus", "format_size", "main", "prepare"]


@dataclass
class FileStatus:
    """What :func:`prepare` found for one sample file.

    Attributes
    ----------
    sample, file : str
        Catalog sample and file name.
    path : pathlib.Path or None
        The file in the cache, ``None`` when it is missing.
    size : int
        Bytes (0 when missing).
    source : str
        ``"cache"`` (already there), ``"mirror"`` (copied from the mirror) or ``"download"``.
    problem : str
        Why the file is missing (empty when it is ready).
    """

    sample: str
    file: str
    path: Path | None = None
    size: int = 0
    source: str = ""
    problem: str = ""

    @property
    def ready(self) -> bool:
        """The file is in the cache and passed the offline lookup."""
        return not self.problem


def format_size(n: int) -> str:
    """A byte count for people.

    Examples
    --------
    >>> format_size(512), format_size(1536), format_size(3 * 1024**2)
    ('512 B', '1.5 KiB', '3.0 MiB')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the duration of a block."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _copy_into(source: Path, target: Path) -> None:
    """Copy a file into the cache atomically (a temporary name beside it, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.prepare.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def prepare(
    samples: Sequence[str] | None = None, *, cache: str | os.PathLike | None = None
) -> list[FileStatus]:
    """Put every file of the given samples into the cache and check it as an offline machine.

    Parameters
    ----------
    samples : sequence of str, optional
        Catalog sample names; default all of them.
    cache : path, optional
        The cache folder; default ``GLAVIZ_CACHE``, else the per-user cache (as
        :func:`glaviz.fetch` uses).

    Returns
    -------
    list of FileStatus
        One entry per file; ``ready`` False (with ``problem``) for missing or corrupt files.

    Raises
    ------
    KeyError
        An unknown sample name (the message lists the known ones).
    """
    catalog = load_catalog()
    names = list(catalog.samples) if samples is None else list(samples)
    unknown = [n for n in names if n not in catalog.samples]
    if unknown:
        raise KeyError(f"unknown sample dataset(s) {unknown}; known: {sorted(catalog.samples)}")
    root = Path(cache) if cache is not None else cache_dir()
    statuses: list[FileStatus] = []
    with _environment({CACHE_VAR: str(root)}):
        for name in names:
            entry = catalog.samples[name]
            for fname in entry.files:
                status = FileStatus(name, fname)
                target = root / entry.name / fname
                had = target.is_file()
                try:
                    found = fetch(name, fname)  # mirror, cache or download; sha256-checked
                except (DataUnavailableError, ChecksumError) as err:
                    status.problem = str(err)
                    statuses.append(status)
                    continue
                if found.resolve() != target.resolve():
                    _copy_into(found, target)
                    status.source = "mirror"
                else:
                    status.source = "cache" if had else "download"
                statuses.append(status)
        # As at the venue: no mirror, no downloads; fetch checks each sha256 again.
        with _environment({MIRROR_VAR: None, OFFLINE_VAR: "1"}):
            for status in statuses:
                if status.problem:
                    continue
                try:
                    path = fetch(status.sample, status.file)
                except (DataUnavailableError, ChecksumError) as err:
                    status.problem = f"not usable offline: {err}"
                    continue
                status.path, status.size = path, path.stat().st_size
    return statuses


def _report(statuses: Sequence[FileStatus], cache: Path) -> str:
    how = {"cache": "ready (was in the cache)", "mirror": "ready (copied from the mirror)",
           "download": "ready (downloaded)"}  # fmt: skip
    width = max([len(s.file) for s in statuses] + [4])
    lines = [f"cache: {cache}", f"{'sample':<22} {'file':<{width}} {'size':>9}  status"]
    for s in statuses:
        state = how[s.source] if s.ready else "MISSING"
        size = format_size(s.size) if s.ready else "-"
        lines.append(f"{s.sample:<22} {s.file:<{width}} {size:>9}  {state}")
    missing = [s for s in statuses if not s.ready]
    samples = sorted({s.sample for s in statuses})
    if missing:
        lines.append("")
        lines.append(f"{len(missing)} of {len(statuses)} file(s) are missing:")
        lines += [f"  {s.sample}/{s.file}: {s.problem}" for s in missing]
        lines.append(
            f"Fix: run this again with internet access, or with {MIRROR_VAR} pointing at a "
            "copy of the sample-data folder (<mirror>/<sample>/<file>)."
        )
    else:
        total = format_size(sum(s.size for s in statuses))
        lines.append("")
        lines.append(
            f"Ready: {len(samples)} sample(s), {len(statuses)} file(s), {total}, all sha256 "
            "checked without mirror or network."
        )
        lines.append(
            f"At the venue: export {OFFLINE_VAR}=1 (and {CACHE_VAR}={cache} if the notebooks "
            "run with another cache) before starting Jupyter."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 ready, 1 something missing)."""
    parser = argparse.ArgumentParser(
        prog="python -m glaviz.data.prepare_offline",
        description="Fetch every catalog sample into the cache and check it for offline use.",
    )
    parser.add_argument("samples", nargs="*", help="sample names (default: all in the catalog)")
    parser.add_argument(
        "--cache", help=f"cache folder (default: ${CACHE_VAR}, else the per-user cache)"
    )
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else cache_dir()
    try:
        statuses = prepare(args.samples or None, cache=cache)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    print(_report(statuses, cache))
    return 0 if all(s.ready for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
