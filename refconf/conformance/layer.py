"""The CONF combined layer (eq. 4) and step (eq. 5) as pure functions of explicit
conditioner outputs.

A port need not reproduce the conditioner network to check its coupling arithmetic:
these functions take the numbers the conditioner would output (kernel spectra, scales,
shift) and the global S-Log scales, and return the updated half and the log-determinant.
They live in :mod:`refconf.bijectors.coupling`, where
:class:`~refconf.bijectors.coupling.ConvCoupling` calls them once its conditioner has run.

Shapes (``m`` layers, ``B`` samples, ``d2`` updated entries, ``n_w`` spectrum bins:
``d2`` for the symmetric DCT-I spectrum, ``d2 // 2 + 1`` for the circular rfft half
spectrum)::

    x2, y2, s : (B, d2)        w_hat : (B, n_w)          one layer
    x2, y2, t : (B, d2)        w_hat, s : (m, B, n_w), (m, B, d2)
    alpha, alpha_prime : (m,)                             one step
"""

from ..bijectors.coupling import conf_layer, conf_layer_inverse, conf_step, conf_step_inverse

__all__ = ["conf_layer", "conf_layer_inverse", "conf_step", "conf_step_inverse"]
