"""The paper's Table 1: CONF and baselines on the MAF tabular benchmarks, the digits and 2-D
toy sets, as independent trials, resumable, on any executor.

:func:`reproduce_table1` trains every model on every dataset for several trials with
different seeds, with the same training loop (:func:`refconf.train.fit`: Adam, early
stopping on the validation split, best-validation parameters), and reports the test
negative log-likelihood in nats per example as the paper's Table 1 does: the mean and 2
standard deviations over trials, next to the published numbers
(:data:`~refconf.experiments.report.PAPER_TABLE1`).
"""

import os
import sys
import time

from tqdm.auto import tqdm

from ..params import save_model
from ..version import __version__
from .config import TABLE1_MODELS, Overrides, Table1Config
from .data import load_datasets
from .report import (
    PADDING_LABELS,
    PAPER_CITATION,
    PAPER_PADDED,
    PAPER_TABLE1,
    summary,
    write_json,
    write_report,
)
from .runner import RunnerOptions, Task, TrialStore, run_trials
from .trials import MODELS, TrialSpec

__all__ = ["reproduce_table1", "run_table1"]

_BENCHMARK = "Table 1: test negative log-likelihood in nats per example (lower is better)"


def reproduce_table1(data_dir=None, datasets=None, models=TABLE1_MODELS, trials=3,
                     subsample=None, padding="none", out=None, config=None, epochs=None,
                     batch_size=None, learning_rate=None, patience=None, clip_norm=None,
                     steps=None, hidden=None, m=None, seed=0, allow_pickle=False,
                     save_models=False, progress=True, model_kwargs=None, note=None, log=None,
                     executor="serial", jobs=None, scheduler=None):
    """Train ``models`` on ``datasets`` and compare the test NLL with the paper's Table 1.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder of the MAF data (release or converted layout, see
        :func:`refconf.data.load_uci`); needed for the MAF datasets only. Every dataset is
        loaded before any training, so missing data fail at once.
    datasets : sequence of str, optional
        Names from :data:`~refconf.experiments.data.TABLE1_DATASETS`. Default: every
        dataset there is (the MAF sets found under ``data_dir``, the others skipped with a
        message, but none found is an error; ``digits``; every toy set).
    models : sequence of str
        Names from :data:`refconf.experiments.trials.MODELS` (``"gaussian"`` is fitted in
        closed form, without training).
    trials : int
        Runs per model and dataset; trial ``k`` uses seed ``seed + k`` for the fixed
        architecture choices, the initialisation and the batch order.
    subsample : int, optional
        Use only the first ``subsample`` training rows (quick runs); validation and test
        sets are used whole.
    padding : {"none", "paper", "noise"}
        See :mod:`refconf.experiments.data`.
    out : str or os.PathLike, optional
        Folder for ``results.json``, ``results.csv``, ``table1.md``, ``config_used.json``,
        ``trials/`` (one result file per finished trial: a rerun skips them) and, with
        ``save_models``, ``models/<dataset>-<model>-seed<seed>.npz``
        (:func:`refconf.params.save_model`; toy names are written ``toy-<name>``).
    config : None, str, os.PathLike or dict
        Hyperparameters merged over the shipped ``table1_config.json``
        (:func:`~refconf.experiments.config.load_config`).
    epochs, batch_size, learning_rate, patience, clip_norm : optional
        Override the configured training settings of every dataset
        (:func:`refconf.train.fit`; ``epochs`` is the maximum, early stopping with
        ``patience`` on the validation NLL returns the best-validation parameters).
    steps, hidden, m : optional
        Override the configured architecture of every flow: ``steps`` steps (couplings,
        MADEs) with conditioner widths ``hidden``; ``m`` combined layers per CONF step.
    seed : int
        Trial ``k`` uses ``seed + k``; the digits split and noise and the toy samples use
        ``seed`` (the same data in every trial, as for the MAF sets).
    allow_pickle : bool
        Passed to :func:`refconf.data.load_uci` (GAS's release file is a pickle).
    save_models : bool
    progress : bool
        A progress bar counting trials (and, in serial runs, the training's bars).
    model_kwargs : dict, optional
        Per-model overrides applied last, e.g. ``{"conf": {"kind": "circular"}}``, passed
        to the model's builder (:func:`refconf.baselines.build_model` for the flows).
    note : str, optional
        A line shown at the top of the Markdown table and kept in the results (e.g. that
        the data are synthetic fixtures).
    log : callable, optional
        Receives one progress line per trial (default: print to stderr).
    executor : {"serial", "joblib", "dask"}
        Where the trials run (:mod:`refconf.experiments.runner`); the numbers are the same
        under each.
    jobs : int, optional
        Worker processes of ``"joblib"`` or of a local Dask cluster (default: one per CPU
        core).
    scheduler : str, optional
        Address of an existing Dask cluster's scheduler (``executor="dask"``).

    Returns
    -------
    dict
        The content of ``results.json``: ``paper`` (citation and table), ``padding``
        (mode, label, comparability), ``configuration`` (also ``config_used.json``:
        version, data folder, seeds, the merged config file and the resolved
        ``hyperparameters`` per dataset and model), ``datasets`` (dimensions, padding
        applied, split sizes, sources), ``datasets_not_found``,
        ``results[dataset][model]`` (``test_nll`` per trial, ``mean``, ``two_std``,
        ``paper_mean``, ``paper_two_std``, per-trial records) and ``wall_seconds``.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        Missing or malformed data (the loader's message), no dataset found, a bad config,
        a bad argument, or trial files of the output folder recorded under another
        configuration.
    """
    settings = Table1Config.create(
        data_dir, datasets, models, trials, subsample, padding, seed, allow_pickle, config,
        Overrides(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                  patience=patience, clip_norm=clip_norm, steps=steps,
                  hidden=None if hidden is None else tuple(hidden), m=m),
        model_kwargs, note, save_models)
    return run_table1(settings, RunnerOptions(executor, jobs, scheduler, progress), out, log)


