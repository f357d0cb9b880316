"""Baseline flows of the paper's Table 1 in refconf's own framework: Real NVP, Glow, MAF,
and a full-covariance Gaussian.

Every model has the interface of :class:`refconf.flows.FlowModel`: a JSON-serialisable
``spec`` (``spec["model"]`` names it), ``init_params(x=None, random_state=None)``,
``build(params) -> Flow`` and ``dim``. So they train with :func:`refconf.train.fit`,
save with :func:`refconf.params.save_model` and come back with :func:`model_from_spec`::

    model = build_model("maf", dim=6, steps=5, hidden=(100, 100))
    params = model.init_params(x_train, random_state=0)
    log_p = model.build(params).log_prob(x)
    same = model_from_spec(model.spec)           # e.g. after load_model(path)

Architectures (all with unequal splits ``d1 = floor(D/2)``, ``d2 = ceil(D/2)``, and
standard-normal base):

- ``realnvp`` (Dinh et al. 2017): steps of [ActNorm] -> :class:`AffineCoupling` -> reverse
  (or fixed random permutation) mixing.
- ``glow`` (Kingma & Dhariwal 2018): steps of ActNorm -> invertible 1x1 (LU) ->
  :class:`AffineCoupling`, in Glow's order.
- ``maf`` (Papamakarios et al. 2017): steps of [ActNorm] -> :class:`MaskedAutoregressive`
  (one MADE each), the autoregressive order reversed (or redrawn) from step to step.
- ``gaussian``: ``N(mu, Sigma)`` as the flow ``z = L^{-1}(x - mu)``, ``Sigma = L L^T``;
  ``init_params(x)`` is the maximum-likelihood fit in closed form.
- ``conf``: :func:`refconf.flows.conf`.

ActNorm layers (data-dependent initialisation, on by default) stand in for the batch
normalisation between layers of the published Real NVP and MAF models: a fixed bijection
at test time, like batch norm with its running averages, but without batch statistics
in training.
"""

import inspect

import numpy as onp
import scipy.linalg

from .bijectors import ActNorm, Chain, Invertible1x1, Permutation, Reverse
from .bijectors.affine import AffineCoupling
from .bijectors.autoregressive import MaskedAutoregressive
from .bijectors.base import validate_input
from .bijectors.coupling import split_sizes
from .checks import check_choice
from .conditioners import ACTIVATIONS
from .flows import Flow, FlowModel, StandardNormal, conf
from .params import load_model

__all__ = ["AFFINE_MIXINGS", "MAF_ORDERS", "MODEL_NAMES", "AffineFlowModel", "GaussianModel",
           "MAFModel", "build_model", "gaussian", "glow", "load_flow_model", "maf",
           "model_from_spec", "realnvp"]

MODEL_NAMES = ("conf", "realnvp", "glow", "maf", "gaussian")
AFFINE_MIXINGS = {"realnvp": ("reverse", "permutation"), "glow": ("1x1",)}
MAF_ORDERS = ("reverse", "random")


def _require(spec, keys, model):
    missing = [key for key in keys if key not in spec]
    if missing:
        raise ValueError(f"{model} spec is missing {missing}; expected the keys {list(keys)}")


def _check_common(spec, model):
    """Checks shared by the stepped flows: dim >= 2, steps >= 1, widths >= 1."""
    if int(spec["dim"]) < 2:
        raise ValueError(f"{model} needs data of dimension >= 2, got dim={spec['dim']}")
    if int(spec["steps"]) < 1:
        raise ValueError(f"steps must be >= 1, got {spec['steps']}")
    if not spec["hidden"] or min(int(h) for h in spec["hidden"]) < 1:
        raise ValueError(f"hidden must be a non-empty list of positive widths, got "
                         f"{spec['hidden']}")
    check_choice("activation", spec["activation"], ACTIVATIONS)


