# distutils: libraries = m
# gru.pyx: one GRU layer over a whole sequence (and a single cell step), forward and backward.
#
# Shapes: T time steps, B batch, I input size, H hidden size, G = 3H gate rows in PyTorch's
# order r, z, n. x (T, B, I); W_ih (G, I); W_hh (G, H); b_ih, b_hh (G,).
#   gi_t = x_t W_ih^T + b_ih (all steps: ONE GEMM); gh_t = h_{t-1} W_hh^T + b_hh (per step,
#   bias fused in the GEMM epilogue)
#   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n)
#   h_t = (1 - z) n + z h_{t-1}
# Caches written for backward: hs (T+1, B, H) = [h0, h_1..h_T] (hs[1:] is the layer output),
# gates (T, B, G) = activated r, z, n, ghs (T, B, G) = gh_t (its n part is read by backward).
# Backward through time: per step a fused pass (rnn_pointwise.h) writes the x-side and h-side
# pre-activation gradients dgi, dgh (T, B, G) and dh z, then dh_{t-1} = dh z + dgh_t W_hh (one
# GEMM, beta = 1). After the loop: dW_ih = dgi^T x, dW_hh = dgh^T hs[:-1], db_ih / db_hh the
# column sums of dgi / dgh, dx = dgi W_ih: single GEMMs over the whole sequence.
# OUT buffers are overwritten (=). Threads as in lstm.pyx: GEMMs split M or N, gate passes the
# batch rows, column sums the columns; results do not depend on the thread count.
from cython.parallel cimport prange

import numpy as np

from ._checks import as_float_array, capped_simd_level, check_same_dtype, check_shape
from ._parallel import get_num_threads
from .lstm import _check_weights, _state

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating
from .gemm cimport dgemm, sgemm


cdef extern from "rnn_pointwise.h" nogil:
    void nncore_gru_fwd_row_f32(float *g, const float *gh, const float *h_prev, float *h,
                                Py_ssize_t H, int level)
    void nncore_gru_fwd_row_f64(double *g, const double *gh, const double *h_prev, double *h,
                                Py_ssize_t H, int level)
    void nncore_gru_bwd_row_f32(float *dgi, float *dgh, float *dh, const float *dout,
                                const float *g, const float *gh, const float *h_prev,
                                Py_ssize_t H, int level)
    void nncore_gru_bwd_row_f64(double *dgi, double *dgh, double *dh, const double *dout,
                                const double *g, const double *gh, const double *h_prev,
                                Py_ssize_t H, int level)

include "rnn_common.pxi"


cdef inline void _fwd_row(floating *g, const floating *gh, const floating *h_prev, floating *h,
                          Py_ssize_t H, int level) noexcept nogil:
    if floating is float:
        nncore_gru_fwd_row_f32(g, gh, h_prev, h, H, level)
    else:
        nncore_gru_fwd_row_f64(g, gh, h_prev, h, H, level)


cdef inline void _bwd_row(floating *dgi, floating *dgh, floating *dh, const floating *dout,
                          const floating *g, const floating *gh, const floating *h_prev,
                          Py_ssize_t H, int level) noexcept nogil:
    if floating is float:
        nncore_gru_bwd_row_f32(dgi, dgh, dh, dout, g, gh, h_prev, H, level)
    else:
        nncore_gru_bwd_row_f64(dgi, dgh, dh, dout, g, gh, h_prev, H, level)


