"""Dequantised digits and the NLL unit conversions."""

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits as sklearn_digits

from refconf.data import DIGITS_LOG_DET_SCALING, bits_per_dim, digits_nll_raw, load_digits
from refconf.data.units import nll_before_preprocessing


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_split_sizes_range_and_dtype():
    train, val, test = load_digits()
    assert (train.shape, val.shape, test.shape) == ((1258, 64), (180, 64), (359, 64))
    for x in (train, val, test):
        assert x.dtype == np.float64
        assert x.min() >= 0.0 and x.max() < 1.0


def test_dequantisation_recovers_the_pixels_and_adds_uniform_noise():
    splits = load_digits(random_state=5)
    y = np.concatenate(splits) * 17
    pixels = np.floor(y)
    # every image appears exactly once across the splits
    np.testing.assert_array_equal(_sorted_rows(pixels), _sorted_rows(sklearn_digits().data))
    u = (y - pixels).ravel()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert stats.kstest(np.sqrt(u), "uniform").pvalue < 1e-6  # the check has power


def test_split_is_reproducible_and_depends_on_the_seed():
    a = load_digits(random_state=3)
    for x, y in zip(a, load_digits(random_state=3), strict=True):
        np.testing.assert_array_equal(x, y)
    b = load_digits(random_state=4)
    assert not np.array_equal(np.floor(17 * a[2]), np.floor(17 * b[2]))


def test_fractions():
    train, val, test = load_digits(val_fraction=0.0, test_fraction=0.5)
    assert (train.shape[0], val.shape[0], test.shape[0]) == (899, 0, 898)  # round(898.5) is 898
    for kwargs in ({"val_fraction": -0.1}, {"test_fraction": 1.0}, {"val_fraction": np.nan},
                   {"val_fraction": "0.1"}, {"val_fraction": 0.6, "test_fraction": 0.4}):
        with pytest.raises(ValueError):
            load_digits(**kwargs)


def test_nll_on_the_raw_scale_matches_the_transformed_model():
    """A Gaussian fitted on the rescaled data, mapped to the 0..17 scale (mean x 17,
    covariance x 17^2), scores the raw data exactly 64 log 17 nats worse per image."""
    train, _, test = load_digits()
    mean = train.mean(axis=0)
    cov = np.cov(train, rowvar=False) + 1e-3 * np.eye(64)
    nll_scaled = -stats.multivariate_normal(mean, cov).logpdf(test).mean()
    nll_raw = -stats.multivariate_normal(17 * mean, 17**2 * cov).logpdf(17 * test).mean()
    assert np.isclose(digits_nll_raw(nll_scaled), nll_raw, rtol=1e-12, atol=1e-9)
    assert np.isclose(bits_per_dim(nll_scaled, 64, DIGITS_LOG_DET_SCALING),
                      nll_raw / (64 * np.log(2)), rtol=1e-12)


def test_bits_per_dim_of_a_uniform_density_on_8_bit_data():
    # uniform on (0, 1)^D has NLL 0; on the raw 0..256 scale that is 8 bits per dimension
    for D in (1, 64, 3072):
        assert bits_per_dim(0.0, D, -D * np.log(256)) == pytest.approx(8.0, rel=1e-14)
    # with no preprocessing, D log 2 nats is one bit per dimension
    assert bits_per_dim(10 * np.log(2), 10) == pytest.approx(1.0, rel=1e-14)


def test_nll_before_preprocessing_per_sample_affine_map():
    """Data x = 3 y + 5 with y ~ N(0, 1): the standard normal on y, T(x) = (x - 5) / 3,
    log|det dT/dx| = -D log 3 per sample."""
    y = np.random.default_rng(0).normal(size=(7, 4))
    x = 3 * y + 5
    nll_y = -stats.norm.logpdf(y).sum(axis=1)
    nll_x = -stats.norm(5, 3).logpdf(x).sum(axis=1)
    np.testing.assert_allclose(nll_before_preprocessing(nll_y, np.full(7, -4 * np.log(3))),
                               nll_x, rtol=1e-12)


@pytest.mark.parametrize("dim", [0, -1, 2.5, True, None])
def test_bits_per_dim_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        bits_per_dim(1.0, dim)
