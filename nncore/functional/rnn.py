"""Recurrent layers on the fused LSTM / GRU kernels (nncore/_kernels/lstm.pyx, gru.pyx).

One autograd Function per layer over a whole sequence (input projection for all steps as one
GEMM, backward through time inside the kernel), one per single cell step, and the multi-layer
drivers `lstm` / `gru` that nn.LSTM / nn.GRU call. Gate order and formulas are PyTorch's:
LSTM i, f, g, o; GRU r, z, n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _device
from .._kernels import gru as _gru
from .._kernels import lstm as _lstm
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["lstm_layer", "gru_layer", "lstm_cell", "gru_cell", "lstm", "gru"]


class LSTMLayer(Function):
    """(x (T, B, I), h0, c0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_n, c_n)."""

    @staticmethod
    def forward(ctx: Context, x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> tuple:
        # without a backward to follow (no_grad, or no input needs a gradient) the kernel
        # keeps one step of gates instead of the whole sequence's
        keep = any(ctx.needs_input_grad)
        out, h_n, c_n, cache = _device.kernels(x, _lstm).lstm_forward(
            x, h0, c0, w_ih, w_hh, b_ih, b_hh, keep_cache=keep)
        if keep:
            ctx.save_for_backward(cache)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx: Context, dout, dh_n, dc_n) -> tuple:
        (cache,) = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dc0, dw_ih, dw_hh, db = _device.kernels(dout, _lstm).lstm_backward(
            dout, dh_n, dc_n, cache, need_dx=need[0], need_dweight=need[3] or need[4],
            need_dbias=need[5] or need[6])
        return (dx, dh0 if need[1] else None, dc0 if need[2] else None,
                dw_ih if need[3] else None, dw_hh if need[4] else None,
                db if need[5] else None, db if need[6] else None)


class GRULayer(Function):
    """(x (T, B, I), h0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_n)."""

    @staticmethod
    def forward(ctx: Context, x, h0, w_ih, w_hh, b_ih, b_hh) -> tuple:
        x = np.ascontiguousarray(x)
        keep = any(ctx.needs_input_grad)   # as LSTMLayer: no ghs cache without a backward
        hs, gates, ghs = _gru.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, keep_cache=keep)
        if keep:
            ctx.save_for_backward(x, w_ih, w_hh, hs, gates, ghs)
        return hs[1:], hs[x.shape[0]].copy()

    @staticmethod
    def backward(ctx: Context, dout, dh_n) -> tuple:
        x, w_ih, w_hh, hs, gates, ghs = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _device.kernels(dout, _gru).gru_backward(
            dout, dh_n, gates, ghs, hs, x, w_ih, w_hh, need_dx=need[0],
            need_dweight=need[2] or need[3], need_dbias=need[4] or need[5])
        return (dx, dh0 if need[1] else None, dw_ih if need[2] else None,
                dw_hh if need[3] else None, db_ih if need[4] else None,
                db_hh if need[5] else None)


class LSTMCellFn(Function):
    """One step: (x (B, I), h, c (B, H), W_ih, W_hh, b_ih, b_hh) -> (h', c')."""

    @staticmethod
    def forward(ctx: Context, x, h, c, w_ih, w_hh, b_ih, b_hh) -> tuple:
        h_new, c_new, cache = _lstm.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(cache)
        return h_new, c_new

    @staticmethod
    def backward(ctx: Context, dh_new, dc_new) -> tuple:
        (cache,) = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh, dc, dw_ih, dw_hh, db = _lstm.lstm_cell_backward(
            dh_new, dc_new, cache, need_dx=need[0], need_dweight=need[3] or need[4],
            need_dbias=need[5] or need[6])
        return (dx, dh if need[1] else None, dc if need[2] else None,
                dw_ih if need[3] else None, dw_hh if need[4] else None,
                db if need[5] else None, db if need[6] else None)


class GRUCellFn(Function):
    """One step: (x (B, I), h (B, H), W_ih, W_hh, b_ih, b_hh) -> h'."""

    @staticmethod
    def forward(ctx: Context, x, h, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
        x = np.ascontiguousarray(x)
        h_new, gates, gh = _gru.gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, w_ih, w_hh, gates, gh)
        return h_new

    @staticmethod
    def backward(ctx: Context, dh_new) -> tuple:
        x, h, w_ih, w_hh, gates, gh = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dh, dw_ih, dw_hh, db_ih, db_hh = _gru.gru_cell_backward(
            dh_new, gates, gh, x, h, w_ih, w_hh, need_dx=need[0],
            need_dweight=need[2] or need[3], need_dbias=need[4] or need[5])
        return (dx, dh if need[1] else None, dw_ih if need[2] else None,
                dw_hh if need[3] else None, db_ih if need[4] else None,
                db_hh if need[5] else None)


