"""The multi-scale 2-D CONF image model: :func:`conf_image` and :class:`ImageFlowModel`.

An image of shape ``(C, H, W)``, flattened channel-major to a vector of length
``D = C H W``, goes through ``levels`` levels (:class:`~refconf.bijectors.multiscale.MultiScaleLevel`).
Each level squeezes (2 x 2 space-to-depth), runs ``steps_per_level`` steps
(ActNorm, invertible 1x1 over channels, 2-D CONF coupling), and factors out half of its
channels to the standard normal base density; the last level keeps all of them
(``docs/theory/image-flows.md``). The model is a vector-to-vector flow, so training,
evaluation, saving and sampling are those of the tabular models::

    model = conf_image((1, 8, 8), levels=2, steps_per_level=2)
    params = model.init_params(x_train, random_state=0)     # x_train: (n, 64)
    flow = model.build(params)
    images = flow.sample(16, random_state=1).reshape(16, 1, 8, 8)
"""

import numpy as onp

from .bijectors import ActNorm, Chain, Invertible1x1, Reverse
from .bijectors.base import validate_input
from .bijectors.coupling import KERNEL_KINDS, SPECTRUM_PARAMETERISATIONS
from .bijectors.coupling2d import AffineCoupling2D, ConvCoupling2D, channel_split
from .bijectors.multiscale import MultiScaleLevel
from .bijectors.squeeze import Squeeze
from .checks import check_at_least_one, check_choice
from .conditioners import ACTIVATIONS, conv_init
from .engines import get_engine
from .flows import Flow, StandardNormal

__all__ = ["ImageFlowModel", "conf_image", "level_shapes"]

#: Coupling steps: the 2-D CONF step, or the affine coupling of Real NVP and Glow.
IMAGE_COUPLINGS = ("conf", "affine")
#: Channel mixing between steps: Glow's invertible 1x1 (LU), or Real NVP's fixed reversal.
IMAGE_MIXINGS = ("1x1", "reverse")

#: Engines an image model builds with: all run the readable layers on NumPy arrays.
IMAGE_ENGINES = ("numpy", "numba")


