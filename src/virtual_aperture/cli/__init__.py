"""Command line: ``virtual-aperture <command> ...``.

Every module ``cmd_<name>.py`` in this package is one sub-command; it defines
``register(subparsers)`` that adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code). Errors derived from ``ValueError``/``OSError`` are
printed as one line and give exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shlex
import sys


def build_parser() -> argparse.ArgumentParser:
    from virtual_aperture import __version__

    parser = argparse.ArgumentParser(
        prog="virtual-aperture",
        description="Virtual apertures for 4D/5D-STEM: from crowded agglomerates to solved structures.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def _dash_paths(argv: list[str]) -> list[str]:
    """Existing files whose names start with '-' (``-scan.npy``) as ``./-scan.npy``, so argparse
    does not take them for options."""
    import os

    out = list(argv)
    for i, tok in enumerate(out):
        if i and tok.startswith("-") and len(tok) > 1 and not tok.startswith("--") and os.path.lexists(tok):
            try:
                float(tok)  # a negative number (e.g. --center -5 3) stays a number
            except ValueError:
                out[i] = os.path.join(".", tok)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    cli_argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_dash_paths(cli_argv))
    # the exact command, for the reports that say how to rerun them
    args.command_line = shlex.join(["virtual-aperture", *cli_argv])
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (``info … | head -1``) shows here, not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print("virtual-aperture: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, KeyError, IndexError, RuntimeError) as exc:
        print(f"virtual-aperture {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _quiet_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so the interpreter's final
    flush does not print a BrokenPipeError (the recipe of the Python docs, 'signal' module)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
