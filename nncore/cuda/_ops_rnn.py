"""The recurrent part of nncore.cuda.ops: LSTM and GRU sequences and cells (fused pointwise
gate kernels + GEMMs; see ops.py)."""
from __future__ import annotations

from nncore._kernels._checks import check_rnn_shapes, check_same_dtype, check_shape

from ._ops_base import DeviceArray, _dev, _ext, _like, _vector, add, gemm, sum_rows

# ----------------------------------------------------------------------------- LSTM
# Batch-major on the device: gates (T, B, 4H) = x W_ih^T + (b_ih + b_hh) for all steps in one
# GEMM; per step h_{t-1} W_hh^T is added by a GEMM with beta = 1, then the pointwise kernel
# activates the gates in place and writes c_t, tanh(c_t) and h_t (= out[t]).

def _rnn_inputs(x, w_ih, w_hh, b_ih, b_hh, gate_mult: int, fn: str) -> tuple:
    x = _dev(x, f"{fn}: input", 3)
    w_ih = _dev(w_ih, f"{fn}: weight_ih", 2)
    w_hh = _dev(w_hh, f"{fn}: weight_hh", 2)
    G, _ = check_rnn_shapes(x, w_ih, w_hh, gate_mult, fn)
    check_same_dtype(input=x, weight_ih=w_ih, weight_hh=w_hh)
    b_ih = _vector(b_ih, f"{fn}: bias_ih", G, x.dtype)
    b_hh = _vector(b_hh, f"{fn}: bias_hh", G, x.dtype)
    return x, w_ih, w_hh, b_ih, b_hh


def _state(s, B: int, H: int, dtype, name: str, fn: str) -> DeviceArray:
    s = _dev(s, f"{fn}: {name}", 2)
    check_shape(s, (B, H), f"{fn}: {name}")
    if s.dtype != dtype:
        raise TypeError(f"{fn}: {name} is {s.dtype} but input is {dtype}")
    return s


class LSTMCache:
    """What the CUDA `lstm_forward` leaves for `lstm_backward` (device arrays, batch-major)."""

    __slots__ = ("x", "h0", "w_ih", "w_hh", "gates", "cs", "tcs", "out", "T", "B", "I", "H")

    def __init__(self, x, h0, w_ih, w_hh, gates, cs, tcs, out):
        self.x, self.h0, self.w_ih, self.w_hh = x, h0, w_ih, w_hh
        self.gates, self.cs, self.tcs, self.out = gates, cs, tcs, out
        self.T, self.B, self.I = x.shape
        self.H = w_hh.shape[1]


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, keep_cache=True) -> tuple:
    """One LSTM layer over x (T, B, I) from h0, c0 (B, H) -> (out (T, B, H), h_n, c_n, cache).
    keep_cache=False returns None for the cache (the CPU kernel then keeps only one step's
    buffers; here the buffers are the same, released on return)."""
    fn = "lstm_forward"
    x, w_ih, w_hh, b_ih, b_hh = _rnn_inputs(x, w_ih, w_hh, b_ih, b_hh, 4, fn)
    T, B, I = x.shape
    H = w_hh.shape[1]
    h0 = _state(h0, B, H, x.dtype, "h0", fn)
    c0 = _state(c0, B, H, x.dtype, "c0", fn)
    bias = add(b_ih, b_hh) if b_ih is not None and b_hh is not None else (
        b_ih if b_ih is not None else b_hh)
    gates = _like(x, (T, B, 4 * H))
    gemm(x.reshape(T * B, I), w_ih, gates.reshape(T * B, 4 * H), trans_b=True, bias=bias)
    cs, tcs, out = _like(x, (T + 1, B, H)), _like(x, (T, B, H)), _like(x, (T, B, H))
    cs[0].copy_(c0)
    # The recurrence calls the validated-once kernels directly: per-step Python work is what
    # limits small-batch LSTMs on a GPU.
    gates_t, cs_t, tcs_t, out_t = ([a[t] for t in range(n)] for a, n in
                                   ((gates, T), (cs, T + 1), (tcs, T), (out, T)))
    for t in range(T):
        h_prev = h0 if t == 0 else out_t[t - 1]
        # gates_t += h_prev (B, H) @ w_hh (4H, H)^T
        _ext.gemm(False, True, B, 4 * H, H, 1.0, h_prev, max(H, 1), w_hh, max(H, 1), 1.0,
                  gates_t[t], max(4 * H, 1), None, 0)
        _ext.lstm_pointwise_forward(gates_t[t], cs_t[t], cs_t[t + 1], tcs_t[t], out_t[t], B, H)
    cache = LSTMCache(x, h0, w_ih, w_hh, gates, cs, tcs, out) if keep_cache else None
    return out, out[T - 1].copy(), cs[T].copy(), cache


