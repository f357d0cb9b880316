"""Classical baselines: the estimator surface, model selection, the scale law."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from refconf.classical import GaussianMixtureDensity, KernelDensityEstimate
from refconf.testing import check_normalization


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(200, 2)) * [1.0, 0.3] + [-3, 0],
                           rng.normal(size=(200, 2)) * [0.5, 1.0] + [3, 1]])


def test_bic_chooses_two_components_for_two_blobs(blobs):
    est = GaussianMixtureDensity(max_components=5, random_state=0).fit(blobs)
    assert est.n_components_ == 2
    assert est.bic_[2] == min(est.bic_.values())


def test_one_component_is_the_maximum_likelihood_gaussian(blobs):
    est = GaussianMixtureDensity(1, reg_covar=0.0, random_state=0).fit(blobs)
    mean, cov = blobs.mean(0), np.cov(blobs.T, bias=True)
    centred = blobs - mean
    expected = (-0.5 * np.sum(centred @ np.linalg.inv(cov) * centred, axis=1)
                - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1])
    np.testing.assert_allclose(est.score_samples(blobs), expected, rtol=1e-8)


def test_kde_bandwidth_by_cross_validation_is_interior_and_normalised(blobs):
    est = KernelDensityEstimate(random_state=0).fit(blobs)
    grid = 3 * len(blobs) ** (-1 / 6) * np.geomspace(0.05, 2.0, 30)
    assert grid[0] < est.bandwidth_ < grid[-1]
    assert check_normalization(est, blobs)["mass"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("make", [lambda: GaussianMixtureDensity(random_state=0),
                                  lambda: KernelDensityEstimate(random_state=0)])
def test_rescaled_data_give_log_densities_shifted_by_the_log_jacobian(blobs, make):
    c, b = np.array([1e-9, -3e7]), np.array([5.0, 1e9])
    base = make().fit(blobs)
    moved = make().fit(blobs * c + b)
    np.testing.assert_allclose(moved.score_samples(blobs * c + b),
                               base.score_samples(blobs) - np.log(np.abs(c)).sum(), rtol=1e-6,
                               atol=1e-4)  # EM stops at its tolerance: iterations may differ
    sample = moved.sample(500, random_state=0)
    assert sample.shape == (500, 2)
    np.testing.assert_allclose(sample.mean(0), (blobs * c + b).mean(0),
                               atol=0.3 * np.abs(c * blobs.std(0)).max())


def test_constant_column_is_an_error(blobs):
    X = blobs.copy()
    X[:, 1] = 2.0
    with pytest.raises(ValueError, match="column 1 is constant"):
        GaussianMixtureDensity().fit(X)


def test_differs_from_a_raw_scikit_learn_mixture_only_by_its_scale_free_regulariser(blobs):
    """On data of unit scale the standardised mixture and scikit-learn's agree."""
    ours = GaussianMixtureDensity(2, reg_covar=0.0, random_state=0).fit(blobs)
    theirs = GaussianMixture(2, reg_covar=0.0, random_state=0).fit(blobs)
    np.testing.assert_allclose(ours.score(blobs), theirs.score_samples(blobs).sum(), rtol=1e-6)
