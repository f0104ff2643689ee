"""What this nncore build is: compiler, OpenMP, threads, and the SIMD path each kernel took."""
from __future__ import annotations

import importlib
import platform

import numpy as np

from ._kernels import _parallel

# kernel modules that dispatch SIMD code at run time and report it via dispatched_simd()
_SIMD_KERNELS = (
    "gemm", "activation", "softmax", "loss", "optim", "norm", "dropout", "lstm", "gru", "conv",
    "conv_winograd",
)


def build_info() -> dict:
    """A dict describing the build and this machine, e.g. for bug reports and benchmarks."""
    kernels = {}
    for name in _SIMD_KERNELS:
        try:
            module = importlib.import_module(f"nncore._kernels.{name}")
        except ImportError as e:  # a partial development build
            kernels[name] = f"not built ({e})"
            continue
        report = getattr(module, "dispatched_simd", None)
        kernels[name] = report() if report else "portable (compiler auto-vectorised)"
    from . import __version__, memory

    return {
        "version": __version__,
        "compiler": _parallel.compiler(),
        "openmp": _parallel.openmp_enabled(),
        "openmp_version": _parallel.openmp_version(),
        "num_threads": _parallel.get_num_threads(),
        "cpu_simd": _parallel.simd_level(),
        "kernels": kernels,
        "host_allocator": memory.host_allocator(),
        "cuda": _cuda_facts(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def _cuda_facts() -> dict:
    """Whether the optional CUDA extension was built and a device is usable (never raises)."""
    from . import cuda

    return {"built": cuda.is_built(), "available": cuda.is_available(),
            "devices": cuda.device_count()}
