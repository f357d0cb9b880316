"""Bijectors: ``forward(x) -> (y, log_det)`` (data to latent), ``inverse(y) -> (x, log_det)``."""

from .affine import AffineCoupling
from .autoregressive import MaskedAutoregressive
from .base import Bijector, Chain, Inverse
from .convolution import CircularConv, SymmetricConv
from .coupling import ConvCoupling
from .elementwise import ElementwiseFromRegularizer, Logit, Scale, Shift, SLog
from .mixing import ActNorm, Invertible1x1, Permutation, Reverse

__all__ = [
    "Bijector", "Chain", "Inverse",
    "SymmetricConv", "CircularConv",
    "SLog", "Scale", "Shift", "Logit", "ElementwiseFromRegularizer",
    "Permutation", "Reverse", "Invertible1x1", "ActNorm",
    "ConvCoupling", "AffineCoupling", "MaskedAutoregressive",
]
