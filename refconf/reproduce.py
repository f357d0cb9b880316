"""The paper's Table 1 harness: CONF and baselines on the MAF tabular benchmarks.

``refconf reproduce table1 --data-dir DIR`` (or :func:`reproduce_table1`) trains every
model on every dataset (:func:`refconf.data.load_uci`) for several trials with different
seeds, with the same training loop (:func:`refconf.train.fit`: Adam, early stopping on
the validation split, best-validation parameters), and reports the test negative
log-likelihood in nats per example as the paper's Table 1 does: the mean and 2 standard
deviations over trials, next to the published numbers (:data:`PAPER_TABLE1`). It writes
``results.json`` and ``table1.md`` (atomically) and prints the table.

Padding (``padding``):

- ``"none"`` (default): odd dimensions are split unequally, ``d1 = floor(D/2)``,
  ``d2 = ceil(D/2)``. Comparable with the paper's baseline rows.
- ``"paper"``: the paper's equal-split padding: HEPMASS and MINIBOONE get the per-sample
  mean appended, BSDS300 the average of its dropped pixel's two neighbours. The padded data
  lie on a hyperplane, their density is singular and the likelihood unbounded: these NLLs
  are labelled NOT comparable with unpadded ones (``validation/padding_caveat.py`` shows
  the effect).
- ``"noise"``: odd dimensions get one ``N(0, 1)`` column, and its exact log-density
  (:func:`refconf.data.noise_padding_log_density`) is subtracted, so the NLLs stay
  comparable with unpadded ones.

The padding is applied to every model of a run. The model hyperparameters are refconf's
choices (the paper does not give them); see :func:`reproduce_table1`.
"""

import argparse
import json
import os
import sys
import time

import autograd.numpy as anp
import numpy as onp
from threadpoolctl import threadpool_limits

from .baselines import MODEL_NAMES, build_model
from .data import UCI_DATASETS, load_uci, noise_padding_log_density, pad_for_equal_split
from .params import atomic_write, save_model
from .train import fit

__all__ = ["PADDING_CHOICES", "PAPER_CITATION", "PAPER_TABLE1", "TABLE1_MODELS",
           "dataset_padding", "format_markdown", "register", "reproduce_table1"]

PAPER_CITATION = (
    "M. Karami, J. Sohl-Dickstein, L. Dinh, D. Duckworth and D. Schuurmans, \"Symmetric "
    "Convolutional Flow\" (2019), Table 1: average test negative log-likelihood in nats, "
    "error bars 2 standard deviations over 3 trials. The baseline rows are quoted there "
    "from the MAF, TAN, NAF (MAF-DDSF) and FFJORD papers.")
# (mean, 2 std) per model and dataset, as printed in the paper's Table 1.
PAPER_TABLE1 = {
    "made": {"power": (3.08, 0.03), "gas": (-3.56, 0.04), "hepmass": (20.98, 0.02),
             "miniboone": (15.59, 0.50), "bsds300": (-148.85, 0.28)},
    "maf": {"power": (-0.24, 0.01), "gas": (-10.08, 0.02), "hepmass": (17.70, 0.02),
            "miniboone": (11.75, 0.44), "bsds300": (-155.69, 0.28)},
    "tan": {"power": (-0.48, 0.01), "gas": (-11.19, 0.02), "hepmass": (15.12, 0.02),
            "miniboone": (11.01, 0.48), "bsds300": (-157.03, 0.07)},
    "maf_ddsf": {"power": (-0.62, 0.01), "gas": (-11.96, 0.33), "hepmass": (15.09, 0.40),
                 "miniboone": (8.86, 0.15), "bsds300": (-157.73, 0.04)},
    "realnvp": {"power": (-0.17, 0.01), "gas": (-8.33, 0.14), "hepmass": (18.71, 0.02),
                "miniboone": (13.55, 0.49), "bsds300": (-153.28, 1.78)},
    "glow": {"power": (-0.17, 0.01), "gas": (-8.15, 0.40), "hepmass": (18.92, 0.08),
             "miniboone": (11.35, 0.07), "bsds300": (-155.07, 0.03)},
    "ffjord": {"power": (-0.46, 0.01), "gas": (-8.59, 0.12), "hepmass": (14.92, 0.08),
               "miniboone": (10.43, 0.04), "bsds300": (-157.40, 0.19)},
    "conf": {"power": (-0.49, 0.003), "gas": (-10.92, 0.10), "hepmass": (11.46, 0.46),
             "miniboone": (7.03, 0.01), "bsds300": (-164.72, 0.37)},
}
# The paper's CONF numbers for these were obtained on padded data (its section 3.1).
PAPER_PADDED = ("hepmass", "miniboone", "bsds300")
TABLE1_MODELS = ("conf", "realnvp", "glow", "maf")
PADDING_CHOICES = ("none", "paper", "noise")
DISPLAY_NAMES = {"conf": "CONF", "realnvp": "Real NVP", "glow": "Glow", "maf": "MAF",
                 "gaussian": "Gaussian", "made": "MADE", "tan": "TAN", "maf_ddsf": "MAF-DDSF",
                 "ffjord": "FFJORD"}
