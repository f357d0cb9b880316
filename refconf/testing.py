"""Public checkers for bijectors, VJPs and linear maps.

Run them on your own bijectors (anything with ``forward(x) -> (y, log_det)`` and
``inverse(y) -> (x, log_det)`` written in ``autograd.numpy``)::

    from refconf.testing import check_bijector
    report = check_bijector(my_bijector, x)     # raises AssertionError on a violation

Each check compares against the reference tier (dense Jacobians by autograd and
``numpy.linalg.slogdet``) with real tolerances, never ``inf``.
"""

import numpy as np
from autograd import make_vjp
from autograd.test_util import check_grads

from .reference import dense_jacobian

__all__ = ["check_bijector", "check_vjp", "dot_test", "default_tolerance"]


def default_tolerance(dtype):
    """Relative tolerance used when none is given: ``1e-9`` for float64, ``2e-3`` for
    float32 (single precision loses about 3 digits over a dense ``slogdet`` of a
    moderately conditioned Jacobian)."""
    return 2e-3 if np.dtype(dtype) == np.float32 else 1e-9


def _close(a, b, rtol, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    err = float(np.max(np.abs(a - b), initial=0.0)) / scale
    if not err <= rtol:
        raise AssertionError(f"{what}: relative error {err:.3g} exceeds tolerance {rtol:.3g}")
    return err


def check_bijector(bijector, x, rtol=None, jacobian=True):
    """Check the bijector laws at the batch ``x`` of shape ``(batch..., *event)``.

    1. ``forward`` and ``inverse`` return finite values with one log-det per sample;
    2. ``inverse(forward(x)) == x``;
    3. the inverse log-det is minus the forward log-det;
    4. (``jacobian=True``) the forward log-det equals ``slogdet`` of the dense Jacobian of
       one sample's forward map, computed by autograd, for every sample.

    Parameters
    ----------
    bijector : object with ``forward``, ``inverse`` and ``event_ndim``
    x : ndarray
    rtol : float, optional
        Relative tolerance (errors are divided by ``max(1, |expected|)``); defaults to
        :func:`default_tolerance` of ``x.dtype``.
    jacobian : bool
        Compare against dense Jacobians (O(size^3) per sample).

    Returns
    -------
    dict
        The largest relative error of each law, keyed by law.

    Raises
    ------
    AssertionError
        Naming the law that failed and by how much.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import SymmetricConv
    >>> conv = SymmetricConv(np.array([3.0, -0.2, 1.7, 0.4, 2.5]))
    >>> report = check_bijector(conv, np.random.default_rng(0).normal(size=(4, 5)))
    >>> sorted(report)
    ['inverse_log_det', 'log_det_vs_dense_jacobian', 'round_trip']
    """
    x = np.asarray(x)
    rtol = default_tolerance(x.dtype) if rtol is None else rtol
    event_ndim = bijector.event_ndim
    batch = x.shape[: x.ndim - event_ndim]
    y, log_det = bijector.forward(x)
    x_back, log_det_inv = bijector.inverse(y)
    # the output event may have another shape (a squeeze), never another size
    y_shape = batch + tuple(np.shape(y)[len(batch):]) if np.size(y) == x.size else x.shape
    for name, value, shape in [("forward output", y, y_shape), ("forward log_det", log_det, batch),
                               ("inverse output", x_back, x.shape),
                               ("inverse log_det", log_det_inv, batch)]:
        if np.shape(value) != shape:
            raise AssertionError(f"{name} has shape {np.shape(value)}, expected {shape}")
        if not np.all(np.isfinite(value)):
            raise AssertionError(f"{name} has NaN or infinite values")
    report = {
        "round_trip": _close(x_back, x, rtol, "inverse(forward(x)) != x"),
        "inverse_log_det": _close(log_det_inv, -np.asarray(log_det), rtol,
                                  "inverse log_det != -forward log_det"),
    }
    if jacobian:
        samples = x.reshape((-1,) + x.shape[x.ndim - event_ndim:])
        expected = np.asarray(log_det).reshape(-1)
        dense = []
        for sample in samples:
            J = dense_jacobian(lambda s: bijector.forward(s[None])[0][0], sample)
            sign, value = np.linalg.slogdet(J.astype(float))
            if sign == 0:
                raise AssertionError("the dense Jacobian is singular")
            dense.append(value)
        report["log_det_vs_dense_jacobian"] = _close(
            expected, dense, rtol, "forward log_det != slogdet of the dense Jacobian")
    return report


def check_vjp(fun, *args, order=1):
    """Check ``fun``'s reverse-mode derivatives (to ``order``) against finite
    differences in random directions (:func:`autograd.test_util.check_grads`).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.primitives import dct1
    >>> check_vjp(dct1, np.random.default_rng(0).normal(size=6), order=2)
    """
    check_grads(fun, modes=["rev"], order=order)(*args)


def dot_test(linear, x, y=None, adjoint=None, rtol=1e-10, random_state=0):
    """The adjoint (dot) test ``<A x, y> == <x, A^T y>`` for a linear map ``A``.

    Parameters
    ----------
    linear : callable, ``x -> A x``
    x : ndarray
        A point with the input's shape (its values are redrawn at random).
    y : ndarray, optional
        A point with the output's shape; drawn at random (complex for a complex output)
        if omitted.
    adjoint : callable, optional
        ``y -> A^T y``, the adjoint under the real inner product ``<u, v> = Re vdot(u, v)``.
        By default built from the VJP of ``linear`` (autograd), which makes this a test
        of the VJP.
    rtol : float

    Returns
    -------
    float
        The relative mismatch ``|<Ax, y> - <x, A^T y>| / (|Ax| |y|)``.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.primitives import dct1
    >>> dot_test(dct1, np.zeros(9)) < 1e-12
    True
    """
    rng = np.random.default_rng(random_state)

    def draw_like(a):
        # complex points need random imaginary parts too, or half the adjoint goes untested
        a = np.asarray(a)
        v = rng.normal(size=a.shape)
        if np.iscomplexobj(a):
            v = v + 1j * rng.normal(size=a.shape)
        return v.astype(a.dtype)

    x = draw_like(x)
    if adjoint is None:
        vjp, Ax = make_vjp(linear)(x)
        # autograd's cotangent of a complex z is dl/dRe z - i dl/dIm z, so the adjoint
        # under Re vdot is conj(vjp(conj(y))); both conjugations are no-ops for real maps
        adjoint = lambda v: np.conj(vjp(np.conj(v)))  # noqa: E731
    else:
        Ax = linear(x)
    if y is None:
        y = draw_like(Ax)
    lhs = np.vdot(Ax, y).real
    rhs = np.vdot(x, adjoint(y)).real
    err = abs(lhs - rhs) / max(np.linalg.norm(Ax) * np.linalg.norm(y), np.finfo(float).tiny)
    if not err <= rtol:
        raise AssertionError(f"dot test: <Ax, y> = {lhs:.17g} but <x, A^T y> = {rhs:.17g}")
    return float(err)
