"""The optimizer part of nncore.cuda.ops: fused SGD and Adam/AdamW steps, per tensor and over
lists (the CPU kernels' fused-list signature; see ops.py)."""
from __future__ import annotations

import math

from nncore._kernels._checks import check_shape

from ._ops_base import _dev, _ext


def _state(x, param, name: str):
    if x is None:
        return None
    x = _dev(x, name, dtype=param.dtype)
    check_shape(x, param.shape, name)
    return x


def sgd_step(param, grad, momentum_buf, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool, first_step: bool) -> None:
    """One SGD step on `param` in place (torch.optim.SGD order; see nncore._kernels.optim)."""
    param = _dev(param, "param")
    grad = _state(grad, param, "grad")
    momentum_buf = _state(momentum_buf, param, "momentum_buf")
    if momentum != 0 and momentum_buf is None:
        raise ValueError("sgd_step: momentum != 0 needs a momentum_buf")
    _ext.sgd_step(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov,
                  maximize, first_step)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool,
              maximize: bool, decoupled: bool) -> None:
    """One Adam (decoupled=False) / AdamW step in place; step counts from 1 (after increment)."""
    if not (0.0 <= beta1 < 1.0) or not (0.0 <= beta2 < 1.0):
        raise ValueError(f"betas must lie in [0, 1), got ({beta1}, {beta2})")
    if int(step) != step or step < 1:
        raise ValueError(f"step: the step count (after increment) must be an integer >= 1, "
                         f"got {step}")
    param = _dev(param, "param")
    grad = _state(grad, param, "grad")
    exp_avg = _state(exp_avg, param, "exp_avg")
    exp_avg_sq = _state(exp_avg_sq, param, "exp_avg_sq")
    max_exp_avg_sq = _state(max_exp_avg_sq, param, "max_exp_avg_sq") if amsgrad else None
    if exp_avg is None or exp_avg_sq is None:
        raise ValueError("adam_step: exp_avg and exp_avg_sq are required")
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("amsgrad=True needs max_exp_avg_sq buffers, got None")
    step_size = lr / (1.0 - beta1 ** float(step))        # bias corrections in double, as torch
    bc2_sqrt = math.sqrt(1.0 - beta2 ** float(step))
    _ext.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                   weight_decay, amsgrad, maximize, decoupled, step_size, bc2_sqrt)


def sgd_step_multi(params, grads, momentum_bufs, lr: float, momentum: float, dampening: float,
                   weight_decay: float, nesterov: bool, maximize: bool, first_steps) -> None:
    """sgd_step over lists of parameters (the CPU kernel's fused-list signature)."""
    for p, g, buf, first in zip(params, grads, momentum_bufs, first_steps):
        sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first)


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr: float,
                    beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool,
                    maximize: bool, decoupled: bool) -> None:
    """adam_step over lists of parameters (the CPU kernel's fused-list signature)."""
    maxes = max_exp_avg_sqs if max_exp_avg_sqs is not None else [None] * len(params)
    for p, g, m, v, vmax, step in zip(params, grads, exp_avgs, exp_avg_sqs, maxes, steps):
        adam_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                  maximize, decoupled)