cdef void gru_forward_seq(floating *hs,                # OUT (T+1, B, H); hs[0] = h0 on entry
                          floating *gates,             # OUT cache (T, B, G)
                          floating *ghs,               # OUT cache (T, B, G); ring: (1, B, G)
                          const floating *x,           # IN (T, B, I)
                          const floating *w_ih,        # IN (G, I)
                          const floating *whh_t,       # IN (H, G): W_hh transposed
                          const floating *b_ih,        # IN (G,) or NULL
                          const floating *b_hh,        # IN (G,) or NULL
                          Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                          bint ring,                   # keep no ghs cache (inference)
                          int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 3 * H, BH = B * H, t, b
    cdef int row_nt = nt if B * H >= ROWS_PARALLEL_MIN else 1
    cdef floating *gt
    cdef floating *ght
    _gemm(False, True, T * B, G, I, x, I, w_ih, I, 0, gates, G, b_ih, nt)
    for t in range(T):
        gt = gates + t * B * G
        ght = ghs + _slot(t, ring) * B * G
        _gemm(False, False, B, G, H, hs + t * BH, H, whh_t, G, 0, ght, G, b_hh, nt)
        if row_nt > 1:
            for b in prange(B, schedule='static', num_threads=row_nt):
                _fwd_row(gt + b * G, ght + b * G, hs + t * BH + b * H,
                         hs + (t + 1) * BH + b * H, H, level)
        else:
            for b in range(B):
                _fwd_row(gt + b * G, ght + b * G, hs + t * BH + b * H,
                         hs + (t + 1) * BH + b * H, H, level)


cdef void gru_backward_seq(floating *dx,               # OUT (T, B, I) or NULL
                           floating *dh,               # IN dh_n (B, H) -> OUT dh0
                           floating *dw_ih,            # OUT (G, I) or NULL
                           floating *dw_hh,            # OUT (G, H) or NULL
                           floating *db_ih,            # OUT (G,) or NULL
                           floating *db_hh,            # OUT (G,) or NULL
                           floating *dgi,              # SCRATCH (T, B, G)
                           floating *dgh,              # SCRATCH (T, B, G)
                           const floating *dout,       # IN (T, B, H) gradient of hs[1:]
                           const floating *gates,      # IN cache (T, B, G)
                           const floating *ghs,        # IN cache (T, B, G)
                           const floating *hs,         # IN (T(+1), B, H): h_{t-1} at hs[t]
                           const floating *x,          # IN (T, B, I)
                           const floating *w_ih,       # IN (G, I)
                           const floating *w_hh,       # IN (G, H)
                           Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                           int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 3 * H, BH = B * H, t, b, o
    cdef int row_nt = nt if B * H >= ROWS_PARALLEL_MIN else 1
    for t in range(T - 1, -1, -1):
        if row_nt > 1:
            for b in prange(B, schedule='static', num_threads=row_nt):
                o = (t * B + b) * G
                _bwd_row(dgi + o, dgh + o, dh + b * H, dout + t * BH + b * H, gates + o,
                         ghs + o, hs + t * BH + b * H, H, level)
        else:
            for b in range(B):
                o = (t * B + b) * G
                _bwd_row(dgi + o, dgh + o, dh + b * H, dout + t * BH + b * H, gates + o,
                         ghs + o, hs + t * BH + b * H, H, level)
        _gemm(False, False, B, H, G, dgh + t * B * G, G, w_hh, H, 1, dh, H, NULL, nt)
    if dw_ih != NULL:
        _gemm(True, False, G, I, T * B, dgi, G, x, I, 0, dw_ih, I, NULL, nt)
    if dw_hh != NULL:
        _gemm(True, False, G, H, T * B, dgh, G, hs, H, 0, dw_hh, H, NULL, nt)
    if db_ih != NULL:
        _colsum(db_ih, dgi, T * B, G, nt)
    if db_hh != NULL:
        _colsum(db_hh, dgh, T * B, G, nt)
    if dx != NULL:
        _gemm(False, False, T * B, I, G, dgi, G, w_ih, I, 0, dx, I, NULL, nt)


# ------------------------------------------------------------------------------ wrappers

def dispatched_simd() -> str:
    """Instruction set the gate nonlinearities dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, keep_cache=True):
    """Run one GRU layer over x (T, B, I) from h0 (B, H).

    Returns (hs, gates, ghs): hs (T+1, B, H) starts with h0 (hs[1:] is the output sequence,
    hs[T] the final state); gates (T, B, 3H) the activated r, z, n and ghs (T, B, 3H) the
    hidden projections h_{t-1} W_hh^T + b_hh: the caches `gru_backward` reads.
    keep_cache=False (no backward to follow) keeps one step of ghs and returns None for it;
    hs is the same bits.
    """
    x, w_ih, w_hh, b_ih, b_hh = _check_weights(x, w_ih, w_hh, b_ih, b_hh, 3, "gru_forward")
    T, B, I = x.shape
    H = w_hh.shape[1]
    h0 = _state(h0, B, H, x.dtype, "h0", "gru_forward")
    whh_t = np.ascontiguousarray(w_hh.T)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    gates = np.empty((T, B, 3 * H), x.dtype)
    ghs = np.empty((T if keep_cache else 1, B, 3 * H), x.dtype)
    if B > 0:
        _forward(hs, gates, ghs, x, w_ih, whh_t, b_ih, b_hh, not keep_cache,
                 get_num_threads())
    return hs, gates, ghs if keep_cache else None


def _forward(floating[:, :, ::1] hs, floating[:, :, ::1] gates, floating[:, :, ::1] ghs,
             const floating[:, :, ::1] x, const floating[:, ::1] w_ih,
             const floating[:, ::1] whh_t, const floating[::1] b_ih, const floating[::1] b_hh,
             bint ring, int nt):
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = hs.shape[2]
    cdef const floating *bi = &b_ih[0] if b_ih is not None else NULL
    cdef const floating *bh = &b_hh[0] if b_hh is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        gru_forward_seq(&hs[0, 0, 0], &gates[0, 0, 0], &ghs[0, 0, 0],
                        &x[0, 0, 0] if I > 0 else NULL, &w_ih[0, 0] if I > 0 else NULL,
                        &whh_t[0, 0], bi, bh, T, B, I, H, ring, nt, level)


def gru_backward(dout, dh_n, gates, ghs, hs, x, w_ih, w_hh, need_dx=True, need_dweight=True,
                 need_dbias=True):
    """Backward through time of `gru_forward`.

    dout (T, B, H) is the gradient of the output sequence hs[1:], dh_n (B, H) of the final
    state; gates, ghs, hs are forward's caches (hs may also be (T, B, H): only hs[t] = h_{t-1}
    is read). Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh), None for gradients not requested.
    """
    fn = "gru_backward"
    x, w_ih, w_hh, _, _ = _check_weights(x, w_ih, w_hh, None, None, 3, fn)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    gates = as_float_array(gates, f"{fn}: gates", 3)
    check_shape(gates, (T, B, 3 * H), f"{fn}: gates")
    ghs = as_float_array(ghs, f"{fn}: ghs", 3)
    check_shape(ghs, (T, B, 3 * H), f"{fn}: ghs")
    dout = as_float_array(dout, f"{fn}: dout", 3)
    check_shape(dout, (T, B, H), f"{fn}: dout")
    hs = as_float_array(hs, f"{fn}: hs", 3)
    if hs.shape[0] not in (T, T + 1) or hs.shape[1:] != (B, H):
        raise ValueError(f"{fn}: hs must have shape {(T + 1, B, H)} or {(T, B, H)}, got "
                         f"{hs.shape}")
    check_same_dtype(x=x, gates=gates, ghs=ghs, dout=dout, hs=hs)
    dh = np.array(_state(dh_n, B, H, dt, "dh_n", fn), copy=True)
    dx = np.empty((T, B, I), dt) if need_dx else None
    dw_ih = np.empty((3 * H, I), dt) if need_dweight else None
    dw_hh = np.empty((3 * H, H), dt) if need_dweight else None
    db_ih = np.empty(3 * H, dt) if need_dbias else None
    db_hh = np.empty(3 * H, dt) if need_dbias else None
    if B == 0 or I == 0:
        for a in (dx, dw_ih, dw_hh, db_ih, db_hh):
            if a is not None:
                a.fill(0)
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh
    dgi = np.empty((T, B, 3 * H), dt)
    dgh = np.empty((T, B, 3 * H), dt)
    _backward(dh, dx, dw_ih, dw_hh, db_ih, db_hh, dgi, dgh, dout, gates, ghs, hs, x, w_ih, w_hh,
              get_num_threads())
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


def _backward(floating[:, ::1] dh, floating[:, :, ::1] dx, floating[:, ::1] dw_ih,
              floating[:, ::1] dw_hh, floating[::1] db_ih, floating[::1] db_hh,
              floating[:, :, ::1] dgi, floating[:, :, ::1] dgh, const floating[:, :, ::1] dout,
              const floating[:, :, ::1] gates, const floating[:, :, ::1] ghs,
              const floating[:, :, ::1] hs, const floating[:, :, ::1] x,
              const floating[:, ::1] w_ih, const floating[:, ::1] w_hh, int nt):
    # (dh first: it is never None, so it picks the fused specialisation)
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = dh.shape[1]
    cdef floating *dxp = &dx[0, 0, 0] if dx is not None else NULL
    cdef floating *dwi = &dw_ih[0, 0] if dw_ih is not None else NULL
    cdef floating *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef floating *dbi = &db_ih[0] if db_ih is not None else NULL
    cdef floating *dbh = &db_hh[0] if db_hh is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        gru_backward_seq(dxp, &dh[0, 0], dwi, dwh, dbi, dbh, &dgi[0, 0, 0], &dgh[0, 0, 0],
                         &dout[0, 0, 0], &gates[0, 0, 0], &ghs[0, 0, 0], &hs[0, 0, 0],
                         &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], T, B, I, H, nt, level)


def gru_cell_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: x (B, I), h (B, H) -> (h_new, gates (B, 3H), gh (B, 3H))."""
    x = as_float_array(x, "gru_cell_forward: input", 2)
    hs, gates, ghs = gru_forward(x[None], h, w_ih, w_hh, b_ih, b_hh)
    return hs[1], gates[0], ghs[0]


def gru_cell_backward(dh_new, gates, gh, x, h, w_ih, w_hh, need_dx=True, need_dweight=True,
                      need_dbias=True):
    """Backward of `gru_cell_forward`: dh_new (B, H), the cache (gates, gh), the step's inputs
    x (B, I), h (B, H) -> (dx, dh, dw_ih, dw_hh, db_ih, db_hh)."""
    x = as_float_array(x, "gru_cell_backward: input", 2)
    dh_new = as_float_array(dh_new, "gru_cell_backward: dh_new", 2)
    zeros = np.zeros((1,) + dh_new.shape, dh_new.dtype)
    dx, dh, dw_ih, dw_hh, db_ih, db_hh = gru_backward(
        zeros, dh_new, np.asarray(gates)[None], np.asarray(gh)[None], np.asarray(h)[None],
        x[None], w_ih, w_hh, need_dx, need_dweight, need_dbias)
    return (dx[0] if dx is not None else None), dh, dw_ih, dw_hh, db_ih, db_hh
