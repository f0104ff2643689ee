# rnn_common.pxi: helpers shared by lstm.pyx and gru.pyx (textually included): the
# dtype dispatch of the GEMM, a deterministic column sum for the bias gradients, the
# layout transposes (transpose.h) and the step slot of the cache-free (inference) forward.
# Needs `floating`, `sgemm`, `dgemm`, `prange` and `nncore_simd_level` cimported by the
# including module.

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



cdef enum:
    TRANSPOSE_BLOCK = 32


cdef extern from "transpose.h" nogil:
    void nncore_transpose_f32(float *dst, Py_ssize_t ldd, const float *src, Py_ssize_t lds,
                              Py_ssize_t R, Py_ssize_t C, int level)
    void nncore_transpose_f64(double *dst, Py_ssize_t ldd, const double *src, Py_ssize_t lds,
                              Py_ssize_t R, Py_ssize_t C, int level)


cdef void _transpose(floating *dst, Py_ssize_t ld_dst, const floating *src, Py_ssize_t ld_src,
                     Py_ssize_t R, Py_ssize_t C, int nt) noexcept nogil:
    """dst[c, r] = src[r, c] for an (R, C) source, in cache blocks; threads own row blocks."""
    cdef Py_ssize_t nb = (R + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK
    cdef Py_ssize_t ncb = (C + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK
    cdef Py_ssize_t rb, cb, r0, c0
    cdef int level = nncore_simd_level()
    if nt <= 1 or R * C < 4 * ROWS_PARALLEL_MIN:
        nt = 1
    for rb in prange(nb, schedule='static', num_threads=nt):
        r0 = rb * TRANSPOSE_BLOCK
        for cb in range(ncb):
            c0 = cb * TRANSPOSE_BLOCK
            if floating is float:
                nncore_transpose_f32(dst + c0 * ld_dst + r0, ld_dst, src + r0 * ld_src + c0,
                                     ld_src, min(R - r0, TRANSPOSE_BLOCK),
                                     min(C - c0, TRANSPOSE_BLOCK), level)
            else:
                nncore_transpose_f64(dst + c0 * ld_dst + r0, ld_dst, src + r0 * ld_src + c0,
                                     ld_src, min(R - r0, TRANSPOSE_BLOCK),
                                     min(C - c0, TRANSPOSE_BLOCK), level)


def _transpose_into(dst, src, int nt=1):
    """dst (C, R) = src (R, C).T for 2-D float views whose rows are contiguous (any row
    stride), or for 3-D arrays dst (T, C, R) = src (T, R, C) transposed step by step."""
    if dst.dtype != src.dtype:
        raise TypeError(f"_transpose_into: dtypes differ ({dst.dtype}, {src.dtype})")
    if dst.ndim == 3:
        if dst.dtype == np.float32:
            _transpose3_f32(dst, src, nt)
        else:
            _transpose3_f64(dst, src, nt)
    elif dst.dtype == np.float32:
        _transpose2_f32(dst, src, nt)
    else:
        _transpose2_f64(dst, src, nt)


cdef inline Py_ssize_t _row_stride(Py_ssize_t stride_bytes, Py_ssize_t inner_bytes,
                                   Py_ssize_t item) except -1:
    if inner_bytes != item:
        raise ValueError("_transpose_into: rows must be contiguous")
    return stride_bytes // item


def _transpose2_f32(float[:, :] dst, const float[:, :] src, int nt):
    cdef Py_ssize_t R = src.shape[0], C = src.shape[1]
    if dst.shape[0] != C or dst.shape[1] != R:
        raise ValueError(f"_transpose_into: dst {(dst.shape[0], dst.shape[1])} != {(C, R)}")
    if R == 0 or C == 0:
        return
    cdef Py_ssize_t ls = _row_stride(src.strides[0], src.strides[1], sizeof(float))
    cdef Py_ssize_t ld = _row_stride(dst.strides[0], dst.strides[1], sizeof(float))
    with nogil:
        _transpose(&dst[0, 0], ld, &src[0, 0], ls, R, C, nt)


def _transpose2_f64(double[:, :] dst, const double[:, :] src, int nt):
    cdef Py_ssize_t R = src.shape[0], C = src.shape[1]
    if dst.shape[0] != C or dst.shape[1] != R:
        raise ValueError(f"_transpose_into: dst {(dst.shape[0], dst.shape[1])} != {(C, R)}")
    if R == 0 or C == 0:
        return
    cdef Py_ssize_t ls = _row_stride(src.strides[0], src.strides[1], sizeof(double))
    cdef Py_ssize_t ld = _row_stride(dst.strides[0], dst.strides[1], sizeof(double))
    with nogil:
        _transpose(&dst[0, 0], ld, &src[0, 0], ls, R, C, nt)


cdef void _transpose3(floating *dst, const floating *src, Py_ssize_t T, Py_ssize_t R,
                      Py_ssize_t C, int nt) noexcept nogil:
    cdef Py_ssize_t t
    if nt <= 1 or T * R * C < 4 * ROWS_PARALLEL_MIN:
        nt = 1
    for t in prange(T, schedule='static', num_threads=nt):
        _transpose(dst + t * R * C, R, src + t * R * C, C, R, C, 1)


def _transpose3_f32(float[:, :, ::1] dst, const float[:, :, ::1] src, int nt):
    cdef Py_ssize_t T = src.shape[0], R = src.shape[1], C = src.shape[2]
    if dst.shape[0] != T or dst.shape[1] != C or dst.shape[2] != R:
        raise ValueError("_transpose_into: 3-D shapes do not match")
    if T * R * C > 0:
        with nogil:
            _transpose3(&dst[0, 0, 0], &src[0, 0, 0], T, R, C, nt)


def _transpose3_f64(double[:, :, ::1] dst, const double[:, :, ::1] src, int nt):
    cdef Py_ssize_t T = src.shape[0], R = src.shape[1], C = src.shape[2]
    if dst.shape[0] != T or dst.shape[1] != C or dst.shape[2] != R:
        raise ValueError("_transpose_into: 3-D shapes do not match")
    if T * R * C > 0:
        with nogil:
            _transpose3(&dst[0, 0, 0], &src[0, 0, 0], T, R, C, nt)

cdef extern from "simd.h" nogil:
    int nncore_simd_cached       # this module's cached level (simd.h keeps one per module)
    int nncore_simd_detect()

def _cap_simd(level=None) -> str:
    """Test hook: cap this module's gate nonlinearities at `level` ('portable', 'avx2',
    'avx512'), never above what the CPU supports; None restores the detected level. Returns
    the level in use."""
    global nncore_simd_cached
    nncore_simd_cached = capped_simd_level(level, nncore_simd_detect())
    return nncore_simd_name(nncore_simd_level()).decode()


cdef inline Py_ssize_t _slot(Py_ssize_t t, bint ring) noexcept nogil:
    """Step t's slot in a per-step cache (LSTM gates and tanh(c), GRU hidden projections):
    t when the caches are kept for backward, else the one slot reused by every step."""
    return 0 if ring else t
