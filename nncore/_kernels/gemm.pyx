# gemm.pyx: general matrix multiply for float32 and float64, the engine's hot path.
#   C = act(alpha * op(A) @ op(B) + beta * C (+ bias broadcast over rows)),
#   act: none, relu, gelu (erf) or gelu_tanh, fused into the tile epilogue
# Shapes: op(A) is (M, K), op(B) is (K, N), C and out are (M, N), bias is (N,); batched: a
# leading batch dimension Bt. `out` is overwritten when beta == 0 (never read, so garbage or NaN
# in it does not leak); with beta != 0 it is read and updated.
# The blocked, packed algorithm, the small-matrix paths (direct, dot-product) and the SIMD
# micro-kernels (AVX-512, AVX2+FMA, portable C, chosen at run time) live in gemm_kernels.h and
# the gemm_*_tmpl.h headers it includes; the plan and the OpenMP team run in C
# (nncore_gemm_plan_*/nncore_gemm_execute_*). Design notes: docs/gemm.md.
# Threads split M or N on micro-tile boundaries and never K, so results are bit-identical for
# any thread count. Views (slices, .T) are used in place when one of their strides is the
# element size: a transposed view just flips trans_a/trans_b.
import os

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memset

from ._parallel import get_num_threads

cnp.import_array()

cdef extern from "gemm_kernels.h" nogil:
    ctypedef struct nncore_gemm_impl_s:
        const char* name
        int64_t mr, nr
    ctypedef struct nncore_gemm_args_s:
        int trans_a, trans_b
        int64_t M, N, K
        float alpha, beta
        const float* A
        int64_t lda
        const float* B
        int64_t ldb
        float* C
        int64_t ldc
        const float* bias
        int act
        const nncore_gemm_impl_s* impl
        int64_t mc, kc, nc
        int direct, split_n, nparts, shared_b
    ctypedef struct nncore_gemm_args_d:
        int trans_a, trans_b
        int64_t M, N, K
        double alpha, beta
        const double* A
        int64_t lda
        const double* B
        int64_t ldb
        double* C
        int64_t ldc
        const double* bias
        int act
        const nncore_gemm_impl_s* impl
        int64_t mc, kc, nc
        int direct, split_n, nparts, shared_b
    int nncore_gemm_plan_s(nncore_gemm_args_s* p, int nthreads)
    void nncore_gemm_execute_s(const nncore_gemm_args_s* p)
    int nncore_gemm_plan_d(nncore_gemm_args_d* p, int nthreads)
    void nncore_gemm_execute_d(const nncore_gemm_args_d* p)
    int nncore_gemm_level_cap
    int64_t nncore_gemm_override_mc, nncore_gemm_override_kc, nncore_gemm_override_nc
    int nncore_gemm_force_path
    int nncore_gemm_allow_shared
    int nncore_gemm_allow_tkr
    int nncore_gemm_allow_stream
    int nncore_gemm_level()
    const char* nncore_gemm_level_name()


cdef void sgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                float alpha, const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                float beta, float* C, Py_ssize_t ldc, const float* bias,
                int nthreads) noexcept nogil:
    sgemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias,
             GEMM_ACT_NONE, nthreads)


cdef void sgemm_ex(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   float alpha, const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                   float beta, float* C, Py_ssize_t ldc, const float* bias, int activation,
                   int nthreads) noexcept nogil:
    cdef nncore_gemm_args_s p
    p.trans_a = trans_a
    p.trans_b = trans_b
    p.M = M
    p.N = N
    p.K = K
    p.alpha = alpha
    p.beta = beta
    p.A = A
    p.lda = lda
    p.B = B
    p.ldb = ldb
    p.C = C
    p.ldc = ldc
    p.bias = bias
    p.act = activation if GEMM_ACT_NONE <= activation <= GEMM_ACT_GELU_TANH else GEMM_ACT_NONE
    nncore_gemm_plan_s(&p, nthreads)
    nncore_gemm_execute_s(&p)


cdef void dgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                double alpha, const double* A, Py_ssize_t lda, const double* B, Py_ssize_t ldb,
                double beta, double* C, Py_ssize_t ldc, const double* bias,
                int nthreads) noexcept nogil:
    dgemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias,
             GEMM_ACT_NONE, nthreads)


cdef void dgemm_ex(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   double alpha, const double* A, Py_ssize_t lda, const double* B, Py_ssize_t ldb,
                   double beta, double* C, Py_ssize_t ldc, const double* bias, int activation,
                   int nthreads) noexcept nogil:
    cdef nncore_gemm_args_d p
    p.trans_a = trans_a
    p.trans_b = trans_b
    p.M = M
    p.N = N
    p.K = K
    p.alpha = alpha
    p.beta = beta
    p.A = A
    p.lda = lda
    p.B = B
    p.ldb = ldb
    p.C = C
    p.ldc = ldc
    p.bias = bias
    p.act = activation if GEMM_ACT_NONE <= activation <= GEMM_ACT_GELU_TANH else GEMM_ACT_NONE
    nncore_gemm_plan_d(&p, nthreads)
    nncore_gemm_execute_d(&p)


