"""The ``glaviz`` command: fetch, train, predict, evaluate, compare, map, report, calibrate,
import-keras.

One module per sub-command, each with ``add_parser(sub)`` (its arguments, description and
example) and ``run(args) -> exit status``; :func:`_parser` collects them. Multi-GPU (or
multi-process CPU) training runs under ``torchrun -m glaviz.cli train ...`` (see
:mod:`glaviz.cli.train`).

Exit status: 0 on success; 2 for bad usage or input (a missing or unreadable file, a wrong
extension, an output that exists without ``--overwrite``, a scene that does not fit the
checkpoint): one line ``glaviz <command>: error: ...`` on stderr naming the file and the fix;
1 for other failures (the same one line; ``glaviz --traceback <command> ...`` shows the
traceback); 130 when interrupted.

Examples
--------
>>> main(["evaluate", "nowhere.zarr", "--reference", "outlines.gpkg"])
2
"""

from __future__ import annotations

import argparse
import sys

from glaviz.cli import (
    calibrate,
    compare,
    evaluate,
    fetch,
    import_keras,
    maps,
    predict,
    report,
    train,
)
from glaviz.errors import GlavizError

__all__ = ["main"]

#: The sub-command modules, in the order ``glaviz --help`` lists them.
COMMANDS = (fetch, train, predict, evaluate, compare, maps, report, calibrate, import_keras)

#: Errors that mean bad usage or input (exit status 2); the library's messages name the file
#: and the fix.
USAGE_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError, GlavizError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glaviz",
        description="GlaViTU glacier mapping: data, training, scene mapping, scores, maps.",
        epilog="`glaviz COMMAND --help` shows each command's options and an example.",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _message(exc: BaseException) -> str:
    """The exception's message on one line (a KeyError's without the quotes repr adds)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return " ".join(str(text).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``glaviz`` command with ``argv`` (default ``sys.argv[1:]``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``glaviz``.

    Returns
    -------
    int
        The exit status: 0 done, 2 bad usage or input, 1 another failure, 130 interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and argparse's own usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    prog = f"glaviz {args.command}"
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USAGE_ERRORS as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.traceback:
            raise
        print(
            f"{prog}: error: {type(exc).__name__}: {_message(exc)} (`glaviz --traceback "
            f"{args.command} ...` shows where)",
            file=sys.stderr,
        )
        return 1
