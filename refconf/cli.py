"""``refconf`` command line: demo, train, evaluate, sample, vectors, check, reproduce, images.

Every command takes ``--help`` and ``--debug`` (those that draw random numbers also
``--seed``). Before any work, every path a command will write is checked (its folder exists
and takes files, the name has the right ending, it is no input and no other output); files
are written atomically. Any error ends with a one-line reason on stderr and exit code 2
(130 after Ctrl-C); ``--debug`` shows the traceback instead (:mod:`refconf.cli_support`).
"""

import argparse
import math
import os
import sys

import numpy as onp

from .cli_data import CHUNK_ROWS, chunk_rows, read_data
from .cli_support import (
    EXIT_INTERRUPTED,
    CommandError,
    OutputPath,
    Parser,
    check_free_space,
    check_outputs,
    dumps_json,
    run_handler,
)

__all__ = ["main", "read_data"]

#: Upper bound of the bytes one value takes in a ``.csv`` written by ``sample``
#: (``%.18e``: sign, 19 digits, point, ``e+308``, comma).
CSV_BYTES_PER_VALUE = 27


def _progress(total, quiet, unit):
    from tqdm.auto import tqdm

    # a bar only for runs of several chunks
    return tqdm(total=total, unit=unit, disable=quiet or total <= CHUNK_ROWS,
                dynamic_ncols=True)


# --- argument types and the parser ---------------------------------------------------------


