"""CUDA implementations of nncore.functional's autograd Functions.

`Function.apply` runs the class registered here for a CPU Function (`register_cuda`) when its
tensor inputs live on the GPU. Where the CPU Function's code is device-neutral (it picks its
kernels with nncore._device.kernels: activations, linear, conv2d, batch norm, embedding,
dropout, cross-entropy, the LSTM layer, reshape, clone), the CPU class is registered as its
own CUDA implementation. The classes defined here are for ops whose CPU code is
NumPy-specific (elementwise with scalars, indexing, stacking, reductions, matmul, casts;
pooling and the GRU layer in _functions_layers.py): each takes the CPU Function's arguments
with DeviceArrays in place of ndarrays and calls the kernels in nncore.cuda.ops. What the GPU
does not support raises NotImplementedError naming the op (see docs/cuda.md): nothing falls
back to a silent host copy. Imported on first use of a GPU tensor.
"""
from __future__ import annotations

from numbers import Number
from typing import Any

import numpy as np

from nncore._device_dispatch import register_cuda
from nncore.autograd import Context, Function
from nncore.cuda import ops as K
from nncore.functional import activation as FA
from nncore.functional import elementwise as FE
from nncore.functional import gemm as FG
from nncore.functional import reduction as FR
from nncore.functional import shape as FS
from nncore.functional.conv import Conv2d
from nncore.functional.dropout import Dropout
from nncore.functional.embedding import Embedding
from nncore.functional.loss import CrossEntropy
from nncore.functional.normalization import BatchNorm
from nncore.functional.rnn import LSTMLayer


def unsupported(op: str, why: str) -> NotImplementedError:
    return NotImplementedError(f"{op} on cuda: {why} is not supported on the GPU yet; move the "
                               f"tensors to the CPU with .cpu() for it (docs/cuda.md)")


def _same_shape(op: str, a: Any, b: Any) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise unsupported(op, f"broadcasting ({tuple(a.shape)} with {tuple(b.shape)})")


def _scalar(x: Any) -> bool:
    return isinstance(x, Number)


# ---------------------------------------------------------------------------- elementwise

