"""The Table 2 loaders on small files written in the released formats."""

import numpy as np
import pytest
from scipy.io import savemat

from refconf.data import load_binarized_digits, load_binarized_mnist, load_caltech_silhouettes
from refconf.data.binarized import BINARIZED_MNIST_FILES, CALTECH_FILE, read_amat


def _write_amat(path, rows):
    path.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in rows))


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    splits = {name: rng.integers(0, 2, size=(n, 784)) for name, n in
              zip(BINARIZED_MNIST_FILES.values(), (5, 3, 4))}
    for name, rows in splits.items():
        _write_amat(tmp_path / name, rows)
    return tmp_path, list(splits.values())


def test_binarized_mnist_reads_the_amat_files(mnist_dir):
    folder, expected = mnist_dir
    splits = load_binarized_mnist(folder)
    for got, want in zip(splits, expected):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


def test_a_missing_file_names_every_expected_file_and_the_source(mnist_dir):
    folder, _ = mnist_dir
    (folder / "binarized_mnist_valid.amat").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_binarized_mnist(folder)
    message = str(err.value)
    assert "missing binarized_mnist_valid.amat" in message
    assert all(name in message for name in BINARIZED_MNIST_FILES.values())
    assert "larocheh" in message


@pytest.mark.parametrize(("text", "match"), [
    ("0 1 2\n1 0 1\n", "line 1 holds something other"),
    ("0 1 1\n1 0\n", "line 2 has 2, the first 3"),
    ("0 10 1\n", "line 1 holds"),
])
def test_malformed_amat_lines_are_named(tmp_path, text, match):
    path = tmp_path / "x.amat"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_amat(path)


def test_wrong_width_is_refused(tmp_path):
    for name in BINARIZED_MNIST_FILES.values():
        _write_amat(tmp_path / name, np.ones((2, 10)))
    with pytest.raises(ValueError, match="784 pixels"):
        load_binarized_mnist(tmp_path)


def test_caltech_is_transposed_and_flipped_as_the_sylvester_code_does(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"train_data": rng.integers(0, 2, (6, 784)).astype(np.uint8),
              "val_data": rng.integers(0, 2, (2, 784)).astype(np.uint8),
              "test_data": rng.integers(0, 2, (3, 784)).astype(np.uint8)}
    savemat(tmp_path / CALTECH_FILE, arrays)
    train, val, test = load_caltech_silhouettes(tmp_path)
    for got, raw in zip((train, val, test), arrays.values()):
        assert got.shape == raw.shape
        for row, original in zip(got, raw):
            # pixel (i, j) of the stored 28 x 28 image lands at j * 28 + i, flipped
            np.testing.assert_array_equal(row.reshape(28, 28), 1 - original.reshape(28, 28).T)


def test_caltech_errors_name_the_file_and_the_arrays(tmp_path):
    with pytest.raises(FileNotFoundError, match="caltech101_silhouettes_28_split1.mat"):
        load_caltech_silhouettes(tmp_path)
    savemat(tmp_path / CALTECH_FILE, {"train_data": np.zeros((2, 784))})
    with pytest.raises(ValueError, match="val_data"):
        load_caltech_silhouettes(tmp_path)


def test_binarized_digits_threshold_and_split():
    from sklearn.datasets import load_digits

    train, val, test = load_binarized_digits(random_state=3)
    assert (len(train), len(val), len(test)) == (1258, 180, 359)
    everything = np.concatenate([train, val, test])
    expected = (load_digits().data >= 8).astype(float)
    # the same images, in another order
    assert sorted(map(bytes, everything.astype(np.uint8))) == sorted(
        map(bytes, expected.astype(np.uint8)))
    assert 0.2 < everything.mean() < 0.5
    again = load_binarized_digits(random_state=3)
    np.testing.assert_array_equal(again[0], train)
