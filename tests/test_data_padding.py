"""Padding modes for equal coupling splits, and the exact noise-padding correction."""

import numpy as np
import pytest
from scipy import stats

from refconf.data import PADDING_MODES, noise_padding_log_density, pad_for_equal_split


def _correlated(n, D, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(D, D)) + 2 * np.eye(D)
    return rng.normal(size=(n, D)) @ mixing.T + rng.normal(size=D)


def _gaussian_fit_nll(x):
    """Training NLL (nats per example) of the maximum-likelihood Gaussian:
    (D log(2 pi e) + log det Sigma) / 2."""
    D = x.shape[1]
    _, logdet = np.linalg.slogdet(np.cov(x, rowvar=False, bias=True))
    return 0.5 * (D * np.log(2 * np.pi * np.e) + logdet)


def test_none_returns_the_data():
    x = _correlated(10, 3)
    np.testing.assert_array_equal(pad_for_equal_split(x), x)
    np.testing.assert_array_equal(pad_for_equal_split(x, "none"), x)


def test_paper_mean_appends_the_sample_mean_and_is_singular():
    x = _correlated(2000, 5)
    padded = pad_for_equal_split(x, "paper_mean")
    assert padded.shape == (2000, 6)
    np.testing.assert_array_equal(padded[:, :5], x)
    np.testing.assert_allclose(padded[:, 5], x.sum(axis=1) / 5, rtol=1e-14, atol=1e-14)
    eig = np.linalg.eigvalsh(np.cov(padded, rowvar=False))
    assert eig[0] < 1e-12 * eig[-1]
    # a Gaussian fitted to the padded data gains tens of nats from the degenerate direction
    assert _gaussian_fit_nll(padded) < _gaussian_fit_nll(x) - 10
    with pytest.raises(ValueError, match="already even"):
        pad_for_equal_split(_correlated(10, 4), "paper_mean")


def test_paper_bsds_fills_the_bottom_right_pixel_from_its_neighbours():
    rng = np.random.default_rng(1)
    patches = rng.normal(size=(50, 8, 8))
    x = patches.reshape(50, 64)[:, :63]  # row-major, bottom-right pixel dropped
    padded = pad_for_equal_split(x, "paper_bsds")
    assert padded.shape == (50, 64)
    np.testing.assert_array_equal(padded[:, :63], x)
    np.testing.assert_allclose(padded[:, 63], (patches[:, 6, 7] + patches[:, 7, 6]) / 2,
                               rtol=1e-15)
    with pytest.raises(ValueError, match="63"):
        pad_for_equal_split(x[:, :61], "paper_bsds")


def test_noise_padding_columns():
    x = _correlated(20000, 3)
    padded = pad_for_equal_split(x, "noise", n_pad=2, sigma=0.5, random_state=0)
    assert padded.shape == (20000, 5)
    np.testing.assert_array_equal(padded[:, :3], x)
    noise = padded[:, 3:]
    assert stats.kstest(noise.ravel() / 0.5, "norm").pvalue > 1e-3
    assert np.abs(np.corrcoef(padded, rowvar=False)[3:, :3]).max() < 0.05
    np.testing.assert_array_equal(
        padded, pad_for_equal_split(x, "noise", n_pad=2, sigma=0.5, random_state=0))
    assert not np.array_equal(
        padded, pad_for_equal_split(x, "noise", n_pad=2, sigma=0.5, random_state=1))


def test_noise_correction_recovers_the_unpadded_density_exactly():
    """With the true padded density N(x; m, S) N(e; 0, s^2 I), subtracting the correction
    leaves log N(x; m, S)."""
    x = _correlated(300, 3)
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    sigma, n_pad = 0.7, 2
    padded = pad_for_equal_split(x, "noise", n_pad=n_pad, sigma=sigma, random_state=2)
    joint_cov = np.block([[cov, np.zeros((3, n_pad))],
                          [np.zeros((n_pad, 3)), sigma**2 * np.eye(n_pad)]])
    joint = stats.multivariate_normal(np.append(mean, np.zeros(n_pad)), joint_cov)
    corrected = joint.logpdf(padded) - noise_padding_log_density(padded, n_pad, sigma)
    np.testing.assert_allclose(corrected, stats.multivariate_normal(mean, cov).logpdf(x),
                               rtol=1e-12, atol=1e-12)


def test_noise_padding_gives_comparable_nlls_and_paper_mean_does_not():
    x = _correlated(20000, 3, seed=3)
    padded = pad_for_equal_split(x, "noise", random_state=4)
    corrected = _gaussian_fit_nll(padded) + noise_padding_log_density(padded).mean()
    assert abs(corrected - _gaussian_fit_nll(x)) < 0.01
    assert _gaussian_fit_nll(pad_for_equal_split(x, "paper_mean")) < _gaussian_fit_nll(x) - 10


def test_bad_input():
    x = _correlated(5, 3)
    with pytest.raises(ValueError) as err:
        pad_for_equal_split(x, "mean")
    for mode in PADDING_MODES:
        assert mode in str(err.value)
    for sigma in (0.0, -1.0, np.inf, "1"):
        with pytest.raises(ValueError, match="sigma"):
            pad_for_equal_split(x, "noise", sigma=sigma)
    with pytest.raises(ValueError, match="n_pad"):
        pad_for_equal_split(x, "noise", n_pad=0)
    with pytest.raises(ValueError, match="no data columns"):
        noise_padding_log_density(x, n_pad=3)
    with pytest.raises(ValueError, match="non-finite"):
        pad_for_equal_split(np.array([[np.inf, 0.0, 1.0]]), "paper_mean")