include "gemm_checks.pxi"


cdef void _run(bint ta, bint tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
               cnp.ndarray A, Py_ssize_t a_off, Py_ssize_t lda,
               cnp.ndarray B, Py_ssize_t b_off, Py_ssize_t ldb, double beta,
               cnp.ndarray C, Py_ssize_t c_off, Py_ssize_t ldc, void* bias, bint is_f32,
               int nthreads, int act=GEMM_ACT_NONE) noexcept:
    """One GEMM on raw pointers (offsets in bytes), without the GIL."""
    cdef char* pa = <char*>cnp.PyArray_DATA(A) + a_off
    cdef char* pb = <char*>cnp.PyArray_DATA(B) + b_off
    cdef char* pc = <char*>cnp.PyArray_DATA(C) + c_off
    with nogil:
        if is_f32:
            sgemm_ex(ta, tb, M, N, K, <float>alpha, <const float*>pa, lda, <const float*>pb,
                     ldb, <float>beta, <float*>pc, ldc, <const float*>bias, act, nthreads)
        else:
            dgemm_ex(ta, tb, M, N, K, alpha, <const double*>pa, lda, <const double*>pb, ldb,
                     beta, <double*>pc, ldc, <const double*>bias, act, nthreads)


# ------------------------------------------------------------------------ Python API

_ACTIVATIONS = {"none": GEMM_ACT_NONE, "relu": GEMM_ACT_RELU, "gelu": GEMM_ACT_GELU,
                "gelu_tanh": GEMM_ACT_GELU_TANH}


