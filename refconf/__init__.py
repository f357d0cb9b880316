"""refconf: reference implementation of convolutional normalizing flows (CONF).

Invertible symmetric (DCT-I) and circular (DFT) convolutions whose log-determinant and
inverse cost O(N log N), S-Log gates, and the CONF coupling step of Karami et al. (2019).
Forward maps data to latent and returns ``(z, log|det dz/dx|)``.
"""

__version__ = "0.1.0"

from .bijectors import (
    ActNorm,
    Bijector,
    Chain,
    CircularConv,
    ElementwiseFromRegularizer,
    Inverse,
    Invertible1x1,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
)
from .spectral import (
    circular_conv,
    circular_deconv,
    circular_log_abs_det,
    circular_spectrum,
    symmetric_conv,
    symmetric_deconv,
    symmetric_log_abs_det,
    symmetric_spectrum,
)

__all__ = [
    "__version__",
    "Bijector", "Chain", "Inverse",
    "SymmetricConv", "CircularConv",
    "SLog", "Scale", "Shift", "ElementwiseFromRegularizer",
    "Permutation", "Reverse", "Invertible1x1", "ActNorm",
    "symmetric_spectrum", "symmetric_conv", "symmetric_deconv", "symmetric_log_abs_det",
    "circular_spectrum", "circular_conv", "circular_deconv", "circular_log_abs_det",
]
