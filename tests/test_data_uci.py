"""MAF-format loaders: every preprocessing step against a direct computation on small
synthetic files written in each release format."""

import sys
from collections import Counter

import numpy as np
import pytest

from refconf.data import UCI_DATASETS, convert_uci, load_uci

from .data.maf_files import (
    HEPMASS_DROPPED,
    gas_frame_columns,
    write_hepmass,
    write_miniboone,
    write_power,
)


def _assert_splits(actual, expected, rtol=1e-12, atol=1e-12):
    assert len(actual) == 3
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == np.float64
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def _save_converted(directory, splits):
    directory.mkdir(parents=True, exist_ok=True)
    for name, x in zip(("train", "val", "test"), splits, strict=True):
        np.save(directory / f"{name}.npy", x)


# ---- POWER -----------------------------------------------------------------------------

def test_power_shuffle_noise_order_split_and_standardisation(tmp_path):
    raw = write_power(tmp_path, n=240)
    n = len(raw)
    rng = np.random.RandomState(42)
    order = rng.permutation(n)  # the same draws as RandomState.shuffle of the rows
    kept = raw[order][:, [0, 2, 4, 5, 6, 7]]  # columns 3 and 1 deleted
    voltage = 0.01 * rng.rand(n, 1)
    active = 0.001 * rng.rand(n, 1)
    submetering = rng.rand(n, 3)
    noisy = kept.copy()
    noisy[:, [0]] += active
    noisy[:, [1]] += voltage
    noisy[:, 2:5] += submetering
    # 240 rows: 24 test, then 21 of the remaining 216 for validation
    train, val, test = noisy[:195], noisy[195:216], noisy[216:]
    reference = np.concatenate([train, val])
    mu = reference.mean(axis=0)
    sd = np.sqrt(((reference - mu) ** 2).mean(axis=0))
    expected = [(x - mu) / sd for x in (train, val, test)]

    result = load_uci("POWER", tmp_path)
    _assert_splits(result, expected)
    assert [x.shape for x in result] == [(195, 6), (21, 6), (24, 6)]
    # the noise is part of the data: the noiseless columns give different values
    noiseless = (kept[:195] - mu) / sd
    assert np.abs(result[0] - noiseless).max() > 0.1


def test_power_rejects_wrong_column_count_and_too_few_rows(tmp_path):
    (tmp_path / "power").mkdir()
    np.save(tmp_path / "power" / "data.npy", np.zeros((50, 7)))
    with pytest.raises(ValueError, match="8 columns"):
        load_uci("power", tmp_path)
    np.save(tmp_path / "power" / "data.npy", np.arange(80.0).reshape(10, 8))
    with pytest.raises(ValueError, match="too few"):
        load_uci("power", tmp_path)


# ---- GAS -------------------------------------------------------------------------------

def _gas_pickle(root):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(dict(gas_frame_columns()))
    (root / "gas").mkdir(parents=True, exist_ok=True)
    frame.to_pickle(root / "gas" / "ethylene_CO.pickle")
    return frame


def _pruned_by_pandas(frame):
    """The release's loop, written with pandas: drop the first column with more than one
    correlation above 0.98, until none."""
    frame = frame.drop(columns=["Meth", "Eth", "Time"])
    while True:
        counts = (frame.corr() > 0.98).sum(axis=1).to_numpy()
        if not np.any(counts > 1):
            return list(frame.columns)
        frame = frame.drop(columns=frame.columns[np.argmax(counts > 1)])


def test_gas_correlation_pruning_standardisation_and_split(tmp_path):
    frame = _gas_pickle(tmp_path)
    survivors = _pruned_by_pandas(frame)
    assert survivors == ["C", "E", "F", "G"]  # the chain A-B-C and the pair D-E resolved
    x = frame[survivors].to_numpy()
    x = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    # 400 rows: 40 test, then 36 of the remaining 360 for validation, no shuffle
    expected = (x[:324], x[324:360], x[360:])

    result = load_uci("gas", tmp_path, allow_pickle=True)
    _assert_splits(result, expected)
    whole = np.concatenate(result)
    np.testing.assert_allclose(whole.std(axis=0, ddof=1), 1.0, rtol=1e-12)


