"""Batch normalisation on the compiled kernel (nncore/_kernels/norm.pyx).

`batch_norm` normalises each channel of an (N, C, *) input with the batch statistics
(training) or the running statistics (eval), then applies the per-channel affine map; the
forward also updates the running statistics in place when training, as PyTorch does.
"""
from __future__ import annotations

import numpy as np

from .. import _device
from .._kernels import norm as _k
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """out = (x - mean) / sqrt(var + eps) * weight + bias, per channel (dim 1)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                running_mean: np.ndarray | None, running_var: np.ndarray | None,
                training: bool, momentum: float, eps: float) -> np.ndarray:
        out, save_mean, save_invstd = _device.kernels(x, _k).batch_norm_forward(
            x, weight, bias, running_mean, running_var, training, momentum, eps)
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        x, weight, save_mean, save_invstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dinp, dweight, dbias = _device.kernels(dout, _k).batch_norm_backward(
            dout, x, save_mean, save_invstd, weight, ctx.training, need_dinp=need_x)
        return (dinp, dweight if need_w else None, dbias if need_b else None,
                None, None, None, None, None)


def _array_or_none(t: Tensor | np.ndarray | None) -> np.ndarray | None:
    if t is None:
        return None
    return t.data if isinstance(t, Tensor) else t


def batch_norm(input: Tensor, running_mean: Tensor | None,  # noqa: A002
               running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over dim 1 of an (N, C), (N, C, L) or (N, C, H, W) input.

    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, with E/Var per channel over the batch
    and spatial dims (biased variance) when `training`, else running_mean/running_var.
    When training with running stats, they are updated in place:
    running = (1 - momentum) * running + momentum * batch_stat (unbiased variance).

    >>> x = nncore.randn(8, 3, 4, 4)
    >>> y = batch_norm(x, None, None, training=True)   # per-channel zero mean, unit variance
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"batch_norm: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of at least 2 dimensions (N, C, ...), "
                         f"got shape {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} should contain {C} elements (the input "
                             f"{tuple(input.shape)} has {C} channels), not shape "
                             f"{tuple(t.shape)}")
    mom = 0.0 if momentum is None else float(momentum)
    return BatchNorm.apply(input, weight, bias, _array_or_none(running_mean),
                           _array_or_none(running_var), bool(training), mom, float(eps))
