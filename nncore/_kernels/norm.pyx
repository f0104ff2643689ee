# distutils: libraries = m
# norm.pyx: batch normalisation, forward (train / eval) and backward, fused per channel.
#
# Shapes: every input is viewed as (N, C, S): N batch, C channels, S = product of the
# spatial sizes (1 for (N, C) input, L for (N, C, L), H*W for (N, C, H, W)). M = N*S values
# per channel. save_mean / save_invstd are float64 (C,) caches written for the backward.
# OUT buffers are overwritten (=); the running statistics are the one exception: a training
# forward UPDATES running_mean / running_var IN PLACE (momentum m):
#     running = (1 - m) * running + m * batch_stat   (running_var gets the unbiased variance).
#
# Forward, training: mean and biased variance per channel (two passes, sums in double),
#     invstd = 1 / sqrt(var + eps), out = (x - mean) * (weight * invstd) + bias.
# Forward, eval: the same affine map with mean = running_mean, invstd from running_var.
# Backward (one kernel: two passes per channel, the sums then dinp):
#     dbias = sum dout, dweight = invstd * sum dout * (x - mean),
#     training: dinp = (dout - sum dout / M - (x - mean) * invstd^2 * sum dout*(x-mean) / M)
#                      * weight * invstd
#     eval:     dinp = dout * weight * invstd
# Parallelism: prange over channels; each channel is computed by one thread in a fixed order,
# so results are bit-identical for every thread count. Row loops (norm_simd.h) vectorise in
# 32 independent double lanes, chosen at run time (portable / AVX2 / AVX-512F).
from cython.parallel cimport prange
from libc.math cimport sqrt

import numpy as np

from ._checks import as_float_array, check_batch_norm_options, check_same_dtype
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


cdef extern from "norm_simd.h" nogil:
    double nnc_bn_sum_f(const float *x, Py_ssize_t n, int level)
    double nnc_bn_sum_d(const double *x, Py_ssize_t n, int level)
    double nnc_bn_sqdev_f(const float *x, double m, Py_ssize_t n, int level)
    double nnc_bn_sqdev_d(const double *x, double m, Py_ssize_t n, int level)
    void nnc_bn_dsums_f(const float *dy, const float *x, double m, Py_ssize_t n,
                        double *sdy, double *sdyx, int level)
    void nnc_bn_dsums_d(const double *dy, const double *x, double m, Py_ssize_t n,
                        double *sdy, double *sdyx, int level)
    void nnc_bn_affine_f(float *y, const float *x, float m, float a, float b, Py_ssize_t n,
                         int level)
    void nnc_bn_affine_d(double *y, const double *x, double m, double a, double b,
                         Py_ssize_t n, int level)
    void nnc_bn_dinp_f(float *dx, const float *dy, const float *x, float m, float c1,
                       float c2, float k, Py_ssize_t n, int level)
    void nnc_bn_dinp_d(double *dx, const double *dy, const double *x, double m, double c1,
                       double c2, double k, Py_ssize_t n, int level)

cdef enum:
    PARALLEL_MIN = 16384   # elements; below this a kernel runs on the calling thread


cdef void _bn_forward(floating[:, :, ::1] out,            # OUT (N, C, S)
                      double[::1] save_mean,              # OUT (C,)
                      double[::1] save_invstd,            # OUT (C,)
                      floating[::1] running_mean,         # IN/UPDATED (C,) when update
                      floating[::1] running_var,          # IN/UPDATED (C,) when update
                      const floating[:, :, ::1] inp,      # IN (N, C, S)
                      const floating[::1] weight,         # IN (C,)
                      const floating[::1] bias,           # IN (C,)
                      bint training, bint update, double momentum, double eps,
                      int nthreads) noexcept nogil:
    cdef Py_ssize_t N = inp.shape[0], C = inp.shape[1], S = inp.shape[2]
    cdef Py_ssize_t c, n
    cdef double M = <double>N * <double>S
    cdef double mean, var, invstd, s
    cdef int level = nncore_simd_level()
    for c in prange(C, schedule='static', num_threads=nthreads):
        if training:
            s = 0
            for n in range(N):
                if floating is float:
                    s = s + nnc_bn_sum_f(&inp[n, c, 0], S, level)
                else:
                    s = s + nnc_bn_sum_d(&inp[n, c, 0], S, level)
            mean = s / M
            s = 0
            for n in range(N):
                if floating is float:
                    s = s + nnc_bn_sqdev_f(&inp[n, c, 0], mean, S, level)
                else:
                    s = s + nnc_bn_sqdev_d(&inp[n, c, 0], mean, S, level)
            var = s / M
            if update:
                running_mean[c] = <floating>((1 - momentum) * running_mean[c] + momentum * mean)
                # M > 1 is checked by the wrapper; M == 1 would divide by zero (torch: nan)
                running_var[c] = <floating>((1 - momentum) * running_var[c]
                                            + momentum * (s / (M - 1) if M > 1 else var))
        else:
            mean = running_mean[c]
            var = running_var[c]
        invstd = 1 / sqrt(var + eps)
        save_mean[c] = mean
        save_invstd[c] = invstd
        for n in range(N):
            if floating is float:
                nnc_bn_affine_f(&out[n, c, 0], &inp[n, c, 0], <float>mean,
                                <float>(weight[c] * invstd), bias[c], S, level)
            else:
                nnc_bn_affine_d(&out[n, c, 0], &inp[n, c, 0], mean, weight[c] * invstd,
                                bias[c], S, level)


