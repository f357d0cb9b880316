"""The paper's Table 1 harness: CONF and baselines on the MAF tabular benchmarks, plus the
data that need no download (8x8 digits, 2-D toy sets).

``refconf reproduce table1 [--data-dir DIR] [--datasets ...] [--trials 3] [--subsample N]``
(or :func:`reproduce_table1`) trains every model on every dataset for several trials with
different seeds, with the same training loop (:func:`refconf.train.fit`: Adam, early
stopping on the validation split, best-validation parameters), and reports the test
negative log-likelihood in nats per example as the paper's Table 1 does: the mean and 2
standard deviations over trials, next to the published numbers (:data:`PAPER_TABLE1`).
It writes, atomically, ``results.json`` (everything), ``results.csv`` (one row per model
and dataset), ``table1.md`` (the table, printed too) and ``config_used.json`` (the run
configuration: every resolved hyperparameter, seeds, version, data folder, padding).

Datasets (:data:`TABLE1_DATASETS`):

- ``power``, ``gas``, ``hepmass``, ``miniboone``, ``bsds300``: the MAF data under
  ``--data-dir`` (:func:`refconf.data.load_uci`);
- ``digits``: scikit-learn's 8x8 digits, dequantised and scaled to (0, 1), fitted after a
  logit (:func:`refconf.data.digits.load_digits_logit`); the NLL is reported on the (0, 1)
  scale, the logit's log-determinant included;
- ``toy:<name>`` for each of :data:`refconf.data.TOY_DENSITIES`: fixed-size samples of
  :func:`refconf.data.sample_toy`; the true test NLL is reported alongside.

Without ``datasets`` the harness runs every dataset it can find: the MAF sets present
under ``data_dir``, the digits and every toy set. The paper has no numbers for the last
two kinds (shown as "—").

Hyperparameters (:func:`load_config`): one JSON file shipped with the package,
``refconf/table1_config.json``, per dataset. The paper gives none for CONF, so they start
from MAF's protocol (Papamakarios et al. 2017), as the file's ``comment`` and ``source``
say. A user file (``--config``) is merged over it; command-line flags override both.

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

The padding is applied to every model of a run (the digits and toy sets have even
dimensions and are never padded).
"""

import argparse
import copy
import csv
import io
import json
import math
import os
import sys
import time
from importlib import resources

import autograd.numpy as anp
import numpy as onp
from threadpoolctl import threadpool_limits

from . import __version__
from .baselines import MODEL_NAMES, build_model
from .data import (
    TOY_DENSITIES,
    UCI_DATASETS,
    load_uci,
    noise_padding_log_density,
    pad_for_equal_split,
    sample_toy,
    toy_log_density,
)
from .data.digits import load_digits_logit
from .params import atomic_write, save_model
from .engines import default_engine
from .flows import FlowModel
from .train import fit, nll_objective

__all__ = ["CONFIG_FILE", "CSV_FIXED_COLUMNS", "PADDING_CHOICES", "PAPER_CITATION",
           "PAPER_TABLE1", "TABLE1_DATASETS", "TABLE1_MODELS", "dataset_padding",
           "format_csv", "format_markdown", "load_config", "register", "reproduce_table1",
           "resolve_hyperparameters", "validate_config"]

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
DIGITS = "digits"
TOY_PREFIX = "toy:"
TOY_DATASETS = tuple(TOY_PREFIX + name for name in TOY_DENSITIES)
TABLE1_DATASETS = UCI_DATASETS + (DIGITS,) + TOY_DATASETS
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
NO_PAPER_VALUE = "—"
_EVAL_BATCH = 8192

# --- configuration ----------------------------------------------------------------------

CONFIG_FILE = "table1_config.json"  # package data of refconf
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "lr_decay", "patience", "clip_norm")
ARCHITECTURE_KEYS = ("steps", "hidden")
# set by the harness itself: the data dimension and the per-trial seed
RESERVED_MODEL_KEYS = ("dim", "random_state")
DATA_KEYS = {DIGITS: ("logit_lambda",), "toy": ("n_train", "n_val", "n_test")}
_SECTIONS = ("training", "architecture", "models")


def _is_integer(value):
    return isinstance(value, (int, onp.integer)) and not isinstance(value, (bool, onp.bool_))


def _is_number(value):
    return (isinstance(value, (int, float, onp.integer, onp.floating))
            and not isinstance(value, (bool, onp.bool_)) and math.isfinite(value))


