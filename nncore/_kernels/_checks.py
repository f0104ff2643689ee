"""Shared validation for kernel wrappers: dtype, ndim, contiguity and shape checks, `out=`
buffers, and the level a module's `_cap_simd` test hook sets.

Every `def` wrapper in `_kernels/` calls these before releasing the GIL, so bad input becomes a
Python exception that names the argument and its shape, never a crash.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name: str, ndim: int | None = None, dtype=None) -> np.ndarray:
    """Return `x` as a C-contiguous float32/float64 ndarray, or raise TypeError/ValueError.

    Non-contiguous input is copied (kernels read contiguous memory); integer or other dtypes
    are rejected rather than silently converted, so a dtype mistake is visible.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def check_same_dtype(**arrays: np.ndarray) -> np.dtype:
    """Raise TypeError unless all arrays share one dtype; return it."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, arr in items[1:]:
        if arr.dtype != first.dtype:
            raise TypeError(
                f"dtype mismatch: {first_name} is {first.dtype} but {name} is {arr.dtype}"
            )
    return first.dtype


def check_shape(x: np.ndarray, shape: tuple, name: str) -> None:
    """Raise ValueError unless x.shape == shape."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(x.shape)}")


def as_index_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """Return integer class/token indices as a C-contiguous int64 array, or raise TypeError."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    if x.dtype == np.int64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.int64).reshape(x.shape)


def prepare_out(out, like: np.ndarray, fn: str) -> np.ndarray:
    """A new array like `like` when `out` is None, else `out` once checked to be a writeable
    C-contiguous array of like's dtype and shape (it may be an input: kernels allow aliasing)."""
    if out is None:
        return np.empty_like(like, order="C")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != like.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {like.dtype}")
    check_shape(out, like.shape, f"{fn}: out")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: out must be a writeable C-contiguous array")
    return out


def grad_inputs(dout, cache, cache_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(dout, cache) as C-contiguous float arrays of one dtype and shape, for a backward kernel
    that reads the forward's output or input (`cache`, named `cache_name` in errors)."""
    dout = as_float_array(dout, "dout")
    cache = as_float_array(cache, cache_name)
    check_same_dtype(dout=dout, **{cache_name: cache})
    check_shape(cache, dout.shape, cache_name)
    return dout, cache


SIMD_LEVELS = {"portable": 0, "avx2": 1, "avx512": 2}


def capped_simd_level(level: str | None, detected: int) -> int:
    """The level a module's `_cap_simd(level)` test hook sets: `detected` for None, else
    `level` ('portable', 'avx2', 'avx512') but never above `detected`."""
    if level is None:
        return detected
    if level not in SIMD_LEVELS:
        raise ValueError(f"_cap_simd: level must be one of {sorted(SIMD_LEVELS)} or None, "
                         f"got {level!r}")
    return min(detected, SIMD_LEVELS[level])
