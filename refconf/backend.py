"""Array namespaces: the same maps on NumPy (under autograd) and on array-API libraries.

Every map of refconf is written once against an array namespace ``xp``. For NumPy
arrays (and autograd's boxes, so training differentiates) ``xp`` is ``autograd.numpy``
and the transforms are refconf's autograd primitives; for arrays of any library that
follows the Python array API standard (CuPy on a GPU, ``array_api_strict`` for testing on
the CPU) ``xp`` is that library's namespace (via ``array_api_compat``) and nothing is
differentiated. The namespace is chosen from the arrays a function is given
(:func:`namespace`); arrays are moved between libraries with :func:`to_device`.

A handful of names differ between ``autograd.numpy`` and the standard; the helpers here
pick the one each side has (and, on the autograd side, the one autograd differentiates):
:func:`concat`, :func:`take`, :func:`asarray`.

Examples
--------
>>> import numpy as np
>>> import array_api_strict as xps
>>> namespace(np.ones(3), 2.0).__name__
'autograd.numpy'
>>> x = to_device({"w": np.ones(3, dtype=np.float32), "n": 4}, xps)
>>> namespace(x["w"]) is xps, x["w"].dtype == xps.float32, x["n"]
(True, True, 4)
>>> to_numpy(x)["w"]
array([1., 1., 1.], dtype=float32)
"""

import functools
import importlib
import importlib.util
import sys
import types

import array_api_compat
import autograd.numpy as anp
import numpy as onp
from autograd.tracer import getval, isbox

__all__ = ["EngineUnavailableError", "asarray", "bind", "compiled_override",
           "compute_namespace", "concat", "flat_leaves", "host_value", "is_autograd",
           "is_parameter", "map_leaves", "namespace", "parameter_leaves", "require_cupy",
           "sum_to", "take", "to_device", "to_numpy", "tree_namespace"]

_HOST_SCALARS = (bool, int, float, complex, onp.generic)


class EngineUnavailableError(ImportError, ValueError):
    """An engine or backend whose package (or device) is not available (a ``ValueError``
    too, so command-line and estimator callers report it like any other bad argument)."""


def compiled_override(module):
    """Decorator: a namespace-generic kernel ``kernel(xp, *args)`` whose NumPy case is the
    function of the same name in the compiled-override ``module`` (imported on first
    NumPy call, so other namespaces never import numba).

    The readable kernel is the definition: the override computes the same values (the
    tier-equality tests compare them), faster. The undecorated kernel stays reachable as
    ``kernel.readable``.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> @compiled_override("math")
    ... def sqrt(xp, a):
    ...     return xp.sqrt(a)
    >>> sqrt(np, 4.0), float(sqrt(xps, xps.asarray(4.0)))
    (2.0, 2.0)
    """
    def decorate(readable):
        bound = {}

        def bind(xp):
            """The kernel for the namespace ``xp``, with ``xp`` bound: the override for
            NumPy, the readable kernel otherwise (one dictionary look-up per call)."""
            try:
                return bound[xp]
            except KeyError:
                if xp is onp or xp is anp:
                    fn = getattr(importlib.import_module(module), readable.__name__)
                else:
                    fn = functools.partial(readable, xp)
                return bound.setdefault(xp, fn)

        def kernel(xp, *args):
            return bind(xp)(*args)

        functools.update_wrapper(kernel, readable)
        kernel.readable, kernel.bind = readable, bind
        return kernel

    return decorate


def bind(xp, *kernels):
    """The :func:`compiled_override` kernels ``kernels`` for the namespace ``xp``, each
    with ``xp`` bound (a tuple): a layer binds its kernels once per pass and calls them
    without a dispatch each. Bound once per namespace and set of kernels."""
    try:
        return _BOUND[xp, kernels]
    except KeyError:
        return _BOUND.setdefault((xp, kernels), tuple([k.bind(xp) for k in kernels]))


_BOUND = {}

_GPU_INSTALL = 'pip install "refconf[gpu]" (which installs cupy-cuda12x)'


def _is_host(a):
    """NumPy arrays, autograd boxes, Python/NumPy scalars, None and (NumPy-converted)
    lists and tuples."""
    return (a is None or isinstance(a, (onp.ndarray, list, tuple)) or isbox(a)
            or isinstance(a, _HOST_SCALARS))