def level_shapes(shape, levels, squeeze=True):
    """Per level ``(offset, input shape, output shape, factored-out channels)``.

    Each level squeezes ``(C, H, W) -> (4C, H/2, W/2)`` (when ``squeeze``); all but the
    last factor out ``floor(C'/2)`` of their ``C'`` output channels. Raises ``ValueError``
    where a side is odd before a squeeze or a level is left with one channel.

    Examples
    --------
    >>> level_shapes((1, 8, 8), 2)
    [(0, (1, 8, 8), (4, 4, 4), 2), (32, (2, 4, 4), (8, 2, 2), 0)]
    """
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    C, H, W = (int(n) for n in shape)
    offset, out = 0, []
    for level in range(int(levels)):
        if squeeze:
            if H % 2 or W % 2:
                raise ValueError(f"conf_image: level {level} gets a {H} x {W} image; a squeeze "
                                 "needs even sides (fewer levels, or squeeze=False)")
            out_shape = (4 * C, H // 2, W // 2)
        else:
            out_shape = (C, H, W)
        if out_shape[0] < 2:
            raise ValueError(f"conf_image: level {level} has {out_shape[0]} channel; a channel "
                             "coupling needs 2 (squeeze=True, or fewer levels)")
        factor = out_shape[0] // 2 if level < levels - 1 else 0
        out.append((offset, (C, H, W), out_shape, factor))
        offset += factor * out_shape[1] * out_shape[2]
        C, H, W = out_shape[0] - factor, out_shape[1], out_shape[2]
    return out


class ImageFlowModel:
    """A multi-scale 2-D CONF model's architecture (``spec["model"] == "conf_image"``);
    see :func:`conf_image` for the spec's fields. Same interface as
    :class:`refconf.flows.FlowModel`: ``dim``, ``init_params``, ``build``; its parameters
    are ``{"steps": [level_0, level_1, ...]}``, each level a list of step dicts."""

    def __init__(self, spec):
        # specs written before the coupling and mixing choices existed: 2-D CONF with 1x1
        self.spec = {"coupling": "conf", "mixing": "1x1", **spec}
        s = self.spec
        if s.get("model") != "conf_image":
            raise ValueError(f"unknown model {s.get('model')!r}; expected 'conf_image'")
        check_choice("kind", s["kind"], KERNEL_KINDS)
        check_choice("spectrum", s["spectrum"], SPECTRUM_PARAMETERISATIONS)
        check_choice("activation", s["activation"], ACTIVATIONS)
        check_choice("coupling", s["coupling"], IMAGE_COUPLINGS)
        check_choice("mixing", s["mixing"], IMAGE_MIXINGS)
        check_at_least_one(s, ("steps_per_level", "m"))
        self.levels = level_shapes(s["shape"], s["levels"], s["squeeze"])

    @property
    def dim(self):
        return int(onp.prod(self.spec["shape"]))

    def init_params(self, x=None, random_state=None):
        """Identity coupling steps (zero conditioner output, ``a = a'``), 1x1 layers at
        the spec's signed permutations, ActNorm from the data ``x`` (rows of length
        ``D``; data-dependent, as in Glow) or the identity."""
        s = self.spec
        rng = onp.random.default_rng(random_state)
        h = None if x is None else validate_input(onp.asarray(x, dtype=float), 1, (self.dim,),
                                                  "init data")
        levels = []
        for index, (offset, shape, out_shape, factor) in enumerate(self.levels):
            image = None
            if h is not None:
                image = h[:, offset:].reshape((-1,) + shape)
                image = Squeeze().forward(image)[0] if s["squeeze"] else image
            steps = []
            for k in range(int(s["steps_per_level"])):
                step = self._initial_step(out_shape, k, image, rng)
                if image is not None:
                    image = self._step(index, k, step).forward(image)[0]
                steps.append(step)
            levels.append(steps)
            if h is not None:
                h = self._level(index, steps).forward(h)[0]
        return {"steps": levels}

    def _swap(self, k):
        """Whether step ``k`` conditions on the second half of the channels: every other
        step with 1x1 mixing; never with the channel reversal, which already alternates
        the halves (a swap as well would update the same channels in every step)."""
        return self.spec["mixing"] == "1x1" and k % 2 == 1

    def _initial_step(self, shape, k, image, rng):
        s = self.spec
        C = shape[0]
        base, update = channel_split(C, swap=self._swap(k))
        m = int(s["m"])
        step = {}
        if s["actnorm"]:
            step["actnorm"] = (ActNorm.initial_params(image, event_ndim=3) if image is not None
                               else {"loc": onp.zeros((C, 1, 1)), "log_scale": onp.zeros((C, 1, 1))})
        if s["mixing"] == "1x1":
            step["mixing"] = {"lower": onp.zeros((C, C)), "upper": onp.zeros((C, C)),
                              "log_s": onp.zeros(C)}
        c1, c2 = base.stop - base.start, update.stop - update.start
        if s["coupling"] == "affine":
            step["coupling"] = {"conditioner": conv_init(c1, s["hidden"], 2 * c2, s["kernel"],
                                                         random_state=rng)}
            return step
        step["coupling"] = {
            "conditioner": conv_init(c1, s["hidden"], (2 * m + 1) * c2, s["kernel"],
                                     random_state=rng),
            "log_alpha": onp.full(m, onp.log(s["alpha_init"])),
            "log_alpha_prime": onp.full(m, onp.log(s["alpha_init"])),
        }
        return step

    def _step(self, level, k, step):
        s = self.spec
        shape = self.levels[level][2]
        layers, keys = [], []
        if s["actnorm"]:
            layers.append(ActNorm(**step["actnorm"], event_ndim=3))
            keys.append("actnorm")
        if s["mixing"] == "1x1":
            fixed = s["mixing_fixed"][level][k]
            layers.append(Invertible1x1(fixed["perm"], **step["mixing"],
                                        sign=onp.asarray(fixed["sign"], dtype=float),
                                        event_ndim=3))
        else:
            layers.append(Reverse(event_ndim=3))
        keys.append("mixing")
        coupling = step["coupling"]
        if s["coupling"] == "affine":
            layers.append(AffineCoupling2D(coupling["conditioner"], shape, s["activation"],
                                           swap=self._swap(k)))
            keys.append("coupling")
            return Chain(layers, keys=keys)
        layers.append(ConvCoupling2D(coupling["conditioner"], coupling["log_alpha"],
                                     coupling["log_alpha_prime"], shape, kind=s["kind"],
                                     spectrum=s["spectrum"], activation=s["activation"],
                                     swap=self._swap(k)))
        keys.append("coupling")
        return Chain(layers, keys=keys)

    def _level(self, index, steps):
        offset, shape, out_shape, factor = self.levels[index]
        members = [Squeeze()] if self.spec["squeeze"] else []
        members += [self._step(index, k, step) for k, step in enumerate(steps)]
        return _Level(self.dim, offset, shape, Chain(members), out_shape, factor,
                      squeezed=bool(self.spec["squeeze"]))

    def build(self, params, engine="numpy"):
        """The :class:`~refconf.flows.Flow` of these parameters (autograd-traceable).

        ``engine`` is ``"numpy"`` or ``"numba"``: both run the readable layers on NumPy
        arrays (the 2-D coupling has no compiled kernel), and both give the explicit
        reverse pass (:func:`refconf.engines.nll_and_grad`). ``"cupy"`` is not supported.
        """
        name = get_engine(engine).name
        if name not in IMAGE_ENGINES:
            raise ValueError(f"conf_image runs with engine in {IMAGE_ENGINES}, got {name!r}")
        levels = params["steps"]
        if len(levels) != len(self.levels):
            raise ValueError(f"parameters hold {len(levels)} levels, the spec expects "
                             f"{len(self.levels)}")
        return Flow(StandardNormal(self.dim),
                    Chain([self._level(i, steps) for i, steps in enumerate(levels)]))


class _Level(MultiScaleLevel):
    """A level whose chain may start with a squeeze: its gradient (None) is dropped, so
    the level's gradient is the list of its steps', like its parameters."""

    def __init__(self, *args, squeezed=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.squeezed = squeezed

    def backward(self, saved, g_y, g_log_det):
        g_x, grads = super().backward(saved, g_y, g_log_det)
        return g_x, grads[1:] if self.squeezed else grads


def conf_image(shape, levels=2, steps_per_level=2, m=2, hidden=(16,), kernel=3,
               kind="symmetric", spectrum="raw", activation="tanh", actnorm=True,
               squeeze=True, alpha_init=1.0, coupling="conf", mixing="1x1", random_state=0):
    """The multi-scale 2-D CONF model of images of ``shape = (C, H, W)``.

    Parameters
    ----------
    shape : tuple (C, H, W)
        Data rows are these images flattened channel-major (length ``C H W``).
    levels : int
        Scales; every level but the last factors out half of its channels.
    steps_per_level : int
        Steps per level: ActNorm, invertible 1x1 over channels (LU, starting at a random
        signed permutation), 2-D CONF coupling (:class:`~refconf.bijectors.coupling2d.ConvCoupling2D`),
        the conditioning half alternating.
    m : int
        Combined layers (eq. 4) per coupling step.
    hidden : tuple of int
        Hidden channels of the convolutional conditioner.
    kernel : int, odd
        The conditioner's convolution size.
    kind : {"symmetric", "circular"}
    spectrum : {"raw", "exp"}
    activation : {"relu", "tanh"}
    actnorm : bool
    squeeze : bool
        Squeeze at the start of each level (sides must then be divisible by ``2^levels``).
    alpha_init : float
    coupling : {"conf", "affine"}
        The 2-D CONF step, or the affine coupling of Real NVP and Glow
        (:class:`~refconf.bijectors.coupling2d.AffineCoupling2D`; ``m``, ``kind``,
        ``spectrum`` and ``alpha_init`` then do not apply): ``coupling="affine"`` with
        ``mixing="1x1"`` is a Glow-style model, with ``mixing="reverse"`` a Real NVP-style
        one (channel-wise masks only: no checkerboard masks).
    mixing : {"1x1", "reverse"}
        Between steps: Glow's invertible 1x1 over channels, or a fixed channel reversal.
    random_state : int
        Seed of the fixed permutations and signs of the 1x1 layers.

    Returns
    -------
    ImageFlowModel

    Examples
    --------
    >>> import numpy as np
    >>> model = conf_image((1, 4, 4), levels=2, steps_per_level=1, hidden=(4,))
    >>> x = np.random.default_rng(0).normal(size=(8, 16))
    >>> flow = model.build(model.init_params(random_state=0))
    >>> z, log_det = flow.forward(x)
    >>> z.shape, bool(np.allclose(log_det, 0.0))          # couplings start at the identity
    ((8, 16), True)
    >>> bool(np.allclose(flow.chain.inverse(z)[0], x))
    True
    """
    if len(shape) != 3 or min(int(n) for n in shape) < 1:
        raise ValueError(f"conf_image: shape must be (C, H, W) with positive sides, got {shape!r}")
    rng = onp.random.default_rng(random_state)
    geometry = level_shapes(shape, levels, squeeze)
    mixing_fixed = [[{"perm": rng.permutation(out[0]).tolist(),
                      "sign": rng.choice([-1.0, 1.0], size=out[0]).tolist()}
                     for _ in range(int(steps_per_level))] for _, _, out, _ in geometry]
    return ImageFlowModel({
        "model": "conf_image", "shape": [int(n) for n in shape], "levels": int(levels),
        "steps_per_level": int(steps_per_level), "m": int(m),
        "hidden": [int(h) for h in hidden], "kernel": int(kernel), "kind": kind,
        "spectrum": spectrum, "activation": activation, "actnorm": bool(actnorm),
        "squeeze": bool(squeeze), "alpha_init": float(alpha_init), "coupling": coupling,
        "mixing": mixing, "mixing_fixed": mixing_fixed,
    })
