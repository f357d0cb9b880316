"""One trial: a model trained on a dataset with a seed, and its test NLL; the model registry.

A trial is a pure function of its :class:`TrialSpec` and the loaded
:class:`~refconf.experiments.data.Dataset`: every random choice (architecture draws,
initialisation, batch order) comes from ``spec.seed``, none from a global generator, and
BLAS runs single-threaded inside it, so a trial gives the same numbers in any process
(:mod:`refconf.experiments.runner`).

The models a trial can run are :data:`MODELS`, name -> :class:`ModelEntry`. The flows of
:mod:`refconf.baselines` train with :func:`refconf.train.fit` (:func:`flow_trial`); a
scikit-learn style density estimator (``fit(X)``, ``score_samples(X)``) joins with
:func:`estimator_model`, e.g.::

    from sklearn.mixture import GaussianMixture
    MODELS["gmm"] = estimator_model("GMM", GaussianMixture)

after which ``models=["gmm"]`` and ``datasets.<name>.models.gmm`` in the config (the
estimator's keyword arguments) work everywhere.
"""

import dataclasses
import inspect
import time

import autograd.numpy as anp
import numba
import numpy as onp
from threadpoolctl import threadpool_limits

from ..baselines import build_model
from ..classical import GaussianMixtureDensity, KernelDensityEstimate
from ..engines import default_engine
from ..flows import FlowModel
from ..train import fit, nll_objective

__all__ = ["MODELS", "ModelEntry", "TrialSpec", "estimator_model", "flow_trial", "run_trial"]

_EVAL_BATCH = 8192
_INIT_ROWS = 1024


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """Everything one trial's result depends on, except the data arrays.

    Attributes
    ----------
    dataset, model : str
        Names from :data:`~refconf.experiments.data.TABLE1_DATASETS` and :data:`MODELS`.
    trial : int
        The trial's index in its cell of the table (0-based).
    seed : int
        The trial's seed (the run's seed plus ``trial``).
    model_kwargs, training : dict
        The model's builder (or estimator) arguments and the :func:`refconf.train.fit`
        settings, resolved (:func:`~refconf.experiments.config.resolve_hyperparameters`).
    data : dict
        What identifies the data (the loaded dataset's description and the data seed).
    """

    dataset: str
    model: str
    trial: int
    seed: int
    model_kwargs: dict
    training: dict
    data: dict

    def config(self, version):
        """The JSON a recorded result must match to be reused: everything but ``trial``."""
        return {"refconf_version": version, "dataset": self.dataset, "model": self.model,
                "seed": self.seed, "model_kwargs": self.model_kwargs,
                "training": self.training, "data": self.data}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """How the experiments run one model name.

    Attributes
    ----------
    display : str
        The name in tables.
    run : callable
        ``run(spec, dataset, progress) -> dict`` with ``test_nll`` (nats per example, or
        None when not finite), ``epochs``, ``best_epoch``, ``best_val_nll``,
        ``stopped_reason``, ``engine``, and ``params`` and ``spec`` (None when the model
        cannot be saved by :func:`refconf.params.save_model`).
    check : callable
        ``check(kwargs, dim)`` raises ``ValueError`` for arguments the model does not take.
    architecture : bool
        Whether the config's ``architecture`` (``steps``, ``hidden``) and the matching
        overrides apply.
    summary : str, optional
        The hyperparameter table's cell when ``architecture`` is false (default: the
        arguments).
    """

    display: str
    run: object
    check: object
    architecture: bool = True
    summary: str | None = None


def _finite_nll(log_p, correction):
    value = float(-onp.mean(log_p - correction))
    return value if onp.isfinite(value) else None


def _flow_nll(flow, x, correction):
    log_p = onp.concatenate([flow.log_prob(x[i:i + _EVAL_BATCH])
                             for i in range(0, len(x), _EVAL_BATCH)])
    return _finite_nll(log_p, correction)


def _train_flow(model, train, val, spec, progress):
    """Data-dependent initialisation and :func:`refconf.train.fit`: ``(params, result)``."""
    rng = onp.random.default_rng(spec.seed)
    # data-dependent initialisation from a random subset (some splits are ordered)
    rows = rng.choice(len(train), size=min(len(train), _INIT_ROWS), replace=False)
    params = model.init_params(train[onp.sort(rows)], random_state=spec.seed)
    if isinstance(model, FlowModel):  # CONF: the default engine's explicit pass
        loss, gradient = nll_objective(model, default_engine())
    else:
        gradient = None

        def loss(p, batch):
            return -anp.mean(model.build(p).log_prob(batch))

    fitted = fit(loss, params, train, val, random_state=spec.seed, gradient=gradient,
                 progress=progress, **spec.training)
    return fitted.params, fitted