def _is_host_array(a):
    return isinstance(a, onp.ndarray) or isbox(a)


def _where(a):
    if _is_host_array(a):
        return "a NumPy array" if isinstance(a, onp.ndarray) else "a NumPy array (traced)"
    library = type(a).__module__.split(".")[0]
    return f"an array of {library} on device {array_api_compat.device(a)!s}"


def namespace(*arrays):
    """The array namespace the arguments compute in.

    Parameters
    ----------
    *arrays : arrays, scalars or None

    Returns
    -------
    module
        ``autograd.numpy`` when every argument is a NumPy array, an autograd box, a
        Python or NumPy scalar, a list or tuple, or None; otherwise the array-API
        namespace of the other arrays (``array_api_compat.array_namespace``: the module
        itself for ``array_api_strict``, ``array_api_compat.cupy`` for CuPy).

    Raises
    ------
    ValueError
        When NumPy arrays are mixed with arrays of another library: say which is where,
        and how to move them (:func:`to_device`).

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> namespace(xps.ones(2), None, 1.0) is xps
    True
    >>> namespace(np.ones(2), xps.ones(2))
    Traceback (most recent call last):
    ...
    ValueError: cannot compute with arrays on different devices: argument 0 is a NumPy array, argument 1 is an array of array_api_strict on device array_api_strict.Device('CPU_DEVICE'); move them to one place first with refconf.backend.to_device(tree, target)
    """
    device = [a for a in arrays if not _is_host(a)]
    if not device:
        return anp
    if any(_is_host_array(a) for a in arrays):
        where = ", ".join(f"argument {i} is {_where(a)}" for i, a in enumerate(arrays)
                          if _is_host_array(a) or not _is_host(a))
        raise ValueError(
            f"cannot compute with arrays on different devices: {where}; move them to one "
            "place first with refconf.backend.to_device(tree, target)")
    return array_api_compat.array_namespace(*device)


def is_autograd(xp):
    """Whether ``xp`` is the NumPy (autograd) namespace, where refconf's autograd
    primitives run.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> is_autograd(namespace(np.ones(2))), is_autograd(namespace(xps.ones(2)))
    (True, False)
    """
    return xp is anp


def compute_namespace(*arrays):
    """:func:`namespace`, with plain ``numpy`` for NumPy arrays: the namespace of an
    explicit (not autograd-traced) computation, where ``numpy``'s own functions are
    faster than autograd's wrappers and the compiled overrides apply
    (:func:`compiled_override`)."""
    xp = namespace(*arrays)
    return onp if xp is anp else xp


def map_leaves(fn, tree):
    """``tree`` with every leaf ``a`` replaced by ``fn(a)``; dicts, lists and tuples are
    the inner nodes (everything else, arrays included, is a leaf).

    Examples
    --------
    >>> map_leaves(lambda a: 2 * a, {"a": [1, (2, 3)], "b": 4})
    {'a': [2, (4, 6)], 'b': 8}
    """
    if isinstance(tree, dict):
        return {k: map_leaves(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_leaves(fn, v) for v in tree)
    return fn(tree)


def sum_to(xp, a, shape):
    """``a`` summed over its leading axes and the axes where ``shape`` has 1: the
    cotangent of a parameter of shape ``shape`` that was broadcast to ``a``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> sum_to(np, np.ones((4, 2, 3)), (2, 1))
    array([[12.],
           [12.]])
    """
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and a.shape[lead + i] != 1)
    return xp.reshape(xp.sum(a, axis=axes), shape)


def is_parameter(a):
    """A floating or complex array (a parameter, as opposed to an index array)."""
    if isinstance(a, _HOST_SCALARS) or a is None:
        return False
    if isbox(a):
        return True
    if not array_api_compat.is_array_api_obj(a):
        return False
    if isinstance(a, (onp.ndarray, onp.generic)):
        return a.dtype.kind in "fc"
    xp = array_api_compat.array_namespace(a)
    return xp.isdtype(a.dtype, ("real floating", "complex floating"))


