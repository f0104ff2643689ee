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


# ------------------------------------------------------------------------ validation helpers

cdef cnp.ndarray _float_array(object x, str name, int ndim, str fn="gemm"):
    """x as an ndarray of float32/float64 with `ndim` dims, or raise (no copy here)."""
    if not isinstance(x, cnp.ndarray):  # a C type check (np.ndarray is a module lookup)
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>x
    cdef int tn = cnp.PyArray_TYPE(arr)
    if tn != cnp.NPY_FLOAT32 and tn != cnp.NPY_FLOAT64:
        raise TypeError(f"{fn}: {name} must be float32 or float64, got dtype {arr.dtype}")
    if cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{fn}: {name} must be a {ndim}-D array, got shape "
                         f"{(<object>arr).shape}")
    return arr


cdef cnp.ndarray _matrix_layout(cnp.ndarray x, int axis, bint* trans, Py_ssize_t* ld):
    """The array whose matrix formed by axes (axis, axis+1) is read in place as row-major
    with row stride *ld (*trans flipped for a transposed view); copies only when neither
    stride is the element size or a stride is negative. (Out-parameters, not a tuple: this
    runs on every call, and tiny products pay for each Python object.)"""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(x)
    cdef Py_ssize_t r = x.shape[axis], c = x.shape[axis + 1]
    cdef Py_ssize_t s0 = x.strides[axis], s1 = x.strides[axis + 1]
    cdef Py_ssize_t bs
    if x.ndim == 3:
        bs = x.strides[0]
        if x.shape[0] > 1 and (bs < 0 or bs % item != 0):
            ld[0] = c
            return np.ascontiguousarray(x)
    if (s1 == item or c <= 1) and s0 >= 0 and s0 % item == 0:
        ld[0] = s0 // item if r > 1 else (c if c > 1 else 1)
        return x
    if (s0 == item or r <= 1) and s1 >= 0 and s1 % item == 0:
        trans[0] = not trans[0]
        ld[0] = s1 // item if c > 1 else (r if r > 1 else 1)
        return x
    ld[0] = c
    return np.ascontiguousarray(x)


cdef (uintptr_t, uintptr_t) _extent(cnp.ndarray x):
    """Byte range [lo, hi) spanned by x (strides are non-negative here)."""
    cdef uintptr_t lo = <uintptr_t>cnp.PyArray_DATA(x)
    cdef uintptr_t hi = lo + <uintptr_t>cnp.PyArray_ITEMSIZE(x)
    cdef int d
    if cnp.PyArray_SIZE(x) == 0:
        return lo, lo
    for d in range(cnp.PyArray_NDIM(x)):
        hi += <uintptr_t>((x.shape[d] - 1) * x.strides[d])
    return lo, hi


cdef bint _overlap(cnp.ndarray x, cnp.ndarray y):
    cdef uintptr_t xl, xh, yl, yh
    xl, xh = _extent(x)
    yl, yh = _extent(y)
    return xl < yh and yl < xh


cdef object _out_rows_ok(cnp.ndarray out, Py_ssize_t M, Py_ssize_t N):
    """Row stride of `out` in elements if its rows are contiguous and disjoint, else None."""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(out)
    cdef Py_ssize_t nd = cnp.PyArray_NDIM(out)
    cdef Py_ssize_t s0 = out.strides[nd - 2], s1 = out.strides[nd - 1]
    if M == 0 or N == 0:
        return max(N, 1)  # nothing is written: any strides do
    if not (s1 == item or N <= 1):
        return None
    if M <= 1:
        return max(N, 1)
    if s0 % item != 0 or s0 < N * item:
        return None
    return s0 // item


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


# ------------------------------------------------------------------------ test hooks (private)

_LEVELS = {"portable": 0, "avx2": 1, "avx2+fma": 1, "avx512": 2}


def _set_simd_level_for_testing(level=None) -> str:
    """Cap the micro-kernel level ("portable", "avx2", "avx512"; None resets); returns the
    level now dispatched (never above what the CPU supports)."""
    global nncore_gemm_level_cap
    nncore_gemm_level_cap = 2 if level is None else _LEVELS[level]
    return dispatched_simd()


def _set_blocking_for_testing(int mc=0, int kc=0, int nc=0) -> None:
    """Override MC/KC/NC (0 restores the default for each) to exercise block edges cheaply."""
    global nncore_gemm_override_mc, nncore_gemm_override_kc, nncore_gemm_override_nc
    nncore_gemm_override_mc = mc
    nncore_gemm_override_kc = kc
    nncore_gemm_override_nc = nc


def _force_path_for_testing(str path="auto") -> None:
    """Force the "packed" or "direct" (no packing) path, "direct_rows" (direct without the
    column-vector kernel for thin panels), "dot" (dot products, where op(A) rows and op(B)
    columns are contiguous; else direct) or "column" (the column-vector kernel for the whole
    product, where N is small enough for it; else direct), "column_packed" (the column path
    packing each panel before its k loop instead of block by block inside it); "auto" restores
    the heuristic."""
    global nncore_gemm_force_path, nncore_gemm_allow_tkr, nncore_gemm_allow_stream
    nncore_gemm_force_path = {"auto": 0, "packed": 1, "direct": 2, "direct_rows": 2,
                              "dot": 3, "column": 4, "column_packed": 4}[path]
    nncore_gemm_allow_tkr = path != "direct_rows"
    nncore_gemm_allow_stream = path != "column_packed"


def _set_shared_packing_for_testing(allow=None) -> None:
    """Allow (True) or forbid (False) the threads' shared op(B) packing, to compare both;
    None restores the default (env NNCORE_GEMM_SHARED_B=1 turns it on, off otherwise)."""
    global nncore_gemm_allow_shared
    if allow is None:
        allow = os.environ.get("NNCORE_GEMM_SHARED_B", "0") == "1"
    nncore_gemm_allow_shared = bool(allow)


_set_shared_packing_for_testing(None)


def _plan_for_testing(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, dtype=np.float32,
                      int nthreads=1, bint trans_a=False, bint trans_b=False) -> dict:
    """The plan gemm would use for this problem: path, split, parts, tile and block sizes."""
    cdef nncore_gemm_args_s ps
    cdef nncore_gemm_args_d pd
    memset(&ps, 0, sizeof(ps))
    memset(&pd, 0, sizeof(pd))
    ps.trans_a = pd.trans_a = trans_a
    ps.trans_b = pd.trans_b = trans_b
    if np.dtype(dtype) == np.float32:
        ps.M, ps.N, ps.K = M, N, K
        nncore_gemm_plan_s(&ps, nthreads)
        return dict(kernel=ps.impl.name.decode(), mr=ps.impl.mr, nr=ps.impl.nr,
                    direct=bool(ps.direct), dot=ps.direct == 2, column=ps.direct == 3,
                    split="N" if ps.split_n else "M", nparts=ps.nparts, mc=ps.mc, kc=ps.kc,
                    nc=ps.nc, shared_b=bool(ps.shared_b))
    pd.M, pd.N, pd.K = M, N, K
    nncore_gemm_plan_d(&pd, nthreads)
    return dict(kernel=pd.impl.name.decode(), mr=pd.impl.mr, nr=pd.impl.nr,
                direct=bool(pd.direct), dot=pd.direct == 2, column=pd.direct == 3,
                split="N" if pd.split_n else "M", nparts=pd.nparts, mc=pd.mc, kc=pd.kc,
                nc=pd.nc, shared_b=bool(pd.shared_b))
