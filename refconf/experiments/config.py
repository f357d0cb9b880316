"""The Table 1 configuration: the shipped hyperparameter file, a user's file merged over it,
command-line overrides, and the run's settings (:class:`Table1Config`).

Hyperparameters (:func:`load_config`): one JSON file shipped with the package,
``refconf/table1_config.json``, per dataset. The paper gives none for CONF, so they start
from MAF's protocol (Papamakarios et al. 2017), as the file's ``comment`` and ``source``
say. A user file (``--config``) is merged over it; command-line flags override both
(:func:`resolve_hyperparameters`).
"""

import copy
import dataclasses
import json
import os
from importlib import resources

from ..checks import is_finite_real, is_integer
from ..data import UCI_DATASETS
from .data import (
    DATA_KEYS,
    DIGITS,
    PADDING_CHOICES,
    TABLE1_DATASETS,
    TOY_DATASETS,
    DataSource,
    data_kind,
)
from .trials import MODELS

__all__ = ["ARCHITECTURE_KEYS", "CONFIG_FILE", "TABLE1_MODELS", "TRAINING_KEYS", "Table1Config",
           "load_config", "resolve_hyperparameters", "validate_config"]

CONFIG_FILE = "table1_config.json"  # package data of refconf
TABLE1_MODELS = ("conf", "realnvp", "glow", "maf")
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "lr_decay", "patience", "clip_norm")
ARCHITECTURE_KEYS = ("steps", "hidden")
# set by the harness itself: the data dimension and the per-trial seed
RESERVED_MODEL_KEYS = ("dim", "random_state")
_SECTIONS = ("training", "architecture", "models")


