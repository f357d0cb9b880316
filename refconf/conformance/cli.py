"""Command-line entry points of the conformance kit: ``vectors`` and ``check``.

:func:`register` adds them to the ``refconf`` command's argparse subparsers; every
subcommand sets ``handler``, a function ``handler(args) -> exit code``. Standalone:
``python -m refconf.conformance.cli vectors write DIR``.

Exit codes of ``check``: 0 every case passed (and none is missing, unless
``--allow-missing``), 1 otherwise, 2 on unusable input (no golden manifest, no result
directory).
"""

import argparse
import json
import sys

from ..params import atomic_write

__all__ = ["main", "register"]


def _error(command, err):
    print(f"refconf {command}: error: {err}", file=sys.stderr)
    return 2


def _write(args):
    from .vectors import write_vectors

    try:
        written = write_vectors(args.directory)
    except (ValueError, OSError) as err:
        return _error("vectors write", err)
    print(f"wrote {len(written)} cases and manifest.json to {args.directory}")
    return 0


def _list(args):
    from .vectors import cases

    try:
        for case in cases(args.directory):
            print(f"{case.name:<34} {case.kind:<28} {case.description}")
    except (ValueError, OSError) as err:
        return _error("vectors list", err)
    return 0


def _check(args):
    from .check import check

    try:
        report = check(args.golden_dir, args.result_dir, allow_missing=args.allow_missing)
    except (ValueError, OSError) as err:
        return _error("check", err)
    if args.json == "-":
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.format_table())
        if args.json:
            text = json.dumps(report.to_dict(), indent=1) + "\n"
            try:
                with atomic_write(args.json) as f:
                    f.write(text.encode("utf-8"))
            except OSError as err:
                return _error("check", err)
    return 0 if report.passed else 1


def register(subparsers):
    """Add ``vectors {write,list}`` and ``check`` to an argparse subparsers object.

    Each leaf parser sets ``handler`` (``args -> int`` exit code) with ``set_defaults``.
    """
    vectors = subparsers.add_parser(
        "vectors", help="golden conformance vectors for ports of CONF",
        description="Golden test vectors (manifest.json + one .npz per case) for checking "
                    "another implementation of CONF.")
    actions = vectors.add_subparsers(dest="vectors_action", required=True)
    write = actions.add_parser("write", help="write the vectors to DIR (deterministic)")
    write.add_argument("directory", metavar="DIR")
    write.set_defaults(handler=_write)
    listing = actions.add_parser("list", help="list the cases (of DIR, or built in)")
    listing.add_argument("directory", metavar="DIR", nargs="?")
    listing.set_defaults(handler=_list)

    check = subparsers.add_parser(
        "check", help="compare another implementation's results with golden vectors",
        description="Compare RESULT_DIR/<case>.npz (outputs computed from the golden inputs) "
                    "with GOLDEN_DIR; print errors, tolerances and diagnoses. Exit code 0 "
                    "only if every case passes.")
    check.add_argument("golden_dir", metavar="GOLDEN_DIR")
    check.add_argument("result_dir", metavar="RESULT_DIR")
    check.add_argument("--json", metavar="FILE",
                       help="also write the report as JSON to FILE ('-': print JSON only)")
    check.add_argument("--allow-missing", action="store_true",
                       help="pass although some cases have no result file (still listed)")
    check.set_defaults(handler=_check)


def main(argv=None):
    """Standalone entry point: ``python -m refconf.conformance.cli ...``."""
    parser = argparse.ArgumentParser(prog="refconf", description="CONF conformance kit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