cdef void _bn_backward(floating[:, :, ::1] dinp,          # OUT (N, C, S) when need_dinp
                       floating[::1] dweight,             # OUT (C,)
                       floating[::1] dbias,               # OUT (C,)
                       const floating[:, :, ::1] dout,    # IN (N, C, S)
                       const floating[:, :, ::1] inp,     # IN (N, C, S)
                       const double[::1] save_mean,       # IN (C,)
                       const double[::1] save_invstd,     # IN (C,)
                       const floating[::1] weight,        # IN (C,)
                       bint training, bint need_dinp, int nthreads) noexcept nogil:
    cdef Py_ssize_t N = inp.shape[0], C = inp.shape[1], S = inp.shape[2]
    cdef Py_ssize_t c, n
    cdef double M = <double>N * <double>S
    cdef double mean, invstd, sdy, sdyx, c1, c2, k
    cdef int level = nncore_simd_level()
    for c in prange(C, schedule='static', num_threads=nthreads):
        mean = save_mean[c]
        invstd = save_invstd[c]
        sdy = 0
        sdyx = 0
        for n in range(N):
            if floating is float:
                nnc_bn_dsums_f(&dout[n, c, 0], &inp[n, c, 0], mean, S, &sdy, &sdyx, level)
            else:
                nnc_bn_dsums_d(&dout[n, c, 0], &inp[n, c, 0], mean, S, &sdy, &sdyx, level)
        dbias[c] = <floating>sdy
        dweight[c] = <floating>(sdyx * invstd)
        if not need_dinp:
            continue
        k = weight[c] * invstd
        if training:
            c1 = sdy / M
            c2 = sdyx * invstd * invstd / M
        else:
            c1 = 0
            c2 = 0
        for n in range(N):
            if floating is float:
                nnc_bn_dinp_f(&dinp[n, c, 0], &dout[n, c, 0], &inp[n, c, 0], <float>mean,
                              <float>c1, <float>c2, <float>k, S, level)
            else:
                nnc_bn_dinp_d(&dinp[n, c, 0], &dout[n, c, 0], &inp[n, c, 0], mean, c1, c2, k,
                              S, level)


def _forward_dispatch(floating[:, :, ::1] out, double[::1] save_mean, double[::1] save_invstd,
                      floating[::1] running_mean, floating[::1] running_var,
                      const floating[:, :, ::1] inp, const floating[::1] weight,
                      const floating[::1] bias, bint training, bint update, double momentum,
                      double eps, int nthreads):
    with nogil:
        _bn_forward(out, save_mean, save_invstd, running_mean, running_var, inp, weight, bias,
                    training, update, momentum, eps, nthreads)


def _backward_dispatch(floating[:, :, ::1] dinp, floating[::1] dweight, floating[::1] dbias,
                       const floating[:, :, ::1] dout, const floating[:, :, ::1] inp,
                       const double[::1] save_mean, const double[::1] save_invstd,
                       const floating[::1] weight, bint training, bint need_dinp, int nthreads):
    with nogil:
        _bn_backward(dinp, dweight, dbias, dout, inp, save_mean, save_invstd, weight, training,
                     need_dinp, nthreads)


