# _ext.pyx: the Python face of nncore's CUDA kernels (nncore_cuda.h): a minimal DeviceArray
# (device pointer, shape, dtype) and one thin wrapper per C function. Built only with
# NNCORE_CUDA=1. The wrappers check return codes and raise (CudaError / OutOfMemoryError
# with the CUDA error string, IndexError for bad labels or ids, ValueError for bad
# arguments); shape and dtype validation with the CPU wrappers' messages lives in
# nncore/cuda/ops.py, the public entry point. Arrays are C-contiguous; float32, float64 and
# int64 (ids, targets, argmax).
from libc.stdint cimport int64_t, uint64_t, uintptr_t

import numpy as np

cimport numpy as cnp

from ._c_api cimport *  # the C API of nncore_cuda.h

from .errors import CudaError, OutOfMemoryError

cnp.import_array()

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


cdef int _check(int rc) except -1:
    """Raise the Python exception for a non-zero nncore_cuda_* status."""
    if rc == NNCORE_CUDA_OK:
        return 0
    message = nncore_cuda_last_error().decode("utf-8", "replace")
    if rc == NNCORE_CUDA_ERR_OOM:
        raise OutOfMemoryError(message)
    if rc == NNCORE_CUDA_ERR_INDEX:
        raise IndexError(message)
    if rc == NNCORE_CUDA_ERR_VALUE:
        raise ValueError(message)
    raise CudaError(message)


# --------------------------------------------------------------------------- runtime

def device_count() -> int:
    """Number of CUDA devices; 0 when the driver or device is missing (never raises)."""
    cdef int n = 0
    if nncore_cuda_device_count(&n) != NNCORE_CUDA_OK:
        return 0
    return n


def device_count_error() -> str:
    """Why device_count() is 0, or "" when it is not (the CUDA error string)."""
    cdef int n = 0
    if nncore_cuda_device_count(&n) != NNCORE_CUDA_OK:
        return nncore_cuda_last_error().decode("utf-8", "replace")
    return ""


def device_name(int device=0) -> str:
    cdef char buf[256]
    _check(nncore_cuda_device_name(device, buf, 256))
    return buf.decode("utf-8", "replace")


def set_device(int device) -> None:
    _check(nncore_cuda_set_device(device))


def runtime_version() -> int:
    cdef int v = 0
    _check(nncore_cuda_runtime_version(&v))
    return v


def synchronize() -> None:
    cdef int rc
    with nogil:
        rc = nncore_cuda_synchronize()
    _check(rc)


def empty_cache() -> None:
    _check(nncore_cuda_empty_cache())


def memory_stats() -> tuple:
    """(allocated, peak, reserved) bytes of the caching allocator."""
    cdef size_t a = 0, p = 0, r = 0
    nncore_cuda_memory_stats(&a, &p, &r)
    return a, p, r


def reset_peak_memory_stats() -> None:
    nncore_cuda_reset_peak()


# ------------------------------------------------------------------------ DeviceArray

