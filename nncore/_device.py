"""Devices: where a Tensor's array lives, and the few array operations the engine itself needs
(moving, zeros/ones, sum, cast) on either kind of array.

A Tensor's `.data` is a NumPy ndarray on the CPU, or a `DeviceArray` (nncore.cuda) on a GPU.
Nothing here imports the CUDA layer until a device array is asked for, so a CPU-only install
never touches it.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["device", "as_device", "device_of", "is_host", "is_device_array", "move", "empty",
           "zeros", "ones", "add", "sum_rows", "astype", "kernels", "ops_for_device"]


class device:  # noqa: N801  (mirrors torch.device)
    """A device: ``device("cpu")``, ``device("cuda")``, ``device("cuda:0")``, ``device("cuda",
    0)``. Compares equal to another device (or its string) of the same type and index."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {type!r}")
        name, _, num = type.partition(":")
        if name not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        if num:
            if index is not None or not num.isdigit():
                raise RuntimeError(f"Invalid device string: {type!r}")
            index = int(num)
        if name == "cpu" and index not in (None, 0):
            raise RuntimeError(f"cpu device index must be 0 or None, got {index}")
        self.type = name
        self.index = index

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{extra})"


CPU = device("cpu")
CUDA0 = device("cuda", 0)


def as_device(d: Any) -> device:
    """A `device` from a device, a string ("cpu", "cuda", "cuda:1") or a CUDA index."""
    if isinstance(d, device):
        return d
    if isinstance(d, (int, np.integer)):
        return device("cuda", int(d))
    return device(d)


def is_device_array(data: Any) -> bool:
    """True for a GPU array (nncore.cuda.DeviceArray): not an ndarray, but copyable to one."""
    return not isinstance(data, np.ndarray) and hasattr(data, "ptr") and hasattr(data, "numpy")


def is_host(array: Any) -> bool:
    """True for a NumPy array (CPU memory), False for a device array."""
    return isinstance(array, np.ndarray)


def device_of(array: Any) -> device:
    return CPU if isinstance(array, np.ndarray) else CUDA0


def ops_for_device() -> Any:
    """nncore.cuda.ops, importing it on first use (RuntimeError without a usable GPU)."""
    import nncore.cuda as cuda

    if not cuda.is_available():
        if not cuda.is_built():
            raise RuntimeError("nncore was built without CUDA support: "
                               "reinstall it with NNCORE_CUDA=1 (see docs/cuda.md)")
        raise RuntimeError("nncore.cuda: no CUDA device is available (CUDA build present, "
                           "but no GPU or driver was found)")
    from nncore.cuda import ops

    return ops


def _ops() -> Any:
    """nncore.cuda.ops for work on arrays already on the GPU: the module itself once imported
    (a device array exists, so the device checks of ops_for_device have nothing to add on
    this per-op path)."""
    return sys.modules.get("nncore.cuda.ops") or ops_for_device()


def kernels(array: Any, cpu_module: Any) -> Any:
    """The kernels for `array`'s device: `cpu_module` (an nncore._kernels module) for an
    ndarray, nncore.cuda.ops (the same function names and arguments) for a device array."""
    return cpu_module if isinstance(array, np.ndarray) else _ops()


def move(array: Any, target: device) -> Any:
    """`array` on `target` (the same object when it is already there)."""
    if target.type == "cpu":
        return array if isinstance(array, np.ndarray) else array.numpy()
    if target.index not in (None, 0):
        raise RuntimeError(f"nncore.cuda uses one device, cuda:0; got {target}")
    if not isinstance(array, np.ndarray):
        return array
    ops = ops_for_device()
    if array.dtype.kind in "iub":
        array = array.astype(np.int64, copy=False)
    elif array.dtype not in (np.float32, np.float64):
        raise TypeError(f"cuda tensors hold float32, float64 or int64; got dtype {array.dtype}")
    return ops.DeviceArray.from_numpy(array)


def empty(shape: tuple, dtype: Any, like: Any) -> Any:
    """An uninitialised array on the device of `like`."""
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype)
    return _ops().DeviceArray(shape, dtype)


def zeros(shape: tuple, dtype: Any, like: Any) -> Any:
    """Zeros on the device of `like`."""
    if isinstance(like, np.ndarray):
        return np.zeros(shape, dtype)
    return _ops().DeviceArray.zeros(shape, dtype)


def ones(shape: tuple, dtype: Any, like: Any) -> Any:
    """Ones on the device of `like`."""
    if isinstance(like, np.ndarray):
        return np.ones(shape, dtype)
    ops = _ops()
    return ops.fill(ops.DeviceArray(shape, dtype), 1.0)


def add(a: Any, b: Any) -> Any:
    """a + b (same shape) on their device, out of place."""
    if isinstance(a, np.ndarray):
        return a + b
    return _ops().add(a, b)


def sum_rows(a: Any) -> Any:
    """Column sums of a 2-D array (a bias gradient) on its device."""
    if isinstance(a, np.ndarray):
        return np.add.reduce(a, axis=0)
    return _ops().sum_rows(a)


def astype(a: Any, dtype: Any) -> Any:
    """`a` converted to `dtype` on its device (the same object when it already has it)."""
    if isinstance(a, np.ndarray):
        return a.astype(dtype)
    if a.dtype == np.dtype(dtype):
        return a
    return _ops().cast(a, dtype)
