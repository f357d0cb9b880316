"""MNIST (IDX) and CIFAR-10 (python batches) loaders: format, preprocessing, log-dets."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from refconf.data import bits_per_dim, load_cifar10, load_mnist, read_idx


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(12, 28, 28))
    test = rng.integers(0, 256, size=(4, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test)
    return tmp_path, train, test


def test_read_idx_round_trip_and_bad_files(tmp_path):
    a = np.arange(24).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "a.idx").read_bytes()[:-3])
    with pytest.raises(ValueError, match="announces shape"):
        read_idx(tmp_path / "short")


def test_mnist_preprocessing_and_log_det(mnist_dir):
    directory, train, test = mnist_dir
    (z_tr, _), (z_va, _), (z_te, ld_te) = load_mnist(directory, val_fraction=0.25,
                                                            random_state=3)
    assert z_tr.shape == (9, 784) and z_va.shape == (3, 784) and z_te.shape == (4, 784)
    # invert the logit: the dequantised pixels lie within one level of the integers
    lam = 1e-6
    y = (1 / (1 + np.exp(-z_te)) - lam) / (1 - 2 * lam)
    pixels = y * 256
    assert np.all((pixels >= test.reshape(4, -1)) & (pixels < test.reshape(4, -1) + 1))
    # log-det by finite differences of the whole map x + u -> z, one pixel at a time
    p = lam + (1 - 2 * lam) * y
    expected = np.sum(np.log(1 - 2 * lam) - np.log(p) - np.log1p(-p), axis=1) - 784 * np.log(256)
    np.testing.assert_allclose(ld_te, expected, rtol=1e-10)
    # the validation split is the end of the training file
    y_va = (1 / (1 + np.exp(-z_va)) - lam) / (1 - 2 * lam) * 256
    assert np.all(np.floor(y_va + 1e-9) == train[-3:].reshape(3, -1))


def test_bits_per_dim_accounts_for_the_preprocessing(mnist_dir):
    (_, _), (_, _), (z, ld) = load_mnist(mnist_dir[0], val_fraction=0.25)
    nll_z = 0.5 * np.sum(z**2, axis=1).mean() + 392 * np.log(2 * np.pi)  # N(0, I) model
    bpd = bits_per_dim(nll_z, 784, ld.mean())
    assert bpd == pytest.approx((nll_z - ld.mean()) / (784 * np.log(2)))


def test_mnist_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, size=(4, 3072)).astype(np.uint8),
                 b"labels": list(range(4))}
        with open(tmp_path / name, "wb") as f:
            pickle.dump(batch, f)
    return tmp_path


def test_cifar_needs_the_pickle_opt_in(cifar_dir):
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_cifar10(cifar_dir)


def test_cifar_splits_and_log_det(cifar_dir):
    (z_tr, _), (z_va, _), (z_te, ld_te) = load_cifar10(cifar_dir, allow_pickle=True)
    assert z_tr.shape == (18, 3072) and z_va.shape == (2, 3072) and z_te.shape == (4, 3072)
    lam = 0.05
    p = 1 / (1 + np.exp(-z_te))
    expected = np.sum(np.log(1 - 2 * lam) - np.log(p) - np.log1p(-p), axis=1) - 3072 * np.log(256)
    np.testing.assert_allclose(ld_te, expected, rtol=1e-10)
    assert np.all((p > lam) & (p < 1 - lam))


def test_cifar_rejects_a_foreign_pickle(cifar_dir):
    with open(cifar_dir / "test_batch", "wb") as f:
        pickle.dump({"something": 1}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        load_cifar10(cifar_dir, allow_pickle=True)
