"""Command-line entry points of the conformance kit: ``vectors`` and ``check``.

:func:`register` adds them to the ``refconf`` command's argparse subparsers; every
subcommand sets ``handler``, a function ``handler(args) -> exit code``. Standalone:
``python -m refconf.conformance.cli vectors write DIR``.

Exit codes of ``check``: 0 the port conforms (every checked case passed, the golden set
is canonical, and no case is missing unless ``--allow-missing`` allows it), 1 otherwise,
2 on unusable input (no golden manifest, an edited golden set, no result directory, a
golden directory given as results, a bad option, a ``--json`` path that cannot be
written), as one line on standard error through the command line's one error path.
"""

import json
import sys

from ..cli_support import OutputPath, Parser, check_outputs, run_handler
from ..params import atomic_write
from .profiles import PRECISIONS

__all__ = ["main", "register"]


def _write(args):
    from .vectors import golden_identity, write_vectors

    written = write_vectors(args.directory)
    identity, _ = golden_identity(args.directory)
    print(f"wrote {len(written)} cases and manifest.json to {args.directory} "
          f"(digest {identity['digest'][:16]})")
    return 0


def _list(args):
    from .vectors import cases

    for case in cases(args.directory):
        only = f" [float64-only: {case.float64_only}]" if case.float64_only else ""
        print(f"{case.name:<34} {case.kind:<28} {case.description}{only}")
    return 0


def _check(args):
    from .check import check

    if args.json not in (None, "-"):  # checked before any work
        check_outputs([OutputPath("--json", args.json, (".json",))],
                      inputs=[("GOLDEN_DIR", args.golden_dir), ("RESULT_DIR", args.result_dir)])
    allow = True if args.allow_missing == [] else (args.allow_missing or False)
    report = check(args.golden_dir, args.result_dir, allow_missing=allow,
                   precision=args.precision, tolerance_factor=args.tolerance_factor)
    if args.json == "-":
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.format_table(failures_only=args.failures_only))
        if args.json:
            text = json.dumps(report.to_dict(), indent=1) + "\n"
            with atomic_write(args.json) as f:
                f.write(text.encode("utf-8"))
    return 0 if report.passed else 1


def register(subparsers):
    """Add ``vectors {write,list}`` and ``check`` to an argparse subparsers object.

    Each leaf parser sets ``handler`` (``args -> int`` exit code) with ``set_defaults``.
    """
    vectors = subparsers.add_parser(
        "vectors", help="golden conformance vectors for ports of CONF",
        description="Golden test vectors (manifest.json + one .npz per case) for checking "
                    "another implementation of CONF.")
    actions = vectors.add_subparsers(dest="vectors_action", required=True, metavar="ACTION",
                                     help="write: write the vectors; list: list the cases")
    write = actions.add_parser("write", help="write the vectors to DIR (deterministic)")
    write.add_argument("directory", metavar="DIR", help="created if needed")
    write.set_defaults(handler=_write)
    listing = actions.add_parser("list", help="list the cases (of DIR, or built in)")
    listing.add_argument("directory", metavar="DIR", nargs="?", default=None,
                         help="a vector directory (default: the built-in cases)")
    listing.set_defaults(handler=_list)

    check = subparsers.add_parser(
        "check", help="compare another implementation's results with golden vectors",
        description="Compare RESULT_DIR/<case>.npz (outputs computed by the port from the "
                    "golden inputs) with GOLDEN_DIR; print the golden set's identity, "
                    "errors, tolerances, diagnoses and the verdict. Exit code 0 only if "
                    "the port conforms, 1 if not, 2 on unusable input.")
    check.add_argument("golden_dir", metavar="GOLDEN_DIR",
                       help="written by `refconf vectors write`")
    check.add_argument("result_dir", metavar="RESULT_DIR",
                       help="the port's <case>.npz files (not the golden directory)")
    check.add_argument("--json", metavar="FILE", default=None,
                       help="also write the report as JSON to FILE ('-': print JSON only; "
                            "default: none)")
    check.add_argument("--precision", choices=PRECISIONS, default="float64",
                       help="tolerance profile: float64, or float32 with per-case "
                            "tolerances from each case's conditioning (float64-only cases "
                            "skipped) (default: %(default)s)")
    check.add_argument("--tolerance-factor", type=float, default=1.0, metavar="F",
                       help="multiply every tolerance by F; anything but 1 is printed in "
                            "the verdict as not the built-in profile (default: %(default)s)")
    check.add_argument("--allow-missing", nargs="*", metavar="KIND", default=None,
                       help="pass although cases have no result file: alone, any case; "
                            "with KINDs, only cases of those kinds (missing cases are "
                            "listed and counted either way; default: none allowed)")
    check.add_argument("--failures-only", action="store_true", default=False,
                       help="list only failing outputs and cases (default: every output)")
    check.set_defaults(handler=_check)


def main(argv=None):
    """Standalone entry point: ``python -m refconf.conformance.cli ...``; errors take the
    command line's one path (:func:`refconf.cli_support.run_handler`)."""
    parser = Parser(prog="refconf", description="CONF conformance kit")
    register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    args = parser.parse_args(argv)
    return run_handler(args, f"refconf {args.command}")


if __name__ == "__main__":
    sys.exit(main())