def _positive_int(value, name, allow_none=False):
    if allow_none and value is None:
        return None
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# training and architecture values: name -> (check, what is expected)
_VALUE_CHECKS = {
    "epochs": (lambda v: _is_integer(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: _is_integer(v) and v >= 1, "a positive integer"),
    "learning_rate": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "lr_decay": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "patience": (lambda v: v is None or (_is_integer(v) and v >= 1),
                 "a positive integer or null (no early stopping)"),
    "clip_norm": (lambda v: v is None or (_is_number(v) and v > 0),
                  "a finite number > 0 or null (no clipping)"),
    "steps": (lambda v: _is_integer(v) and v >= 1, "a positive integer"),
    "hidden": (lambda v: isinstance(v, (list, tuple)) and len(v) > 0
               and all(_is_integer(h) and h >= 1 for h in v),
               "a non-empty list of positive integers (conditioner widths)"),
}


def _check_values(section, where):
    """Check the training and architecture values of ``section`` (other keys pass)."""
    for key, value in section.items():
        if key in _VALUE_CHECKS:
            ok, expected = _VALUE_CHECKS[key]
            if not ok(value):
                raise ValueError(f"{where}: {key} must be {expected}, got {value!r}")


def _check_object(section, where):
    if not isinstance(section, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(section).__name__} "
                         f"{section!r:.60}")