def flow_trial(spec, dataset, progress=False):
    """Train (or fit in closed form) a model of :func:`refconf.baselines.build_model`.

    The model is built with ``random_state=spec.seed`` (flows), initialised from up to
    1024 training rows drawn with ``spec.seed``, trained by :func:`refconf.train.fit`
    (early stopping on the validation split, best-validation parameters, batch order
    from ``spec.seed``; CONF with the default engine's explicit gradient pass) and
    scored on the test split: ``test_nll = -mean(log q(x) - correction)``.
    """
    train, val, test = dataset.splits
    closed_form = not MODELS[spec.model].architecture
    kwargs = spec.model_kwargs if closed_form else {**spec.model_kwargs,
                                                    "random_state": spec.seed}
    model = build_model(spec.model, train.shape[1], **kwargs)
    if getattr(model, "closed_form_fit", False):
        params, fitted = model.init_params(train), None
    else:
        params, fitted = _train_flow(model, train, val, spec, progress)
    return {"test_nll": _flow_nll(model.build(params), test, dataset.correction),
            "epochs": len(fitted.history) if fitted else 0,
            "best_epoch": fitted.best_epoch if fitted else None,
            "best_val_nll": fitted.best_val_loss if fitted else None,
            "stopped_reason": fitted.stopped_reason if fitted else "closed_form",
            "engine": default_engine() if isinstance(model, FlowModel) else "numpy",
            "params": params, "spec": model.spec}


def _check_flow(name):
    def check(kwargs, dim):
        build_model(name, dim, **kwargs)
    return check


def _accepted(make):
    return [p for p in inspect.signature(make).parameters if p != "random_state"]


def estimator_model(display, make, seeded=True, summary=None):
    """A :class:`ModelEntry` for a scikit-learn style density estimator.

    ``make(**model_kwargs)`` (plus ``random_state=spec.seed`` when ``seeded``) is fitted
    on the training split, ``fit(train)``, and scored on the test split by
    ``score_samples`` (per-sample log-density): ``test_nll = -mean(score_samples(test)
    - correction)``. The validation split is not used; nothing is saved.

    Examples
    --------
    >>> from sklearn.neighbors import KernelDensity
    >>> entry = estimator_model("KDE", KernelDensity, seeded=False)
    >>> entry.check({"bandwidth": 0.5}, 2)
    >>> entry.check({"bandwith": 0.5}, 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: KDE takes no argument(s) ['bandwith']; it accepts ['bandwidth', ...]
    """
    def check(kwargs, dim):
        unknown = sorted(set(kwargs) - set(_accepted(make)))
        if unknown:
            raise ValueError(f"{display} takes no argument(s) {unknown}; it accepts "
                             f"{_accepted(make)}")

    def run(spec, dataset, progress=False):
        train, _, test = dataset.splits
        extra = {"random_state": spec.seed} if seeded else {}
        estimator = make(**spec.model_kwargs, **extra).fit(train)
        return {"test_nll": _finite_nll(estimator.score_samples(test), dataset.correction),
                "epochs": 0, "best_epoch": None, "best_val_nll": None,
                "stopped_reason": "estimator", "engine": type(estimator).__name__,
                "params": None, "spec": None}

    return ModelEntry(display, run, check, architecture=False, summary=summary)


#: Model name -> :class:`ModelEntry`; the experiments accept exactly these names.
MODELS = {
    "conf": ModelEntry("CONF", flow_trial, _check_flow("conf")),
    "realnvp": ModelEntry("Real NVP", flow_trial, _check_flow("realnvp")),
    "glow": ModelEntry("Glow", flow_trial, _check_flow("glow")),
    "maf": ModelEntry("MAF", flow_trial, _check_flow("maf")),
    "gaussian": ModelEntry("Gaussian", flow_trial, _check_flow("gaussian"),
                           architecture=False, summary="closed form"),
    # the classical baselines, with their model selection on the training split
    "gmm": estimator_model("GMM (BIC)", GaussianMixtureDensity,
                           summary="components 1-10 by BIC"),
    "kde": estimator_model("KDE (CV)", KernelDensityEstimate,
                           summary="bandwidth by 5-fold cross-validation"),
}


def run_trial(run, spec, dataset, progress=False, keep_params=False, single_thread=False):
    """Run one trial: ``run(spec, dataset, progress)`` (a :attr:`ModelEntry.run`) with
    BLAS single-threaded (small products: one thread is faster, and a reduction's order
    then never depends on the machine's thread count).

    ``single_thread`` also limits OpenMP and numba to one thread (worker processes,
    where the trials themselves are the parallelism).

    Returns
    -------
    dict
        ``record`` (JSON: ``trial``, ``seed``, ``test_nll``, ``seconds``, ``epochs``,
        ``best_epoch``, ``best_val_nll``, ``stopped_reason``, ``engine``) and ``model``
        (``{"params", "spec"}`` with ``keep_params`` and a savable model, else None).
    """
    started = time.perf_counter()
    limits = {"limits": 1} if single_thread else {"limits": 1, "user_api": "blas"}
    with threadpool_limits(**limits):
        if single_thread:
            numba.set_num_threads(1)
        outcome = run(spec, dataset, progress)
    params, model_spec = outcome.pop("params"), outcome.pop("spec")
    record = {"trial": spec.trial, "seed": spec.seed, "test_nll": outcome.pop("test_nll"),
              "seconds": time.perf_counter() - started, **outcome}
    saved = {"params": params, "spec": model_spec} if keep_params and params is not None else None
    return {"record": record, "model": saved}
