# distutils: libraries = m
# softmax.pyx: softmax and log-softmax along any dimension, forward and backward.
#
# Shapes: x is viewed as (outer, D, inner): D is the length of the reduced dimension `dim`,
# outer the product of the dimensions before it and inner of those after it (inner = 1 for
# dim=-1, the common case, where each of the outer rows is contiguous). A 0-d array is one row
# of length 1. OUT buffers are overwritten (=), never accumulated; `out=` may be the input
# array itself.
#
# Parallelism: split over rows (inner = 1) or over (outer, block of BLOCK_INNER columns) slabs.
# Every output element is computed by one thread in a fixed order, so results are the same
# for any thread count. Below PARALLEL_MIN elements everything runs serially (thread start-up
# would cost more than the work).
# NaN semantics follow PyTorch: a row holding a nan (or only -inf) is all nan. Sums over a row
# are accumulated in double for float32 too.
# Vector code (AVX-512 / AVX2, chosen at run time, see simd.h): the row max / exp / sums come
# from activation_simd.h (shared with loss.pyx's cross-entropy), whose portable level runs the
# plain libm loops that are also the reference for the vector bodies. The backward passes are
# plain loops here.
from cython.parallel cimport prange
from libc.math cimport exp, expf, log

import numpy as np

from ._checks import as_float_array, capped_simd_level, grad_inputs, prepare_out
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


from ._activation_simd cimport (
    nncore_exp_sub_f32, nncore_exp_sub_f64, nncore_sum_exp_sub_f32,
    nncore_sum_exp_sub_f64, nncore_max_f32, nncore_max_f64,
    nncore_exp_sub_acc_f32, nncore_exp_sub_acc_f64)

cdef extern from "simd.h" nogil:
    int nncore_simd_cached       # this module's cached level (simd.h keeps one per module)
    int nncore_simd_detect()

cdef enum:
    PARALLEL_MIN = 32768   # elements; below this a kernel runs on the calling thread
    BLOCK_INNER = 64       # columns per slab when softmax reduces a non-last dimension

cdef enum RowMode:
    SOFTMAX_FWD
    LOG_SOFTMAX_FWD
    SOFTMAX_BWD
    LOG_SOFTMAX_BWD


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


# ---------------------------------------------------------------------------------------------
# Softmax family. Forward: a = x. Backward: a = dout, b = y (softmax or log_softmax output).

cdef inline floating _row_max(const floating *x, Py_ssize_t n, int level) noexcept nogil:
    if floating is float:
        return nncore_max_f32(x, n, level)
    else:
        return nncore_max_f64(x, n, level)


cdef inline double _exp_sub(floating *y, const floating *x, floating shift, Py_ssize_t n,
                            int level) noexcept nogil:
    """y[j] = exp(x[j] - shift); returns the sum of y in double."""
    if floating is float:
        return nncore_exp_sub_f32(y, x, shift, n, level)
    else:
        return nncore_exp_sub_f64(y, x, shift, n, level)


cdef inline double _sum_exp_sub(const floating *x, floating shift, Py_ssize_t n,
                                int level) noexcept nogil:
    if floating is float:
        return nncore_sum_exp_sub_f32(x, shift, n, level)
    else:
        return nncore_sum_exp_sub_f64(x, shift, n, level)


cdef void _softmax_row(int mode, floating *out, const floating *a, const floating *b,
                       Py_ssize_t D, int level) noexcept nogil:
    """One contiguous row of length D (inner = 1)."""
    cdef Py_ssize_t j
    cdef floating m
    cdef double s = 0, r, lse
    if mode == SOFTMAX_FWD:
        m = _row_max(a, D, level)             # x - max <= 0: exp cannot overflow
        r = 1.0 / _exp_sub(out, a, m, D, level)
        for j in range(D):
            out[j] = <floating>(out[j] * r)
    elif mode == LOG_SOFTMAX_FWD:
        m = _row_max(a, D, level)
        lse = log(_sum_exp_sub(a, m, D, level))
        for j in range(D):
            out[j] = <floating>((a[j] - m) - lse)
    elif mode == SOFTMAX_BWD:                 # dx = y * (dout - sum(dout * y))
        for j in range(D):
            s += <double>a[j] * b[j]
        for j in range(D):
            out[j] = <floating>(b[j] * (a[j] - s))
    else:                                     # dx = dout - exp(y) * sum(dout)
        for j in range(D):
            s += a[j]
        for j in range(D):
            out[j] = <floating>(a[j] - _exp(b[j]) * s)


