# distutils: libraries = m
# activation.pyx: elementwise activations and softmax / log-softmax, forward and backward.
#
# Shapes: the elementwise ops take any shape and work on the flat buffer of n elements.
# The softmax ops view x as (outer, D, inner): D is the length of the reduced dimension `dim`,
# outer the product of the dimensions before it and inner of those after it (inner = 1 for
# dim=-1, the common case, where each of the outer rows is contiguous).
# OUT buffers are overwritten (=), never accumulated; `out=` may be the input array itself.
#
# Parallelism: elementwise ops give each thread one static chunk of the flat buffer; the
# softmax ops split over rows (inner = 1) or over (outer, block of BLOCK_INNER columns) slabs.
# Every output element is computed by one thread in a fixed order, so results are the same
# for any thread count. Below PARALLEL_MIN elements everything runs serially (thread start-up
# would cost more than the work).
# NaN semantics follow PyTorch: relu(nan) = nan, sigmoid(nan) = nan, a softmax row holding a
# nan (or only -inf) is all nan. Sums over a row are accumulated in double for float32 too.
# Vector code (AVX-512 / AVX2, chosen at run time, see simd.h): the row max / exp / sums of the
# softmax family (activation_simd.h) and sigmoid, tanh, tanh-GELU (activation_elementwise.h).
# The portable level runs the plain libm loops below, which are also the reference for the
# vector bodies. Exact GELU uses libm erf at every level.
from cython.parallel cimport prange
from libc.math cimport erf, erff, exp, expf, fabs, fabsf, log, tanh, tanhf

import numpy as np

from ._checks import as_float_array, check_same_dtype, check_shape
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


cdef extern from "activation_simd.h" nogil:
    double nncore_exp_sub_f32(float *y, const float *x, float shift, Py_ssize_t n, int level)
    double nncore_exp_sub_f64(double *y, const double *x, double shift, Py_ssize_t n,
                              int level)
    double nncore_sum_exp_sub_f32(const float *x, float shift, Py_ssize_t n, int level)
    double nncore_sum_exp_sub_f64(const double *x, double shift, Py_ssize_t n, int level)
    float nncore_max_f32(const float *x, Py_ssize_t n, int level)
    double nncore_max_f64(const double *x, Py_ssize_t n, int level)
    void nncore_exp_sub_acc_f32(float *y, const float *x, const float *m, double *s,
                                Py_ssize_t n, int level)
    void nncore_exp_sub_acc_f64(double *y, const double *x, const double *m, double *s,
                                Py_ssize_t n, int level)

cdef extern from "activation_elementwise.h" nogil:
    int NNCORE_EW_SIGMOID
    int NNCORE_EW_TANH
    int NNCORE_EW_GELU_TANH
    int NNCORE_EW_GELU_TANH_GRAD
    int nncore_ew_f32(int op, float *y, const float *a, const float *b, Py_ssize_t n,
                      int level)
    int nncore_ew_f64(int op, double *y, const double *a, const double *b, Py_ssize_t n,
                      int level)

cdef extern from "simd.h" nogil:
    int NNCORE_SIMD_PORTABLE
    int nncore_simd_cached       # this module's cached level (simd.h keeps one per module)
    int nncore_simd_detect()

cdef enum:
    PARALLEL_MIN = 32768   # elements; below this a kernel runs on the calling thread
    BLOCK_INNER = 64       # columns per slab when softmax reduces a non-last dimension

cdef enum Op:
    RELU_FWD
    RELU_BWD
    LEAKY_FWD
    LEAKY_BWD
    SIGMOID_FWD
    SIGMOID_BWD
    TANH_FWD
    TANH_BWD
    GELU_FWD
    GELU_BWD
    GELU_TANH_FWD
    GELU_TANH_BWD

cdef enum RowMode:
    SOFTMAX_FWD
    LOG_SOFTMAX_FWD
    SOFTMAX_BWD
    LOG_SOFTMAX_BWD

