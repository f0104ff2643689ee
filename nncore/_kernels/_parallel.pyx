# _parallel.pyx: the one place that owns nncore's thread count and build facts.
# Every kernel wrapper reads get_num_threads() and passes it to prange(num_threads=...).
import os

from ._openmp cimport (
    NNCORE_COMPILER,
    NNCORE_HAVE_OPENMP,
    NNCORE_OPENMP_VERSION,
    omp_get_num_procs,
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
