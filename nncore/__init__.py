"""nncore: a compiled neural-network engine (Cython/OpenMP kernels, PyTorch-like API)."""
from ._kernels._parallel import get_num_threads, openmp_enabled, set_num_threads

__version__ = "0.1.0"
