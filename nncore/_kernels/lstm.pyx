# distutils: libraries = m
# lstm.pyx: one LSTM layer over a whole sequence (and a single cell step), forward and backward.
#
# Shapes: T time steps, B batch, I input size, H hidden size, G = 4H gate rows in PyTorch's
# order i, f, g, o, K1 = I + H + 1. x (T, B, I); W_ih (G, I); W_hh (G, H); b_ih, b_hh (G,).
#   gates_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
#   i, f, o = sigmoid(.), g = tanh(.);  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
# Layout: inside the kernel the state is feature-major (one row per feature, the batch along
# the row), so that each step is ONE GEMM whose long dimension G is the row count and whose
# batch is the column count: it tiles well for small batches and reads the weights in place.
#   W_cat (G, K1) = [W_ih | W_hh | b_ih + b_hh]
#   xh (K1, (T+1) B): column block t holds [x_t ; h_{t-1} ; 1] (the bias rides on the ones row)
#   gates_t (G, B) = W_cat @ xh[:, block t]         (input projection fused into the step GEMM)
# then one fused pass over the hidden units (rnn_pointwise.h: vector sigmoid/tanh over whole
# gate blocks) writes the activated gates, c_t, tanh(c_t) and h_t (into xh's block t+1).
# Caches for backward: xh, gT (T, G, B) activated gates, cT (T+1, H, B) = [c0, c_1..c_T],
# tcT (T, H, B) = tanh(c_t), W_cat.
# Backward through time: per step a fused pass writes d(pre-activations) into dgT (G, T B) and
# dc_{t-1}; GEMMs W_cat^T @ dgT[:, block t] (W_cat read transposed in place) give dh_{t-1} and
# dx_t. After the loop the weight and bias gradients are GEMMs over the whole sequence,
# straight into their arrays: dW_ih = dgT @ x^T, dW_hh = dgT @ h^T, db = dgT @ 1.
# Layout changes: the forward's wrapper transposes x in; the gate passes write h_t
# batch-major into the output, and in the backward each thread moves its own block of dout_t
# feature-major and of dx_t batch-major inside the step (no whole-array passes).
# OUT buffers are overwritten (=). Threads: GEMMs split M or N (bit-identical for any thread
# count); the gate passes split the hidden units; transposes split row blocks. Every output
# element is computed by one thread in a fixed order: results do not depend on the thread count.
from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy

import numpy as np

from ._checks import (as_float_array, capped_simd_level, check_rnn_shapes, check_same_dtype,
                      check_shape)
from ._parallel import get_num_threads

from ._openmp cimport nncore_omp_barrier, omp_get_num_threads
from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating
from .gemm cimport dgemm, sgemm


include "rnn_common.pxi"
include "lstm_seq.pxi"


