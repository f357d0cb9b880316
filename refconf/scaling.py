"""Data on the user's scale: per-column standardisation with its Jacobian, degenerate-column
checks, and dequantisation of discrete-looking data.

A flow ``p_Z`` fitted to the standardised data ``u = (x - mu) / sigma`` is a density of ``x``
by the change of variables (:doc:`../theory/change-of-variables`)

.. math::

    \\log p_X(x) = \\log p_U\\big((x - \\mu) / \\sigma\\big) - \\sum_j \\log \\sigma_j ,

so fitting ``c x + b`` gives the same ``p_U`` and log-densities shifted by
``-D \\log |c|``, whatever the scale of each column (``sigma`` is signed by the column's
skewness, which makes a negative ``c`` give the same ``u`` too). Whitening by the
Cholesky factor ``L`` of the columns' correlation keeps that law: correlations do not
change with the columns' scales.
"""

import dataclasses
import warnings

import numpy as np
import scipy.linalg

__all__ = ["ColumnScaling", "DiscreteDataWarning", "check_columns", "dequantize"]

#: A column whose standard deviation is below this many units in the last place of its
#: largest magnitude carries no resolvable variation in float64.
_RESOLUTION_ULPS = 1e3

#: Share of rows repeating an earlier row from which the data are reported as discrete.
DUPLICATE_SHARE = 0.2


class DiscreteDataWarning(UserWarning):
    """The data look discrete: a continuous density on them collapses onto the points."""


@dataclasses.dataclass(frozen=True)
class ColumnScaling:
    """``u = L^{-1} (x - mean) / scale`` and its log-Jacobian
    ``-sum_j log|scale_j| - sum_j log L_jj``.

    ``scale`` is each column's standard deviation, signed by its skewness (so ``c x`` with
    ``c < 0`` standardises to the same ``u``); ``L`` is the identity (per-column
    standardisation) or the Cholesky factor of the columns' shrunk correlation matrix
    ``(1 - shrinkage) R + shrinkage I`` (whitening: the standard normal of ``u`` is then
    the fitted full-covariance Gaussian of ``x``).

    Examples
    --------
    >>> import numpy as np
    >>> s = ColumnScaling.fit(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> s.transform(np.array([[2.0, 20.0]])), round(s.log_jacobian, 6)
    (array([[0., 0.]]), -2.302585)
    """

    mean: np.ndarray
    scale: np.ndarray
    chol: np.ndarray | None = None

    @classmethod
    def fit(cls, X, whiten=False, shrinkage=0.0):
        """Mean and standard deviation of each column of ``X`` (float64), and with
        ``whiten`` the Cholesky factor of their shrunk correlation."""
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        # moments of the columns divided by their largest magnitude: no square overflows
        # for values up to the float64 maximum; signed by the skewness, so that a mirrored
        # column (c < 0) standardises the same
        peak = _peak(X - mean)
        centred = (X - mean) / peak
        skew = np.sum(centred**3, axis=0)
        scale = peak * centred.std(axis=0) * np.where(skew < 0, -1.0, 1.0)
        if not whiten:
            return cls(mean, scale)
        U = (X - mean) / scale
        R = (1 - shrinkage) * (U.T @ U) / len(U) + shrinkage * np.eye(U.shape[1])
        try:
            return cls(mean, scale, np.linalg.cholesky(R))
        except np.linalg.LinAlgError:
            raise ValueError(
                "the columns of X are linearly dependent (their correlation matrix is "
                "singular): the density is singular. Drop the redundant columns, or fit "
                "with whiten=False") from None

    @classmethod
    def identity(cls, dim):
        return cls(np.zeros(dim), np.ones(dim))

    @property
    def log_jacobian(self):
        """``log|det du/dx|``, added to every log-density."""
        log_det = float(np.sum(np.log(np.abs(self.scale))))
        if self.chol is not None:
            log_det += float(np.sum(np.log(np.diag(self.chol))))
        return -log_det

    def transform(self, X):
        U = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        if self.chol is None:
            return U
        return scipy.linalg.solve_triangular(self.chol, U.T, lower=True).T

    def inverse(self, U):
        U = np.asarray(U, dtype=np.float64)
        if self.chol is not None:
            U = U @ self.chol.T
        return U * self.scale + self.mean

    def to_json(self):
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "chol": None if self.chol is None else self.chol.tolist()}

    @classmethod
    def from_json(cls, data):
        chol = data.get("chol")
        return cls(np.asarray(data["mean"], dtype=np.float64),
                   np.asarray(data["scale"], dtype=np.float64),
                   None if chol is None else np.asarray(chol, dtype=np.float64))


def _peak(X):
    """Largest magnitude of each column (1 for an all-zero column)."""
    peak = np.max(np.abs(X), axis=0)
    return np.where(peak > 0, peak, 1.0)


def _name(j, names):
    return f"column {j}" if names is None else f"column {j} ({names[j]!r})"


def check_columns(X, names=None):
    """Raise ``ValueError`` for a column with no resolvable variation.

    A constant column (or one varying by less than ``1e3`` float64 ulps of its magnitude)
    puts all mass on a hyperplane: the density is singular (a delta in that direction) and
    a maximum-likelihood fit drives it to infinity.
    """
    X = np.asarray(X, dtype=np.float64)
    peak = _peak(X)
    std = peak * (X / peak).std(axis=0)
    resolution = _RESOLUTION_ULPS * np.spacing(np.max(np.abs(X), axis=0))
    bad = np.flatnonzero(~(std > resolution))
    if bad.size:
        j = int(bad[0])
        what = (f"is constant (every value is {float(X[0, j])!r})" if std[j] == 0 else
                f"varies by {std[j]:.3g} around {X[:, j].mean():.6g}, below float64 "
                f"resolution there")
        raise ValueError(
            f"{_name(j, names)} {what}: the density of X is singular (all mass on a "
            f"hyperplane), so its log-density is unbounded. Drop that column (it carries no "
            f"information), or subtract its offset first if it varies on a tiny scale "
            f"({bad.size} such column(s): {bad.tolist()[:10]})")


def duplicate_share(X):
    """Share of the rows of ``X`` that repeat an earlier row."""
    return 1.0 - len(np.unique(X, axis=0)) / len(X)


def warn_if_discrete(X, names=None):
    """Warn (:class:`DiscreteDataWarning`) when at least :data:`DUPLICATE_SHARE` of the
    rows repeat an earlier row."""
    share = duplicate_share(X)
    if share >= DUPLICATE_SHARE:
        warnings.warn(
            f"{share:.0%} of the rows repeat an earlier row: the data look discrete, and a "
            "continuous density fitted to them piles its mass onto the repeated points "
            "(the log-likelihood grows without bound). Pass dequantize=True to fit the "
            "uniformly dequantised data instead (see ConfDensity's dequantize).",
            DiscreteDataWarning, stacklevel=3)


def quantum(X):
    """Per column, the smallest positive gap between distinct values: the data's
    quantisation step ``delta_j``."""
    steps = []
    for column in np.asarray(X, dtype=np.float64).T:
        gaps = np.diff(np.unique(column))
        steps.append(float(gaps.min()) if gaps.size else 1.0)
    return np.asarray(steps)


def dequantize(X, step, rng):
    """Uniform dequantisation: ``x + delta * (v - 1/2)``, ``v ~ U[0, 1)^D``.

    The density ``p`` of the dequantised data bounds the probability of a discrete value
    ``x`` from below (Theis et al. 2016):
    ``log P(x) >= E_v[log p(x + delta (v - 1/2))] + sum_j log delta_j``.
    """
    return X + step * (rng.random(X.shape) - 0.5)
