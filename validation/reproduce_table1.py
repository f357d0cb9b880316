"""Run the paper's Table 1 harness: ``python validation/reproduce_table1.py --data-dir DIR
[options]`` is ``refconf reproduce table1 --data-dir DIR [options]``
(:mod:`refconf.reproduce`; ``--help`` lists the options).

Claim: with the MAF data release in DIR, CONF and the Real NVP, Glow and MAF baselines
trained by the same loop on the same data give test NLLs (nats, mean and 2 std over
trials) that can be set next to the paper's Table 1; the run writes OUT/results.json and
OUT/table1.md and exits non-zero (2) with a one-line reason when data are missing.
"""

import argparse
import sys

from refconf.reproduce import register


def main(argv=None):
    parser = argparse.ArgumentParser(prog="reproduce_table1.py")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reproduce", "table1", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
