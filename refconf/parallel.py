"""Row-block parallelism on the CPU: a batch split into blocks of rows, one thread each.

A flow maps every sample (row) on its own, so a batch's work splits into independent row
blocks. BLAS products, NumPy's loops over a few hundred values or more and the numba
engine's kernels (``nogil``) release the GIL, so the blocks of one pass run in parallel
threads; each runs BLAS single-threaded, which on small products beats BLAS's own
threads (they spin on a few microseconds of work per call). Used by
:meth:`refconf.flows.Flow.sample`: inverting 10,000 samples of a 44-dimensional CONF
model takes 0.105 s on two threads against 0.167 s on one
(``validation/bench_engines.py``). A training step is not split so: its row blocks of a
few hundred samples make many short NumPy calls, and two threads contending for the GIL
on each made a step of 512 samples about 1.7x slower than one thread (measured).

The thread count follows numba's (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``): one
setting for all of the CPU engine's parallelism.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["block_threads", "map_row_blocks"]


@functools.cache
def _blas():
    """The BLAS libraries' thread control, found once (``threadpool_limits`` looks them up
    on every call, a few tenths of a millisecond)."""
    return ThreadpoolController()


def block_threads(n, min_rows):
    """Threads for a batch of ``n`` rows: ``numba.get_num_threads()``, at most one per
    ``min_rows`` rows (1 for a small batch)."""
    import numba  # a core dependency, imported by the CPU path only

    return max(1, min(numba.get_num_threads(), n // min_rows))


def map_row_blocks(function, x, threads):
    """``[function(block) for block in numpy.array_split(x, threads)]``, the blocks in
    parallel threads with single-threaded BLAS.

    Examples
    --------
    >>> import numpy as np
    >>> map_row_blocks(lambda rows: rows.sum(), np.arange(10.0), 3)
    [np.float64(6.0), np.float64(15.0), np.float64(24.0)]
    """
    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        return list(pool.map(function, np.array_split(x, threads)))
