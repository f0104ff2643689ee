"""Tensor factories with PyTorch's names and defaults (float32 unless told otherwise).

`device=` ("cpu", "cuda") places the result: values are made on the host and copied, so a
seeded `randn(..., device="cuda")` draws the same numbers as on the CPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _device
from .random import default_generator
from .tensor import Tensor, _as_array

__all__ = ["tensor", "from_numpy", "as_tensor", "zeros", "ones", "full", "empty", "randn",
           "rand", "randint", "arange", "zeros_like", "ones_like", "randn_like", "eye",
           "float32", "float64", "int64", "int32", "bool_", "from_dlpack"]

float32 = np.float32
float64 = np.float64
int64 = np.int64
int32 = np.int32
bool_ = np.bool_


def _shape(size: tuple) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype(np.float32 if dtype is None else dtype)


def _new(data: Any, requires_grad: bool, device: Any) -> Tensor:
    if device is not None:
        data = _device.move(data, _device.as_device(device))
    return Tensor(data, requires_grad=requires_grad)


def tensor(data: Any, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (Python floats become float32, ints int64)."""
    if isinstance(data, Tensor) and data.is_cuda:
        data = data.detach().cpu()
    arr = _as_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)):
        arr = arr.copy()
    return _new(arr, requires_grad, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with `array` (no copy; dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return Tensor(array)


def from_dlpack(ext_tensor: Any) -> Tensor:
    """A tensor sharing memory with any DLPack-exporting CPU array (torch, NumPy, JAX...)."""
    if isinstance(ext_tensor, Tensor):
        return Tensor(ext_tensor.data)
    return Tensor(np.from_dlpack(ext_tensor))


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """Share memory with `data` when it already is an ndarray of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)):
        return data
    return Tensor(_as_array(data, dtype))


def zeros(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(_shape(size), _dtype(dtype)), requires_grad, device)


def ones(*size: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_shape(size), _dtype(dtype)), requires_grad, device)


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _new(np.full(_shape((size,)), fill_value, _dtype(dtype)), requires_grad, device)


def empty(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    return _new(np.empty(_shape(size), _dtype(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    return _new(np.eye(n, m, dtype=_dtype(dtype)), False, device)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    """Standard normal samples from nncore's seeded generator."""
    rng = generator or default_generator()
    dt = _dtype(dtype)
    return _new(rng.standard_normal(_shape(size), dtype=dt), requires_grad, device)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         generator: np.random.Generator | None = None) -> Tensor:
    """Uniform samples in [0, 1) from nncore's seeded generator."""
    rng = generator or default_generator()
    dt = _dtype(dtype)
    return _new(rng.random(_shape(size), dtype=dt), requires_grad, device)


def randint(low: int, high: int | None = None, size: Any = (), dtype: Any = np.int64,
            generator: np.random.Generator | None = None, device: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    rng = generator or default_generator()
    return _new(rng.integers(low, high, size=_shape((size,)), dtype=dtype), False, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           device: Any = None) -> Tensor:
    """Values from start to end (exclusive); int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else np.float32
    return _new(np.arange(start, end, step, dtype=dtype), False, device)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with t's shape, dtype and device (unless given)."""
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def randn_like(t: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype, device=device or t.device)
