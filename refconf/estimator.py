"""``ConfDensity``: a CONF density estimator with scikit-learn conventions.

Like :class:`sklearn.neighbors.KernelDensity`: ``fit(X)``, ``score_samples(X)``
(per-sample log-density in nats), ``score(X)`` (total log-likelihood) and
``sample(n_samples, random_state)``, plus ``save``/``load`` of the fitted model.
"""

import numpy as onp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted
from threadpoolctl import threadpool_limits

from .backend import to_numpy
from .engines import get_engine, resolve_engine
from .flows import FlowModel, conf
from .params import load_model, save_model, tree_map
from .train import fit as train_fit
from .train import nll_objective

__all__ = ["ConfDensity"]

_DTYPES = ("float64", "float32")

_EVAL_BATCH = 4096


class ConfDensity(BaseEstimator):
    """Convolutional normalizing flow density estimator.

    Parameters
    ----------
    steps, m, hidden, kind, mixing, actnorm, spectrum, activation, alpha_init
        Architecture; see :func:`refconf.flows.conf`.
    epochs : int
        Maximum number of passes over the training data.
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
    validation_fraction : float
        Share of ``X`` held out for early stopping when ``fit`` gets no ``X_val``.
    random_state : int or None
        Seed of initialisation, batching and the validation split: a fixed seed gives an
        identical fit.
    verbose : bool
        Show a progress bar with the live train/validation loss.
    engine : {"auto", "numpy", "numba", "cupy"}
        Implementation that runs (:mod:`refconf.engines`): ``"auto"`` is ``"numba"`` when
        numba is installed, else ``"numpy"``. The fitted model does not depend on it.
        ``"cupy"`` runs on a CUDA GPU: results come back as NumPy arrays; training runs
        the explicit whole-model pass on the device, with Adam on the host.
    dtype : {"float64", "float32"}
        Precision of the parameters and of every computation (data are cast to it).
        float32 halves the memory traffic and the BLAS work: with the numba engine a
        training step is about 1.5x and sampling 1.6-2x faster
        (``validation/bench_engines.py``), within float32's tolerances
        (``tests/test_engines.py``).

    Attributes
    ----------
    model_ : FlowModel
    params_ : dict
        Fitted parameters (the best validation epoch).
    history_ : list of dict
        Per-epoch metrics.
    n_features_in_ : int
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
    """

    def __init__(self, steps=4, m=2, hidden=(64, 64), kind="symmetric", mixing="reverse",
                 actnorm=True, spectrum="raw", activation="tanh", alpha_init=1.0,
                 epochs=100, batch_size=256, learning_rate=1e-3, lr_decay=1.0,
                 clip_norm=10.0, patience=10, validation_fraction=0.1, random_state=None,
                 verbose=False, engine="auto", dtype="float64"):
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
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.engine = engine
        self.dtype = dtype

    def _dtype(self):
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        return onp.dtype(self.dtype)

    def _check_X(self, X, reset):
        # fitting needs 2 samples for the data-dependent (ActNorm) initialisation
        X = check_array(X, dtype=onp.float64, ensure_min_samples=2 if reset else 1)
        if reset:
            if X.shape[1] < 2:
                raise ValueError(
                    f"ConfDensity needs at least 2 features (a coupling splits them in two); "
                    f"got n_features = {X.shape[1]}")
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but ConfDensity is expecting "
                f"{self.n_features_in_} features as input")
        return X.astype(self._dtype(), copy=False)

    def fit(self, X, y=None, X_val=None, metrics_path=None, checkpoint_path=None, resume=False):
        """Maximum-likelihood fit on ``X`` (rows are samples); ``y`` is ignored.

        ``X_val`` is the early-stopping set; without it ``validation_fraction`` of ``X``
        is held out (none when ``patience`` is None or the fraction is 0). The checkpoint
        (``checkpoint_path``) records :meth:`get_params` as ``metadata["estimator"]``; each
        history and metrics record names the engine.
        """
        engine = get_engine(resolve_engine(self.engine))
        X = self._check_X(X, reset=True)
        # independent streams for the split, the initialisation and the batching
        split_seed, init_seed, train_seed = (
            int(s) for s in onp.random.SeedSequence(self.random_state).generate_state(3))
        split_rng = onp.random.default_rng(split_seed)
        if X_val is not None:
            X_val = self._check_X(X_val, reset=False)
            X_train = X
        elif self.patience is not None and self.validation_fraction > 0 and len(X) >= 10:
            order = split_rng.permutation(len(X))
            n_val = max(1, round(self.validation_fraction * len(X)))
            X_train, X_val = X[order[n_val:]], X[order[:n_val]]
        else:
            X_train = X
        self.model_ = conf(
            X.shape[1], steps=self.steps, m=self.m, hidden=tuple(self.hidden), kind=self.kind,
            mixing=self.mixing, actnorm=self.actnorm, spectrum=self.spectrum,
            activation=self.activation, alpha_init=self.alpha_init,
            random_state=init_seed)
        params = tree_map(
            lambda a: onp.asarray(a, dtype=self._dtype()),
            self.model_.init_params(X_train[: max(self.batch_size, 512)],
                                    random_state=init_seed))
        model = self.model_

        loss, gradient = nll_objective(model, engine)

        # Small matrix products: one BLAS thread is ~4x faster per step than two here,
        # whose threads spin against each other (measured, 2-core machine).
        with threadpool_limits(limits=1, user_api="blas"):
            result = train_fit(
                loss, params, X_train, X_val, epochs=self.epochs, batch_size=self.batch_size,
                learning_rate=self.learning_rate, lr_decay=self.lr_decay,
                clip_norm=self.clip_norm,
                patience=self.patience if X_val is not None else None,
                random_state=train_seed, metrics_path=metrics_path,
                checkpoint_path=checkpoint_path, resume=resume, progress=self.verbose,
                gradient=gradient, metadata={"estimator": self.get_params()},
                record_fields={"engine": engine.name})
        self.params_ = result.params
        self.history_ = result.history
        self.engine_ = engine.name
        self.stopped_reason_ = result.stopped_reason
        return self

    def _flow(self):
        check_is_fitted(self, "params_")
        return self.model_.build(self.params_, engine=resolve_engine(self.engine))

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each row of ``X``, in nats."""
        flow = self._flow()
        X = self._check_X(X, reset=False)
        return onp.concatenate([to_numpy(flow.log_prob(X[i: i + _EVAL_BATCH]))
                                for i in range(0, len(X), _EVAL_BATCH)])

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` in nats."""
        return float(onp.sum(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """``n_samples`` draws, shape ``(n_samples, n_features)`` (a NumPy array, whatever
        the engine)."""
        return to_numpy(self._flow().sample(n_samples, random_state))

    def save(self, path):
        """Write the fitted model to ``path`` (``.npz``, no pickle; atomic)."""
        check_is_fitted(self, "params_")
        save_model(path, self.params_, self.model_.spec,
                   {"estimator": self.get_params(), "history": self.history_,
                    "stopped_reason": self.stopped_reason_,
                    "engine": getattr(self, "engine_", None)})

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (or by ``refconf train``)."""
        params, spec, metadata = load_model(path)
        settings = dict(metadata.get("estimator", {}))
        if "hidden" in settings:  # JSON stores the tuple as a list
            settings["hidden"] = tuple(settings["hidden"])
        est = cls(**settings)
        est.model_ = FlowModel(spec)
        est.params_ = params
        est.n_features_in_ = est.model_.dim
        est.history_ = metadata.get("history", [])
        est.stopped_reason_ = metadata.get("stopped_reason")
        est.engine_ = metadata.get("engine")
        return est
