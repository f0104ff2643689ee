# conv_winograd_dweight.pxi: the weight and bias gradients of conv_winograd.pyx (textually
# included by it, after its transforms and _plane): dweight() and its two thread schemes.
from libc.stdint cimport int64_t
from libc.string cimport memset


cdef extern from "conv_im2col.h" nogil:
    void nncore_row_sums_f32(float* out, const float* x, int64_t m, int64_t n, int accumulate)
    void nncore_row_sums_f64(double* out, const double* x, int64_t m, int64_t n,
                             int accumulate)


# dW[oc][c] = G^T S[.][oc][c] G with S[xi] (OC, C) = sum over samples and tiles of
# Y[xi][oc][tile] V[xi][c][tile], where V is the forward's input transform and
# Y = A dY A^T the transform of each 2x2 block of the output gradient (zero past the edges):
# 16 multiplications per tile and channel pair instead of 36. db = the sums of Y[5]'s rows
# ((A dY A^T)[1][1] is the sum of the block). Samples go in groups of nb whole samples,
# nb P >= WEIGHT_GRAD_K tiles: the K of the 16 GEMMs S[xi] += Y[xi] @ V[xi]^T.
# Threads: a batch of >= nthreads samples is split into one static chunk per thread, which
# sums into its own partial S and db; the partials are then added in thread order (the same
# bits for a fixed thread count). A smaller batch runs group by group, the threads sharing out
# its channels' transforms and then its 16 GEMMs (no partials). Measured at 2 threads with a
# shared S for every batch, the barriers between the phases made the path 1.1-2.6x slower.

cdef struct DwGeom:
    Py_ssize_t N, C, H, W, OC, OH, OW, pt, pl, TH, TW, P, nb, KB, plane, ssize
    Py_ssize_t VP, YP, SP   # plane strides of V (16, C, KB), Y (16, OC, KB), S (16, OC, C)


cdef inline void _douts(floating* Y, const floating* dy, floating* row, Py_ssize_t OH,
                        Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t OP,
                        int level) noexcept nogil:
    """Output-gradient transform of one channel dy (OH, OW) into Y (16 planes OP apart)."""
    if floating is float:
        nncore_wino_dout_f32(Y, dy, row, 1, OH, OW, TH, TW, 0, OP, level)
    else:
        nncore_wino_dout_f64(Y, dy, row, 1, OH, OW, TH, TW, 0, OP, level)


cdef inline void _dw_gemm(floating* S, const floating* Y, const floating* V, Py_ssize_t xi,
                          const DwGeom* g, Py_ssize_t K, bint accumulate) noexcept nogil:
    """S[xi] (OC, C) (+)= Y[xi] (OC, K) @ V[xi] (C, K)^T (rows KB apart), on this thread."""
    if floating is float:
        sgemm(False, True, g.OC, g.C, K, 1.0, Y + xi * g.YP, g.KB, V + xi * g.VP, g.KB,
              1.0 if accumulate else 0.0, S + xi * g.SP, g.C, NULL, 1)
    else:
        dgemm(False, True, g.OC, g.C, K, 1.0, Y + xi * g.YP, g.KB, V + xi * g.VP, g.KB,
              1.0 if accumulate else 0.0, S + xi * g.SP, g.C, NULL, 1)


cdef inline void _bias_sums(floating* db, const floating* Y5, Py_ssize_t OC, Py_ssize_t K,
                            Py_ssize_t KB, bint accumulate) noexcept nogil:
    cdef Py_ssize_t oc
    for oc in range(OC):
        if floating is float:
            nncore_row_sums_f32(db + oc, Y5 + oc * KB, 1, K, accumulate)
        else:
            nncore_row_sums_f64(db + oc, Y5 + oc * KB, 1, K, accumulate)


cdef inline void _group_transforms(floating* V, floating* Y, floating* s, const floating* dout,
                                   const floating* inp, Py_ssize_t n0, Py_ssize_t j0,
                                   Py_ssize_t j1, Py_ssize_t k0, Py_ssize_t k1,
                                   const DwGeom* g, int level) noexcept nogil:
    """Transforms of a group of samples from n0: input jobs [j0, j1) (sample j // C, channel
    j % C) into V, output-gradient jobs [k0, k1) (sample k // OC, channel k % OC) into Y."""
    cdef Py_ssize_t j, m
    for j in range(j0, j1):
        m = j // g.C
        _inputs(V + (j - m * g.C) * g.KB + m * g.P, s, s + g.plane,
                inp + (n0 * g.C + j) * g.H * g.W, 0, 1, g.H, g.W, g.pt, g.pl, g.TH, g.TW,
                g.VP, level)
    for j in range(k0, k1):
        m = j // g.OC
        _douts(Y + (j - m * g.OC) * g.KB + m * g.P, dout + (n0 * g.OC + j) * g.OH * g.OW,
               s, g.OH, g.OW, g.TH, g.TW, g.YP, level)


