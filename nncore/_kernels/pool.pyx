# pool.pyx: 2-D pooling (NCHW), forward and backward: max, average, adaptive average.
#
# Shapes: inp/dinp (N, C, H, W), out/dout (N, C, OH, OW); P = N*C planes. argmax (N, C, OH, OW)
# int64 holds, per output, the flat index ih*W + iw of the chosen input in its plane (as
# PyTorch's return_indices). Kernel KH,KW, stride sh,sw, padding ph,pw, dilation dh,dw.
# OUT buffers are overwritten (=), never accumulated.
#
# Semantics follow PyTorch's CPU kernels: max pooling pads with -inf (padded cells are never
# chosen) and propagates NaN; average pooling divides by the window clipped to the padded
# input (count_include_pad) or to the real input, or by divisor_override; adaptive windows are
# [floor(o*I/O), ceil((o+1)*I/O)).
#
# Parallelism: planes are independent, split statically over threads (every output and dinp
# element is written by exactly one thread, so results do not depend on the thread count).
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

import numpy as np

from ._parallel import get_num_threads
from ._pool_geometry import (  # noqa: F401  (pool_output_size, _Shape: re-exported)
    _adaptive_geometry,
    _check_input,
    _pool_geometry,
    _Shape,
    pool_output_size,
)

from ._types cimport floating


cdef enum:
    PARALLEL_MIN = 16384   # elements; below this a kernel runs on the calling thread


cdef struct PoolGeom:
    Py_ssize_t P, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw
    bint count_include_pad
    Py_ssize_t divisor       # > 0: divisor_override


cdef extern from "pool_max2x2.h" nogil:
    void nncore_max2x2_f32(float* out, int64_t* arg, const float* x, int64_t OH, int64_t OW,
                           int64_t W)
    void nncore_max2x2_f64(double* out, int64_t* arg, const double* x, int64_t OH, int64_t OW,
                           int64_t W)
    void nncore_maxpool_plane_f32(float* out, int64_t* arg, const float* x, const int64_t* geo)
    void nncore_maxpool_plane_f64(double* out, int64_t* arg, const double* x,
                                  const int64_t* geo)


cdef inline void _max_plane(floating* out, int64_t* arg, const floating* x,
                            const int64_t* geo) noexcept nogil:
    if floating is float:
        nncore_maxpool_plane_f32(out, arg, x, geo)
    else:
        nncore_maxpool_plane_f64(out, arg, x, geo)


cdef inline void _max_plane_2x2(floating* out, int64_t* arg, const floating* x,
                                const PoolGeom* g) noexcept nogil:
    """Kernel 2x2, stride 2, no padding, no dilation, every window inside the input."""
    if floating is float:
        nncore_max2x2_f32(out, arg, x, g.OH, g.OW, g.W)
    else:
        nncore_max2x2_f64(out, arg, x, g.OH, g.OW, g.W)


cdef void _maxpool_forward(floating* out, int64_t* arg, const floating* x, const PoolGeom* g,
                           int nthreads) noexcept nogil:
    cdef Py_ssize_t p, osz = g.OH * g.OW, isz = g.H * g.W
    cdef bint fast = (g.KH == 2 and g.KW == 2 and g.sh == 2 and g.sw == 2 and g.ph == 0
                      and g.pw == 0 and 2 * g.OH <= g.H and 2 * g.OW <= g.W)
    cdef int64_t geo[12]
    geo[0], geo[1], geo[2], geo[3], geo[4], geo[5] = g.H, g.W, g.OH, g.OW, g.KH, g.KW
    geo[6], geo[7], geo[8], geo[9], geo[10], geo[11] = g.sh, g.sw, g.ph, g.pw, g.dh, g.dw
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        if fast:
            _max_plane_2x2(out + p * osz, arg + p * osz, x + p * isz, g)
        else:
            _max_plane(out + p * osz, arg + p * osz, x + p * isz, geo)


