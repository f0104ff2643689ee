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

from ._checks import as_float_array, check_rnn_shapes, check_same_dtype, check_shape
from ._parallel import get_num_threads

from ._openmp cimport nncore_omp_barrier, omp_get_num_threads
from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating
from .gemm cimport dgemm, sgemm


cdef enum:
    UNIT_CHUNK = 64   # hidden units (and dx rows) per GEMM call in the sequence loops


cdef extern from "rnn_pointwise.h" nogil:
    void nncore_lstm_fwd_f32(float *gi, float *gf, float *gg, float *go, const float *c_prev,
                             float *c, float *tc, float *h, Py_ssize_t ldh, float *hb,
                             Py_ssize_t ldhb, Py_ssize_t rows, Py_ssize_t n, int level)
    void nncore_lstm_fwd_f64(double *gi, double *gf, double *gg, double *go,
                             const double *c_prev, double *c, double *tc, double *h,
                             Py_ssize_t ldh, double *hb, Py_ssize_t ldhb, Py_ssize_t rows,
                             Py_ssize_t n, int level)
    void nncore_lstm_bwd_f32(float *di, float *df, float *dg, float *d_o, Py_ssize_t ld_dg,
                             const float *dh, Py_ssize_t ld_dh, float *dc, const float *dout,
                             const float *gi, const float *gf, const float *gg,
                             const float *go, const float *c_prev, const float *tc,
                             Py_ssize_t rows, Py_ssize_t n, int level)
    void nncore_lstm_bwd_f64(double *di, double *df, double *dg, double *d_o, Py_ssize_t ld_dg,
                             const double *dh, Py_ssize_t ld_dh, double *dc,
                             const double *dout, const double *gi, const double *gf,
                             const double *gg, const double *go, const double *c_prev,
                             const double *tc, Py_ssize_t rows, Py_ssize_t n, int level)

include "rnn_common.pxi"



cdef inline void _fwd_units(floating *gT, floating *cT, floating *tcT, floating *xh,
                            floating *out, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t t,
                            Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                            int level) noexcept nogil:
    """Gate pass of hidden units [j0, j1) at step t over their B lanes."""
    cdef Py_ssize_t HB = H * B, LX = (T + 1) * B
    cdef floating *g = gT + t * 4 * HB + j0 * B
    cdef floating *c = cT + t * HB + j0 * B
    if j1 <= j0:
        return
    if floating is float:
        nncore_lstm_fwd_f32(g, g + HB, g + 2 * HB, g + 3 * HB, c, c + HB, tcT + t * HB + j0 * B,
                            xh + (I + j0) * LX + (t + 1) * B, LX, out + t * HB + j0, H,
                            j1 - j0, B, level)
    else:
        nncore_lstm_fwd_f64(g, g + HB, g + 2 * HB, g + 3 * HB, c, c + HB, tcT + t * HB + j0 * B,
                            xh + (I + j0) * LX + (t + 1) * B, LX, out + t * HB + j0, H,
                            j1 - j0, B, level)


cdef inline void _bwd_units(floating *dgT, floating *dxh, floating *dcT, floating *doutT,
                            const floating *dout, const floating *gT, const floating *cT,
                            const floating *tcT, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t t,
                            Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                            int level) noexcept nogil:
    """Backward gate pass of hidden units [j0, j1) at step t over their B lanes. First moves
    their block of dout_t (B, H) feature-major into rows [j0, j1) of the doutT scratch (H, B):
    the thread that reads it writes it, while it is in this core's cache."""
    cdef Py_ssize_t HB = H * B, TB = T * B, LX = (T + 1) * B, o = t * HB + j0 * B
    cdef floating *d = dgT + j0 * TB + t * B
    cdef const floating *g = gT + t * 4 * HB + j0 * B
    if j1 <= j0:
        return
    if floating is float:
        nncore_transpose_f32(doutT + j0 * B, B, dout + t * HB + j0, H, B, j1 - j0, level)
        nncore_lstm_bwd_f32(d, d + H * TB, d + 2 * H * TB, d + 3 * H * TB, TB,
                            dxh + (I + j0) * LX + (t + 1) * B, LX, dcT + j0 * B,
                            doutT + j0 * B, g, g + HB, g + 2 * HB, g + 3 * HB, cT + o,
                            tcT + o, j1 - j0, B, level)
    else:
        nncore_transpose_f64(doutT + j0 * B, B, dout + t * HB + j0, H, B, j1 - j0, level)
        nncore_lstm_bwd_f64(d, d + H * TB, d + 2 * H * TB, d + 3 * H * TB, TB,
                            dxh + (I + j0) * LX + (t + 1) * B, LX, dcT + j0 * B,
                            doutT + j0 * B, g, g + HB, g + 2 * HB, g + 3 * HB, cT + o,
                            tcT + o, j1 - j0, B, level)