cdef void _dweight_chunks(floating* S, floating* db, const floating* dout,
                          const floating* inp, floating* V, floating* Y, floating* scratch,
                          const DwGeom* g, int nthreads, int level) noexcept nogil:
    """N >= nthreads: thread t sums its chunk of samples into S[t + 1] and db[t + 1] (V, Y
    and scratch per thread), then S[0] = sum of the partials in thread order (and db[0])."""
    cdef Py_ssize_t SS = 16 * g.SP, OCC = g.OC * g.C, chunk = (g.N + nthreads - 1) // nthreads
    cdef Py_ssize_t n0, lo, hi, cnt, xi, i, e
    cdef floating* St
    cdef floating* dbt
    cdef int t
    for t in prange(nthreads, schedule='static', num_threads=nthreads):
        St = S + (t + 1) * SS
        dbt = db + (t + 1) * g.OC if db != NULL else NULL
        lo = min(g.N, t * chunk)
        hi = min(g.N, lo + chunk)
        if hi == lo:   # no samples left for this thread
            memset(St, 0, SS * sizeof(floating))
            if dbt != NULL:
                memset(dbt, 0, g.OC * sizeof(floating))
        n0 = lo
        while n0 < hi:
            cnt = min(g.nb, hi - n0)
            _group_transforms(V + t * 16 * g.VP, Y + t * 16 * g.YP,
                              scratch + t * g.ssize, dout, inp, n0, 0, cnt * g.C, 0,
                              cnt * g.OC, g, level)
            for xi in range(16):
                _dw_gemm(St, Y + t * 16 * g.YP, V + t * 16 * g.VP, xi, g, cnt * g.P,
                         n0 > lo)
            if dbt != NULL:
                _bias_sums(dbt, Y + t * 16 * g.YP + 5 * g.YP, g.OC, cnt * g.P, g.KB,
                           n0 > lo)
            n0 = n0 + g.nb
    for i in prange(16 * OCC, schedule='static', num_threads=nthreads):
        e = i // OCC * g.SP + i % OCC   # plane i // OCC, element i % OCC
        S[e] = S[SS + e]
        for t in range(1, nthreads):
            S[e] = S[e] + S[(t + 1) * SS + e]
    if db != NULL:
        for i in range(g.OC):
            db[i] = db[g.OC + i]
            for t in range(1, nthreads):
                db[i] = db[i] + db[(t + 1) * g.OC + i]


cdef void _dweight_shared(floating* S, floating* db, const floating* dout,
                          const floating* inp, floating* V, floating* Y, floating* scratch,
                          const DwGeom* g, int nthreads, int level) noexcept nogil:
    """N < nthreads: group by group, the threads share out the transforms, then the 16
    GEMMs, each summing into S[xi] in sample order (thread t's xi = 5 also sums db)."""
    cdef Py_ssize_t n0 = 0, cnt, xi
    cdef int t
    while n0 < g.N:
        cnt = min(g.nb, g.N - n0)
        for t in prange(nthreads, schedule='static', num_threads=nthreads):
            _group_transforms(V, Y, scratch + t * g.ssize, dout, inp, n0,
                              t * cnt * g.C // nthreads, (t + 1) * cnt * g.C // nthreads,
                              t * cnt * g.OC // nthreads, (t + 1) * cnt * g.OC // nthreads,
                              g, level)
        for xi in prange(16, schedule='static', num_threads=nthreads):
            _dw_gemm(S, Y, V, xi, g, cnt * g.P, n0 > 0)
            if xi == 5 and db != NULL:
                _bias_sums(db, Y + 5 * g.YP, g.OC, cnt * g.P, g.KB, n0 > 0)
        n0 = n0 + g.nb


