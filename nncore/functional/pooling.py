"""2-D pooling on the compiled kernels (nncore/_kernels/pool.pyx): max_pool2d, avg_pool2d,
adaptive_avg_pool2d. Inputs are NCHW or unbatched CHW; semantics and errors follow PyTorch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._kernels import pool as _k
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _batched(x: np.ndarray, fn: str) -> tuple[np.ndarray, bool]:
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{fn}: expected 3-D (unbatched) or 4-D (batched) input, got shape "
                         f"{x.shape}")
    return x, False


class MaxPool2d(Function):
    """Max pooling; backward scatters dout to the cached argmax. The int64 indices are also
    appended to `indices_out` (a list) so return_indices needs no second graph output."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel_size: Any, stride: Any, padding: Any,
                dilation: Any, ceil_mode: bool, indices_out: list | None) -> np.ndarray:
        x4, unbatched = _batched(x, "max_pool2d")
        out, arg = _k.maxpool2d_forward(x4, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(arg)
        ctx.x_shape = x4.shape
        ctx.unbatched = unbatched
        if indices_out is not None:
            indices_out.append(arg[0] if unbatched else arg)
        return out[0] if unbatched else out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        (arg,) = ctx.saved_tensors
        if ctx.unbatched:
            dout = dout[None]
        dx = _k.maxpool2d_backward(dout, arg, ctx.x_shape)
        return (dx[0] if ctx.unbatched else dx), None, None, None, None, None, None


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, options: tuple) -> np.ndarray:
        x4, unbatched = _batched(x, "avg_pool2d")
        out = _k.avgpool2d_forward(x4, *options)
        ctx.x_shape = x4.shape
        ctx.options = options
        ctx.unbatched = unbatched
        return out[0] if unbatched else out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        if ctx.unbatched:
            dout = dout[None]
        dx = _k.avgpool2d_backward(dout, ctx.x_shape, *ctx.options)
        return (dx[0] if ctx.unbatched else dx), None


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: np.ndarray, output_size: Any) -> np.ndarray:
        x4, unbatched = _batched(x, "adaptive_avg_pool2d")
        out = _k.adaptive_avgpool2d_forward(x4, output_size)
        ctx.x_shape = x4.shape
        ctx.unbatched = unbatched
        return out[0] if unbatched else out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        if ctx.unbatched:
            dout = dout[None]
        dx = _k.adaptive_avgpool2d_backward(np.ascontiguousarray(dout), ctx.x_shape)
        return (dx[0] if ctx.unbatched else dx), None


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None,  # noqa: A002
               padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """2-D max pooling, as torch.nn.functional.max_pool2d.

    out[n, c, i, j] = max over the window starting at (i*sh - ph, j*sw - pw) with dilation;
    padding counts as -inf. stride defaults to kernel_size; padding <= half the effective
    kernel. With return_indices, also returns the int64 flat index (ih*W + iw) of each max.

    >>> max_pool2d(nncore.randn(1, 1, 4, 4), 2).shape
    (1, 1, 2, 2)
    """
    stride = kernel_size if stride is None or stride == () or stride == [] else stride
    holder: list | None = [] if return_indices else None
    out = MaxPool2d.apply(input, kernel_size, stride, padding, dilation, bool(ceil_mode),
                          holder)
    return (out, Tensor(holder[0])) if return_indices else out


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None,  # noqa: A002
               padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """2-D average pooling, as torch.nn.functional.avg_pool2d.

    out = sum(window) / divisor, divisor = divisor_override, else the window size clipped to
    the padded input (count_include_pad=True) or to the real input (False).

    >>> avg_pool2d(nncore.ones(1, 1, 4, 4), 2).shape
    (1, 1, 2, 2)
    """
    stride = kernel_size if stride is None or stride == () or stride == [] else stride
    options = (kernel_size, stride, padding, bool(ceil_mode), bool(count_include_pad),
               divisor_override)
    return AvgPool2d.apply(input, options)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:  # noqa: A002
    """Average pooling to a fixed output size, as torch.nn.functional.adaptive_avg_pool2d.

    Output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH)) and the same for
    columns. output_size: int, or a pair whose entries may be None (keep the input size).

    >>> adaptive_avg_pool2d(nncore.randn(2, 3, 7, 9), 1).shape
    (2, 3, 1, 1)
    """
    return AdaptiveAvgPool2d.apply(input, output_size)