cdef void _softmax_slab(int mode, floating *out, const floating *a, const floating *b,
                        Py_ssize_t D, Py_ssize_t inner, Py_ssize_t w, int level) noexcept nogil:
    """A D x w slab with row stride `inner` (dim is not the last axis); vectorises over w."""
    cdef float m32[BLOCK_INNER]
    cdef double m64[BLOCK_INNER]
    cdef double s[BLOCK_INNER]
    cdef floating *m
    cdef Py_ssize_t d, i, off
    if floating is float:
        m = m32
    else:
        m = m64
    for i in range(w):
        s[i] = 0
    if mode == SOFTMAX_FWD or mode == LOG_SOFTMAX_FWD:
        for i in range(w):
            m[i] = a[i]
        for d in range(1, D):
            off = d * inner
            for i in range(w):
                m[i] = a[off + i] if a[off + i] > m[i] else m[i]
        for d in range(D):                       # s += exp(x - m), stored for softmax
            off = d * inner
            if floating is float:
                nncore_exp_sub_acc_f32(out + off if mode == SOFTMAX_FWD else NULL, a + off, m,
                                       s, w, level)
            else:
                nncore_exp_sub_acc_f64(out + off if mode == SOFTMAX_FWD else NULL, a + off, m,
                                       s, w, level)
        for i in range(w):
            s[i] = 1.0 / s[i] if mode == SOFTMAX_FWD else log(s[i])
        for d in range(D):
            off = d * inner
            if mode == SOFTMAX_FWD:
                for i in range(w):
                    out[off + i] = <floating>(out[off + i] * s[i])
            else:
                for i in range(w):
                    out[off + i] = <floating>((a[off + i] - m[i]) - s[i])
    else:
        for d in range(D):
            off = d * inner
            if mode == SOFTMAX_BWD:
                for i in range(w):
                    s[i] += <double>a[off + i] * b[off + i]
            else:
                for i in range(w):
                    s[i] += a[off + i]
        for d in range(D):
            off = d * inner
            if mode == SOFTMAX_BWD:
                for i in range(w):
                    out[off + i] = <floating>(b[off + i] * (a[off + i] - s[i]))
            else:
                for i in range(w):
                    out[off + i] = <floating>(a[off + i] - _exp(b[off + i]) * s[i])


cdef inline void _softmax_task(int mode, floating *out, const floating *a, const floating *b,
                               Py_ssize_t task, Py_ssize_t nblk, Py_ssize_t D,
                               Py_ssize_t inner, int level) noexcept nogil:
    cdef Py_ssize_t o, i0, base
    if inner == 1:
        _softmax_row(mode, out + task * D, a + task * D, b + task * D, D, level)
    else:
        o = task // nblk
        i0 = (task % nblk) * BLOCK_INNER
        base = o * D * inner + i0
        _softmax_slab(mode, out + base, a + base, b + base, D, inner,
                      min(<Py_ssize_t>BLOCK_INNER, inner - i0), level)


cdef void _softmax_rows(int mode, floating *out, const floating *a, const floating *b,
                        Py_ssize_t outer, Py_ssize_t D, Py_ssize_t inner,
                        int nthreads) noexcept nogil:
    """Tasks: outer rows (inner = 1) or outer x ceil(inner / BLOCK_INNER) slabs."""
    cdef Py_ssize_t nblk = 1 if inner == 1 else (inner + BLOCK_INNER - 1) // BLOCK_INNER
    cdef Py_ssize_t ntasks = outer * nblk, task
    cdef int level = nncore_simd_level()
    cdef int nt = nthreads if outer * D * inner >= PARALLEL_MIN else 1
    if nt > ntasks:
        nt = <int>ntasks
    if nt <= 1:
        for task in range(ntasks):
            _softmax_task(mode, out, a, b, task, nblk, D, inner, level)
    else:
        for task in prange(ntasks, schedule='static', num_threads=nt):
            _softmax_task(mode, out, a, b, task, nblk, D, inner, level)