def test_gas_pickle_needs_explicit_opt_in(tmp_path):
    _gas_pickle(tmp_path)
    with pytest.raises(ValueError, match="allow_pickle=True") as err:
        load_uci("gas", tmp_path)
    assert "train.npy" in str(err.value)
    assert "arbitrary code" in str(err.value)


def test_convert_uci_writes_the_converted_layout_once(tmp_path):
    _gas_pickle(tmp_path)
    direct = load_uci("gas", tmp_path, allow_pickle=True)
    out = convert_uci("gas", tmp_path, tmp_path / "converted", allow_pickle=True)
    assert sorted(p.name for p in out.iterdir()) == ["test.npy", "train.npy", "val.npy"]
    _assert_splits(load_uci("gas", tmp_path / "converted"), direct, rtol=0, atol=0)
    # converted next to the pickle: auto reads the npy files, no opt-in needed
    convert_uci("gas", tmp_path, allow_pickle=True)
    _assert_splits(load_uci("gas", tmp_path), direct, rtol=0, atol=0)


# ---- HEPMASS ---------------------------------------------------------------------------

def test_hepmass_label_filter_standardisation_column_pruning_and_split(tmp_path):
    pytest.importorskip("pandas")
    write_hepmass(tmp_path)
    directory = tmp_path / "hepmass"
    train = np.loadtxt(directory / "1000_train.csv", delimiter=",", skiprows=1)
    test = np.loadtxt(directory / "1000_test.csv", delimiter=",", skiprows=1)
    train = train[train[:, 0] == 1][:, 1:]
    test = test[test[:, 0] == 1][:, 1:-1]
    mu, sd = train.mean(axis=0), train.std(axis=0, ddof=1)  # the training file's statistics
    train, test = (train - mu) / sd, (test - mu) / sd
    dropped = [j for j, column in enumerate(train.T)
               if Counter(column.tolist())[min(column)] > 5]
    assert tuple(dropped) == HEPMASS_DROPPED
    keep = [j for j in range(train.shape[1]) if j not in dropped]
    train, test = train[:, keep], test[:, keep]
    expected = (train[:-13], train[-13:], test)  # 130 signal rows: 13 for validation

    result = load_uci("hepmass", tmp_path)
    _assert_splits(result, expected, rtol=1e-10, atol=1e-10)
    assert result[0].shape == (117, 5)
    # the test split is standardised with the training statistics, not its own
    assert np.abs(result[2].std(axis=0, ddof=1) - 1.0).max() > 0.2


def test_hepmass_mismatched_feature_counts(tmp_path):
    pytest.importorskip("pandas")
    write_hepmass(tmp_path)
    path = tmp_path / "hepmass" / "1000_test.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n")
    with pytest.raises(ValueError, match="must match"):
        load_uci("hepmass", tmp_path)


# ---- MINIBOONE and BSDS300 -------------------------------------------------------------

def test_miniboone_split_and_standardisation(tmp_path):
    data = write_miniboone(tmp_path, n=150)
    # 150 rows: 15 test, then 13 of the remaining 135 for validation, no shuffle
    train, val, test = data[:122], data[122:135], data[135:]
    reference = data[:135]
    mu = reference.mean(axis=0)
    sd = np.sqrt(((reference - mu) ** 2).mean(axis=0))
    _assert_splits(load_uci("miniboone", tmp_path), [(x - mu) / sd for x in (train, val, test)])


@pytest.mark.parametrize("directory", ["BSDS300", "bsds300"])
def test_bsds300_passthrough(tmp_path, directory):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    splits = [rng.normal(size=(n, 63)).astype(np.float32) for n in (40, 10, 12)]
    (tmp_path / directory).mkdir()
    with h5py.File(tmp_path / directory / "BSDS300.hdf5", "w") as f:
        for key, x in zip(("train", "validation", "test"), splits, strict=True):
            f.create_dataset(key, data=x)
    _assert_splits(load_uci("BSDS300", tmp_path), splits, rtol=0, atol=0)