def gemm(a, b, out=None, *, bint trans_a=False, bint trans_b=False, double alpha=1.0,
         double beta=0.0, bias=None, str activation="none"):
    """C = act(alpha * op(a) @ op(b) + beta * out (+ bias)), written into `out` and returned.

    a, b: 2-D float32/float64 arrays of one dtype; op(x) is x.T when trans_x else x, with
    op(a) (M, K) and op(b) (K, N). out: optional (M, N) array with contiguous rows (required
    when beta != 0; with beta == 0 it is overwritten without being read). bias: optional (N,)
    added to every row. activation: "none", "relu", "gelu" (erf form) or "gelu_tanh" (tanh
    approximation), applied last while the tile is hot; the GELUs equal
    activation.gelu_forward of the unfused result bit for bit.
    Example: gemm(x, w, trans_b=True, bias=b, activation="relu") is relu(x @ w.T + b).
    """
    cdef int act = GEMM_ACT_NONE
    if activation != "none":
        if activation not in _ACTIVATIONS:
            raise ValueError(f"gemm: activation must be one of {sorted(_ACTIVATIONS)}, got "
                             f"{activation!r}")
        act = _ACTIVATIONS[activation]
    cdef cnp.ndarray A = _float_array(a, "a", 2)
    cdef cnp.ndarray B = _float_array(b, "b", 2)
    cdef cnp.ndarray C, Bias = None, target
    cdef int tn = cnp.PyArray_TYPE(A)
    if cnp.PyArray_TYPE(B) != tn:
        raise TypeError(f"gemm: dtype mismatch: a is {A.dtype} but b is {B.dtype}")
    cdef Py_ssize_t M, N, K, Kb
    if trans_a:
        M, K = A.shape[1], A.shape[0]
    else:
        M, K = A.shape[0], A.shape[1]
    if trans_b:
        Kb, N = B.shape[1], B.shape[0]
    else:
        Kb, N = B.shape[0], B.shape[1]
    if K != Kb:
        raise ValueError(f"gemm: inner dimensions do not match: op(a) is {(M, K)}, "
                         f"op(b) is {(Kb, N)}")
    cdef void* bias_ptr = NULL
    if bias is not None:
        Bias = _float_array(bias, "bias", 1)
        if cnp.PyArray_TYPE(Bias) != tn:
            raise TypeError(f"gemm: dtype mismatch: a is {A.dtype} but bias is {Bias.dtype}")
        if Bias.shape[0] != N:
            raise ValueError(f"gemm: bias must have shape {(N,)}, got {(<object>Bias).shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(Bias):
            Bias = np.ascontiguousarray(Bias)
        bias_ptr = cnp.PyArray_DATA(Bias)
    cdef object ldc
    if out is None:
        if beta != 0:
            raise ValueError("gemm: beta != 0 needs an `out` array to read C from")
        C = cnp.PyArray_EMPTY(2, [M, N], tn, 0)
        ldc = max(N, 1)
    else:
        C = _float_array(out, "out", 2)
        if cnp.PyArray_TYPE(C) != tn:
            raise TypeError(f"gemm: dtype mismatch: a is {A.dtype} but out is {C.dtype}")
        if C.shape[0] != M or C.shape[1] != N:
            raise ValueError(f"gemm: out must have shape {(M, N)}, got {(<object>C).shape}")
        if not cnp.PyArray_ISWRITEABLE(C):
            raise ValueError("gemm: out is read-only")
        ldc = _out_rows_ok(C, M, N)
        if ldc is None:
            raise ValueError(f"gemm: out must have contiguous, non-overlapping rows; got "
                             f"strides {(<object>C).strides}")
    if M == 0 or N == 0:
        return C
    cdef bint ta = trans_a, tb = trans_b
    cdef Py_ssize_t lda, ldb
    A = _matrix_layout(A, 0, &ta, &lda)
    B = _matrix_layout(B, 0, &tb, &ldb)
    target = C
    if out is not None and (_overlap(C, A) or _overlap(C, B)
                            or (Bias is not None and _overlap(C, Bias))):
        # out aliases an input: compute into a fresh array, then copy
        target = np.array(C, order="C", copy=True) if beta != 0 else np.empty_like(C, order="C")
        ldc = max(N, 1)
    _run(ta, tb, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, target, 0, ldc, bias_ptr,
         tn == cnp.NPY_FLOAT32, get_num_threads(), act)
    if target is not C:
        C[...] = target
    return C


def gemm_batched(a, b, *, bint trans_a=False, bint trans_b=False):
    """out[i] = op(a[i]) @ op(b[i]) for 3-D a (Bt, M, K) and b (Bt, K, N) -> (Bt, M, N).

    op(x) transposes the last two axes when trans_x. Threads split the batch when it has at
    least as many items as threads, else each product is threaded inside.
    """
    cdef cnp.ndarray A = _float_array(a, "a", 3, "gemm_batched")
    cdef cnp.ndarray B = _float_array(b, "b", 3, "gemm_batched")
    cdef int tn = cnp.PyArray_TYPE(A)
    if cnp.PyArray_TYPE(B) != tn:
        raise TypeError(f"gemm_batched: dtype mismatch: a is {A.dtype} but b is {B.dtype}")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"gemm_batched: batch sizes differ: a is {(<object>A).shape}, "
                         f"b is {(<object>B).shape}")
    cdef Py_ssize_t Bt = A.shape[0], M, N, K, Kb
    if trans_a:
        M, K = A.shape[2], A.shape[1]
    else:
        M, K = A.shape[1], A.shape[2]
    if trans_b:
        Kb, N = B.shape[2], B.shape[1]
    else:
        Kb, N = B.shape[1], B.shape[2]
    if K != Kb:
        raise ValueError(f"gemm_batched: inner dimensions do not match: op(a) is {(Bt, M, K)}, "
                         f"op(b) is {(Bt, Kb, N)}")
    cdef cnp.ndarray C = cnp.PyArray_EMPTY(3, [Bt, M, N], tn, 0)
    if Bt == 0 or M == 0 or N == 0:
        return C
    cdef bint ta, tb
    cdef Py_ssize_t lda, ldb
    ta, tb = trans_a, trans_b
    A = _matrix_layout(A, 1, &ta, &lda)
    B = _matrix_layout(B, 1, &tb, &ldb)
    cdef Py_ssize_t sa = A.strides[0], sb = B.strides[0], sc = M * N * cnp.PyArray_ITEMSIZE(C)
    cdef Py_ssize_t ldc = max(N, 1), i
    cdef int nthreads = get_num_threads()
    cdef bint f32 = tn == cnp.NPY_FLOAT32
    cdef char* pa = <char*>cnp.PyArray_DATA(A)
    cdef char* pb = <char*>cnp.PyArray_DATA(B)
    cdef char* pc = <char*>cnp.PyArray_DATA(C)
    if Bt < nthreads or nthreads <= 1:
        for i in range(Bt):
            _run(ta, tb, M, N, K, 1.0, A, i * sa, lda, B, i * sb, ldb, 0.0, C, i * sc, ldc,
                 NULL, f32, nthreads)
        return C
    with nogil:
        if f32:
            for i in prange(Bt, schedule='static', num_threads=nthreads):
                sgemm(ta, tb, M, N, K, 1.0, <const float*>(pa + i * sa), lda,
                      <const float*>(pb + i * sb), ldb, 0.0, <float*>(pc + i * sc), ldc,
                      NULL, 1)
        else:
            for i in prange(Bt, schedule='static', num_threads=nthreads):
                dgemm(ta, tb, M, N, K, 1.0, <const double*>(pa + i * sa), lda,
                      <const double*>(pb + i * sb), ldb, 0.0, <double*>(pc + i * sc), ldc,
                      NULL, 1)
    return C


def dispatched_simd() -> str:
    """Name of the micro-kernel in use: "avx512", "avx2+fma" or "portable"."""
    return nncore_gemm_level_name().decode()


include "gemm_testing.pxi"
