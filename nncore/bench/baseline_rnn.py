"""The NumPy baseline for the recurrent benchmarks: LSTM and GRU layers step by step.

What a good NumPy programmer writes: the input projection of all T steps as one `@`, a Python
loop over time for the recurrent `@` and the vectorised gate math, backward through time with
the weight gradients as whole-sequence `@`s. float32 in, float32 out. PyTorch's gate order and
formulas (LSTM i, f, g, o; GRU r, z, n with b_hn inside the reset product), weights (G, in).

Shapes: T time, B batch, I input, H hidden; G = 4H (LSTM) or 3H (GRU).
"""
from __future__ import annotations

import numpy as np

__all__ = ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "lstm_forward_backward", "gru_forward_backward"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large |x|
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> tuple:
    """x (T, B, I), h0 / c0 (B, H) -> (out (T, B, H), h_T, c_T, cache)."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    gates = (x.reshape(T * B, -1) @ w_ih.T + (b_ih + b_hh)).reshape(T, B, 4 * H)
    hs = np.empty((T + 1, B, H), x.dtype)
    cs = np.empty((T + 1, B, H), x.dtype)
    tcs = np.empty((T, B, H), x.dtype)
    hs[0], cs[0] = h0, c0
    w_hh_t = np.ascontiguousarray(w_hh.T)
    for t in range(T):
        g = gates[t]
        g += hs[t] @ w_hh_t
        g[:, :2 * H] = _sigmoid(g[:, :2 * H])
        g[:, 2 * H:3 * H] = np.tanh(g[:, 2 * H:3 * H])
        g[:, 3 * H:] = _sigmoid(g[:, 3 * H:])
        cs[t + 1] = g[:, H:2 * H] * cs[t] + g[:, :H] * g[:, 2 * H:3 * H]
        tcs[t] = np.tanh(cs[t + 1])
        hs[t + 1] = g[:, 3 * H:] * tcs[t]
    return hs[1:], hs[T], cs[T], (x, w_ih, w_hh, hs, cs, tcs, gates)


def lstm_backward(dout, dh_n, dc_n, cache) -> tuple:
    """-> (dx, dh0, dc0, dw_ih, dw_hh, db) for the cache of `lstm_forward`."""
    x, w_ih, w_hh, hs, cs, tcs, gates = cache
    T, B, I = x.shape
    H = w_hh.shape[1]
    dgates = np.empty_like(gates)
    dh, dc = dh_n.copy(), dc_n.copy()
    for t in range(T - 1, -1, -1):
        g = gates[t]
        i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        dh = dh + dout[t]
        tc = tcs[t]
        dc = dc + dh * o * (1 - tc * tc)
        d = dgates[t]
        d[:, :H] = dc * gg * i * (1 - i)
        d[:, H:2 * H] = dc * cs[t] * f * (1 - f)
        d[:, 2 * H:3 * H] = dc * i * (1 - gg * gg)
        d[:, 3 * H:] = dh * tc * o * (1 - o)
        dc = dc * f
        dh = d @ w_hh
    dg2 = dgates.reshape(T * B, 4 * H)
    dw_ih = dg2.T @ x.reshape(T * B, I)
    dw_hh = dg2.T @ hs[:T].reshape(T * B, H)
    db = dg2.sum(axis=0)
    dx = (dg2 @ w_ih).reshape(T, B, I)
    return dx, dh, dc, dw_ih, dw_hh, db


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh) -> tuple:
    """x (T, B, I), h0 (B, H) -> (out (T, B, H), h_T, cache)."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    gi = (x.reshape(T * B, -1) @ w_ih.T + b_ih).reshape(T, B, 3 * H)
    ghs = np.empty_like(gi)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    w_hh_t = np.ascontiguousarray(w_hh.T)
    for t in range(T):
        gh = ghs[t]
        np.matmul(hs[t], w_hh_t, out=gh)
        gh += b_hh
        g = gi[t]
        g[:, :2 * H] = _sigmoid(g[:, :2 * H] + gh[:, :2 * H])
        g[:, 2 * H:] = np.tanh(g[:, 2 * H:] + g[:, :H] * gh[:, 2 * H:])
        z, n = g[:, H:2 * H], g[:, 2 * H:]
        hs[t + 1] = n + z * (hs[t] - n)
    return hs[1:], hs[T], (x, w_ih, w_hh, hs, gi, ghs)


def gru_backward(dout, dh_n, cache) -> tuple:
    """-> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh) for the cache of `gru_forward`."""
    x, w_ih, w_hh, hs, gates, ghs = cache
    T, B, I = x.shape
    H = w_hh.shape[1]
    dgi = np.empty_like(gates)
    dgh = np.empty_like(gates)
    dh = dh_n.copy()
    for t in range(T - 1, -1, -1):
        g = gates[t]
        r, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
        dh = dh + dout[t]
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (hs[t] - n) * z * (1 - z)
        dr = dn * ghs[t][:, 2 * H:] * r * (1 - r)
        dgi[t, :, :H], dgi[t, :, H:2 * H], dgi[t, :, 2 * H:] = dr, dz, dn
        dgh[t, :, :H], dgh[t, :, H:2 * H], dgh[t, :, 2 * H:] = dr, dz, dn * r
        dh = dh * z + dgh[t] @ w_hh
    gi2, gh2 = dgi.reshape(T * B, 3 * H), dgh.reshape(T * B, 3 * H)
    dw_ih = gi2.T @ x.reshape(T * B, I)
    dw_hh = gh2.T @ hs[:T].reshape(T * B, H)
    dx = (gi2 @ w_ih).reshape(T, B, I)
    return dx, dh, dw_ih, dw_hh, gi2.sum(axis=0), gh2.sum(axis=0)


def lstm_forward_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, dout) -> tuple:
    out, h, c, cache = lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return lstm_backward(dout, np.zeros_like(h), np.zeros_like(c), cache)


def gru_forward_backward(x, h0, w_ih, w_hh, b_ih, b_hh, dout) -> tuple:
    out, h, cache = gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    return gru_backward(dout, np.zeros_like(h), cache)
