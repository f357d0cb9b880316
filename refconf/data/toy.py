"""Two-dimensional toy densities with their true log-densities.

Each density is defined generatively, so that sampling is exact and the log-density is
known: in closed form (checkerboard, eight Gaussians, rings) or as a one-dimensional
integral over a curve computed by Gauss-Legendre quadrature (two moons). A flow fitted to
samples can then be scored against the truth: the mean of ``log p(x) - log q(x)`` over
samples of ``p`` estimates KL(p || q).

=================  ==========================================================================
name               generative definition
=================  ==========================================================================
two_moons          t ~ U(0, pi), arc k in {+1, -1} with probability 1/2,
                   x = k (cos t - 1/2, sin t - 1/4) + 0.1 eps
checkerboard       uniform on the 8 black squares of a 4 x 4 board of side-2 squares on
                   [-4, 4)^2; a square (i, j) = (floor(x1/2), floor(x2/2)) is black when i + j
                   is even
rings              ring k in {1, 2, 3, 4} with probability k/10, theta ~ U(0, 2 pi),
                   x = k (cos theta, sin theta) + 0.1 eps
eight_gaussians    equal mixture of N(mu_k, 0.2^2 I), mu_k = 2 (cos(k pi/4), sin(k pi/4)),
                   k = 0..7
=================  ==========================================================================

``eps ~ N(0, I_2)`` throughout.
"""

from collections import namedtuple

import numpy as np
from scipy.special import i0e, logsumexp

from ._common import as_finite_2d, positive_int

__all__ = ["TOY_DENSITIES", "sample_toy", "toy_log_density"]

MOONS_NOISE = 0.1
MOONS_OFFSET = np.array([0.5, 0.25])  # centres the two moons on the origin
MOONS_NODES = 256  # Gauss-Legendre nodes per arc: relative error ~1e-13 within 10 sigma
RINGS_RADII = np.array([1.0, 2.0, 3.0, 4.0])
RINGS_WEIGHTS = RINGS_RADII / RINGS_RADII.sum()  # equal point density per unit arc length
RINGS_NOISE = 0.1
GAUSSIANS_RADIUS = 2.0
GAUSSIANS_NOISE = 0.2
BOARD_HALF_WIDTH = 4.0
BOARD_SQUARE = 2.0

_CHUNK = 4096  # points per block in the moons quadrature: bounds memory at chunk x nodes