cdef class DeviceArray:
    """A C-contiguous array in device memory: pointer, shape, dtype (float32/float64/int64).

    Memory comes from nncore's caching allocator and goes back to it when the owning array is
    garbage collected. `view`/`reshape` share the memory (and keep the owner alive).
    """
    cdef void *_ptr
    cdef readonly tuple shape
    cdef readonly object dtype
    cdef readonly Py_ssize_t nbytes
    cdef readonly object base        # the owning DeviceArray of a view, else None
    cdef bint _owns

    def __init__(self, shape, dtype=np.float32):
        """Uninitialised device array of `shape` and `dtype`."""
        dt = np.dtype(dtype)
        if dt not in _DTYPES:
            raise TypeError(f"DeviceArray: dtype must be float32, float64 or int64, got {dt}")
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
            int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"DeviceArray: negative dimension in shape {shape}")
        self.shape = shape
        self.dtype = dt
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        self.base = None
        self._owns = True
        cdef void *p = NULL
        _check(nncore_cuda_malloc(&p, <size_t>self.nbytes))
        self._ptr = p

    def __dealloc__(self):
        if self._owns and self._ptr != NULL:
            nncore_cuda_free(self._ptr)   # back to the cache; cannot fail for our own blocks
            self._ptr = NULL

    @property
    def ptr(self) -> int:
        return <uintptr_t>self._ptr

    @property
    def size(self) -> int:
        return self.nbytes // self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    @staticmethod
    def from_numpy(arr) -> DeviceArray:
        """Copy a NumPy array (made C-contiguous) to a new device array."""
        a = np.asarray(arr)
        if not a.flags.c_contiguous:   # (ascontiguousarray would make a 0-d array 1-d)
            a = np.ascontiguousarray(a)
        out = DeviceArray(a.shape, a.dtype)
        cdef cnp.ndarray src = a
        _check(nncore_cuda_copy_h2d(out._ptr, cnp.PyArray_DATA(src), <size_t>out.nbytes))
        return out

    @staticmethod
    def zeros(shape, dtype=np.float32) -> DeviceArray:
        out = DeviceArray(shape, dtype)
        out.zero_()
        return out

    def numpy(self) -> np.ndarray:
        """Copy to a new NumPy array (waits for queued kernels)."""
        out = np.empty(self.shape, self.dtype)
        cdef cnp.ndarray dst = out
        cdef int rc
        with nogil:
            rc = nncore_cuda_copy_d2h(cnp.PyArray_DATA(dst), self._ptr, <size_t>self.nbytes)
        _check(rc)
        return out

    def zero_(self) -> DeviceArray:
        _check(nncore_cuda_memset_zero(self._ptr, <size_t>self.nbytes))
        return self

    def copy_(self, DeviceArray src) -> DeviceArray:
        """Copy `src` (same dtype and number of elements) into this array."""
        if src.dtype != self.dtype or src.nbytes != self.nbytes:
            raise ValueError(f"copy_: source {src!r} does not match {self!r}")
        _check(nncore_cuda_copy_d2d(self._ptr, src._ptr, <size_t>self.nbytes))
        return self

    def copy(self) -> DeviceArray:
        return DeviceArray(self.shape, self.dtype).copy_(self)

    def view(self, Py_ssize_t offset, shape) -> DeviceArray:
        """The elements [offset, offset + prod(shape)) as an array of `shape` (shared)."""
        shape = tuple(int(s) for s in shape)
        cdef Py_ssize_t n = int(np.prod(shape, dtype=np.int64))
        cdef Py_ssize_t item = self.dtype.itemsize
        if offset < 0 or n < 0 or (offset + n) * item > self.nbytes:
            raise ValueError(f"view: elements [{offset}, {offset + n}) are outside {self!r}")
        cdef DeviceArray out = DeviceArray.__new__(DeviceArray)
        out._ptr = <char *>self._ptr + offset * item if self._ptr != NULL else NULL
        out.shape = shape
        out.dtype = self.dtype
        out.nbytes = n * item
        out.base = self if self.base is None else self.base
        out._owns = False
        return out

    def reshape(self, *shape) -> DeviceArray:
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"reshape: cannot reshape {self!r} to {shape}")
        return self.view(0, shape)

    def __getitem__(self, Py_ssize_t i) -> DeviceArray:
        """Sub-array i along the first axis (a shared view)."""
        if not self.shape:
            raise IndexError("a 0-d DeviceArray cannot be indexed")
        if i < 0:
            i += self.shape[0]
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"index {i} is out of range for {self!r}")
        rest = self.shape[1:]
        return self.view(i * int(np.prod(rest, dtype=np.int64)), rest)


cdef inline void *_p(object a) except? NULL:
    """Device pointer of a DeviceArray, NULL for None."""
    if a is None:
        return NULL
    return (<DeviceArray?>a)._ptr


cdef int _code(object a) except -1:
    dt = (<DeviceArray?>a).dtype
    if dt == np.float32:
        return NNCORE_CUDA_F32
    if dt == np.float64:
        return NNCORE_CUDA_F64
    raise TypeError(f"expected a float32 or float64 DeviceArray, got {dt}")


# ---------------------------------------------------------------------------- kernels
# Each wrapper: (outputs, caches, inputs, sizes) as in nncore_cuda.h; arrays are DeviceArray.

def gemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, double alpha, a,
         int64_t lda, b, int64_t ldb, double beta, c, int64_t ldc, bias, int act) -> None:
    _check(nncore_cuda_gemm(_code(a), trans_a, trans_b, M, N, K, alpha, _p(a), lda, _p(b), ldb,
                            beta, _p(c), ldc, _p(bias), act))


def gemm_batched(bint trans_a, bint trans_b, int64_t Bt, int64_t M, int64_t N, int64_t K, a,
                 int64_t lda, int64_t sa, b, int64_t ldb, int64_t sb, c, int64_t ldc,
                 int64_t sc) -> None:
    _check(nncore_cuda_gemm_batched(_code(a), trans_a, trans_b, Bt, M, N, K, _p(a), lda, sa,
                                    _p(b), ldb, sb, _p(c), ldc, sc))


def activation_forward(int op, y, x, double p=0.0) -> None:
    _check(nncore_cuda_activation_forward(_code(x), op, _p(y), _p(x), x.size, p))


def activation_backward(int op, dx, dout, cache, double p=0.0) -> None:
    _check(nncore_cuda_activation_backward(_code(dout), op, _p(dx), _p(dout), _p(cache),
                                           dout.size, p))


