"""Padding a dataset to an even dimension so a coupling layer can split it in halves.

A coupling layer splits D values into a conditioning half of ``floor(D/2)`` and an updated
half of ``ceil(D/2)``; odd D needs no padding (mode ``"none"``, the default). The paper
instead pads to even D (``docs/theory/padding.md``):

- ``"paper_mean"``: append the per-sample mean of the D values (HEPMASS 21 -> 22,
  MINIBOONE 43 -> 44);
- ``"paper_bsds"``: append BSDS300's dropped bottom-right pixel of the 8x8 patch, filled
  with the average of its two single-step neighbours (63 -> 64).

Each appended value is a deterministic function of the others, so the padded data lie on a
hyperplane of the padded space: they have no density there (it is singular), a model
fitted to them can push its likelihood without bound, and its NLL is not comparable with
an NLL of the unpadded data. These modes exist to reproduce the paper and show the effect.

- ``"noise"``: append independent ``N(0, sigma^2)`` columns. The padded data have the
  density ``p(x) N(e; 0, sigma^2 I)``, so subtracting the exactly known
  :func:`noise_padding_log_density` from a model's log-density of the padded data gives a
  score on the original data, comparable with unpadded NLLs (see that function).
"""

import numpy as np
from scipy.stats import norm

from ._common import as_finite_2d, positive_int

__all__ = ["PADDING_MODES", "noise_padding_log_density", "pad_for_equal_split"]

PADDING_MODES = ("none", "paper_mean", "noise", "paper_bsds")
BSDS_PATCH = 8  # BSDS300 patches are 8x8, stored row-major without the last pixel


def _check_sigma(sigma):
    if not (isinstance(sigma, (int, float, np.integer, np.floating))
            and np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    return float(sigma)


def pad_for_equal_split(x, mode="none", *, n_pad=1, sigma=1.0, random_state=None):
    """Append columns to ``x`` by one of :data:`PADDING_MODES`.

    Parameters
    ----------
    x : array_like, shape (n, D)
        Finite data.
    mode : {"none", "paper_mean", "noise", "paper_bsds"}
        - ``"none"``: return ``x`` unchanged (as float64); use an unequal split.
        - ``"paper_mean"``: ``[x, mean(x, axis=1)]``, D odd. The paper's padding for
          HEPMASS and MINIBOONE; the result's density is singular (module docstring).
        - ``"noise"``: ``[x, e]`` with ``e ~ N(0, sigma^2 I_{n_pad})`` independent of ``x``;
          correct log-densities with :func:`noise_padding_log_density`.
        - ``"paper_bsds"``: D = 63 (BSDS300): append ``(x[:, 55] + x[:, 62]) / 2``, the
          average of the dropped pixel (7, 7)'s neighbours (6, 7) and (7, 6) in the
          row-major 8x8 patch. The paper's padding; singular like ``"paper_mean"``. (The
          dropped pixel itself is ``-sum(x, axis=1)``, the patches being mean-subtracted.)
    n_pad : int
        ``"noise"`` only: number of noise columns.
    sigma : float
        ``"noise"`` only: standard deviation of the noise.
    random_state : None, int or numpy.random.Generator
        ``"noise"`` only: seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray, float64, shape (n, D + number of appended columns)

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(1000, 3))
    >>> padded = pad_for_equal_split(x, "paper_mean")
    >>> padded.shape
    (1000, 4)
    >>> float(np.linalg.eigvalsh(np.cov(padded, rowvar=False))[0]) < 1e-12   # singular
    True
    >>> pad_for_equal_split(x, "noise", random_state=0).shape
    (1000, 4)
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"mode must be one of {', '.join(PADDING_MODES)}, got {mode!r}")
    x = as_finite_2d(x, f"pad_for_equal_split({mode!r}) data")
    D = x.shape[1]
    if mode == "none":
        return x
    if mode == "paper_mean":
        if D % 2 == 0:
            raise ValueError(f"'paper_mean' pads an odd dimension to even; D = {D} is already "
                             f"even (use mode='none')")
        return np.hstack([x, x.mean(axis=1, keepdims=True)])
    if mode == "paper_bsds":
        if D != BSDS_PATCH**2 - 1:
            raise ValueError(f"'paper_bsds' needs BSDS300's {BSDS_PATCH**2 - 1} columns, got {D}")
        above = (BSDS_PATCH - 2) * BSDS_PATCH + BSDS_PATCH - 1  # pixel (6, 7)
        left = (BSDS_PATCH - 1) * BSDS_PATCH + BSDS_PATCH - 2  # pixel (7, 6)
        return np.hstack([x, 0.5 * (x[:, [above]] + x[:, [left]])])
    n_pad = positive_int(n_pad, "n_pad")
    sigma = _check_sigma(sigma)
    noise = sigma * np.random.default_rng(random_state).standard_normal((len(x), n_pad))
    return np.hstack([x, noise])


def noise_padding_log_density(padded, n_pad=1, sigma=1.0):
    """Log-density of the noise columns appended by ``pad_for_equal_split(mode="noise")``.

    ``sum_j log N(e_j; 0, sigma^2)`` over the last ``n_pad`` columns, one value per row.

    Notes
    -----
    The padded data ``(x, e)`` have the density ``p(x) N(e; 0, sigma^2 I)``, so for a model
    ``q`` of the padded data, ``log q(x, e) - log N(e)`` is

    - exactly ``log p(x)`` when ``q`` is the true padded density;
    - in expectation over ``e``, a lower bound on ``log q_X(x)``, the log of ``q``'s
      marginal density of ``x`` (Jensen: one-sample importance sampling with the noise
      density as proposal).

    Its negative mean is thus an upper bound on the marginal model's NLL of the unpadded
    data and is comparable with NLLs of unpadded models; the singular paper paddings give
    no such number.

    Parameters
    ----------
    padded : array_like, shape (n, D + n_pad)
    n_pad : int
    sigma : float
        The values used for padding.

    Returns
    -------
    ndarray, shape (n,), float64

    Examples
    --------
    >>> padded = pad_for_equal_split(np.zeros((2, 3)), "noise", n_pad=2, random_state=0)
    >>> lp = noise_padding_log_density(padded, n_pad=2)
    >>> bool(np.allclose(lp, -np.log(2 * np.pi) - 0.5 * np.sum(padded[:, 3:] ** 2, axis=1)))
    True
    """
    padded = as_finite_2d(padded, "noise_padding_log_density padded")
    n_pad = positive_int(n_pad, "n_pad")
    if n_pad >= padded.shape[1]:
        raise ValueError(f"n_pad = {n_pad} leaves no data columns in an array of "
                         f"{padded.shape[1]} columns")
    return norm.logpdf(padded[:, -n_pad:], scale=_check_sigma(sigma)).sum(axis=1)