cdef void _weight_row(floating* dw, const floating* S, Py_ssize_t oc, Py_ssize_t C,
                      Py_ssize_t SP) noexcept nogil:
    """dw[oc][c] (3, 3) = G^T s G of every s = S[.][oc][c] (4, 4; planes SP apart) of one
    output channel, in double, rounded once."""
    cdef Py_ssize_t c, i, j
    cdef double s[4][4]
    cdef double t[3][4]
    cdef floating* d
    for c in range(C):
        for i in range(4):
            for j in range(4):
                s[i][j] = S[(4 * i + j) * SP + oc * C + c]
        for j in range(4):   # G^T over the rows: s0 + (s1 + s2)/2, (s1 - s2)/2, ... + s3
            t[0][j] = s[0][j] + 0.5 * (s[1][j] + s[2][j])
            t[1][j] = 0.5 * (s[1][j] - s[2][j])
            t[2][j] = 0.5 * (s[1][j] + s[2][j]) + s[3][j]
        d = dw + (oc * C + c) * 9
        for i in range(3):   # and G over the columns
            d[3 * i] = <floating>(t[i][0] + 0.5 * (t[i][1] + t[i][2]))
            d[3 * i + 1] = <floating>(0.5 * (t[i][1] - t[i][2]))
            d[3 * i + 2] = <floating>(0.5 * (t[i][1] + t[i][2]) + t[i][3])


cdef void _weight_from_s(floating* dw, const floating* S, Py_ssize_t OC, Py_ssize_t C,
                         Py_ssize_t SP, int nthreads) noexcept nogil:
    """_weight_row of every output channel, the threads sharing them out."""
    cdef Py_ssize_t oc
    for oc in prange(OC, schedule='static', num_threads=nthreads):
        _weight_row(dw, S, oc, C, SP)


def dweight(dout, inp, Py_ssize_t pt, Py_ssize_t pl, int nthreads, bint need_dbias) -> tuple:
    """(dweight (OC, C, 3, 3), dbias (OC,) or None) of the 3x3 stride-1 convolution of inp
    (N, C, H, W) zero-padded by pt rows on top and pl columns on the left, whose output
    gradient is dout (N, OC, OH, OW); C-contiguous arrays of one float dtype, checked by
    conv.pyx."""
    cdef DwGeom g
    g.N, g.C, g.H, g.W = inp.shape
    g.OC, g.OH, g.OW = dout.shape[1], dout.shape[2], dout.shape[3]
    g.pt, g.pl = pt, pl
    g.TH, g.TW = (g.OH + 1) // 2, (g.OW + 1) // 2
    g.P = g.TH * g.TW
    g.nb = max(1, min(g.N, -(-WEIGHT_GRAD_K // g.P)))
    g.KB = g.nb * g.P
    g.plane = (2 * g.TH + 2) * (g.TW + 1)
    g.ssize = 2 * g.plane + 4 * g.TW
    g.VP = _plane(g.C * g.KB, inp.dtype.itemsize)
    g.YP = _plane(g.OC * g.KB, inp.dtype.itemsize)
    g.SP = _plane(g.OC * g.C, inp.dtype.itemsize)
    cdef int nt = max(1, nthreads)
    cdef int copies = nt if g.N >= nt else 1   # V, Y per thread (and partial sums), or shared
    cdef int partials = nt if g.N >= nt else 0
    dt = inp.dtype
    dw = np.zeros((g.OC, g.C, 3, 3), dt)
    if g.N == 0:
        return dw, np.zeros(g.OC, dt) if need_dbias else None
    db = np.empty((partials + 1) * g.OC, dt) if need_dbias else None
    _dweight_arrays(dw.reshape(-1), db, np.empty((partials + 1) * 16 * g.SP, dt),
                    dout.reshape(-1), inp.reshape(-1), np.empty(copies * 16 * g.VP, dt),
                    np.empty(copies * 16 * g.YP, dt), np.empty(nt * g.ssize, dt), g, nt)
    return dw, db[:g.OC].copy() if need_dbias else None


def _dweight_arrays(floating[::1] dw, floating[::1] db, floating[::1] S,
                    const floating[::1] dout, const floating[::1] inp, floating[::1] V,
                    floating[::1] Y, floating[::1] scratch, DwGeom g, int nthreads):
    cdef floating* b = &db[0] if db is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        if g.N >= nthreads:
            _dweight_chunks(&S[0], b, &dout[0], &inp[0], &V[0], &Y[0], &scratch[0], &g,
                            nthreads, level)
        else:
            _dweight_shared(&S[0], b, &dout[0], &inp[0], &V[0], &Y[0], &scratch[0], &g,
                            nthreads, level)
        _weight_from_s(&dw[0], &S[0], g.OC, g.C, g.SP, nthreads)
