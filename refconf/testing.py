"""Public checkers for bijectors, VJPs, linear maps and normalised densities.

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

__all__ = [
    "check_bijector",
    "check_normalization",
    "check_vjp",
    "default_tolerance",
    "dot_test",
]


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
        adjoint = lambda v: np.conj(vjp(np.conj(v)))
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


def _log_density(model):
    """``x -> log p(x)`` of an estimator (``score_samples``), a flow (``log_prob``) or a
    function."""
    for name in ("score_samples", "log_prob"):
        if hasattr(model, name):
            return lambda x: np.asarray(getattr(model, name)(x), dtype=float)
    if callable(model):
        return lambda x: np.asarray(model(x), dtype=float)
    raise TypeError(f"check_normalization: {type(model).__name__} has no score_samples or "
                    "log_prob and is not callable; expected a density model or log p(x)")


def _grid_mass(log_p, bounds, n):
    """Trapezoidal quadrature of ``exp(log_p)`` over the box ``bounds`` ((D, 2))."""
    axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    values = np.exp(log_p(mesh)).reshape((n,) * len(axes))
    for axis in axes:  # integrate out the leading axis each time
        values = np.trapezoid(values, axis, axis=0)
    return float(values), 0.0


def _importance_mass(log_p, mean, cov, n, rng):
    """``E_q[p/q]`` with ``q`` a Gaussian of covariance ``cov`` inflated by 1.5^2 (heavier
    than the model's bulk), and its standard error."""
    q_cov = 2.25 * cov
    draws = rng.multivariate_normal(mean, q_cov, size=n)
    _, logdet = np.linalg.slogdet(q_cov)
    centred = np.linalg.solve(np.linalg.cholesky(q_cov), (draws - mean).T)
    log_q = -0.5 * np.sum(centred**2, axis=0) - 0.5 * (logdet + len(mean) * np.log(2 * np.pi))
    ratio = np.exp(log_p(draws) - log_q)
    return float(ratio.mean()), float(ratio.std(ddof=1) / np.sqrt(n))


def check_normalization(model, samples=None, bounds=None, n_grid=None, n_importance=20000,
                        atol=0.02, random_state=0):
    """Check that a density integrates to one: ``|int p(x) dx - 1| <= atol``.

    Up to 3 dimensions by trapezoidal quadrature on a grid over ``bounds``; above, by
    importance sampling from a Gaussian fitted to ``samples`` with its covariance
    inflated 1.5^2, ``Z = E_q[p(x) / q(x)]``, with the tolerance widened by four standard
    errors of that estimate.

    Parameters
    ----------
    model : estimator, flow or callable
        Anything with ``score_samples(X)`` (refconf and scikit-learn density estimators)
        or ``log_prob(X)`` (a :class:`~refconf.flows.Flow`), or a function ``log p(X)``.
    samples : ndarray, shape (n, D), optional
        Draws from (or data fitted by) the model; ``model.sample(5000)`` when omitted.
        They set the grid box and the proposal.
    bounds : array_like, shape (D, 2), optional
        The grid box; default the samples' range widened by half of it on each side.
    n_grid : int, optional
        Points per axis: 2001, 301, 81 for 1-3 dimensions.
    n_importance : int
    atol : float
    random_state : int

    Returns
    -------
    dict
        ``mass``, ``std_error`` (0 on a grid) and ``method`` (``"grid"`` or
        ``"importance"``).

    Raises
    ------
    AssertionError
        When the mass is further from one than the tolerance, saying by how much.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> gauss = multivariate_normal(np.zeros(2), [[1.0, 0.5], [0.5, 2.0]])
    >>> samples = gauss.rvs(2000, random_state=0)
    >>> report = check_normalization(gauss.logpdf, samples)
    >>> report["method"], round(report["mass"], 3)
    ('grid', 1.0)
    """
    log_p = _log_density(model)
    rng = np.random.default_rng(random_state)
    if samples is None:
        if not hasattr(model, "sample"):
            raise ValueError("check_normalization: pass samples (the model cannot sample)")
        samples = model.sample(5000, random_state=random_state)
    samples = np.asarray(samples, dtype=float)
    dim = samples.shape[1]
    if dim <= 3:
        if bounds is None:
            lo, hi = samples.min(axis=0), samples.max(axis=0)
            bounds = np.stack([lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)], axis=1)
        n = n_grid or {1: 2001, 2: 301, 3: 81}[dim]
        mass, error = _grid_mass(log_p, np.asarray(bounds, dtype=float), n)
        method = "grid"
    else:
        cov = np.cov(samples, rowvar=False) + 1e-9 * np.eye(dim)
        mass, error = _importance_mass(log_p, samples.mean(axis=0), cov, n_importance, rng)
        method = "importance"
    if not abs(mass - 1.0) <= atol + 4 * error:
        raise AssertionError(f"the density integrates to {mass:.6g} (standard error "
                             f"{error:.2g}, {method}), not 1 within {atol:g}")
    return {"mass": mass, "std_error": error, "method": method}
