"""Binds operators and methods onto Tensor. Each one is a thin call into nncore.functional,
so a method and its functional form can never disagree."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .tensor import Tensor


def _rsub(a: Tensor, b: Any) -> Tensor:
    return F.sub(b, a)


def _rdiv(a: Tensor, b: Any) -> Tensor:
    return F.div(b, a)


def _rpow(a: Tensor, b: Any) -> Tensor:
    return F.pow(b, a)


def _rmatmul(a: Tensor, b: Any) -> Tensor:
    return F.matmul(b, a)


def _compare(op):
    def method(self: Tensor, other: Any) -> Tensor:
        other = other._host_data("a comparison") if isinstance(other, Tensor) else other
        return Tensor._make(np.asarray(op(self._host_data("a comparison"), other)), False)

    return method


def _view(self: Tensor, *shape: Any) -> Tensor:
    return F.reshape(self, *shape)


def _max(self: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    return F.max(self, dim, keepdim)


def _min(self: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    return F.min(self, dim, keepdim)


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    if self._requires_grad and self._ctx is None:
        from .autograd import is_grad_enabled

        if is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                               "operation.")
    value = value._host_data("an indexed assignment") if isinstance(value, Tensor) else value
    self._host_data("an indexed assignment")[F.shape._unwrap_index(index)] = value


_METHODS = {
    "__add__": F.add, "__radd__": F.add, "__sub__": F.sub, "__rsub__": _rsub,
    "__mul__": F.mul, "__rmul__": F.mul, "__truediv__": F.div, "__rtruediv__": _rdiv,
    "__pow__": F.pow, "__rpow__": _rpow, "__matmul__": F.matmul, "__rmatmul__": _rmatmul,
    "__neg__": F.neg, "__abs__": F.abs, "__getitem__": F.getitem, "__setitem__": _setitem,
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "pow": F.pow, "neg": F.neg,
    "matmul": F.matmul, "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "abs": F.abs,
    "clamp": F.clamp, "clip": F.clamp, "sum": F.sum, "mean": F.mean, "max": _max, "min": _min,
    "argmax": F.argmax, "argmin": F.argmin, "reshape": F.reshape, "view": _view,
    "flatten": F.flatten, "transpose": F.transpose, "permute": F.permute,
    "squeeze": F.squeeze, "unsqueeze": F.unsqueeze, "expand": F.expand,
    "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh, "softmax": F.softmax,
    "log_softmax": F.log_softmax, "eq": _compare(np.equal), "ne": _compare(np.not_equal),
    "lt": _compare(np.less), "le": _compare(np.less_equal), "gt": _compare(np.greater),
    "ge": _compare(np.greater_equal),
}

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

Tensor.T = property(lambda self: F.permute(self, tuple(range(self.ndim))[::-1]))
Tensor.mT = property(lambda self: F.transpose(self, -2, -1))