PADDING_LABELS = {
    "none": "Padding: none. Odd dimensions use unequal coupling splits (d1 = floor(D/2), "
            "d2 = ceil(D/2)); these NLLs are comparable with each other and with the paper's "
            "baseline rows.",
    "paper": "Padding: paper (NOT comparable). HEPMASS and MINIBOONE have the per-sample mean "
             "appended, BSDS300 the average of its dropped pixel's two neighbours (paper, "
             "section 3.1). The appended value is a function of the others, so the padded "
             "density is singular and the likelihood unbounded: cells marked † are NOT "
             "comparable with unpadded NLLs, the paper's baseline rows included "
             "(validation/padding_caveat.py shows the effect).",
    "noise": "Padding: noise. Odd dimensions get one N(0, 1) column whose exact log-density "
             "is subtracted (refconf.data.noise_padding_log_density), so the NLLs are "
             "comparable with unpadded ones (in expectation an upper bound on the model's "
             "marginal NLL).",
}
SINGULAR_PADDINGS = ("paper_mean", "paper_bsds")
_EVAL_BATCH = 8192


def dataset_padding(name, dim, padding):
    """The :func:`refconf.data.pad_for_equal_split` mode that ``padding`` (one of
    :data:`PADDING_CHOICES`) applies to dataset ``name`` of dimension ``dim``: even
    dimensions are never padded; ``"paper"`` is ``"paper_bsds"`` for BSDS300's 63
    columns and ``"paper_mean"`` otherwise.

    Examples
    --------
    >>> [dataset_padding(n, d, "paper") for n, d in [("power", 6), ("hepmass", 21),
    ...                                               ("bsds300", 63)]]
    ['none', 'paper_mean', 'paper_bsds']
    """
    if padding not in PADDING_CHOICES:
        raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}")
    if padding == "none" or dim % 2 == 0:
        return "none"
    if padding == "noise":
        return "noise"
    return "paper_bsds" if name == "bsds300" and dim == 63 else "paper_mean"


def _positive_int(value, name, allow_none=False):
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, onp.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _names(values, valid, what):
    values = [v.lower() if isinstance(v, str) else v for v in values]
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise ValueError(f"unknown {what} {unknown}; expected some of {', '.join(valid)}")
    return list(dict.fromkeys(values))


def _load(name, data_dir, padding, subsample, allow_pickle, seed):
    """Splits of one dataset, training rows cut to ``subsample``, padded; the test
    correction (noise padding's log-density, else 0) and a description."""
    train, val, test = load_uci(name, data_dir, allow_pickle=allow_pickle)
    n_train_full = len(train)
    if subsample is not None:
        train = train[:subsample]
    mode = dataset_padding(name, train.shape[1], padding)
    if mode == "noise":  # independent noise per split
        splits = [pad_for_equal_split(x, mode, random_state=(seed, i))
                  for i, x in enumerate((train, val, test))]
    else:
        splits = [pad_for_equal_split(x, mode) for x in (train, val, test)]
    correction = noise_padding_log_density(splits[2]) if mode == "noise" else 0.0
    info = {"dim": int(train.shape[1]), "dim_model": int(splits[0].shape[1]),
            "padding_applied": mode, "comparable_with_unpadded": mode not in SINGULAR_PADDINGS,
            "n_train": len(train), "n_train_available": n_train_full, "n_val": len(val),
            "n_test": len(test)}
    return splits, correction, info


