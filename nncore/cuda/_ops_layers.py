"""The layer half of nncore.cuda.ops: convolution, pooling, LSTM / GRU sequences (pointwise
kernels + GEMMs), embedding and batch norm (see ops.py)."""
from __future__ import annotations

import numpy as np

from nncore._kernels._checks import (
    check_batch_norm_options,
    check_conv_shapes,
    check_rnn_shapes,
    check_same_dtype,
    check_shape,
)
from nncore._kernels.conv import _padding4, _pair, conv2d_output_size
from nncore._kernels.pool import _pool_geometry, _Shape

from ._ops_base import (
    DeviceArray,
    _dev,
    _ext,
    _index,
    _like,
    _vector,
    add,
    gemm,
    sum_rows,
)

# ------------------------------------------------------------------------ convolution

def _conv_geometry(inp, weight, stride, padding, dilation, groups) -> tuple:
    inp, weight = _dev(inp, "input", 4), _dev(weight, "weight", 4)
    check_same_dtype(input=inp, weight=weight)
    N, C, H, W = inp.shape
    OC, Cg, KH, KW = weight.shape
    G = check_conv_shapes(inp.shape, weight.shape, groups)
    pt, pb, pl, pr = _padding4(padding)
    OH, OW = conv2d_output_size(H, W, KH, KW, stride, (pt, pb, pl, pr), dilation)
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    return (N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G)


