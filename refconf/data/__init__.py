"""Datasets: 2-D toy densities with true log-densities, the scikit-learn digits as a small
image set, the MAF-format UCI/BSDS300 benchmarks, padding for equal coupling splits, and
NLL unit conversions.

pandas and h5py (``pip install refconf[data]``) are needed only to read the GAS, HEPMASS
and BSDS300 files of the MAF release; everything else needs the core dependencies.
"""

from .binarized import load_binarized_digits, load_binarized_mnist, load_caltech_silhouettes
from .digits import DIGITS_LOG_DET_SCALING, digits_nll_raw, load_digits, load_digits_logit
from .images import dequantize_logit, load_cifar10, load_mnist, read_idx, write_idx
from .padding import PADDING_MODES, noise_padding_log_density, pad_for_equal_split
from .toy import TOY_DENSITIES, sample_toy, toy_log_density
from .uci import MAF_DATA_URL, UCI_DATASETS, UCI_SHAPES, convert_uci, load_uci
from .units import bits_per_dim, nll_before_preprocessing

__all__ = [
    "DIGITS_LOG_DET_SCALING",
    "MAF_DATA_URL",
    "PADDING_MODES",
    "TOY_DENSITIES",
    "UCI_DATASETS",
    "UCI_SHAPES",
    "bits_per_dim",
    "convert_uci",
    "dequantize_logit",
    "digits_nll_raw",
    "load_binarized_digits",
    "load_binarized_mnist",
    "load_caltech_silhouettes",
    "load_cifar10",
    "load_digits",
    "load_digits_logit",
    "load_mnist",
    "load_uci",
    "nll_before_preprocessing",
    "noise_padding_log_density",
    "pad_for_equal_split",
    "read_idx",
    "sample_toy",
    "toy_log_density",
    "write_idx",
]
