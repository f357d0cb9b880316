"""Classical density baselines with the estimator surface of :class:`~refconf.ConfDensity`.

* :class:`GaussianMixtureDensity`: a full-covariance Gaussian mixture whose number of
  components is chosen by the Bayesian information criterion (one component: the
  full-covariance Gaussian);
* :class:`KernelDensityEstimate`: a Gaussian kernel density whose bandwidth is chosen by
  cross-validated held-out log-likelihood.

Both standardise each column first and add the Jacobian
(:doc:`../theory/change-of-variables`), so ``score_samples`` is on the scale of ``X`` and
scale-free model-selection constants (``reg_covar``, bandwidth grids) mean the same thing
for every column. Constructor, ``fit(X)``, ``score_samples(X)``, ``score(X)`` and
``sample(n_samples, random_state)`` match :class:`~refconf.ConfDensity`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from sklearn.utils.validation import check_is_fitted, validate_data

from .scaling import ColumnScaling, check_columns

__all__ = ["GaussianMixtureDensity", "KernelDensityEstimate"]


class _Standardised(BaseEstimator):
    """fit / score_samples / score / sample of a scikit-learn density fitted to the
    standardised columns; subclasses implement ``_fit_standardised(U)`` returning it."""

    def fit(self, X, y=None):
        """Fit on the rows of ``X``; ``y`` is ignored."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_min_samples=2)
        check_columns(X, getattr(self, "feature_names_in_", None))
        self.scaling_ = ColumnScaling.fit(X)
        self.density_ = self._fit_standardised(self.scaling_.transform(X))
        return self

    def score_samples(self, X):
        """``log p(x)`` of each row of ``X``, in nats, on the scale of ``X``."""
        check_is_fitted(self, "density_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.density_.score_samples(self.scaling_.transform(X)) + \
            self.scaling_.log_jacobian

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` in nats."""
        return float(np.sum(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """``n_samples`` draws, shape ``(n_samples, n_features)``."""
        check_is_fitted(self, "density_")
        return self.scaling_.inverse(self._sample_standardised(n_samples, random_state))


class GaussianMixtureDensity(_Standardised):
    """Full-covariance Gaussian mixture, the number of components chosen by BIC.

    .. math::

        \\hat K = \\arg\\min_{K \\le K_{max}} \\; -2 \\log \\hat L_K + p_K \\log n ,

    with ``p_K`` free parameters (:meth:`sklearn.mixture.GaussianMixture.bic`).

    Parameters
    ----------
    n_components : int or None
        A fixed number of components (1: the full-covariance Gaussian), or None to choose
        it by BIC over ``1..max_components``.
    max_components : int
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the covariance diagonals, in units of the standardised data.
    n_init : int
    random_state : int or None

    Attributes
    ----------
    density_ : sklearn.mixture.GaussianMixture
        The selected mixture (on standardised data).
    n_components_ : int
    bic_ : dict
        BIC of each number of components tried.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2)) * [1e-6, 1e6]
    >>> est = GaussianMixtureDensity(max_components=3, random_state=0).fit(X)
    >>> est.n_components_
    1
    """

    def __init__(self, n_components=None, max_components=10, covariance_type="full",
                 reg_covar=1e-6, n_init=1, random_state=None):
        self.n_components = n_components
        self.max_components = max_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.random_state = random_state

    def _candidates(self, n):
        if self.n_components is not None:
            if not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
                raise ValueError(f"n_components={self.n_components!r}; expected None or an "
                                 "integer >= 1")
            return [int(self.n_components)]
        if not isinstance(self.max_components, numbers.Integral) or self.max_components < 1:
            raise ValueError(f"max_components={self.max_components!r}; expected an integer >= 1")
        return list(range(1, min(int(self.max_components), n) + 1))

    def _fit_standardised(self, U):
        fits = {}
        for k in self._candidates(len(U)):
            mixture = GaussianMixture(k, covariance_type=self.covariance_type,
                                      reg_covar=self.reg_covar, n_init=self.n_init,
                                      random_state=self.random_state).fit(U)
            fits[k] = (mixture.bic(U), mixture)
        self.bic_ = {k: float(bic) for k, (bic, _) in fits.items()}
        self.n_components_ = min(self.bic_, key=self.bic_.get)
        return fits[self.n_components_][1]

    def _sample_standardised(self, n_samples, random_state):
        rng = np.random.default_rng(random_state)
        mixture = self.density_
        counts = rng.multinomial(n_samples, mixture.weights_)
        covariances = _full_covariances(mixture)
        draws = [rng.multivariate_normal(mean, cov, size=c)
                 for mean, cov, c in zip(mixture.means_, covariances, counts)]
        return rng.permutation(np.concatenate(draws))


def _full_covariances(mixture):
    """The components' covariance matrices, whatever ``covariance_type``."""
    k, d = mixture.means_.shape
    cov = mixture.covariances_
    kind = mixture.covariance_type
    if kind == "full":
        return cov
    if kind == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if kind == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(d) for c in cov])


class KernelDensityEstimate(_Standardised):
    """Gaussian kernel density, the bandwidth chosen by ``cv``-fold cross-validated
    log-likelihood over ``bandwidths`` (in units of the standardised data).

    .. math::

        \\hat p(u) = \\frac{1}{n} \\sum_i \\mathcal N(u; u_i, h^2 I).

    Parameters
    ----------
    bandwidths : array_like or None
        Candidates; None is 30 values log-spaced over ``[0.05, 2] * n^(-1/(D+4))``
        scaled by 3 (around Scott's rule).
    cv : int
    random_state : int or None
        Seed of the fold shuffle.

    Attributes
    ----------
    density_ : sklearn.neighbors.KernelDensity
    bandwidth_ : float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> est = KernelDensityEstimate(random_state=0).fit(X)
    >>> bool(0.05 < est.bandwidth_ < 2.0)
    True
    """

    def __init__(self, bandwidths=None, cv=5, random_state=None):
        self.bandwidths = bandwidths
        self.cv = cv
        self.random_state = random_state

    def _fit_standardised(self, U):
        n, d = U.shape
        grid = self.bandwidths
        if grid is None:
            grid = 3 * n ** (-1 / (d + 4)) * np.geomspace(0.05, 2.0, 30)
        folds = KFold(min(self.cv, n), shuffle=True, random_state=self.random_state)
        search = GridSearchCV(KernelDensity(kernel="gaussian"),
                              {"bandwidth": np.asarray(grid, dtype=float)}, cv=folds).fit(U)
        self.bandwidth_ = float(search.best_params_["bandwidth"])
        return search.best_estimator_

    def _sample_standardised(self, n_samples, random_state):
        return self.density_.sample(n_samples, random_state=random_state)
