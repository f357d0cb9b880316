"""``refconf`` command line: demo, train, evaluate, sample, vectors, check, reproduce.

Every command takes ``--help`` and ``--seed``; bad input ends with a non-zero exit code
and a one-line reason on stderr.
"""

import argparse
import json
import os
import sys

import numpy as onp

__all__ = ["main", "read_data"]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def read_data(source, seed=0):
    """Read a data matrix: a ``.npy`` or ``.csv`` file (rows are samples), or a built-in
    set: ``digits`` (training split) or ``toy:<name>`` (20,000 samples)."""
    if source == "digits":
        from .data import load_digits

        return load_digits(random_state=seed)[0]
    if source.startswith("toy:"):
        from .data import sample_toy

        try:
            return sample_toy(source[4:], 20000, random_state=seed)
        except ValueError as err:
            raise CommandError(str(err)) from None
    if not os.path.isfile(source):
        raise CommandError(f"no such file: {source} (expected a .npy or .csv file, "
                           "'digits' or 'toy:<name>')")
    try:
        if source.endswith(".npy"):
            X = onp.load(source, allow_pickle=False)
        elif source.endswith(".csv"):
            X = onp.loadtxt(source, delimiter=",", ndmin=2)
        else:
            raise CommandError(f"{source}: unknown file type; expected .npy or .csv")
    except (ValueError, OSError) as err:
        raise CommandError(f"{source}: cannot read as a numeric matrix ({err})") from None
    if X.ndim != 2 or not onp.issubdtype(X.dtype, onp.number):
        raise CommandError(f"{source}: expected a 2-D numeric array (samples x features), "
                           f"got shape {X.shape} and dtype {X.dtype}")
    bad = ~onp.all(onp.isfinite(X), axis=1)
    if onp.any(bad):
        raise CommandError(f"{source}: {int(bad.sum())} row(s) contain NaN or Inf "
                           f"(first: row {int(onp.argmax(bad))}); expected finite data")
    return X.astype(onp.float64)


def _write_array(path, X):
    """Write samples to ``.npy`` or ``.csv`` atomically."""
    from .params import atomic_write

    with atomic_write(path) as f:
        if path.endswith(".npy"):
            onp.save(f, X)
        else:
            onp.savetxt(f, X, delimiter=",")


def _hidden(text):
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def _engine_option(parser):
    parser.add_argument("--engine", choices=["auto", "numpy", "numba", "cupy"],
                        default="auto",
                        help="implementation that runs (auto: numba when installed; "
                             "cupy: a CUDA GPU)")


def _parser():
    parser = argparse.ArgumentParser(prog="refconf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train CONF and a Gaussian baseline on embedded data; "
                                       "write a report folder")
    demo.add_argument("--out", default="reports/demo", help="report folder")
    demo.add_argument("--quick", action="store_true", help="tiny settings (a smoke run)")
    demo.add_argument("--seed", type=int, default=0)

    train = sub.add_parser("train", help="fit a CONF model and save it")
    train.add_argument("data", help=".npy/.csv file, 'digits' or 'toy:<name>'")
    train.add_argument("--out", required=True, help="model file to write (.npz)")
    train.add_argument("--val", help="validation data (default: hold out a fraction)")
    train.add_argument("--steps", type=int, default=4)
    train.add_argument("--m", type=int, default=2)
    train.add_argument("--hidden", type=_hidden, default=(64, 64), help="e.g. 64,64")
    train.add_argument("--kind", choices=["symmetric", "circular"], default="symmetric")
    train.add_argument("--mixing", choices=["reverse", "permutation", "1x1"], default="reverse")
    train.add_argument("--spectrum", choices=["raw", "exp"], default="raw")
    train.add_argument("--activation", choices=["tanh", "relu"], default="tanh")
    train.add_argument("--no-actnorm", action="store_true")
    train.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="precision of the parameters and the computation")
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--lr-decay", type=float, default=1.0)
    train.add_argument("--patience", type=int, default=10)
    train.add_argument("--metrics", help="write per-epoch metrics as JSON lines here")
    train.add_argument("--checkpoint", help="checkpoint file, written every epoch")
    train.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _engine_option(train)

    evaluate = sub.add_parser("evaluate", help="test NLL of a saved model on data")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of built-in data")
    _engine_option(evaluate)

    sample = sub.add_parser("sample", help="draw samples from a saved model")
    sample.add_argument("model")
    sample.add_argument("-n", "--n-samples", type=int, default=1000)
    sample.add_argument("--out", required=True, help="output .npy or .csv")
    sample.add_argument("--seed", type=int, default=0)
    _engine_option(sample)

    from .conformance.cli import register

    register(sub)  # `refconf vectors ...` and `refconf check ...`
    from .experiments import register as register_reproduce

    register_reproduce(sub)  # `refconf reproduce table1 ...`
    return parser