cdef void _maxpool_backward(floating* dinp, const floating* dout, const int64_t* arg,
                            const PoolGeom* g, int nthreads) noexcept nogil:
    cdef Py_ssize_t p, i, j, osz = g.OH * g.OW, isz = g.H * g.W
    cdef floating* d
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        d = dinp + p * isz
        memset(d, 0, isz * sizeof(floating))
        for i in range(osz):
            j = arg[p * osz + i]
            if j >= 0 and j < isz:   # always true for indices from maxpool2d_forward
                d[j] += dout[p * osz + i]


cdef struct Window:
    Py_ssize_t h0, h1, w0, w1
    double div


cdef inline Window _avg_window(const PoolGeom* g, Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    # returned by value: variables written through pointers inside prange would be shared
    cdef Window r
    cdef Py_ssize_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw
    cdef Py_ssize_t he = min(hs + g.KH, g.H + g.ph), we = min(ws + g.KW, g.W + g.pw)
    cdef Py_ssize_t pool = (he - hs) * (we - ws)
    r.h0 = max(hs, 0)
    r.w0 = max(ws, 0)
    r.h1 = min(he, g.H)
    r.w1 = min(we, g.W)
    if g.divisor > 0:
        r.div = g.divisor
    elif g.count_include_pad:
        r.div = pool
    else:
        r.div = (r.h1 - r.h0) * (r.w1 - r.w0)
    return r


cdef void _avgpool_forward(floating* out, const floating* x, const PoolGeom* g,
                           int nthreads) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, osz = g.OH * g.OW, isz = g.H * g.W
    cdef double s
    cdef Window win
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        for oh in range(g.OH):
            for ow in range(g.OW):
                win = _avg_window(g, oh, ow)
                if win.h0 >= win.h1 or win.w0 >= win.w1:
                    out[p * osz + oh * g.OW + ow] = 0
                    continue
                s = 0
                for ih in range(win.h0, win.h1):
                    for iw in range(win.w0, win.w1):
                        s = s + x[p * isz + ih * g.W + iw]
                out[p * osz + oh * g.OW + ow] = <floating>(s / win.div)


cdef void _avgpool_backward(floating* dinp, const floating* dout, const PoolGeom* g,
                            int nthreads) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, osz = g.OH * g.OW, isz = g.H * g.W
    cdef floating v
    cdef Window win
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        memset(dinp + p * isz, 0, isz * sizeof(floating))
        for oh in range(g.OH):
            for ow in range(g.OW):
                win = _avg_window(g, oh, ow)
                if win.h0 >= win.h1 or win.w0 >= win.w1:
                    continue
                v = <floating>(dout[p * osz + oh * g.OW + ow] / win.div)
                for ih in range(win.h0, win.h1):
                    for iw in range(win.w0, win.w1):
                        dinp[p * isz + ih * g.W + iw] += v


cdef void _adaptive_avg_forward(floating* out, const floating* x, const PoolGeom* g,
                                int nthreads) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, h0, h1, w0, w1, osz = g.OH * g.OW, isz = g.H * g.W
    cdef double s
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        for oh in range(g.OH):
            h0 = (oh * g.H) // g.OH
            h1 = ((oh + 1) * g.H + g.OH - 1) // g.OH
            for ow in range(g.OW):
                w0 = (ow * g.W) // g.OW
                w1 = ((ow + 1) * g.W + g.OW - 1) // g.OW
                s = 0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        s = s + x[p * isz + ih * g.W + iw]
                out[p * osz + oh * g.OW + ow] = <floating>(s / ((h1 - h0) * (w1 - w0)))


cdef void _adaptive_avg_backward(floating* dinp, const floating* dout, const PoolGeom* g,
                                 int nthreads) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, h0, h1, w0, w1, osz = g.OH * g.OW, isz = g.H * g.W
    cdef floating v
    for p in prange(g.P, schedule='static', num_threads=nthreads):
        memset(dinp + p * isz, 0, isz * sizeof(floating))
        for oh in range(g.OH):
            h0 = (oh * g.H) // g.OH
            h1 = ((oh + 1) * g.H + g.OH - 1) // g.OH
            for ow in range(g.OW):
                w0 = (ow * g.W) // g.OW
                w1 = ((ow + 1) * g.W + g.OW - 1) // g.OW
                v = <floating>(dout[p * osz + oh * g.OW + ow] / ((h1 - h0) * (w1 - w0)))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        dinp[p * isz + ih * g.W + iw] += v


# ------------------------------------------------------------------------------ wrappers

cdef enum PlaneOp:
    AVG_FWD
    AVG_BWD
    ADAPTIVE_FWD
    ADAPTIVE_BWD


cdef void _plane_op(int op, floating* dst, const floating* src, const PoolGeom* g,
                    int nt) noexcept nogil:
    if op == AVG_FWD:
        _avgpool_forward(dst, src, g, nt)
    elif op == AVG_BWD:
        _avgpool_backward(dst, src, g, nt)
    elif op == ADAPTIVE_FWD:
        _adaptive_avg_forward(dst, src, g, nt)
    else:
        _adaptive_avg_backward(dst, src, g, nt)


cdef _launch_plane_op(int op, object dst, object src, const PoolGeom* g, int nt):
    """One average-pooling kernel (dst = f(src)) on flat float32 or float64 buffers."""
    cdef float[::1] d32
    cdef const float[::1] s32
    cdef double[::1] d64
    cdef const double[::1] s64
    if dst.dtype == np.float32:
        d32 = dst.reshape(-1)
        s32 = src.reshape(-1)
        with nogil:
            _plane_op(op, &d32[0], &s32[0], g, nt)
    else:
        d64 = dst.reshape(-1)
        s64 = src.reshape(-1)
        with nogil:
            _plane_op(op, &d64[0], &s64[0], g, nt)


def _threads(Py_ssize_t work) -> int:
    return 1 if work < PARALLEL_MIN else get_num_threads()


def _check_dout(dout, shape: tuple, dtype, fn: str) -> np.ndarray:
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"{fn}: dout must be a numpy.ndarray, got {type(dout).__name__}")
    if dout.dtype != dtype:
        raise TypeError(f"{fn}: dout dtype {dout.dtype} != input dtype {dtype}")
    if dout.shape != tuple(shape):
        raise ValueError(f"{fn}: dout shape {dout.shape} != output shape {tuple(shape)}")
    return np.ascontiguousarray(dout)


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out (N, C, OH, OW), argmax int64 (N, C, OH, OW)) of 2-D max pooling."""
    x = _check_input(x, "max_pool2d")
    cdef PoolGeom g = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode,
                                     "max_pool2d", True)
    N, C = x.shape[:2]
    out = np.empty((N, C, g.OH, g.OW), x.dtype)
    arg = np.empty((N, C, g.OH, g.OW), np.int64)
    cdef int nt = _threads(x.size)
    cdef int64_t[::1] av = arg.reshape(-1)
    cdef float[::1] o32, x32
    cdef double[::1] o64, x64
    if out.size == 0:
        return out, arg
    if x.dtype == np.float32:
        o32 = out.reshape(-1)
        x32 = x.reshape(-1)
        with nogil:
            _maxpool_forward(&o32[0], &av[0], &x32[0], &g, nt)
    else:
        o64 = out.reshape(-1)
        x64 = x.reshape(-1)
        with nogil:
            _maxpool_forward(&o64[0], &av[0], &x64[0], &g, nt)
    return out, arg


def maxpool2d_backward(dout, argmax, input_shape):
    """dinp (input_shape) of max pooling: each dout element added at its argmax position."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"max_pool2d_backward: input_shape must be 4-D, got {input_shape}")
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int64:
        raise TypeError("max_pool2d_backward: argmax must be an int64 ndarray")
    if not isinstance(dout, np.ndarray) or dout.dtype not in (np.float32, np.float64):
        raise TypeError("max_pool2d_backward: dout must be a float32/float64 ndarray")
    N, C, H, W = input_shape
    if dout.ndim != 4 or dout.shape[:2] != (N, C) or argmax.shape != dout.shape:
        raise ValueError(f"max_pool2d_backward: dout {dout.shape} / argmax {argmax.shape} do "
                         f"not match input shape {input_shape}")
    dout = np.ascontiguousarray(dout)
    argmax = np.ascontiguousarray(argmax)
    cdef PoolGeom g
    g.P = N * C
    g.H, g.W, g.OH, g.OW = H, W, dout.shape[2], dout.shape[3]
    dinp = np.empty(input_shape, dout.dtype)
    if dinp.size == 0 or dout.size == 0:
        dinp[...] = 0
        return dinp
    cdef int nt = _threads(dinp.size)
    cdef const int64_t[::1] av = argmax.reshape(-1)
    cdef float[::1] d32, o32
    cdef double[::1] d64, o64
    if dout.dtype == np.float32:
        d32 = dinp.reshape(-1)
        o32 = dout.reshape(-1)
        with nogil:
            _maxpool_backward(&d32[0], &o32[0], &av[0], &g, nt)
    else:
        d64 = dinp.reshape(-1)
        o64 = dout.reshape(-1)
        with nogil:
            _maxpool_backward(&d64[0], &o64[0], &av[0], &g, nt)
    return dinp


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None):
    """out (N, C, OH, OW) of 2-D average pooling (PyTorch's divisor rules)."""
    x = _check_input(x, "avg_pool2d")
    gd = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d", False)
    gd["count_include_pad"] = bool(count_include_pad)
    if divisor_override is not None:
        if int(divisor_override) <= 0:
            raise ValueError(f"avg_pool2d: divisor must be not zero, got {divisor_override}")
        gd["divisor"] = int(divisor_override)
    cdef PoolGeom g = gd
    out = np.empty((x.shape[0], x.shape[1], g.OH, g.OW), x.dtype)
    if out.size == 0:
        return out
    cdef int nt = _threads(x.size)
    _launch_plane_op(AVG_FWD, out, x, &g, nt)
    return out


