"""2-D convolution on the compiled im2col + GEMM kernel (nncore/_kernels/conv.pyx).

`conv2d` mirrors torch.nn.functional.conv2d: NCHW input (or unbatched CHW), weight
(OC, C/groups, KH, KW), optional bias (OC,), int/tuple/"valid"/"same" padding (zeros).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _device
from .._kernels import conv as _k
from .._kernels._checks import int_pair
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["conv2d"]


def _resolve_padding(padding: Any, weight_shape: tuple, stride: tuple,
                     dilation: tuple) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding, PyTorch's rules for "valid" and "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(f"conv2d: invalid padding string {padding!r}, should be one of "
                             "{'valid', 'same'}")
        if stride != (1, 1):
            raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
        pads = []
        for k, d in zip(weight_shape[2:], dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]   # the extra one goes bottom/right
        return pads[0], pads[1], pads[2], pads[3]
    ph, pw = int_pair(padding, "padding", "conv2d")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: negative padding is not supported, got {padding!r}")
    return ph, ph, pw, pw


class Conv2d(Function):
    """out = conv2d(x, weight) + bias; saves x and weight, recomputes im2col in backward."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                stride: tuple, padding: tuple, dilation: tuple, groups: int) -> np.ndarray:
        unbatched = x.ndim == 3
        if unbatched:
            x = x.reshape((1,) + tuple(x.shape))
        out = _device.kernels(x, _k).conv2d_forward(x, weight, bias, stride, padding, dilation,
                                                    groups)
        ctx.save_for_backward(x, weight)
        ctx.options = (stride, padding, dilation, groups)
        ctx.unbatched = unbatched
        return out.reshape(tuple(out.shape[1:])) if unbatched else out

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        x, weight = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        if ctx.unbatched:
            dout = dout.reshape((1,) + tuple(dout.shape))
        dx, dw, db = _device.kernels(dout, _k).conv2d_backward(
            dout, x, weight, *ctx.options, need_dinp=nx, need_dweight=nw, need_dbias=nb)
        if dx is not None and ctx.unbatched:
            dx = dx.reshape(tuple(dx.shape[1:]))
        return dx, dw, db, None, None, None, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,  # noqa: A002
           stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    out[n, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q] *
                      x_pad[n, g*C/G + c, i*sh + p*dh, j*sw + q*dw]   (g = group of o)

    Shapes: input (N, C, H, W) or (C, H, W); weight (OC, C/groups, KH, KW); bias (OC,);
    output (N, OC, OH, OW) with OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1.
    padding: int, (ph, pw), "valid" (0) or "same" (stride 1 only; odd totals pad one more on
    the bottom/right, as PyTorch).

    >>> x = nncore.randn(1, 3, 8, 8); w = nncore.randn(4, 3, 3, 3)
    >>> conv2d(x, w, padding=1).shape
    (1, 4, 8, 8)
    """
    x = input.data if isinstance(input, Tensor) else np.asarray(input)
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if x.ndim not in (3, 4):
        raise ValueError(f"conv2d: expected 3-D (unbatched) or 4-D (batched) input, got input "
                         f"of shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (OC, C/groups, KH, KW), got shape "
                         f"{w.shape}")
    s = int_pair(stride, "stride", "conv2d")
    d = int_pair(dilation, "dilation", "conv2d")
    if min(s) <= 0:
        raise ValueError(f"conv2d: non-positive stride is not supported, got {stride!r}")
    if min(d) <= 0:
        raise ValueError(f"conv2d: dilation must be positive, got {dilation!r}")
    p = _resolve_padding(padding, w.shape, s, d)
    return Conv2d.apply(input, weight, bias, s, p, d, int(groups))