def conv2d_forward(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out (N, OC, OH, OW) = conv2d(inp (N, C, H, W), weight (OC, C/groups, KH, KW)) + bias."""
    geom = _conv_geometry(inp, weight, stride, padding, dilation, groups)
    N, OC, OH, OW = geom[0], geom[4], geom[5], geom[6]
    bias = _vector(bias, "bias", OC, inp.dtype)
    out = _like(inp, (N, OC, OH, OW))
    _ext.conv2d_forward(out, inp, weight, bias, geom)
    return out


def conv2d_backward(dout, inp, weight, stride=1, padding=0, dilation=1, groups=1,
                    need_dinp=True, need_dweight=True, need_dbias=True) -> tuple:
    """(dinp, dweight, dbias) of conv2d_forward, None where not requested."""
    geom = _conv_geometry(inp, weight, stride, padding, dilation, groups)
    dout = _dev(dout, "dout", 4)
    check_same_dtype(input=inp, dout=dout)
    out_shape = (geom[0], geom[4], geom[5], geom[6])
    if dout.shape != out_shape:
        raise ValueError(f"conv2d_backward: dout shape {dout.shape} != output shape {out_shape}")
    dinp = _like(inp) if need_dinp else None
    dweight = _like(weight) if need_dweight else None
    dbias = _like(inp, (geom[4],)) if need_dbias else None
    _ext.conv2d_backward(dinp, dweight, dbias, dout, inp, weight, geom)
    return dinp, dweight, dbias


# ---------------------------------------------------------------------------- pooling

def _pool_tuple(g: dict) -> tuple:
    return tuple(int(g[k]) for k in ("P", "H", "W", "OH", "OW", "KH", "KW", "sh", "sw", "ph",
                                     "pw", "dh", "dw", "count_include_pad", "divisor"))


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out (N, C, OH, OW), argmax int64 (N, C, OH, OW)) of 2-D max pooling."""
    x = _dev(x, "input", 4)
    g = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", True)
    shape = x.shape[:2] + (g["OH"], g["OW"])
    out, argmax = _like(x, shape), DeviceArray(shape, np.int64)
    _ext.maxpool2d_forward(out, argmax, x, _pool_tuple(g))
    return out, argmax


def maxpool2d_backward(dout, argmax, input_shape, kernel_size=None, stride=None, padding=0,
                       dilation=1, ceil_mode=False) -> DeviceArray:
    """dinp (input_shape) of max pooling. With the forward's kernel_size (and options) each
    input gathers its gradient in a fixed order; without, dout is scattered with atomics
    (deterministic when windows do not overlap)."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"max_pool2d_backward: input_shape must be 4-D, got {input_shape}")
    dout = _dev(dout, "dout", 4)
    if not isinstance(argmax, DeviceArray) or argmax.dtype != np.int64:
        raise TypeError("max_pool2d_backward: argmax must be an int64 DeviceArray")
    N, C, H, W = input_shape
    if dout.shape[:2] != (N, C) or argmax.shape != dout.shape:
        raise ValueError(f"max_pool2d_backward: dout {dout.shape} / argmax {argmax.shape} do "
                         f"not match input shape {input_shape}")
    if kernel_size is not None:
        g = _pool_geometry(_Shape(input_shape), kernel_size, stride, padding, dilation,
                           ceil_mode, "max_pool2d", True)
        if (g["OH"], g["OW"]) != dout.shape[2:]:
            raise ValueError(f"max_pool2d_backward: dout shape {dout.shape} does not match "
                             f"the window options (output {(g['OH'], g['OW'])})")
    else:
        g = dict(P=N * C, H=H, W=W, OH=dout.shape[2], OW=dout.shape[3], KH=1, KW=1, sh=1,
                 sw=1, ph=0, pw=0, dh=1, dw=1, count_include_pad=1, divisor=0)
    dinp = _like(dout, input_shape)
    _ext.maxpool2d_backward(dinp, dout, argmax, _pool_tuple(g), kernel_size is not None)
    return dinp


def _avg_geometry(shape_src, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override) -> dict:
    g = _pool_geometry(shape_src, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d",
                       False)
    g["count_include_pad"] = bool(count_include_pad)
    if divisor_override is not None:
        if int(divisor_override) <= 0:
            raise ValueError(f"avg_pool2d: divisor must be not zero, got {divisor_override}")
        g["divisor"] = int(divisor_override)
    return g


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None) -> DeviceArray:
    """out (N, C, OH, OW) of 2-D average pooling (PyTorch's divisor rules)."""
    x = _dev(x, "input", 4)
    g = _avg_geometry(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                      divisor_override)
    out = _like(x, x.shape[:2] + (g["OH"], g["OW"]))
    _ext.avgpool2d_forward(out, x, _pool_tuple(g))
    return out


def avgpool2d_backward(dout, input_shape, kernel_size, stride=None, padding=0,
                       ceil_mode=False, count_include_pad=True,
                       divisor_override=None) -> DeviceArray:
    """dinp (input_shape) of avgpool2d_forward with the same options."""
    dout = _dev(dout, "dout", 4)
    input_shape = tuple(int(s) for s in input_shape)
    g = _avg_geometry(_Shape(input_shape), kernel_size, stride, padding, ceil_mode,
                      count_include_pad, divisor_override)
    check_shape(dout, input_shape[:2] + (g["OH"], g["OW"]), "avg_pool2d_backward: dout")
    dinp = _like(dout, input_shape)
    _ext.avgpool2d_backward(dinp, dout, _pool_tuple(g))
    return dinp


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


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """One LSTM layer over x (T, B, I) from h0, c0 (B, H) -> (out (T, B, H), h_n, c_n, cache)."""
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
    cache = LSTMCache(x, h0, w_ih, w_hh, gates, cs, tcs, out)
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

def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """One GRU layer over x (T, B, I) from h0 (B, H) -> (hs, gates, ghs) as the CPU kernel."""
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
    return hs, gates, ghs


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


# ------------------------------------------------------------------------ embedding

def embedding_forward(ids, weight) -> DeviceArray:
    """out (N, D) = weight[ids]; IndexError names the first id outside [0, V)."""
    ids = _index(ids, "ids")
    weight = _dev(weight, "weight", 2)
    V, D = weight.shape
    N = ids.shape[0]
    out = _like(weight, (N, D))
    _ext.embedding_forward(out, ids, weight, N, V, D)
    return out


def embedding_backward(dout, ids, num_embeddings: int, padding_idx: int | None = None,
                       scale_grad_by_freq: bool = False) -> DeviceArray:
    """dweight (V, D): row v sums dout over the positions whose id is v, in input order.

    The positions are grouped on the host (a stable sort of the ids, copied back once): the
    sums then run in the CPU kernel's order, with the same bits, on every run.
    """
    dout = _dev(dout, "dout", 2)
    V, N, D = int(num_embeddings), dout.shape[0], dout.shape[1]
    if V < 0:
        raise ValueError(f"embedding_backward: num_embeddings must be >= 0, got {V}")
    host_ids = ids.numpy() if isinstance(ids, DeviceArray) else np.asarray(ids)
    host_ids = _index(host_ids, "ids").numpy() if host_ids.dtype != np.int64 else host_ids
    if host_ids.ndim != 1 or host_ids.shape[0] != N:
        raise ValueError(f"embedding_backward: dout has {N} rows (shape {dout.shape}) but there "
                         f"are {host_ids.shape} ids")
    pad = -1
    if padding_idx is not None:
        if not 0 <= padding_idx < V:
            raise ValueError(f"embedding_backward: padding_idx {padding_idx} is out of range "
                             f"for a vocabulary of {V}")
        pad = int(padding_idx)
    bad = np.flatnonzero((host_ids < 0) | (host_ids >= V))
    if bad.size:
        raise IndexError(f"embedding: index {int(host_ids[bad[0]])} is out of range for a "
                         f"vocabulary of {V}")
    order = np.argsort(host_ids, kind="stable").astype(np.int64)
    starts = np.zeros(V + 1, np.int64)
    np.cumsum(np.bincount(host_ids, minlength=V), out=starts[1:])
    dweight = _like(dout, (V, D))
    _ext.embedding_backward(dweight, dout, DeviceArray.from_numpy(order),
                            DeviceArray.from_numpy(starts), V, D, pad, bool(scale_grad_by_freq))
    return dweight


# ------------------------------------------------------------------------ batch norm

def _ncs(x: DeviceArray, name: str) -> tuple:
    if x.ndim < 2:
        raise ValueError(f"{name}: expected an input of at least 2 dimensions (N, C, ...), "
                         f"got shape {x.shape}")
    return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))


