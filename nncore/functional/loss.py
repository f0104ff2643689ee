"""Loss functions: fused softmax cross-entropy and NLL on the compiled kernels (labels
bounds-checked in C), and MSE / binary cross-entropy on NumPy.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _device
from .._kernels import loss as _k
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction "
                         f"(expected one of {_REDUCTIONS})")


def _class_dim_last(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N*d1*..., C) so the kernels see one row per prediction."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx: Context, logits: np.ndarray, target: np.ndarray, reduction: str,
                ignore_index: int, label_smoothing: float) -> np.ndarray:
        loss, probs = _device.kernels(logits, _k).cross_entropy_forward(
            logits, target, reduction, ignore_index, label_smoothing)
        ctx.save_for_backward(probs, target)
        ctx.opts = (reduction, ignore_index, label_smoothing)
        return loss

    @staticmethod
    def backward(ctx: Context, dloss: np.ndarray) -> tuple:
        probs, target = ctx.saved_tensors
        reduction, ignore_index, label_smoothing = ctx.opts
        dlogits = _device.kernels(probs, _k).cross_entropy_backward(
            dloss, probs, target, reduction, ignore_index, label_smoothing)
        return dlogits, None, None, None, None


class NLLLoss(Function):
    @staticmethod
    def forward(ctx: Context, logp: np.ndarray, target: np.ndarray, reduction: str,
                ignore_index: int) -> np.ndarray:
        ctx.save_for_backward(target)
        ctx.meta = (logp.shape, logp.dtype, reduction, ignore_index)
        return _k.nll_loss_forward(logp, target, reduction, ignore_index)

    @staticmethod
    def backward(ctx: Context, dloss: np.ndarray) -> tuple:
        (target,) = ctx.saved_tensors
        (n, c), dtype, reduction, ignore_index = ctx.meta
        dlogp = _k.nll_loss_backward(dloss, target, n, c, reduction, ignore_index, dtype)
        return dlogp, None, None, None


def _prepare_targets(input: Tensor, target: Any, name: str):  # noqa: A002
    """Validate (N, C, ...) input and (N, ...) integer targets; flatten spatial dims."""
    x = input
    t = target.data if isinstance(target, Tensor) else target
    if not hasattr(t, "dtype"):
        t = np.asarray(t)
    if _device.is_device_array(t) and not x.is_cuda:
        raise RuntimeError(f"{name}: Expected all tensors to be on the same device, but the "
                           f"target is on cuda:0 and the input on cpu")
    if x.ndim == 0:
        raise ValueError(f"{name}: input must have at least 1 dimension, got a 0-d tensor")
    if t.dtype.kind == "f":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {t.dtype} "
                        f"(class-probability targets are not supported)")
    if x.ndim == 1:
        expect: tuple = ()
    else:
        expect = (x.shape[0],) + tuple(x.shape[2:])
    if tuple(t.shape) != expect:
        raise ValueError(f"{name}: expected target of shape {expect} for input of shape "
                         f"{tuple(x.shape)}, got {tuple(t.shape)}")
    if x.ndim == 1:
        x = x.reshape(1, -1)
        t = t.reshape(1)
    elif x.ndim > 2:
        from .shape import permute

        dims = (0,) + tuple(range(2, x.ndim)) + (1,)
        x = permute(x, dims).reshape(-1, x.shape[1])
        t = t.reshape(-1)
    return x, t, expect


def _finish(loss: Tensor, reduction: str, spatial_shape: tuple) -> Tensor:
    if reduction == "none":
        return loss.reshape(spatial_shape)
    return loss


def cross_entropy(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy between logits (N, C) or (N, C, d...) and class indices.

    loss_i = -(1 - eps) * log p[i, t_i] - eps / C * sum_c log p[i, c]; "mean" divides by the
    number of targets that are not `ignore_index`. Labels outside [0, C) raise IndexError.
    """
    _check_reduction(reduction)
    if weight is not None:
        raise NotImplementedError("cross_entropy: per-class `weight` is not supported yet")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    x, t, spatial = _prepare_targets(input, target, "cross_entropy")
    loss = CrossEntropy.apply(x, t, reduction, int(ignore_index), float(label_smoothing))
    return _finish(loss, reduction, spatial)


def nll_loss(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) at the target classes."""
    _check_reduction(reduction)
    if weight is not None:
        raise NotImplementedError("nll_loss: per-class `weight` is not supported yet")
    x, t, spatial = _prepare_targets(input, target, "nll_loss")
    loss = NLLLoss.apply(x, t, reduction, int(ignore_index))
    return _finish(loss, reduction, spatial)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_same_shape(input: Tensor, target: Tensor, name: str) -> None:  # noqa: A002
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as "
                         f"input size {tuple(input.shape)}")


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error: reduce((input - target) ** 2)."""
    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(target)
    _check_same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) with each log clamped at -100, as PyTorch."""
    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(target)
    _check_same_shape(input, target, "binary_cross_entropy")
    p = input.data
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 "
                         "and 1")
    log_p = input.log().clamp(min=-100.0)
    log_1mp = (1.0 - input).log().clamp(min=-100.0)
    loss = -(target * log_p + (1.0 - target) * log_1mp)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class BCEWithLogits(Function):
    """Elementwise (1 - t) x + lw * softplus(-x), lw = 1 + (pos_weight - 1) t; stable for all x."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, t: np.ndarray, pos_weight: Any) -> np.ndarray:
        softplus_neg = np.logaddexp(0, -x).astype(x.dtype, copy=False)
        lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
        ctx.save_for_backward(x, t, softplus_neg, lw, pos_weight)
        return (1 - t) * x + lw * softplus_neg

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        x, t, softplus_neg, lw, pos_weight = ctx.saved_tensors
        _, nt, _ = ctx.needs_input_grad
        sig_neg = np.exp(-softplus_neg - x)          # sigmoid(-x) = exp(-softplus(x))
        dx = dout * ((1 - t) - lw * sig_neg)
        dt = None
        if nt:
            pw = 1 if pos_weight is None else pos_weight
            dt = dout * (-x + (pw - 1) * softplus_neg)
        return dx.astype(x.dtype, copy=False), dt, None


def binary_cross_entropy_with_logits(input: Tensor, target: Any,  # noqa: A002
                                     weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable op:
    loss = (1 - t) x + (1 + (pos_weight - 1) t) * log(1 + exp(-x))."""
    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(target)
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    pw = None if pos_weight is None else np.asarray(
        pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, input.dtype)
    loss = BCEWithLogits.apply(input, target, pw)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