# ---------------------------------------------------------------------------------------------
# Python wrappers: validate, allocate (or check `out`), release the GIL.

def dispatched_simd() -> str:
    """Instruction set this module's row kernels (max, exp, sums) dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _cap_simd(level: str | None) -> str:
    """Test hook: cap the softmax row kernels at `level` ('portable', 'avx2', 'avx512'), never
    above what the CPU supports (elementwise activations keep their own level); None restores
    the detected level. Returns the level in use."""
    global nncore_simd_cached
    nncore_simd_cached = capped_simd_level(level, nncore_simd_detect())
    return dispatched_simd()


def _split_dim(shape: tuple, dim: int, fn: str) -> tuple:
    """(outer, D, inner) for reducing `dim` of `shape`; a 0-d array is one row of length 1."""
    ndim = len(shape)
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__}")
    if not lo <= dim <= hi:
        raise IndexError(f"{fn}: dim {dim} is out of range for a {ndim}-D array "
                         f"(expected {lo} <= dim <= {hi})")
    if ndim == 0:
        return 1, 1, 1
    dim = int(dim) % ndim
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    return outer, int(shape[dim]), inner


cdef _launch_rows(int mode, object out, object a, object b, tuple split):
    cdef Py_ssize_t outer = split[0], D = split[1], inner = split[2]
    cdef int nthreads = get_num_threads()
    cdef float[::1] o32
    cdef const float[::1] a32, b32
    cdef double[::1] o64
    cdef const double[::1] a64, b64
    if out.size == 0:
        return
    if b is None:
        b = a
    if out.dtype == np.float32:
        o32 = out.reshape(-1)
        a32 = a.reshape(-1)
        b32 = b.reshape(-1)
        with nogil:
            _softmax_rows(mode, &o32[0], &a32[0], &b32[0], outer, D, inner, nthreads)
    else:
        o64 = out.reshape(-1)
        a64 = a.reshape(-1)
        b64 = b.reshape(-1)
        with nogil:
            _softmax_rows(mode, &o64[0], &a64[0], &b64[0], outer, D, inner, nthreads)


def _softmax_forward(int mode, x, dim, out, fn: str) -> np.ndarray:
    x = as_float_array(x, "x")
    split = _split_dim(x.shape, dim, fn)
    y = prepare_out(out, x, fn)
    _launch_rows(mode, y, x, None, split)
    return y


def _softmax_backward(int mode, dout, y, dim, out, fn: str) -> np.ndarray:
    dout, y = grad_inputs(dout, y, "y")
    split = _split_dim(dout.shape, dim, fn)
    dx = prepare_out(out, dout, fn)
    _launch_rows(mode, dx, dout, y, split)
    return dx


def softmax_forward(x: np.ndarray, dim: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """y = exp(x - max) / sum(exp(x - max)) along `dim` (any dim, any shape)."""
    return _softmax_forward(SOFTMAX_FWD, x, dim, out, "softmax_forward")


def softmax_backward(dout: np.ndarray, y: np.ndarray, dim: int = -1,
                     out: np.ndarray | None = None) -> np.ndarray:
    """dx = y * (dout - sum(dout * y, dim)), from the softmax output y."""
    return _softmax_backward(SOFTMAX_BWD, dout, y, dim, out, "softmax_backward")


def log_softmax_forward(x: np.ndarray, dim: int = -1,
                        out: np.ndarray | None = None) -> np.ndarray:
    """y = x - max - log(sum(exp(x - max))) along `dim`."""
    return _softmax_forward(LOG_SOFTMAX_FWD, x, dim, out, "log_softmax_forward")


def log_softmax_backward(dout: np.ndarray, y: np.ndarray, dim: int = -1,
                         out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout - exp(y) * sum(dout, dim), from the log_softmax output y."""
    return _softmax_backward(LOG_SOFTMAX_BWD, dout, y, dim, out, "log_softmax_backward")
