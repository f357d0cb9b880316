"""``ConfDensity``: a CONF density estimator with scikit-learn conventions.

Like :class:`sklearn.neighbors.KernelDensity`: ``fit(X)``, ``score_samples(X)``
(per-sample log-density in nats, on the scale of ``X``), ``score(X)`` (total
log-likelihood) and ``sample(n_samples, random_state)``, plus ``save``/``load`` of the
fitted model.
"""

import warnings

import numpy as onp
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .backend import to_numpy
from .engines import get_engine, resolve_engine
from .flows import FlowModel, conf
from .health import locate_non_finite
from .params import load_model, save_model, tree_map
from .scaling import ColumnScaling, check_columns, dequantize, quantum, warn_if_discrete
from .train import FitConfig, NonFiniteTraining, nll_objective
from .train import fit as train_fit
from .train.stopping import still_improving

__all__ = ["ConfDensity", "TailWarning"]

_DTYPES = ("float64", "float32")

_EVAL_BATCH = 4096

#: Rows whose latent norm exceeds the training maximum by this factor are reported.
TAIL_FACTOR = 1.5


class TailWarning(UserWarning):
    """Rows map far outside the latent range seen in training: their densities are
    extrapolations."""


class ConfDensity(BaseEstimator):
    """Convolutional normalizing flow density estimator.

    The flow is fitted to the whitened data ``u = L^{-1} (x - mean) / std`` (per column
    mean and standard deviation, and ``L`` the Cholesky factor of the shrunk correlation
    matrix, all from the training rows) and every density is reported on the scale of
    ``X``: ``log p(x) = log p_U(u) - sum_j log std_j - sum_j log L_jj``
    (:doc:`../theory/change-of-variables`). At initialisation the flow is the identity, so
    the model starts as the (shrunk) full-covariance Gaussian and early stopping can only
    keep what improves on it in validation. The reported density mixes in that Gaussian
    with weight ``defensive``. Fitting ``c * X + b`` gives the same model
    with log-densities shifted by ``-D log|c|``, for columns of any scale.

    Parameters
    ----------
    steps, m, hidden, kind, mixing, actnorm, spectrum, activation, alpha_init
        Architecture; see :func:`refconf.flows.conf`.
    epochs : int
        Maximum number of passes over the training data. A run that reaches it while the
        validation loss is still improving gets a ``ConvergenceWarning``.
    batch_size : int
    learning_rate : float
        Adam step size.
    lr_decay : float
        Learning rate multiplied by this factor after every epoch.
    clip_norm : float or None
        Global gradient-norm clipping.
    patience : int or None
        Early stopping: epochs without validation improvement before stopping; the best
        model is restored.
    min_delta : float
        Smallest decrease of the validation loss (mean NLL in nats of the standardised
        data) that counts as an improvement for ``patience``.
    validation_fraction : float
        Share of ``X`` held out for early stopping when ``fit`` gets no ``X_val``.
    dequantize : bool
        Fit the uniformly dequantised data ``x + delta * (v - 1/2)``, ``v ~ U[0, 1)``,
        where ``delta_j`` is column ``j``'s smallest gap between distinct values. Use it
        for discrete data (``fit`` warns with a ``DiscreteDataWarning`` when at least 20%
        of the rows repeat). ``score_samples`` is then the density of the dequantised
        variable; ``score_samples(x) + log_quantum_`` bounds ``log P(x)`` of the discrete
        value from below (Theis et al. 2016).
    whiten : bool
        Whiten by the shrunk correlation (else standardise each column only).
    shrinkage : float in [0, 1]
        The correlation used to whiten is ``(1 - shrinkage) R + shrinkage I``: a small
        shrinkage keeps nearly collinear columns (a near-singular ``R``) from putting
        held-out rows hundreds of standard deviations out in ``u``.
    defensive : float in [0, 1)
        Weight ``eps`` of the whitening Gaussian in the reported density, a defensive
        mixture ``p = (1 - eps) p_flow + eps N`` (in the whitened space; Hesterberg 1995):
        it costs at most ``-log(1 - eps)`` nats (0.05 for the default) on any row and
        keeps a row far in the flow's tails within ``-log(eps)`` (3 nats) of the Gaussian.
        Sampling draws each row from the Gaussian with probability ``eps``. Training fits
        the flow alone.
    random_state : int or None
        Seed of initialisation, batching, dequantisation and the validation split: a fixed
        seed gives an identical fit.
    verbose : bool
        Show a progress bar with the live train/validation loss.
    engine : {"auto", "numpy", "numba", "cupy"}
        Implementation that runs (:mod:`refconf.engines`): ``"auto"`` is ``"numba"`` (a core
        dependency; :func:`refconf.engines.default_engine`). The fitted model does not depend on it.
        ``"cupy"`` runs on a CUDA GPU: results come back as NumPy arrays; training runs
        the explicit whole-model pass on the device, with Adam on the host.
    dtype : {"float64", "float32"}
        Precision of the parameters and of every computation (the standardised data are
        cast to it). float32 halves the memory traffic and the BLAS work: with the numba
        engine a training step is about 1.5x and sampling 1.6-2x faster
        (``validation/bench_engines.py``), within float32's tolerances
        (``tests/test_engines.py``).

    Attributes
    ----------
    model_ : FlowModel
    params_ : dict
        Fitted parameters (the best validation epoch), of the flow on standardised data.
    scaling_ : ColumnScaling
        The per-column ``mean`` and ``scale`` (standard deviation, signed by the skewness)
        of the training rows, and the whitening factor ``chol``.
    history_ : list of dict
        Per-epoch metrics.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose parameters were kept (0: the initial ones).
    best_val_loss_ : float or None
        Validation mean NLL at ``best_epoch_``, in nats of the standardised data (add
        ``-scaling_.log_jacobian`` for nats of ``X``); None without validation data.
    stopped_reason_ : {"completed", "early_stopping"}
        Why training stopped: the ``epochs`` cap or early stopping. (Non-finite training
        raises instead.)
    latent_norm_max_ : float
        Largest latent norm ``|z|`` of a training row; :meth:`score_samples` warns
        (:class:`TailWarning`) for rows beyond 1.5 times it.
    quantum_ : ndarray or None
        The dequantisation steps ``delta_j`` (None without ``dequantize``);
        ``log_quantum_`` is ``sum_j log delta_j`` (0 without).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names; scoring then
        checks them as scikit-learn's own estimators do.
    engine_ : str
        The engine that ran :meth:`fit` (also in each ``history_`` record and the saved
        model's metadata).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import ConfDensity
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> est = ConfDensity(steps=2, hidden=(8,), epochs=2, random_state=0).fit(X)
    >>> est.score_samples(X[:4]).shape
    (4,)

    With a validation set of your own (else ``validation_fraction`` of ``X`` is held out):

    >>> est = ConfDensity(steps=2, hidden=(8,), epochs=3, random_state=0)
    >>> est = est.fit(X[:150], X_val=X[150:])
    >>> est.n_iter_, est.stopped_reason_
    (3, 'completed')
    """

    def __init__(self, steps=4, m=2, hidden=(64, 64), kind="symmetric", mixing="reverse",
                 actnorm=True, spectrum="raw", activation="tanh", alpha_init=0.3,
                 epochs=500, batch_size=128, learning_rate=1e-3, lr_decay=1.0,
                 clip_norm=10.0, patience=25, min_delta=0.0, validation_fraction=0.2,
                 dequantize=False, whiten=True, shrinkage=3e-4, defensive=0.05,
                 random_state=None, verbose=False, engine="auto", dtype="float64"):
        self.steps = steps
        self.m = m
        self.hidden = hidden
        self.kind = kind
        self.mixing = mixing
        self.actnorm = actnorm
        self.spectrum = spectrum
        self.activation = activation
        self.alpha_init = alpha_init
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.clip_norm = clip_norm
        self.patience = patience
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.dequantize = dequantize
        self.whiten = whiten
        self.shrinkage = shrinkage
        self.defensive = defensive
        self.random_state = random_state
        self.verbose = verbose
        self.engine = engine
        self.dtype = dtype

    def _dtype(self):
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        return onp.dtype(self.dtype)

    def _check_X(self, X, reset):
        """Validated float64 rows (scikit-learn's checks of feature count and names)."""
        # fitting needs 2 samples for the data-dependent (ActNorm) initialisation
        X = validate_data(self, X, reset=reset, dtype=onp.float64,
                          ensure_min_samples=2 if reset else 1)
        if reset and X.shape[1] < 2:
            raise ValueError(
                f"ConfDensity needs at least 2 features (a coupling splits them in two); "
                f"got n_features = {X.shape[1]}")
        return X

    def _standardised(self, X):
        return self.scaling_.transform(X).astype(self._dtype(), copy=False)

    def _prepare(self, X, X_val, rng):
        """Checked, dequantised (if asked) and split data; sets ``scaling_``."""
        names = getattr(self, "feature_names_in_", None)
        check_columns(X, names)
        self.quantum_, self.log_quantum_ = None, 0.0
        if self.dequantize:
            self.quantum_ = quantum(X)
            self.log_quantum_ = float(onp.sum(onp.log(self.quantum_)))
            X = dequantize(X, self.quantum_, rng)
            X_val = None if X_val is None else dequantize(X_val, self.quantum_, rng)
        else:
            warn_if_discrete(X, names)
        if X_val is None and self.patience is not None and self.validation_fraction > 0 \
                and len(X) >= 10:
            order = rng.permutation(len(X))
            n_val = max(1, round(self.validation_fraction * len(X)))
            X, X_val = X[order[n_val:]], X[order[:n_val]]
        self.scaling_ = ColumnScaling.fit(X, self.whiten, self.shrinkage)
        return self._standardised(X), None if X_val is None else self._standardised(X_val)

    def _check_weights(self):
        if not 0 <= self.defensive < 1:
            raise ValueError(f"defensive={self.defensive!r}; expected a weight in [0, 1)")
        if not 0 <= self.shrinkage <= 1:
            raise ValueError(f"shrinkage={self.shrinkage!r}; expected a number in [0, 1]")

    def _config(self, has_val):
        return FitConfig(
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            lr_decay=self.lr_decay, clip_norm=self.clip_norm,
            patience=self.patience if has_val else None, min_delta=self.min_delta,
            on_non_finite="raise")

    def fit(self, X, y=None, X_val=None, metrics_path=None, checkpoint_path=None, resume=False):
        """Maximum-likelihood fit on ``X`` (rows are samples); ``y`` is ignored.

        Parameters
        ----------
        X : array_like or DataFrame, shape (n_samples, n_features)
        y : ignored
        X_val : array_like, shape (n_val, n_features), optional
            The early-stopping set; without it ``validation_fraction`` of ``X`` is held out
            (none when ``patience`` is None or the fraction is 0).
        metrics_path, checkpoint_path, resume
            As in :func:`refconf.train.fit`; the checkpoint holds the flow on the
            standardised data (the standardisation is recomputed from ``X`` on resume) and
            records :meth:`get_params` as ``metadata["estimator"]``; each history and
            metrics record names the engine.

        Raises
        ------
        ValueError
            For a constant column or one with no resolvable variation (named).
        FloatingPointError
            When training goes non-finite or diverges: the message names the layer and
            gate where the values went bad; the checkpoint keeps the last good epoch.
        """
        engine = get_engine(resolve_engine(self.engine))
        self._check_weights()
        X = self._check_X(X, reset=True)
        # independent streams for the split and dequantisation, initialisation, batching
        split_seed, init_seed, train_seed = (
            int(s) for s in onp.random.SeedSequence(self.random_state).generate_state(3))
        if X_val is not None:
            X_val = self._check_X(X_val, reset=False)
        X_train, X_val = self._prepare(X, X_val, onp.random.default_rng(split_seed))
        self.model_ = conf(
            X.shape[1], steps=self.steps, m=self.m, hidden=tuple(self.hidden), kind=self.kind,
            mixing=self.mixing, actnorm=self.actnorm, spectrum=self.spectrum,
            activation=self.activation, alpha_init=self.alpha_init,
            random_state=init_seed)
        params = tree_map(
            lambda a: onp.asarray(a, dtype=self._dtype()),
            self.model_.init_params(X_train[: max(self.batch_size, 512)],
                                    random_state=init_seed))
        loss, gradient = nll_objective(self.model_, engine)
        config = self._config(X_val is not None)
        # Small matrix products: one BLAS thread is ~4x faster per step than two here,
        # whose threads spin against each other (measured, 2-core machine).
        with threadpool_limits(limits=1, user_api="blas"):
            try:
                result = train_fit(
                    loss, params, X_train, X_val, config=config, random_state=train_seed,
                    metrics_path=metrics_path, checkpoint_path=checkpoint_path, resume=resume,
                    progress=self.verbose, gradient=gradient,
                    metadata={"estimator": self.get_params()},
                    record_fields={"engine": engine.name})
            except NonFiniteTraining as bad:
                raise FloatingPointError(
                    f"ConfDensity.fit: {bad} Where: "
                    f"{locate_non_finite(self.model_, bad.params, bad.batch)}.") from None
        self._record(result, engine.name, X_train)
        return self

    def _record(self, result, engine_name, X_train):
        self.params_ = result.params
        self.history_ = result.history  # each record names the engine (record_fields)
        self.engine_ = engine_name
        self.stopped_reason_ = result.stopped_reason
        self.n_iter_ = len(result.history)
        self.best_epoch_ = result.best_epoch
        self.best_val_loss_ = result.best_val_loss
        self.latent_norm_max_ = float(onp.max(self._latent_norms(X_train), initial=0.0))
        if result.stopped_reason == "completed" and still_improving(result.history,
                                                                    self.min_delta):
            warnings.warn(
                f"ConfDensity stopped at the epoch cap ({self.n_iter_} epochs) while the "
                f"{'validation' if result.best_val_loss is not None else 'training'} loss "
                "was still improving; raise epochs (or learning_rate) for a better fit",
                ConvergenceWarning, stacklevel=3)

    def _flow(self):
        check_is_fitted(self, "params_")
        return self.model_.build(self.params_, engine=resolve_engine(self.engine))

    def _latent_norms(self, U):
        flow = self._flow()
        with onp.errstate(over="ignore", invalid="ignore"):
            return onp.concatenate([
                onp.linalg.norm(to_numpy(flow.forward(U[i: i + _EVAL_BATCH])[0]), axis=1)
                for i in range(0, len(U), _EVAL_BATCH)])

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each row of ``X``, in nats, on the scale of ``X``.

        Warns (:class:`TailWarning`) when rows map beyond 1.5 times the largest latent
        norm of a training row: their densities extrapolate the fitted tails.
        """
        flow = self._flow()
        U = self._standardised(self._check_X(X, reset=False))
        log_p = onp.concatenate([to_numpy(flow.log_prob(U[i: i + _EVAL_BATCH]))
                                 for i in range(0, len(U), _EVAL_BATCH)])
        self._warn_tails(U)
        if self.defensive:
            gauss = -0.5 * onp.sum(onp.asarray(U, dtype=onp.float64) ** 2, axis=1) \
                - 0.5 * U.shape[1] * onp.log(2 * onp.pi)
            log_p = onp.logaddexp(onp.log1p(-self.defensive) + log_p,
                                  onp.log(self.defensive) + gauss)
        return log_p + self.scaling_.log_jacobian

    def _warn_tails(self, U):
        limit = getattr(self, "latent_norm_max_", None)
        if limit is None:
            return
        norms = self._latent_norms(U)
        far = ~(norms <= TAIL_FACTOR * limit)
        if far.any():
            warnings.warn(
                f"{int(far.sum())} of {len(U)} rows map outside the latent range seen in "
                f"training (latent norm up to {onp.nanmax(onp.where(far, norms, 0)):.3g}, "
                f"training rows at most {limit:.3g}): their densities are extrapolations",
                TailWarning, stacklevel=3)

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` in nats."""
        return float(onp.sum(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """``n_samples`` draws, shape ``(n_samples, n_features)``, on the scale of ``X`` (a
        NumPy array of ``dtype``, whatever the engine)."""
        check_is_fitted(self, "params_")
        if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r}; expected a positive integer")
        d = self.n_features_in_
        # One row-major draw of d + 1 normals per row: the last one picks the mixture
        # component, so consecutive calls on one Generator give the rows of one big call.
        E = onp.random.default_rng(random_state).standard_normal(
            (n_samples, d + 1) if self.defensive else (n_samples, d))
        U = to_numpy(self._flow().invert_latents(E[:, :d]))
        if self.defensive:  # the whitening Gaussian's draw is the latent itself
            pick = E[:, d] < special.ndtri(self.defensive)
            U = onp.where(pick[:, None], E[:, :d], U)
        return self.scaling_.inverse(U).astype(self._dtype(), copy=False)

    def save(self, path):
        """Write the fitted model to ``path`` (``.npz``, no pickle; atomic)."""
        check_is_fitted(self, "params_")
        names = getattr(self, "feature_names_in_", None)
        save_model(path, self.params_, self.model_.spec, {
            "estimator": self.get_params(), "history": self.history_,
            "stopped_reason": self.stopped_reason_, "engine": getattr(self, "engine_", None),
            "scaling": self.scaling_.to_json(), "latent_norm_max": self.latent_norm_max_,
            "feature_names_in": None if names is None else [str(n) for n in names],
            "best_epoch": self.best_epoch_, "best_val_loss": self.best_val_loss_,
            "quantum": None if self.quantum_ is None else self.quantum_.tolist()})

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (or by ``refconf train``). Files written
        before standardisation existed load with the identity scaling."""
        params, spec, metadata = load_model(path)
        settings = dict(metadata.get("estimator", {}))
        if "hidden" in settings:  # JSON stores the tuple as a list
            settings["hidden"] = tuple(settings["hidden"])
        est = cls(**settings)
        est.model_ = FlowModel(spec)
        est.params_ = params
        est.n_features_in_ = est.model_.dim
        if metadata.get("feature_names_in") is not None:
            est.feature_names_in_ = onp.asarray(metadata["feature_names_in"], dtype=object)
        est.scaling_ = (ColumnScaling.from_json(metadata["scaling"]) if "scaling" in metadata
                        else ColumnScaling.identity(est.model_.dim))
        est.history_ = metadata.get("history", [])
        est.n_iter_ = len(est.history_)
        est.stopped_reason_ = metadata.get("stopped_reason")
        est.engine_ = metadata.get("engine")
        est.best_epoch_ = metadata.get("best_epoch")
        est.best_val_loss_ = metadata.get("best_val_loss")
        est.latent_norm_max_ = metadata.get("latent_norm_max")
        quantum_ = metadata.get("quantum")
        est.quantum_ = None if quantum_ is None else onp.asarray(quantum_)
        est.log_quantum_ = 0.0 if quantum_ is None else float(onp.sum(onp.log(est.quantum_)))
        return est
