"""Activations on the compiled kernels: relu, leaky_relu, sigmoid, tanh, gelu, softmax,
log_softmax. Each Function saves exactly what its backward kernel reads (the output where the
derivative is a function of it, else the input).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _device
from .._kernels import activation as _k
from .._kernels import softmax as _ks
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]


class _Elementwise(Function):
    """An activation whose kernels are `kernel_name`_forward / _backward: nncore._kernels'
    activation module on the CPU, nncore.cuda.ops (same names) on the GPU."""

    kernel_name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kernel_name" in cls.__dict__:
            cls._names = {d: f"{cls.kernel_name}_{d}" for d in ("forward", "backward")}

    @classmethod
    def kernel(cls, x: Any, direction: str) -> Callable:
        return getattr(_device.kernels(x, _k), cls._names[direction])


class _SavesOutput(_Elementwise):
    """y = f(x) whose derivative is a function of y: saves only the output for backward."""

    @classmethod
    def forward(cls, ctx: Context, x: np.ndarray) -> np.ndarray:
        y = cls.kernel(x, "forward")(x)
        ctx.save_for_backward(y)
        return y

    @classmethod
    def backward(cls, ctx: Context, dout: np.ndarray) -> np.ndarray:
        (y,) = ctx.saved_tensors
        return cls.kernel(dout, "backward")(dout, y)


class _SavesOutputAlongDim(Function):
    """softmax-family op along `dim`: saves the output, backward reads it."""

    kernel_forward: Callable
    kernel_backward: Callable

    @classmethod
    def forward(cls, ctx: Context, x: np.ndarray, dim: int) -> np.ndarray:
        y = cls.kernel_forward(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @classmethod
    def backward(cls, ctx: Context, dout: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return cls.kernel_backward(dout, y, ctx.dim), None


class _SavesInputWithOption(_Elementwise):
    """y = f(x; option) whose derivative needs x: saves the input and the option."""

    @classmethod
    def forward(cls, ctx: Context, x: np.ndarray, option: Any) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.option = option
        return cls.kernel(x, "forward")(x, option)

    @classmethod
    def backward(cls, ctx: Context, dout: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        return cls.kernel(dout, "backward")(dout, x, ctx.option), None


class ReLU(_SavesOutput):
    kernel_name = "relu"


class Sigmoid(_SavesOutput):
    kernel_name = "sigmoid"


class Tanh(_SavesOutput):
    kernel_name = "tanh"


class LeakyReLU(_SavesInputWithOption):
    kernel_name = "leaky_relu"


class GELU(_SavesInputWithOption):
    kernel_name = "gelu"


class Softmax(_SavesOutputAlongDim):
    kernel_forward = staticmethod(_ks.softmax_forward)
    kernel_backward = staticmethod(_ks.softmax_backward)


class LogSoftmax(_SavesOutputAlongDim):
    kernel_forward = staticmethod(_ks.log_softmax_forward)
    kernel_backward = staticmethod(_ks.log_softmax_backward)


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(0, x) elementwise (relu(nan) = nan, as PyTorch). `inplace` is accepted for API
    compatibility; nncore always returns a new tensor."""
    return ReLU.apply(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01,  # noqa: A002
               inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return LeakyReLU.apply(input, float(negative_slope))


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    return Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    """Hyperbolic tangent."""
    return Tanh.apply(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x * Phi(x) (exact, erf form) or PyTorch's tanh approximation (approximate="tanh")."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)


def _dim(dim: int | None, ndim: int, name: str) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice
        dim = 0 if ndim in (0, 1, 3) else 1
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{name}: dim {dim} is out of range for a {ndim}-D tensor")
    return dim


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """exp(x) / sum(exp(x)) along `dim`, with the max subtracted for stability."""
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return softmax(input.reshape(1), 0).reshape(())
    return Softmax.apply(input, _dim(dim, input.ndim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """x - logsumexp(x) along `dim`, computed stably."""
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return log_softmax(input.reshape(1), 0).reshape(())
    return LogSoftmax.apply(input, _dim(dim, input.ndim, "log_softmax"))