def avgpool2d_backward(dout, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """dinp (input_shape) of avgpool2d_forward with the same options."""
    if not isinstance(dout, np.ndarray) or dout.dtype not in (np.float32, np.float64):
        raise TypeError("avg_pool2d_backward: dout must be a float32/float64 ndarray")
    gd = _pool_geometry(_Shape(input_shape), kernel_size, stride, padding, 1, ceil_mode,
                        "avg_pool2d", False)
    gd["count_include_pad"] = bool(count_include_pad)
    if divisor_override is not None:
        gd["divisor"] = int(divisor_override)
    cdef PoolGeom g = gd
    N, C, H, W = input_shape
    dout = _check_dout(dout, (N, C, g.OH, g.OW), dout.dtype, "avg_pool2d_backward")
    dinp = np.empty(tuple(input_shape), dout.dtype)
    if dinp.size == 0:
        return dinp
    cdef int nt = _threads(dinp.size)
    _launch_plane_op(AVG_BWD, dinp, dout, &g, nt)
    return dinp


def adaptive_avgpool2d_forward(x, output_size):
    """out (N, C, OH, OW): mean over PyTorch's adaptive windows."""
    x = _check_input(x, "adaptive_avg_pool2d")
    cdef PoolGeom g = _adaptive_geometry(x, output_size, "adaptive_avg_pool2d")
    out = np.empty((x.shape[0], x.shape[1], g.OH, g.OW), x.dtype)
    if out.size == 0:
        return out
    cdef int nt = _threads(x.size)
    _launch_plane_op(ADAPTIVE_FWD, out, x, &g, nt)
    return out


def adaptive_avgpool2d_backward(dout, input_shape):
    """dinp (input_shape) of adaptive_avgpool2d_forward; the output size is dout's."""
    if not isinstance(dout, np.ndarray) or dout.ndim != 4:
        raise ValueError("adaptive_avg_pool2d_backward: dout must be a 4-D ndarray")
    cdef PoolGeom g = _adaptive_geometry(_Shape(input_shape), tuple(dout.shape[2:]),
                                         "adaptive_avg_pool2d_backward")
    dout = _check_dout(dout, tuple(input_shape)[:2] + (g.OH, g.OW), dout.dtype,
                       "adaptive_avg_pool2d_backward")
    dinp = np.empty(tuple(input_shape), dout.dtype)
    if dinp.size == 0:
        return dinp
    cdef int nt = _threads(dinp.size)
    _launch_plane_op(ADAPTIVE_BWD, dinp, dout, &g, nt)
    return dinp
