# distutils: libraries = m
# lstm.pyx: one LSTM layer over a whole sequence (and a single cell step), forward and backward.
#
# Shapes: T time steps, B batch, I input size, H hidden size, G = 4H gate rows in PyTorch's
# order i, f, g, o. x (T, B, I); W_ih (G, I); W_hh (G, H); b_ih, b_hh (G,).
#   gates_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
#   i, f, o = sigmoid(.), g = tanh(.);  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
# Forward: the input projection of all T steps is ONE GEMM (T*B, I) x (I, G) with both biases
# fused in its epilogue; then per step one GEMM h_{t-1} W_hh^T accumulated (beta = 1) into that
# step's gate slice, and one fused pass over the gates per batch row (rnn_pointwise.h).
# Caches written for backward: hs (T+1, B, H) = [h0, h_1..h_T] (hs[1:] is the layer output),
# cs (T+1, B, H) = [c0, c_1..c_T], tcs (T, B, H) = tanh(c_t), gates (T, B, G) activated.
# Backward through time: per step a fused pass gives d(pre-activations) into dgates (T, B, G)
# and dc_{t-1}, then dh_{t-1} = dgates_t W_hh (one GEMM). After the loop the weight gradients
# are single GEMMs over the whole sequence: dW_ih = dgates^T x, dW_hh = dgates^T hs[:-1],
# db = column sums of dgates, dx = dgates W_ih.
# OUT buffers are overwritten (=). Threads: the GEMMs split M or N (bit-identical for any
# thread count); the gate passes split the batch rows; column sums split the columns. Every
# output element is computed by one thread in a fixed order: results do not depend on the
# thread count.
from cython.parallel cimport prange

import numpy as np

from ._checks import as_float_array, check_same_dtype, check_shape
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating
from .gemm cimport dgemm, sgemm


cdef extern from "rnn_pointwise.h" nogil:
    void nncore_lstm_fwd_row_f32(float *g, const float *c_prev, float *c, float *tc, float *h,
                                 Py_ssize_t H, int level)
    void nncore_lstm_fwd_row_f64(double *g, const double *c_prev, double *c, double *tc,
                                 double *h, Py_ssize_t H, int level)
    void nncore_lstm_bwd_row_f32(float *dg, const float *dh, float *dc, const float *dout,
                                 const float *g, const float *c_prev, const float *tc,
                                 Py_ssize_t H)
    void nncore_lstm_bwd_row_f64(double *dg, const double *dh, double *dc, const double *dout,
                                 const double *g, const double *c_prev, const double *tc,
                                 Py_ssize_t H)

include "rnn_common.pxi"


cdef inline void _fwd_row(floating *g, const floating *c_prev, floating *c, floating *tc,
                          floating *h, Py_ssize_t H, int level) noexcept nogil:
    if floating is float:
        nncore_lstm_fwd_row_f32(g, c_prev, c, tc, h, H, level)
    else:
        nncore_lstm_fwd_row_f64(g, c_prev, c, tc, h, H, level)


cdef inline void _bwd_row(floating *dg, const floating *dh, floating *dc, const floating *dout,
                          const floating *g, const floating *c_prev, const floating *tc,
                          Py_ssize_t H) noexcept nogil:
    if floating is float:
        nncore_lstm_bwd_row_f32(dg, dh, dc, dout, g, c_prev, tc, H)
    else:
        nncore_lstm_bwd_row_f64(dg, dh, dc, dout, g, c_prev, tc, H)