def _write_to_stderr(line):
    tqdm.write(line, file=sys.stderr)


def _tasks(settings, loaded, hyper):
    """Every trial of the table, dataset by dataset, model by model, seed by seed."""
    return [Task(TrialSpec(name, model, k, settings.seed + k, hyper[name]["models"][model],
                           hyper[name]["training"],
                           {**dataset.info, "data_seed": settings.seed}),
                 MODELS[model].run, dataset)
            for name, dataset in loaded.items() for model in settings.models
            for k in range(settings.trials)]


def _configuration(settings, datasets, merged, hyper):
    trials = settings.trials
    data = settings.data
    return {
        "refconf_version": __version__,
        "data_dir": None if data.data_dir is None else os.path.abspath(data.data_dir),
        "datasets": datasets, "models": list(settings.models), "trials": trials,
        "subsample": data.subsample, "padding": data.padding, "seed": settings.seed,
        "trial_seeds": [settings.seed + k for k in range(trials)], "data_seed": data.seed,
        "config_source": settings.config_source(),
        "overrides": settings.overrides.as_dict(), "model_kwargs": settings.model_kwargs,
        "std": "2 x sample standard deviation (ddof = 1) over trials",
        "hyperparameters": hyper,
        "config": merged,
    }


def _results(tasks, records):
    """``results[dataset][model]``: the cells of the table."""
    cells = {}
    for task, record in zip(tasks, records):
        cells.setdefault(task.spec.dataset, {}).setdefault(task.spec.model, []).append(record)
    info = {task.spec.dataset: task.dataset.info for task in tasks}
    results = {}
    for name, per_model in cells.items():
        results[name] = {}
        for model, trial_records in per_model.items():
            values = [r["test_nll"] for r in trial_records]
            mean, two_std = summary(values)
            paper = PAPER_TABLE1.get(model, {}).get(name, (None, None))
            results[name][model] = {
                "test_nll": values, "mean": mean, "two_std": two_std,
                "paper_mean": paper[0], "paper_two_std": paper[1], "trials": trial_records,
                "comparable_with_unpadded": info[name]["comparable_with_unpadded"]}
    return results


def _store(settings, out):
    """The trial store of ``out`` (with the saved models required when they are saved)
    and the saving function, or ``(None, None)`` without an output folder."""
    if out is None:
        return None, None

    def model_path(spec):
        stem = spec.dataset.replace(":", "-")
        return os.path.join(out, "models", f"{stem}-{spec.model}-seed{spec.seed}.npz")

    def save(spec, model, record):
        os.makedirs(os.path.join(out, "models"), exist_ok=True)
        save_model(model_path(spec), model["params"], model["spec"],
                   {"dataset": spec.dataset, "padding": spec.data, "record": record})

    if not settings.save_models:
        return TrialStore(os.path.join(out, "trials")), None
    return TrialStore(os.path.join(out, "trials"), required=model_path), save


def _report(settings, configuration, loaded, not_found, results):
    """The content of ``results.json`` but ``wall_seconds``."""
    padding = settings.data.padding
    return {
        "benchmark": _BENCHMARK,
        "note": settings.note,
        "complete": True,
        "paper": {"citation": PAPER_CITATION,
                  "table": {k: {d: list(v) for d, v in row.items()}
                            for k, row in PAPER_TABLE1.items()},
                  "padded_conf_datasets": list(PAPER_PADDED)},
        "padding": {"mode": padding, "label": PADDING_LABELS[padding],
                    "comparable_with_unpadded": all(
                        dataset.info["comparable_with_unpadded"] for dataset in loaded.values())},
        "configuration": configuration,
        "datasets": {name: dataset.info for name, dataset in loaded.items()},
        "datasets_not_found": not_found,
        "results": results,
        "wall_seconds": None,
    }


def run_table1(settings, options=None, out=None, log=None):
    """:func:`reproduce_table1` with its settings grouped: ``settings`` a
    :class:`~refconf.experiments.config.Table1Config`, ``options`` a
    :class:`~refconf.experiments.runner.RunnerOptions` (default: serial)."""
    options = options or RunnerOptions()
    log = log or _write_to_stderr
    names, automatic = settings.dataset_names()
    merged, hyper = settings.hyperparameters(names)
    start = time.perf_counter()
    loaded, not_found = load_datasets(names, settings.data,
                                      {name: hyper[name]["data"] for name in names},
                                      automatic, log)
    datasets = list(loaded)
    hyper = {name: hyper[name] for name in datasets}
    for name in datasets:  # a bad architecture fails before any training
        for model in settings.models:
            MODELS[model].check(hyper[name]["models"][model], loaded[name].info["dim_model"])
    tasks = _tasks(settings, loaded, hyper)
    store, save = _store(settings, out)
    if store is not None:
        for task in tasks:  # results of another configuration are refused before any write
            store.load(task.spec)
    configuration = _configuration(settings, datasets, merged, hyper)
    if out is not None:
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "config_used.json"), configuration)
    records = run_trials(tasks, options, store, save, log)
    report = _report(settings, configuration, loaded, not_found, _results(tasks, records))
    report["wall_seconds"] = time.perf_counter() - start
    if out is not None:
        write_report(out, report)
    return report
