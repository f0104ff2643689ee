# _parallel.pyx: the one place that owns nncore's thread count and build facts.
# Every kernel wrapper reads get_num_threads() and passes it to prange(num_threads=...).
import os

import numpy as np

from cython.parallel cimport prange

from ._openmp cimport (
    NNCORE_COMPILER,
    NNCORE_HAVE_OPENMP,
    NNCORE_OPENMP_VERSION,
    omp_get_num_procs,
    omp_get_thread_num,
    omp_set_num_threads,
)
from ._simd cimport nncore_simd_level, nncore_simd_name


def _initial_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if NNCORE_HAVE_OPENMP:
        return max(1, omp_get_num_procs())
    return 1


cdef int _num_threads = _initial_threads()


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(NNCORE_HAVE_OPENMP)


def set_num_threads(int n) -> None:
    """Set the number of threads every nncore kernel uses (>= 1)."""
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _num_threads = n if NNCORE_HAVE_OPENMP else 1
    omp_set_num_threads(_num_threads)


def get_num_threads() -> int:
    """Number of threads nncore kernels use (OMP_NUM_THREADS at import, else all cores)."""
    return _num_threads


def simd_level() -> str:
    """SIMD instruction set the kernels dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def compiler() -> str:
    """The C compiler (name and version) that built the kernels."""
    return NNCORE_COMPILER.decode()


def openmp_version() -> int:
    """The _OPENMP date macro the kernels were built with (0 for a serial build)."""
    return NNCORE_OPENMP_VERSION


def _distinct_threads_in_prange(int n) -> int:
    """How many distinct OpenMP threads ran an n-iteration prange with num_threads=n.

    Used by tests to prove the kernels really run in parallel (not a silent serial build).
    """
    cdef int[::1] ids = np.full(n, -1, dtype=np.intc)
    cdef int i
    cdef double spin
    cdef int k
    for i in prange(n, nogil=True, schedule="static", num_threads=n):
        spin = 0
        for k in range(100000):  # keep each thread busy so the team really forms
            spin = spin + k * 0.5
        ids[i] = omp_get_thread_num() + 0 * <int>spin
    return len(set(ids.base.tolist()))