cdef inline void _dx_rows(floating *dx, floating *dxh, const floating *dgT,
                          const floating *w_cat, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t t,
                          Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt,
                          int level) noexcept nogil:
    """Rows [r0, r1) of dx_t^T = W_ih^T @ dgates_t (into dxh's column block t), then moved
    batch-major into dx[t, :, r0:r1] by the thread that computed them."""
    cdef Py_ssize_t K1 = I + H + 1, TB = T * B, LX = (T + 1) * B
    if r1 <= r0:
        return
    _gemm(True, False, r1 - r0, B, 4 * H, w_cat + r0, K1, dgT + t * B, TB, 0,
          dxh + r0 * LX + t * B, LX, NULL, nt)
    if floating is float:
        nncore_transpose_f32(dx + t * B * I + r0, I, dxh + r0 * LX + t * B, LX, r1 - r0, B,
                             level)
    else:
        nncore_transpose_f64(dx + t * B * I + r0, I, dxh + r0 * LX + t * B, LX, r1 - r0, B,
                             level)


cdef void _fill_inputs(floating *w_cat, floating *xh, const floating *w_ih,
                       const floating *w_hh, const floating *b_ih, const floating *b_hh,
                       const floating *x, Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t r0,
                       Py_ssize_t r1, Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                       int level) noexcept nogil:
    """W_cat rows of hidden units [u0, u1) (their four gates) = [W_ih | W_hh | b_ih + b_hh],
    and rows [r0, r1) of x (T B, I) moved feature-major into xh's x rows."""
    cdef Py_ssize_t K1 = I + H + 1, LX = (T + 1) * B, q, j, row
    cdef floating *w
    for q in range(4):
        for j in range(u0, u1):
            row = q * H + j
            w = w_cat + row * K1
            memcpy(w, w_ih + row * I, I * sizeof(floating))
            memcpy(w + I, w_hh + row * H, H * sizeof(floating))
            if b_ih != NULL and b_hh != NULL:
                w[I + H] = b_ih[row] + b_hh[row]
            elif b_ih != NULL:
                w[I + H] = b_ih[row]
            elif b_hh != NULL:
                w[I + H] = b_hh[row]
            else:
                w[I + H] = 0
    if r1 > r0 and I > 0:
        if floating is float:
            nncore_transpose_f32(xh + r0, LX, x + r0 * I, I, r1 - r0, I, level)
        else:
            nncore_transpose_f64(xh + r0, LX, x + r0 * I, I, r1 - r0, I, level)