def _check_keys(section, allowed, where):
    _check_object(section, where)
    unknown = [key for key in section if key not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {list(allowed)}")


def _check_text(value, where):
    if isinstance(value, str) or (isinstance(value, list)
                                  and all(isinstance(v, str) for v in value)):
        return
    raise ValueError(f"{where}: expected a string or a list of strings, got {value!r:.60}")


def _check_models(section, where):
    _check_keys(section, MODEL_NAMES, where)
    for name, kwargs in section.items():
        at = f"{where}.{name}"
        _check_object(kwargs, at)
        reserved = [k for k in kwargs if k in RESERVED_MODEL_KEYS]
        if reserved:
            raise ValueError(f"{at}: {reserved} cannot be configured: the harness sets the "
                             f"dimension from the data and the seed from the trial")
        if name == "gaussian" and set(kwargs) & set(ARCHITECTURE_KEYS):
            raise ValueError(f"{at}: the closed-form Gaussian takes no "
                             f"{sorted(set(kwargs) & set(ARCHITECTURE_KEYS))}")
        _check_values(kwargs, at)
        try:  # the builder names the arguments it takes and checks their values
            build_model(name, 4, **kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{at}: {err}") from None


def _data_kind(dataset):
    return "toy" if dataset.startswith(TOY_PREFIX) else dataset


def _check_data_section(dataset, section, where):
    kind = _data_kind(dataset)
    _check_keys(section, DATA_KEYS[kind], where)
    for key, value in section.items():
        if key == "logit_lambda" and not (_is_number(value) and 0 < value < 0.5):
            raise ValueError(f"{where}: logit_lambda must be a number in (0, 0.5), "
                             f"got {value!r}")
        if key.startswith("n_") and not (_is_integer(value) and value >= 2):
            raise ValueError(f"{where}: {key} must be an integer >= 2, got {value!r}")


def _check_levels(level, where):
    if "training" in level:
        _check_keys(level["training"], TRAINING_KEYS, f"{where}.training")
        _check_values(level["training"], f"{where}.training")
    if "architecture" in level:
        _check_keys(level["architecture"], ARCHITECTURE_KEYS, f"{where}.architecture")
        _check_values(level["architecture"], f"{where}.architecture")
    if "models" in level:
        _check_models(level["models"], f"{where}.models")


def validate_config(config, name="config"):
    """Raise ``ValueError`` unless ``config`` has the schema of ``table1_config.json``.

    Top level: ``comment``, ``source`` (text), ``defaults`` and ``datasets``. ``defaults``
    and each ``datasets.<name>`` (a name of :data:`TABLE1_DATASETS`) hold ``training``
    (keys of :data:`TRAINING_KEYS`), ``architecture`` (``steps``, ``hidden``) and
    ``models.<model>`` (keyword arguments of :func:`refconf.baselines.build_model` for
    that model, except ``dim`` and ``random_state``); a dataset entry may add ``note``
    (text) and, for ``digits`` and the toy sets, ``data`` (``logit_lambda``; ``n_train``,
    ``n_val``, ``n_test``). Unknown keys and bad values are errors naming where they are.
    """
    _check_keys(config, ("comment", "source", "defaults", "datasets"), name)
    for key in ("comment", "source"):
        if key in config:
            _check_text(config[key], f"{name}.{key}")
    defaults = config.get("defaults", {})
    _check_keys(defaults, _SECTIONS, f"{name}.defaults")
    _check_levels(defaults, f"{name}.defaults")
    datasets = config.get("datasets", {})
    _check_keys(datasets, TABLE1_DATASETS, f"{name}.datasets")
    for dataset, entry in datasets.items():
        where = f"{name}.datasets.{dataset}"
        allowed = _SECTIONS + ("note",) + (("data",) if dataset not in UCI_DATASETS else ())
        _check_keys(entry, allowed, where)
        if "note" in entry:
            _check_text(entry["note"], f"{where}.note")
        _check_levels(entry, where)
        if "data" in entry:
            _check_data_section(dataset, entry["data"], f"{where}.data")
    return config


def _merge(base, update):
    """``base`` with ``update`` merged in: objects key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"config file {os.fspath(path)} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise ValueError(f"config file {os.fspath(path)}: expected a JSON object at the top, "
                         f"got {type(document).__name__}")
    return document


def load_config(user=None):
    """The Table 1 hyperparameters: the shipped ``refconf/table1_config.json``, with
    ``user`` merged over it.

    Parameters
    ----------
    user : None, str, os.PathLike or dict
        A JSON file (or its content as a dict) in the same schema; its objects are merged
        key by key into the shipped file's (so it needs only the entries it changes),
        anything else replaces the shipped value.

    Returns
    -------
    dict
        The merged configuration, validated by :func:`validate_config`.

    Raises
    ------
    OSError
        The user file cannot be read.
    ValueError
        Not JSON, unknown keys or bad values (the message says where).

    Examples
    --------
    >>> config = load_config({"datasets": {"power": {"training": {"epochs": 5}}}})
    >>> config["datasets"]["power"]["training"], config["defaults"]["training"]["batch_size"]
    ({'epochs': 5}, 100)
    """
    text = resources.files(__package__).joinpath(CONFIG_FILE).read_text(encoding="utf-8")
    config = validate_config(json.loads(text), f"shipped {CONFIG_FILE}")
    if user is None:
        return config
    if isinstance(user, dict):
        document, name = user, "user config"
    else:
        document, name = _read_json(user), f"config file {os.fspath(user)}"
    validate_config(document, name)  # errors point into the user's own file
    return validate_config(_merge(config, document), name)


def resolve_hyperparameters(config, dataset, models, overrides=None, model_kwargs=None):
    """The hyperparameters of one dataset: training settings and each model's builder
    arguments, after every level of precedence.

    Later levels win: ``defaults`` (``training``; ``architecture`` then
    ``models.<model>``), the same sections of ``datasets.<dataset>``, then ``overrides``
    (``epochs``, ``batch_size``, ``learning_rate``, ``lr_decay``, ``patience``,
    ``clip_norm``, ``steps``, ``hidden`` for every flow, ``m`` for CONF; ``None`` values
    are ignored), then ``model_kwargs[<model>]``. ``architecture`` and the
    ``steps``/``hidden`` overrides do not apply to the closed-form ``"gaussian"``.

    Returns
    -------
    dict
        ``{"training": {...}, "models": {model: {...}}, "data": {...}}``, JSON-ready.

    Examples
    --------
    >>> h = resolve_hyperparameters(load_config(), "gas", ["maf", "conf"], {"epochs": 3})
    >>> h["training"]["epochs"], h["models"]["maf"]["activation"], h["models"]["conf"]["m"]
    (3, 'tanh', 2)
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    model_kwargs = model_kwargs or {}
    levels = [config.get("defaults", {}), config.get("datasets", {}).get(dataset, {})]
    training = {}
    for level in levels:
        training.update(level.get("training", {}))
    training.update({k: v for k, v in overrides.items() if k in TRAINING_KEYS})
    missing = [k for k in TRAINING_KEYS if k not in training]
    if missing:
        raise ValueError(f"config: no value for training {missing} of dataset {dataset!r}; "
                         f"set them in defaults.training or datasets.{dataset}.training")
    resolved_models = {}
    for name in models:
        kwargs = {}
        for level in levels:
            if name != "gaussian":
                kwargs.update(level.get("architecture", {}))
            kwargs.update(level.get("models", {}).get(name, {}))
        if name != "gaussian":
            kwargs.update({k: v for k, v in overrides.items() if k in ARCHITECTURE_KEYS})
            missing = [k for k in ARCHITECTURE_KEYS if k not in kwargs]
            if missing:
                raise ValueError(f"config: no value for {missing} of {name} on {dataset!r}; "
                                 f"set them in defaults.architecture")
        if name == "conf" and "m" in overrides:
            kwargs["m"] = overrides["m"]
        kwargs.update(model_kwargs.get(name, {}))
        if "hidden" in kwargs:
            kwargs["hidden"] = [int(h) for h in kwargs["hidden"]]
        resolved_models[name] = kwargs
    data = dict(levels[1].get("data", {}))
    if dataset == DIGITS or dataset.startswith(TOY_PREFIX):
        missing = [k for k in DATA_KEYS[_data_kind(dataset)] if k not in data]
        if missing:
            raise ValueError(f"config: no value for data {missing} of dataset {dataset!r}; "
                             f"set them in datasets.{dataset}.data")
    return {"training": training, "models": resolved_models, "data": data}


# --- data -------------------------------------------------------------------------------


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


def _names(values, valid, what):
    values = [v.lower() if isinstance(v, str) else v for v in values]
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise ValueError(f"unknown {what} {unknown}; expected some of {', '.join(valid)}")
    return list(dict.fromkeys(values))


def _raw_splits(name, data_dir, allow_pickle, data_seed, data_options):
    """``(train, val, test)`` of one dataset before padding, the per-sample test
    correction that turns the model's log-density into the reported one (subtracted), and
    what the report says about the data."""
    if name == DIGITS:
        lam = data_options["logit_lambda"]
        (train, _), (val, _), (test, log_det_test) = load_digits_logit(data_seed, lam)
        # log p(y) = log q(logit(y)) + log|det dz/dy|: the correction is minus the log-det
        return (train, val, test), -log_det_test, {
            "source": f"scikit-learn 8x8 digits, dequantised, scaled to (0, 1), split and "
                      f"dequantised with seed {data_seed}",
            "preprocessing": f"logit with lambda {lam}; test NLL on the (0, 1) pixel scale, "
                             f"the logit's log-determinant included (validation NLLs in the "
                             f"trial records are in logit space)"}
    if name.startswith(TOY_PREFIX):
        toy = name[len(TOY_PREFIX):]
        sizes = [data_options[k] for k in ("n_train", "n_val", "n_test")]
        train, val, test = (sample_toy(toy, n, random_state=onp.random.default_rng([data_seed, i]))
                            for i, n in enumerate(sizes))
        true_nll = float(-onp.mean(toy_log_density(toy, test)))
        return (train, val, test), 0.0, {
            "source": f"refconf.data.sample_toy({toy!r}), seeds [{data_seed}, 0..2] for "
                      f"train/val/test",
            "true_test_nll": true_nll}
    splits = load_uci(name, data_dir, allow_pickle=allow_pickle)
    return splits, 0.0, {"source": f"MAF data under {os.path.abspath(data_dir)}"}


def _load(name, data_dir, padding, subsample, allow_pickle, data_seed, data_options):
    """Splits of one dataset, training rows cut to ``subsample``, padded; the test
    correction (subtracted from the model's log-density) and a description."""
    (train, val, test), correction, extra = _raw_splits(name, data_dir, allow_pickle,
                                                        data_seed, data_options)
    n_train_full = len(train)
    if subsample is not None:
        train = train[:subsample]
    mode = dataset_padding(name, train.shape[1], padding)
    if mode == "noise":  # independent noise per split
        splits = [pad_for_equal_split(x, mode, random_state=(data_seed, i))
                  for i, x in enumerate((train, val, test))]
        correction = correction + noise_padding_log_density(splits[2])
    else:
        splits = [pad_for_equal_split(x, mode) for x in (train, val, test)]
    info = {"dim": int(train.shape[1]), "dim_model": int(splits[0].shape[1]),
            "padding_applied": mode, "comparable_with_unpadded": mode not in SINGULAR_PADDINGS,
            "n_train": len(train), "n_train_available": n_train_full, "n_val": len(val),
            "n_test": len(test), **extra}
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


def _select_datasets(datasets, data_dir):
    """The requested dataset names, or (``None``) every dataset there may be: the MAF
    sets when ``data_dir`` is given (those not found are skipped), digits and toy sets."""
    if datasets is None:
        return list(UCI_DATASETS if data_dir is not None else ()) + [DIGITS, *TOY_DATASETS], True
    names = _names(list(datasets), TABLE1_DATASETS, "dataset(s)")
    needing = [name for name in names if name in UCI_DATASETS]
    if needing and data_dir is None:
        raise ValueError(f"dataset(s) {needing} need --data-dir (the MAF data release or its "
                         f"converted form); without it the datasets are "
                         f"{', '.join((DIGITS,) + TOY_DATASETS)}")
    return names, False


# --- the run ----------------------------------------------------------------------------


def reproduce_table1(data_dir=None, datasets=None, models=TABLE1_MODELS, trials=3,
                     subsample=None, padding="none", out=None, config=None, epochs=None,
                     batch_size=None, learning_rate=None, patience=None, clip_norm=None,
                     steps=None, hidden=None, m=None, seed=0, allow_pickle=False,
                     save_models=False, progress=True, model_kwargs=None, note=None, log=None):
    """Train ``models`` on ``datasets`` and compare the test NLL with the paper's Table 1.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder of the MAF data (release or converted layout, see
        :func:`refconf.data.load_uci`); needed for the MAF datasets only. Every dataset is
        loaded before any training, so missing data fail at once.
    datasets : sequence of str, optional
        Names from :data:`TABLE1_DATASETS`. Default: every dataset there is (the MAF sets
        found under ``data_dir``, the others skipped with a message; ``digits``; every toy
        set).
    models : sequence of str
        Names from :data:`refconf.baselines.MODEL_NAMES` (``"gaussian"`` is fitted in
        closed form, without training).
    trials : int
        Runs per model and dataset; trial ``k`` uses seed ``seed + k`` for the fixed
        architecture choices, the initialisation and the batch order.
    subsample : int, optional
        Use only the first ``subsample`` training rows (quick runs); validation and test
        sets are used whole.
    padding : {"none", "paper", "noise"}
        See the module docstring.
    out : str or os.PathLike, optional
        Folder for ``results.json``, ``results.csv``, ``table1.md``, ``config_used.json``
        and, with ``save_models``, ``models/<dataset>-<model>-trial<k>.npz``
        (:func:`refconf.params.save_model`; toy names are written ``toy-<name>``).
    config : None, str, os.PathLike or dict
        Hyperparameters merged over the shipped ``table1_config.json``
        (:func:`load_config`).
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
        tqdm bars during training.
    model_kwargs : dict, optional
        Per-model overrides applied last, e.g. ``{"conf": {"kind": "circular"}}``, passed
        to :func:`refconf.baselines.build_model`.
    note : str, optional
        A line shown at the top of the Markdown table and kept in the results (e.g. that
        the data are synthetic fixtures).
    log : callable, optional
        Receives one progress line per trial (default: print to stderr).

    Returns
    -------
    dict
        The content of ``results.json`` (rewritten after every model and dataset, with
        ``complete`` false until the end): ``paper`` (citation and table), ``padding``
        (mode, label, comparability), ``configuration`` (also ``config_used.json``: version,
        data folder, seeds, the merged config file and the resolved ``hyperparameters``
        per dataset and model), ``datasets`` (dimensions, padding applied, split sizes,
        sources), ``datasets_not_found``, ``results[dataset][model]`` (``test_nll`` per
        trial, ``mean``, ``two_std``, ``paper_mean``, ``paper_two_std``, per-trial records)
        and ``wall_seconds``.

    Raises
    ------
    FileNotFoundError, ValueError, ImportError
        Missing or malformed data (the loader's message), a bad config, or a bad argument.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    names, automatic = _select_datasets(datasets, data_dir)
    models = _names(list(models), MODEL_NAMES, "model(s)")
    trials = _positive_int(trials, "trials")
    subsample = _positive_int(subsample, "subsample", allow_none=True)
    m = _positive_int(m, "m", allow_none=True)
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if padding not in PADDING_CHOICES:
        raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}")
    overrides = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                 "patience": patience, "clip_norm": clip_norm, "steps": steps,
                 "hidden": None if hidden is None else list(hidden), "m": m}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_values(overrides, "argument")
    model_kwargs = dict(model_kwargs or {})
    if set(model_kwargs) - set(models):
        raise ValueError(f"model_kwargs for {sorted(set(model_kwargs) - set(models))}, which "
                         f"are not among the models run {models}")
    merged_config = load_config(config)
    hyper = {name: resolve_hyperparameters(merged_config, name, models, overrides, model_kwargs)
             for name in names}
    start = time.perf_counter()

    loaded, not_found = {}, []
    for name in names:
        log(f"loading {name} ...")
        try:
            loaded[name] = _load(name, data_dir, padding, subsample, allow_pickle, seed,
                                 hyper[name]["data"])
        except FileNotFoundError as err:
            if not automatic:
                raise
            not_found.append(name)
            log(f"skipping {name}: {' '.join(str(err).split())}")
    datasets = [name for name in names if name in loaded]
    hyper = {name: hyper[name] for name in datasets}
    for name in datasets:  # a bad architecture fails before any training
        for model_name in models:
            build_model(model_name, loaded[name][2]["dim_model"],
                        **hyper[name]["models"][model_name])
    if out is not None:
        os.makedirs(os.path.join(out, "models") if save_models else out, exist_ok=True)

    configuration = {
        "refconf_version": __version__,
        "data_dir": None if data_dir is None else os.path.abspath(data_dir),
        "datasets": datasets, "models": models, "trials": trials, "subsample": subsample,
        "padding": padding, "seed": seed, "trial_seeds": [seed + k for k in range(trials)],
        "data_seed": seed,
        "config_source": (f"refconf/{CONFIG_FILE} (shipped)" if config is None else
                          f"refconf/{CONFIG_FILE} (shipped), merged with "
                          + ("a dict" if isinstance(config, dict) else os.path.abspath(config))),
        "overrides": overrides, "model_kwargs": model_kwargs,
        "std": "2 x sample standard deviation (ddof = 1) over trials",
        "hyperparameters": hyper,
        "config": merged_config,
    }
    report = {
        "benchmark": "Table 1: test negative log-likelihood in nats per example "
                     "(lower is better)",
        "note": note,
        "complete": False,
        "paper": {"citation": PAPER_CITATION,
                  "table": {k: {d: list(v) for d, v in row.items()}
                            for k, row in PAPER_TABLE1.items()},
                  "padded_conf_datasets": list(PAPER_PADDED)},
        "padding": {"mode": padding, "label": PADDING_LABELS[padding],
                    "comparable_with_unpadded": all(
                        loaded[n][2]["comparable_with_unpadded"] for n in datasets)},
        "configuration": configuration,
        "datasets": {name: loaded[name][2] for name in datasets},
        "datasets_not_found": not_found,
        "results": {name: {} for name in datasets},
        "wall_seconds": None,
    }
    if out is not None:
        _write_text(os.path.join(out, "config_used.json"), _json(configuration))
    for name in datasets:
        (train, val, test), correction, info = loaded[name]
        training = {**hyper[name]["training"], "progress": progress}
        for model_name in models:
            records = [_run_trial(name, model_name, trial, seed + trial, (train, val, test),
                                  correction, hyper[name]["models"][model_name], training,
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
        _write_text(os.path.join(out, "results.csv"), format_csv(report))
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

            if isinstance(model, FlowModel):  # CONF: the default engine's explicit pass
                loss, gradient = nll_objective(model, default_engine())
            else:
                gradient = None

                def loss(p, batch):
                    return -anp.mean(model.build(p).log_prob(batch))

            fitted = fit(loss, params, train, val, random_state=trial_seed, gradient=gradient,
                         **training)
            params = fitted.params
        test_nll = _mean_nll(model.build(params), test, correction)
    record = {"trial": trial, "seed": trial_seed, "test_nll": test_nll,
              "seconds": time.perf_counter() - started,
              "epochs": len(fitted.history) if fitted else 0,
              "best_epoch": fitted.best_epoch if fitted else None,
              "best_val_nll": fitted.best_val_loss if fitted else None,
              "stopped_reason": fitted.stopped_reason if fitted else "closed_form",
              "engine": default_engine() if isinstance(model, FlowModel) else "numpy"}
    if out is not None:
        stem = name.replace(":", "-")  # no colons in file names
        path = os.path.join(out, "models", f"{stem}-{model_name}-trial{trial}.npz")
        save_model(path, params, model.spec, {"dataset": name, "padding": info,
                                              "record": record})
    nll = "non-finite" if test_nll is None else f"{test_nll:.4f}"
    log(f"[{name}] {DISPLAY_NAMES[model_name]} trial {trial + 1}: test NLL {nll} nats "
        f"({record['epochs']} epochs, {record['stopped_reason']}, {record['seconds']:.1f} s)")
    return record


# --- outputs ----------------------------------------------------------------------------


def _json(report):
    return json.dumps(report, indent=1, allow_nan=False) + "\n"


def _write_text(path, text):
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


CSV_FIXED_COLUMNS = ("model", "dataset", "D", "D_model", "padding", "trials", "mean",
                     "two_std")
CSV_TAIL_COLUMNS = ("paper_mean", "paper_two_std", "comparable_with_unpadded")


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)  # repr: round-trips


def format_csv(report):
    """``results.csv``: one row per model and dataset, in the table's order.

    Columns: :data:`CSV_FIXED_COLUMNS` (``D`` the data dimension, ``D_model`` after
    padding, ``padding`` the mode applied), ``nll_trial_1`` ... ``nll_trial_<trials>``
    (test NLL in nats per example), then ``paper_mean``, ``paper_two_std`` and
    ``comparable_with_unpadded``. Empty cells: no value (a single trial has no
    ``two_std``, a non-finite NLL none at all, the paper none for digits and toy sets).
    Floats are written with ``repr``, so they read back exactly as in ``results.json``.
    """
    trials = report["configuration"]["trials"]
    header = [*CSV_FIXED_COLUMNS, *(f"nll_trial_{k + 1}" for k in range(trials)),
              *CSV_TAIL_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for dataset, per_model in report["results"].items():
        info = report["datasets"][dataset]
        for model, cell in per_model.items():
            row = [model, dataset, info["dim"], info["dim_model"], info["padding_applied"],
                   len(cell["test_nll"]), cell["mean"], cell["two_std"], *cell["test_nll"],
                   cell["paper_mean"], cell["paper_two_std"], cell["comparable_with_unpadded"]]
            writer.writerow([_csv_value(v) for v in row])
    return buffer.getvalue()


def _cell(mean, two_std, mark=""):
    if mean is None:
        return "non-finite"
    return (f"{mean:.2f}" if two_std is None else f"{mean:.2f} ± {two_std:.2f}") + mark


def _paper_cell(value):
    if value is None:
        return NO_PAPER_VALUE
    mean, two_std = value
    return f"{mean:.2f} ± {two_std:.{3 if two_std < 0.01 else 2}f}"  # as printed in the paper


def _architecture_cell(model, kwargs):
    if model == "gaussian":
        return "closed form"
    text = f"{kwargs['steps']} × {kwargs['hidden']}"
    if "activation" in kwargs:
        text += f" {kwargs['activation']}"
    if model == "conf" and "m" in kwargs:
        text += f", m = {kwargs['m']}"
    return text


def _hyperparameter_lines(report):
    """A Markdown table of the resolved hyperparameters, one row per dataset."""
    c = report["configuration"]
    models = c["models"]
    lines = [
        f"Hyperparameters ({c['config_source']}; the paper gives none for CONF, so they "
        f"start from MAF's protocol, see the file's comment"
        + (f"; overridden: {c['overrides']}" if c["overrides"] else "")
        + (f"; per model: {c['model_kwargs']}" if c["model_kwargs"] else "")
        + "). Models: steps × conditioner widths, activation; all values in "
          "config_used.json.",
        "",
        "| dataset | max epochs | batch | learning rate | patience | clip | "
        + " | ".join(DISPLAY_NAMES[mdl] for mdl in models) + " |",
        "| --- |" + " ---: |" * 5 + " --- |" * len(models),
    ]
    for name in c["datasets"]:
        t = c["hyperparameters"][name]["training"]
        arch = c["hyperparameters"][name]["models"]
        lines.append(f"| {name.upper()} | {t['epochs']} | {t['batch_size']} | "
                     f"{t['learning_rate']:g} | {t['patience']} | {t['clip_norm']} | "
                     + " | ".join(_architecture_cell(mdl, arch[mdl]) for mdl in models) + " |")
    return lines


def _data_line(name, d):
    sub = (f" (first {d['n_train']} of {d['n_train_available']} training rows)"
           if d["n_train"] < d["n_train_available"] else "")
    text = (f"{name.upper()}: D = {d['dim']}, padding {d['padding_applied']}, "
            f"train/val/test {d['n_train']}/{d['n_val']}/{d['n_test']}{sub}")
    if "preprocessing" in d:
        text += f", {d['preprocessing']}"
    if "true_test_nll" in d:
        text += f", true test NLL {d['true_test_nll']:.3f}"
    return text


def format_markdown(report):
    """The Markdown report of :func:`reproduce_table1`'s result: the padding label, a
    table with this run's rows next to the paper's, the hyperparameters and the data."""
    datasets = list(report["results"])
    c = report["configuration"]
    models = c["models"]
    info = report["datasets"]
    padding = report["padding"]
    header = [f"{n.upper()} (D={info[n]['dim']}"
              + (f"→{info[n]['dim_model']}" if info[n]["dim_model"] != info[n]["dim"] else "")
              + ")" for n in datasets]
    lines = [f"# {report['benchmark']}", ""]
    if report.get("note"):
        lines += [f"**Note: {report['note']}**", ""]
    lines += [f"**{padding['label']}**", "",
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
    trials = c["trials"]
    spread = (f"mean ± 2 standard deviations (ddof = 1) over {trials} trials per cell"
              if trials > 1 else "a single trial per cell, no error bar")
    lines += [
        "",
        (f"This run: {spread} (model seeds {c['seed']}..{c['seed'] + trials - 1}"
         + (f", data seed {c['data_seed']} for the digits and toy sets"
            if any(n not in UCI_DATASETS for n in datasets) else "")
         + "); early stopping on the validation NLL, best-validation parameters; "
         f"refconf {c['refconf_version']}. {NO_PAPER_VALUE}: no published number."),
    ]
    if any(r["comparable_with_unpadded"] is False
           for per_model in report["results"].values() for r in per_model.values()):
        lines.append("† trained and evaluated on the paper's padded data: singular density, "
                     "NOT comparable with unpadded NLLs.")
    if any(n in PAPER_PADDED for n in datasets):
        lines.append("‡ the paper's CONF numbers for HEPMASS, MINIBOONE and BSDS300 were "
                     "obtained on padded data (its section 3.1).")
    lines += ["", *_hyperparameter_lines(report), ""]
    lines.append("Data: " + "; ".join(_data_line(n, info[n]) for n in datasets) + ".")
    if report.get("datasets_not_found"):
        lines.append(f"Not found under {c['data_dir']} (skipped): "
                     + ", ".join(report["datasets_not_found"]) + ".")
    lines += ["", f"Paper: {report['paper']['citation']}", ""]
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


_OUTPUTS = ("results.json", "results.csv", "table1.md", "config_used.json")


def _command(args):
    try:
        report = reproduce_table1(
            args.data_dir, datasets=args.datasets, models=args.models, trials=args.trials,
            subsample=args.subsample, padding=args.padding, out=args.out, config=args.config,
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
            patience=args.patience, steps=args.steps, hidden=args.hidden, m=args.m,
            seed=args.seed, allow_pickle=args.allow_pickle, save_models=args.save_models,
            progress=not args.quiet, note=args.note)
    except (OSError, ValueError, ImportError) as err:
        reason = " ".join(str(err).split())  # one line, whatever the message
        print(f"refconf reproduce: error: {reason}", file=sys.stderr)
        return 2
    print(format_markdown(report))
    print("wrote " + ", ".join(os.path.join(args.out, name) for name in _OUTPUTS),
          file=sys.stderr)
    return 0


def register(subparsers):
    """Add ``reproduce table1`` to an argparse subparsers object; the parser sets
    ``handler`` (``args -> int`` exit code) with ``set_defaults``."""
    parser = subparsers.add_parser(
        "reproduce", help="reproduce the paper's Table 1 (CONF and baselines, tabular data)",
        description="Train CONF and baselines on the MAF tabular benchmarks (with "
                    "--data-dir), the 8x8 digits and 2-D toy sets, and report the test NLL "
                    "(nats, mean ± 2 std over trials) next to the paper's Table 1. Writes "
                    "OUT/results.json, results.csv, table1.md and config_used.json. "
                    f"Hyperparameters per dataset come from refconf/{CONFIG_FILE} (the paper "
                    "gives none for CONF; they start from MAF's protocol); --config merges a "
                    "user file over it and the flags below override both.")
    parser.add_argument("target", choices=["table1"], help="what to reproduce")
    parser.add_argument("--data-dir",
                        help="folder of the MAF data release or of <name>/{train,val,test}.npy "
                             "(needed for power, gas, hepmass, miniboone, bsds300)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help=f"some of {' '.join(TABLE1_DATASETS)} (default: the MAF sets "
                             "found under --data-dir, digits and every toy set)")
    parser.add_argument("--models", nargs="+", default=list(TABLE1_MODELS), metavar="NAME",
                        help=f"some of {' '.join(MODEL_NAMES)} "
                             f"(default: {' '.join(TABLE1_MODELS)})")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--subsample", type=int, metavar="N",
                        help="use the first N training rows (a quick run)")
    parser.add_argument("--padding", choices=PADDING_CHOICES, default="none",
                        help="none: unequal splits (default); paper: the paper's mean/pixel "
                             "padding (singular, labelled not comparable); noise: N(0,1) "
                             "column, exactly corrected")
    parser.add_argument("--out", default="reports/table1", help="output folder")
    parser.add_argument("--config", metavar="FILE",
                        help=f"JSON file merged over refconf/{CONFIG_FILE} (same schema)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow reading GAS's pandas pickle from the MAF release")
    group = parser.add_argument_group("overrides of the configured hyperparameters "
                                      "(every dataset)")
    group.add_argument("--epochs", type=int, help="maximum epochs")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", type=float, help="Adam learning rate")
    group.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    group.add_argument("--steps", type=int, help="flow steps of every model")
    group.add_argument("--hidden", type=_widths, help="conditioner widths, e.g. 100,100")
    group.add_argument("--m", type=int, help="combined layers per CONF step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", help="a line shown above the table (e.g. what the data are)")
    parser.add_argument("--save-models", action="store_true",
                        help="also save every trained model under OUT/models/")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_command)


def main(argv=None):
    """``python -m refconf.reproduce table1 [options]``: the ``refconf reproduce``
    command on its own."""
    parser = argparse.ArgumentParser(prog="python -m refconf.reproduce")
    register(parser.add_subparsers(dest="command", required=True))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv if argv[:1] == ["reproduce"] else ["reproduce", *argv])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