def lstm_layer(input: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
               bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple:
    """One LSTM layer over a time-major sequence.

    gates = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh split as i, f, g, o;
    c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g); h_t = sigmoid(o) tanh(c_t).
    Shapes: input (T, B, I), h0 / c0 (B, H), weight_ih (4H, I), weight_hh (4H, H), biases
    (4H,). Returns (output (T, B, H), h_n (B, H), c_n (B, H)).

    >>> out, h, c = lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    """
    return LSTMLayer.apply(input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)


def gru_layer(input: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple:
    """One GRU layer over a time-major sequence (PyTorch's formula).

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise,
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h.
    Shapes: input (T, B, I), h0 (B, H), weight_ih (3H, I), weight_hh (3H, H), biases (3H,).
    Returns (output (T, B, H), h_n (B, H)).
    """
    return GRULayer.apply(input, h0, weight_ih, weight_hh, bias_ih, bias_hh)


def lstm_cell(input: Tensor, hx: Tensor, cx: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple:
    """One LSTM step: input (B, I), hx / cx (B, H) -> (h', c') (B, H)."""
    return LSTMCellFn.apply(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh)


def gru_cell(input: Tensor, hx: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step: input (B, I), hx (B, H) -> h' (B, H)."""
    return GRUCellFn.apply(input, hx, weight_ih, weight_hh, bias_ih, bias_hh)


# ------------------------------------------------------------------ multi-layer drivers

def _dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout between layers: nncore.functional.dropout when present."""
    from .. import functional as F

    fn = getattr(F, "dropout", None)
    if callable(fn):
        return fn(x, p=p, training=True)
    from ..random import default_generator
    from .elementwise import mul

    keep = default_generator().random(x.shape) >= p
    return mul(x, Tensor((keep / (1.0 - p)).astype(x.dtype)))


def _stack_states(states: list) -> Tensor:
    from .shape import stack

    return stack(states, 0)


def _run(kind: str, input: Tensor, hx: Any, params: Sequence, num_layers: int,
         dropout: float, training: bool, batch_first: bool, hidden_size: int) -> tuple:
    from .shape import getitem, transpose, unsqueeze

    name = kind.upper()
    if input.ndim not in (2, 3):
        raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D instead")
    batched = input.ndim == 3
    x = input
    if not batched:
        x = unsqueeze(x, 1)
    elif batch_first:
        x = transpose(x, 0, 1)
    T, B, _ = x.shape
    if T == 0:
        raise ValueError(f"{name}: empty sequence: input of shape {tuple(input.shape)} has 0 "
                         f"time steps")
    dtype = params[0].dtype
    if x.dtype != dtype:
        raise TypeError(f"{name}: input must have dtype {dtype} (the parameters' dtype), got "
                        f"{x.dtype}")
    n_states = 2 if kind == "lstm" else 1
    states = _initial_states(kind, hx, batched, num_layers, B, hidden_size, dtype, x.data)
    per_layer = len(params) // num_layers
    finals: list[list] = [[] for _ in range(n_states)]
    for layer in range(num_layers):
        w = list(params[layer * per_layer:(layer + 1) * per_layer])
        if per_layer == 2:
            w += [None, None]
        s = [getitem(st, layer) for st in states]
        if kind == "lstm":
            x, h_n, c_n = LSTMLayer.apply(x, s[0], s[1], *w)
            finals[0].append(h_n)
            finals[1].append(c_n)
        else:
            x, h_n = GRULayer.apply(x, s[0], *w)
            finals[0].append(h_n)
        if dropout > 0 and training and layer < num_layers - 1:
            x = _dropout(x, dropout)
    out_states = [_stack_states(f) for f in finals]
    if not batched:
        from .shape import squeeze

        x = squeeze(x, 1)
        out_states = [squeeze(s, 1) for s in out_states]
    elif batch_first:
        x = transpose(x, 0, 1)
    return x, out_states


def _initial_states(kind: str, hx: Any, batched: bool, num_layers: int, B: int, H: int,
                    dtype: Any, like: Any) -> list:
    from .shape import unsqueeze

    name = kind.upper()
    expected = (num_layers, B, H)
    if hx is None:
        zeros = Tensor(_device.zeros(expected, dtype, like))
        return [zeros, zeros] if kind == "lstm" else [zeros]
    if kind == "lstm":
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
        hx = list(hx)
    else:
        hx = [hx]
    out = []
    for i, s in enumerate(hx):
        if not isinstance(s, Tensor):
            s = Tensor(np.asarray(s))
        want = 2 if not batched else 3
        if s.ndim != want:
            raise ValueError(f"{name}: for {'un' if not batched else ''}batched "
                             f"{3 if batched else 2}-D input, hidden states should be "
                             f"{want}-D but hx[{i}] is {s.ndim}-D with shape {tuple(s.shape)}")
        if not batched:
            s = unsqueeze(s, 1)
        if tuple(s.shape) != expected:
            shown = expected if batched else (num_layers, H)
            got = tuple(s.shape) if batched else (s.shape[0], s.shape[2])
            raise ValueError(f"{name}: Expected hidden[{i}] size {shown}, got {list(got)}")
        if s.dtype != dtype:
            raise TypeError(f"{name}: hidden state {i} must have dtype {dtype}, got {s.dtype}")
        out.append(s)
    return out


def lstm(input: Tensor, hx: tuple | None, params: Sequence, num_layers: int = 1,
         dropout: float = 0.0, training: bool = False, batch_first: bool = False,
         hidden_size: int | None = None) -> tuple:
    """Multi-layer LSTM as nn.LSTM computes it.

    input (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); hx = (h_0, c_0) each
    (num_layers, B, H) (or (num_layers, H) unbatched) or None for zeros; params =
    [W_ih, W_hh, b_ih, b_hh] per layer (or [W_ih, W_hh] without bias). Dropout with
    probability `dropout` is applied to every layer's output but the last when `training`.
    Returns output (T, B, H) (batch-first or unbatched like input) and (h_n, c_n).
    """
    H = hidden_size if hidden_size is not None else params[1].shape[1]
    out, (h_n, c_n) = _run("lstm", input, hx, params, num_layers, dropout, training,
                           batch_first, H)
    return out, (h_n, c_n)


def gru(input: Tensor, hx: Tensor | None, params: Sequence, num_layers: int = 1,
        dropout: float = 0.0, training: bool = False, batch_first: bool = False,
        hidden_size: int | None = None) -> tuple:
    """Multi-layer GRU as nn.GRU computes it (see `lstm`); returns (output, h_n)."""
    H = hidden_size if hidden_size is not None else params[1].shape[1]
    out, (h_n,) = _run("gru", input, hx, params, num_layers, dropout, training, batch_first, H)
    return out, h_n
