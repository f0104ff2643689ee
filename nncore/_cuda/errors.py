"""Exceptions raised by nncore's CUDA layer (pure Python: importable without a CUDA build)."""
from __future__ import annotations


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message carries the CUDA error name and string."""


class OutOfMemoryError(CudaError):
    """cudaMalloc failed even after nncore emptied its allocator cache."""


NOT_BUILT_MESSAGE = (
    "nncore was built without CUDA; rebuild with NNCORE_CUDA=1 (and nvcc on PATH or "
    "NNCORE_NVCC set), e.g. NNCORE_CUDA=1 pip install -e ."
)
