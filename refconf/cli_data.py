"""Input data of the command line: a ``.npy`` or ``.csv`` matrix or a built-in set, checked
before any work (real, finite, 2-D, fits in memory), and the chunk size that bounds the
memory of ``evaluate`` and ``sample``."""

import os
import warnings

import numpy as onp

from .cli_support import CommandError, check_free_memory

__all__ = ["CHUNK_ROWS", "CHUNK_VALUES", "chunk_rows", "read_data"]

#: Values (rows x features) per chunk of ``evaluate`` and ``sample`` (8 MB of float64), and
#: at most :data:`CHUNK_ROWS` rows (the coupling networks' activations grow with the rows):
#: memory stays bounded whatever the number of rows.
CHUNK_VALUES = 2**20
CHUNK_ROWS = 2**15


def _check_matrix(source, X):
    if onp.iscomplexobj(X):
        raise CommandError(f"{source}: complex values (dtype {X.dtype}); expected real data "
                           "(the imaginary part would be lost)")
    if X.ndim != 2 or X.dtype == bool or not onp.issubdtype(X.dtype, onp.number):
        raise CommandError(f"{source}: expected a 2-D numeric array (samples x features), "
                           f"got shape {X.shape} and dtype {X.dtype}")
    if X.shape[0] == 0:
        raise CommandError(f"{source}: no rows; expected at least one sample")
    for start in range(0, len(X), chunk_rows(X.shape[1])):
        bad = ~onp.all(onp.isfinite(X[start:start + chunk_rows(X.shape[1])]), axis=1)
        if onp.any(bad):
            raise CommandError(f"{source}: row {start + int(onp.argmax(bad))} contains NaN "
                               "or Inf; expected finite data")


def read_data(source, seed=0, mmap=False):
    """Read a data matrix: a ``.npy`` or ``.csv`` file (rows are samples), or a built-in
    set: ``digits`` (training split) or ``toy:<name>`` (20,000 samples).

    A ``.npy`` file is memory-mapped and checked in chunks; with ``mmap`` it is returned
    so (read as it is used, in its own dtype), otherwise loaded as float64 after checking
    that it fits in the free memory. Complex, non-numeric, empty or non-finite data raise
    :class:`refconf.cli_support.CommandError`.
    """
    if source == "digits":
        from .data import load_digits

        return load_digits(random_state=seed)[0]
    if source.startswith("toy:"):
        from .data import sample_toy

        return sample_toy(source[4:], 20000, random_state=seed)
    if not os.path.isfile(source):
        raise CommandError(f"no such file: {source} (expected a .npy or .csv file, "
                           "'digits' or 'toy:<name>')")
    try:
        if source.lower().endswith(".npy"):
            X = onp.load(source, allow_pickle=False, mmap_mode="r")
        elif source.lower().endswith(".csv"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # an empty file: refused below
                X = onp.loadtxt(source, delimiter=",", ndmin=2)
        else:
            raise CommandError(f"{source}: unknown file type; expected .npy or .csv")
    except (ValueError, OSError) as err:
        raise CommandError(f"{source}: cannot read as a numeric matrix ({err})") from None
    _check_matrix(source, X)
    if mmap:
        return X
    check_free_memory(X.size * 8, f"reading {source} ({X.shape[0]} x {X.shape[1]} values)")
    return onp.array(X, dtype=onp.float64)  # a copy in memory, not a view of the file


def chunk_rows(n_features):
    """Rows per chunk of a matrix with ``n_features`` columns: at most :data:`CHUNK_VALUES`
    values and :data:`CHUNK_ROWS` rows."""
    return max(1, min(CHUNK_ROWS, CHUNK_VALUES // max(1, n_features)))