def _number(convert, ok, expected):
    """An argparse ``type``: ``convert(text)``, refused with "expected <expected>" unless it
    converts and ``ok(value)`` holds."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_seed = _number(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a finite positive number")
_decay = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
_non_negative_float = _number(float, lambda v: 0 <= v < math.inf, "a finite number >= 0")


def _hidden(text):
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def _engine_option(parser):
    parser.add_argument("--engine", choices=["auto", "numpy", "numba", "cupy"],
                        default="auto",
                        help="implementation that runs (auto: numba, a core dependency; "
                             "cupy: a CUDA GPU)")


def _seed_option(parser, what):
    parser.add_argument("--seed", type=_seed, default=0, help=f"random seed of {what}")


def _quiet_option(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_demo(sub):
    demo = sub.add_parser("demo", help="train CONF and a Gaussian baseline on embedded data; "
                                       "write a report folder",
                          description="Fit CONF and a Gaussian on three 2-D toy densities and "
                                      "the 8x8 digits; write metrics.json and plots to OUT.")
    demo.add_argument("--out", default="reports/demo", metavar="FOLDER",
                      help="report folder (created; files in it are replaced)")
    demo.add_argument("--quick", action="store_true", help="tiny settings (a smoke run)")
    _seed_option(demo, "the data and the models")
    demo.set_defaults(handler=_demo)


def _estimator_defaults():
    """:class:`refconf.ConfDensity`'s defaults: the one source of ``train``'s defaults."""
    from .estimator import ConfDensity

    return ConfDensity().get_params()


def _add_train(sub):
    default = _estimator_defaults()
    train = sub.add_parser(
        "train", help="fit a CONF model and save it",
        description="Fit a CONF model by maximum likelihood (Adam, early stopping on a "
                    "validation set) and save it as .npz. With --checkpoint the run can be "
                    "resumed after an interruption (--resume restores every setting from "
                    "the checkpoint).")
    train.add_argument("data", help=".npy/.csv file (rows are samples), 'digits' or "
                                    "'toy:<name>'")
    train.add_argument("--out", required=True, metavar="MODEL.npz", help="model file to write")
    train.add_argument("--val", metavar="FILE",
                       help="validation data (default: hold out --validation-fraction of "
                            "DATA)")
    model = train.add_argument_group("model (fixed by the checkpoint when resuming)")
    model.add_argument("--steps", type=_positive_int, default=default["steps"],
                       help="CONF steps")
    model.add_argument("--m", type=_positive_int, default=default["m"],
                       help="combined convolution layers per step")
    model.add_argument("--hidden", type=_hidden, default=default["hidden"],
                       help="comma-separated widths of the coupling networks' hidden layers")
    model.add_argument("--kind", choices=["symmetric", "circular"], default="symmetric",
                       help="convolution: symmetric (DCT-I) or circular (DFT)")
    model.add_argument("--mixing", choices=["reverse", "permutation", "1x1"],
                       default="reverse", help="mixing layer between steps")
    model.add_argument("--spectrum", choices=["raw", "exp"], default="raw",
                       help="parameterisation of the kernel spectrum")
    model.add_argument("--activation", choices=["tanh", "relu"], default="tanh",
                       help="activation of the coupling networks")
    model.add_argument("--no-actnorm", action="store_true",
                       help="leave out ActNorm (default: one per step)")
    model.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="precision of the parameters and the computation")
    model.add_argument("--alpha-init", type=_positive_float, default=default["alpha_init"],
                       help="initial S-Log gate scale alpha")
    model.add_argument("--no-whiten", action="store_true",
                       help="standardise each column only, without whitening the "
                            "correlations (default: whiten)")
    model.add_argument("--shrinkage", type=_fraction, default=default["shrinkage"],
                       help="shrinkage of the whitening correlation towards the identity")
    model.add_argument("--defensive", type=_fraction, default=default["defensive"],
                       help="weight of the whitening Gaussian in the reported density "
                            "(a defensive mixture that bounds the tails; 0: the flow alone)")
    _seed_option(model, "the initialisation, the validation split and the batches")
    fit = train.add_argument_group("training (taken from the checkpoint when resuming, "
                                   "unless given)")
    fit.add_argument("--epochs", type=_positive_int, default=default["epochs"],
                     help="maximum passes over the data, counting those before a resume")
    fit.add_argument("--batch-size", type=_positive_int, default=default["batch_size"],
                     help="samples per step")
    fit.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate")
    fit.add_argument("--lr-decay", type=_decay, default=1.0,
                     help="learning rate factor per epoch, in (0, 1]")
    fit.add_argument("--patience", type=_positive_int, default=default["patience"],
                     help="early stopping: epochs without a lower validation loss")
    fit.add_argument("--min-delta", type=_non_negative_float, default=default["min_delta"],
                     help="early stopping: a validation loss counts as lower only when it "
                          "is below the best by more than this (nats)")
    fit.add_argument("--validation-fraction", type=_fraction,
                     default=default["validation_fraction"],
                     help="share of DATA held out for early stopping when --val is not given")
    _engine_option(fit)
    files = train.add_argument_group("files")
    files.add_argument("--metrics", metavar="FILE.jsonl",
                       help="write one JSON line per epoch here (default: none)")
    files.add_argument("--checkpoint", metavar="FILE.npz",
                       help="training state, written after every epoch (default: none)")
    files.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint with its settings")
    _quiet_option(train)
    train.set_defaults(handler=_train)


def _add_evaluate(sub):
    evaluate = sub.add_parser("evaluate", help="test NLL of a saved model on data",
                              description="Mean negative log-likelihood (nats per example) "
                                          "and its standard error, computed in chunks.")
    evaluate.add_argument("model", help="model file written by refconf train")
    evaluate.add_argument("data", help=".npy/.csv file, 'digits' or 'toy:<name>'")
    evaluate.add_argument("--json", action="store_true",
                          help="print one JSON object (non-finite values as null, "
                               "explained in 'non_finite')")
    _seed_option(evaluate, "built-in data")
    _engine_option(evaluate)
    _quiet_option(evaluate)
    evaluate.set_defaults(handler=_evaluate)


def _add_sample(sub):
    sample = sub.add_parser("sample", help="draw samples from a saved model",
                            description="Draw samples in chunks and stream them to a .npy "
                                        "or .csv file (written atomically).")
    sample.add_argument("model", help="model file written by refconf train")
    sample.add_argument("-n", "--n-samples", type=_positive_int, default=1000,
                        help="number of samples")
    sample.add_argument("--out", required=True, metavar="FILE",
                        help="output file, .npy or .csv")
    _seed_option(sample, "the samples")
    _engine_option(sample)
    _quiet_option(sample)
    sample.set_defaults(handler=_sample)


def _parser():
    parser = Parser(prog="refconf", description="Convolutional normalizing flows (CONF): "
                                                "train, evaluate, sample, check, reproduce.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_demo(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_sample(sub)
    from .conformance.cli import register

    register(sub)  # `refconf vectors ...` and `refconf check ...`
    from .experiments import register as register_reproduce

    register_reproduce(sub)  # `refconf reproduce table1 ...`
    from .experiments.images import register as register_images

    register_images(sub)  # `refconf images ...`
    parser.commands = sub.choices
    return parser


# --- commands ------------------------------------------------------------------------------


def _demo(args):
    from .demo import report_files, run_demo

    # the report's files in an existing folder must be replaceable too
    inside = report_files() if os.path.isdir(args.out) else []
    check_outputs([OutputPath("--out", args.out, folder=True)]
                  + [OutputPath("--out", os.path.join(args.out, name),
                                (os.path.splitext(name)[1],)) for name in inside])
    run_demo(args.out, quick=args.quick, seed=args.seed)
    print(f"report written to {args.out}")


def _train(args):
    from .cli_train import train

    train(args)


def _load(path, engine):
    from .estimator import ConfDensity

    if not os.path.isfile(path):
        raise CommandError(f"no such model file: {path}")
    return ConfDensity.load(path).set_params(engine=engine)


def _chunks(n, n_features, quiet, unit):
    """``(start, stop)`` of the chunks of ``n`` rows, with a progress bar on long runs."""
    step = chunk_rows(n_features)
    with _progress(n, quiet, unit) as bar:
        for start in range(0, n, step):
            stop = min(n, start + step)
            yield start, stop
            bar.update(stop - start)


def _nll_summary(est, X, quiet):
    """Count, mean and M2 of the finite NLLs (Chan et al.'s pairwise update) and the sum of
    the non-finite ones, over chunks of ``X``."""
    n, mean, m2, n_bad, bad_sum = 0, 0.0, 0.0, 0, 0.0
    for start, stop in _chunks(len(X), X.shape[1], quiet, "row"):
        nll = -est.score_samples(onp.asarray(X[start:stop], dtype=onp.float64))
        finite = onp.isfinite(nll)
        n_bad += int((~finite).sum())
        bad_sum += float(nll[~finite].sum())
        part = nll[finite]
        if part.size:
            delta, total = part.mean() - mean, n + part.size
            m2 += float(((part - part.mean()) ** 2).sum()) + delta**2 * n * part.size / total
            mean += delta * part.size / total
            n = total
    return n, mean, m2, n_bad, bad_sum


def _evaluate(args):
    from .engines import resolve_engine

    est = _load(args.model, args.engine)
    X = read_data(args.data, args.seed, mmap=True)
    if X.shape[1] != est.n_features_in_:
        raise CommandError(f"{args.data} has {X.shape[1]} features, but the model expects "
                           f"{est.n_features_in_} features")
    n, mean, m2, n_bad, bad_sum = _nll_summary(est, X, args.quiet)
    stderr = float(onp.sqrt(m2 / (n - 1) / n)) if n > 1 else 0.0
    result = {"n": len(X), "nll_mean": float((mean * n + bad_sum) / len(X)) if n_bad else mean,
              "nll_stderr": float("nan") if n_bad else stderr,
              "n_non_finite": n_bad, "engine": resolve_engine(args.engine)}
    if n_bad:
        result.update(nll_mean_finite=mean if n else float("nan"), nll_stderr_finite=stderr,
                      note=f"{n_bad} row(s) have a non-finite log-density (overflow); "
                           "nll_*_finite are over the other rows")
    if args.json:
        print(dumps_json(result))
        return
    text = (f"NLL {result['nll_mean']:.4f} ± {result['nll_stderr']:.4f} nats "
            f"(n = {result['n']}, engine {result['engine']})")
    if n_bad:
        text += (f"; {n_bad} row(s) have a non-finite log-density (overflow), the other {n}: "
                 f"{mean:.4f} ± {stderr:.4f} nats")
    print(text)


def _write_npy_header(f, n, n_features, dtype):
    from numpy.lib import format as npy_format

    npy_format.write_array_header_1_0(f, {"descr": npy_format.dtype_to_descr(dtype),
                                          "fortran_order": False, "shape": (n, n_features)})


def _sample(args):
    from .params import atomic_write

    check_outputs([OutputPath("--out", args.out, (".npy", ".csv"))],
                  inputs=[("MODEL", args.model)])
    est = _load(args.model, args.engine)
    n, d = args.n_samples, est.n_features_in_
    npy = args.out.lower().endswith(".npy")
    dtype = onp.dtype(est.dtype)
    check_free_space(args.out, n * d * (dtype.itemsize if npy else CSV_BYTES_PER_VALUE),
                     f"-n {n} samples of {d} features in {os.path.basename(args.out)}")
    rng = onp.random.default_rng(args.seed)  # one stream: chunks give the samples of one draw
    with atomic_write(args.out) as f:
        if npy:
            _write_npy_header(f, n, d, dtype)
        for start, stop in _chunks(n, d, args.quiet, "sample"):
            x = onp.ascontiguousarray(est.sample(stop - start, random_state=rng), dtype=dtype)
            if npy:
                f.write(x.data)
            else:
                onp.savetxt(f, x, delimiter=",")
    print(f"wrote {n} samples to {args.out}")


def main(argv=None):
    """Entry point of the ``refconf`` console script; returns the exit code.

    Every error a user can cause is one line on stderr: exit code 2, or 130 for an
    interrupted run; ``--debug`` shows the traceback instead.
    """
    argv = sys.argv[1:] if argv is None else [os.fspath(a) for a in argv]
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the command's own parser, which names its --help
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except KeyboardInterrupt:
        print("refconf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    args.argv = argv
    return run_handler(args, f"refconf {args.command}")


if __name__ == "__main__":
    sys.exit(main())
