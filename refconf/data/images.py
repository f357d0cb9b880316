"""MNIST and CIFAR-10 from a user path, dequantised and logit-transformed (MAF convention).

Pixels ``x`` in {0, ..., 255} become ``y = (x + u) / 256`` with ``u ~ U[0, 1)``
(dequantisation), then ``z = logit(lam + (1 - 2 lam) y)``; MAF uses ``lam = 1e-6`` for
MNIST and ``lam = 0.05`` for CIFAR-10. The loaders return each split with the per-sample
log-determinant of that preprocessing,

    log|det dz / d(x + u)| = sum [log(1 - 2 lam) - log p - log(1 - p)] - D log 256,

so a model's NLL on ``z`` converts to the dequantised pixel scale as ``NLL - log_det`` and to
bits per dimension with :func:`refconf.data.bits_per_dim` (``log_det_preprocessing`` = the
mean log-det of the split).

MNIST is read from the IDX files (``train-images-idx3-ubyte`` and
``t10k-images-idx3-ubyte``, optionally ``.gz``), which need no pickle. The CIFAR-10
"python version" batches are pickles: reading them runs code from the file, so it is an
explicit opt-in, ``allow_pickle=True``.
"""

import gzip
import os
import pickle
import struct

import numpy as np

from ..bijectors import Logit
from ..storage import atomic_write

__all__ = ["dequantize_logit", "load_cifar10", "load_mnist", "read_idx", "write_idx"]

MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_idx(path):
    """Read an IDX file (the MNIST format): a magic number ``0x0000TTNN`` (type ``TT``,
    ``NN`` dimensions), ``NN`` big-endian int32 sizes, then the data. ``.gz`` is read
    transparently. Raises ``ValueError`` for a file that is not IDX or is truncated."""
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header announces shape {shape} ({expected} bytes of "
                         f"data) but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(os.fspath(directory), candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"expected {os.path.join(os.fspath(directory), name)}[.gz]; MNIST's IDX files come "
        "from yann.lecun.com/exdb/mnist (mirrors: the torchvision and TensorFlow datasets)")


def dequantize_logit(pixels, lam, rng, levels=256):
    """``(z, log_det)`` of integer pixels in ``{0, ..., levels - 1}`` (one row per image)::

        y = (x + u) / levels,  u ~ U[0, 1)^D          (dequantise, scale to (0, 1))
        z = logit(lam + (1 - 2 lam) y)                (the logit with its lambda)

    ``log_det = log|det dz / d(x + u)|`` per image: the logit's (:class:`~refconf.bijectors.Logit`)
    plus ``-D log(levels)`` of the scaling. A density ``q`` of ``z`` then gives
    ``log p(x + u) = log q(z) + log_det`` on the dequantised pixel scale, and bits per
    dimension ``-(log q(z) + log_det) / (D ln 2)`` (:func:`refconf.data.bits_per_dim`;
    ``docs/theory/image-flows.md``).

    Examples
    --------
    The logistic density of ``z`` truncated to the image of ``(0, 1)`` is uniform in the
    pixels: exactly ``log2(levels)`` bits per dimension.

    >>> from scipy.special import expit
    >>> rng = np.random.default_rng(0)
    >>> z, ld = dequantize_logit(rng.integers(0, 256, (5, 3)), 0.05, rng)
    >>> log_q = np.sum(np.log(expit(z) * expit(-z)), axis=1) - 3 * np.log(0.9)
    >>> bool(np.allclose(-(log_q + ld) / (3 * np.log(2)), 8.0))
    True
    """
    if int(levels) != levels or levels < 2:
        raise ValueError(f"dequantize_logit: levels must be an integer >= 2, got {levels!r}")
    x = np.asarray(pixels).reshape(len(pixels), -1).astype(np.float64)
    if x.size and (x.min() < 0 or x.max() > levels - 1 or not np.all(x == np.round(x))):
        raise ValueError(f"dequantize_logit: expected integer pixels in 0..{levels - 1}, got "
                         f"values in [{x.min()}, {x.max()}]")
    y = (x + rng.uniform(size=x.shape)) / float(levels)
    z, log_det = Logit(lam).forward(y)
    return z, log_det - x.shape[1] * np.log(float(levels))


def write_idx(path, array):
    """Write ``array`` (uint8, any number of axes) as an IDX file (:func:`read_idx`'s
    format: magic ``0x00000800 + ndim``, big-endian int32 sizes, the bytes), atomically.

    Examples
    --------
    >>> import os, tempfile
    >>> images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_idx(os.path.join(tmp, "x-idx3-ubyte"), images)
    ...     back = read_idx(os.path.join(tmp, "x-idx3-ubyte"))
    >>> bool(np.array_equal(back, images))
    True
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim < 1:
        raise ValueError(f"write_idx: expected a uint8 array with at least one axis, got "
                         f"{array.dtype} of shape {array.shape}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with atomic_write(path) as f:
        f.write(header + np.ascontiguousarray(array).tobytes())


def _splits(train_pixels, test_pixels, lam, val_fraction, random_state):
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(random_state)
    n_val = round(val_fraction * len(train_pixels))
    train, val = train_pixels[:-n_val], train_pixels[-n_val:]
    return tuple(dequantize_logit(p, lam, rng) for p in (train, val, test_pixels))


def load_mnist(directory, lam=1e-6, val_fraction=1 / 6, random_state=0):
    """MNIST as ``((z_train, ld), (z_val, ld), (z_test, ld))``, 784 dimensions.

    The training file's last ``val_fraction`` (10,000 of 60,000, as in MAF) is the
    validation split; test is the 10,000 ``t10k`` images. See the module docstring for
    the preprocessing and its log-determinant ``ld``.
    """
    train = read_idx(_find(directory, MNIST_FILES["train"]))
    test = read_idx(_find(directory, MNIST_FILES["test"]))
    for name, images in (("train", train), ("test", test)):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"MNIST {name} images: expected uint8 of shape (n, 28, 28), got "
                             f"{images.dtype} {images.shape}")
    return _splits(train, test, lam, val_fraction, random_state)


def _read_cifar_batch(path):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = batch.get(b"data") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (expected a dict with "
                         "b'data' of shape (n, 3072))")
    return data


def load_cifar10(directory, lam=0.05, val_fraction=0.1, random_state=0, allow_pickle=False):
    """CIFAR-10 as ``((z_train, ld), (z_val, ld), (z_test, ld))``, 3072 dimensions
    (channels, then rows, then columns, as stored).

    ``directory`` holds the python batches (``data_batch_1`` ... ``data_batch_5``,
    ``test_batch``, as in ``cifar-10-batches-py``). They are pickles, so
    ``allow_pickle=True`` must be passed: only do so for files from a source you trust.
    The last ``val_fraction`` of the training images is the validation split.
    """
    if not allow_pickle:
        raise ValueError(
            "the CIFAR-10 python batches are pickle files, and loading a pickle runs code "
            "from the file; pass allow_pickle=True if you trust "
            f"{os.fspath(directory)}")
    paths = [os.path.join(os.fspath(directory), name) for name in CIFAR_TRAIN + [CIFAR_TEST]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"missing CIFAR-10 batch file(s) {missing}; the python version comes from "
            "www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)")
    train = np.concatenate([_read_cifar_batch(p) for p in paths[:-1]])
    test = _read_cifar_batch(paths[-1])
    return _splits(train, test, lam, val_fraction, random_state)