def _mean_nll(flow, x, correction):
    log_p = onp.concatenate([flow.log_prob(x[i:i + _EVAL_BATCH])
                             for i in range(0, len(x), _EVAL_BATCH)])
    value = float(-onp.mean(log_p - correction))
    return value if onp.isfinite(value) else None


def _summary(values):
    finite = [v for v in values if v is not None]
    if len(finite) < len(values) or not finite:
        return None, None
    two_std = 2.0 * float(onp.std(finite, ddof=1)) if len(finite) > 1 else None
    return float(onp.mean(finite)), two_std


def reproduce_table1(data_dir, datasets=UCI_DATASETS, models=TABLE1_MODELS, trials=3,
                     subsample=None, epochs=100, padding="none", out=None, allow_pickle=False,
                     steps=5, hidden=(100, 100), m=2, batch_size=512, learning_rate=1e-3,
                     patience=10, clip_norm=10.0, seed=0, save_models=False, progress=True,
                     model_kwargs=None, log=None):
    """Train ``models`` on ``datasets`` and compare the test NLL with the paper's Table 1.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Directory of the MAF data (release or converted layout, see
        :func:`refconf.data.load_uci`). Every dataset is loaded before any training, so
        missing data fail at once.
    datasets : sequence of str
        Names from :data:`refconf.data.UCI_DATASETS`.
    models : sequence of str
        Names from :data:`refconf.baselines.MODEL_NAMES` (``"gaussian"`` is fitted in
        closed form, without training).
    trials : int
        Runs per model and dataset; trial ``k`` uses seed ``seed + k`` for the fixed
        architecture choices, the initialisation and the batch order.
    subsample : int, optional
        Use only the first ``subsample`` training rows (quick runs); validation and test
        sets are used whole.
    epochs : int
        Maximum epochs; early stopping with ``patience`` on the validation NLL returns
        the best-validation parameters.
    padding : {"none", "paper", "noise"}
        See the module docstring.
    out : str or os.PathLike, optional
        Folder for ``results.json``, ``table1.md`` and, with ``save_models``,
        ``models/<dataset>-<model>-trial<k>.npz`` (:func:`refconf.params.save_model`).
    allow_pickle : bool
        Passed to :func:`refconf.data.load_uci` (GAS's release file is a pickle).
    steps, hidden, m
        Architecture shared by the flows: ``steps`` steps (couplings, MADEs) with
        conditioner widths ``hidden``; ``m`` combined layers per CONF step.
    batch_size, learning_rate, patience, clip_norm
        Training settings of :func:`refconf.train.fit`.
    seed : int
    save_models : bool
    progress : bool
        tqdm bars during training.
    model_kwargs : dict, optional
        Per-model overrides, e.g. ``{"conf": {"kind": "circular"}}``, passed to
        :func:`refconf.baselines.build_model`.
    log : callable, optional
        Receives one progress line per trial (default: print to stderr).

    Returns
    -------
    dict
        The content of ``results.json`` (rewritten after every model and dataset, with
        ``complete`` false until the end): ``paper`` (citation and table), ``padding``
        (mode, label, comparability), ``settings``, ``datasets`` (dimensions, padding
        applied, split sizes), ``results[dataset][model]`` (``test_nll`` per trial,
        ``mean``, ``two_std``, ``paper_mean``, ``paper_two_std``, per-trial records) and
        ``wall_seconds``.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        Missing or malformed data (the loader's message), or a bad argument.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    datasets = _names(list(datasets), UCI_DATASETS, "dataset(s)")
    models = _names(list(models), MODEL_NAMES, "model(s)")
    trials = _positive_int(trials, "trials")
    epochs = _positive_int(epochs, "epochs")
    subsample = _positive_int(subsample, "subsample", allow_none=True)
    if padding not in PADDING_CHOICES:
        raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}")
    for value, what in ((steps, "steps"), (m, "m"), (batch_size, "batch_size"),
                        (patience, "patience")):
        _positive_int(value, what)
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
    model_kwargs = dict(model_kwargs or {})
    if set(model_kwargs) - set(models):
        raise ValueError(f"model_kwargs for {sorted(set(model_kwargs) - set(models))}, which "
                         f"are not among the models run {models}")
    hidden = tuple(int(h) for h in hidden)
    start = time.perf_counter()

    loaded = {}
    for name in datasets:
        log(f"loading {name} from {data_dir} ...")
        loaded[name] = _load(name, data_dir, padding, subsample, allow_pickle, seed)
    architectures = {}
    for model_name in models:
        arch = {} if model_name == "gaussian" else {"steps": steps, "hidden": hidden}
        if model_name == "conf":
            arch["m"] = m
        architectures[model_name] = {**arch, **model_kwargs.get(model_name, {})}
        for name in datasets:  # a bad architecture fails before any training
            build_model(model_name, loaded[name][2]["dim_model"], **architectures[model_name])
    if out is not None:
        os.makedirs(os.path.join(out, "models") if save_models else out, exist_ok=True)

    settings = {"datasets": datasets, "models": models, "trials": trials, "epochs": epochs,
                "subsample": subsample, "padding": padding, "steps": steps,
                "hidden": list(hidden), "m": m, "batch_size": batch_size,
                "learning_rate": learning_rate, "patience": patience, "clip_norm": clip_norm,
                "seed": seed, "model_kwargs": model_kwargs,
                "std": "2 x sample standard deviation (ddof = 1) over trials"}
    training = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                "patience": patience, "clip_norm": clip_norm, "progress": progress}
    report = {
        "benchmark": "Table 1: test negative log-likelihood in nats per example "
                     "(lower is better)",
        "complete": False,
        "paper": {"citation": PAPER_CITATION,
                  "table": {k: {d: list(v) for d, v in row.items()}
                            for k, row in PAPER_TABLE1.items()},
                  "padded_conf_datasets": list(PAPER_PADDED)},
        "padding": {"mode": padding, "label": PADDING_LABELS[padding],
                    "comparable_with_unpadded": all(
                        loaded[n][2]["comparable_with_unpadded"] for n in datasets)},
        "settings": settings,
        "datasets": {name: loaded[name][2] for name in datasets},
        "results": {name: {} for name in datasets},
        "wall_seconds": None,
    }
    for name in datasets:
        (train, val, test), correction, info = loaded[name]
        for model_name in models:
            records = [_run_trial(name, model_name, trial, seed + trial, (train, val, test),
                                  correction, architectures[model_name], training,
                                  out if save_models else None, info, log)
                       for trial in range(trials)]
            values = [r["test_nll"] for r in records]
            mean, two_std = _summary(values)
            paper = PAPER_TABLE1.get(model_name, {}).get(name, (None, None))
            report["results"][name][model_name] = {
                "test_nll": values, "mean": mean, "two_std": two_std,
                "paper_mean": paper[0], "paper_two_std": paper[1], "trials": records,
                "comparable_with_unpadded": info["comparable_with_unpadded"]}
            report["wall_seconds"] = time.perf_counter() - start
            if out is not None:  # results so far survive an interrupted run
                _write_text(os.path.join(out, "results.json"), _json(report))
    report["complete"] = True
    if out is not None:
        _write_text(os.path.join(out, "results.json"), _json(report))
        _write_text(os.path.join(out, "table1.md"), format_markdown(report))
    return report


def _run_trial(name, model_name, trial, trial_seed, splits, correction, arch, training, out,
               info, log):
    """Train (or fit in closed form) one model; its test NLL and training record."""
    train, val, test = splits
    if model_name != "gaussian":
        arch = {**arch, "random_state": trial_seed}
    model = build_model(model_name, train.shape[1], **arch)
    rng = onp.random.default_rng(trial_seed)
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # small products: 1 thread is faster
        if getattr(model, "closed_form_fit", False):
            params, fitted = model.init_params(train), None
        else:
            # data-dependent initialisation from a random subset (some splits are ordered)
            init_rows = rng.choice(len(train), size=min(len(train), 1024), replace=False)
            params = model.init_params(train[onp.sort(init_rows)], random_state=trial_seed)

            def loss(p, batch):
                return -anp.mean(model.build(p).log_prob(batch))

            fitted = fit(loss, params, train, val, random_state=trial_seed, **training)
            params = fitted.params
        test_nll = _mean_nll(model.build(params), test, correction)
    record = {"trial": trial, "seed": trial_seed, "test_nll": test_nll,
              "seconds": time.perf_counter() - started,
              "epochs": len(fitted.history) if fitted else 0,
              "best_epoch": fitted.best_epoch if fitted else None,
              "best_val_nll": fitted.best_val_loss if fitted else None,
              "stopped_reason": fitted.stopped_reason if fitted else "closed_form"}
    if out is not None:
        path = os.path.join(out, "models", f"{name}-{model_name}-trial{trial}.npz")
        save_model(path, params, model.spec, {"dataset": name, "padding": info,
                                              "record": record})
    nll = "non-finite" if test_nll is None else f"{test_nll:.4f}"
    log(f"[{name}] {DISPLAY_NAMES[model_name]} trial {trial + 1}: test NLL {nll} nats "
        f"({record['epochs']} epochs, {record['stopped_reason']}, {record['seconds']:.1f} s)")
    return record


def _json(report):
    return json.dumps(report, indent=1, allow_nan=False) + "\n"


def _write_text(path, text):
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def _cell(mean, two_std, mark=""):
    if mean is None:
        return "non-finite"
    return (f"{mean:.2f}" if two_std is None else f"{mean:.2f} ± {two_std:.2f}") + mark


def _paper_cell(value):
    if value is None:
        return "–"
    mean, two_std = value
    return f"{mean:.2f} ± {two_std:.{3 if two_std < 0.01 else 2}f}"  # as printed in the paper


def format_markdown(report):
    """The Markdown report of :func:`reproduce_table1`'s result: the padding label, a
    table with this run's rows next to the paper's, and the settings."""
    datasets = list(report["results"])
    models = report["settings"]["models"]
    info = report["datasets"]
    padding = report["padding"]
    header = [f"{n.upper()} (D={info[n]['dim']}"
              + (f"→{info[n]['dim_model']}" if info[n]["dim_model"] != info[n]["dim"] else "")
              + ")" for n in datasets]
    lines = [f"# {report['benchmark']}", "", f"**{padding['label']}**", "",
             "| model | " + " | ".join(header) + " |",
             "| --- |" + " ---: |" * len(datasets)]
    for model in models:
        cells = []
        for n in datasets:
            r = report["results"][n][model]
            mark = " †" if not r["comparable_with_unpadded"] else ""
            cells.append(_cell(r["mean"], r["two_std"], mark))
        lines.append(f"| {DISPLAY_NAMES[model]} (this run) | " + " | ".join(cells) + " |")
        if model in PAPER_TABLE1:
            paper = [_paper_cell(PAPER_TABLE1[model].get(n)) + (
                " ‡" if model == "conf" and n in PAPER_PADDED else "") for n in datasets]
            lines.append(f"| {DISPLAY_NAMES[model]} (paper) | " + " | ".join(paper) + " |")
    for model, row in PAPER_TABLE1.items():
        if model not in models:
            paper = [_paper_cell(row.get(n)) for n in datasets]
            lines.append(f"| {DISPLAY_NAMES[model]} (paper) | " + " | ".join(paper) + " |")
    s = report["settings"]
    trials = s["trials"]
    spread = ("mean ± 2 standard deviations (ddof = 1)" if trials > 1
              else "a single trial (no error bar)")
    lines += [
        "",
        (f"This run: {spread} over {trials} trial(s) per cell (seeds {s['seed']}.."
         f"{s['seed'] + trials - 1}); at most {s['epochs']} epoch(s), early stopping with "
         f"patience {s['patience']} on the validation NLL; {s['steps']} steps, hidden "
         f"{s['hidden']} (CONF m = {s['m']}); batch {s['batch_size']}, learning rate "
         f"{s['learning_rate']}."),
    ]
    if any(r["comparable_with_unpadded"] is False
           for per_model in report["results"].values() for r in per_model.values()):
        lines.append("† trained and evaluated on the paper's padded data: singular density, "
                     "NOT comparable with unpadded NLLs.")
    if any(n in PAPER_PADDED for n in datasets):
        lines.append("‡ the paper's CONF numbers for HEPMASS, MINIBOONE and BSDS300 were "
                     "obtained on padded data (its section 3.1).")
    data_lines = []
    for n in datasets:
        d = info[n]
        sub = (f" (first {d['n_train']} of {d['n_train_available']} training rows)"
               if d["n_train"] < d["n_train_available"] else "")
        data_lines.append(f"{n.upper()}: D = {d['dim']}, padding {d['padding_applied']}, "
                          f"train/val/test {d['n_train']}/{d['n_val']}/{d['n_test']}{sub}")
    lines += ["", "Data: " + "; ".join(data_lines) + ".", "",
              f"Paper: {report['paper']['citation']}", ""]
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------


def _widths(text):
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def _command(args):
    try:
        report = reproduce_table1(
            args.data_dir, datasets=args.datasets, models=args.models, trials=args.trials,
            subsample=args.subsample, epochs=args.epochs, padding=args.padding, out=args.out,
            allow_pickle=args.allow_pickle, steps=args.steps, hidden=args.hidden, m=args.m,
            batch_size=args.batch_size, learning_rate=args.lr, patience=args.patience,
            seed=args.seed, save_models=args.save_models, progress=not args.quiet)
    except (OSError, ValueError, ImportError) as err:
        reason = " ".join(str(err).split())  # one line, whatever the message
        print(f"refconf reproduce: error: {reason}", file=sys.stderr)
        return 2
    print(format_markdown(report))
    print(f"wrote {os.path.join(args.out, 'results.json')} and "
          f"{os.path.join(args.out, 'table1.md')}", file=sys.stderr)
    return 0


def register(subparsers):
    """Add ``reproduce table1`` to an argparse subparsers object; the parser sets
    ``handler`` (``args -> int`` exit code) with ``set_defaults``."""
    parser = subparsers.add_parser(
        "reproduce", help="reproduce the paper's Table 1 (CONF and baselines, tabular data)",
        description="Train CONF and baselines on the MAF tabular benchmarks and report the "
                    "test NLL (nats, mean ± 2 std over trials) next to the paper's Table 1. "
                    "Writes OUT/results.json and OUT/table1.md.")
    parser.add_argument("target", choices=["table1"], help="what to reproduce")
    parser.add_argument("--data-dir", required=True,
                        help="folder of the MAF data release or of <name>/{train,val,test}.npy")
    parser.add_argument("--datasets", nargs="+", default=list(UCI_DATASETS),
                        metavar="NAME", help=f"some of {' '.join(UCI_DATASETS)} (default: all)")
    parser.add_argument("--models", nargs="+", default=list(TABLE1_MODELS), metavar="NAME",
                        help=f"some of {' '.join(MODEL_NAMES)} "
                             f"(default: {' '.join(TABLE1_MODELS)})")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--subsample", type=int, metavar="N",
                        help="use the first N training rows (a quick run)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--padding", choices=PADDING_CHOICES, default="none",
                        help="none: unequal splits (default); paper: the paper's mean/pixel "
                             "padding (singular, labelled not comparable); noise: N(0,1) "
                             "column, exactly corrected")
    parser.add_argument("--out", default="reports/table1", help="output folder")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow reading GAS's pandas pickle from the MAF release")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--hidden", type=_widths, default=(100, 100), help="e.g. 100,100")
    parser.add_argument("--m", type=int, default=2, help="combined layers per CONF step")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-models", action="store_true",
                        help="also save every trained model under OUT/models/")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_command)
