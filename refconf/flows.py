"""Flows (a base density and a chain of bijectors) and the CONF model builder.

A model is described by a JSON-serialisable ``spec`` (its architecture) and a parameter
pytree (its weights). :class:`FlowModel` turns the two into a :class:`Flow` inside any
function, so the same code serves training (autograd traces ``build``), evaluation and
saving::

    model = conf(dim=2, steps=4, m=2, hidden=(64, 64))
    params = model.init_params(x_train, random_state=0)
    flow = model.build(params)
    log_p = flow.log_prob(x)          # log N(z; 0, I) + log|det dz/dx|
    x_new = flow.sample(100, random_state=1)

A flow computes in the array namespace of its parameters (:mod:`refconf.backend`): NumPy
under autograd, or CuPy on a GPU (``model.build(params, engine="cupy")``, or any flow
moved with ``flow.to("cupy")``).
"""

import functools
import math
import warnings

import numpy as onp
from autograd.tracer import getval

from . import backend
from .bijectors import ActNorm, Chain, Invertible1x1, Permutation, Reverse
from .bijectors.base import validate_input
from .bijectors.coupling import KERNEL_KINDS, SPECTRUM_PARAMETERISATIONS, ConvCoupling, split_sizes
from .checks import check_at_least_one, check_choice
from .conditioners import ACTIVATIONS, mlp_init
from .engines import get_engine
from .parallel import block_threads, map_row_blocks

__all__ = ["MIXINGS", "Flow", "FlowModel", "StandardNormal", "conf"]

MIXINGS = ("reverse", "permutation", "1x1")


class StandardNormal:
    """Standard normal base density ``N(0, I)`` over vectors of length ``dim``."""

    def __init__(self, dim):
        self.dim = dim

    def log_prob(self, z):
        """``log N(z; 0, I) = -|z|^2 / 2 - D log(2 pi) / 2``, one value per row."""
        xp = backend.namespace(z)
        # a float64 scalar: float32 z gives float64 log-densities in every namespace
        log_norm = 0.5 * self.dim * onp.log(2 * onp.pi)
        if not backend.is_autograd(xp):
            log_norm = backend.asarray(xp, log_norm)
        return -0.5 * xp.sum(z**2, axis=-1) - log_norm

    def sample(self, n, random_state=None):
        """``n`` draws as a NumPy array (NumPy's generator, whatever device the flow
        computes on, so that a seed gives the same samples everywhere)."""
        return onp.random.default_rng(random_state).standard_normal((n, self.dim))


#: Samples per thread from which :meth:`Flow.sample` inverts in parallel row blocks.
SAMPLE_ROWS_PER_THREAD = 2048