def _positive_int(value, name, allow_none=False):
    if allow_none and value is None:
        return None
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# training and architecture values: name -> (check, what is expected)
_VALUE_CHECKS = {
    "epochs": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "learning_rate": (lambda v: is_finite_real(v) and v > 0, "a finite number > 0"),
    "lr_decay": (lambda v: is_finite_real(v) and 0 < v <= 1, "a number in (0, 1]"),
    "patience": (lambda v: v is None or (is_integer(v) and v >= 1),
                 "a positive integer or null (no early stopping)"),
    "clip_norm": (lambda v: v is None or (is_finite_real(v) and v > 0),
                  "a finite number > 0 or null (no clipping)"),
    "steps": (lambda v: is_integer(v) and v >= 1, "a positive integer"),
    "hidden": (lambda v: isinstance(v, (list, tuple)) and len(v) > 0
               and all(is_integer(h) and h >= 1 for h in v),
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
    if not isinstance(section, dict):  # a JSON value of the wrong kind: a bad document
        raise ValueError(
            f"{where}: expected a JSON object, got {type(section).__name__} {section!r:.60}")


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
    _check_keys(section, tuple(MODELS), where)
    for name, kwargs in section.items():
        at = f"{where}.{name}"
        _check_object(kwargs, at)
        reserved = [k for k in kwargs if k in RESERVED_MODEL_KEYS]
        if reserved:
            raise ValueError(f"{at}: {reserved} cannot be configured: the harness sets the "
                             f"dimension from the data and the seed from the trial")
        misplaced = sorted(set(kwargs) & set(ARCHITECTURE_KEYS))
        if misplaced and not MODELS[name].architecture:
            raise ValueError(f"{at}: {MODELS[name].display} has no architecture; it takes "
                             f"no {misplaced}")
        _check_values(kwargs, at)
        try:  # the builder names the arguments it takes and checks their values
            MODELS[name].check(kwargs, 4)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{at}: {err}") from None


def _check_data_section(dataset, section, where):
    kind = data_kind(dataset)
    _check_keys(section, DATA_KEYS[kind], where)
    for key, value in section.items():
        if key == "logit_lambda" and not (is_finite_real(value) and 0 < value < 0.5):
            raise ValueError(f"{where}: logit_lambda must be a number in (0, 0.5), "
                             f"got {value!r}")
        if key.startswith("n_") and not (is_integer(value) and value >= 2):
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
    ``models.<model>`` (a name of :data:`~refconf.experiments.trials.MODELS`: keyword
    arguments of that model's builder, :func:`refconf.baselines.build_model` for the
    flows, except ``dim`` and ``random_state``); a dataset entry may add ``note``
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
    if not isinstance(document, dict):  # a JSON value of the wrong kind: a bad document
        raise ValueError(
            f"config file {os.fspath(path)}: expected a JSON object at the top, "
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
    text = resources.files("refconf").joinpath(CONFIG_FILE).read_text(encoding="utf-8")
    config = validate_config(json.loads(text), f"shipped {CONFIG_FILE}")
    if user is None:
        return config
    if isinstance(user, dict):
        document, name = user, "user config"
    else:
        document, name = _read_json(user), f"config file {os.fspath(user)}"
    validate_config(document, name)  # errors point into the user's own file
    return validate_config(_merge(config, document), name)


def _resolve_model(levels, dataset, name, overrides, last):
    """The builder arguments of model ``name`` (see :func:`resolve_hyperparameters`)."""
    architecture = MODELS[name].architecture
    kwargs = {}
    for level in levels:
        if architecture:
            kwargs.update(level.get("architecture", {}))
        kwargs.update(level.get("models", {}).get(name, {}))
    if architecture:
        kwargs.update({k: v for k, v in overrides.items() if k in ARCHITECTURE_KEYS})
        missing = [k for k in ARCHITECTURE_KEYS if k not in kwargs]
        if missing:
            raise ValueError(f"config: no value for {missing} of {name} on {dataset!r}; "
                             f"set them in defaults.architecture")
    if name == "conf" and "m" in overrides:
        kwargs["m"] = overrides["m"]
    kwargs.update(last)
    if "hidden" in kwargs:
        kwargs["hidden"] = [int(h) for h in kwargs["hidden"]]
    return kwargs


def resolve_hyperparameters(config, dataset, models, overrides=None, model_kwargs=None):
    """The hyperparameters of one dataset: training settings and each model's builder
    arguments, after every level of precedence.

    Later levels win: ``defaults`` (``training``; ``architecture`` then
    ``models.<model>``), the same sections of ``datasets.<dataset>``, then ``overrides``
    (``epochs``, ``batch_size``, ``learning_rate``, ``lr_decay``, ``patience``,
    ``clip_norm``, ``steps``, ``hidden`` for every flow, ``m`` for CONF; ``None`` values
    are ignored), then ``model_kwargs[<model>]``. ``architecture`` and the
    ``steps``/``hidden`` overrides do not apply to models without an architecture (the
    closed-form ``"gaussian"``, estimators; :attr:`ModelEntry.architecture
    <refconf.experiments.trials.ModelEntry>`).

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
    levels = [config.get("defaults", {}), config.get("datasets", {}).get(dataset, {})]
    training = {}
    for level in levels:
        training.update(level.get("training", {}))
    training.update({k: v for k, v in overrides.items() if k in TRAINING_KEYS})
    missing = [k for k in TRAINING_KEYS if k not in training]
    if missing:
        raise ValueError(f"config: no value for training {missing} of dataset {dataset!r}; "
                         f"set them in defaults.training or datasets.{dataset}.training")
    resolved_models = {name: _resolve_model(levels, dataset, name, overrides,
                                            (model_kwargs or {}).get(name, {}))
                       for name in models}
    data = dict(levels[1].get("data", {}))
    missing = [k for k in DATA_KEYS.get(data_kind(dataset), ()) if k not in data]
    if missing:
        raise ValueError(f"config: no value for data {missing} of dataset {dataset!r}; "
                         f"set them in datasets.{dataset}.data")
    return {"training": training, "models": resolved_models, "data": data}




def choose_names(values, valid, what):
    """``values`` lower-cased, checked against ``valid`` and without repeats."""
    values = [v.lower() if isinstance(v, str) else v for v in values]
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise ValueError(f"unknown {what} {unknown}; expected some of {', '.join(valid)}")
    return tuple(dict.fromkeys(values))


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Command-line overrides of the configured hyperparameters, for every dataset (None:
    keep the configured value): the :func:`refconf.train.fit` settings, ``steps`` and
    ``hidden`` of every flow, ``m`` of CONF."""

    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    lr_decay: float | None = None
    patience: int | None = None
    clip_norm: float | None = None
    steps: int | None = None
    hidden: tuple | None = None
    m: int | None = None

    def as_dict(self):
        """The values set, JSON-ready (``hidden`` as a list); ``ValueError`` for a bad one."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values = {k: list(v) if k == "hidden" else v for k, v in values.items()
                  if v is not None}
        _check_values(values, "argument")
        if "m" in values:
            _positive_int(values["m"], "m")
        return values


def _check_seed(seed):
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclasses.dataclass(frozen=True)
class Table1Config:
    """The settings of one Table 1 run, checked by :meth:`create`.

    Attributes
    ----------
    datasets : tuple of str or None
        The requested datasets; None: every dataset there is (:meth:`dataset_names`).
    models : tuple of str
        Names of :data:`refconf.experiments.trials.MODELS`.
    trials : int
        Trials per model and dataset; trial ``k`` uses seed ``seed + k``.
    seed : int
        The first trial's seed, and the seed of the data drawn by refconf.
    data : DataSource
        The data folder, subsample, padding, data seed and pickle permission.
    config : None, str, os.PathLike or dict
        Hyperparameters merged over the shipped file (:func:`load_config`).
    overrides : Overrides
    model_kwargs : dict
        Per-model builder arguments applied last.
    note : str or None
        A line shown above the table.
    save_models : bool
        Also save every trained model.
    """

    datasets: tuple | None
    models: tuple
    trials: int
    seed: int
    data: DataSource
    config: object = None
    overrides: Overrides = Overrides()
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    note: str | None = None
    save_models: bool = False

    @classmethod
    def create(cls, data_dir=None, datasets=None, models=TABLE1_MODELS, trials=3,
               subsample=None, padding="none", seed=0, allow_pickle=False, config=None,
               overrides=Overrides(), model_kwargs=None, note=None, save_models=False):
        """Check and normalise the arguments of
        :func:`~refconf.experiments.table1.reproduce_table1`; ``ValueError`` for a bad one."""
        models = choose_names(list(models), tuple(MODELS), "model(s)")
        if padding not in PADDING_CHOICES:
            raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}")
        overrides.as_dict()
        model_kwargs = dict(model_kwargs or {})
        if set(model_kwargs) - set(models):
            raise ValueError(f"model_kwargs for {sorted(set(model_kwargs) - set(models))}, "
                             f"which are not among the models run {list(models)}")
        data = DataSource(None if data_dir is None else os.fspath(data_dir),
                          _positive_int(subsample, "subsample", allow_none=True), padding,
                          _check_seed(seed), bool(allow_pickle))
        chosen = None if datasets is None else choose_names(list(datasets), TABLE1_DATASETS,
                                                            "dataset(s)")
        result = cls(chosen, models, _positive_int(trials, "trials"), data.seed, data, config,
                     overrides, model_kwargs, note, bool(save_models))
        result.dataset_names()  # the MAF sets need a data folder
        return result

    def dataset_names(self):
        """``(names, automatic)``: the requested datasets, or (none requested) every
        dataset there may be: the MAF sets when a data folder is given (those not found
        are skipped), the digits and the toy sets."""
        data_dir = self.data.data_dir
        if self.datasets is None:
            maf = UCI_DATASETS if data_dir is not None else ()
            return [*maf, DIGITS, *TOY_DATASETS], True
        needing = [name for name in self.datasets if name in UCI_DATASETS]
        if needing and data_dir is None:
            raise ValueError(f"dataset(s) {needing} need --data-dir (the MAF data release or "
                             f"its converted form); without it the datasets are "
                             f"{', '.join((DIGITS,) + TOY_DATASETS)}")
        return list(self.datasets), False

    def hyperparameters(self, names):
        """``(merged, resolved)``: the merged config file and, per dataset of ``names``,
        :func:`resolve_hyperparameters`."""
        merged = load_config(self.config)
        resolved = {name: resolve_hyperparameters(merged, name, self.models,
                                                  self.overrides.as_dict(), self.model_kwargs)
                    for name in names}
        return merged, resolved

    def config_source(self):
        """Where the hyperparameters come from, in words."""
        shipped = f"refconf/{CONFIG_FILE} (shipped)"
        if self.config is None:
            return shipped
        user = "a dict" if isinstance(self.config, dict) else os.path.abspath(self.config)
        return f"{shipped}, merged with {user}"
