"""Bijectors: ``forward(x) -> (y, log_det)`` (data to latent), ``inverse(y) -> (x, log_det)``."""

from .affine import AffineCoupling
from .autoregressive import MaskedAutoregressive
from .base import Bijector, Chain, Inverse
from .convolution import CircularConv, SymmetricConv
from .coupling import ConvCoupling
from .coupling2d import AffineCoupling2D, ConvCoupling2D
from .elementwise import Logit, Scale, Shift, SLog
from .mixing import ActNorm, Invertible1x1, Permutation, Reverse
from .multiscale import MultiScaleLevel
from .regularizer import ElementwiseFromRegularizer

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "AffineCoupling2D",
    "Bijector",
    "Chain",
    "CircularConv",
    "ConvCoupling",
    "ConvCoupling2D",
    "ElementwiseFromRegularizer",
    "Inverse",
    "Invertible1x1",
    "Logit",
    "MaskedAutoregressive",
    "MultiScaleLevel",
    "Permutation",
    "Reverse",
    "SLog",
    "Scale",
    "Shift",
    "SymmetricConv",
]