cdef double SQRT1_2 = 0.70710678118654752440       # 1/sqrt(2)
cdef double INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2*pi)
cdef double GELU_BETA = 0.79788456080286535588     # sqrt(2/pi), as in activation_elementwise.h
cdef double GELU_KAPPA = 0.044715


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating _tanh(floating v) noexcept nogil:
    if floating is float:
        return tanhf(v)
    else:
        return tanh(v)


cdef inline floating _erf(floating v) noexcept nogil:
    if floating is float:
        return erff(v)
    else:
        return erf(v)


cdef inline floating _fabs(floating v) noexcept nogil:
    if floating is float:
        return fabsf(v)
    else:
        return fabs(v)


# ---------------------------------------------------------------------------------------------
# Elementwise: out[i] = f(a[i]) (forward) or out[i] = a[i] * f'(b[i]) (backward, a = dout).

cdef inline int _simd_op(int op) noexcept nogil:
    """The activation_elementwise.h operation for `op`, or -1 where only the libm loop exists."""
    if op == SIGMOID_FWD:
        return NNCORE_EW_SIGMOID
    if op == TANH_FWD:
        return NNCORE_EW_TANH
    if op == GELU_TANH_FWD:
        return NNCORE_EW_GELU_TANH
    if op == GELU_TANH_BWD:
        return NNCORE_EW_GELU_TANH_GRAD
    return -1


cdef void _elementwise_range(int op, floating *out, const floating *a, const floating *b,
                             floating p, Py_ssize_t lo, Py_ssize_t hi, int level) noexcept nogil:
    """One thread's chunk [lo, hi) of the flat buffers. p: negative slope (leaky relu).

    Sigmoid, tanh and tanh-GELU go to the vector bodies of activation_elementwise.h above the
    portable level; the loops below are the portable path and the reference for those."""
    cdef Py_ssize_t i
    cdef floating v, e, t, s, z, d, cdf, pdf, right
    cdef floating half = 0.5, one = 1
    cdef floating sqrt1_2 = SQRT1_2, inv_sqrt_2pi = INV_SQRT_2PI
    cdef floating beta2 = 2 * GELU_BETA, half_beta = 0.5 * GELU_BETA
    cdef floating kappa = GELU_KAPPA, kappa3 = 3 * GELU_KAPPA
    cdef int simd_op = _simd_op(op)
    if simd_op >= 0 and level > NNCORE_SIMD_PORTABLE:
        if floating is float:
            if nncore_ew_f32(simd_op, out + lo, a + lo, b + lo, hi - lo, level):
                return
        else:
            if nncore_ew_f64(simd_op, out + lo, a + lo, b + lo, hi - lo, level):
                return
    if op == RELU_FWD:
        for i in range(lo, hi):
            v = a[i]
            out[i] = 0 if v <= 0 else v          # keeps nan
    elif op == RELU_BWD:                         # b: relu output or input; grad 0 at 0
        for i in range(lo, hi):
            out[i] = 0 if b[i] <= 0 else a[i]
    elif op == LEAKY_FWD:
        for i in range(lo, hi):
            v = a[i]
            out[i] = v if v > 0 else v * p
    elif op == LEAKY_BWD:                        # b: input
        for i in range(lo, hi):
            out[i] = a[i] if b[i] > 0 else a[i] * p
    elif op == SIGMOID_FWD:
        for i in range(lo, hi):
            v = a[i]
            e = _exp(-_fabs(v))                  # in (0, 1]: cannot overflow
            t = one if v >= 0 else e             # a select, not a branch (random signs)
            out[i] = t / (one + e)
    elif op == SIGMOID_BWD:                      # b: sigmoid output
        for i in range(lo, hi):
            v = b[i]
            out[i] = a[i] * (v * (one - v))
    elif op == TANH_FWD:
        for i in range(lo, hi):
            out[i] = _tanh(a[i])
    elif op == TANH_BWD:                         # b: tanh output
        for i in range(lo, hi):
            v = b[i]
            out[i] = a[i] * (one - v * v)
    elif op == GELU_FWD:                         # x * Phi(x)
        for i in range(lo, hi):
            v = a[i]
            out[i] = v * half * (one + _erf(v * sqrt1_2))
    elif op == GELU_BWD:                         # b: input; Phi(x) + x * phi(x)
        for i in range(lo, hi):
            v = b[i]
            cdf = half * (one + _erf(v * sqrt1_2))
            pdf = inv_sqrt_2pi * _exp(-half * v * v)
            out[i] = a[i] * (cdf + v * pdf)
    elif op == GELU_TANH_FWD:
        # 0.5 x (1 + tanh(z / 2)) = x sigmoid(z), z = 2 beta (x + kappa x^3): no cancellation
        # of 1 + tanh near -1 (large negative x)
        for i in range(lo, hi):
            v = a[i]
            z = beta2 * (v + kappa * v * v * v)
            e = _exp(-_fabs(z))
            t = one if z >= 0 else e
            out[i] = v * (t / (one + e))
    elif op == GELU_TANH_BWD:                    # b: input
        for i in range(lo, hi):
            v = b[i]
            z = beta2 * (v + kappa * v * v * v)
            e = _exp(-_fabs(z))
            d = one / (one + e)
            t = d if z >= 0 else e * d           # sigmoid(z) = (1 + tanh(z / 2)) / 2
            s = 4 * e * d * d                    # 1 - tanh(z / 2)^2; exactly 0 when saturated
            right = 0 if s == 0 else half_beta * v * s * (one + kappa3 * v * v)
            out[i] = a[i] * (t + right)