@register_cuda(FE.Add)
class Add(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        if _scalar(a) or _scalar(b):
            x, s = (b, a) if _scalar(a) else (a, b)
            return K.affine(x, 1.0, float(s))
        _same_shape("add", a, b)
        return K.add(a, b)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        na, nb = ctx.needs_input_grad
        return (dout if na else None), (dout if nb else None)


@register_cuda(FE.Sub)
class Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        if _scalar(b):
            return K.affine(a, 1.0, -float(b))
        if _scalar(a):
            return K.affine(b, -1.0, float(a))
        _same_shape("sub", a, b)
        return K.sub(a, b)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        na, nb = ctx.needs_input_grad
        return (dout if na else None), (K.affine(dout, -1.0) if nb else None)


@register_cuda(FE.Mul)
class Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        if _scalar(a) or _scalar(b):
            x, s = (b, a) if _scalar(a) else (a, b)
            return K.affine(x, float(s))
        _same_shape("mul", a, b)
        return K.mul(a, b)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad

        def times(other: Any) -> Any:
            return K.affine(dout, float(other)) if _scalar(other) else K.mul(dout, other)

        return (times(b) if na else None), (times(a) if nb else None)


@register_cuda(FE.Div)
class Div(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        if _scalar(a):
            raise unsupported("div", "a scalar divided by a tensor")
        ctx.save_for_backward(a, b)
        if _scalar(b):
            return K.affine(a, 1.0 / float(b))
        _same_shape("div", a, b)
        return K.div(a, b)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        if _scalar(b):
            return (K.affine(dout, 1.0 / float(b)) if na else None), None
        da = K.div(dout, b) if na else None
        db = K.affine(K.div(K.mul(dout, a), K.mul(b, b)), -1.0) if nb else None
        return da, db


@register_cuda(FE.Neg)
class Neg(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        return K.affine(a, -1.0)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> Any:
        return K.affine(dout, -1.0)


@register_cuda(FE.Cast)
class Cast(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, dtype: np.dtype) -> Any:
        ctx.src_dtype = a.dtype
        return a if a.dtype == np.dtype(dtype) else K.cast(a, dtype)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return K.cast(dout, ctx.src_dtype) if dout.dtype != ctx.src_dtype else dout, None


# -------------------------------------------------------------------------------- shape

def _first_axis_range(index: Any, length: int) -> tuple | None:
    """(start, stop, drop_axis) for an int or step-1 slice on the first axis, else None."""
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if isinstance(index, (int, np.integer)):
        i = int(index) + (length if index < 0 else 0)
        if not 0 <= i < length:
            raise IndexError(f"index {int(index)} is out of bounds for dimension 0 with size "
                             f"{length}")
        return i, i + 1, True
    if isinstance(index, slice):
        start, stop, step = index.indices(length)
        if step == 1:
            return start, max(start, stop), False
    return None


@register_cuda(FS.GetItem)
class GetItem(Function):
    """Integer and step-1 slice indexing on the first axis (views of the device array)."""

    @staticmethod
    def forward(ctx: Context, a: Any, index: Any) -> Any:
        rng = _first_axis_range(index, a.shape[0]) if a.ndim else None
        if rng is None:
            raise unsupported("indexing", f"index {index!r} (only an int or a step-1 slice on "
                              f"the first axis)")
        start, stop, drop = rng
        row = int(np.prod(a.shape[1:], dtype=np.int64))
        ctx.meta = (a.shape, a.dtype, start * row)
        shape = a.shape[1:] if drop else (stop - start,) + a.shape[1:]
        return a.view(start * row, shape)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        shape, dtype, offset = ctx.meta
        grad = K.DeviceArray.zeros(shape, dtype)
        grad.view(offset, dout.shape).copy_(dout)
        return grad, None


def _join_first_axis(op: str, axis: int, arrays: tuple, stacked: bool) -> Any:
    if axis != 0:
        raise unsupported(op, f"dim={axis} (only dim 0)")
    first = arrays[0]
    for a in arrays[1:]:
        if a.dtype != first.dtype or (tuple(a.shape) != tuple(first.shape) if stacked
                                      else tuple(a.shape[1:]) != tuple(first.shape[1:])):
            raise RuntimeError(f"{op}: expected matching shapes and dtypes, got "
                               f"{[tuple(x.shape) for x in arrays]}")
    lead = len(arrays) if stacked else sum(a.shape[0] for a in arrays)
    rest = tuple(first.shape) if stacked else tuple(first.shape[1:])
    out = K.DeviceArray((lead,) + rest, first.dtype)
    offset = 0
    for a in arrays:
        out.view(offset, a.shape).copy_(a)
        offset += a.size
    return out


def _split_first_axis(dout: Any, arrays_meta: list, needs: tuple) -> tuple:
    grads, offset = [], 0
    for shape, size in arrays_meta:
        grads.append(dout.view(offset, shape) if needs[len(grads)] else None)
        offset += size
    return (None, *grads)


class _JoinFirstAxis(Function):
    """cat / stack on dim 0: copies into one new array; the gradients are views of dout."""

    stacked: bool

    @classmethod
    def forward(cls, ctx: Context, axis: int, *arrays: Any) -> Any:
        ctx.meta = [(a.shape, a.size) for a in arrays]
        return _join_first_axis(cls.__name__.lower(), axis, arrays, stacked=cls.stacked)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _split_first_axis(dout, ctx.meta, ctx.needs_input_grad[1:])


@register_cuda(FS.Cat)
class Cat(_JoinFirstAxis):
    stacked = False


@register_cuda(FS.Stack)
class Stack(_JoinFirstAxis):
    stacked = True


# ---------------------------------------------------------------------------- reductions

def _broadcast_scalar(d: Any, shape: tuple, scale: float) -> Any:
    """scale * d (a one-element device array) repeated to `shape`, without a host sync."""
    n = int(np.prod(shape, dtype=np.int64))
    ones = K.fill(K.DeviceArray((n, 1), d.dtype), 1.0)
    return K.gemm(ones, d.reshape(1, 1), alpha=scale).reshape(shape)


def _reduce_forward(op: str, ctx: Context, a: Any, axes: Any, keepdim: bool) -> Any:
    ctx.meta = (a.shape, axes, keepdim)
    if axes is None:
        ctx.count = a.size
        out = K.sum_all(a)
        return out.reshape((1,) * a.ndim) if keepdim else out
    if a.ndim == 2 and tuple(axes) == (0,):
        ctx.count = a.shape[0]
        out = K.sum_rows(a)
        return out.reshape(1, -1) if keepdim else out
    raise unsupported(op, f"dim={axes} of a {a.ndim}-D tensor (only all dims, or dim 0 of "
                      f"a 2-D tensor)")


def _reduce_backward(ctx: Context, dout: Any, scale: float) -> Any:
    shape, axes, _ = ctx.meta
    if axes is None:
        return _broadcast_scalar(dout, shape, scale)
    ones = K.fill(K.DeviceArray((shape[0], 1), dout.dtype), 1.0)   # (M, 1) @ (1, N)
    return K.gemm(ones, dout.reshape(1, shape[1]), alpha=scale)


@register_cuda(FR.Sum)
class Sum(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, axes: Any, keepdim: bool) -> Any:
        return _reduce_forward("sum", ctx, a, axes, keepdim)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _reduce_backward(ctx, dout, 1.0), None, None


@register_cuda(FR.Mean)
class Mean(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, axes: Any, keepdim: bool) -> Any:
        total = _reduce_forward("mean", ctx, a, axes, keepdim)
        return K.affine(total, 1.0 / ctx.count, out=total)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _reduce_backward(ctx, dout, 1.0 / ctx.count), None, None


# -------------------------------------------------------------------------------- matmul

@register_cuda(FG.MatMul)
class MatMul(Function):
    """2-D @ 2-D, and 3-D @ 3-D with equal batch sizes (no broadcasting on the GPU)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        if a.ndim == b.ndim == 2:
            return K.gemm(a, b)
        if a.ndim == b.ndim == 3 and a.shape[0] == b.shape[0]:
            return K.gemm_batched(a, b)
        raise unsupported("matmul", f"shapes {tuple(a.shape)} @ {tuple(b.shape)} (only 2-D @ "
                          f"2-D and 3-D @ 3-D with equal batch sizes)")

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        mm = K.gemm if a.ndim == 2 else K.gemm_batched
        return (mm(dout, b, trans_b=True) if na else None,
                mm(a, dout, trans_a=True) if nb else None)


# ------------------------------------------------- Functions shared with the CPU as they are
# Their code is device-neutral and picks its kernels per array (nncore._device.kernels), so
# each is its own CUDA implementation.
for _shared in (FA.ReLU, FA.Sigmoid, FA.Tanh, FA.LeakyReLU, FA.GELU, FS.Reshape, FE.Clone,
                FG.Linear, CrossEntropy, Dropout, Conv2d, Embedding, BatchNorm, LSTMLayer):
    register_cuda(_shared)(_shared)


from . import _functions_layers  # noqa: E402, F401  (registers pooling and the GRU layer)
