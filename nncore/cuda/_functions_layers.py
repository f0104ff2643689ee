"""CUDA implementations of the layer Functions whose CPU code is NumPy-specific: pooling and
the GRU layer (see _functions.py for the mechanism; conv2d, batch norm, embedding and the LSTM
layer run their CPU Function with the CUDA kernels). Each mirrors its CPU Function's
arguments and saved state, with the kernels of nncore.cuda.ops."""
from __future__ import annotations

from typing import Any

import numpy as np

from nncore._device_dispatch import register_cuda
from nncore.autograd import Context, Function
from nncore.cuda import ops as K
from nncore.functional import pooling as FP
from nncore.functional import rnn as FR

from ._functions import unsupported


def _batched(x: Any, fn: str) -> tuple:
    """(4-D view of x, whether x was unbatched 3-D)."""
    if x.ndim == 3:
        return x.reshape((1,) + tuple(x.shape)), True
    if x.ndim != 4:
        raise ValueError(f"{fn}: expected 3-D (unbatched) or 4-D (batched) input, got shape "
                         f"{tuple(x.shape)}")
    return x, False


def _unbatch(a: Any, unbatched: bool) -> Any:
    return a.reshape(tuple(a.shape[1:])) if unbatched and a is not None else a


@register_cuda(FP.MaxPool2d)
class MaxPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, kernel_size: Any, stride: Any, padding: Any,
                dilation: Any, ceil_mode: bool, indices_out: list | None) -> Any:
        x4, unbatched = _batched(x, "max_pool2d")
        window = (kernel_size, stride, padding, dilation, ceil_mode)
        out, arg = K.maxpool2d_forward(x4, *window)
        ctx.save_for_backward(arg)
        ctx.meta = (x4.shape, window, unbatched)
        if indices_out is not None:
            indices_out.append(_unbatch(arg, unbatched))
        return _unbatch(out, unbatched)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        (arg,) = ctx.saved_tensors
        x_shape, window, unbatched = ctx.meta
        if unbatched:
            dout = dout.reshape((1,) + tuple(dout.shape))
        dx = K.maxpool2d_backward(dout, arg, x_shape, *window)   # deterministic gather
        return _unbatch(dx, unbatched), None, None, None, None, None, None


def _avg_forward(ctx: Context, x: Any, options: tuple, fn: str) -> Any:
    x4, unbatched = _batched(x, fn)
    ctx.meta = (x4.shape, options, unbatched)
    return _unbatch(K.avgpool2d_forward(x4, *options), unbatched)


def _avg_backward(ctx: Context, dout: Any) -> Any:
    x_shape, options, unbatched = ctx.meta
    if unbatched:
        dout = dout.reshape((1,) + tuple(dout.shape))
    return _unbatch(K.avgpool2d_backward(dout, x_shape, *options), unbatched)


@register_cuda(FP.AvgPool2d)
class AvgPool2d(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, options: tuple) -> Any:
        return _avg_forward(ctx, x, options, "avg_pool2d")

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _avg_backward(ctx, dout), None


@register_cuda(FP.AdaptiveAvgPool2d)
class AdaptiveAvgPool2d(Function):
    """Output sizes that divide the input (global pooling included): plain average pooling
    with kernel = stride = input / output, which is what the adaptive windows are then."""

    @staticmethod
    def forward(ctx: Context, x: Any, output_size: Any) -> Any:
        H, W = x.shape[-2:]
        oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
        oh, ow = H if oh is None else oh, W if ow is None else ow
        if oh <= 0 or ow <= 0 or H % oh or W % ow:
            raise unsupported("adaptive_avg_pool2d", f"output size {(oh, ow)} that does not "
                              f"divide the input size {(H, W)}")
        kernel = (H // oh, W // ow)
        return _avg_forward(ctx, x, (kernel, kernel, 0, False, True, None),
                            "adaptive_avg_pool2d")

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _avg_backward(ctx, dout), None


@register_cuda(FR.GRULayer)
class GRULayer(FR.GRULayer):
    """The CPU layer's backward (device-neutral); the forward slices hs with device views."""

    @staticmethod
    def forward(ctx: Context, x, h0, w_ih, w_hh, b_ih, b_hh) -> tuple:
        hs, gates, ghs = K.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, w_ih, w_hh, hs, gates, ghs)
        T, rest = x.shape[0], tuple(hs.shape[1:])
        step = int(np.prod(rest, dtype=np.int64))
        return hs.view(step, (T,) + rest), hs[T].copy()
