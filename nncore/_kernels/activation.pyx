# distutils: libraries = m
# activation.pyx: elementwise activations (relu, leaky_relu, sigmoid, tanh, gelu), forward and
# backward. Softmax and log-softmax live in softmax.pyx.
#
# Shapes: any shape; each op works on the flat buffer of n elements.
# OUT buffers are overwritten (=), never accumulated; `out=` may be the input array itself.
#
# Parallelism: each thread gets one static chunk of the flat buffer (a whole number of cache
# lines). Every output element is computed by one thread, so results are the same for any
# thread count. Below PARALLEL_MIN elements everything runs serially (thread start-up would
# cost more than the work).
# NaN semantics follow PyTorch: relu(nan) = nan, sigmoid(nan) = nan.
# Vector code (AVX-512 / AVX2, chosen at run time, see simd.h): sigmoid, tanh, tanh-GELU and,
# in float32, exact GELU with a polynomial erf (activation_elementwise.h). The portable level
# runs the plain libm loops below, which are also the reference for the vector bodies;
# float64 exact GELU keeps libm's erf at every level.
from cython.parallel cimport prange
from libc.math cimport erf, erff, exp, expf, fabs, fabsf, tanh, tanhf

import numpy as np

from ._checks import as_float_array, capped_simd_level, grad_inputs, prepare_out
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


cdef extern from "activation_elementwise.h" nogil:
    int NNCORE_EW_SIGMOID
    int NNCORE_EW_TANH
    int NNCORE_EW_GELU_TANH
    int NNCORE_EW_GELU_TANH_GRAD
    int NNCORE_EW_GELU
    int NNCORE_EW_GELU_GRAD
    int NNCORE_EW_RELU
    int NNCORE_EW_RELU_GRAD
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
    if op == GELU_FWD:
        return NNCORE_EW_GELU             # float32 only: float64 returns to the libm loop
    if op == GELU_BWD:
        return NNCORE_EW_GELU_GRAD
    if op == RELU_FWD:
        return NNCORE_EW_RELU
    if op == RELU_BWD:
        return NNCORE_EW_RELU_GRAD
    return -1


cdef void _elementwise_range(int op, floating *out, const floating *a, const floating *b,
                             floating p, Py_ssize_t lo, Py_ssize_t hi, int level) noexcept nogil:
    """One thread's chunk [lo, hi) of the flat buffers. p: negative slope (leaky relu).

    Sigmoid, tanh, tanh-GELU and float32 GELU go to the vector bodies of
    activation_elementwise.h above the portable level; the loops below are the portable path
    and the reference for those."""
    cdef Py_ssize_t i
    cdef floating v, w, e, t, s, z, d, cdf, pdf, right
    cdef floating half = 0.5, one = 1, zero = 0
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
        # both loads unconditional, so the select vectorises (a load under the condition
        # compiled to a branch per element: ~25x slower on random signs)
        for i in range(lo, hi):
            v = a[i]
            w = b[i]
            out[i] = 0 if w <= 0 else v
    elif op == LEAKY_FWD:                        # v * (1 or slope): a select of two
        for i in range(lo, hi):                  # constants vectorises; `v if v > 0 else v * p`
            v = a[i]                             # compiled to a branch per element (~20x slower)
            d = one if v > zero else p
            out[i] = v * d
    elif op == LEAKY_BWD:                        # b: input
        for i in range(lo, hi):
            w = b[i]
            d = one if w > zero else p
            out[i] = a[i] * d
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
# Python wrappers: validate, allocate (or check `out`), release the GIL.

def dispatched_simd() -> str:
    """Instruction set this module's sigmoid / tanh / tanh-GELU bodies dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _cap_simd(level: str | None) -> str:
    """Test hook: cap sigmoid / tanh / tanh-GELU at `level` ('portable', 'avx2', 'avx512'),
    never above what the CPU supports (softmax.pyx keeps its own level); None restores the
    detected level. Returns the level in use."""
    global nncore_simd_cached
    nncore_simd_cached = capped_simd_level(level, nncore_simd_detect())
    return dispatched_simd()


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


def _unary(int op, x, out, fn: str, double p=0.0) -> np.ndarray:
    x = as_float_array(x, "x")
    y = prepare_out(out, x, fn)
    _launch_elementwise(op, y, x, None, p)
    return y


def _binary(int op, dout, cache, cache_name: str, out, fn: str, double p=0.0) -> np.ndarray:
    dout, cache = grad_inputs(dout, cache, cache_name)
    dx = prepare_out(out, dout, fn)
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

