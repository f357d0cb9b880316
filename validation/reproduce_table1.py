"""Run the paper's Table 1 harness: ``python validation/reproduce_table1.py [options]`` is
``refconf reproduce table1 [options]`` (:mod:`refconf.experiments`; ``--help`` lists the
options), plus ``--synthetic-uci DIR``, which first writes synthetic stand-ins for the MAF
datasets into DIR (converted layout, the real dimensions 6, 8, 21, 43 and 63, small
splits) and runs on them, for a smoke test of the whole pipeline where the MAF data are
not available. Their NLLs say nothing about the paper's: the table says so in its note.

Claim: with the MAF data release in DIR, CONF and the Real NVP, Glow and MAF baselines
trained by the same loop on the same data give test NLLs (nats, mean and 2 std over
trials) that can be set next to the paper's Table 1; the run writes OUT/results.json,
results.csv, table1.md and config_used.json and exits non-zero (2) with a one-line reason
when data are missing.

Smoke test on this machine (the synthetic stand-ins, digits and one toy set, 3 trials;
about 3 minutes on 2 cores)::

    python validation/reproduce_table1.py --synthetic-uci /tmp/uci-fixtures \\
        --datasets power gas hepmass miniboone bsds300 digits toy:two_moons \\
        --trials 3 --subsample 1000 --epochs 10 --steps 3 --hidden 32 --m 1 --lr 1e-3 \\
        --quiet --out validation/out/table1_smoke
"""

import argparse
import os
import sys

import numpy as np

from refconf.data import UCI_SHAPES
from refconf.experiments.cli import main as reproduce_main
from refconf.params import atomic_write

SYNTHETIC_SIZES = (2000, 300, 500)  # train, val, test rows per stand-in
SYNTHETIC_NOTE = ("the MAF datasets here are SYNTHETIC stand-ins of the same dimensions "
                  "(validation/reproduce_table1.py --synthetic-uci), not the MAF data: their "
                  "NLLs are not comparable with the paper's numbers")


def write_synthetic_uci(root, seed=0):
    """Write ``root/<name>/{train,val,test}.npy`` for every MAF dataset: ``D`` columns
    (``UCI_SHAPES``) of a standardised, non-Gaussian, correlated density,
    ``x = tanh(z A) + 0.1 e`` with ``z`` and ``e`` standard normal and a random mixing
    ``A``, so the flows have something to learn beyond a Gaussian."""
    rng = np.random.default_rng(seed)
    for name, (dim, *_) in UCI_SHAPES.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim) * 2.0
        splits = [np.tanh(rng.normal(size=(n, dim)) @ mixing) + 0.1 * rng.normal(size=(n, dim))
                  for n in SYNTHETIC_SIZES]
        mean, std = splits[0].mean(axis=0), splits[0].std(axis=0)
        for split, x in zip(("train", "val", "test"), splits):
            with atomic_write(os.path.join(folder, f"{split}.npy")) as f:
                np.save(f, (x - mean) / std)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--synthetic-uci", metavar="DIR")
    own, rest = pre.parse_known_args(argv)
    if own.synthetic_uci is not None:
        if "--data-dir" in rest:
            print("reproduce_table1.py: error: --synthetic-uci and --data-dir exclude each "
                  "other", file=sys.stderr)
            return 2
        write_synthetic_uci(own.synthetic_uci)
        rest = ["--data-dir", own.synthetic_uci, *rest]
        if "--note" not in rest:
            rest += ["--note", SYNTHETIC_NOTE]
    return reproduce_main(["table1", *rest])


if __name__ == "__main__":
    sys.exit(main())