class Flow:
    """A normalizing flow: ``x = chain^{-1}(z)``, ``z ~ base``.

    Parameters
    ----------
    base : object with ``log_prob(z)`` and ``sample(n, random_state)``
    chain : Bijector, data to latent
    """

    def __init__(self, base, chain):
        self.base, self.chain = base, chain

    @functools.cached_property
    def namespace(self):
        """The array namespace of the chain's parameters (``autograd.numpy`` for NumPy
        ones, e.g. ``array_api_compat.cupy`` for CuPy ones)."""
        return self.chain.namespace()

    @functools.cached_property
    def dtype(self):
        """The real floating dtype of the chain's parameters (their promotion; float64
        when there are none): :meth:`sample` draws in it, so float32 parameters sample in
        float32."""
        xp = self.namespace
        leaves = [getval(a) for a in backend.parameter_leaves(self.chain.parameters())]
        if backend.is_autograd(xp):
            real = [a.dtype for a in leaves if a.dtype.kind == "f"]
            return onp.result_type(*real) if real else onp.dtype(onp.float64)
        real = [a.dtype for a in leaves if xp.isdtype(a.dtype, "real floating")]
        return xp.result_type(*real) if real else xp.float64

    def to(self, target):
        """The same flow with its parameters moved to ``target`` (``"numpy"``, ``"cupy"``
        or an array namespace module; :meth:`refconf.bijectors.base.Bijector.to`)."""
        return Flow(self.base, self.chain.to(target))

    def _in_namespace(self, x):
        """``x`` moved to the flow's namespace when it lives elsewhere."""
        xp = self.namespace
        value = getval(x)
        if not hasattr(value, "shape") or backend.namespace(value) is xp:
            return x
        return backend.to_device(value, "numpy" if backend.is_autograd(xp) else xp)

    def forward(self, x):
        """``(z, log|det dz/dx|)``; ``x`` is moved to the flow's namespace first."""
        x = validate_input(self._in_namespace(x), 1, (self.base.dim,), "Flow input")
        return self.chain.forward(x, validate=False)

    def log_prob(self, x):
        """``log p(x) = log base(z) + log|det dz/dx|`` per sample (``docs/theory/change-of-variables.md``).

        Computed in the flow's namespace (NumPy or device input; the result lives where
        the flow's parameters do). A sample whose forward pass overflows (an expanding
        S-Log gate far in the tails) has a density below the floating-point range: it
        gets ``-inf`` and a ``RuntimeWarning``, never NaN.
        """
        with onp.errstate(invalid="ignore", over="ignore"):  # reported below, once
            z, log_det = self.forward(x)
            log_p = self.base.log_prob(z) + log_det
        xp = backend.namespace(log_p)
        finite = xp.isfinite(getval(log_p))
        if not bool(xp.all(finite)):
            warnings.warn(
                f"{int(onp.sum(~backend.host_value(finite)))} sample(s) overflowed in the forward pass; their "
                "log-density is reported as -inf", RuntimeWarning, stacklevel=2)
            if backend.is_autograd(xp):
                log_p = xp.where(finite, log_p, -onp.inf)
            else:
                log_p = xp.where(finite, log_p, xp.full_like(log_p, -math.inf))
        return log_p

    def sample(self, n, random_state=None, threads=None):
        """``n`` samples by an inverse pass of base samples.

        The base samples are drawn on the CPU in float64 (the same seed gives the same
        samples on every device and in every precision), moved to the flow's namespace
        and rounded to its :attr:`dtype` for the inverse pass.

        Parameters
        ----------
        n : int
        random_state : int, numpy.random.Generator or None
            Seed of the base samples.
        threads : int, optional
            On NumPy arrays the samples are split into this many row blocks, inverted in
            parallel threads (:func:`refconf.parallel.map_row_blocks`). Default:
            ``numba.get_num_threads()`` (``NUMBA_NUM_THREADS``), at most one thread per
            :data:`SAMPLE_ROWS_PER_THREAD` samples; never more threads than samples.
            Rows are independent, so the samples are those of one pass, up to the
            rounding of BLAS products.
        """
        if int(n) != n or n < 1:
            raise ValueError(f"the number of samples must be a positive integer, got {n!r}")
        return self.invert_latents(self.base.sample(int(n), random_state), threads)

    def invert_latents(self, z, threads=None):
        """``x = f^{-1}(z)`` for latents ``z`` of shape ``(n, ...)``: the inverse pass of
        :meth:`sample`, for latents drawn elsewhere.

        ``z`` is moved to the flow's namespace and rounded to its :attr:`dtype`;
        ``threads`` is as in :meth:`sample`.
        """
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        z = backend.asarray(self.namespace, self._in_namespace(z), dtype=self.dtype)
        n = int(z.shape[0])
        if not backend.is_autograd(self.namespace):
            return self.chain.inverse(z, validate=False)[0]
        if threads is None:
            threads = block_threads(n, SAMPLE_ROWS_PER_THREAD)
        threads = min(int(threads), n)
        if threads == 1:
            return self.chain.inverse(z, validate=False)[0]
        return onp.concatenate(map_row_blocks(
            lambda rows: self.chain.inverse(rows, validate=False)[0], z, threads))


