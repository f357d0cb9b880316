"""refconf: reference implementation of convolutional normalizing flows (CONF).

Invertible symmetric (DCT-I) and circular (DFT) convolutions whose log-determinant and
inverse cost O(N log N), S-Log gates, and the CONF coupling step of Karami et al. (2019).
Forward maps data to latent and returns ``(z, log|det dz/dx|)``.
"""

from . import backend, baselines, data
from .baselines import build_model, load_flow_model, model_from_spec
from .bijectors import (
    ActNorm,
    AffineCoupling,
    Bijector,
    Chain,
    CircularConv,
    ConvCoupling,
    ElementwiseFromRegularizer,
    Inverse,
    Invertible1x1,
    MaskedAutoregressive,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
)
from .flows import Flow, FlowModel, StandardNormal, conf
from .image_flows import ImageFlowModel, conf_image
from .params import load_checkpoint, load_model, save_checkpoint, save_model
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
from .version import __version__

# the training loop and the estimator load on first use: the CPU training loop compiles
# with numba (a core dependency), and the model, its bijectors and the device path
# (engine="cupy") import without it
_LAZY = {"ConfDensity": "estimator", "FitResult": "train", "fit": "train"}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in ("estimator", "train"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijector",
    "Chain",
    "CircularConv",
    "ConfDensity",
    "ConvCoupling",
    "ElementwiseFromRegularizer",
    "FitResult",
    "Flow",
    "FlowModel",
    "ImageFlowModel",
    "Inverse",
    "Invertible1x1",
    "MaskedAutoregressive",
    "Permutation",
    "Reverse",
    "SLog",
    "Scale",
    "Shift",
    "StandardNormal",
    "SymmetricConv",
    "__version__",
    "backend",
    "baselines",
    "build_model",
    "circular_conv",
    "circular_deconv",
    "circular_log_abs_det",
    "circular_spectrum",
    "conf",
    "conf_image",
    "data",
    "fit",
    "load_checkpoint",
    "load_flow_model",
    "load_model",
    "model_from_spec",
    "save_checkpoint",
    "save_model",
    "symmetric_conv",
    "symmetric_deconv",
    "symmetric_log_abs_det",
    "symmetric_spectrum",
]
