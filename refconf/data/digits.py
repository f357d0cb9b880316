"""The 8x8 handwritten digits shipped with scikit-learn, dequantised, as a small image set.

``sklearn.datasets.load_digits`` holds 1797 images of 8 x 8 = 64 pixels with integer values
0..16 (no download). Dequantisation adds ``u ~ U[0, 1)`` to each pixel, giving a continuous
density on [0, 17)^64 whose likelihood lower-bounds the discrete model's, and the result is
divided by 17 so the data lie in [0, 1).

Units. The model sees ``y = (x + u) / 17``; the scaling has
``log|det dy/d(x + u)| = -64 log 17`` (:data:`DIGITS_LOG_DET_SCALING`), so

    NLL on the dequantised 0..17 scale = NLL on the rescaled data + 64 log 17

(:func:`digits_nll_raw`), and bits per dimension on the 0..17 scale are
``bits_per_dim(nll_scaled, 64, DIGITS_LOG_DET_SCALING)``.

Flows are fitted after a logit (:func:`load_digits_logit`, the MAF convention for
images); adding the logit's log-determinant to the model's log-density gives it on the
rescaled (0, 1) scale again.
"""

import numpy as np

from .units import nll_before_preprocessing

__all__ = [
    "DIGITS_DIM",
    "DIGITS_LEVELS",
    "DIGITS_LOG_DET_SCALING",
    "digits_nll_raw",
    "load_digits",
    "load_digits_logit",
]

DIGITS_DIM = 64
DIGITS_LEVELS = 17  # pixel values 0..16
DIGITS_LOG_DET_SCALING = -DIGITS_DIM * np.log(DIGITS_LEVELS)


def _check_fraction(value, what):
    if not (isinstance(value, (int, float, np.floating, np.integer))
            and np.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def load_digits(random_state=0, val_fraction=0.1, test_fraction=0.2):
    """Dequantised, rescaled 8x8 digits split into train, validation and test sets.

    ``y = (x + u) / 17`` with ``x`` in {0..16}^64 and ``u ~ U[0, 1)^64``, then a random
    split of the 1797 images.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        Seed for :func:`numpy.random.default_rng`; draws the split permutation, then the
        dequantisation noise. The same seed gives the same arrays.
    val_fraction, test_fraction : float in [0, 1)
        Fractions of the images in the validation and test sets, each rounded to the
        nearest count (``round``: ties to even); the training set gets the rest and must
        not be empty.

    Returns
    -------
    train, val, test : ndarray, float64, shape (n_split, 64), values in [0, 1)
        With the defaults: 1258, 180 and 359 images.

    Notes
    -----
    The model's NLL is in nats on the rescaled data; convert with :func:`digits_nll_raw`
    or ``bits_per_dim(nll, 64, DIGITS_LOG_DET_SCALING)`` (see the module docstring).

    Examples
    --------
    >>> train, val, test = load_digits(random_state=0)
    >>> train.shape, val.shape, test.shape
    ((1258, 64), (180, 64), (359, 64))
    >>> bool(train.min() >= 0.0 and train.max() < 1.0)
    True
    """
    from sklearn.datasets import load_digits as sklearn_digits

    val_fraction = _check_fraction(val_fraction, "val_fraction")
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    pixels = sklearn_digits().data.astype(np.float64)
    n = len(pixels)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    if n_test + n_val >= n:
        raise ValueError(f"val_fraction + test_fraction leave no training images "
                         f"({n_val} + {n_test} of {n})")
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    y = (pixels + rng.random(pixels.shape)) / DIGITS_LEVELS
    test, val, train = np.split(y[order], [n_test, n_test + n_val])
    return train, val, test


def digits_nll_raw(nll_scaled):
    """NLL in nats on the dequantised 0..17 scale from the NLL on the data divided by 17.

    ``NLL_raw = NLL_scaled + 64 log 17``.

    Examples
    --------
    >>> bool(np.isclose(digits_nll_raw(0.0), 64 * np.log(17)))
    True
    """
    return nll_before_preprocessing(nll_scaled, DIGITS_LOG_DET_SCALING)


def load_digits_logit(random_state=0, lam=0.05, **split_options):
    """The splits of :func:`load_digits` after the logit preprocessing of image flows.

    ``z = logit(lam + (1 - 2 lam) y)`` for the rescaled pixels ``y``
    (:class:`refconf.bijectors.Logit`, ``docs/tutorials/digits.md``), with its per-image
    log-determinant ``log|det dz/dy|``, so that a density ``q`` fitted to ``z`` gives
    ``log p(y) = log q(z) + log|det dz/dy|`` on the (0, 1) scale.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        Passed to :func:`load_digits` (split and dequantisation noise).
    lam : float in (0, 0.5)
        The logit's ``lambda`` (MAF: 1e-6 for MNIST, 0.05 for CIFAR-10).
    **split_options
        ``val_fraction``, ``test_fraction`` of :func:`load_digits`.

    Returns
    -------
    (train, log_det_train), (val, log_det_val), (test, log_det_test)
        Each split in logit space, shape (n_split, 64), and its log-determinants,
        shape (n_split,).

    Examples
    --------
    >>> (train, _), _, (test, log_det_test) = load_digits_logit(random_state=0)
    >>> train.shape, log_det_test.shape
    ((1258, 64), (359,))
    """
    from ..bijectors import Logit

    logit = Logit(lam)
    return tuple(logit.forward(split)
                 for split in load_digits(random_state=random_state, **split_options))
