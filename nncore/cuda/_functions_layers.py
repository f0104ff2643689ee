"""CUDA implementations of the layer Functions: conv2d, pooling, LSTM/GRU layers, embedding
and batch norm (see _functions.py for the mechanism). Each mirrors its CPU Function's
arguments and saved state, with the kernels of nncore.cuda.ops."""
from __future__ import annotations

from typing import Any

import numpy as np

from nncore.autograd import Context, Function, register_cuda
from nncore.cuda import ops as K
from nncore.functional import conv as FC
from nncore.functional import normalization as FN
from nncore.functional import pooling as FP
from nncore.functional import rnn as FR
from nncore.functional.embedding import Embedding as _CPUEmbedding

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


@register_cuda(FC.Conv2d)
class Conv2d(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, bias: Any, stride: tuple, padding: tuple,
                dilation: tuple, groups: int) -> Any:
        x, unbatched = _batched(x, "conv2d")
        out = K.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        ctx.options = (stride, padding, dilation, groups)
        ctx.unbatched = unbatched
        return _unbatch(out, unbatched)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        x, weight = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad[:3]
        if ctx.unbatched:
            dout = dout.reshape((1,) + tuple(dout.shape))
        dx, dw, db = K.conv2d_backward(dout, x, weight, *ctx.options, need_dinp=nx,
                                       need_dweight=nw, need_dbias=nb)
        return _unbatch(dx, ctx.unbatched), dw, db, None, None, None, None


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


@register_cuda(FR.LSTMLayer)
class LSTMLayer(Function):
    @staticmethod
    def forward(ctx: Context, x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> tuple:
        out, h_n, c_n, cache = K.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(cache)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx: Context, dout, dh_n, dc_n) -> tuple:
        (cache,) = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dc0, dw_ih, dw_hh, db = K.lstm_backward(
            dout, dh_n, dc_n, cache, need_dx=need[0], need_dweight=need[3] or need[4],
            need_dbias=need[5] or need[6])
        return (dx, dh0 if need[1] else None, dc0 if need[2] else None,
                dw_ih if need[3] else None, dw_hh if need[4] else None,
                db if need[5] else None, db if need[6] else None)


@register_cuda(FR.GRULayer)
class GRULayer(Function):
    @staticmethod
    def forward(ctx: Context, x, h0, w_ih, w_hh, b_ih, b_hh) -> tuple:
        hs, gates, ghs = K.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, w_ih, w_hh, hs, gates, ghs)
        T, rest = x.shape[0], tuple(hs.shape[1:])
        step = int(np.prod(rest, dtype=np.int64))
        return hs.view(step, (T,) + rest), hs[T].copy()

    @staticmethod
    def backward(ctx: Context, dout, dh_n) -> tuple:
        x, w_ih, w_hh, hs, gates, ghs = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = K.gru_backward(
            dout, dh_n, gates, ghs, hs, x, w_ih, w_hh, need_dx=need[0],
            need_dweight=need[2] or need[3], need_dbias=need[4] or need[5])
        return (dx, dh0 if need[1] else None, dw_ih if need[2] else None,
                dw_hh if need[3] else None, db_ih if need[4] else None,
                db_hh if need[5] else None)


@register_cuda(_CPUEmbedding)
class Embedding(Function):
    @staticmethod
    def forward(ctx: Context, ids: Any, weight: Any, padding_idx: int | None,
                scale_grad_by_freq: bool) -> Any:
        if isinstance(ids, np.ndarray):
            ids = K.DeviceArray.from_numpy(np.ascontiguousarray(ids, np.int64))
        flat = ids.reshape(-1)
        out = K.embedding_forward(flat, weight)
        ctx.save_for_backward(flat)
        ctx.meta = (weight.shape[0], padding_idx, scale_grad_by_freq)
        return out.reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        (flat,) = ctx.saved_tensors
        if not ctx.needs_input_grad[1]:
            return None, None, None, None
        V, padding_idx, by_freq = ctx.meta
        dweight = K.embedding_backward(dout.reshape(flat.shape[0], dout.shape[-1]), flat, V,
                                       padding_idx, by_freq)
        return None, dweight, None, None


@register_cuda(FN.BatchNorm)
class BatchNorm(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, bias: Any, running_mean: Any,
                running_var: Any, training: bool, momentum: float, eps: float) -> Any:
        out, save_mean, save_invstd = K.batch_norm_forward(
            x, weight, bias, running_mean, running_var, training, momentum, eps)
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        x, weight, save_mean, save_invstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dinp, dweight, dbias = K.batch_norm_backward(
            dout, x, save_mean, save_invstd, weight, ctx.training, need_dinp=need_x)
        return (dinp, dweight if need_w else None, dbias if need_b else None,
                None, None, None, None, None)
