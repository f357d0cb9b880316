"""A flow's negative log-likelihood and its gradient in one explicit pass, without autograd.

Traced by autograd, a training step of a CONF model records a few hundred nodes (the
parameter leaves, ActNorm, the split and join, the spectrum set-up, the base density),
each costing tens of microseconds of bookkeeping: more than the arithmetic of a small
model. :func:`nll_and_grad` computes the same loss and gradient by walking the model's
own flow (``model.build(params)``): the chain's explicit forward pass
(:meth:`refconf.bijectors.Chain.forward_saved`) keeps each layer's intermediates, then
its reverse pass (:meth:`~refconf.bijectors.Chain.backward`) calls every bijector's
``backward``. No layer is written here: each bijector owns its forward, log-det and
backward, in the array namespace of its inputs, with compiled overrides of named kernels
on NumPy arrays (:func:`refconf.backend.compiled_override`).

For ``L = -mean_b log p(x_b)`` with ``log p = log N(z; 0, I) + log|det dz/dx|`` the
reverse pass starts from ``g_z = z / B`` and ``g_log_det = -1 / B`` per sample. Complex
cotangents follow autograd's convention (``dl/dRe - i dl/dIm``), so the result equals
autograd's gradient of the readable model (``tests/test_engines.py``, to 1e-10).
"""

import math

import numpy as np

from .. import backend

__all__ = ["nll_and_grad", "nll_and_grad_on"]


def _compute_dtype(leaves, x):
    """The namespace and the computing dtype of the parameters and the batch (one
    namespace for all: a clear error where NumPy and device arrays mix), and whether
    every leaf already is an array of that dtype (C-contiguous in NumPy, where the
    compiled kernels read it)."""
    # set comprehensions over the leaves: a loop testing each leaf costs twice as much
    if isinstance(x, np.ndarray) and {type(a) for a in leaves} <= {np.ndarray}:
        dtypes = {d for d in {a.dtype for a in leaves} if d.kind == "f"}
        dtype = np.result_type(*dtypes, x.dtype)
        ready = dtypes == {dtype} and all(a.flags.c_contiguous for a in leaves)
        return np, dtype, ready
    xp = backend.compute_namespace(x, *leaves)
    if xp is np:  # NumPy-convertible leaves (lists, scalars)
        return np, np.result_type(*[np.asarray(a) for a in leaves], np.result_type(x)), False
    dtype = xp.result_type(*[a for a in leaves if xp.isdtype(a.dtype, "real floating")], x)
    return xp, dtype, all(a.dtype == dtype for a in leaves)


def _cast(xp, dtype):
    """A leaf as an array of ``xp`` of ``dtype`` (C-contiguous in NumPy, where the
    compiled kernels read it)."""
    if xp is np:
        return lambda a: np.ascontiguousarray(a, dtype=dtype)
    return lambda a: a if a.dtype == dtype else xp.astype(a, dtype)


def nll_and_grad(model, params, x):
    """Mean negative log-likelihood of ``x`` under the model and its gradient.

    Parameters
    ----------
    model : refconf.flows.FlowModel
        Anything whose ``build(params)`` gives a :class:`refconf.flows.Flow` with a
        standard normal base and a chain of one keyed :class:`~refconf.bijectors.Chain`
        per entry of ``params["steps"]`` (as :meth:`~refconf.flows.FlowModel.build`
        makes), every bijector with an explicit reverse pass.
    params : pytree
        The model's parameters (:meth:`~refconf.flows.FlowModel.init_params`): NumPy
        arrays, or arrays of one array-API library (moved with
        :func:`refconf.backend.to_device`).
    x : array, (B, D)
        A batch of data, in the parameters' namespace.

    Returns
    -------
    nll : float or 0-d array
        ``-mean_b log p(x_b)``, as ``-mean(model.build(params).log_prob(x))``: a NumPy
        float, or a 0-d array of the inputs' namespace (no device-to-host copy).
    grads : pytree
        Its gradient, with the structure of ``params`` and arrays of its namespace.

    Raises
    ------
    ValueError
        When NumPy arrays are mixed with arrays of another library
        (:func:`refconf.backend.namespace`).

    Examples
    --------
    >>> import numpy as np
    >>> from autograd import grad
    >>> from refconf.flows import conf
    >>> x = np.random.default_rng(0).normal(size=(64, 5))
    >>> model = conf(5, steps=2, hidden=(8,))
    >>> params = model.init_params(x, random_state=0)
    >>> nll, g = nll_and_grad(model, params, x)
    >>> def loss(p):
    ...     return -np.mean(model.build(p).log_prob(x))
    >>> bool(np.isclose(nll, loss(params), rtol=1e-12))
    True
    >>> bool(np.allclose(g["steps"][1]["actnorm"]["loc"],
    ...                  grad(loss)(params)["steps"][1]["actnorm"]["loc"], rtol=1e-10))
    True

    The same pass on the arrays of another library (here ``array_api_strict``, which
    stands in for CuPy), the gradient left there:

    >>> import array_api_strict as xps
    >>> from refconf.backend import to_device, to_numpy
    >>> nll_s, g_s = nll_and_grad(model, to_device(params, xps), to_device(x, xps))
    >>> bool(np.allclose(to_numpy(g_s["steps"][1]["actnorm"]["loc"]),
    ...                  g["steps"][1]["actnorm"]["loc"], rtol=1e-12))
    True
    """
    xp, dtype, ready = _compute_dtype(backend.flat_leaves(params), x)
    cast = _cast(xp, dtype)
    if not ready:
        params = backend.map_leaves(cast, params)
    flow = model.build(params)
    z, log_det, saved = flow.chain.forward_saved(cast(x))
    B = z.shape[0]
    log_p = -0.5 * xp.vecdot(z, z) - 0.5 * z.shape[-1] * math.log(2 * math.pi) + log_det
    g_z, g_log_det = z / B, xp.full(B, -1.0 / B, dtype=dtype)
    _, grads = flow.chain.backward(saved, g_z, g_log_det)
    return -xp.mean(log_p), {"steps": grads}


def nll_and_grad_on(target, model, params, x):
    """:func:`nll_and_grad` on a device, for a training loop whose parameter vector and
    Adam state live on the host: the parameters and the batch are moved to ``target``
    (``"cupy"`` or an array namespace, :func:`refconf.backend.to_device`), the pass runs
    there, and the loss and the gradient come back as a float and NumPy arrays.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> import numpy as np
    >>> from refconf.flows import conf
    >>> x = np.random.default_rng(0).normal(size=(16, 4))
    >>> model = conf(4, steps=1, hidden=(8,))
    >>> params = model.init_params(x, random_state=0)
    >>> nll, grads = nll_and_grad_on(xps, model, params, x)
    >>> bool(np.isclose(nll, nll_and_grad(model, params, x)[0], rtol=1e-12))
    True
    """
    nll, grads = nll_and_grad(model, backend.to_device(params, target),
                              backend.to_device(x, target))
    return float(nll), backend.to_numpy(grads)