def tree_namespace(tree):
    """The :func:`namespace` of the floating-point array leaves of a pytree.

    Integer arrays (permutations, orders) are left out: they are structure, converted to
    the computing namespace where they index.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> tree_namespace([{"W": xps.ones((2, 2)), "perm": np.arange(2)}, 3]) is xps
    True
    """
    return namespace(*parameter_leaves(tree))


def parameter_leaves(tree):
    """The floating and complex array leaves of a pytree (:func:`is_parameter`), in
    order.

    Examples
    --------
    >>> import numpy as np
    >>> [a.dtype for a in parameter_leaves({"W": np.ones(2), "perm": np.arange(2)})]
    [dtype('float64')]
    """
    return [a for a in flat_leaves(tree) if is_parameter(a)]


def flat_leaves(tree, out=None):
    """The leaves of a pytree (the nodes :func:`map_leaves` calls its function on), in
    the same order (a dict's in insertion order), appended to ``out`` (a new list by
    default), without rebuilding the tree.

    Examples
    --------
    >>> flat_leaves({"a": [1, (2, 3)], "b": 4})
    [1, 2, 3, 4]
    """
    out = [] if out is None else out
    if not isinstance(tree, (dict, list, tuple)):
        out.append(tree)
        return out
    # leaves appended here, not in a call each: the explicit pass scans every step
    for value in tree.values() if isinstance(tree, dict) else tree:
        if isinstance(value, (dict, list, tuple)):
            flat_leaves(value, out)
        else:
            out.append(value)
    return out


def require_cupy():
    """The ``cupy`` module, when CuPy is installed and a CUDA device can be used.

    Raises
    ------
    EngineUnavailableError
        Naming what is missing: the cupy package, or a CUDA device and driver. There is
        no fallback to the CPU.

    Examples
    --------
    >>> import importlib.util
    >>> if importlib.util.find_spec("cupy") is None:
    ...     try:
    ...         require_cupy()
    ...     except EngineUnavailableError as e:
    ...         print("cupy" in str(e))
    ... else:
    ...     print(True)
    True
    """
    if "cupy" not in sys.modules and importlib.util.find_spec("cupy") is None:
        raise EngineUnavailableError(
            f"the CuPy (GPU) backend needs the cupy package, which is not installed: "
            f"{_GPU_INSTALL}; or use the numpy or numba engine")
    try:
        cupy = importlib.import_module("cupy")
    except (ImportError, OSError) as e:  # installed, but its CUDA libraries did not load
        raise EngineUnavailableError(
            f"cupy is installed but failed to import ({e}); the CuPy backend needs a CUDA "
            f"driver and runtime matching the cupy build ({_GPU_INSTALL})") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except (RuntimeError, OSError) as e:  # CUDARuntimeError is a RuntimeError
        raise EngineUnavailableError(
            f"cupy is installed but CUDA is not usable (no NVIDIA driver or CUDA runtime "
            f"found: {e}); the CuPy backend needs a CUDA device and its driver") from e
    if count == 0:
        raise EngineUnavailableError(
            "cupy is installed but no CUDA device was found (getDeviceCount() == 0); the "
            "CuPy backend needs a CUDA device and its driver")
    return cupy


def _target_namespace(target):
    """``None`` for NumPy, else the array-API namespace to move arrays to."""
    if target in ("numpy", onp, anp):
        return None
    if target == "cupy" or getattr(target, "__name__", None) == "cupy":
        require_cupy()
        return importlib.import_module("array_api_compat.cupy")
    if isinstance(target, types.ModuleType) and hasattr(target, "asarray"):
        return target
    raise ValueError(
        f"to_device: unknown target {target!r}; expected 'numpy', 'cupy' or an array "
        "namespace module (e.g. array_api_strict)")


def _to_numpy_leaf(a):
    if isinstance(a, (onp.ndarray, onp.generic)) or isbox(a):
        return a
    if not array_api_compat.is_array_api_obj(a):
        return a
    if array_api_compat.is_cupy_array(a):
        return a.get()
    out = onp.from_dlpack(a) if hasattr(a, "__dlpack__") else onp.asarray(a)
    return out if out.flags.writeable else out.copy()