def lstm_backward(dout, dh_n, dc_n, cache, need_dx=True, need_dweight=True,
                  need_dbias=True) -> tuple:
    """Backward through time -> (dx, dh0, dc0, dw_ih, dw_hh, db), None where not requested."""
    fn = "lstm_backward"
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"{fn}: cache must be the LSTMCache returned by the CUDA lstm_forward, "
                        f"got {type(cache).__name__}")
    T, B, I, H = cache.T, cache.B, cache.I, cache.H
    dt = cache.x.dtype
    dout = _dev(dout, f"{fn}: dout", 3, dtype=dt)
    check_shape(dout, (T, B, H), f"{fn}: dout")
    dh = _state(dh_n, B, H, dt, "dh_n", fn).copy()
    dc = _state(dc_n, B, H, dt, "dc_n", fn).copy()
    dgates = _like(cache.x, (T, B, 4 * H))
    w_hh = cache.w_hh
    for t in range(T - 1, -1, -1):
        dgates_t = dgates[t]
        _ext.lstm_pointwise_backward(dgates_t, dc, dh, dout[t], cache.gates[t], cache.cs[t],
                                     cache.tcs[t], B, H)
        # dh_{t-1} = dgates_t (B, 4H) @ W_hh (4H, H)
        _ext.gemm(False, False, B, H, 4 * H, 1.0, dgates_t, max(4 * H, 1), w_hh, max(H, 1),
                  0.0, dh, max(H, 1), None, 0)
    dg2 = dgates.reshape(T * B, 4 * H)
    dx = gemm(dg2, cache.w_ih).reshape(T, B, I) if need_dx else None
    dw_ih = dw_hh = db = None
    if need_dweight:
        dw_ih = gemm(dg2, cache.x.reshape(T * B, I), trans_a=True)
        h_prev = _like(cache.x, (T, B, H))                  # [h0, h_1 .. h_{T-1}]
        h_prev[0].copy_(cache.h0)
        if T > 1:
            h_prev.view(B * H, (T - 1, B, H)).copy_(cache.out.view(0, (T - 1, B, H)))
        dw_hh = gemm(dg2, h_prev.reshape(T * B, H), trans_a=True)
    if need_dbias:
        db = sum_rows(dg2)
    return dx, dh, dc, dw_ih, dw_hh, db


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """One LSTM step: x (B, I), h, c (B, H) -> (h_new, c_new, cache) (a T = 1 sequence)."""
    x = _dev(x, "lstm_cell_forward: input", 2)
    _, h_new, c_new, cache = lstm_forward(x.reshape(1, *x.shape), h, c, w_ih, w_hh, b_ih, b_hh)
    return h_new, c_new, cache


def lstm_cell_backward(dh_new, dc_new, cache, need_dx=True, need_dweight=True,
                       need_dbias=True) -> tuple:
    """Backward of `lstm_cell_forward` -> (dx, dh, dc, dw_ih, dw_hh, db)."""
    dh_new = _dev(dh_new, "lstm_cell_backward: dh_new", 2)
    zeros = DeviceArray.zeros((1,) + dh_new.shape, dh_new.dtype)
    dx, dh, dc, dw_ih, dw_hh, db = lstm_backward(zeros, dh_new, dc_new, cache, need_dx,
                                                 need_dweight, need_dbias)
    return (dx[0] if dx is not None else None), dh, dc, dw_ih, dw_hh, db


# ------------------------------------------------------------------------------ GRU
# Same caches as the CPU gru_forward: hs (T+1, B, H) = [h0, h_1..h_T], gates (T, B, 3H)
# activated r, z, n, ghs (T, B, 3H) = h_{t-1} W_hh^T + b_hh.

