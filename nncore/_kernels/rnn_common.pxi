# rnn_common.pxi: helpers shared by lstm.pyx and gru.pyx (textually included): the
# dtype dispatch of the GEMM and a deterministic column sum for the bias gradients.
# Needs `floating`, `sgemm`, `dgemm` and `prange` cimported by the including module.

cdef enum:
    ROWS_PARALLEL_MIN = 8192   # B*H elements per step below which the gate pass runs serially


cdef inline void _gemm(bint ta, bint tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                       const floating *A, Py_ssize_t lda, const floating *Bm, Py_ssize_t ldb,
                       floating beta, floating *C, Py_ssize_t ldc, const floating *bias,
                       int nt) noexcept nogil:
    if floating is float:
        sgemm(ta, tb, M, N, K, 1.0, A, lda, Bm, ldb, beta, C, ldc, bias, nt)
    else:
        dgemm(ta, tb, M, N, K, 1.0, A, lda, Bm, ldb, beta, C, ldc, bias, nt)


cdef void _colsum(floating *out, const floating *a, Py_ssize_t R, Py_ssize_t C,
                  int nt) noexcept nogil:
    """out (C,) = sum over the R rows of a (R, C); threads own column chunks (fixed order)."""
    cdef Py_ssize_t chunk = (C + nt - 1) // nt
    cdef Py_ssize_t p, r, j, lo, hi
    if nt <= 1 or R * C < ROWS_PARALLEL_MIN:
        for j in range(C):
            out[j] = 0
        for r in range(R):
            for j in range(C):
                out[j] += a[r * C + j]
        return
    for p in prange(nt, schedule='static', num_threads=nt):
        lo = p * chunk
        hi = min(C, lo + chunk)
        for j in range(lo, hi):
            out[j] = 0
        for r in range(R):
            for j in range(lo, hi):
                out[j] += a[r * C + j]