def _gaussian_log_kernel(points, centres, sigma):
    """log N(points_i; centres_j, sigma^2 I_2) as an (n, m) array."""
    d2 = np.sum((points[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    return -d2 / (2.0 * sigma**2) - np.log(2.0 * np.pi * sigma**2)


def _moons_arc(t, k):
    """Point on arc ``k`` (+1 upper moon, -1 lower moon) at parameter ``t``, shape (..., 2):
    ``c_k(t) = k (u(t) - o) = m_k + k u(t)`` with ``u(t) = (cos t, sin t)``, ``o = (1/2, 1/4)``
    and centre ``m_k = -k o``."""
    return k * (np.stack([np.cos(t), np.sin(t)], axis=-1) - MOONS_OFFSET)


def _sample_moons(n, rng):
    t = rng.uniform(0.0, np.pi, size=n)
    k = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return _moons_arc(t, k[:, None]) + MOONS_NOISE * rng.standard_normal((n, 2))


def _log_density_moons(x):
    r"""p(x) = 1/(2 pi) sum_k int_0^pi N(x; c_k(t), s^2 I) dt, by Gauss-Legendre in t.

    With a = x - m_k, |x - c_k(t)|^2 = |a|^2 + 1 - 2 k a.u(t), so each arc's integral is
    exp(-(|a|^2 + 1)/(2 s^2)) / (2 pi s^2) times int_0^pi exp(k a.u(t) / s^2) dt: one matrix
    product per block of points, then a log-sum-exp over the nodes.
    """
    nodes, weights = np.polynomial.legendre.leggauss(MOONS_NODES)
    t = (nodes + 1.0) * (np.pi / 2.0)
    log_w = np.log(weights * (np.pi / 2.0) / (2.0 * np.pi))  # U(0, pi) and 1/2 per arc
    u = np.stack([np.cos(t), np.sin(t)])  # (2, nodes)
    s2 = MOONS_NOISE**2
    out = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        block = x[start:start + _CHUNK]
        per_arc = []
        for k in (1.0, -1.0):
            a = block + k * MOONS_OFFSET  # x - m_k
            exponent = (k / s2) * (a @ u) + log_w
            peak = exponent.max(axis=1, keepdims=True)  # finite: a and u are finite
            # by hand: scipy.special.logsumexp is ~3x slower at this shape
            log_integral = np.log(np.exp(exponent - peak).sum(axis=1)) + peak[:, 0]
            per_arc.append(log_integral
                           - (np.sum(a * a, axis=1) + 1.0) / (2.0 * s2)
                           - np.log(2.0 * np.pi * s2))
        out[start:start + _CHUNK] = np.logaddexp(*per_arc)
    return out


def _sample_checkerboard(n, rng):
    i, j = np.divmod(np.arange(16), 4)
    black = np.flatnonzero((i + j) % 2 == 0)
    corner = np.stack([i[black], j[black]], axis=1) * BOARD_SQUARE - BOARD_HALF_WIDTH
    square = rng.integers(0, len(black), size=n)
    return corner[square] + BOARD_SQUARE * rng.random((n, 2))


def _log_density_checkerboard(x):
    """log(1/32) on the black squares, -inf elsewhere (8 squares of area 4)."""
    on_board = np.all((x >= -BOARD_HALF_WIDTH) & (x < BOARD_HALF_WIDTH), axis=1)
    ij = np.floor(x / BOARD_SQUARE).astype(np.int64)
    black = on_board & ((ij[:, 0] + ij[:, 1]) % 2 == 0)
    area = (2 * BOARD_HALF_WIDTH) ** 2 / 2
    return np.where(black, -np.log(area), -np.inf)


def _sample_rings(n, rng):
    k = rng.choice(len(RINGS_RADII), size=n, p=RINGS_WEIGHTS)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    ring = RINGS_RADII[k, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return ring + RINGS_NOISE * rng.standard_normal((n, 2))


def _log_density_rings(x):
    r"""Uniform-on-circle convolved with N(0, s^2 I):

    (1/2pi) int N(x; r_k u(theta), s^2 I) dtheta
        = exp(-(|x| - r_k)^2 / (2 s^2)) i0e(|x| r_k / s^2) / (2 pi s^2),

    with i0e(z) = exp(-z) I0(z) the scaled modified Bessel function (no overflow).
    """
    r = np.hypot(x[:, 0], x[:, 1])[:, None]
    s2 = RINGS_NOISE**2
    log_terms = (np.log(RINGS_WEIGHTS) - np.log(2.0 * np.pi * s2)
                 - (r - RINGS_RADII) ** 2 / (2.0 * s2) + np.log(i0e(r * RINGS_RADII / s2)))
    return logsumexp(log_terms, axis=1)


def _gaussian_centres():
    angle = np.arange(8) * (np.pi / 4.0)
    return GAUSSIANS_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _sample_eight_gaussians(n, rng):
    k = rng.integers(0, 8, size=n)
    return _gaussian_centres()[k] + GAUSSIANS_NOISE * rng.standard_normal((n, 2))


def _log_density_eight_gaussians(x):
    log_kernel = _gaussian_log_kernel(x, _gaussian_centres(), GAUSSIANS_NOISE)
    return logsumexp(log_kernel, axis=1) - np.log(8.0)


_Toy = namedtuple("_Toy", ["sample", "log_density"])
_TOYS = {
    "two_moons": _Toy(_sample_moons, _log_density_moons),
    "checkerboard": _Toy(_sample_checkerboard, _log_density_checkerboard),
    "rings": _Toy(_sample_rings, _log_density_rings),
    "eight_gaussians": _Toy(_sample_eight_gaussians, _log_density_eight_gaussians),
}
TOY_DENSITIES = tuple(_TOYS)


def _toy(name):
    if name not in _TOYS:
        raise ValueError(f"unknown toy density {name!r}; valid names: {', '.join(TOY_DENSITIES)}")
    return _TOYS[name]


def sample_toy(name, n, random_state=None):
    """Draw ``n`` exact samples from the toy density ``name``.

    Parameters
    ----------
    name : str
        One of :data:`TOY_DENSITIES`.
    n : int
        Number of samples, at least 1.
    random_state : None, int or numpy.random.Generator
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray, shape (n, 2), float64

    Examples
    --------
    >>> x = sample_toy("eight_gaussians", 4000, random_state=0)
    >>> x.shape
    (4000, 2)
    >>> bool(abs(np.hypot(x[:, 0], x[:, 1]).mean() - 2.0) < 0.05)
    True
    """
    toy = _toy(name)
    return toy.sample(positive_int(n, "n"), np.random.default_rng(random_state))


def toy_log_density(name, points):
    """True log-density of the toy density ``name`` at ``points``.

    Parameters
    ----------
    name : str
        One of :data:`TOY_DENSITIES`.
    points : array_like, shape (n, 2)
        Finite points.

    Returns
    -------
    ndarray, shape (n,), float64
        ``log p(x)``; ``-inf`` where the density is zero (off the checkerboard's black
        squares).

    Notes
    -----
    Closed forms (s the noise scale): eight Gaussians, a mixture of isotropic normals;
    rings, ``sum_k pi_k exp(-(|x| - r_k)^2/(2 s^2)) I0(|x| r_k / s^2) / (2 pi s^2)``, the
    ring's uniform angle integrated out exactly (regular at the origin, unlike a density
    in polar coordinates with its 1/r Jacobian); checkerboard, 1/32 on the black squares.
    Two moons, ``(1/(2 pi)) sum_k int_0^pi N(x; c_k(t), s^2 I) dt``, is computed by
    256-node Gauss-Legendre quadrature per arc in log space (relative error about 1e-13
    within ten noise widths of the arcs).

    Examples
    --------
    >>> x = sample_toy("rings", 20000, random_state=1)
    >>> lp = toy_log_density("rings", x)
    >>> lp.shape
    (20000,)
    >>> bool(np.all(np.isfinite(lp)))
    True
    """
    toy = _toy(name)
    x = as_finite_2d(points, f"toy_log_density({name!r}) points")
    if x.shape[1] != 2:
        raise ValueError(f"toy_log_density({name!r}) points: expected shape (n, 2), got {x.shape}")
    return toy.log_density(x)
