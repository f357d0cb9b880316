"""The value tests every settings check builds on: one definition of "an integer", of
"a finite real number" (bools are neither) and of "one of these choices"."""

import math
import numbers

__all__ = ["check_at_least_one", "check_choice", "is_finite_real", "is_integer"]


def is_integer(value):
    """``value`` is an integer (Python or NumPy) and not a bool.

    >>> import numpy as np
    >>> is_integer(3), is_integer(np.int64(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_real(value):
    """``value`` is a finite real number (Python or NumPy, integer or float), not a bool.

    >>> import numpy as np
    >>> is_finite_real(0.5), is_finite_real(np.float32(2)), is_finite_real(float("nan"))
    (True, True, False)
    """
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def check_choice(name, value, choices):
    """Raise ``ValueError`` naming ``name`` and the choices unless ``value`` is one of them.

    >>> check_choice("kind", "circular", ("symmetric", "circular"))
    >>> check_choice("kind", "dft", ("symmetric", "circular"))
    Traceback (most recent call last):
    ...
    ValueError: kind must be one of ('symmetric', 'circular'), got 'dft'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_at_least_one(spec, keys):
    """Raise ``ValueError`` unless every ``spec[key]`` of ``keys`` is at least 1 (counts of
    steps, layers, levels)."""
    for key in keys:
        if int(spec[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {spec[key]}")