class FlowModel:
    """A CONF model's architecture: builds parameters and flows from a ``spec``.

    The spec is a plain dict (stored in model files as JSON); see :func:`conf` for its
    fields. Fixed architectural choices (permutations, the 1x1 layers' permutation and
    signs) live in the spec; everything learned lives in the parameter pytree.
    """

    def __init__(self, spec):
        self.spec = dict(spec)
        if self.spec.get("model") != "conf":
            raise ValueError(f"unknown model {self.spec.get('model')!r}; expected 'conf'")
        s = self.spec
        if int(s["dim"]) < 2:
            raise ValueError(f"CONF needs data of dimension >= 2, got dim={s['dim']}")
        check_choice("kind", s["kind"], KERNEL_KINDS)
        check_choice("mixing", s["mixing"], MIXINGS)
        check_choice("spectrum", s["spectrum"], SPECTRUM_PARAMETERISATIONS)
        check_choice("activation", s["activation"], ACTIVATIONS)
        check_at_least_one(s, ("steps", "m"))

    @property
    def dim(self):
        return int(self.spec["dim"])

    def _swap(self, k):
        """Reverse mixing already alternates the halves; the other mixings alternate the
        conditioning half explicitly."""
        return self.spec["mixing"] != "reverse" and k % 2 == 1

    def init_params(self, x=None, random_state=None):
        """Initial parameters: every coupling step is the identity; ActNorm layers are
        initialised from the data ``x`` (data-dependent, as in Glow) when given, else to
        the identity; 1x1 layers to the spec's signed permutation (orthogonal)."""
        s = self.spec
        rng = onp.random.default_rng(random_state)
        d1, d2 = split_sizes(self.dim)
        h = None if x is None else validate_input(onp.asarray(x), 1, (self.dim,), "init data")
        steps = []
        for k in range(int(s["steps"])):
            step = {}
            if s["actnorm"]:
                if h is None:
                    step["actnorm"] = {"loc": onp.zeros(self.dim), "log_scale": onp.zeros(self.dim)}
                else:
                    step["actnorm"] = ActNorm.initial_params(h)
            d_base = d2 if self._swap(k) else d1
            d_update = self.dim - d_base
            step["coupling"] = {
                "conditioner": mlp_init(d_base, s["hidden"], (2 * s["m"] + 1) * d_update,
                                        random_state=rng),
                "log_alpha": onp.full(s["m"], onp.log(s["alpha_init"])),
                "log_alpha_prime": onp.full(s["m"], onp.log(s["alpha_init"])),
            }
            if s["mixing"] == "1x1":
                # M = P diag(sign) at initialisation: an orthogonal signed permutation
                step["mixing"] = {"lower": onp.zeros((self.dim, self.dim)),
                                  "upper": onp.zeros((self.dim, self.dim)),
                                  "log_s": onp.zeros(self.dim)}
            if h is not None:
                h = self._step(k, step).forward(h)[0]
            steps.append(step)
        return {"steps": steps}

    def _step(self, k, step, engine="numpy"):
        s = self.spec
        layers, keys = [], []
        if s["actnorm"]:
            layers.append(ActNorm(**step["actnorm"]))
            keys.append("actnorm")
        layers.append(ConvCoupling(
            step["coupling"]["conditioner"], step["coupling"]["log_alpha"],
            step["coupling"]["log_alpha_prime"], kind=s["kind"], spectrum=s["spectrum"],
            activation=s["activation"], swap=self._swap(k), engine=engine))
        keys.append("coupling")
        if k < int(s["steps"]) - 1 or s["mixing"] == "1x1":
            layers.append(self._mixing(k, step))
            keys.append("mixing")
        # keyed like the step's parameters, so the chain's explicit gradient has their
        # structure (refconf.engines.nll_and_grad)
        return Chain(layers, keys=keys)

    @functools.cached_property
    def _fixed_mixings(self):
        """Per step, what of its mixing the spec fixes, built once: the parameter-free
        bijector (reverse, permutation), or the 1x1 layer's permutation and signs as
        arrays."""
        s = self.spec
        if s["mixing"] == "reverse":
            return [Reverse()] * int(s["steps"])
        if s["mixing"] == "permutation":
            return [Permutation(fixed["perm"]) for fixed in s["mixing_fixed"]]
        return [(onp.asarray(fixed["perm"]), onp.asarray(fixed["sign"], dtype=float))
                for fixed in s["mixing_fixed"]]

    def _mixing(self, k, step):
        fixed = self._fixed_mixings[k]
        if self.spec["mixing"] != "1x1":
            return fixed
        return Invertible1x1(fixed[0], step["mixing"]["lower"], step["mixing"]["upper"],
                             step["mixing"]["log_s"], fixed[1])

    def build(self, params, engine="numpy"):
        """The :class:`Flow` of these parameters (callable inside autograd-traced code).

        ``engine`` (:mod:`refconf.engines`) chooses the implementation that runs; it is a
        runtime choice, not part of the spec. ``"cupy"`` moves the parameters to the GPU
        (:func:`refconf.backend.to_device`) and runs the readable functions there.
        ``"numpy"`` runs the readable functions on the parameters as they are: NumPy, or
        arrays of any array-API library. ``"numba"`` needs NumPy parameters.
        """
        steps = params["steps"]
        if len(steps) != int(self.spec["steps"]):
            raise ValueError(
                f"parameters hold {len(steps)} steps, the spec expects {self.spec['steps']}")
        engine = get_engine(engine)
        if engine.name == "cupy":
            params = backend.to_device(params, "cupy")
            steps = params["steps"]
        elif engine.name == "numba" and not backend.is_autograd(backend.tree_namespace(params)):
            raise ValueError(
                "engine='numba' runs on NumPy arrays only, but the parameters are device "
                "arrays; use engine='cupy' or 'numpy', or move them with "
                "refconf.backend.to_numpy(params)")
        return Flow(StandardNormal(self.dim),
                    Chain([self._step(k, st, engine) for k, st in enumerate(steps)]))