def _view_ncs(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim < 2:
        raise ValueError(f"{name}: expected an input of at least 2 dimensions (N, C, ...), "
                         f"got shape {x.shape}")
    n, c = x.shape[0], x.shape[1]
    return x.reshape(n, c, -1) if x.size else x.reshape(n, c, int(np.prod(x.shape[2:])))


def _channel_vector(v, name: str, C: int, dtype, fill: float, writable: bool = False):
    if v is None:
        return np.full(C, fill, dtype)
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray or None, got {type(v).__name__}")
    if v.dtype != dtype:
        raise TypeError(f"{name}: dtype {v.dtype} does not match the input dtype {dtype}")
    if v.shape != (C,):
        raise ValueError(f"{name}: expected shape ({C},) for an input with {C} channels, "
                         f"got {v.shape}")
    if writable and not (v.flags.c_contiguous and v.flags.writeable):
        raise ValueError(f"{name}: must be a contiguous, writable array (updated in place)")
    return v if v.flags.c_contiguous else np.ascontiguousarray(v)


def _threads(size: int) -> int:
    return 1 if size < PARALLEL_MIN else get_num_threads()


def batch_norm_forward(inp, weight, bias, running_mean, running_var, bint training,
                       double momentum=0.1, double eps=1e-5):
    """Batch-normalise `inp` (N, C, *) per channel -> (out, save_mean, save_invstd).

    training=True normalises with the batch statistics and, when running_mean/running_var
    are given (both or neither), updates them in place with `momentum` (running_var receives
    the unbiased variance). training=False normalises with the running statistics (required).
    weight/bias (C,) may be None (1 and 0). save_mean/save_invstd are float64 (C,): the
    statistics used, kept for `batch_norm_backward`.
    """
    inp = as_float_array(inp, "input")
    x = _view_ncs(inp, "input")
    N, C, S = x.shape
    dt = inp.dtype
    check_batch_norm_options(inp.shape, N, S, training, running_mean, running_var, eps)
    update = training and running_mean is not None
    w = _channel_vector(weight, "weight", C, dt, 1.0)
    b = _channel_vector(bias, "bias", C, dt, 0.0)
    if running_mean is not None:
        rm = _channel_vector(running_mean, "running_mean", C, dt, 0.0, writable=update)
        rv = _channel_vector(running_var, "running_var", C, dt, 1.0, writable=update)
    else:
        rm = np.zeros(C, dt)
        rv = np.ones(C, dt)
    out = np.empty_like(inp)
    save_mean = np.empty(C, np.float64)
    save_invstd = np.empty(C, np.float64)
    if x.size:
        nthreads = _threads(x.size)
        _forward_dispatch(out.reshape(N, C, S), save_mean, save_invstd, rm, rv, x, w, b,
                          training, update, momentum, eps, nthreads)
    return out, save_mean, save_invstd


def batch_norm_backward(dout, inp, save_mean, save_invstd, weight, bint training,
                        bint need_dinp=True):
    """Gradients of `batch_norm_forward` -> (dinp or None, dweight, dbias).

    `save_mean`/`save_invstd` are the forward's caches; `weight` (C,) may be None (1).
    training selects the batch-statistics gradient (the statistics depend on the input) or the
    eval one (a fixed affine map). dweight/dbias are always computed (one pass gives them).
    """
    inp = as_float_array(inp, "input")
    dout = as_float_array(dout, "dout")
    check_same_dtype(input=inp, dout=dout)
    if dout.shape != inp.shape:
        raise ValueError(f"batch_norm_backward: dout shape {dout.shape} != input shape "
                         f"{inp.shape}")
    x = _view_ncs(inp, "input")
    dy = dout.reshape(x.shape)
    N, C, S = x.shape
    dt = inp.dtype
    w = _channel_vector(weight, "weight", C, dt, 1.0)
    sm = np.ascontiguousarray(save_mean, dtype=np.float64)
    si = np.ascontiguousarray(save_invstd, dtype=np.float64)
    if sm.shape != (C,) or si.shape != (C,):
        raise ValueError(f"batch_norm_backward: save_mean/save_invstd must have shape ({C},), "
                         f"got {sm.shape} and {si.shape}")
    dinp = np.empty_like(inp) if need_dinp else np.empty((1, 1, 1), dt)
    dinp3 = dinp.reshape(N, C, S) if need_dinp else dinp
    dweight = np.zeros(C, dt)
    dbias = np.zeros(C, dt)
    if x.size:
        nthreads = _threads(x.size)
        _backward_dispatch(dinp3, dweight, dbias, dy, x, sm, si, w, training, need_dinp,
                           nthreads)
    elif need_dinp:
        dinp[...] = 0
    return (dinp if need_dinp else None), dweight, dbias


def dispatched_simd() -> str:
    """Instruction set the per-channel row loops dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


dispatched_simd()  # fill simd.h's cache now, before any parallel region reads it
