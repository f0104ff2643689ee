"""Dropout on the compiled kernel (nncore/_kernels/dropout.pyx).

Each call draws a 64-bit seed from `nncore.random.default_generator()`; the keep mask is a
hash of (seed, element index), so it depends on the seed only (not on the thread count), and
the backward pass recomputes it from the seed instead of storing it.
"""
from __future__ import annotations

import numpy as np

from .. import _device
from .. import random as _random
from .._kernels import dropout as _k
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["dropout", "dropout2d"]


class Dropout(Function):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per group of `group` elements."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, p: float, group: int) -> np.ndarray:
        seed = int(_random.default_generator().integers(0, 2**63, dtype=np.int64))
        ctx.p, ctx.seed, ctx.group = p, seed, group
        return _device.kernels(x, _k).dropout_forward(x, p, seed, group)

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        return _device.kernels(dout, _k).dropout_forward(dout, ctx.p, ctx.seed,
                                                         ctx.group), None, None


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).

    Identity when not `training` or p = 0; zeros when p = 1. `inplace` is accepted for API
    compatibility; nncore always returns a new tensor.

    >>> y = dropout(nncore.ones(1000), p=0.25)   # about 750 entries equal 1/0.75
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    return Dropout.apply(input, p, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
              inplace: bool = False) -> Tensor:
    """Channel-wise dropout of an (N, C, H, W) or (C, H, W) input: zero whole channels with
    probability p, scale the rest by 1/(1-p)."""
    p = _check_p(p)
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input, got shape "
                         f"{tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    group = int(input.shape[-1] * input.shape[-2])
    if group == 0:
        return Dropout.apply(input, p, 1)
    return Dropout.apply(input, p, group)