# ---- layouts and errors ----------------------------------------------------------------

@pytest.mark.parametrize("name, directory", [("power", "power"), ("BSDS300", "BSDS300"),
                                             ("bsds300", "bsds300"), ("Gas", "gas")])
def test_converted_layout(tmp_path, name, directory):
    rng = np.random.default_rng(1)
    splits = [rng.normal(size=(n, 4)) for n in (30, 5, 7)]
    _save_converted(tmp_path / directory, splits)
    _assert_splits(load_uci(name, tmp_path), splits, rtol=0, atol=0)
    _assert_splits(load_uci(name, tmp_path, layout="converted"), splits, rtol=0, atol=0)


def test_auto_prefers_converted_and_maf_layout_forces_release(tmp_path):
    write_miniboone(tmp_path)
    from_release = load_uci("miniboone", tmp_path)
    converted = [x[:, :3] for x in from_release]
    _save_converted(tmp_path / "miniboone", converted)
    _assert_splits(load_uci("miniboone", tmp_path), converted, rtol=0, atol=0)
    _assert_splits(load_uci("miniboone", tmp_path, layout="maf"), from_release, rtol=0, atol=0)


def test_missing_files_name_the_expected_paths_and_the_release(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_uci("hepmass", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "hepmass" / "1000_train.csv") in message
    assert str(tmp_path / "hepmass" / "1000_test.csv") in message
    assert str(tmp_path / "hepmass" / "train.npy") in message
    assert "1161203" in message
    write_miniboone(tmp_path)
    with pytest.raises(FileNotFoundError, match="converted split files"):
        load_uci("miniboone", tmp_path, layout="converted")


def test_incomplete_layouts_name_the_missing_file(tmp_path):
    (tmp_path / "power").mkdir()
    np.save(tmp_path / "power" / "train.npy", np.zeros((5, 2)))
    np.save(tmp_path / "power" / "test.npy", np.zeros((5, 2)))
    with pytest.raises(FileNotFoundError, match="val.npy"):
        load_uci("power", tmp_path)
    (tmp_path / "hepmass").mkdir()
    (tmp_path / "hepmass" / "1000_train.csv").write_text("# label,f0\n1,0.5\n")
    with pytest.raises(FileNotFoundError, match="1000_test.csv"):
        load_uci("hepmass", tmp_path)


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, np.nan]]), "non-finite"),
    (np.zeros(4), "2-D"),
    (np.array([[{"a": 1}]], dtype=object), "not a plain numeric"),
])
def test_converted_arrays_are_validated(tmp_path, bad, match):
    splits = [np.zeros((3, 2)), bad, np.zeros((3, 2))]
    directory = tmp_path / "miniboone"
    directory.mkdir()
    for name, x in zip(("train", "val", "test"), splits, strict=True):
        np.save(directory / f"{name}.npy", x, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        load_uci("miniboone", tmp_path)


def test_converted_splits_must_agree_in_width(tmp_path):
    _save_converted(tmp_path / "gas", [np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="different numbers of columns"):
        load_uci("gas", tmp_path)


def test_unknown_name_and_layout(tmp_path):
    with pytest.raises(ValueError) as err:
        load_uci("mnist", tmp_path)
    for name in UCI_DATASETS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="layout"):
        load_uci("power", tmp_path, layout="npy")


def test_missing_optional_packages_name_the_extra(tmp_path, monkeypatch):
    (tmp_path / "hepmass").mkdir()
    for filename in ("1000_train.csv", "1000_test.csv"):
        (tmp_path / "hepmass" / filename).write_text("# label,f0\n1,0.5\n")
    (tmp_path / "BSDS300").mkdir()
    (tmp_path / "BSDS300" / "BSDS300.hdf5").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install refconf\[data\]"):
        load_uci("hepmass", tmp_path)
    with pytest.raises(ImportError, match=r"pip install refconf\[data\]"):
        load_uci("bsds300", tmp_path)