def _load(path, engine):
    from .estimator import ConfDensity

    if not os.path.isfile(path):
        raise CommandError(f"no such model file: {path}")
    return ConfDensity.load(path).set_params(engine=engine)


def _run(args):
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, quick=args.quick, seed=args.seed)
        print(f"report written to {args.out}")
    elif args.command == "train":
        from .estimator import ConfDensity

        if args.resume and not args.checkpoint:
            raise CommandError("--resume needs --checkpoint")
        if not args.out.endswith(".npz"):
            raise CommandError(f"{args.out}: the model file must end in .npz")
        X = read_data(args.data, args.seed)
        X_val = read_data(args.val, args.seed) if args.val else None
        est = ConfDensity(steps=args.steps, m=args.m, hidden=args.hidden, kind=args.kind,
                          mixing=args.mixing, spectrum=args.spectrum,
                          activation=args.activation,
                          actnorm=not args.no_actnorm, epochs=args.epochs,
                          batch_size=args.batch_size, learning_rate=args.lr,
                          lr_decay=args.lr_decay, patience=args.patience,
                          random_state=args.seed, verbose=not args.quiet,
                          engine=args.engine, dtype=args.dtype)
        est.fit(X, X_val=X_val, metrics_path=args.metrics, checkpoint_path=args.checkpoint,
                resume=args.resume)
        est.save(args.out)
        print(f"saved {args.out} ({est.stopped_reason_}, {len(est.history_)} epochs, "
              f"engine {est.engine_})")
    elif args.command == "evaluate":
        from .engines import resolve_engine

        est = _load(args.model, args.engine)
        X = read_data(args.data, args.seed)
        nll = -est.score_samples(X)
        result = {"n": int(nll.size), "nll_mean": float(nll.mean()),
                  "nll_stderr": float(nll.std(ddof=1) / onp.sqrt(nll.size)) if nll.size > 1 else 0.0,
                  "engine": resolve_engine(args.engine)}
        print(json.dumps(result) if args.json else
              f"NLL {result['nll_mean']:.4f} ± {result['nll_stderr']:.4f} nats "
              f"(n = {result['n']}, engine {result['engine']})")
    elif args.command == "sample":
        if args.n_samples < 1:
            raise CommandError(f"-n must be positive, got {args.n_samples}")
        est = _load(args.model, args.engine)
        if not args.out.endswith((".npy", ".csv")):
            raise CommandError(f"{args.out}: output must end in .npy or .csv")
        _write_array(args.out, est.sample(args.n_samples, random_state=args.seed))
        print(f"wrote {args.n_samples} samples to {args.out}")


def main(argv=None):
    """Entry point of the ``refconf`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None):
        return args.handler(args)
    try:
        _run(args)
    except (CommandError, ValueError, FileNotFoundError) as err:
        reason = " ".join(str(err).split())  # one line, whatever the message
        print(f"refconf {args.command}: error: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