def batch_norm_forward(inp, weight, bias, running_mean, running_var, training: bool,
                       momentum: float = 0.1, eps: float = 1e-5) -> tuple:
    """(out, save_mean, save_invstd) of batch norm over (N, C, *); see the CPU kernel.

    A training call with running statistics updates them in place; save_* are float64 (C,).
    """
    inp = _dev(inp, "input")
    N, C, S = _ncs(inp, "input")
    check_batch_norm_options(inp.shape, N, S, training, running_mean, running_var, eps)
    weight = _vector(weight, "weight", C, inp.dtype)
    bias = _vector(bias, "bias", C, inp.dtype)
    running_mean = _vector(running_mean, "running_mean", C, inp.dtype)
    running_var = _vector(running_var, "running_var", C, inp.dtype)
    out = _like(inp)
    save_mean = DeviceArray((C,), np.float64)
    save_invstd = DeviceArray((C,), np.float64)
    _ext.batch_norm_forward(out, save_mean, save_invstd, running_mean, running_var, inp,
                            weight, bias, N, C, S, training, running_mean is not None,
                            momentum, eps)
    return out, save_mean, save_invstd


def batch_norm_backward(dout, inp, save_mean, save_invstd, weight, training: bool,
                        need_dinp: bool = True) -> tuple:
    """(dinp or None, dweight, dbias) of `batch_norm_forward`."""
    inp, dout = _dev(inp, "input"), _dev(dout, "dout")
    check_same_dtype(input=inp, dout=dout)
    if dout.shape != inp.shape:
        raise ValueError(f"batch_norm_backward: dout shape {dout.shape} != input shape "
                         f"{inp.shape}")
    N, C, S = _ncs(inp, "input")
    weight = _vector(weight, "weight", C, inp.dtype)
    for name, v in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if not isinstance(v, DeviceArray) or v.dtype != np.float64 or v.shape != (C,):
            raise ValueError(f"batch_norm_backward: {name} must be a float64 DeviceArray of "
                             f"shape ({C},), got {v!r}")
    dinp = _like(inp) if need_dinp else None
    dweight, dbias = _like(inp, (C,)), _like(inp, (C,))
    if N * S == 0:
        for a in (dinp, dweight, dbias):
            if a is not None:
                a.zero_()
        return dinp, dweight, dbias
    _ext.batch_norm_backward(dinp, dweight, dbias, dout, inp, save_mean, save_invstd, weight,
                             N, C, S, training)
    return dinp, dweight, dbias
