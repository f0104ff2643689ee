"""Shape and indexing ops: reshape/view, flatten, transpose/permute, squeeze/unsqueeze,
expand, indexing, cat, stack. Forward returns NumPy views where NumPy can; backward maps the
gradient back to the input's layout.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "expand",
           "getitem", "cat", "stack"]


class Reshape(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple) -> np.ndarray:
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        return dout.reshape(ctx.in_shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dims: tuple) -> np.ndarray:
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        return dout.transpose(np.argsort(ctx.dims)), None


class Expand(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple) -> np.ndarray:
        ctx.in_shape = a.shape
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        from ._broadcast import reduce_to_shape

        return reduce_to_shape(dout, ctx.in_shape), None


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, index: Any) -> np.ndarray:
        ctx.meta = (a.shape, a.dtype, index)
        return a[index]

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        shape, dtype, index = ctx.meta
        grad = np.zeros(shape, dtype)
        if _is_basic_index(index):
            grad[index] = dout
        else:
            np.add.at(grad, index, dout)  # repeated indices accumulate
        return grad, None


class Cat(Function):
    @staticmethod
    def forward(ctx: Context, axis: int, *arrays: np.ndarray) -> np.ndarray:
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        parts = np.split(dout, ctx.splits, axis=ctx.axis)
        return (None, *[p if need else None
                        for p, need in zip(parts, ctx.needs_input_grad[1:])])


class Stack(Function):
    @staticmethod
    def forward(ctx: Context, axis: int, *arrays: np.ndarray) -> np.ndarray:
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        n = dout.shape[ctx.axis]
        parts = [np.take(dout, i, axis=ctx.axis) for i in range(n)]
        return (None, *[p if need else None
                        for p, need in zip(parts, ctx.needs_input_grad[1:])])


def _normalize_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {dim})")
    return dim % ndim


def reshape(a: Tensor, *shape: Any) -> Tensor:
    """A tensor with the same data and a new shape (one dim may be -1)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return Reshape.apply(a, tuple(int(s) for s in shape))
    except ValueError:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size "
                           f"{a.data.size}") from None


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if a.ndim == 0:
        return reshape(a, 1)
    s = _normalize_dim(start_dim, a.ndim)
    e = _normalize_dim(end_dim, a.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = a.shape[:s] + (int(np.prod(a.shape[s:e + 1])),) + a.shape[e + 1:]
    return Reshape.apply(a, shape)


def permute(a: Tensor, *dims: Any) -> Tensor:
    """Reorder dimensions (a view)."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != a.ndim:
        raise RuntimeError(f"permute(): number of dims don't match: the tensor has {a.ndim} "
                           f"dims but {len(dims)} were given")
    dims = tuple(_normalize_dim(d, a.ndim) for d in dims)
    if sorted(dims) != list(range(a.ndim)):
        raise RuntimeError(f"permute(): repeated dim in {dims}")
    return Permute.apply(a, dims)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (a view)."""
    if a.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return a
    dims = list(range(a.ndim))
    d0, d1 = _normalize_dim(dim0, a.ndim), _normalize_dim(dim1, a.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(a, tuple(dims))


def squeeze(a: Tensor, dim: Any = None) -> Tensor:
    """Remove size-1 dims (all of them, or only `dim` when it has size 1)."""
    if dim is None:
        shape = tuple(s for s in a.shape if s != 1)
    else:
        dims = {_normalize_dim(d, max(a.ndim, 1))
                for d in ((dim,) if isinstance(dim, int) else dim)}
        shape = tuple(s for i, s in enumerate(a.shape) if not (i in dims and s == 1))
    return Reshape.apply(a, shape)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at `dim`."""
    d = _normalize_dim(dim, a.ndim + 1)
    return Reshape.apply(a, a.shape[:d] + (1,) + a.shape[d:])


def expand(a: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to `sizes` without copying (-1 keeps a dim)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - a.ndim
    shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return Expand.apply(a, shape)


def _unwrap_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(a: Tensor, index: Any) -> Tensor:
    """NumPy-style indexing (basic slicing, integer and boolean arrays)."""
    return GetItem.apply(a, _unwrap_index(index))


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    axis = _normalize_dim(dim, tensors[0].ndim)
    try:
        return Cat.apply(axis, *tensors)
    except ValueError as e:
        shapes = [tuple(t.shape) for t in tensors]
        raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {dim}; "
                           f"got shapes {shapes}") from e


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Stack same-shape tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack(): expected a non-empty list of Tensors")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise RuntimeError(f"stack expects each tensor to be equal size, got shapes "
                           f"{sorted(shapes)}")
    axis = _normalize_dim(dim, tensors[0].ndim + 1)
    return Stack.apply(axis, *tensors)
