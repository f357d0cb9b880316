"""Compute engines: the same CONF maps, selected by name, never a silent fallback.

``"numpy"``
    The readable tier (:func:`refconf.conditioners.mlp`,
    :func:`refconf.bijectors.coupling.conf_step`): NumPy/SciPy under autograd, the oracle
    every other engine is tested against.
``"numba"``
    The conditioner MLP and the CONF step each as one autograd primitive with an analytic
    VJP (:mod:`refconf.engines.numba_engine`): BLAS products, NumPy's vectorised
    transcendental functions and compiled elementwise backward kernels
    (:mod:`refconf.engines._numba`), and a whole-model explicit reverse pass for training
    (:mod:`refconf.engines.model_pass`, no autograd). The same training loop and API;
    first derivatives only.
``"cupy"``
    The readable functions on CuPy arrays on a CUDA GPU (:mod:`refconf.backend`: every
    spectral function and bijector runs in its input's array namespace, the DCT-I through
    the rfft of the whole-sample extension). autograd cannot trace CuPy arrays, so training
    uses the whole-model explicit pass on the device (:mod:`refconf.engines.model_pass`
    with :mod:`refconf.engines.array_kernels`). Never chosen by ``"auto"``.

Examples
--------
>>> from refconf.engines import get_engine
>>> get_engine("numpy").name
'numpy'
>>> get_engine("fortran")
Traceback (most recent call last):
...
ValueError: unknown engine 'fortran'; expected one of ('numpy', 'numba', 'cupy')
"""

import dataclasses
import functools
import importlib.util
from collections.abc import Callable

__all__ = ["ENGINES", "Engine", "EngineUnavailableError", "available_engines",
           "default_engine", "get_engine", "nll_and_grad_on", "resolve_engine"]

ENGINES = ("numpy", "numba", "cupy")


class EngineUnavailableError(ImportError, ValueError):
    """An engine whose package is not installed (a ``ValueError`` too, so command-line
    and estimator callers report it like any other bad argument)."""


@dataclasses.dataclass(frozen=True)
class Engine:
    """The functions a coupling step dispatches to, with the readable tier's signatures.

    Attributes
    ----------
    name : str
    mlp : callable
        ``mlp(params, x, activation) -> outputs`` (:func:`refconf.conditioners.mlp`).
    conf_step, conf_step_inverse : callable
        As :func:`refconf.bijectors.coupling.conf_step` and ``conf_step_inverse``.
    nll_and_grad : callable or None
        ``nll_and_grad(model, params, x) -> (mean NLL, gradient pytree)`` of a whole CONF
        model in one explicit pass (:func:`refconf.engines.model_pass.nll_and_grad`), for
        :func:`refconf.train.fit`'s ``gradient``; None where autograd computes it.
    """

    name: str
    mlp: Callable
    conf_step: Callable
    conf_step_inverse: Callable
    nll_and_grad: Callable | None = None


def available_engines():
    """Names of the engines that run here (package installed; for ``"cupy"`` also a CUDA
    device), in :data:`ENGINES` order."""
    return tuple(name for name in ENGINES if _available(name))


def _available(name):
    if name == "numpy":
        return True
    if name == "numba":
        return _has_numba()
    try:
        get_engine(name)
    except EngineUnavailableError:
        return False
    return True


@functools.cache
def _has_numba():
    return importlib.util.find_spec("numba") is not None


def default_engine():
    """``"numba"`` when numba is installed, else ``"numpy"`` (``"cupy"`` only by name: a
    GPU is never chosen silently)."""
    return "numba" if _has_numba() else "numpy"


def resolve_engine(name):
    """The engine name ``name`` stands for: ``"auto"`` (or None) is :func:`default_engine`;
    other names are checked against :data:`ENGINES`."""
    if name is None or name == "auto":
        return default_engine()
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")
    return name


def nll_and_grad_on(target, model, params, x):
    """:func:`refconf.engines.model_pass.nll_and_grad` on a device, for
    :func:`refconf.train.fit`, whose parameter vector and Adam state live on the host: the
    parameters and the batch are moved to ``target`` (``"cupy"`` or an array namespace,
    :func:`refconf.backend.to_device`), the pass runs there, and the loss and the gradient
    come back as a float and NumPy arrays.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> import numpy as np
    >>> from refconf.flows import conf
    >>> from refconf.engines.model_pass import nll_and_grad
    >>> x = np.random.default_rng(0).normal(size=(16, 4))
    >>> model = conf(4, steps=1, hidden=(8,))
    >>> params = model.init_params(x, random_state=0)
    >>> nll, grads = nll_and_grad_on(xps, model, params, x)
    >>> bool(np.isclose(nll, nll_and_grad(model, params, x)[0], rtol=1e-12))
    True
    """
    from ..backend import to_device, to_numpy
    from .model_pass import nll_and_grad

    nll, grads = nll_and_grad(model, to_device(params, target), to_device(x, target))
    return float(nll), to_numpy(grads)


@functools.cache
def _load(name):
    # a failed load (EngineUnavailableError) is not cached: installing the package or
    # attaching a device takes effect in the same process
    if name == "numpy":
        from ..bijectors.coupling import conf_step, conf_step_inverse
        from ..conditioners import mlp

        return Engine("numpy", mlp, conf_step, conf_step_inverse)
    if not _has_numba():
        raise EngineUnavailableError(
            "engine='numba' needs the numba package, which is not installed "
            "(pip install numba); use engine='numpy' instead")
    if name == "cupy":
        from ..backend import require_cupy
        from ..bijectors.coupling import conf_step, conf_step_inverse
        from ..conditioners import mlp

        require_cupy()
        return Engine("cupy", mlp, conf_step, conf_step_inverse,
                      functools.partial(nll_and_grad_on, "cupy"))
    from . import model_pass, numba_engine

    return Engine("numba", numba_engine.mlp, numba_engine.conf_step,
                  numba_engine.conf_step_inverse, model_pass.nll_and_grad)


def get_engine(name="numpy"):
    """The :class:`Engine` called ``name`` (an :class:`Engine` is returned as is).

    Raises
    ------
    ValueError
        For a name not in :data:`ENGINES`.
    EngineUnavailableError
        When the engine's package is not installed (for ``"cupy"``: or no CUDA device
        is usable).
    """
    if isinstance(name, Engine):
        return name
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")
    return _load(name)
