"""Toy densities: normalisation, agreement of samples with the density, and the closed
forms against direct numerical integration."""

import numpy as np
import pytest
from scipy import integrate, stats

from refconf.data import TOY_DENSITIES, sample_toy, toy_log_density

# Box holding all but a negligible mass of each density: (x range, y range).
BOXES = {
    "two_moons": ((-2.5, 2.5), (-2.0, 2.0)),
    "checkerboard": ((-4.0, 4.0), (-4.0, 4.0)),
    "rings": ((-5.0, 5.0), (-5.0, 5.0)),
    "eight_gaussians": ((-3.5, 3.5), (-3.5, 3.5)),
}


def _midpoints(box, h):
    """Cell midpoints of a grid of spacing h over the box, as (n, 2) points."""
    axes = [np.arange(lo + h / 2, hi, h) for lo, hi in box]
    gx, gy = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([gx.ravel(), gy.ravel()]), [len(a) for a in axes]


@pytest.mark.parametrize("name", TOY_DENSITIES)
def test_density_integrates_to_one(name):
    # Midpoint rule; cells align with the checkerboard's squares, and for the smooth
    # densities (noise 0.1 or more) a spacing of 0.05 is accurate far beyond 1e-4.
    points, _ = _midpoints(BOXES[name], 0.05)
    total = np.exp(toy_log_density(name, points)).sum() * 0.05**2
    assert abs(total - 1.0) < 1e-4


def _bin_probabilities(name, box, bin_width, sub):
    """Probability of each bin of a histogram over the box, by a sub x sub midpoint rule."""
    h = bin_width / sub
    points, (nx, ny) = _midpoints(box, h)
    p = np.exp(toy_log_density(name, points)).reshape(nx, ny) * h * h
    return p.reshape(nx // sub, sub, ny // sub, sub).sum(axis=(1, 3))


def _chi_square_p_value(samples, probabilities, box, bin_width):
    edges = [np.arange(lo, hi + bin_width / 2, bin_width) for lo, hi in box]
    observed, *_ = np.histogram2d(samples[:, 0], samples[:, 1], bins=edges)
    n = len(samples)
    observed = np.append(observed.ravel(), n - observed.sum())  # last bin: outside the box
    expected = np.append(probabilities.ravel(), max(0.0, 1.0 - probabilities.sum())) * n
    small = expected < 5  # pooled into one bin
    if expected[small].sum() == 0 and observed[small].sum() > 0:
        return 0.0  # samples where the density is zero
    if expected[small].sum() > 0:
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    else:
        observed, expected = observed[~small], expected[~small]
    expected *= n / expected.sum()
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("name", TOY_DENSITIES)
def test_samples_follow_the_density(name):
    box, bin_width = BOXES[name], 0.5
    probabilities = _bin_probabilities(name, box, bin_width, sub=20)
    samples = sample_toy(name, 20000, random_state=1)
    assert _chi_square_p_value(samples, probabilities, box, bin_width) > 1e-3
    # the test has power: 4% stretched samples are rejected
    assert _chi_square_p_value(1.04 * samples, probabilities, box, bin_width) < 1e-6


def test_two_moons_against_adaptive_quadrature():
    sigma = 0.1

    def density(x):
        def integrand(t, k):
            centre = k * np.array([np.cos(t) - 0.5, np.sin(t) - 0.25])
            return stats.multivariate_normal.pdf(x, centre, sigma**2 * np.eye(2))
        return sum(integrate.quad(integrand, 0.0, np.pi, args=(k,), epsabs=0, epsrel=1e-12,
                                  limit=200)[0] for k in (1.0, -1.0)) / (2 * np.pi)

    points = np.array([[0.5, 0.75], [-1.5, -0.25], [0.3, 0.0], [0.0, 0.3], [1.0, 1.0],
                       [0.5 + np.cos(1.0), np.sin(1.0) - 0.25], [2.0, 2.0]])
    expected = np.log([density(x) for x in points])
    np.testing.assert_allclose(toy_log_density("two_moons", points), expected, rtol=0,
                               atol=1e-9)


def test_rings_against_integration_over_the_angle():
    radii, weights, sigma = np.arange(1.0, 5.0), np.arange(1.0, 5.0) / 10.0, 0.1

    def density(x):
        def integrand(theta, r):
            centre = r * np.array([np.cos(theta), np.sin(theta)])
            return stats.multivariate_normal.pdf(x, centre, sigma**2 * np.eye(2))
        return sum(w * integrate.quad(integrand, 0.0, 2 * np.pi, args=(r,), epsabs=0,
                                      epsrel=1e-12, limit=400, points=[np.arctan2(x[1], x[0])
                                                                       % (2 * np.pi)])[0]
                   for r, w in zip(radii, weights, strict=True)) / (2 * np.pi)

    points = np.array([[0.0, 0.0], [1.0, 0.05], [-1.4, 1.4], [0.3, -2.95], [2.5, 0.0]])
    expected = np.log([density(x) for x in points])
    np.testing.assert_allclose(toy_log_density("rings", points), expected, rtol=0, atol=1e-8)


def test_eight_gaussians_is_the_mixture():
    angles = np.arange(8) * np.pi / 4
    centres = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    points = np.random.default_rng(0).normal(scale=2.0, size=(50, 2))
    expected = np.log(np.mean([stats.multivariate_normal.pdf(points, c, 0.04 * np.eye(2))
                               for c in centres], axis=0))
    np.testing.assert_allclose(toy_log_density("eight_gaussians", points), expected,
                               rtol=1e-12, atol=1e-12)


def test_checkerboard_is_uniform_on_the_black_squares():
    points = np.array([[0.5, 0.5], [-3.5, -3.5], [2.5, 2.5], [-1.0, -1.0],  # black
                       [2.5, 0.5], [-0.5, 0.5], [3.9, -3.9],                # white
                       [4.5, 0.0], [0.0, -4.01]])                           # off the board
    expected = np.array([-np.log(32)] * 4 + [-np.inf] * 5)
    np.testing.assert_array_equal(toy_log_density("checkerboard", points), expected)
    samples = sample_toy("checkerboard", 5000, random_state=0)
    assert np.all(toy_log_density("checkerboard", samples) == -np.log(32))


@pytest.mark.parametrize("name", TOY_DENSITIES)
def test_sampling_is_reproducible(name):
    a = sample_toy(name, 100, random_state=3)
    assert a.shape == (100, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, sample_toy(name, 100, random_state=3))
    assert not np.array_equal(a, sample_toy(name, 100, random_state=4))


def test_bad_input():
    with pytest.raises(ValueError) as err:
        sample_toy("spiral", 10)
    for name in TOY_DENSITIES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="valid names"):
        toy_log_density("spiral", np.zeros((1, 2)))
    for n in (0, -3, 2.5, "10", None):
        with pytest.raises(ValueError, match="positive integer"):
            sample_toy("rings", n)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        toy_log_density("rings", np.zeros((4, 3)))
    with pytest.raises(ValueError, match="2-D"):
        toy_log_density("rings", np.zeros(2))
    with pytest.raises(ValueError, match="non-finite"):
        toy_log_density("rings", np.array([[0.0, np.nan]]))
