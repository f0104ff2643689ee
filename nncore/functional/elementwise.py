"""Arithmetic and unary math on tensors with NumPy broadcasting: + - * / ** neg, exp, log,
sqrt, abs, clamp, casts. Gradients are reduced back to each input's shape by `reduce_to_shape`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor
from ._broadcast import reduce_to_shape

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "clamp",
           "cast", "clone", "where", "maximum", "minimum"]


def _shape(x: Any) -> tuple:
    return x.shape if isinstance(x, np.ndarray) else ()


class Add(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.shapes = (_shape(a), _shape(b))
        return np.add(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (reduce_to_shape(dout, sa) if na else None,
                reduce_to_shape(dout, sb) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.shapes = (_shape(a), _shape(b))
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (reduce_to_shape(dout, sa) if na else None,
                reduce_to_shape(np.negative(dout), sb) if nb else None)


class Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (reduce_to_shape(dout * b, _shape(a)) if na else None,
                reduce_to_shape(dout * a, _shape(b)) if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.true_divide(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        da = reduce_to_shape(dout / b, _shape(a)) if na else None
        db = reduce_to_shape(-dout * a / (b * b), _shape(b)) if nb else None
        return da, db


class Pow(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        da = db = None
        if na:
            da = reduce_to_shape(dout * b * np.power(a, b - 1), _shape(a))
        if nb:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), np.where(a == 0, 0, np.nan))
            db = reduce_to_shape(dout * out * log_a, _shape(b))
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return np.negative(a)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        return np.negative(dout)


class Exp(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return dout * out


class Log(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return dout / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return dout / (2 * out)


class Abs(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        return dout * np.sign(a)


class Clamp(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.bounds = (lo, hi)
        out = a
        if lo is not None:
            out = np.maximum(out, np.asarray(lo, a.dtype))
        if hi is not None:
            out = np.minimum(out, np.asarray(hi, a.dtype))
        return out if out is not a else a.copy()

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        (a,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        mask = np.ones(a.shape, bool)
        if lo is not None:
            mask &= a >= lo
        if hi is not None:
            mask &= a <= hi
        return dout * mask, None, None


class Maximum(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        # ties split the gradient evenly, as PyTorch does
        wa = (a > b) + 0.5 * (a == b)
        na, nb = ctx.needs_input_grad
        return (reduce_to_shape(dout * wa, _shape(a)) if na else None,
                reduce_to_shape(dout * (1 - wa), _shape(b)) if nb else None)


class Where(Function):
    @staticmethod
    def forward(ctx: Context, cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
        ctx.cond = cond
        ctx.shapes = (_shape(a), _shape(b))
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        zero = np.zeros((), dout.dtype)
        return (None,
                reduce_to_shape(np.where(ctx.cond, dout, zero), sa) if na else None,
                reduce_to_shape(np.where(ctx.cond, zero, dout), sb) if nb else None)


class Cast(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.src_dtype = a.dtype
        return a.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        return dout.astype(ctx.src_dtype, copy=False), None


class Clone(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return a.copy()

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> np.ndarray:
        return dout


def _operand(x: Any, like: Any = None) -> Any:
    """Python/NumPy scalars stay weak (NumPy 2 keeps float32 * 0.5 in float32)."""
    if isinstance(x, (Tensor, np.ndarray)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (int, float, bool)):
        return x
    return Tensor(x)


def add(a: Any, b: Any, alpha: float = 1) -> Tensor:
    """a + alpha * b with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(_operand(a), _operand(b))


def sub(a: Any, b: Any, alpha: float = 1) -> Tensor:
    """a - alpha * b with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(_operand(a), _operand(b))


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise product with broadcasting."""
    return Mul.apply(_operand(a), _operand(b))


def div(a: Any, b: Any) -> Tensor:
    """Elementwise true division with broadcasting."""
    return Div.apply(_operand(a), _operand(b))


def pow(a: Any, b: Any) -> Tensor:
    """a ** b elementwise; differentiable in both arguments."""
    return Pow.apply(_operand(a), _operand(b))


def neg(a: Tensor) -> Tensor:
    """-a."""
    return Neg.apply(a)


def exp(a: Tensor) -> Tensor:
    """e ** a."""
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    """Natural logarithm (log(0) = -inf, log(<0) = nan, as PyTorch)."""
    return Log.apply(a)


def sqrt(a: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001 - mirrors torch.abs
    """|a|; the gradient at 0 is 0 (sign(0) = 0), as PyTorch."""
    return Abs.apply(a)


def clamp(a: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit a to [min, max]; the gradient passes where min <= a <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    return Clamp.apply(a, min, max)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum (ties split the gradient evenly)."""
    return Maximum.apply(_operand(a), _operand(b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum (ties split the gradient evenly)."""
    return neg(maximum(neg(_as_tensor(a)), neg(_as_tensor(b))))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick a where condition is true, else b (broadcasting)."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition, bool)
    return Where.apply(cond, _operand(a), _operand(b))


def cast(a: Tensor, dtype: Any) -> Tensor:
    """Convert to `dtype`; the gradient is cast back to the source dtype."""
    dtype = np.dtype(dtype)
    if a.data.dtype == dtype:
        return a
    if dtype.kind != "f":
        return Tensor._make(a.data.astype(dtype), False)
    return Cast.apply(a, dtype)


def clone(a: Tensor) -> Tensor:
    """A differentiable copy."""
    return Clone.apply(a)


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)
