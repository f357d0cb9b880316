"""The paper's Table 2: VAEs whose posterior is a flow (none, planar, IAF, O-SNF, CONF) on
binary images, as independent trials on the runner of Table 1.

:func:`reproduce_table2` trains every model on every dataset for several trials with
different seeds (:func:`refconf.vae.fit_vae`: Adamax or Adam, linear KL warm-up, early stopping on
the validation ELBO, best-validation parameters) and reports the test ``-ELBO`` and the
importance-sampled NLL (:func:`refconf.vae.importance_nll`, ``S`` samples) in nats, mean
and 2 standard deviations over trials, next to the paper's Table 2
(:data:`~refconf.experiments.table2_report.PAPER_TABLE2`). The trials run on
:func:`refconf.experiments.runner.run_trials` (serial, joblib or Dask; one result file per
finished trial, so a rerun resumes) and the files are written by
:mod:`refconf.experiments.report`'s writers.
"""

import dataclasses
import math
import os
import sys
import time

from tqdm.auto import tqdm

from ..data import load_binarized_digits, load_binarized_mnist, load_caltech_silhouettes
from ..data.binarized import BINARIZED_MNIST_FILES, CALTECH_FILE, DIGITS_THRESHOLD
from ..vae import CONDITIONER_INPUTS, FLOWS, OPTIMIZERS, VAE, fit_vae, importance_nll
from ..version import __version__
from .report import summary, write_json, write_text
from .runner import RunnerOptions, Task, TrialStore, run_trials
from .table2_report import PAPER_TABLE2, format_csv, format_markdown
from .trials import TrialSpec

__all__ = ["DEFAULTS", "TABLE2_DATASETS", "TABLE2_MODELS", "reproduce_table2", "vae_trial"]

TABLE2_DATASETS = ("digits", "mnist", "caltech")
TABLE2_MODELS = tuple(FLOWS)  # vae, planar, iaf, osnf, conf
#: Per dataset: the architecture and the protocol (van den Berg et al. 2018 for MNIST and
#: Caltech: latent 64, K = 4 flows, warm-up 100 epochs, patience 100, batch 100, Adamax
#: with lr 5e-4; S = 5000 / 2000); the digits settings are scaled down to run on a CPU in
#: minutes (Adam with lr 2e-3, 40 epochs). Every gradient is clipped to global norm 100
#: (not in the protocol: a batch whose posterior sample nearly overflows a flow would
#: otherwise inflate the optimiser's moments).
DEFAULTS = {
    "digits": {"latent": 16, "hidden": (128, 128), "steps": 4, "m": 8, "bottleneck": 4,
               "epochs": 40, "batch_size": 100, "learning_rate": 2e-3, "warmup": 10,
               "patience": 10, "samples": 500, "optimizer": "adam",
               "architecture": "mlp", "clip_norm": 100.0},
    "mnist": {"latent": 64, "hidden": (300, 300), "steps": 4, "m": 8, "bottleneck": 8,
              "epochs": 2000, "batch_size": 100, "learning_rate": 5e-4, "warmup": 100,
              "patience": 100, "samples": 5000, "optimizer": "adamax",
              "architecture": "mlp", "clip_norm": 100.0},
    "caltech": {"latent": 64, "hidden": (300, 300), "steps": 4, "m": 8, "bottleneck": 8,
                "epochs": 2000, "batch_size": 100, "learning_rate": 5e-4, "warmup": 100,
                "patience": 100, "samples": 2000, "optimizer": "adamax",
                "architecture": "mlp", "clip_norm": 100.0},
}
BINARISATION = {
    "digits": f"scikit-learn 8x8 digits, pixel (0..16) >= {DIGITS_THRESHOLD} -> 1, random "
              "1258/180/359 split",
    "mnist": "Larochelle's static binarisation (binarized_mnist_*.amat)",
    "caltech": "Caltech 101 Silhouettes 28x28 split 1, Fortran-order reshape and 1 - x as "
               "van den Berg et al.'s code",
}
_TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "warmup", "patience", "samples",
                  "optimizer", "clip_norm")


@dataclasses.dataclass(frozen=True)
class BinaryData:
    """A loaded dataset: ``splits`` (train, val, test) and ``info`` (JSON)."""

    splits: tuple
    info: dict


def _load(name, data_dir, seed, subsample):
    if name == "digits":
        splits = load_binarized_digits(random_state=seed)
    elif data_dir is None:
        files = (", ".join(BINARIZED_MNIST_FILES.values()) if name == "mnist" else CALTECH_FILE)
        raise FileNotFoundError(f"{name} needs --data-dir, a folder holding {files}")
    else:
        loader = load_binarized_mnist if name == "mnist" else load_caltech_silhouettes
        splits = loader(data_dir)
    train, val, test = splits
    available = len(train)
    if subsample is not None:
        train = train[:subsample]
    info = {"binarisation": BINARISATION[name], "pixels": train.shape[1],
            "n_train": len(train), "n_train_available": available, "n_val": len(val),
            "n_test": len(test), "data_seed": seed if name == "digits" else None}
    return BinaryData((train, val, test), info)


