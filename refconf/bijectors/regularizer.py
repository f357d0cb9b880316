"""Lemma 1 of the paper: the elementwise bijector whose output carries a regulariser."""

import numpy as onp
from autograd import elementwise_grad
from autograd.extend import defvjp, primitive
from scipy.integrate import quad_vec
from scipy.optimize import elementwise as roots

from .. import backend
from .base import Bijector, over_event, sum_event

__all__ = ["ElementwiseFromRegularizer"]


class ElementwiseFromRegularizer(Bijector):
    """Lemma 1: the elementwise bijector whose output carries the regulariser ``gamma``.

    The inverse (latent to data) is ``g(y) = int_0^y exp(gamma(t)) dt``, so that
    ``|dg/dy| = exp(gamma(y))``; the forward is ``f = g^{-1}``.

    Parameters
    ----------
    gamma : callable
        Vectorised real function of an ndarray (``numpy`` semantics).
    event_ndim : int

    Notes
    -----
    forward log-det ``-sum gamma(f(x))``; inverse log-det ``sum gamma(y)``. ``g`` is
    evaluated by adaptive vector quadrature (:func:`scipy.integrate.quad_vec` over
    ``g(y) = y int_0^1 exp(gamma(y u)) du``) and ``f`` by bracketed root finding
    (:mod:`scipy.optimize.elementwise`). Both are autograd primitives whose VJPs are the
    exact derivatives ``g' = exp(gamma(y))`` and ``f' = exp(-gamma(f(x)))``. For
    ``gamma(y) = a|y|`` this reproduces :class:`~refconf.bijectors.elementwise.SLog`.
    Slow: a reference tool for trying regularisers, not a layer for training. Gradients
    (autograd's, and :meth:`backward`, which takes ``gamma'`` from autograd) need
    ``gamma`` written with ``autograd.numpy``.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import SLog
    >>> lemma = ElementwiseFromRegularizer(lambda y: 1.5 * np.abs(y))
    >>> x = np.array([[0.3, -2.0, 7.0]])
    >>> np.allclose(lemma.forward(x)[0], SLog(1.5).forward(x)[0], rtol=1e-10)
    True
    """

    def __init__(self, gamma, event_ndim=1, rtol=1e-13):
        self.gamma = gamma
        self.event_ndim = event_ndim
        self.rtol = rtol
        self._g = primitive(self._integrate)
        self._f = primitive(self._solve)
        defvjp(self._g, lambda ans, y: lambda v: v * onp.exp(self.gamma(y)))
        defvjp(self._f, lambda ans, x: lambda v: v * onp.exp(-self.gamma(ans)))

    def _integrate(self, y):
        y = onp.asarray(y, dtype=float)
        flat = y.ravel()
        integral, _ = quad_vec(
            lambda u: onp.exp(self.gamma(flat * u)), 0.0, 1.0, epsrel=self.rtol, epsabs=0.0
        )
        g = flat * integral
        if not onp.all(onp.isfinite(g)):
            raise ValueError("ElementwiseFromRegularizer: g(y) overflowed; |y| is too large")
        return g.reshape(y.shape)

    def _solve(self, x):
        x = onp.asarray(x, dtype=float)
        flat = x.ravel()
        # the solvers call residual on the still-active elements, with their targets in args
        residual = lambda y, target: self._integrate(y) - target
        bracket = roots.bracket_root(
            residual, -onp.ones_like(flat), onp.ones_like(flat), args=(flat,))
        if not onp.all(bracket.success):
            raise ValueError("ElementwiseFromRegularizer: could not bracket f(x) = g^{-1}(x)")
        root = roots.find_root(residual, bracket.bracket, args=(flat,))
        if not onp.all(root.success):
            raise ValueError("ElementwiseFromRegularizer: root finding for f(x) did not converge")
        return root.x.reshape(x.shape)

    @staticmethod
    def _check_numpy(x, what):
        if not backend.is_autograd(backend.namespace(x)):
            raise ValueError(
                f"ElementwiseFromRegularizer.{what}: runs on NumPy arrays only (SciPy "
                f"quadrature and root finding), got a {type(x).__module__} array; move it "
                "with refconf.backend.to_numpy first")

    def _forward(self, x):
        self._check_numpy(x, "forward")
        y = self._f(x)
        return y, sum_event(-self.gamma(y), self.event_ndim)

    def _inverse(self, y):
        self._check_numpy(y, "inverse")
        return self._g(y), sum_event(self.gamma(y), self.event_ndim)

    def forward_saved(self, x):
        y, log_det = self._forward(x)
        return y, log_det, y

    def backward(self, saved, g_y, g_log_det):
        """``f' = exp(-gamma(y))`` and ``d(-gamma(y))/dx = -gamma'(y) f'``:
        ``g_x = (g_y - g_log_det gamma'(y)) exp(-gamma(y))``, ``gamma'`` by autograd
        (:func:`autograd.elementwise_grad`); no parameters."""
        y = saved
        gl = over_event(onp, g_log_det, self.event_ndim)
        return (g_y - gl * elementwise_grad(self.gamma)(y)) * onp.exp(-self.gamma(y)), None

    def inverse_saved(self, y):
        x, log_det = self._inverse(y)
        return x, log_det, y

    def inverse_backward(self, saved, g_x, g_log_det):
        """``g' = exp(gamma(y))``: ``g_y = g_x exp(gamma(y)) + g_log_det gamma'(y)``."""
        y = saved
        gl = over_event(onp, g_log_det, self.event_ndim)
        return g_x * onp.exp(self.gamma(y)) + gl * elementwise_grad(self.gamma)(y), None

