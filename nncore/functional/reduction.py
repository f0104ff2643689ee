"""Reductions: sum, mean, max, min, argmax, argmin over all elements or along `dim`."""
from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["sum", "mean", "max", "min", "argmax", "argmin"]

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _axes(dim: Any, ndim: int) -> tuple | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        n = builtins.max(ndim, 1)
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {d})")
        out.append(d % n)
    return tuple(out) if ndim else None


def _expand_back(dout: np.ndarray, shape: tuple, axes: tuple | None, keepdim: bool):
    if axes is not None and not keepdim:
        dout = np.expand_dims(dout, axes)
    return np.broadcast_to(dout, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axes: Any, keepdim: bool) -> np.ndarray:
        ctx.meta = (a.shape, axes, keepdim)
        return np.asarray(np.sum(a, axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        shape, axes, keepdim = ctx.meta
        if axes is None:  # full reduction: every element gets the one upstream value
            return np.full(shape, dout, dout.dtype), None, None
        return np.ascontiguousarray(_expand_back(dout, shape, axes, keepdim)), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axes: Any, keepdim: bool) -> np.ndarray:
        ctx.meta = (a.shape, axes, keepdim)
        count = a.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
        ctx.count = count
        return np.asarray(np.sum(a, axis=axes, keepdims=keepdim) / a.dtype.type(count))

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        shape, axes, keepdim = ctx.meta
        grad = _expand_back(dout / dout.dtype.type(ctx.count), shape, axes, keepdim)
        return np.ascontiguousarray(grad), None, None


class MaxAll(Function):
    """max/min over every element; ties share the gradient evenly (as PyTorch)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, use_min: bool) -> np.ndarray:
        if a.size == 0:
            raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() "
                               "== 0. Specify the reduction dim with the 'dim' argument.")
        out = np.asarray(a.min() if use_min else a.max())
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, out = ctx.saved_tensors
        mask = (a == out)
        return dout * mask / mask.sum(dtype=a.dtype), None


class MaxDim(Function):
    """max/min along one dim: returns (values, indices); the gradient goes to the index."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis: int, keepdim: bool, use_min: bool):
        idx = np.argmin(a, axis=axis) if use_min else np.argmax(a, axis=axis)
        idx = np.expand_dims(idx, axis)
        values = np.take_along_axis(a, idx, axis)
        ctx.meta = (a.shape, axis, keepdim)
        ctx.idx = idx
        if not keepdim:
            values, idx = values.squeeze(axis), idx.squeeze(axis)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx: Context, dvalues: np.ndarray, dindices: np.ndarray) -> tuple:
        shape, axis, keepdim = ctx.meta
        if not keepdim:
            dvalues = np.expand_dims(dvalues, axis)
        grad = np.zeros(shape, dvalues.dtype)
        np.put_along_axis(grad, ctx.idx, dvalues, axis)
        return grad, None, None, None


def sum(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Sum of all elements, or along `dim` (int or tuple)."""
    return Sum.apply(a, _axes(dim, a.ndim), keepdim)


def mean(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Mean of all elements, or along `dim` (int or tuple)."""
    if a.dtype.kind != "f":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be a "
                           f"floating point dtype, got {a.dtype}")
    return Mean.apply(a, _axes(dim, a.ndim), keepdim)


def _extreme(a: Tensor, dim: Any, keepdim: bool, use_min: bool) -> Any:
    if dim is None:
        return MaxAll.apply(a, use_min)
    (axis,) = _axes(dim, a.ndim) or (0,)
    if a.ndim == 0:
        return ValuesIndices(a, Tensor(np.zeros((), np.int64)))
    values, indices = MaxDim.apply(a, axis, keepdim, use_min)
    return ValuesIndices(values, indices)


def max(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Largest element, or (values, indices) along `dim`."""
    return _extreme(a, dim, keepdim, use_min=False)


def min(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Smallest element, or (values, indices) along `dim`."""
    return _extreme(a, dim, keepdim, use_min=True)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (of the flattened tensor when dim is None)."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if dim is None:
        return Tensor(np.asarray(np.argmax(data), np.int64))
    return Tensor(np.argmax(data, axis=dim, keepdims=keepdim).astype(np.int64))


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (of the flattened tensor when dim is None)."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if dim is None:
        return Tensor(np.asarray(np.argmin(data), np.int64))
    return Tensor(np.argmin(data, axis=dim, keepdims=keepdim).astype(np.int64))
