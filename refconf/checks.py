"""The value tests every settings check builds on: one definition of "an integer" and of
"a finite real number" for the whole package (bools are neither)."""

import math
import numbers

__all__ = ["is_finite_real", "is_integer"]


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