# ------------------------------------------------------------------------------ wrappers
def dispatched_simd() -> str:
    """Instruction set the gate nonlinearities dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _check_weights(x, w_ih, w_hh, b_ih, b_hh, gate_mult: int, fn: str):
    """Validate (T, B, I) input and (G, I), (G, H), (G,) parameters; return them contiguous."""
    x = as_float_array(x, f"{fn}: input", 3)
    w_ih = as_float_array(w_ih, f"{fn}: weight_ih", 2)
    w_hh = as_float_array(w_hh, f"{fn}: weight_hh", 2)
    G, _ = check_rnn_shapes(x, w_ih, w_hh, gate_mult, fn)
    arrays = {"input": x, "weight_ih": w_ih, "weight_hh": w_hh}
    biases = []
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None:
            b = as_float_array(b, f"{fn}: {name}", 1)
            check_shape(b, (G,), f"{fn}: {name}")
            arrays[name] = b
        biases.append(b)
    check_same_dtype(**arrays)
    return x, w_ih, w_hh, biases[0], biases[1]


def _state(s, B: int, H: int, dtype, name: str, fn: str) -> np.ndarray:
    s = as_float_array(s, f"{fn}: {name}", 2)
    check_shape(s, (B, H), f"{fn}: {name}")
    if s.dtype != dtype:
        raise TypeError(f"{fn}: {name} is {s.dtype} but input is {dtype}")
    return s


class LSTMCache:
    """What `lstm_forward` leaves for `lstm_backward` (feature-major buffers, see the header)."""

    __slots__ = ("xh", "gT", "cT", "tcT", "w_cat", "T", "B", "I", "H")

    def __init__(self, xh, gT, cT, tcT, w_cat, T, B, I, H):
        self.xh, self.gT, self.cT, self.tcT, self.w_cat = xh, gT, cT, tcT, w_cat
        self.T, self.B, self.I, self.H = T, B, I, H


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, keep_cache=True):
    """Run one LSTM layer over x (T, B, I) from states h0, c0 (B, H).

    Returns (output (T, B, H), h_n (B, H), c_n (B, H), cache); `cache` is what
    `lstm_backward` reads (activated gates, cell states, tanh of them, inputs, weights).
    keep_cache=False (no backward to follow) keeps one step of gates and two of cell states
    instead of the whole sequence's, and returns None for the cache; the outputs are the same
    bits.
    """
    x, w_ih, w_hh, b_ih, b_hh = _check_weights(x, w_ih, w_hh, b_ih, b_hh, 4, "lstm_forward")
    T, B, I = x.shape
    H = w_hh.shape[1]
    G, K1, TB, LX = 4 * H, I + H + 1, T * B, (T + 1) * B
    dt = x.dtype
    h0 = _state(h0, B, H, dt, "h0", "lstm_forward")
    c0 = _state(c0, B, H, dt, "c0", "lstm_forward")
    nt = get_num_threads()
    w_cat = np.empty((G, K1), dt)
    xh = np.empty((K1, LX), dt)
    xh[:I, TB:] = 0
    _transpose_into(xh[I:I + H, :B], h0, 1)
    xh[I + H] = 1
    ring = not keep_cache
    steps = 1 if ring else T     # gate and tanh(c) slots (cT has one more)
    cT = np.empty((steps + 1, H, B), dt)
    _transpose_into(cT[0], c0, 1)
    gT = np.empty((steps, G, B), dt)
    tcT = np.empty((steps, H, B), dt)
    out = np.empty((T, B, H), dt)
    if B > 0:
        _forward(out, xh, gT, cT, tcT, w_cat, x, w_ih, w_hh, b_ih, b_hh, T, B, I, H, ring, nt)
    c_n = np.empty((B, H), dt)
    _transpose_into(c_n, cT[T % 2 if ring else T], 1)
    cache = None if ring else LSTMCache(xh, gT, cT, tcT, w_cat, T, B, I, H)
    return out, out[T - 1].copy(), c_n, cache


def _forward(floating[:, :, ::1] out, floating[:, ::1] xh, floating[:, :, ::1] gT,
             floating[:, :, ::1] cT, floating[:, :, ::1] tcT, floating[:, ::1] w_cat,
             const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
             const floating[:, ::1] w_hh, const floating[::1] b_ih, const floating[::1] b_hh,
             Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint ring, int nt):
    cdef const floating *xp = &x[0, 0, 0] if I > 0 else NULL
    cdef const floating *wi = &w_ih[0, 0] if I > 0 else NULL
    cdef const floating *bi = &b_ih[0] if b_ih is not None else NULL
    cdef const floating *bh = &b_hh[0] if b_hh is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        lstm_forward_seq(&out[0, 0, 0], &xh[0, 0], &gT[0, 0, 0], &cT[0, 0, 0], &tcT[0, 0, 0],
                         &w_cat[0, 0], xp, wi, &w_hh[0, 0], bi, bh, T, B, I, H, ring, nt,
                         level)


def lstm_backward(dout, dh_n, dc_n, cache, need_dx=True, need_dweight=True, need_dbias=True):
    """Backward through time of `lstm_forward`.

    dout (T, B, H) is the gradient of the output sequence, dh_n / dc_n (B, H) of the final
    states, `cache` forward's. Returns (dx, dh0, dc0, dw_ih, dw_hh, db), with None for the
    gradients not requested; db is the gradient of each of b_ih and b_hh.
    """
    fn = "lstm_backward"
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"{fn}: cache must be the LSTMCache returned by lstm_forward, got "
                        f"{type(cache).__name__}")
    T, B, I, H = cache.T, cache.B, cache.I, cache.H
    G, K1, TB, LX = 4 * H, I + H + 1, T * B, (T + 1) * B
    dt = cache.xh.dtype
    dout = as_float_array(dout, f"{fn}: dout", 3)
    check_shape(dout, (T, B, H), f"{fn}: dout")
    dh_n = _state(dh_n, B, H, dt, "dh_n", fn)
    dc_n = _state(dc_n, B, H, dt, "dc_n", fn)
    if dout.dtype != dt:
        raise TypeError(f"{fn}: dout is {dout.dtype} but the forward ran in {dt}")
    nt = get_num_threads()
    dxh = np.empty((I + H, LX), dt)
    _transpose_into(dxh[I:, TB:], dh_n, 1)
    dcT = np.empty((H, B), dt)
    _transpose_into(dcT, dc_n, 1)
    dgT = np.empty((G, TB), dt)
    doutT = np.empty((H, B), dt)
    dx = np.empty((T, B, I), dt) if need_dx else None
    dw_ih = np.empty((G, I), dt) if need_dweight else None
    dw_hh = np.empty((G, H), dt) if need_dweight else None
    db = np.empty(G, dt) if need_dbias else None
    if B > 0:
        _backward(dxh, dx, dcT, dgT, doutT, dw_ih, dw_hh, db, dout, cache.gT, cache.cT,
                  cache.tcT, cache.xh, cache.w_cat, T, B, I, H, nt)
    else:
        dxh.fill(0)
        for grad in (dx, dw_ih, dw_hh, db):
            if grad is not None:
                grad.fill(0)
    dh0 = np.empty((B, H), dt)
    _transpose_into(dh0, dxh[I:, :B], 1)
    dc0 = np.empty((B, H), dt)
    _transpose_into(dc0, dcT, 1)
    return dx, dh0, dc0, dw_ih, dw_hh, db


def _backward(floating[:, ::1] dxh, floating[:, :, ::1] dx, floating[:, ::1] dcT,
              floating[:, ::1] dgT, floating[:, ::1] doutT, floating[:, ::1] dw_ih,
              floating[:, ::1] dw_hh, floating[::1] db, const floating[:, :, ::1] dout,
              const floating[:, :, ::1] gT, const floating[:, :, ::1] cT,
              const floating[:, :, ::1] tcT, const floating[:, ::1] xh,
              const floating[:, ::1] w_cat,
              Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt):
    # (dxh first: it is never None, so it picks the fused specialisation)
    cdef floating *dxp = &dx[0, 0, 0] if dx is not None and I > 0 else NULL
    cdef floating *dwi = &dw_ih[0, 0] if dw_ih is not None and I > 0 else NULL
    cdef floating *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef floating *dbp = &db[0] if db is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        lstm_backward_seq(dxp, &dxh[0, 0], &dcT[0, 0], &dgT[0, 0], &doutT[0, 0], dwi, dwh, dbp,
                          &dout[0, 0, 0], &gT[0, 0, 0], &cT[0, 0, 0], &tcT[0, 0, 0], &xh[0, 0],
                          &w_cat[0, 0], T, B, I, H, nt, level)


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: x (B, I), h, c (B, H) -> (h_new, c_new, cache) (a T = 1 sequence)."""
    x = as_float_array(x, "lstm_cell_forward: input", 2)
    out, h_new, c_new, cache = lstm_forward(x[None], h, c, w_ih, w_hh, b_ih, b_hh)
    return h_new, c_new, cache


def lstm_cell_backward(dh_new, dc_new, cache, need_dx=True, need_dweight=True,
                       need_dbias=True):
    """Backward of `lstm_cell_forward`: dh_new, dc_new (B, H) -> (dx, dh, dc, dw_ih, dw_hh,
    db)."""
    dh_new = as_float_array(dh_new, "lstm_cell_backward: dh_new", 2)
    zeros = np.zeros((1,) + dh_new.shape, dh_new.dtype)
    dx, dh, dc, dw_ih, dw_hh, db = lstm_backward(zeros, dh_new, dc_new, cache, need_dx,
                                                 need_dweight, need_dbias)
    return (dx[0] if dx is not None else None), dh, dc, dw_ih, dw_hh, db
