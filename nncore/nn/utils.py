"""nn.utils: gradient clipping (PyTorch's clip_grad_norm_ and clip_grad_value_).

Both work in place on `p.grad` of each parameter that has one; parameters without a gradient
are skipped.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import _device
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for p in parameters:
        g = p.grad
        if g is not None:
            out.append(g if isinstance(g, np.ndarray) else g.data)
    return out


def _norm(g: np.ndarray, p: float) -> float:
    """The p-norm of one gradient, accumulated in float64 where it matters."""
    if not isinstance(g, np.ndarray):
        if p != 2.0:
            raise NotImplementedError(f"clip_grad_norm_ on cuda: norm_type={p} is not "
                                      f"supported on the GPU yet (only 2)")
        return math.sqrt(float(_device.ops_for_device().sum_all(g, square=True).numpy()))
    flat = g.reshape(-1)
    if flat.size == 0:
        return 0.0
    if p == math.inf:
        return float(np.max(np.abs(flat)))
    if p == -math.inf:
        return float(np.min(np.abs(flat)))
    if p == 2.0:
        return math.sqrt(float(np.dot(flat, flat)))
    if p == 1.0:
        return float(np.sum(np.abs(flat), dtype=np.float64))
    if p == 0.0:
        return float(np.count_nonzero(flat))
    return float(np.sum(np.abs(flat).astype(np.float64) ** p) ** (1.0 / p))


def _total(norms: list[float], p: float) -> float:
    if p == math.inf:
        return max(norms)
    if p == -math.inf:
        return min(norms)
    if p == 0.0:
        return float(sum(norms))
    arr = np.asarray(norms, dtype=np.float64)
    return float(np.sum(arr ** p) ** (1.0 / p))


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their joint `norm_type`-norm is at most max_norm.

    total_norm = norm of the per-parameter gradient norms (as if all gradients were one
    vector); every gradient is multiplied by min(1, max_norm / (total_norm + 1e-6)).
    Returns total_norm (before clipping) as a 0-d Tensor of the gradients' dtype.
    `norm_type` may be float('inf'). `foreach` is accepted for API compatibility.

    Example:
        >>> loss.backward()
        >>> nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    """
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.array(0.0, np.float32))
    total = _total([_norm(g, norm_type) for g in grads], norm_type)
    dtype = grads[0].dtype
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = max_norm / (total + 1e-6)
    result = Tensor(_device.move(np.array(total, dtype), _device.device_of(grads[0])))
    if not coef < 1.0 and not math.isnan(coef):
        return result
    for g in grads:
        if isinstance(g, np.ndarray):
            g *= g.dtype.type(coef)
        else:
            _device.ops_for_device().affine(g, coef, out=g)
    return result


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient elementwise into [-clip_value, clip_value], in place (NaN stays
    NaN)."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        if not isinstance(g, np.ndarray):
            raise NotImplementedError("clip_grad_value_ is not supported on the GPU yet")
        np.clip(g, -clip_value, clip_value, out=g)