def binary(int op, out, a, b) -> None:
    _check(nncore_cuda_binary(_code(a), op, _p(out), _p(a), _p(b), a.size))


def axpby(out, double alpha, x, double beta, y) -> None:
    _check(nncore_cuda_axpby(_code(x), _p(out), alpha, _p(x), beta, _p(y), x.size))


def fill(out, double value) -> None:
    _check(nncore_cuda_fill(_code(out), _p(out), value, out.size))


def sum_rows(out, x, int64_t M, int64_t N) -> None:
    _check(nncore_cuda_sum_rows(_code(x), _p(out), _p(x), M, N))


def affine(out, double alpha, x, double beta) -> None:
    _check(nncore_cuda_affine(_code(x), _p(out), alpha, _p(x), beta, x.size))


cdef int _any_code(object a) except -1:
    dt = (<DeviceArray?>a).dtype
    return NNCORE_CUDA_I64 if dt == np.int64 else _code(a)


def cast(out, x) -> None:
    _check(nncore_cuda_cast(_any_code(out), _p(out), _any_code(x), _p(x), x.size))


def sum_all_scratch_size() -> int:
    return nncore_cuda_sum_all_scratch_size()


def sum_all(out, scratch, x, bint square) -> None:
    _check(nncore_cuda_sum_all(_code(x), _p(out), _p(scratch), _p(x), x.size, square))


def dropout(out, x, uint64_t seed, uint64_t thr, double scale, int64_t group) -> None:
    _check(nncore_cuda_dropout(_code(x), _p(out), _p(x), x.size, seed, thr, scale, group))


def cross_entropy_forward(probs, loss, logits, target, int64_t N, int64_t C,
                          int64_t ignore_index, double label_smoothing, int reduction,
                          int64_t host_count=-1) -> int:
    """Returns the number of non-ignored rows. host_count >= 0: the targets were checked
    on the host (and that many rows counted), so the device check and its sync are skipped."""
    cdef int64_t count = 0, bad_pos = -1, bad_value = 0
    _check(nncore_cuda_cross_entropy_forward(
        _code(logits), _p(probs), _p(loss), _p(logits), <const int64_t *>_p(target), N, C,
        ignore_index, label_smoothing, reduction, host_count, &count, &bad_pos, &bad_value))
    return count


def cross_entropy_backward(dlogits, probs, target, dloss, double scale, int64_t N, int64_t C,
                           int64_t ignore_index, double label_smoothing,
                           int reduction, int64_t host_count=-1) -> None:
    cdef int64_t bad_pos = -1, bad_value = 0
    _check(nncore_cuda_cross_entropy_backward(
        _code(probs), _p(dlogits), _p(probs), <const int64_t *>_p(target), _p(dloss), scale, N,
        C, ignore_index, label_smoothing, reduction, host_count, &bad_pos, &bad_value))


cdef nncore_cuda_conv_geom _conv_geom(tuple g):
    cdef nncore_cuda_conv_geom q
    (q.N, q.C, q.H, q.W, q.OC, q.OH, q.OW, q.KH, q.KW, q.sh, q.sw, q.pt, q.pl, q.dh, q.dw,
     q.G) = g
    return q


def conv2d_forward(out, inp, weight, bias, tuple geom) -> None:
    """geom: (N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G)."""
    cdef nncore_cuda_conv_geom q = _conv_geom(geom)
    _check(nncore_cuda_conv2d_forward(_code(inp), _p(out), _p(inp), _p(weight), _p(bias), &q))


def conv2d_backward(dinp, dweight, dbias, dout, inp, weight, tuple geom) -> None:
    cdef nncore_cuda_conv_geom q = _conv_geom(geom)
    _check(nncore_cuda_conv2d_backward(_code(inp), _p(dinp), _p(dweight), _p(dbias), _p(dout),
                                       _p(inp), _p(weight), &q))


cdef nncore_cuda_pool_geom _pool_geom(tuple g):
    cdef nncore_cuda_pool_geom q
    (q.P, q.H, q.W, q.OH, q.OW, q.KH, q.KW, q.sh, q.sw, q.ph, q.pw, q.dh, q.dw,
     q.count_include_pad, q.divisor) = g
    return q


def maxpool2d_forward(out, argmax, x, tuple geom) -> None:
    """geom: (P, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, count_include_pad, divisor)."""
    cdef nncore_cuda_pool_geom q = _pool_geom(geom)
    _check(nncore_cuda_maxpool2d_forward(_code(x), _p(out), <int64_t *>_p(argmax), _p(x), &q))