class _SteppedFlowModel:
    """Shared machinery of Real NVP, Glow and MAF: ``steps`` steps, each a
    :class:`Chain`, built from per-step parameter dicts; ActNorm layers are initialised
    from the data passed through the steps before them."""

    closed_form_fit = False

    def __init__(self, spec):
        self.spec = dict(spec)

    @property
    def dim(self):
        return int(self.spec["dim"])

    def _core_init(self, k, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, k, step):  # pragma: no cover - abstract
        raise NotImplementedError

    def init_params(self, x=None, random_state=None):
        """Initial parameters: every coupling or MADE is the identity; ActNorm layers are
        initialised from ``x`` (data-dependent, as in Glow) when given, else to the
        identity; 1x1 layers start at the spec's signed permutation."""
        rng = onp.random.default_rng(random_state)
        h = None if x is None else validate_input(onp.asarray(x, dtype=float), 1, (self.dim,),
                                                  "init data")
        steps = []
        for k in range(int(self.spec["steps"])):
            step = {}
            if self.spec["actnorm"]:
                step["actnorm"] = (ActNorm.initial_params(h) if h is not None else
                                   {"loc": onp.zeros(self.dim), "log_scale": onp.zeros(self.dim)})
            if self.spec.get("mixing") == "1x1":
                step["mixing"] = {"lower": onp.zeros((self.dim, self.dim)),
                                  "upper": onp.zeros((self.dim, self.dim)),
                                  "log_s": onp.zeros(self.dim)}
            step.update(self._core_init(k, rng))
            if h is not None:
                h = self._step(k, step).forward(h, validate=False)[0]
            steps.append(step)
        return {"steps": steps}

    def build(self, params):
        """The :class:`~refconf.flows.Flow` of these parameters (autograd-traceable)."""
        steps = params["steps"]
        if len(steps) != int(self.spec["steps"]):
            raise ValueError(
                f"parameters hold {len(steps)} steps, the spec expects {self.spec['steps']}")
        return Flow(StandardNormal(self.dim),
                    Chain([self._step(k, step) for k, step in enumerate(steps)]))


class AffineFlowModel(_SteppedFlowModel):
    """Real NVP (``spec["model"] == "realnvp"``) or Glow (``"glow"``); see :func:`realnvp`
    and :func:`glow` for the spec's fields."""

    def __init__(self, spec):
        super().__init__(spec)
        s = self.spec
        check_choice("model", s.get("model"), tuple(AFFINE_MIXINGS))
        _require(s, ("dim", "steps", "hidden", "activation", "actnorm", "mixing",
                     "mixing_fixed"), s["model"])
        _check_common(s, s["model"])
        check_choice(f"{s['model']} mixing", s["mixing"], AFFINE_MIXINGS[s["model"]])

    def _swap(self, k):
        """Reverse mixing already alternates the halves; the others alternate explicitly."""
        return self.spec["mixing"] != "reverse" and k % 2 == 1

    def _core_init(self, k, rng):
        d1, d2 = split_sizes(self.dim)
        d_base, d_update = (d2, d1) if self._swap(k) else (d1, d2)
        return {"coupling": AffineCoupling.init_params(d_base, d_update, self.spec["hidden"],
                                                       random_state=rng)}

    def _step(self, k, step):
        s = self.spec
        layers = [ActNorm(**step["actnorm"])] if s["actnorm"] else []
        if s["mixing"] == "1x1":  # Glow's order: actnorm, 1x1, coupling
            fixed = s["mixing_fixed"][k]
            layers.append(Invertible1x1(fixed["perm"], step["mixing"]["lower"],
                                        step["mixing"]["upper"], step["mixing"]["log_s"],
                                        onp.asarray(fixed["sign"], dtype=float)))
        layers.append(AffineCoupling(step["coupling"]["conditioner"], step["coupling"]["scale"],
                                     activation=s["activation"], swap=self._swap(k)))
        if s["mixing"] != "1x1" and k < int(s["steps"]) - 1:
            layers.append(Reverse() if s["mixing"] == "reverse" else
                          Permutation(s["mixing_fixed"][k]["perm"]))
        # keyed like the step's parameters (the explicit pass, refconf.engines.nll_and_grad)
        keys = ["actnorm"] * bool(s["actnorm"]) + ["mixing"] * (s["mixing"] == "1x1")
        return Chain(layers, keys=keys + ["coupling", "mixing"][: len(layers) - len(keys)])