cdef void lstm_forward_seq(floating *hs,               # OUT (T+1, B, H); hs[0] = h0 on entry
                           floating *cs,               # OUT (T+1, B, H); cs[0] = c0 on entry
                           floating *tcs,              # OUT cache (T, B, H)
                           floating *gates,            # OUT cache (T, B, G)
                           const floating *x,          # IN (T, B, I)
                           const floating *w_ih,       # IN (G, I)
                           const floating *whh_t,      # IN (H, G): W_hh transposed
                           const floating *bias,       # IN (G,) b_ih + b_hh, or NULL
                           Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                           int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 4 * H, BH = B * H, t, b
    cdef int row_nt = nt if B * H >= ROWS_PARALLEL_MIN else 1
    cdef floating *gt
    _gemm(False, True, T * B, G, I, x, I, w_ih, I, 0, gates, G, bias, nt)
    for t in range(T):
        gt = gates + t * B * G
        _gemm(False, False, B, G, H, hs + t * BH, H, whh_t, G, 1, gt, G, NULL, nt)
        if row_nt > 1:
            for b in prange(B, schedule='static', num_threads=row_nt):
                _fwd_row(gt + b * G, cs + t * BH + b * H, cs + (t + 1) * BH + b * H,
                         tcs + t * BH + b * H, hs + (t + 1) * BH + b * H, H, level)
        else:
            for b in range(B):
                _fwd_row(gt + b * G, cs + t * BH + b * H, cs + (t + 1) * BH + b * H,
                         tcs + t * BH + b * H, hs + (t + 1) * BH + b * H, H, level)


cdef void lstm_backward_seq(floating *dx,              # OUT (T, B, I) or NULL
                            floating *dh,              # IN dh_n (B, H) -> OUT dh0
                            floating *dc,              # IN dc_n (B, H) -> OUT dc0
                            floating *dw_ih,           # OUT (G, I) or NULL
                            floating *dw_hh,           # OUT (G, H) or NULL
                            floating *db,              # OUT (G,) or NULL
                            floating *dgates,          # SCRATCH (T, B, G)
                            const floating *dout,      # IN (T, B, H) gradient of hs[1:]
                            const floating *gates,     # IN cache (T, B, G)
                            const floating *cs,        # IN (T(+1), B, H): c_{t-1} at cs[t]
                            const floating *tcs,       # IN cache (T, B, H)
                            const floating *hs,        # IN (T(+1), B, H): h_{t-1} at hs[t]
                            const floating *x,         # IN (T, B, I)
                            const floating *w_ih,      # IN (G, I)
                            const floating *w_hh,      # IN (G, H)
                            Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                            int nt) noexcept nogil:
    cdef Py_ssize_t G = 4 * H, BH = B * H, t, b, o
    cdef int row_nt = nt if B * H >= ROWS_PARALLEL_MIN else 1
    for t in range(T - 1, -1, -1):
        if row_nt > 1:
            for b in prange(B, schedule='static', num_threads=row_nt):
                o = t * BH + b * H
                _bwd_row(dgates + (t * B + b) * G, dh + b * H, dc + b * H, dout + o,
                         gates + (t * B + b) * G, cs + o, tcs + o, H)
        else:
            for b in range(B):
                o = t * BH + b * H
                _bwd_row(dgates + (t * B + b) * G, dh + b * H, dc + b * H, dout + o,
                         gates + (t * B + b) * G, cs + o, tcs + o, H)
        _gemm(False, False, B, H, G, dgates + t * B * G, G, w_hh, H, 0, dh, H, NULL, nt)
    if dw_ih != NULL:
        _gemm(True, False, G, I, T * B, dgates, G, x, I, 0, dw_ih, I, NULL, nt)
    if dw_hh != NULL:
        _gemm(True, False, G, H, T * B, dgates, G, hs, H, 0, dw_hh, H, NULL, nt)
    if db != NULL:
        _colsum(db, dgates, T * B, G, nt)
    if dx != NULL:
        _gemm(False, False, T * B, I, G, dgates, G, w_ih, I, 0, dx, I, NULL, nt)


# ------------------------------------------------------------------------------ wrappers

def dispatched_simd() -> str:
    """Instruction set the gate nonlinearities dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _check_weights(x, w_ih, w_hh, b_ih, b_hh, gate_mult: int, fn: str):
    """Validate (T, B, I) input and (G, I), (G, H), (G,) parameters; return them contiguous."""
    x = as_float_array(x, f"{fn}: input", 3)
    w_ih = as_float_array(w_ih, f"{fn}: weight_ih", 2)
    w_hh = as_float_array(w_hh, f"{fn}: weight_hh", 2)
    H = w_hh.shape[1]
    G = gate_mult * H
    if H < 1:
        raise ValueError(f"{fn}: hidden size must be >= 1, got weight_hh of shape {w_hh.shape}")
    check_shape(w_hh, (G, H), f"{fn}: weight_hh")
    if w_ih.shape != (G, x.shape[2]):
        raise ValueError(f"{fn}: weight_ih must have shape {(G, x.shape[2])} for input of shape "
                         f"{x.shape}, got {w_ih.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{fn}: empty sequence: input of shape {x.shape} has 0 time steps")
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


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """Run one LSTM layer over x (T, B, I) from states h0, c0 (B, H).

    Returns (hs, cs, tcs, gates): hs, cs (T+1, B, H) start with h0, c0 (hs[1:] is the output
    sequence, hs[T], cs[T] the final states), tcs = tanh(c_1..T) (T, B, H) and the activated
    gates (T, B, 4H): the caches `lstm_backward` reads.
    """
    x, w_ih, w_hh, b_ih, b_hh = _check_weights(x, w_ih, w_hh, b_ih, b_hh, 4, "lstm_forward")
    T, B, I = x.shape
    H = w_hh.shape[1]
    h0 = _state(h0, B, H, x.dtype, "h0", "lstm_forward")
    c0 = _state(c0, B, H, x.dtype, "c0", "lstm_forward")
    bias = None
    if b_ih is not None and b_hh is not None:
        bias = b_ih + b_hh
    elif b_ih is not None or b_hh is not None:
        bias = (b_ih if b_ih is not None else b_hh).copy()
    whh_t = np.ascontiguousarray(w_hh.T)   # (H, G): GEMM reads its rows in place, no packing
    hs = np.empty((T + 1, B, H), x.dtype)
    cs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    cs[0] = c0
    tcs = np.empty((T, B, H), x.dtype)
    gates = np.empty((T, B, 4 * H), x.dtype)
    if x.dtype == np.float32:
        _forward_f32(hs, cs, tcs, gates, x, w_ih, whh_t, bias, get_num_threads())
    else:
        _forward_f64(hs, cs, tcs, gates, x, w_ih, whh_t, bias, get_num_threads())
    return hs, cs, tcs, gates


def _forward_f32(float[:, :, ::1] hs, float[:, :, ::1] cs, float[:, :, ::1] tcs,
                 float[:, :, ::1] gates, const float[:, :, ::1] x, const float[:, ::1] w_ih,
                 const float[:, ::1] whh_t, const float[::1] bias, int nt):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = hs.shape[2]
    cdef const float *bp = &bias[0] if bias is not None else NULL
    cdef int level = nncore_simd_level()
    if B == 0:
        return
    with nogil:
        lstm_forward_seq(&hs[0, 0, 0], &cs[0, 0, 0], &tcs[0, 0, 0], &gates[0, 0, 0],
                         &x[0, 0, 0] if I > 0 else NULL, &w_ih[0, 0] if I > 0 else NULL,
                         &whh_t[0, 0], bp, T, B, I, H, nt, level)


def _forward_f64(double[:, :, ::1] hs, double[:, :, ::1] cs, double[:, :, ::1] tcs,
                 double[:, :, ::1] gates, const double[:, :, ::1] x, const double[:, ::1] w_ih,
                 const double[:, ::1] whh_t, const double[::1] bias, int nt):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = hs.shape[2]
    cdef const double *bp = &bias[0] if bias is not None else NULL
    cdef int level = nncore_simd_level()
    if B == 0:
        return
    with nogil:
        lstm_forward_seq(&hs[0, 0, 0], &cs[0, 0, 0], &tcs[0, 0, 0], &gates[0, 0, 0],
                         &x[0, 0, 0] if I > 0 else NULL, &w_ih[0, 0] if I > 0 else NULL,
                         &whh_t[0, 0], bp, T, B, I, H, nt, level)


def lstm_backward(dout, dh_n, dc_n, gates, cs, tcs, hs, x, w_ih, w_hh, need_dx=True,
                  need_dweight=True, need_dbias=True):
    """Backward through time of `lstm_forward`.

    dout (T, B, H) is the gradient of the output sequence hs[1:], dh_n / dc_n (B, H) of the
    final states; gates, cs, tcs, hs are forward's caches (cs / hs may also be (T, B, H):
    only the previous states cs[t], hs[t] of each step are read). Returns
    (dx, dh0, dc0, dw_ih, dw_hh, db), with None for the gradients not requested; db is the
    gradient of each of b_ih and b_hh.
    """
    fn = "lstm_backward"
    gates = as_float_array(gates, f"{fn}: gates", 3)
    x, w_ih, w_hh, _, _ = _check_weights(x, w_ih, w_hh, None, None, 4, fn)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    check_shape(gates, (T, B, 4 * H), f"{fn}: gates")
    dout = as_float_array(dout, f"{fn}: dout", 3)
    check_shape(dout, (T, B, H), f"{fn}: dout")
    tcs = as_float_array(tcs, f"{fn}: tcs", 3)
    check_shape(tcs, (T, B, H), f"{fn}: tcs")
    cs = as_float_array(cs, f"{fn}: cs", 3)
    hs = as_float_array(hs, f"{fn}: hs", 3)
    for name, s in (("cs", cs), ("hs", hs)):
        if s.shape[0] not in (T, T + 1) or s.shape[1:] != (B, H):
            raise ValueError(f"{fn}: {name} must have shape {(T + 1, B, H)} or {(T, B, H)}, "
                             f"got {s.shape}")
    check_same_dtype(x=x, gates=gates, dout=dout, tcs=tcs, cs=cs, hs=hs)
    dh = np.array(_state(dh_n, B, H, dt, "dh_n", fn), copy=True)
    dc = np.array(_state(dc_n, B, H, dt, "dc_n", fn), copy=True)
    dx = np.empty((T, B, I), dt) if need_dx else None
    dw_ih = np.empty((4 * H, I), dt) if need_dweight else None
    dw_hh = np.empty((4 * H, H), dt) if need_dweight else None
    db = np.empty(4 * H, dt) if need_dbias else None
    dgates = np.empty((T, B, 4 * H), dt)
    if B == 0 or I == 0:
        return _backward_degenerate(dx, dh, dc, dw_ih, dw_hh, db)
    args = (dx, dh, dc, dw_ih, dw_hh, db, dgates, dout, gates, cs, tcs, hs, x, w_ih, w_hh,
            get_num_threads())
    if dt == np.float32:
        _backward_f32(*args)
    else:
        _backward_f64(*args)
    return dx, dh, dc, dw_ih, dw_hh, db


def _backward_degenerate(dx, dh, dc, dw_ih, dw_hh, db):
    for a in (dx, dw_ih, dw_hh, db):
        if a is not None:
            a.fill(0)
    return dx, dh, dc, dw_ih, dw_hh, db


def _backward_f32(float[:, :, ::1] dx, float[:, ::1] dh, float[:, ::1] dc, float[:, ::1] dw_ih,
                  float[:, ::1] dw_hh, float[::1] db, float[:, :, ::1] dgates,
                  const float[:, :, ::1] dout, const float[:, :, ::1] gates,
                  const float[:, :, ::1] cs, const float[:, :, ::1] tcs,
                  const float[:, :, ::1] hs, const float[:, :, ::1] x,
                  const float[:, ::1] w_ih, const float[:, ::1] w_hh, int nt):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = dh.shape[1]
    cdef float *dxp = &dx[0, 0, 0] if dx is not None else NULL
    cdef float *dwi = &dw_ih[0, 0] if dw_ih is not None else NULL
    cdef float *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef float *dbp = &db[0] if db is not None else NULL
    with nogil:
        lstm_backward_seq(dxp, &dh[0, 0], &dc[0, 0], dwi, dwh, dbp, &dgates[0, 0, 0],
                          &dout[0, 0, 0], &gates[0, 0, 0], &cs[0, 0, 0], &tcs[0, 0, 0],
                          &hs[0, 0, 0], &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], T, B, I, H, nt)


def _backward_f64(double[:, :, ::1] dx, double[:, ::1] dh, double[:, ::1] dc,
                  double[:, ::1] dw_ih, double[:, ::1] dw_hh, double[::1] db,
                  double[:, :, ::1] dgates, const double[:, :, ::1] dout,
                  const double[:, :, ::1] gates, const double[:, :, ::1] cs,
                  const double[:, :, ::1] tcs, const double[:, :, ::1] hs,
                  const double[:, :, ::1] x, const double[:, ::1] w_ih,
                  const double[:, ::1] w_hh, int nt):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = dh.shape[1]
    cdef double *dxp = &dx[0, 0, 0] if dx is not None else NULL
    cdef double *dwi = &dw_ih[0, 0] if dw_ih is not None else NULL
    cdef double *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef double *dbp = &db[0] if db is not None else NULL
    with nogil:
        lstm_backward_seq(dxp, &dh[0, 0], &dc[0, 0], dwi, dwh, dbp, &dgates[0, 0, 0],
                          &dout[0, 0, 0], &gates[0, 0, 0], &cs[0, 0, 0], &tcs[0, 0, 0],
                          &hs[0, 0, 0], &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], T, B, I, H, nt)


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: x (B, I), h, c (B, H) -> (h_new, c_new, gates (B, 4H), tanh_c (B, H))."""
    x = as_float_array(x, "lstm_cell_forward: input", 2)
    hs, cs, tcs, gates = lstm_forward(x[None], h, c, w_ih, w_hh, b_ih, b_hh)
    return hs[1], cs[1], gates[0], tcs[0]


def lstm_cell_backward(dh_new, dc_new, gates, c, tanh_c, x, h, w_ih, w_hh, need_dx=True,
                       need_dweight=True, need_dbias=True):
    """Backward of `lstm_cell_forward`: dh_new, dc_new (B, H), the cache (gates, tanh_c), the
    step's inputs x (B, I), h, c (B, H) -> (dx, dh, dc, dw_ih, dw_hh, db)."""
    x = as_float_array(x, "lstm_cell_backward: input", 2)
    dh_new = as_float_array(dh_new, "lstm_cell_backward: dh_new", 2)
    zeros = np.zeros((1,) + dh_new.shape, dh_new.dtype)
    dx, dh, dc, dw_ih, dw_hh, db = lstm_backward(
        zeros, dh_new, dc_new, np.asarray(gates)[None], np.asarray(c)[None],
        np.asarray(tanh_c)[None], np.asarray(h)[None], x[None], w_ih, w_hh, need_dx,
        need_dweight, need_dbias)
    return (dx[0] if dx is not None else None), dh, dc, dw_ih, dw_hh, db