cdef void lstm_forward_seq(floating *out,              # OUT (T, B, H) the layer output
                           floating *xh,               # IN/OUT (K1, (T+1) B), see header
                           floating *gT,               # OUT cache (T, G, B)
                           floating *cT,               # IN/OUT (T+1, H, B): cT[0] = c0^T
                           floating *tcT,              # OUT cache (T, H, B)
                           floating *w_cat,            # OUT cache (G, K1)
                           const floating *x,          # IN (T, B, I)
                           const floating *w_ih,       # IN (G, I)
                           const floating *w_hh,       # IN (G, H)
                           const floating *b_ih,       # IN (G,) or NULL
                           const floating *b_hh,       # IN (G,) or NULL
                           Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                           int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 4 * H, K1 = I + H + 1, TB = T * B, LX = (T + 1) * B, t, q, k, a
    cdef Py_ssize_t k0, k1
    cdef int p, n
    if B * H < ROWS_PARALLEL_MIN:
        _fill_inputs(w_cat, xh, w_ih, w_hh, b_ih, b_hh, x, 0, H, 0, TB, T, B, I, H, level)
        for t in range(T):
            _gemm(False, False, G, B, K1, w_cat, K1, xh + t * B, LX, 0, gT + t * G * B, B,
                  NULL, nt)
            _fwd_units(gT, cT, tcT, xh, out, 0, H, t, T, B, I, H, level)
        return
    # One parallel region for the whole sequence. The hidden units are cut into fixed chunks
    # of UNIT_CHUNK and thread p owns a run of chunks [k0, k1): it builds their W_cat rows,
    # then per step computes their four gate row blocks (one GEMM per chunk and gate on those
    # rows of W_cat) and their gate pass, which needs nothing from the other threads; the next
    # step's GEMM reads all of h_t, hence one barrier per step (and one after x is moved into
    # xh, a share of its rows per thread). The GEMM calls do not depend on the thread count
    # (nor does any sum: the GEMM splits rows, never K), so 1 and n threads give the same bits.
    with parallel(num_threads=nt):
        n = omp_get_num_threads()
        p = threadid()
        k0 = p * _nchunks(H) // n
        k1 = (p + 1) * _nchunks(H) // n
        _fill_inputs(w_cat, xh, w_ih, w_hh, b_ih, b_hh, x, min(H, k0 * UNIT_CHUNK),
                     min(H, k1 * UNIT_CHUNK), p * TB // n, (p + 1) * TB // n, T, B, I, H,
                     level)
        nncore_omp_barrier()
        for t in range(T):
            for k in range(k0, k1):
                a = k * UNIT_CHUNK
                for q in range(4):
                    _gemm(False, False, min(H, a + UNIT_CHUNK) - a, B, K1,
                          w_cat + (q * H + a) * K1, K1, xh + t * B, LX, 0,
                          gT + t * G * B + (q * H + a) * B, B, NULL, 1)
            _fwd_units(gT, cT, tcT, xh, out, min(H, k0 * UNIT_CHUNK),
                       min(H, k1 * UNIT_CHUNK), t, T, B, I, H, level)
            nncore_omp_barrier()


cdef inline Py_ssize_t _nchunks(Py_ssize_t rows) noexcept nogil:
    return (rows + UNIT_CHUNK - 1) // UNIT_CHUNK


cdef void lstm_backward_seq(floating *dx,              # OUT (T, B, I) or NULL (no dx)
                            floating *dxh,             # IN/OUT (I+H, (T+1) B), see wrapper
                            floating *dcT,             # IN dc_n^T (H, B) -> OUT dc0^T
                            floating *dgT,             # SCRATCH (G, T B)
                            floating *doutT,           # SCRATCH (H, B): dout_t^T
                            floating *dw_ih,           # OUT (G, I) or NULL
                            floating *dw_hh,           # OUT (G, H) or NULL
                            floating *db,              # OUT (G,) or NULL
                            const floating *dout,      # IN (T, B, H)
                            const floating *gT,        # IN cache (T, G, B)
                            const floating *cT,        # IN cache (T+1, H, B)
                            const floating *tcT,       # IN cache (T, H, B)
                            const floating *xh,        # IN cache (K1, (T+1) B)
                            const floating *w_cat,     # IN (G, K1), read transposed
                            Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                            int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 4 * H, K1 = I + H + 1, TB = T * B, LX = (T + 1) * B, t
    cdef Py_ssize_t k, a, k0, k1, x0, x1
    cdef int p, n
    if B * H < ROWS_PARALLEL_MIN:
        for t in range(T - 1, -1, -1):
            _bwd_units(dgT, dxh, dcT, doutT, dout, gT, cT, tcT, 0, H, t, T, B, I, H, level)
            # dh_{t-1} (H, B) = W_hh^T @ dgates_t, into block t of dxh; then dx_t
            _gemm(True, False, H, B, G, w_cat + I, K1, dgT + t * B, TB, 0,
                  dxh + I * LX + t * B, LX, NULL, nt)
            if dx != NULL:
                _dx_rows(dx, dxh, dgT, w_cat, 0, I, t, T, B, I, H, nt, level)
    else:
        # One parallel region for the whole sequence, the units cut into the forward's fixed
        # chunks. Thread p owns chunks [k0, k1): their gate pass, then the rows of
        # W_cat^T @ dgates_t that give their dh_{t-1}, which its next gate pass reads; plus
        # the dx_t row chunks [x0, x1). The GEMM reads all of dgates_t, hence one barrier per
        # step, before it. Fixed chunks: the same GEMM calls, so the same bits, at any count.
        with parallel(num_threads=nt):
            n = omp_get_num_threads()
            p = threadid()
            k0 = p * _nchunks(H) // n
            k1 = (p + 1) * _nchunks(H) // n
            x0 = p * _nchunks(I) // n
            x1 = (p + 1) * _nchunks(I) // n
            for t in range(T - 1, -1, -1):
                _bwd_units(dgT, dxh, dcT, doutT, dout, gT, cT, tcT, min(H, k0 * UNIT_CHUNK),
                           min(H, k1 * UNIT_CHUNK), t, T, B, I, H, level)
                nncore_omp_barrier()
                if dx != NULL:
                    for k in range(x0, x1):
                        a = k * UNIT_CHUNK
                        _dx_rows(dx, dxh, dgT, w_cat, a, min(I, a + UNIT_CHUNK), t, T, B, I,
                                 H, 1, level)
                for k in range(k0, k1):
                    a = k * UNIT_CHUNK
                    _gemm(True, False, min(H, a + UNIT_CHUNK) - a, B, G, w_cat + I + a, K1,
                          dgT + t * B, TB, 0, dxh + (I + a) * LX + t * B, LX, NULL, 1)
    # the weight and bias gradients over the whole sequence, straight into their arrays:
    # dW_ih = dgT @ x^T, dW_hh = dgT @ h_{<T}^T, db = dgT @ 1 (xh's ones row)
    if dw_ih != NULL:
        _gemm(False, True, G, I, TB, dgT, TB, xh, LX, 0, dw_ih, I, NULL, nt)
    if dw_hh != NULL:
        _gemm(False, True, G, H, TB, dgT, TB, xh + I * LX, LX, 0, dw_hh, H, NULL, nt)
    if db != NULL:
        _gemm(False, True, G, 1, TB, dgT, TB, xh + (I + H) * LX, LX, 0, db, 1, NULL, nt)


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


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """Run one LSTM layer over x (T, B, I) from states h0, c0 (B, H).

    Returns (output (T, B, H), h_n (B, H), c_n (B, H), cache); `cache` is what
    `lstm_backward` reads (activated gates, cell states, tanh of them, inputs, weights).
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
    cT = np.empty((T + 1, H, B), dt)
    _transpose_into(cT[0], c0, 1)
    gT = np.empty((T, G, B), dt)
    tcT = np.empty((T, H, B), dt)
    out = np.empty((T, B, H), dt)
    if B > 0:
        args = (out, xh, gT, cT, tcT, w_cat, x, w_ih, w_hh, b_ih, b_hh, T, B, I, H, nt)
        if dt == np.float32:
            _forward_f32(*args)
        else:
            _forward_f64(*args)
    c_n = np.empty((B, H), dt)
    _transpose_into(c_n, cT[T], 1)
    return out, out[T - 1].copy(), c_n, LSTMCache(xh, gT, cT, tcT, w_cat, T, B, I, H)


def _forward_f32(float[:, :, ::1] out, float[:, ::1] xh, float[:, :, ::1] gT,
                 float[:, :, ::1] cT, float[:, :, ::1] tcT, float[:, ::1] w_cat,
                 const float[:, :, ::1] x, const float[:, ::1] w_ih, const float[:, ::1] w_hh,
                 const float[::1] b_ih, const float[::1] b_hh,
                 Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt):
    cdef const float *xp = &x[0, 0, 0] if I > 0 else NULL
    cdef const float *wi = &w_ih[0, 0] if I > 0 else NULL
    cdef const float *bi = &b_ih[0] if b_ih is not None else NULL
    cdef const float *bh = &b_hh[0] if b_hh is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        lstm_forward_seq(&out[0, 0, 0], &xh[0, 0], &gT[0, 0, 0], &cT[0, 0, 0], &tcT[0, 0, 0],
                         &w_cat[0, 0], xp, wi, &w_hh[0, 0], bi, bh, T, B, I, H, nt, level)


def _forward_f64(double[:, :, ::1] out, double[:, ::1] xh, double[:, :, ::1] gT,
                 double[:, :, ::1] cT, double[:, :, ::1] tcT, double[:, ::1] w_cat,
                 const double[:, :, ::1] x, const double[:, ::1] w_ih,
                 const double[:, ::1] w_hh, const double[::1] b_ih, const double[::1] b_hh,
                 Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt):
    cdef const double *xp = &x[0, 0, 0] if I > 0 else NULL
    cdef const double *wi = &w_ih[0, 0] if I > 0 else NULL
    cdef const double *bi = &b_ih[0] if b_ih is not None else NULL
    cdef const double *bh = &b_hh[0] if b_hh is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        lstm_forward_seq(&out[0, 0, 0], &xh[0, 0], &gT[0, 0, 0], &cT[0, 0, 0], &tcT[0, 0, 0],
                         &w_cat[0, 0], xp, wi, &w_hh[0, 0], bi, bh, T, B, I, H, nt, level)


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
        args = (dx, dxh, dcT, dgT, doutT, dw_ih, dw_hh, db, dout, cache.gT, cache.cT, cache.tcT,
                cache.xh, cache.w_cat, T, B, I, H, nt)
        if dt == np.float32:
            _backward_f32(*args)
        else:
            _backward_f64(*args)
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


def _backward_f32(float[:, :, ::1] dx, float[:, ::1] dxh, float[:, ::1] dcT, float[:, ::1] dgT,
                  float[:, ::1] doutT, float[:, ::1] dw_ih, float[:, ::1] dw_hh, float[::1] db,
                  const float[:, :, ::1] dout, const float[:, :, ::1] gT,
                  const float[:, :, ::1] cT, const float[:, :, ::1] tcT, const float[:, ::1] xh,
                  const float[:, ::1] w_cat,
                  Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt):
    cdef float *dxp = &dx[0, 0, 0] if dx is not None and I > 0 else NULL
    cdef float *dwi = &dw_ih[0, 0] if dw_ih is not None and I > 0 else NULL
    cdef float *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef float *dbp = &db[0] if db is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        lstm_backward_seq(dxp, &dxh[0, 0], &dcT[0, 0], &dgT[0, 0], &doutT[0, 0], dwi, dwh, dbp,
                          &dout[0, 0, 0], &gT[0, 0, 0], &cT[0, 0, 0], &tcT[0, 0, 0], &xh[0, 0],
                          &w_cat[0, 0], T, B, I, H, nt, level)


def _backward_f64(double[:, :, ::1] dx, double[:, ::1] dxh, double[:, ::1] dcT,
                  double[:, ::1] dgT, double[:, ::1] doutT, double[:, ::1] dw_ih,
                  double[:, ::1] dw_hh, double[::1] db, const double[:, :, ::1] dout,
                  const double[:, :, ::1] gT, const double[:, :, ::1] cT,
                  const double[:, :, ::1] tcT, const double[:, ::1] xh,
                  const double[:, ::1] w_cat,
                  Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, int nt):
    cdef double *dxp = &dx[0, 0, 0] if dx is not None and I > 0 else NULL
    cdef double *dwi = &dw_ih[0, 0] if dw_ih is not None and I > 0 else NULL
    cdef double *dwh = &dw_hh[0, 0] if dw_hh is not None else NULL
    cdef double *dbp = &db[0] if db is not None else NULL
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