class MAFModel(_SteppedFlowModel):
    """MAF (``spec["model"] == "maf"``); see :func:`maf` for the spec's fields."""

    def __init__(self, spec):
        super().__init__(spec)
        s = self.spec
        check_choice("model", s.get("model"), ("maf",))
        _require(s, ("dim", "steps", "hidden", "activation", "actnorm", "orders"), "maf")
        _check_common(s, "maf")
        if len(s["orders"]) != int(s["steps"]):
            raise ValueError(f"maf spec: {len(s['orders'])} orders for {s['steps']} steps")

    def _core_init(self, k, rng):
        return {"made": MaskedAutoregressive.init_params(self.dim, self.spec["hidden"],
                                                         random_state=rng)}

    def _step(self, k, step):
        layers = [ActNorm(**step["actnorm"])] if self.spec["actnorm"] else []
        layers.append(MaskedAutoregressive(step["made"], self.spec["orders"][k],
                                           activation=self.spec["activation"]))
        # the MADE's gradient {"made": ...} merges into the step's (key None)
        return Chain(layers, keys=["actnorm"] * bool(self.spec["actnorm"]) + [None])


class GaussianModel:
    """Full-covariance Gaussian ``N(mu, Sigma)`` as a one-layer flow.

    ``z = M (x - mu)`` with ``M = L^{-1}`` lower triangular, ``Sigma + ridge I = L L^T``,
    written as ActNorm (shift) then :class:`~refconf.bijectors.Invertible1x1` with
    ``P = I``, ``U = 0``: ``M = L_unit diag(exp(log_s))``. ``log|det dz/dx| = sum log_s
    = -log det L``.

    ``init_params(x)`` is the maximum-likelihood fit in closed form (mean and covariance
    with ``ddof = 0``), so it needs no training (``closed_form_fit = True``); ``ridge``
    keeps the Cholesky factor finite on singular data (e.g. the paper's padding).
    """

    closed_form_fit = True

    def __init__(self, spec):
        self.spec = dict(spec)
        check_choice("model", self.spec.get("model"), ("gaussian",))
        _require(self.spec, ("dim", "ridge"), "gaussian")
        if int(self.spec["dim"]) < 1:
            raise ValueError(f"gaussian needs dim >= 1, got {self.spec['dim']}")
        if not float(self.spec["ridge"]) >= 0:
            raise ValueError(f"ridge must be >= 0, got {self.spec['ridge']}")

    @property
    def dim(self):
        return int(self.spec["dim"])

    def init_params(self, x=None, random_state=None):
        """The maximum-likelihood Gaussian of ``x`` (``N(0, I)`` without data);
        ``random_state`` is accepted for the common interface and unused."""
        D = self.dim
        if x is None:
            return {"loc": onp.zeros(D), "lower": onp.eye(D), "log_s": onp.zeros(D)}
        x = validate_input(onp.asarray(x, dtype=float), 1, (D,), "init data")
        if len(x) < 2:
            raise ValueError(f"the Gaussian fit needs at least 2 samples, got {len(x)}")
        cov = onp.atleast_2d(onp.cov(x, rowvar=False, bias=True)) + self.spec["ridge"] * onp.eye(D)
        try:
            L = onp.linalg.cholesky(cov)
        except onp.linalg.LinAlgError:
            raise ValueError("the sample covariance is singular; use a ridge > 0") from None
        M = scipy.linalg.solve_triangular(L, onp.eye(D), lower=True)
        s = onp.diag(M)
        return {"loc": x.mean(axis=0), "lower": M / s[None, :], "log_s": onp.log(s)}

    def build(self, params):
        D = self.dim
        chain = Chain([
            ActNorm(params["loc"], onp.zeros(D)),
            Invertible1x1(onp.arange(D), params["lower"], onp.zeros((D, D)), params["log_s"],
                          onp.ones(D)),
        ])
        return Flow(StandardNormal(D), chain)


def _mixing_fixed(mixing, dim, steps, rng):
    if mixing == "permutation":
        return [{"perm": rng.permutation(dim).tolist()} for _ in range(steps)]
    if mixing == "1x1":
        return [{"perm": rng.permutation(dim).tolist(),
                 "sign": rng.choice([-1.0, 1.0], size=dim).tolist()} for _ in range(steps)]
    return None


def realnvp(dim, steps=5, hidden=(64, 64), activation="relu", mixing="reverse", actnorm=True,
            random_state=0):
    """Real NVP: ``steps`` affine coupling steps with mixing between.

    Parameters
    ----------
    dim : int, >= 2
    steps : int
    hidden : tuple of int
        Conditioner MLP widths.
    activation : {"relu", "tanh"}
    mixing : {"reverse", "permutation"}
        Reverse the features between steps (which alternates the halves), or apply a
        fixed random permutation (and alternate the conditioning half explicitly).
    actnorm : bool
        ActNorm before each step (see the module docstring).
    random_state : int
        Seed of the fixed permutations.

    Returns
    -------
    AffineFlowModel
    """
    rng = onp.random.default_rng(random_state)
    return AffineFlowModel({
        "model": "realnvp", "dim": int(dim), "steps": int(steps),
        "hidden": [int(h) for h in hidden], "activation": activation, "actnorm": bool(actnorm),
        "mixing": mixing, "mixing_fixed": _mixing_fixed(mixing, int(dim), int(steps), rng),
    })


