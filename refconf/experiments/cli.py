"""``refconf reproduce table1``: the command line of :func:`reproduce_table1
<refconf.experiments.table1.reproduce_table1>`.

``register(subparsers)`` adds the command to any argparse parser (``refconf``'s own, or
``validation/reproduce_table1.py``'s); ``python -m refconf.experiments table1 ...`` runs
it on its own.
"""

import argparse
import os
import sys

from ..cli_support import HelpFormatter, Parser, run_handler
from ..data import UCI_DATASETS
from .config import CONFIG_FILE, TABLE1_MODELS
from .data import PADDING_CHOICES, TABLE1_DATASETS
from .report import OUTPUTS, format_markdown
from .runner import EXECUTORS
from .table1 import reproduce_table1
from .table2_cli import DATASETS_HELP, MODELS_HELP
from .table2_cli import add_options as add_table2_options
from .table2_cli import command as table2_command
from .trials import MODELS

__all__ = ["main", "register"]

# defaults of Table 1, recognised by identity: table2 then applies its own
_TABLE1_MODELS = list(TABLE1_MODELS)
_TABLE1_OUT = "reports/table1"


def _widths(text):
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def _command(args):
    """Run the command; errors reach the one error path of :func:`refconf.cli_support.run_handler`
    (a bad argument, missing data or a refused resume is one line on stderr, exit code 2)."""
    if args.target == "table2":
        return table2_command(args, None if args.models is _TABLE1_MODELS else args.models,
                              None if args.out is _TABLE1_OUT else args.out)
    report = reproduce_table1(
        args.data_dir, datasets=args.datasets, models=args.models, trials=args.trials,
        subsample=args.subsample, padding=args.padding, out=args.out, config=args.config,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        patience=args.patience, steps=args.steps, hidden=args.hidden, m=args.m,
        seed=args.seed, allow_pickle=args.allow_pickle, save_models=args.save_models,
        progress=not args.quiet, note=args.note, executor=args.executor, jobs=args.jobs,
        scheduler=args.scheduler)
    print(format_markdown(report))
    print("wrote " + ", ".join(os.path.join(args.out, name) for name in OUTPUTS)
          + f" and {os.path.join(args.out, 'trials')}/", file=sys.stderr)
    return 0


def _add_data_options(parser):
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder of the MAF data release or of <name>/{train,val,test}.npy "
                             f"(needed for {', '.join(UCI_DATASETS)})")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help=f"some of {' '.join(TABLE1_DATASETS)}; unset: the MAF sets found "
                             "under --data-dir (none found is an error), digits and every "
                             f"toy set; {DATASETS_HELP} (unset: digits and the sets "
                             "found under --data-dir)")
    parser.add_argument("--models", nargs="+", default=_TABLE1_MODELS, metavar="NAME",
                        help=f"some of {' '.join(MODELS)}; {MODELS_HELP}")
    parser.add_argument("--trials", type=int, default=3,
                        help="trials per model and dataset; trial k uses seed SEED + k")
    parser.add_argument("--subsample", type=int, metavar="N",
                        help="use the first N training rows (a quick run); unset: all")
    parser.add_argument("--padding", choices=PADDING_CHOICES, default="none",
                        help="none: unequal splits; paper: the paper's mean/pixel padding "
                             "(singular, labelled not comparable); noise: N(0,1) column, "
                             "exactly corrected")
    parser.add_argument("--config", metavar="FILE",
                        help=f"JSON file merged over refconf/{CONFIG_FILE} (same schema); "
                             "unset: the shipped file alone")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow reading GAS's pandas pickle from the MAF release")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the first trial and of the digits and toy data")


def _add_overrides(parser):
    group = parser.add_argument_group("overrides of the configured hyperparameters (every "
                                      "dataset; unset: the configured value)")
    group.add_argument("--epochs", type=int, help="maximum epochs")
    group.add_argument("--batch-size", type=int, help="minibatch size")
    group.add_argument("--lr", type=float, help="Adam learning rate")
    group.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    group.add_argument("--steps", type=int, help="flow steps of every model")
    group.add_argument("--hidden", type=_widths, help="conditioner widths, e.g. 100,100")
    group.add_argument("--m", type=int, help="combined layers per CONF step")


def _add_runner_options(parser):
    group = parser.add_argument_group("where the trials run (the numbers are the same under "
                                      "every executor; a rerun skips finished trials)")
    group.add_argument("--executor", choices=EXECUTORS, default="serial",
                       help="serial: one trial after the other; joblib: --jobs local "
                            "processes; dask: a Dask cluster (--scheduler, else a local one "
                            "of --jobs processes; needs refconf[parallel])")
    group.add_argument("--jobs", type=int, metavar="N",
                       help="worker processes of joblib or of the local Dask cluster; unset: "
                            "one per CPU core")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="address of an existing Dask cluster's scheduler, e.g. "
                            "tcp://10.0.0.5:8786 (with --executor dask); unset: start a "
                            "local cluster")


def register(subparsers):
    """Add ``reproduce table1`` to an argparse subparsers object; the parser sets
    ``handler`` (``args -> int`` exit code) with ``set_defaults``."""
    parser = subparsers.add_parser(
        "reproduce", help="reproduce the paper's Table 1 (CONF and baselines, tabular data)",
        formatter_class=HelpFormatter,
        description="Train CONF and baselines on the MAF tabular benchmarks (with "
                    "--data-dir), the 8x8 digits and 2-D toy sets, and report the test NLL "
                    "(nats, mean ± 2 std over trials) next to the paper's Table 1. Writes "
                    f"OUT/{', '.join(OUTPUTS)} and OUT/trials/ (one file per finished "
                    "trial: rerunning the same command resumes). Hyperparameters per dataset "
                    f"come from refconf/{CONFIG_FILE} (the paper gives none for CONF; they "
                    "start from MAF's protocol); --config merges a user file over it and the "
                    "flags below override both.")
    parser.add_argument("target", choices=["table1", "table2"],
                        help="what to reproduce: table1 (density estimation) or table2 "
                             "(VAE posteriors, refconf.experiments.table2)")
    _add_data_options(parser)
    parser.add_argument("--out", default=_TABLE1_OUT,
                        help="output folder (table2: unset, reports/table2)")
    _add_overrides(parser)
    _add_runner_options(parser)
    add_table2_options(parser)
    parser.add_argument("--note", help="a line shown above the table (e.g. what the data are)")
    parser.add_argument("--save-models", action="store_true",
                        help="also save every trained model under OUT/models/")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_command)


def main(argv=None):
    """``python -m refconf.experiments table1 [options]``: the ``refconf reproduce``
    command on its own; returns the exit code."""
    parser = Parser(prog="python -m refconf.experiments")
    register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv if argv[:1] == ["reproduce"] else ["reproduce", *argv])
    return run_handler(args, "refconf reproduce")
