"""``refconf reproduce table2``: the options and the command of :func:`reproduce_table2
<refconf.experiments.table2.reproduce_table2>` on the ``reproduce`` parser of
:mod:`refconf.experiments.cli` (the flags common to both tables, ``--epochs``, ``--out``,
``--executor``, ... mean the same there)."""

import os
import sys

from .table2 import TABLE2_DATASETS, TABLE2_MODELS, reproduce_table2
from .table2_report import OUTPUTS, format_markdown

__all__ = ["TABLE1_ONLY", "add_options", "command"]

#: Options of Table 1 that Table 2 refuses (destination -> flag), with their defaults.
TABLE1_ONLY = {"padding": ("--padding", "none"), "config": ("--config", None),
               "allow_pickle": ("--allow-pickle", False),
               "save_models": ("--save-models", False)}
DEFAULT_OUT = "reports/table2"


def add_options(parser):
    """The options only ``table2`` reads."""
    group = parser.add_argument_group(
        "table2 (VAE posteriors on binary images; also reads --data-dir, --datasets, "
        "--models, --trials, --subsample, --seed, the overrides and the runner options: "
        "--steps is the flow count, --hidden the encoder widths, --m CONF's layers)")
    group.add_argument("--samples", type=int, metavar="S",
                       help="importance samples of the test NLL; unset: 5000 (MNIST), 2000 "
                            "(Caltech), 500 (digits)")
    group.add_argument("--latent", type=int, help="latent size; unset: 64 (MNIST, Caltech), "
                                                  "16 (digits)")
    group.add_argument("--warmup", type=int, metavar="EPOCHS",
                       help="epochs of KL warm-up; unset: 100 (MNIST, Caltech), 10 (digits)")
    group.add_argument("--optimizer", choices=("adamax", "adam"),
                       help="unset: adamax (MNIST, Caltech, the Sylvester protocol), adam "
                            "(digits)")
    group.add_argument("--architecture", choices=("mlp", "gated_conv"),
                       help="encoder and decoder; unset: mlp (gated_conv: the Sylvester "
                            "paper's gated convolutions, 28x28 images only; slow on a CPU)")
    group.add_argument("--conditioner-input", choices=("z1+h", "z1"), default="z1+h",
                       help="what CONF's conditioner sees: z1 and the encoder features "
                            "(amortised), or z1 alone")


def command(args, models, out):
    """Run ``reproduce table2`` from parsed ``args``; ``models`` and ``out`` are None where
    the user gave none (Table 2's defaults then apply)."""
    given = [flag for dest, (flag, default) in TABLE1_ONLY.items()
             if getattr(args, dest) != default]
    if given:
        raise ValueError(f"{', '.join(given)}: Table 1 option(s), not read by table2")
    out = out or DEFAULT_OUT
    report = reproduce_table2(
        args.data_dir, datasets=args.datasets, models=models or TABLE2_MODELS,
        trials=args.trials, out=out, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, patience=args.patience, steps=args.steps, hidden=args.hidden,
        m=args.m, latent=args.latent, warmup=args.warmup, samples=args.samples,
        conditioner_input=args.conditioner_input, optimizer=args.optimizer,
        architecture=args.architecture,
        subsample=args.subsample, seed=args.seed,
        note=args.note, progress=not args.quiet, executor=args.executor, jobs=args.jobs,
        scheduler=args.scheduler)
    print(format_markdown(report))
    print("wrote " + ", ".join(os.path.join(out, name) for name in OUTPUTS)
          + f" and {os.path.join(out, 'trials')}/", file=sys.stderr)
    return 0


DATASETS_HELP = (f"table2: some of {' '.join(TABLE2_DATASETS)}, from --data-dir holding "
                 "binarized_mnist_{train,valid,test}.amat and/or "
                 "caltech101_silhouettes_28_split1.mat")
MODELS_HELP = (f"table2: some of {' '.join(TABLE2_MODELS)}, all five when unset; the "
               "default below is table1's")
