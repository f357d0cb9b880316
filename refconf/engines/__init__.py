"""Compute engines: the same CONF maps, selected by name, never a silent fallback.

``"numpy"``
    The readable tier (:func:`refconf.conditioners.mlp`,
    :func:`refconf.bijectors.coupling.conf_step`): NumPy/SciPy under autograd, the oracle
    every other engine is tested against.
``"numba"``
    The conditioner MLP and the CONF step each as one autograd primitive with an analytic
    VJP (:mod:`refconf.engines.numba_engine`) over compiled kernels, and for training the
    explicit reverse pass of the whole flow (:func:`nll_and_grad`, no autograd), whose
    kernels are compiled on NumPy arrays. The same training loop and API; first
    derivatives only. numba is a core dependency, so this is the default.
``"cupy"``
    The readable functions on CuPy arrays on a CUDA GPU (:mod:`refconf.backend`: every
    spectral function and bijector runs in its input's array namespace, the DCT-I through
    the rfft of the whole-sample extension). autograd cannot trace CuPy arrays, so training
    uses the explicit reverse pass on the device (:func:`nll_and_grad_on`), with every
    bijector's readable kernels; it never imports numba. Never chosen by ``"auto"``.

Engines are handed down by the model builder (:meth:`refconf.flows.FlowModel.build`
resolves a name to an :class:`Engine` and gives it to each coupling step); no bijector
imports this package.

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

from ..backend import EngineUnavailableError, require_cupy
from ..bijectors.coupling import READABLE
from .explicit import nll_and_grad, nll_and_grad_on

__all__ = ["ENGINES", "Engine", "EngineUnavailableError", "available_engines",
           "default_engine", "get_engine", "nll_and_grad", "nll_and_grad_on",
           "resolve_engine"]

ENGINES = ("numpy", "numba", "cupy")


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
        model in one explicit pass (:func:`refconf.engines.nll_and_grad`), for
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
    """``"numba"`` (numba is a core dependency; ``"numpy"`` where it is missing from a
    broken install), never ``"cupy"``: a GPU is never chosen silently."""
    return "numba" if _has_numba() else "numpy"


def resolve_engine(name):
    """The engine name ``name`` stands for: ``"auto"`` (or None) is :func:`default_engine`;
    other names are checked against :data:`ENGINES`."""
    if name is None or name == "auto":
        return default_engine()
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")
    return name


@functools.cache
def _load(name):
    # a failed load (EngineUnavailableError) is not cached: installing the package or
    # attaching a device takes effect in the same process
    readable = (READABLE.mlp, READABLE.conf_step, READABLE.conf_step_inverse)
    if name == "numpy":
        return Engine("numpy", *readable)
    if name == "cupy":  # the readable functions: no numba on the device path
        require_cupy()
        return Engine("cupy", *readable, functools.partial(nll_and_grad_on, "cupy"))
    if not _has_numba():
        raise EngineUnavailableError(
            "engine='numba' needs the numba package, a core dependency of refconf that "
            "is missing from this install (pip install numba); use engine='numpy' instead")
    from . import numba_engine

    return Engine("numba", numba_engine.mlp, numba_engine.conf_step,
                  numba_engine.conf_step_inverse, nll_and_grad)


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
