"""The one helper that reduces a broadcast gradient back to an input's shape."""
from __future__ import annotations

import numpy as np


def reduce_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched to reach `shape`.

    Example: an input of shape (3, 1) broadcast to (2, 3, 4) gets its gradient summed over
    axis 0 (added) and axis 2 (stretched from 1), giving (3, 1).
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
