"""Experiments: the paper's Table 1 as a set of independent, resumable trials.

``refconf reproduce table1 [--data-dir DIR] [--datasets ...] [--trials 3] [--executor
serial|joblib|dask]`` (or :func:`reproduce_table1`) trains every model on every dataset
for several trials with different seeds and reports the test negative log-likelihood in
nats per example as the paper's Table 1 does, next to the published numbers. It writes,
atomically, ``results.json`` (everything), ``results.csv`` (one row per model and
dataset), ``table1.md`` (the table, printed too), ``config_used.json`` (every resolved
hyperparameter, seeds, version, data folder, padding) and ``trials/`` (one file per
finished trial, so a rerun resumes).

The modules, by what they do:

- :mod:`~refconf.experiments.config`: the hyperparameter file (shipped
  ``refconf/table1_config.json``, a user's file merged over it, command-line overrides)
  and the run's settings (:class:`Table1Config`);
- :mod:`~refconf.experiments.data`: dataset names, loading, padding, splits;
- :mod:`~refconf.experiments.trials`: one trial (dataset x model x seed) and the model
  registry :data:`MODELS`;
- :mod:`~refconf.experiments.runner`: the serial, joblib and Dask executors and the
  per-trial result files;
- :mod:`~refconf.experiments.report`: Markdown, CSV and JSON;
- :mod:`~refconf.experiments.table1`: the Table 1 run;
- :mod:`~refconf.experiments.cli`: the ``reproduce`` command;
- :mod:`~refconf.experiments.table2`, :mod:`~refconf.experiments.table2_report` and
  :mod:`~refconf.experiments.table2_cli`: the paper's Table 2 (VAEs whose posterior is a
  flow) on the same runner, ``refconf reproduce table2``.
"""

from .cli import register
from .config import (
    CONFIG_FILE,
    TABLE1_MODELS,
    Overrides,
    Table1Config,
    load_config,
    resolve_hyperparameters,
    validate_config,
)
from .data import PADDING_CHOICES, TABLE1_DATASETS, DataSource, dataset_padding
from .report import CSV_FIXED_COLUMNS, PAPER_CITATION, PAPER_TABLE1, format_csv, format_markdown
from .runner import EXECUTORS, RunnerOptions, TrialStore, run_trials
from .table1 import reproduce_table1, run_table1
from .table2 import TABLE2_DATASETS, TABLE2_MODELS, reproduce_table2
from .table2_report import PAPER_TABLE2
from .trials import MODELS, ModelEntry, TrialSpec, estimator_model

__all__ = [
    "CONFIG_FILE",
    "CSV_FIXED_COLUMNS",
    "EXECUTORS",
    "MODELS",
    "PADDING_CHOICES",
    "PAPER_CITATION",
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "TABLE1_DATASETS",
    "TABLE1_MODELS",
    "TABLE2_DATASETS",
    "TABLE2_MODELS",
    "DataSource",
    "ModelEntry",
    "Overrides",
    "RunnerOptions",
    "Table1Config",
    "TrialSpec",
    "TrialStore",
    "dataset_padding",
    "estimator_model",
    "format_csv",
    "format_markdown",
    "load_config",
    "register",
    "reproduce_table1",
    "reproduce_table2",
    "resolve_hyperparameters",
    "run_table1",
    "run_trials",
    "validate_config",
]