def _model(spec, pixels):
    kwargs = spec.model_kwargs
    return VAE(pixels, kwargs["latent"], tuple(kwargs["hidden"]), spec.model,
               kwargs["steps"], kwargs["flow_options"], kwargs["architecture"])


def _finite(value):
    return value if math.isfinite(value) else None


def vae_trial(spec, dataset, progress=False):
    """One Table 2 trial: train the VAE of ``spec`` and score the test split.

    Returns the runner's record (:attr:`refconf.experiments.trials.ModelEntry.run`):
    ``test_nll`` (the importance-sampled NLL, ``S = spec.training["samples"]``),
    ``test_nll_se`` (its standard error from the sampling), ``test_neg_elbo`` (``-ELBO``
    over the same samples; each None when not finite), ``epochs``, ``best_epoch``,
    ``best_val_nll`` (the best validation ``-ELBO``), ``stopped_reason``,
    ``skipped_steps``, ``engine`` and no parameters.
    """
    train, val, test = dataset.splits
    model = _model(spec, train.shape[1])
    t = spec.training
    fitted = fit_vae(model, model.init_params(spec.seed), train, val, epochs=t["epochs"],
                     batch_size=t["batch_size"], learning_rate=t["learning_rate"],
                     warmup=t["warmup"], patience=t["patience"], optimizer=t["optimizer"],
                     clip_norm=t["clip_norm"], random_state=spec.seed,
                     progress=progress)
    metrics = importance_nll(model, fitted.params, test, t["samples"], random_state=spec.seed)
    return {"test_nll": _finite(metrics["nll"]), "test_nll_se": _finite(metrics["nll_se"]),
            "test_neg_elbo": _finite(metrics["neg_elbo"]), "epochs": len(fitted.history),
            "best_epoch": fitted.best_epoch,
            "best_val_nll": _finite(fitted.best_val_neg_elbo),
            "stopped_reason": fitted.stopped_reason, "skipped_steps": fitted.skipped_steps,
            "engine": "autograd",
            "params": None, "spec": None}


def _settings(name, overrides):
    merged = {**DEFAULTS[name], **{k: v for k, v in overrides.items() if v is not None}}
    model = {"latent": merged["latent"], "hidden": list(merged["hidden"]),
             "steps": merged["steps"], "architecture": merged["architecture"]}
    return model, {k: merged[k] for k in _TRAINING_KEYS}, merged


def _flow_options(model, merged, conditioner_input):
    if model == "conf":
        return {"m": merged["m"], "hidden": list(merged["hidden"][-1:]),
                "conditioner_input": conditioner_input}
    return {"bottleneck": merged["bottleneck"]} if model == "osnf" else {}


def _check(datasets, models, trials, conditioner_input, optimizer):
    for what, given, allowed in (("dataset", datasets, TABLE2_DATASETS),
                                 ("model", models, TABLE2_MODELS)):
        unknown = [n for n in given if n not in allowed]
        if unknown or not given:
            raise ValueError(f"unknown {what}(s) {unknown or given}; expected some of "
                             f"{list(allowed)}")
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if conditioner_input not in CONDITIONER_INPUTS:
        raise ValueError(f"conditioner_input must be one of {CONDITIONER_INPUTS}, got "
                         f"{conditioner_input!r}")


def _default_datasets(data_dir):
    """digits, and MNIST and Caltech where their files are under ``data_dir``."""
    found = ["digits"]
    if data_dir is not None:
        if all(os.path.isfile(os.path.join(data_dir, f)) for f in BINARIZED_MNIST_FILES.values()):
            found.append("mnist")
        if os.path.isfile(os.path.join(data_dir, CALTECH_FILE)):
            found.append("caltech")
    return found


def _nats(value):
    return "non-finite" if value is None else f"{value:.2f}"


def _describe(spec, record):
    return (f"[{spec.dataset}] {spec.model} trial {spec.trial + 1}: test -ELBO "
            f"{_nats(record['test_neg_elbo'])}, NLL {_nats(record['test_nll'])} nats "
            f"({record['epochs']} epochs, {record['stopped_reason']}, "
            f"{record['seconds']:.1f} s)")


def _results(tasks, records):
    cells = {}
    for task, record in zip(tasks, records):
        cells.setdefault(task.spec.dataset, {}).setdefault(task.spec.model, []).append(record)
    results = {}
    for name, per_model in cells.items():
        results[name] = {}
        for model, rows in per_model.items():
            cell = {"trials": rows}
            for key, values in (("neg_elbo", [r["test_neg_elbo"] for r in rows]),
                                ("nll", [r["test_nll"] for r in rows])):
                mean, two_std = summary(values)
                cell.update({key: values, f"{key}_mean": mean, f"{key}_two_std": two_std})
            cell["paper"] = PAPER_TABLE2.get(model, {}).get(name)
            results[name][model] = cell
    return results