def _to_namespace_leaf(a, xp):
    if isbox(a):
        raise ValueError(
            "to_device: cannot move a value autograd is tracing (gradients exist on the "
            "NumPy path only); move the parameters before differentiating")
    if isinstance(a, (onp.ndarray, onp.generic)):
        return xp.asarray(onp.asarray(a))
    if not array_api_compat.is_array_api_obj(a):
        return a
    if array_api_compat.array_namespace(a) is xp:
        return a
    if array_api_compat.is_cupy_array(a):
        return xp.asarray(a.get())
    return xp.from_dlpack(a) if hasattr(a, "__dlpack__") else xp.asarray(onp.asarray(a))


def to_device(tree, target):
    """Every array leaf of a pytree moved to ``target``, dtypes kept.

    Parameters
    ----------
    tree : array, scalar, or dicts / lists / tuples of them
    target : {"numpy", "cupy"} or module
        ``"numpy"`` (also the ``numpy`` or ``autograd.numpy`` module), ``"cupy"`` (checked
        with :func:`require_cupy`; arrays become CuPy arrays) or any array namespace
        module (e.g. ``array_api_strict``).

    Returns
    -------
    The same structure; NumPy arrays and scalars become ``target`` arrays (0-d for
    scalars of NumPy type), device arrays come back through ``.get()`` (CuPy) or DLPack.
    Python scalars and other objects are returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> moved = to_device([np.arange(3), (np.float32(0.5),)], xps)
    >>> moved[0].dtype == xps.int64, moved[1][0].dtype == xps.float32
    (True, True)
    """
    xp = _target_namespace(target)
    if xp is None:
        return map_leaves(_to_numpy_leaf, tree)
    return map_leaves(lambda a: _to_namespace_leaf(a, xp), tree)


def to_numpy(tree):
    """:func:`to_device` with target ``"numpy"``: plain NumPy arrays back on the host.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> to_numpy({"x": xps.asarray([1.0, 2.0])})
    {'x': array([1., 2.])}
    """
    return to_device(tree, "numpy")


def concat(xp, arrays, axis=0):
    """Join arrays along ``axis``: ``concatenate`` in (autograd) NumPy, ``concat`` in
    the array API.

    Examples
    --------
    >>> import numpy as np
    >>> concat(namespace(np.ones(1)), [np.zeros(2), np.ones(1)])
    array([0., 0., 1.])
    """
    if is_autograd(xp) or xp is onp:
        return xp.concatenate(arrays, axis=axis)
    return xp.concat(arrays, axis=axis)


def take(xp, x, index, axis):
    """``x`` indexed along the negative ``axis`` by ``index`` (an integer array, in any
    namespace, or a slice).

    Plain (fancy) indexing in NumPy, which autograd differentiates; ``xp.take`` with the
    index moved to ``xp`` in the array API.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> take(xps, xps.asarray([[1.0, 2.0, 3.0]]), np.array([2, 0, 1]), axis=-1)
    Array([[3., 1., 2.]], dtype=array_api_strict.float64)
    """
    if is_autograd(xp) or xp is onp or isinstance(index, slice):
        return x[(Ellipsis, index) + (slice(None),) * (-axis - 1)]
    return xp.take(x, asarray(xp, index), axis=axis)


def asarray(xp, a, dtype=None):
    """``a`` (a NumPy array, a list, or an array of ``xp``) as an array of ``xp``,
    optionally cast to ``dtype`` (a dtype of ``xp``).

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_strict as xps
    >>> asarray(xps, np.array([1, 0]), dtype=xps.float32)
    Array([1., 0.], dtype=array_api_strict.float32)
    """
    if is_autograd(xp):
        return anp.asarray(a, dtype=dtype)
    if isinstance(a, (onp.ndarray, onp.generic, list, tuple)):
        a = xp.asarray(onp.asarray(a))
    elif array_api_compat.array_namespace(a) is not xp:
        a = to_device(a, xp)
    return a if dtype is None or a.dtype == dtype else xp.astype(a, dtype)


def host_value(a):
    """The NumPy value of ``a`` (an autograd box's value, a device array copied to the
    host), for messages and host-side checks; other values are returned as they are.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> host_value(xps.asarray([0.5, 2.0]))
    array([0.5, 2. ])
    """
    return _to_numpy_leaf(getval(a))
