"""nncore.cuda: device queries and memory counters of the optional CUDA build.

Works on every install: without a CUDA build (the default, CPU-only wheel) `is_built()` and
`is_available()` are False, the memory counters are 0, and functions that need a device raise
RuntimeError saying how to rebuild. With a CUDA build (``NNCORE_CUDA=1 pip install .``) and no
GPU or driver, `is_available()` is False and never raises.

    >>> import nncore.cuda
    >>> nncore.cuda.is_available()
    False

Kernels on device arrays: `nncore.cuda.ops` (same names and argument order as the CPU kernel
wrappers in nncore._kernels), on `DeviceArray` (from_numpy / numpy()).
"""
from __future__ import annotations

from nncore._cuda.errors import NOT_BUILT_MESSAGE, CudaError, OutOfMemoryError

try:
    from nncore._cuda import _ext
except ImportError:  # the default CPU-only build
    _ext = None

__all__ = [
    "CudaError", "OutOfMemoryError", "is_built", "is_available",
    "device_count", "get_device_name", "set_device", "synchronize", "memory_allocated",
    "max_memory_allocated", "memory_reserved", "reset_peak_memory_stats", "empty_cache",
]


def _require_ext():
    if _ext is None:
        raise RuntimeError(NOT_BUILT_MESSAGE)
    return _ext


def _require_device():
    ext = _require_ext()
    if ext.device_count() == 0:
        raise RuntimeError(f"nncore.cuda: no CUDA device is available "
                           f"({ext.device_count_error() or 'cudaGetDeviceCount returned 0'})")
    return ext


def is_built() -> bool:
    """True when this nncore was built with NNCORE_CUDA=1 (the CUDA extension imports)."""
    return _ext is not None


def device_count() -> int:
    """Number of visible CUDA devices; 0 without a CUDA build, driver or GPU (never raises)."""
    return 0 if _ext is None else _ext.device_count()


def is_available() -> bool:
    """True when nncore was built with CUDA and at least one device is usable. Never raises."""
    try:
        return device_count() > 0
    except Exception:  # noqa: BLE001  (a broken driver must read as "not available")
        return False


def get_device_name(device: int = 0) -> str:
    """Name of CUDA device `device`, e.g. "NVIDIA H100 80GB HBM3"."""
    return _require_device().device_name(int(device))


def set_device(device: int) -> None:
    """Make `device` the current device for later allocations and kernels."""
    _require_device().set_device(int(device))


def synchronize() -> None:
    """Wait for all queued kernels and copies; raises CudaError for an earlier kernel fault."""
    _require_device().synchronize()


def memory_allocated() -> int:
    """Bytes held by live device arrays (rounded to allocator size classes); 0 without CUDA."""
    return 0 if _ext is None else _ext.memory_stats()[0]


def max_memory_allocated() -> int:
    """Peak of memory_allocated() since start or reset_peak_memory_stats(); 0 without CUDA."""
    return 0 if _ext is None else _ext.memory_stats()[1]


def memory_reserved() -> int:
    """Bytes obtained from cudaMalloc: live blocks plus the allocator's cache; 0 without CUDA."""
    return 0 if _ext is None else _ext.memory_stats()[2]


def reset_peak_memory_stats() -> None:
    """Restart max_memory_allocated() from the current memory_allocated()."""
    if _ext is not None:
        _ext.reset_peak_memory_stats()


def empty_cache() -> None:
    """Return the allocator's cached (free) blocks to the driver (cudaFree); live arrays stay.
    A no-op without CUDA."""
    if _ext is not None:
        _ext.empty_cache()


def __getattr__(name: str):
    # DeviceArray exists only in a CUDA build; asking for it otherwise says how to get one
    if name == "DeviceArray":
        return _require_ext().DeviceArray
    raise AttributeError(f"module 'nncore.cuda' has no attribute {name!r}")
