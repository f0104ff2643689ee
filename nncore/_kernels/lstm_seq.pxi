# lstm_seq.pxi: the nogil whole-sequence loops of lstm.pyx (textually included by it, after
# rnn_common.pxi): the per-step helpers (gate passes over a run of hidden units, dx rows, the
# W_cat / xh fill) and lstm_forward_seq / lstm_backward_seq. The layout and the algorithm are
# described in lstm.pyx's header.

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


cdef inline void _fwd_units(floating *gT, floating *cT, floating *tcT, floating *xh,
                            floating *out, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t t,
                            Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint ring,
                            int level) noexcept nogil:
    """Gate pass of hidden units [j0, j1) at step t over their B lanes. ring: no caches
    kept (gT and tcT hold one step, cT two: c_{t-1} in slot t % 2, c_t in the other)."""
    cdef Py_ssize_t HB = H * B, LX = (T + 1) * B, ts = _slot(t, ring)
    cdef floating *g = gT + ts * 4 * HB + j0 * B
    cdef floating *c = cT + ((t & 1) if ring else t) * HB + j0 * B
    cdef floating *c_next = cT + (((t + 1) & 1) if ring else t + 1) * HB + j0 * B
    if j1 <= j0:
        return
    if floating is float:
        nncore_lstm_fwd_f32(g, g + HB, g + 2 * HB, g + 3 * HB, c, c_next,
                            tcT + ts * HB + j0 * B, xh + (I + j0) * LX + (t + 1) * B, LX,
                            out + t * HB + j0, H, j1 - j0, B, level)
    else:
        nncore_lstm_fwd_f64(g, g + HB, g + 2 * HB, g + 3 * HB, c, c_next,
                            tcT + ts * HB + j0 * B, xh + (I + j0) * LX + (t + 1) * B, LX,
                            out + t * HB + j0, H, j1 - j0, B, level)


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
                           floating *gT,               # OUT cache (T, G, B); ring: (1, G, B)
                           floating *cT,               # IN/OUT (T+1, H, B): cT[0] = c0^T;
                                                       #   ring: (2, H, B), c_T in [T % 2]
                           floating *tcT,              # OUT cache (T, H, B); ring: (1, H, B)
                           floating *w_cat,            # OUT cache (G, K1)
                           const floating *x,          # IN (T, B, I)
                           const floating *w_ih,       # IN (G, I)
                           const floating *w_hh,       # IN (G, H)
                           const floating *b_ih,       # IN (G,) or NULL
                           const floating *b_hh,       # IN (G,) or NULL
                           Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                           bint ring,                  # keep no caches (inference)
                           int nt, int level) noexcept nogil:
    cdef Py_ssize_t G = 4 * H, K1 = I + H + 1, TB = T * B, LX = (T + 1) * B, t, q, k, a
    cdef Py_ssize_t k0, k1
    cdef int p, n
    if B * H < ROWS_PARALLEL_MIN:
        _fill_inputs(w_cat, xh, w_ih, w_hh, b_ih, b_hh, x, 0, H, 0, TB, T, B, I, H, level)
        for t in range(T):
            _gemm(False, False, G, B, K1, w_cat, K1, xh + t * B, LX, 0,
                  gT + _slot(t, ring) * G * B, B, NULL, nt)
            _fwd_units(gT, cT, tcT, xh, out, 0, H, t, T, B, I, H, ring, level)
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
                          gT + _slot(t, ring) * G * B + (q * H + a) * B, B, NULL, 1)
            _fwd_units(gT, cT, tcT, xh, out, min(H, k0 * UNIT_CHUNK),
                       min(H, k1 * UNIT_CHUNK), t, T, B, I, H, ring, level)
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