def glow(dim, steps=5, hidden=(64, 64), activation="relu", random_state=0):
    """Glow for vectors: steps of ActNorm, invertible 1x1 (LU-parameterised, starting at a
    random signed permutation fixed by ``random_state``) and an affine coupling whose
    conditioning half alternates. Returns an :class:`AffineFlowModel`."""
    rng = onp.random.default_rng(random_state)
    return AffineFlowModel({
        "model": "glow", "dim": int(dim), "steps": int(steps),
        "hidden": [int(h) for h in hidden], "activation": activation, "actnorm": True,
        "mixing": "1x1", "mixing_fixed": _mixing_fixed("1x1", int(dim), int(steps), rng),
    })


def maf(dim, steps=5, hidden=(64, 64), activation="relu", actnorm=True, order="reverse",
        random_state=0):
    """MAF: ``steps`` MADE layers (:class:`MaskedAutoregressive`).

    ``order="reverse"`` alternates the natural and the reversed autoregressive order, as
    in MAF; ``"random"`` draws a fixed random order per step from ``random_state``.
    Returns a :class:`MAFModel`.
    """
    check_choice("order", order, MAF_ORDERS)
    rng = onp.random.default_rng(random_state)
    natural = list(range(int(dim)))
    if order == "reverse":
        orders = [natural if k % 2 == 0 else natural[::-1] for k in range(int(steps))]
    else:
        orders = [rng.permutation(int(dim)).tolist() for _ in range(int(steps))]
    return MAFModel({
        "model": "maf", "dim": int(dim), "steps": int(steps), "hidden": [int(h) for h in hidden],
        "activation": activation, "actnorm": bool(actnorm), "orders": orders,
    })


def gaussian(dim, ridge=1e-9):
    """The full-covariance Gaussian baseline (:class:`GaussianModel`)."""
    return GaussianModel({"model": "gaussian", "dim": int(dim), "ridge": float(ridge)})


_BUILDERS = {"conf": conf, "realnvp": realnvp, "glow": glow, "maf": maf, "gaussian": gaussian}
_FROM_SPEC = {"conf": FlowModel, "realnvp": AffineFlowModel, "glow": AffineFlowModel,
              "maf": MAFModel, "gaussian": GaussianModel}


def build_model(name, dim, **kwargs):
    """The model ``name`` (one of :data:`MODEL_NAMES`) for data of dimension ``dim``.

    ``kwargs`` go to the builder: :func:`refconf.flows.conf`, :func:`realnvp`,
    :func:`glow`, :func:`maf` or :func:`gaussian`. An argument the builder does not take
    is a ``ValueError`` listing the ones it does.

    Examples
    --------
    >>> model = build_model("realnvp", 5, steps=2, hidden=(8,))
    >>> model.spec["model"], model.dim
    ('realnvp', 5)
    >>> model_from_spec(model.spec).spec == model.spec
    True
    """
    check_choice("model name", name, MODEL_NAMES)
    builder = _BUILDERS[name]
    accepted = [p for p in inspect.signature(builder).parameters if p != "dim"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"{name} takes no argument(s) {unknown}; it accepts {accepted}")
    return builder(dim, **kwargs)


def model_from_spec(spec):
    """Rebuild any model of :data:`MODEL_NAMES` from its ``spec`` (``spec["model"]``)."""
    if not isinstance(spec, dict):
        raise ValueError(f"a model spec must be a dict, got {type(spec).__name__}")
    name = spec.get("model")
    if name not in _FROM_SPEC:
        raise ValueError(f"unknown model {name!r} in spec; expected one of {MODEL_NAMES}")
    try:
        return _FROM_SPEC[name](spec)
    except (KeyError, TypeError) as err:
        raise ValueError(f"malformed {name} spec: {err!r}") from None


def load_flow_model(path):
    """Read a model file written by :func:`refconf.params.save_model` with any model's
    spec: returns ``(model, params, metadata)``."""
    params, spec, metadata = load_model(path)
    return model_from_spec(spec), params, metadata