def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, keep_cache=True) -> tuple:
    """One GRU layer over x (T, B, I) from h0 (B, H) -> (hs, gates, ghs) as the CPU kernel
    (ghs None when keep_cache is False)."""
    fn = "gru_forward"
    x, w_ih, w_hh, b_ih, b_hh = _rnn_inputs(x, w_ih, w_hh, b_ih, b_hh, 3, fn)
    T, B, I = x.shape
    H = w_hh.shape[1]
    h0 = _state(h0, B, H, x.dtype, "h0", fn)
    gates, ghs, hs = _like(x, (T, B, 3 * H)), _like(x, (T, B, 3 * H)), _like(x, (T + 1, B, H))
    gemm(x.reshape(T * B, I), w_ih, gates.reshape(T * B, 3 * H), trans_b=True, bias=b_ih)
    hs[0].copy_(h0)
    for t in range(T):
        gemm(hs[t], w_hh, ghs[t], trans_b=True, bias=b_hh)
        _ext.gru_pointwise_forward(gates[t], ghs[t], hs[t], hs[t + 1], B, H)
    return hs, gates, ghs if keep_cache else None


def gru_backward(dout, dh_n, gates, ghs, hs, x, w_ih, w_hh, need_dx=True, need_dweight=True,
                 need_dbias=True) -> tuple:
    """Backward through time of `gru_forward` -> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)."""
    fn = "gru_backward"
    x, w_ih, w_hh, _, _ = _rnn_inputs(x, w_ih, w_hh, None, None, 3, fn)
    T, B, I = x.shape
    H = w_hh.shape[1]
    gates = _dev(gates, f"{fn}: gates", 3, dtype=x.dtype)
    check_shape(gates, (T, B, 3 * H), f"{fn}: gates")
    ghs = _dev(ghs, f"{fn}: ghs", 3, dtype=x.dtype)
    check_shape(ghs, (T, B, 3 * H), f"{fn}: ghs")
    dout = _dev(dout, f"{fn}: dout", 3, dtype=x.dtype)
    check_shape(dout, (T, B, H), f"{fn}: dout")
    hs = _dev(hs, f"{fn}: hs", 3, dtype=x.dtype)
    if hs.shape[0] not in (T, T + 1) or hs.shape[1:] != (B, H):
        raise ValueError(f"{fn}: hs must have shape {(T + 1, B, H)} or {(T, B, H)}, got "
                         f"{hs.shape}")
    dh = _state(dh_n, B, H, x.dtype, "dh_n", fn).copy()
    dgi, dgh = _like(x, (T, B, 3 * H)), _like(x, (T, B, 3 * H))
    for t in range(T - 1, -1, -1):
        _ext.gru_pointwise_backward(dgi[t], dgh[t], dh, dout[t], gates[t], ghs[t], hs[t], B, H)
        gemm(dgh[t], w_hh, dh, beta=1.0)                   # dh_{t-1} = dH z + dgh_t @ W_hh
    dgi2, dgh2 = dgi.reshape(T * B, 3 * H), dgh.reshape(T * B, 3 * H)
    dx = gemm(dgi2, w_ih).reshape(T, B, I) if need_dx else None
    dw_ih = dw_hh = db_ih = db_hh = None
    if need_dweight:
        dw_ih = gemm(dgi2, x.reshape(T * B, I), trans_a=True)
        dw_hh = gemm(dgh2, hs.view(0, (T * B, H)), trans_a=True)
    if need_dbias:
        db_ih, db_hh = sum_rows(dgi2), sum_rows(dgh2)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


def gru_cell_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """One GRU step: x (B, I), h (B, H) -> (h_new, gates (B, 3H), gh (B, 3H))."""
    x = _dev(x, "gru_cell_forward: input", 2)
    hs, gates, ghs = gru_forward(x.reshape(1, *x.shape), h, w_ih, w_hh, b_ih, b_hh)
    return hs[1], gates[0], ghs[0]


def gru_cell_backward(dh_new, gates, gh, x, h, w_ih, w_hh, need_dx=True, need_dweight=True,
                      need_dbias=True) -> tuple:
    """Backward of `gru_cell_forward` -> (dx, dh, dw_ih, dw_hh, db_ih, db_hh)."""
    x = _dev(x, "gru_cell_backward: input", 2)
    dh_new = _dev(dh_new, "gru_cell_backward: dh_new", 2)
    zeros = DeviceArray.zeros((1,) + dh_new.shape, dh_new.dtype)

    def one(a):
        return a.reshape(1, *a.shape)

    dx, dh, dw_ih, dw_hh, db_ih, db_hh = gru_backward(
        zeros, dh_new, one(gates), one(gh), one(h), one(x), w_ih, w_hh, need_dx, need_dweight,
        need_dbias)
    return (dx[0] if dx is not None else None), dh, dw_ih, dw_hh, db_ih, db_hh
