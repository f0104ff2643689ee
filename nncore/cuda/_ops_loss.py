"""The loss part of nncore.cuda.ops: fused softmax cross-entropy forward and backward, with the
label check on the host for NumPy labels and on the device otherwise (see ops.py)."""
from __future__ import annotations

from nncore._kernels._checks import check_shape

from ._ops_base import DeviceArray, _checked_index, _dev, _ext, _like

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


# -------------------------------------------------------------------------------- loss

def _ce_options(reduction, label_smoothing, fn: str) -> tuple:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _REDUCTIONS[reduction], eps


def _ce_target(target, N: int, C: int, ignore_index: int, fn: str) -> tuple:
    """(device target, host_count) for the kernels: see _checked_index."""
    if getattr(target, "shape", (N,))[:1] != (N,):
        raise ValueError(f"{fn}: target has shape {target.shape} but there are {N} rows "
                         f"(shape {(N, C)})")
    return _checked_index(target, "target", C, f"{fn}: target", ignore_index)


def cross_entropy_forward(logits, target, reduction: str = "mean", ignore_index: int = -100,
                          label_smoothing: float = 0.0) -> tuple:
    """(loss, probs) of fused log-softmax + NLL; loss is 0-d ("mean"/"sum") or (N,).

    Raises IndexError naming the first target outside [0, C) that is not ignore_index.
    """
    fn = "cross_entropy"
    logits = _dev(logits, "logits", 2)
    red, eps = _ce_options(reduction, label_smoothing, fn)
    N, C = logits.shape
    if C == 0:
        raise ValueError(f"{fn}: logits must have at least one class, got shape {logits.shape}")
    target, host_count = _ce_target(target, N, C, ignore_index, fn)
    probs = _like(logits)
    loss = _like(logits, (N,) if red == 0 else ())
    _ext.cross_entropy_forward(probs, loss, logits, target, N, C, ignore_index, eps, red,
                               host_count)
    return loss, probs


def cross_entropy_backward(dloss, probs, target, reduction: str = "mean",
                           ignore_index: int = -100, label_smoothing: float = 0.0):
    """dlogits (N, C) = g_i (probs - (1 - eps) onehot - eps / C), 0 on ignored rows.

    dloss: a number or a 1-element DeviceArray for a reduced loss, (N,) for "none".
    """
    fn = "cross_entropy"
    probs = _dev(probs, "probs", 2)
    red, eps = _ce_options(reduction, label_smoothing, fn)
    N, C = probs.shape
    target, host_count = _ce_target(target, N, C, ignore_index, fn)
    scale = 1.0
    if isinstance(dloss, DeviceArray):
        dloss = _dev(dloss, "dloss", dtype=probs.dtype)
        if red == 0:
            check_shape(dloss, (N,), "dloss")
        elif dloss.size != 1:
            raise ValueError(f"{fn}: dloss must be a scalar for a reduced loss, got shape "
                             f"{dloss.shape}")
    elif red == 0:
        raise TypeError(f"{fn}: dloss must be a DeviceArray of shape {(N,)} for reduction "
                        f"'none', got {type(dloss).__name__}")
    else:
        scale, dloss = float(dloss), None
    dlogits = _like(probs)
    _ext.cross_entropy_backward(dlogits, probs, target, dloss, scale, N, C, ignore_index, eps,
                                red, host_count)
    return dlogits
