"""The MAF density-estimation benchmarks: POWER, GAS, HEPMASS, MINIBOONE, BSDS300.

Loaders for the data release of Papamakarios et al. (2017), "Masked Autoregressive Flow
for Density Estimation" (https://zenodo.org/record/1161203, ``data.tar.gz``), with the
release's preprocessing reproduced step by step (``docs/tutorials/uci-table1.md``) on current numpy and
pandas (the release's own loaders call ``DataFrame.as_matrix``, removed in pandas 1.0).

Two layouts of ``data_dir`` are read:

- the MAF release: ``power/data.npy``, ``gas/ethylene_CO.pickle``,
  ``hepmass/1000_train.csv`` and ``hepmass/1000_test.csv``, ``miniboone/data.npy``,
  ``BSDS300/BSDS300.hdf5``;
- the converted form, already preprocessed, one ``.npy`` per split:
  ``<name>/train.npy``, ``<name>/val.npy``, ``<name>/test.npy`` with ``<name>`` lower-case
  or the release's directory name (``BSDS300``). :func:`convert_uci` writes it.

=========  ===  =========  =======  =======
dataset    D    train      val      test
=========  ===  =========  =======  =======
POWER      6    1,659,917  184,435  204,928
GAS        8    852,174    94,685   105,206
HEPMASS    21   315,123    35,013   174,987
MINIBOONE  43   29,556     3,284    3,648
BSDS300    63   1,000,000  50,000   250,000
=========  ===  =========  =======  =======

The split rule shared by POWER, GAS and MINIBOONE ("tail split"): ``n_test =
int(0.1 N)`` last rows are the test set; of the rest, the last ``int(0.1 N_rest)`` rows
are the validation set.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from ._common import as_finite_2d, import_optional

__all__ = [
    "MAF_DATA_URL",
    "UCI_DATASETS",
    "UCI_SHAPES",
    "convert_uci",
    "load_uci",
    "preprocess_gas",
    "preprocess_hepmass",
    "preprocess_miniboone",
    "preprocess_power",
]

MAF_DATA_URL = "https://zenodo.org/record/1161203"
UCI_DATASETS = ("power", "gas", "hepmass", "miniboone", "bsds300")
UCI_SHAPES = {  # name: (D, n_train, n_val, n_test) from the MAF release
    "power": (6, 1_659_917, 184_435, 204_928),
    "gas": (8, 852_174, 94_685, 105_206),
    "hepmass": (21, 315_123, 35_013, 174_987),
    "miniboone": (43, 29_556, 3_284, 3_648),
    "bsds300": (63, 1_000_000, 50_000, 250_000),
}
# Directory and file names in the MAF release.
_RELEASE = {
    "power": ("power", ("data.npy",)),
    "gas": ("gas", ("ethylene_CO.pickle",)),
    "hepmass": ("hepmass", ("1000_train.csv", "1000_test.csv")),
    "miniboone": ("miniboone", ("data.npy",)),
    "bsds300": ("BSDS300", ("BSDS300.hdf5",)),
}
CONVERTED_FILES = ("train.npy", "val.npy", "test.npy")
SPLITS = ("train", "val", "test")
LAYOUTS = ("auto", "maf", "converted")

POWER_RAW_COLUMNS = 8  # active, reactive power, voltage, intensity, 3 sub-meterings, time
GAS_DROPPED = ("Meth", "Eth", "Time")
GAS_CORRELATION_THRESHOLD = 0.98
REPEATED_MINIMUM_LIMIT = 5  # a column whose minimum occurs more often is dropped


# ----------------------------------------------------------------------------------------
# Preprocessing (arrays in, float64 (train, val, test) out)
# ----------------------------------------------------------------------------------------

def _tail_split(data, what):
    """Last int(0.1 N) rows -> test; last int(0.1 N_rest) of the rest -> val."""
    n_test = int(0.1 * len(data))
    rest = len(data) - n_test
    n_val = int(0.1 * rest)
    if n_test == 0 or n_val == 0:
        raise ValueError(f"{what}: {len(data)} rows are too few for the 10% / 10% split "
                         f"(at least 11 needed)")
    return data[:rest - n_val], data[rest - n_val:rest], data[rest:]


def _standardise(splits, reference, ddof):
    """(x - mean) / std of ``reference``, applied to every split."""
    mu = reference.mean(axis=0)
    s = reference.std(axis=0, ddof=ddof)
    return tuple((x - mu) / s for x in splits)


def _repeated_minimum_columns(x):
    """Indices of the columns whose smallest value occurs more than 5 times."""
    counts = np.count_nonzero(x == x.min(axis=0), axis=0)
    return np.flatnonzero(counts > REPEATED_MINIMUM_LIMIT)


def preprocess_power(raw):
    """MAF preprocessing of POWER (household electric power consumption).

    1. ``RandomState(42)`` shuffles the rows of the 8-column ``data.npy``;
    2. delete column 3 (global intensity), then column 1 (reactive power), leaving
       [active power, voltage, 3 sub-meterings, time];
    3. add uniform noise from the same generator, drawn in this order: ``0.01 rand(N, 1)``
       to voltage, ``0.001 rand(N, 1)`` to active power, ``rand(N, 3)`` to the
       sub-meterings, none to time;
    4. tail split, then standardise every split with the mean and std (ddof 0) of
       train + val.

    Parameters
    ----------
    raw : ndarray, shape (N, 8)

    Returns
    -------
    train, val, test : ndarray, float64, shape (n, 6)
    """
    data = as_finite_2d(raw, "POWER data.npy").copy()
    if data.shape[1] != POWER_RAW_COLUMNS:
        raise ValueError(f"POWER data.npy: expected {POWER_RAW_COLUMNS} columns, got "
                         f"{data.shape[1]}")
    rng = np.random.RandomState(42)
    rng.shuffle(data)
    n = len(data)
    data = np.delete(np.delete(data, 3, axis=1), 1, axis=1)
    voltage_noise = 0.01 * rng.rand(n, 1)
    active_noise = 0.001 * rng.rand(n, 1)
    submetering_noise = rng.rand(n, 3)
    noise = np.hstack([active_noise, voltage_noise, submetering_noise, np.zeros((n, 1))])
    train, val, test = _tail_split(data + noise, "POWER")
    return _standardise((train, val, test), np.vstack([train, val]), ddof=0)


def _correlation_pruned_columns(x):
    """Indices kept by the MAF GAS loop: while some column has more than one Pearson
    correlation > 0.98 (itself included), drop the first such column."""
    keep = np.arange(x.shape[1])
    while True:
        with np.errstate(invalid="ignore", divide="ignore"):  # constant column -> NaN, no hit
            corr = np.corrcoef(x[:, keep], rowvar=False)
        hits = np.count_nonzero(np.atleast_2d(corr) > GAS_CORRELATION_THRESHOLD, axis=1)
        over = np.flatnonzero(hits > 1)
        if over.size == 0:
            return keep
        keep = np.delete(keep, over[0])


def preprocess_gas(sensors):
    """MAF preprocessing of GAS (ethylene and CO sensor array), after dropping the
    Meth, Eth and Time columns.

    1. repeatedly drop the first column with more than one Pearson correlation above
       0.98 (the diagonal included), until none is left (16 sensors -> 8 columns);
    2. standardise with the whole data's mean and std (ddof 1), before splitting;
    3. tail split, no shuffle.

    Parameters
    ----------
    sensors : ndarray, shape (N, n_sensors)

    Returns
    -------
    train, val, test : ndarray, float64
    """
    x = as_finite_2d(sensors, "GAS sensors")
    x = x[:, _correlation_pruned_columns(x)]
    (x,) = _standardise((x,), x, ddof=1)
    return _tail_split(x, "GAS")


def preprocess_hepmass(train_table, test_table):
    """MAF preprocessing of HEPMASS (the mass-1000 files).

    1. keep the rows with label (column 0) equal to 1, the signal, and drop the label;
       the test table also drops its last column;
    2. standardise both with the mean and std (ddof 1) of the filtered training table;
    3. drop every column whose smallest value occurs more than 5 times in the training
       table (27 -> 21 columns);
    4. validation set = last int(0.1 N) rows of the training table.

    Parameters
    ----------
    train_table : ndarray, shape (N_train, 1 + D)
    test_table : ndarray, shape (N_test, 1 + D + 1)

    Returns
    -------
    train, val, test : ndarray, float64
    """
    train = as_finite_2d(train_table, "HEPMASS 1000_train.csv")
    test = as_finite_2d(test_table, "HEPMASS 1000_test.csv")
    train = train[train[:, 0] == 1, 1:]
    test = test[test[:, 0] == 1, 1:-1]
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"HEPMASS: 1000_train.csv gives {train.shape[1]} features after the "
                         f"label, 1000_test.csv {test.shape[1]} after dropping its label and "
                         f"last column; they must match")
    train, test = _standardise((train, test), train, ddof=1)
    keep = np.setdiff1d(np.arange(train.shape[1]), _repeated_minimum_columns(train))
    train, test = train[:, keep], test[:, keep]
    n_val = int(0.1 * len(train))
    if n_val == 0:
        raise ValueError(f"HEPMASS: {len(train)} signal rows in 1000_train.csv are too few "
                         f"for a 10% validation split (at least 10 needed)")
    return train[:-n_val], train[-n_val:], test


def preprocess_miniboone(data):
    """MAF preprocessing of MINIBOONE (``data.npy`` is already cleaned: 43 columns).

    Tail split, no shuffle; standardise with the mean and std (ddof 0) of train + val.

    Parameters
    ----------
    data : ndarray, shape (N, D)

    Returns
    -------
    train, val, test : ndarray, float64
    """
    train, val, test = _tail_split(as_finite_2d(data, "MINIBOONE data.npy"), "MINIBOONE")
    return _standardise((train, val, test), np.vstack([train, val]), ddof=0)


# ----------------------------------------------------------------------------------------
# Reading the two layouts
# ----------------------------------------------------------------------------------------

def _read_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not a plain numeric .npy file ({err})") from err


def _read_hepmass(directory):
    pd = import_optional("pandas", "Reading HEPMASS's CSV files")
    tables = []
    for filename in _RELEASE["hepmass"][1]:
        path = directory / filename
        # index_col=False as in the release's loader: trailing fields are not an index.
        frame = pd.read_csv(path, index_col=False)
        try:
            tables.append(frame.to_numpy(dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: non-numeric entries ({err})") from err
    return preprocess_hepmass(*tables)


def _read_gas(directory, allow_pickle):
    path = directory / _RELEASE["gas"][1][0]
    if not allow_pickle:
        raise ValueError(
            f"GAS's release file {path} is a pandas pickle, and unpickling a file can run "
            f"arbitrary code. If you trust it, opt in with load_uci('gas', ..., "
            f"allow_pickle=True), or once with convert_uci('gas', ..., allow_pickle=True), "
            f"which writes {directory / 'train.npy'}, val.npy and test.npy that load "
            f"without pickle from then on.")
    pd = import_optional("pandas", "Reading GAS's pickle")
    try:
        frame = pd.read_pickle(path)
    except Exception as err:  # old-pandas pickles fail in many ways; say which file and why
        raise ValueError(f"{path}: pandas {pd.__version__} could not read this pickle "
                         f"({type(err).__name__}: {err}); convert it where it loads, or use "
                         f"the converted layout (train.npy, val.npy, test.npy)") from err
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{path}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in GAS_DROPPED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: expected columns {list(GAS_DROPPED)} to drop, missing "
                         f"{missing}")
    sensors = frame.drop(columns=list(GAS_DROPPED))
    try:
        sensors = sensors.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: non-numeric sensor columns ({err})") from err
    return preprocess_gas(sensors)


def _read_bsds300(directory):
    h5py = import_optional("h5py", "Reading BSDS300.hdf5")
    path = directory / _RELEASE["bsds300"][1][0]
    with h5py.File(path, "r") as f:
        missing = [k for k in ("train", "validation", "test") if k not in f]
        if missing:
            raise ValueError(f"{path}: missing dataset(s) {missing}; expected train, "
                             f"validation, test")
        return tuple(f[k][()] for k in ("train", "validation", "test"))


def _read_release(name, directory, allow_pickle):
    if name == "power":
        return preprocess_power(_read_npy(directory / "data.npy"))
    if name == "gas":
        return _read_gas(directory, allow_pickle)
    if name == "hepmass":
        return _read_hepmass(directory)
    if name == "miniboone":
        return preprocess_miniboone(_read_npy(directory / "data.npy"))
    return _read_bsds300(directory)


def _check_name(name):
    key = name.lower() if isinstance(name, str) else None
    if key not in UCI_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names (case-insensitive): "
                         f"{', '.join(UCI_DATASETS)}")
    return key


def _candidate_dirs(data_dir, name):
    names = dict.fromkeys([name, _RELEASE[name][0]])
    return [data_dir / d for d in names]


def _present(directory, filenames):
    return [f for f in filenames if (directory / f).is_file()]


def _find_dir(dirs, filenames, what):
    """First directory holding all ``filenames``; None if none holds any; an error naming
    the missing files if one holds only some."""
    for d in dirs:
        present = _present(d, filenames)
        if present and len(present) < len(filenames):
            missing = [str(d / f) for f in filenames if f not in present]
            raise FileNotFoundError(f"incomplete {what} in {d}: missing {', '.join(missing)}")
        if present:
            return d
    return None


def _not_found(name, data_dir, layout):
    dirs = _candidate_dirs(data_dir, name)
    release = [str(dirs[-1] / f) for f in _RELEASE[name][1]]
    converted = [str(dirs[0] / f) for f in CONVERTED_FILES]
    wanted = {
        "maf": f"the MAF release file(s) {', '.join(release)}",
        "converted": f"the converted split files {', '.join(converted)}",
    }
    expected = (" or ".join(wanted.values()) if layout == "auto" else wanted[layout])
    return FileNotFoundError(
        f"{name.upper()} not found under {data_dir}: expected {expected}. The data come from "
        f"the MAF data release (Papamakarios et al. 2017) on Zenodo, record 1161203: "
        f"{MAF_DATA_URL} (data.tar.gz; unpack it into {data_dir}).")


def _finish(name, splits, source):
    out = []
    for split, x in zip(SPLITS, splits, strict=True):
        what = f"{name.upper()} {split} split ({source})"
        x = as_finite_2d(x, what)
        if len(x) == 0:
            raise ValueError(f"{what}: no rows")
        out.append(x)
    widths = {x.shape[1] for x in out}
    if len(widths) != 1:
        raise ValueError(f"{name.upper()} ({source}): the splits have different numbers of "
                         f"columns {[x.shape[1] for x in out]}")
    return tuple(out)


def load_uci(name, data_dir, allow_pickle=False, layout="auto"):
    """Train, validation and test arrays of a MAF benchmark, preprocessed as in the release.

    Parameters
    ----------
    name : str
        ``"power"``, ``"gas"``, ``"hepmass"``, ``"miniboone"`` or ``"bsds300"``
        (case-insensitive).
    data_dir : str or os.PathLike
        Directory holding ``<name>/`` (the release's directory names or lower-case).
    allow_pickle : bool
        GAS only: allow reading the release's ``gas/ethylene_CO.pickle``, a pandas pickle.
        Unpickling can execute arbitrary code, so this is an explicit opt-in, off by
        default; the converted layout needs no pickle (see :func:`convert_uci`). ``.npy``
        files are always read with ``allow_pickle=False``.
    layout : {"auto", "maf", "converted"}
        Which layout to read. ``"auto"`` reads the converted split files when present,
        otherwise the release files. A directory holding only some of a layout's files is
        an error naming the missing ones.

    Returns
    -------
    train, val, test : ndarray, float64, shape (n_split, D)
        Finite, 2-D, with the same D. Shapes for the real release are in
        :data:`UCI_SHAPES` and the module docstring (POWER 6, GAS 8, HEPMASS 21,
        MINIBOONE 43, BSDS300 63 columns).

    Raises
    ------
    FileNotFoundError
        Neither layout is present; the message names the expected paths and the release
        (:data:`MAF_DATA_URL`).
    ValueError
        Unknown name or layout, malformed files, or the GAS pickle without
        ``allow_pickle=True``.
    ImportError
        pandas (GAS, HEPMASS release files) or h5py (BSDS300) missing:
        ``pip install refconf[data]``.

    Notes
    -----
    Per dataset, the steps of :func:`preprocess_power`, :func:`preprocess_gas`,
    :func:`preprocess_hepmass` and :func:`preprocess_miniboone`; BSDS300's HDF5 datasets
    ``train``, ``validation``, ``test`` are returned as stored (8x8 monochrome patches,
    mean-subtracted, the bottom-right pixel dropped: it equals minus the sum of the other
    63). The four UCI sets come out standardised: their NLLs are in nats on that scale,
    the scale of the published tables.
    """
    key = _check_name(name)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    data_dir = Path(os.fspath(data_dir))
    dirs = _candidate_dirs(data_dir, key)
    if layout in ("auto", "converted"):
        directory = _find_dir(dirs, CONVERTED_FILES, "converted split files")
        if directory is not None:
            splits = [_read_npy(directory / f) for f in CONVERTED_FILES]
            return _finish(key, splits, f"converted files in {directory}")
    if layout in ("auto", "maf"):
        directory = _find_dir(dirs[::-1], _RELEASE[key][1], "MAF release files")
        if directory is not None:
            splits = _read_release(key, directory, allow_pickle)
            return _finish(key, splits, f"MAF release files in {directory}")
    raise _not_found(key, data_dir, layout)


def _save_npy_atomic(path, array):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def convert_uci(name, data_dir, out_dir=None, allow_pickle=False):
    """Preprocess a dataset from the MAF release files once and save the converted layout.

    Reads ``data_dir``'s release files (``layout="maf"``) and writes
    ``out_dir/<name>/train.npy``, ``val.npy`` and ``test.npy`` (``<name>`` lower-case),
    each through a temporary file and an atomic rename. :func:`load_uci` then reads them
    without pandas, h5py or pickle.

    Parameters
    ----------
    name, data_dir, allow_pickle
        As for :func:`load_uci`.
    out_dir : str or os.PathLike, optional
        Defaults to ``data_dir``.

    Returns
    -------
    pathlib.Path
        The directory written.
    """
    key = _check_name(name)
    splits = load_uci(key, data_dir, allow_pickle=allow_pickle, layout="maf")
    target = Path(os.fspath(data_dir if out_dir is None else out_dir)) / key
    target.mkdir(parents=True, exist_ok=True)
    for filename, x in zip(CONVERTED_FILES, splits, strict=True):
        _save_npy_atomic(target / filename, x)
    return target
