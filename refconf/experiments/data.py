"""The datasets of the experiments: names, loading, the padding of odd dimensions, splits.

- ``power``, ``gas``, ``hepmass``, ``miniboone``, ``bsds300``: the MAF data under a data
  folder (:func:`refconf.data.load_uci`);
- ``digits``: scikit-learn's 8x8 digits, dequantised and scaled to (0, 1), fitted after a
  logit (:func:`refconf.data.digits.load_digits_logit`); the NLL is reported on the (0, 1)
  scale, the logit's log-determinant included;
- ``toy:<name>`` for each of :data:`refconf.data.TOY_DENSITIES`: fixed-size samples of
  :func:`refconf.data.sample_toy`; the true test NLL is reported alongside.

Padding (:data:`PADDING_CHOICES`; why, in docs/theory/padding.md):

- ``"none"``: odd dimensions are split unequally, ``d1 = floor(D/2)``, ``d2 = ceil(D/2)``.
- ``"paper"``: the paper's equal-split padding (section 3.1): HEPMASS and MINIBOONE get the
  per-sample mean appended, BSDS300 the average of its dropped pixel's two neighbours. The
  padded density is singular, its likelihood unbounded: NOT comparable with unpadded NLLs.
- ``"noise"``: one ``N(0, 1)`` column, its exact log-density subtracted
  (:func:`refconf.data.noise_padding_log_density`), so the NLLs stay comparable.
"""

import dataclasses
import os

import numpy as onp

from ..data import (
    TOY_DENSITIES,
    UCI_DATASETS,
    load_uci,
    noise_padding_log_density,
    pad_for_equal_split,
    sample_toy,
    toy_log_density,
)
from ..data.digits import load_digits_logit

__all__ = ["DATA_KEYS", "DIGITS", "PADDING_CHOICES", "TABLE1_DATASETS", "TOY_DATASETS", "TOY_PREFIX",
           "DataSource", "Dataset", "dataset_padding", "load_dataset", "load_datasets"]

DIGITS = "digits"
TOY_PREFIX = "toy:"
TOY_DATASETS = tuple(TOY_PREFIX + name for name in TOY_DENSITIES)
TABLE1_DATASETS = UCI_DATASETS + (DIGITS,) + TOY_DATASETS
PADDING_CHOICES = ("none", "paper", "noise")
SINGULAR_PADDINGS = ("paper_mean", "paper_bsds")
#: The options of the datasets drawn by refconf (the ``data`` section of their config).
DATA_KEYS = {DIGITS: ("logit_lambda",), "toy": ("n_train", "n_val", "n_test")}


def data_kind(dataset):
    """``"toy"`` for every toy set, else the dataset's own name."""
    return "toy" if dataset.startswith(TOY_PREFIX) else dataset


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


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where the data come from and how they are cut: the same for every dataset of a run.

    ``data_dir`` holds the MAF sets; ``subsample`` keeps the first rows of each training
    split; ``padding`` is one of :data:`PADDING_CHOICES`; ``seed`` draws the digits split
    and dequantisation, the toy samples and the noise padding (the same data in every
    trial); ``allow_pickle`` lets :func:`refconf.data.load_uci` read GAS's release pickle.
    """

    data_dir: str | None = None
    subsample: int | None = None
    padding: str = "none"
    seed: int = 0
    allow_pickle: bool = False


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One loaded dataset: ``splits`` (train, validation, test) as the models see them
    (cut and padded), ``correction`` (subtracted from a model's per-sample
    log-density to give the reported one: a float or one value per test row) and
    ``info`` (JSON: dimensions, padding applied, split sizes, source)."""

    splits: tuple
    correction: object
    info: dict


def _digits(seed, options):
    lam = options["logit_lambda"]
    (train, _), (val, _), (test, log_det_test) = load_digits_logit(seed, lam)
    # log p(y) = log q(logit(y)) + log|det dz/dy|: the correction is minus the log-det
    return (train, val, test), -log_det_test, {
        "source": f"scikit-learn 8x8 digits, dequantised, scaled to (0, 1), split and "
                  f"dequantised with seed {seed}",
        "preprocessing": f"logit with lambda {lam}; test NLL on the (0, 1) pixel scale, "
                         f"the logit's log-determinant included (validation NLLs in the "
                         f"trial records are in logit space)"}


