"""Matrix products on the nncore GEMM kernel: `matmul` (NumPy/PyTorch broadcasting rules)
and `linear` (y = x @ W^T + b, with the bias fused into the GEMM epilogue).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _device
from .._kernels import gemm as _k
from ..autograd import Context, Function
from ..tensor import Tensor
from ._broadcast import reduce_to_shape

__all__ = ["matmul", "linear"]


def _check_operands(a: np.ndarray, b: np.ndarray, name: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: expected both operands to have the same dtype, got "
                        f"{a.dtype} and {b.dtype}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected float32 or float64 operands, got {a.dtype}")


def _bmm(a: np.ndarray, b: np.ndarray, trans_a: bool = False,
         trans_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) for arrays with >= 2 dims whose batch dims broadcast; op = swap last two."""
    if a.ndim == 2 and b.ndim == 2:
        return _k.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    if b.ndim == 2 and not trans_a:
        # (..., M, K) @ (K, N): fold the batch into M, one GEMM
        lead = a.shape[:-2]
        out = _k.gemm(np.ascontiguousarray(a).reshape(-1, a.shape[-1]), b, trans_b=trans_b)
        return out.reshape(*lead, a.shape[-2], out.shape[-1])
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    out = _k.gemm_batched(np.ascontiguousarray(a3), np.ascontiguousarray(b3),
                          trans_a=trans_a, trans_b=trans_b)
    return out.reshape(*batch, *out.shape[-2:])


class MatMul(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return _bmm(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        da = reduce_to_shape(_bmm(dout, b, trans_b=True), a.shape) if na else None
        db = None
        if nb:
            if b.ndim == 2 and a.ndim > 2:
                a2 = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
                db = _k.gemm(a2, dout.reshape(-1, dout.shape[-1]), trans_a=True)
            else:
                db = reduce_to_shape(_bmm(a, dout, trans_a=True), b.shape)
        return da, db


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics (1-D promotion, broadcast batch dims).

    Shapes: (M, K) @ (K, N) -> (M, N); (..., M, K) @ (..., K, N) -> (..., M, N).
    Example: ``nncore.matmul(nncore.randn(2, 3), nncore.randn(3, 4)).shape == (2, 4)``.
    """
    from .shape import squeeze, unsqueeze

    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    _check_operands(a.data, b.data, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, got "
                           f"{a.ndim}D and {b.ndim}D tensors")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        sa = "x".join(map(str, a.shape))
        sb = "x".join(map(str, b.shape))
        raise RuntimeError(f"matmul: shapes cannot be multiplied ({sa} and {sb}): inner "
                           f"dimensions {k_a} and {k_b} differ")
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2] if b.ndim > 1 else ())
        except ValueError:
            raise RuntimeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not "
                               f"broadcast") from None
    if a.ndim == 1 and b.ndim == 1:
        return squeeze(squeeze(MatMul.apply(unsqueeze(a, 0), unsqueeze(b, 1)), -1), -1)
    if a.ndim == 1:
        return squeeze(MatMul.apply(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(MatMul.apply(a, unsqueeze(b, 1)), -1)
    return MatMul.apply(a, b)


class Linear(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: Any) -> np.ndarray:
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        out = _device.kernels(x, _k).gemm(x2, weight, trans_b=True, bias=bias)
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return out.reshape(*x.shape[:-1], weight.shape[0]) if x.ndim != 2 else out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        x2, weight = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        d2 = dout.reshape(-1, dout.shape[-1]) if dout.ndim != 2 else dout
        k = _device.kernels(d2, _k)
        dx = k.gemm(d2, weight).reshape(ctx.x_shape) if nx else None       # (N,out)@(out,in)
        dweight = k.gemm(d2, x2, trans_a=True) if nw else None             # (out,N)@(N,in)
        dbias = _device.sum_rows(d2) if nb else None                       # (out,)
        return dx, dweight, dbias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """y = input @ weight^T + bias.

    Shapes: input (*, in_features), weight (out_features, in_features), bias (out_features,)
    -> (*, out_features).
    """
    x, w = input.data, weight.data
    if w.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                           f"{w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        rows = int(np.prod(x.shape[:-1])) if x.ndim else 1
        cols = x.shape[-1] if x.ndim else 1
        raise RuntimeError(f"linear: mat1 and mat2 shapes cannot be multiplied "
                           f"({rows}x{cols} and {w.shape[1]}x{w.shape[0]}): input has shape "
                           f"{x.shape}, weight has shape {w.shape}")
    _check_operands(x, w, "linear")
    if bias is not None:
        if bias.data.shape != (w.shape[0],):
            raise RuntimeError(f"linear: bias must have shape ({w.shape[0]},), got "
                               f"{bias.data.shape}")
        _check_operands(x, bias.data, "linear")
    return Linear.apply(input, weight, bias)