def conf(dim, steps=4, m=2, hidden=(64, 64), kind="symmetric", mixing="reverse",
         actnorm=True, spectrum="raw", activation="tanh", alpha_init=1.0,
         random_state=0):
    """The CONF model of the paper: ``steps`` mixed CONF steps (eq. 5) with mixing between.

    Parameters
    ----------
    dim : int, >= 2
        Data dimension D; the split is ``d1 = floor(D/2)``, ``d2 = ceil(D/2)`` (no padding).
    steps : int
        Number of CONF steps.
    m : int
        Combined layers (eq. 4) per step.
    hidden : tuple of int
        Conditioner MLP widths.
    kind : {"symmetric", "circular"}
        Symmetric (DCT-I) or circular (DFT) data-adaptive convolutions.
    mixing : {"reverse", "permutation", "1x1"}
        Between steps: reverse the features (which alternates the halves), a fixed random
        permutation, or a Glow invertible 1x1 (LU) layer starting at a random signed
        permutation; the last two also alternate
        which half conditions the other.
    actnorm : bool
        An ActNorm layer (data-dependent initialisation) before each step.
    spectrum : {"raw", "exp"}
        Eigenvalue parameterisation (see :class:`~refconf.bijectors.coupling.ConvCoupling`).
        The default is the paper's ``"raw"``: measured against ``"exp"``, it tied on the
        digits (-74.53 vs -74.55 nats, within the 2-std spread) and won on two moons
        (1.12 vs 1.32 nats).
    activation : {"relu", "tanh"}
        Conditioner nonlinearity. The default ``"tanh"`` keeps the conditioner outputs
        bounded for outlying inputs; with ReLU the S-Log gates (power laws of exponent
        ``s a'/a`` in the tails) blew up on held-out data in half of the measured runs.
        Both defaults come from ``validation/spectrum_parameterisation.py``.
    alpha_init : float
        Initial S-Log scales ``a = a'``.
    random_state : int
        Seed of the fixed (non-learned) architectural choices: permutations and signs.

    Returns
    -------
    FlowModel
    """
    rng = onp.random.default_rng(random_state)
    mixing_fixed = None
    if mixing == "permutation":
        mixing_fixed = [{"perm": rng.permutation(dim).tolist()} for _ in range(steps)]
    elif mixing == "1x1":
        mixing_fixed = [{"perm": rng.permutation(dim).tolist(),
                         "sign": rng.choice([-1.0, 1.0], size=dim).tolist()} for _ in range(steps)]
    return FlowModel({
        "model": "conf", "dim": int(dim), "steps": int(steps), "m": int(m),
        "hidden": [int(h) for h in hidden], "kind": kind, "mixing": mixing,
        "actnorm": bool(actnorm), "spectrum": spectrum, "activation": activation,
        "alpha_init": float(alpha_init), "mixing_fixed": mixing_fixed,
    })