def _toy(name, seed, options):
    toy = name[len(TOY_PREFIX):]
    sizes = [options[k] for k in ("n_train", "n_val", "n_test")]
    train, val, test = (sample_toy(toy, n, random_state=onp.random.default_rng([seed, i]))
                        for i, n in enumerate(sizes))
    true_nll = float(-onp.mean(toy_log_density(toy, test)))
    return (train, val, test), 0.0, {
        "source": f"refconf.data.sample_toy({toy!r}), seeds [{seed}, 0..2] for "
                  f"train/val/test",
        "true_test_nll": true_nll}


def _raw_splits(name, source, options):
    """``(train, val, test)`` before cutting and padding, the test correction and what
    the report says about the data."""
    if name == DIGITS:
        return _digits(source.seed, options)
    if name.startswith(TOY_PREFIX):
        return _toy(name, source.seed, options)
    splits = load_uci(name, source.data_dir, allow_pickle=source.allow_pickle)
    return splits, 0.0, {"source": f"MAF data under {os.path.abspath(source.data_dir)}"}


def load_dataset(name, source, options):
    """Dataset ``name`` (one of :data:`TABLE1_DATASETS`) from ``source`` (a
    :class:`DataSource`): training rows cut to ``source.subsample``, every split padded
    by :func:`dataset_padding`; ``options`` is the dataset's ``data`` config section
    (``logit_lambda`` for the digits, ``n_train``, ``n_val``, ``n_test`` for toy sets).

    Raises
    ------
    FileNotFoundError
        A MAF set missing under ``source.data_dir`` (the loader's message).
    """
    (train, val, test), correction, extra = _raw_splits(name, source, options)
    n_train_full = len(train)
    if source.subsample is not None:
        train = train[:source.subsample]
    mode = dataset_padding(name, train.shape[1], source.padding)
    if mode == "noise":  # independent noise per split
        splits = tuple(pad_for_equal_split(x, mode, random_state=(source.seed, i))
                       for i, x in enumerate((train, val, test)))
        correction = correction + noise_padding_log_density(splits[2])
    else:
        splits = tuple(pad_for_equal_split(x, mode) for x in (train, val, test))
    info = {"dim": int(train.shape[1]), "dim_model": int(splits[0].shape[1]),
            "padding_applied": mode, "comparable_with_unpadded": mode not in SINGULAR_PADDINGS,
            "n_train": len(train), "n_train_available": n_train_full, "n_val": len(val),
            "n_test": len(test), **extra}
    return Dataset(splits, correction, info)


def load_datasets(names, source, options, automatic=False, log=print):
    """Load every dataset of ``names`` before any training, so that missing data fail
    at once.

    With ``automatic`` (the names were not chosen by the user) a missing MAF set is
    skipped with a message, unless every MAF set is missing: a data folder without any
    is a mistake, not a choice. ``options`` maps each name to its ``data`` section.

    Returns
    -------
    loaded : dict
        Name -> :class:`Dataset`, in the order of ``names``.
    not_found : list of str
        The MAF sets skipped.

    Raises
    ------
    FileNotFoundError
        A requested dataset is missing, or (``automatic``) no MAF set is found under
        ``source.data_dir``.
    """
    loaded, not_found = {}, []
    for name in names:
        log(f"loading {name} ...")
        try:
            loaded[name] = load_dataset(name, source, options[name])
        except FileNotFoundError as err:
            if not automatic:
                raise
            not_found.append(name)
            log(f"skipping {name}: {' '.join(str(err).split())}")
    if automatic and not_found and not_found == [n for n in names if n in UCI_DATASETS]:
        where = os.path.abspath(source.data_dir)
        state = "" if os.path.isdir(where) else " (no such folder)"
        raise FileNotFoundError(
            f"no MAF dataset found under --data-dir {where}{state}: expected the MAF data "
            f"release or <name>/{{train,val,test}}.npy for some of {', '.join(UCI_DATASETS)}; "
            f"without --data-dir the run uses {DIGITS} and the toy sets")
    return loaded, not_found