cdef void _elementwise(int op, floating *out, const floating *a, const floating *b,
                       floating p, Py_ssize_t n, int nthreads) noexcept nogil:
    """Split [0, n) into one static chunk per thread, each a whole number of cache lines."""
    cdef Py_ssize_t chunk, t, lo, hi
    cdef int level = nncore_simd_level()
    cdef int nt = nthreads if n >= PARALLEL_MIN else 1
    if nt <= 1:
        _elementwise_range(op, out, a, b, p, 0, n, level)
        return
    chunk = (n + nt - 1) // nt
    chunk = (chunk + 15) & ~(<Py_ssize_t>15)
    for t in prange(nt, schedule='static', num_threads=nt):
        lo = t * chunk
        hi = min(n, lo + chunk)
        if lo < hi:
            _elementwise_range(op, out, a, b, p, lo, hi, level)


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

_SIMD_LEVELS = {"portable": 0, "avx2": 1, "avx512": 2}


def dispatched_simd() -> str:
    """Instruction set this module's row kernels (max, exp, sums) dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _cap_simd(level: str | None) -> str:
    """Test hook: cap this module's dispatch at `level` ('portable', 'avx2', 'avx512'), never
    above what the CPU supports; None restores the detected level. Returns the level in use."""
    global nncore_simd_cached
    detected = nncore_simd_detect()
    if level is None:
        nncore_simd_cached = detected
    elif level in _SIMD_LEVELS:
        nncore_simd_cached = min(detected, _SIMD_LEVELS[level])
    else:
        raise ValueError(f"_cap_simd: level must be one of {sorted(_SIMD_LEVELS)} or None, "
                         f"got {level!r}")
    return dispatched_simd()


def _prepare_out(out, like: np.ndarray, fn: str) -> np.ndarray:
    if out is None:
        return np.empty_like(like, order="C")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != like.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {like.dtype}")
    check_shape(out, like.shape, f"{fn}: out")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: out must be a writeable C-contiguous array")
    return out


def _grad_inputs(dout, cache, cache_name: str):
    dout = _as_float(dout, "dout")
    cache = _as_float(cache, cache_name)
    check_same_dtype(dout=dout, **{cache_name: cache})
    check_shape(cache, dout.shape, cache_name)
    return dout, cache


cdef _launch_elementwise(int op, object out, object a, object b, double p):
    cdef Py_ssize_t n = out.size
    cdef int nthreads = get_num_threads()
    cdef float[::1] o32
    cdef const float[::1] a32, b32
    cdef double[::1] o64
    cdef const double[::1] a64, b64
    if n == 0:
        return
    if b is None:
        b = a
    if out.dtype == np.float32:
        o32 = out.reshape(-1)
        a32 = a.reshape(-1)
        b32 = b.reshape(-1)
        with nogil:
            _elementwise(op, &o32[0], &a32[0], &b32[0], <float>p, n, nthreads)
    else:
        o64 = out.reshape(-1)
        a64 = a.reshape(-1)
        b64 = b.reshape(-1)
        with nogil:
            _elementwise(op, &o64[0], &a64[0], &b64[0], p, n, nthreads)


def _as_float(x, name: str) -> np.ndarray:
    """as_float_array, keeping a 0-d input 0-d (np.ascontiguousarray makes it 1-d)."""
    arr = as_float_array(x, name)
    return arr.reshape(()) if x.ndim == 0 else arr


def _unary(int op, x, out, fn: str, double p=0.0) -> np.ndarray:
    x = _as_float(x, "x")
    y = _prepare_out(out, x, fn)
    _launch_elementwise(op, y, x, None, p)
    return y


def _binary(int op, dout, cache, cache_name: str, out, fn: str, double p=0.0) -> np.ndarray:
    dout, cache = _grad_inputs(dout, cache, cache_name)
    dx = _prepare_out(out, dout, fn)
    _launch_elementwise(op, dx, dout, cache, p)
    return dx


def relu_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = max(x, 0) elementwise, any shape; relu(nan) = nan."""
    return _unary(RELU_FWD, x, out, "relu_forward")


