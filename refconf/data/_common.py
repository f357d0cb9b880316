"""Input checks and optional imports shared by the dataset modules."""

import importlib

import numpy as np

INSTALL_HINT = "pip install refconf[data]"


def import_optional(module, purpose):
    """Import ``module`` (pandas or h5py, from the ``data`` extra) or raise a clear ImportError."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the optional package {module!r}; install it with "
            f"`{INSTALL_HINT}` (or `pip install {module}`)."
        ) from err


def as_finite_2d(x, what):
    """``x`` as a float64 array of shape (n, D), or a ValueError saying what was wrong."""
    x = np.asarray(x)
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(f"{what}: expected a real numeric array, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (n, D), got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = x.size - int(np.count_nonzero(finite))
        raise ValueError(f"{what}: {bad} non-finite value(s) (NaN or Inf) in an array of shape "
                         f"{x.shape}")
    return x


def positive_int(value, what):
    """``value`` as a Python int >= 1, or a ValueError naming ``what``."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = None
    if count is None or count != value or count < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return count
