"""Binary image sets of the VAE experiments (the paper's Table 2): statically binarised
MNIST, Caltech 101 Silhouettes, and scikit-learn's 8x8 digits binarised.

Each loader returns ``(train, val, test)``, float64 arrays of 0/1 values, one image per
row, and raises ``FileNotFoundError`` naming the expected files and where they come from.
"""

import os

import numpy as np
from scipy.io import loadmat

__all__ = ["BINARIZED_MNIST_FILES", "BINARIZED_MNIST_URL", "CALTECH_FILE", "CALTECH_URL",
           "DIGITS_THRESHOLD", "load_binarized_digits", "load_binarized_mnist",
           "load_caltech_silhouettes", "read_amat"]

BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
#: split -> file name, in Larochelle's release (50000 / 10000 / 10000 rows).
BINARIZED_MNIST_FILES = {"train": "binarized_mnist_train.amat",
                         "valid": "binarized_mnist_valid.amat",
                         "test": "binarized_mnist_test.amat"}
CALTECH_URL = ("https://people.cs.umass.edu/~marlin/data/"
               "caltech101_silhouettes_28_split1.mat")
CALTECH_FILE = "caltech101_silhouettes_28_split1.mat"
CALTECH_ARRAYS = ("train_data", "val_data", "test_data")  # 4100 / 2264 / 2307 rows
PIXELS = 784
#: A digits pixel (0..16) becomes 1 when it is at least this value (half the range).
DIGITS_THRESHOLD = 8
_ZERO, _ONE = ord("0"), ord("1")


def _missing(data_dir, names, source):
    missing = [n for n in names if not os.path.isfile(os.path.join(data_dir, n))]
    if missing:
        raise FileNotFoundError(
            f"{os.fspath(data_dir)}: missing {', '.join(missing)}; expected "
            f"{', '.join(names)} from {source}")


def read_amat(path):
    """One binary image per line, space-separated ``0``/``1`` values (Larochelle's
    ``.amat`` text): an ``(n, d)`` float64 array. Raises ``ValueError`` naming the first
    line that is not ``d`` binary values, ``d`` the first line's count."""
    with open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    digit = (raw == _ZERO) | (raw == _ONE)
    space = np.isin(raw, np.frombuffer(b" \t\r\n", dtype=np.uint8))
    bad = ~(digit | space)
    # a token is one character: no digit right after a digit ("10", "11")
    bad[1:] |= digit[1:] & digit[:-1]
    line = np.cumsum(raw == ord("\n")) - (raw == ord("\n"))
    if bad.any():
        raise ValueError(f"{path}: line {line[np.argmax(bad)] + 1} holds something other "
                         f"than space-separated 0/1 values")
    counts = np.bincount(line[digit])  # blank lines count 0 and are skipped
    if not counts.any():
        raise ValueError(f"{path}: no 0/1 values")
    width = counts[counts > 0][0]
    differs = (counts > 0) & (counts != width)
    if differs.any():
        raise ValueError(f"{path}: every line must hold the same number of 0/1 values; "
                         f"line {int(np.argmax(differs)) + 1} has {counts[differs][0]}, the "
                         f"first {width}")
    return (raw[digit] - _ZERO).astype(np.float64).reshape(-1, width)


def _check_pixels(array, where):
    if array.ndim != 2 or array.shape[1] != PIXELS:
        raise ValueError(f"{where}: expected rows of {PIXELS} pixels (28 x 28), got shape "
                         f"{array.shape}")
    if not np.all((array == 0) | (array == 1)):
        raise ValueError(f"{where}: expected binary 0/1 pixels")
    return array


def load_binarized_mnist(data_dir):
    """Larochelle's statically binarised MNIST (Larochelle and Murray 2011).

    Reads ``binarized_mnist_{train,valid,test}.amat`` (:data:`BINARIZED_MNIST_FILES`,
    from :data:`BINARIZED_MNIST_URL`) in ``data_dir``: text, one image per line, 784
    space-separated 0/1 values; the release has 50000 / 10000 / 10000 rows (smaller
    files in the same format are read as they are).

    Returns
    -------
    train, val, test : ndarray, float64, (n, 784), values 0 or 1
    """
    names = list(BINARIZED_MNIST_FILES.values())
    _missing(data_dir, names, BINARIZED_MNIST_URL)
    return tuple(_check_pixels(read_amat(os.path.join(data_dir, n)), n) for n in names)


def load_caltech_silhouettes(data_dir):
    """Caltech 101 Silhouettes, 28 x 28, split 1 (Marlin et al. 2010).

    Reads ``caltech101_silhouettes_28_split1.mat`` (MATLAB v5, from :data:`CALTECH_URL`)
    with :func:`scipy.io.loadmat`: arrays ``train_data``, ``val_data`` and ``test_data``
    of 784 columns (4100 / 2264 / 2307 rows in the release). As van den Berg et al.'s code
    does, each row is reshaped to 28 x 28 and flattened in Fortran (column-major) order,
    i.e. the image is transposed, and the pixels are flipped, ``x -> 1 - x`` (the figure
    becomes the 1s).

    Returns
    -------
    train, val, test : ndarray, float64, (n, 784), values 0 or 1
    """
    _missing(data_dir, [CALTECH_FILE], CALTECH_URL)
    path = os.path.join(data_dir, CALTECH_FILE)
    try:
        content = loadmat(path)
    except (ValueError, TypeError, OSError) as err:
        raise ValueError(f"{path}: not a MATLAB v5 file ({err})") from None
    absent = [name for name in CALTECH_ARRAYS if name not in content]
    if absent:
        raise ValueError(f"{path}: no array(s) {absent}; expected {list(CALTECH_ARRAYS)}")
    splits = []
    for name in CALTECH_ARRAYS:
        rows = _check_pixels(np.asarray(content[name], dtype=np.float64), f"{path}: {name}")
        splits.append(1.0 - rows.reshape(-1, 28, 28).reshape(-1, PIXELS, order="F"))
    return tuple(splits)


def load_binarized_digits(random_state=0, val_fraction=0.1, test_fraction=0.2):
    """scikit-learn's 8x8 digits (1797 images, pixels 0..16), binarised: a pixel is 1 when
    it is at least :data:`DIGITS_THRESHOLD` (8, half the range), then split at random
    (the permutation from ``random_state``; fractions rounded to the nearest count).

    Returns
    -------
    train, val, test : ndarray, float64, (n, 64), values 0 or 1
        1258 / 180 / 359 images with the defaults.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    pixels = (sklearn_digits().data >= DIGITS_THRESHOLD).astype(np.float64)
    n = len(pixels)
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    if not (0 <= n_test and 0 <= n_val and n_test + n_val < n):
        raise ValueError(f"val_fraction and test_fraction must leave training images, got "
                         f"{val_fraction} and {test_fraction}")
    order = np.random.default_rng(random_state).permutation(n)
    test, val, train = np.split(pixels[order], [n_test, n_test + n_val])
    return train, val, test