def maxpool2d_backward(dinp, dout, argmax, tuple geom, bint with_window) -> None:
    cdef nncore_cuda_pool_geom q = _pool_geom(geom)
    _check(nncore_cuda_maxpool2d_backward(_code(dout), _p(dinp), _p(dout),
                                          <const int64_t *>_p(argmax), &q, with_window))


def avgpool2d_forward(out, x, tuple geom) -> None:
    cdef nncore_cuda_pool_geom q = _pool_geom(geom)
    _check(nncore_cuda_avgpool2d_forward(_code(x), _p(out), _p(x), &q))


def avgpool2d_backward(dinp, dout, tuple geom) -> None:
    cdef nncore_cuda_pool_geom q = _pool_geom(geom)
    _check(nncore_cuda_avgpool2d_backward(_code(dout), _p(dinp), _p(dout), &q))


def lstm_pointwise_forward(gates, c_prev, c, tc, h, int64_t B, int64_t H) -> None:
    _check(nncore_cuda_lstm_pointwise_forward(_code(gates), _p(gates), _p(c_prev), _p(c),
                                              _p(tc), _p(h), B, H))


def lstm_pointwise_backward(dgates, dc, dh, dout, gates, c_prev, tc, int64_t B,
                            int64_t H) -> None:
    _check(nncore_cuda_lstm_pointwise_backward(_code(gates), _p(dgates), _p(dc), _p(dh),
                                               _p(dout), _p(gates), _p(c_prev), _p(tc), B, H))


def gru_pointwise_forward(gates, gh, h_prev, h, int64_t B, int64_t H) -> None:
    _check(nncore_cuda_gru_pointwise_forward(_code(gates), _p(gates), _p(gh), _p(h_prev), _p(h),
                                             B, H))


def gru_pointwise_backward(dgi, dgh, dh, dout, gates, gh, h_prev, int64_t B,
                           int64_t H) -> None:
    _check(nncore_cuda_gru_pointwise_backward(_code(gates), _p(dgi), _p(dgh), _p(dh), _p(dout),
                                              _p(gates), _p(gh), _p(h_prev), B, H))


def embedding_forward(out, ids, weight, int64_t N, int64_t V, int64_t D,
                      bint host_checked=False) -> None:
    cdef int64_t bad_pos = -1, bad_value = 0
    _check(nncore_cuda_embedding_forward(_code(weight), _p(out), <const int64_t *>_p(ids),
                                         _p(weight), N, V, D, host_checked, &bad_pos,
                                         &bad_value))


def embedding_backward(dweight, dout, order, starts, int64_t V, int64_t D,
                       int64_t padding_idx, bint scale_by_freq) -> None:
    _check(nncore_cuda_embedding_backward(_code(dout), _p(dweight), _p(dout),
                                          <const int64_t *>_p(order),
                                          <const int64_t *>_p(starts), V, D, padding_idx,
                                          scale_by_freq))


def batch_norm_forward(out, save_mean, save_invstd, running_mean, running_var, inp, weight,
                       bias, int64_t N, int64_t C, int64_t S, bint training, bint update,
                       double momentum, double eps) -> None:
    _check(nncore_cuda_batch_norm_forward(
        _code(inp), _p(out), <double *>_p(save_mean), <double *>_p(save_invstd),
        _p(running_mean), _p(running_var), _p(inp), _p(weight), _p(bias), N, C, S, training,
        update, momentum, eps))


def batch_norm_backward(dinp, dweight, dbias, dout, inp, save_mean, save_invstd, weight,
                        int64_t N, int64_t C, int64_t S, bint training) -> None:
    _check(nncore_cuda_batch_norm_backward(
        _code(inp), _p(dinp), _p(dweight), _p(dbias), _p(dout), _p(inp),
        <const double *>_p(save_mean), <const double *>_p(save_invstd), _p(weight), N, C, S,
        training))


def sgd_step(param, grad, momentum_buf, double lr, double momentum, double dampening,
             double weight_decay, bint nesterov, bint maximize, bint first_step) -> None:
    _check(nncore_cuda_sgd_step(_code(param), _p(param), _p(grad), _p(momentum_buf),
                                param.size, lr, momentum, dampening, weight_decay, nesterov,
                                maximize, first_step))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, double lr, double beta1,
              double beta2, double eps, double weight_decay, bint amsgrad, bint maximize,
              bint decoupled, double step_size, double bc2_sqrt) -> None:
    _check(nncore_cuda_adam_step(_code(param), _p(param), _p(grad), _p(exp_avg),
                                 _p(exp_avg_sq), _p(max_exp_avg_sq), param.size, lr, beta1,
                                 beta2, eps, weight_decay, amsgrad, maximize, decoupled,
                                 step_size, bc2_sqrt))