def relu_backward(dout: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout where y > 0 else 0. `y` may be the relu output or its input (same sign)."""
    return _binary(RELU_BWD, dout, y, "y", out, "relu_backward")


def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.01,
                       out: np.ndarray | None = None) -> np.ndarray:
    """y = x if x > 0 else negative_slope * x."""
    return _unary(LEAKY_FWD, x, out, "leaky_relu_forward", negative_slope)


def leaky_relu_backward(dout: np.ndarray, x: np.ndarray, negative_slope: float = 0.01,
                        out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout if x > 0 else negative_slope * dout."""
    return _binary(LEAKY_BWD, dout, x, "x", out, "leaky_relu_backward", negative_slope)


def sigmoid_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = 1 / (1 + exp(-x)), computed without overflow for any |x|."""
    return _unary(SIGMOID_FWD, x, out, "sigmoid_forward")


def sigmoid_backward(dout: np.ndarray, y: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout * y * (1 - y), from the sigmoid output y."""
    return _binary(SIGMOID_BWD, dout, y, "y", out, "sigmoid_backward")


def tanh_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """y = tanh(x)."""
    return _unary(TANH_FWD, x, out, "tanh_forward")


def tanh_backward(dout: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout * (1 - y^2), from the tanh output y."""
    return _binary(TANH_BWD, dout, y, "y", out, "tanh_backward")


def _gelu_op(approximate, fn: str, forward: bool) -> int:
    if approximate == "none":
        return GELU_FWD if forward else GELU_BWD
    if approximate == "tanh":
        return GELU_TANH_FWD if forward else GELU_TANH_BWD
    raise ValueError(f"{fn}: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_forward(x: np.ndarray, approximate: str = "none",
                 out: np.ndarray | None = None) -> np.ndarray:
    """GELU: x * Phi(x) with the erf form ("none") or PyTorch's tanh approximation ("tanh"):
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _unary(_gelu_op(approximate, "gelu_forward", True), x, out, "gelu_forward")


def gelu_backward(dout: np.ndarray, x: np.ndarray, approximate: str = "none",
                  out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout * gelu'(x) for the chosen form; x is the forward input."""
    op = _gelu_op(approximate, "gelu_backward", False)
    return _binary(op, dout, x, "x", out, "gelu_backward")


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
    x = _as_float(x, "x")
    split = _split_dim(x.shape, dim, fn)
    y = _prepare_out(out, x, fn)
    _launch_rows(mode, y, x, None, split)
    return y


def _softmax_backward(int mode, dout, y, dim, out, fn: str) -> np.ndarray:
    dout, y = _grad_inputs(dout, y, "y")
    split = _split_dim(dout.shape, dim, fn)
    dx = _prepare_out(out, dout, fn)
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