def reproduce_table2(data_dir=None, datasets=None, models=TABLE2_MODELS, trials=3, out=None,
                     epochs=None, batch_size=None, learning_rate=None, patience=None,
                     steps=None, hidden=None, m=None, latent=None, warmup=None, samples=None,
                     conditioner_input="z1+h", optimizer=None, architecture=None,
                     subsample=None, seed=0, note=None,
                     progress=True, log=None, executor="serial", jobs=None, scheduler=None):
    """Train VAEs with flow posteriors and compare with the paper's Table 2.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder of ``binarized_mnist_{train,valid,test}.amat`` and/or
        ``caltech101_silhouettes_28_split1.mat`` (:mod:`refconf.data.binarized`).
    datasets : sequence of str, optional
        Some of :data:`TABLE2_DATASETS`; default: ``digits`` and the sets whose files are
        under ``data_dir``. Every dataset is loaded before any training.
    models : sequence of str
        Some of :data:`TABLE2_MODELS`.
    trials : int
        Trial ``k`` uses seed ``seed + k`` (initialisation, batch order, noise).
    out : str or os.PathLike, optional
        Folder for ``results.json``, ``results.csv``, ``table2.md``, ``config_used.json``
        and ``trials/``.
    epochs, batch_size, learning_rate, patience, warmup, samples : optional
        Override :data:`DEFAULTS` for every dataset (``samples``: ``S`` of the
        importance-sampled NLL).
    steps, hidden, m, latent : optional
        Flow count ``K``, the encoder's widths (the decoder's reversed; CONF's conditioner
        has one hidden layer of the last width), CONF's layers per step, latent size.
    conditioner_input : {"z1+h", "z1"}
        What CONF's conditioner sees: ``z1`` and the encoder features (amortised) or
        ``z1`` alone; recorded in every result.
    optimizer : {"adamax", "adam"}, optional
        Override the optimiser (:func:`refconf.vae.fit_vae`).
    architecture : {"mlp", "gated_conv"}, optional
        Override the encoder and decoder (:class:`refconf.vae.VAE`; ``"gated_conv"``, the
        Sylvester paper's, takes 28 x 28 images: MNIST and Caltech).
    subsample : int, optional
        Use the first ``subsample`` training rows.
    seed, note, progress, log, executor, jobs, scheduler
        As :func:`refconf.experiments.table1.reproduce_table1`.

    Returns
    -------
    dict
        The content of ``results.json``: ``protocol``, ``configuration``, ``datasets``,
        ``results[dataset][model]`` (``neg_elbo`` and ``nll`` per trial with mean and
        ``two_std``, ``paper``, the trial records) and ``wall_seconds``.
    """
    datasets = list(datasets) if datasets else _default_datasets(data_dir)
    models = list(models)
    _check(datasets, models, trials, conditioner_input, optimizer)
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    start = time.perf_counter()
    loaded = {name: _load(name, data_dir, seed, subsample) for name in datasets}
    overrides = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                 "patience": patience, "steps": steps, "hidden": hidden, "m": m,
                 "latent": latent, "warmup": warmup, "samples": samples,
                 "optimizer": optimizer, "architecture": architecture}
    tasks, hyper = [], {}
    for name, data in loaded.items():
        arch, training, merged = _settings(name, overrides)
        hyper[name] = {**merged, "hidden": list(merged["hidden"])}
        for model in models:
            kwargs = {**arch, "flow_options": _flow_options(model, merged, conditioner_input)}
            VAE(data.info["pixels"], arch["latent"], tuple(arch["hidden"]), model,
                arch["steps"], kwargs["flow_options"], arch["architecture"])  # fails now
            tasks += [Task(TrialSpec(name, model, k, seed + k, kwargs, training, data.info),
                           vae_trial, data) for k in range(trials)]
    store = None if out is None else TrialStore(os.path.join(out, "trials"))
    if store is not None:
        for task in tasks:  # results of another configuration are refused before any write
            store.load(task.spec)
    configuration = {"refconf_version": __version__, "data_dir": None if data_dir is None
                     else os.path.abspath(data_dir), "datasets": datasets, "models": models,
                     "trials": trials, "seed": seed, "subsample": subsample,
                     "conditioner_input": conditioner_input,
                     "overrides": {k: v for k, v in overrides.items() if v is not None},
                     "hyperparameters": hyper}
    if out is not None:
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "config_used.json"), configuration)
    records = run_trials(tasks, RunnerOptions(executor, jobs, scheduler, progress), store,
                         None, log, describe=_describe)
    report = {"benchmark": "Table 2: test -ELBO and importance-sampled NLL in nats "
                           "(lower is better)", "note": note, "configuration": configuration,
              "datasets": {name: data.info for name, data in loaded.items()},
              "results": _results(tasks, records),
              "wall_seconds": time.perf_counter() - start}
    if out is not None:
        write_json(os.path.join(out, "results.json"), report)
        write_text(os.path.join(out, "results.csv"), format_csv(report))
        write_text(os.path.join(out, "table2.md"), format_markdown(report))
    return report

