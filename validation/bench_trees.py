"""Claim: a change to the package does not slow the numba training step.

Times the same training step (the ``train`` worker of ``validation/bench_engines.py``:
D = 8, 5 CONF steps, m = 2, MLP 64 x 64, batch 512, 10 warm-up and 40 timed steps, one
thread) from two source trees, alternating their worker processes so that both see the
same machine load, and prints per tree and dtype the median of the per-process medians
with its range, and the ratio after / before. Exits non-zero when a median ratio exceeds
``--limit`` (default 1.05).

Each tree is a checkout with its own ``validation/bench_engines.py``, e.g. the base of a
change::

    git worktree add /tmp/base bbde77e
    python validation/bench_trees.py --before /tmp/base --after . --repeats 5

Every worker runs with BLAS, OpenMP and numba pinned to one thread and with glibc's malloc
trimming off (page-fault storms otherwise dominate a 5 ms step).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

MALLOC = "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=1073741824"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
WORKLOAD = {"task": "train", "impl": "refconf-numba", "dim": 8, "flow_steps": 5, "m": 2,
            "hidden": [64, 64], "kind": "symmetric", "batch": 512, "warmup": 10, "steps": 40,
            "threads": 1}


def step_ms(tree, dtype):
    """Median wall time of one training step in ms, in a fresh worker process of ``tree``."""
    env = dict(os.environ, GLIBC_TUNABLES=MALLOC, PYTHONPATH=os.path.abspath(tree),
               **{name: "1" for name in THREAD_VARIABLES})
    worker = os.path.join(tree, "validation", "bench_engines.py")
    done = subprocess.run([sys.executable, worker, "--worker",
                           json.dumps(dict(WORKLOAD, dtype=dtype))],
                          capture_output=True, text=True, env=env, cwd=tree, check=False)
    if done.returncode:
        raise RuntimeError(f"worker of {tree} failed:\n{done.stderr[-2000:]}")
    return statistics.median(json.loads(done.stdout.strip().splitlines()[-1])["wall"]) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the reference source tree")
    parser.add_argument("--after", default=".", help="the changed source tree")
    parser.add_argument("--repeats", type=int, default=5, help="processes per tree and dtype")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--limit", type=float, default=1.05,
                        help="largest accepted median ratio after / before")
    args = parser.parse_args(argv)
    trees = {"before": args.before, "after": args.after}
    dtypes = args.dtypes.split(",")
    times = {(name, dtype): [] for name in trees for dtype in dtypes}
    print(f"load at start: {os.getloadavg()[0]:.2f}", flush=True)
    for r in range(args.repeats):
        for dtype in dtypes:
            # alternate which tree goes first, so neither always runs on a warmer machine
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                times[name, dtype].append(step_ms(trees[name], dtype))
    print(f"load at end: {os.getloadavg()[0]:.2f}")
    failed = False
    for dtype in dtypes:
        medians = {}
        for name in trees:
            values = times[name, dtype]
            medians[name] = statistics.median(values)
            print(f"{dtype} {name:6s}: {medians[name]:.3f} ms per step "
                  f"[{min(values):.3f}-{max(values):.3f}], {len(values)} processes")
        ratio = medians["after"] / medians["before"]
        failed |= ratio > args.limit
        print(f"{dtype} after / before: {ratio:.3f}")
    print("CLAIM FAILS" if failed else "CLAIM HOLDS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
