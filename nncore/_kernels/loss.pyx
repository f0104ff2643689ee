# distutils: libraries = m
# loss.pyx: fused softmax + cross-entropy, and negative log-likelihood; forward and backward.
#
# Shapes: N rows (batch), C classes. logits, probs, dlogits, logp, dlogp are (N, C); target is
# (N,) class indices (any integer dtype, read as int64); loss is (N,) for reduction="none",
# else a 0-d array. OUT buffers are overwritten (=), never accumulated.
#
# PyTorch semantics: rows whose target == ignore_index add 0 to the loss, get a zero gradient
# and are left out of the mean's divisor (all rows ignored -> mean is nan). With label
# smoothing eps: loss_i = (1 - eps) * nll_i + eps * mean_c(-log p_ic).
# Targets are checked in C inside the nogil loop: the first row whose label is neither
# ignore_index nor in [0, C) is recorded and raised as IndexError after the loop.
#
# Parallelism and determinism: rows are grouped in fixed blocks of ROWS_PER_BLOCK; prange
# hands blocks to threads (static schedule) and each block writes its own partial sum (double,
# also for float32). The calling thread then adds the block sums in block order. The block
# layout does not depend on the thread count, so the reduced loss has the same bits for any
# number of threads. Below PARALLEL_MIN elements everything runs on the calling thread.
from cython.parallel cimport prange
from libc.math cimport log
from libc.stdint cimport int64_t

import numpy as np

from ._checks import as_float_array, as_index_array, capped_simd_level, check_shape
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


from ._activation_simd cimport (
    nncore_exp_sub_f32, nncore_exp_sub_f64, nncore_sum_f32,
    nncore_sum_f64, nncore_max_f32, nncore_max_f64)

cdef extern from "simd.h" nogil:
    int nncore_simd_cached       # this module's cached level (simd.h keeps one per module)
    int nncore_simd_detect()

cdef enum:
    PARALLEL_MIN = 32768   # elements; below this a kernel runs on the calling thread
    ROWS_PER_BLOCK = 16    # rows per partial sum (fixed: results independent of threads)


include "loss_args.pxi"


cdef inline int _threads_for(Py_ssize_t nblocks, Py_ssize_t work, int nthreads) noexcept nogil:
    if work < PARALLEL_MIN or nthreads < 1:
        return 1
    return <int>min(<Py_ssize_t>nthreads, nblocks)


# ---------------------------------------------------------------------------------------------
# Cross-entropy: probs = softmax(logits) (the cache for backward) and the per-row loss.

cdef void _ce_forward_block(floating[:, ::1] probs,        # OUT (N, C)
                            floating[::1] loss_rows,        # OUT (N,) or (0,) when reduced
                            double[::1] block_sum,          # OUT (nblocks,)
                            const floating[:, ::1] logits,  # IN (N, C)
                            const int64_t[::1] target,      # IN (N,), already checked
                            Py_ssize_t b, int64_t ignore_index, double eps,
                            int level) noexcept nogil:
    cdef Py_ssize_t N = logits.shape[0], C = logits.shape[1]
    cdef Py_ssize_t i, c, lo = b * ROWS_PER_BLOCK, hi = min(N, lo + ROWS_PER_BLOCK)
    cdef floating m
    cdef double s, r, lse, loss, total = 0
    cdef int64_t t
    cdef floating *p
    cdef const floating *x
    for i in range(lo, hi):
        x = &logits[i, 0]
        p = &probs[i, 0]
        if floating is float:
            m = nncore_max_f32(x, C, level)
            s = nncore_exp_sub_f32(p, x, m, C, level)
        else:
            m = nncore_max_f64(x, C, level)
            s = nncore_exp_sub_f64(p, x, m, C, level)
        r = 1.0 / s
        for c in range(C):
            p[c] = <floating>(p[c] * r)
        t = target[i]
        if t == ignore_index:
            loss = 0
        else:
            lse = m + log(s)                     # log(sum(exp(x))), without overflow
            loss = lse - x[t]
            if eps != 0:
                if floating is float:
                    s = nncore_sum_f32(x, C, level)
                else:
                    s = nncore_sum_f64(x, C, level)
                loss = (1 - eps) * loss + eps * (lse - s / C)
        if loss_rows.shape[0] > 0:
            loss_rows[i] = <floating>loss
        total += loss
    block_sum[b] = total


cdef void _ce_forward(floating[:, ::1] probs, floating[::1] loss_rows, double[::1] block_sum,
                      const floating[:, ::1] logits, const int64_t[::1] target,
                      int64_t ignore_index, double eps, int nthreads) noexcept nogil:
    cdef Py_ssize_t b, nblocks = block_sum.shape[0]
    cdef int level = nncore_simd_level()
    cdef int nt = _threads_for(nblocks, logits.shape[0] * logits.shape[1], nthreads)
    if nt <= 1:
        for b in range(nblocks):
            _ce_forward_block(probs, loss_rows, block_sum, logits, target, b, ignore_index,
                              eps, level)
    else:
        for b in prange(nblocks, schedule='static', num_threads=nt):
            _ce_forward_block(probs, loss_rows, block_sum, logits, target, b, ignore_index,
                              eps, level)


cdef void _ce_backward_block(floating[:, ::1] dlogits,      # OUT (N, C)
                             const floating[:, ::1] probs,  # IN (N, C)
                             const int64_t[::1] target,     # IN (N,), already checked
                             const floating[::1] dloss_rows,  # IN (N,) or (0,): use `scale`
                             double scale, Py_ssize_t b, int64_t ignore_index,
                             double eps) noexcept nogil:
    cdef Py_ssize_t N = probs.shape[0], C = probs.shape[1]
    cdef Py_ssize_t i, c, lo = b * ROWS_PER_BLOCK, hi = min(N, lo + ROWS_PER_BLOCK)
    cdef double g, off = eps / C
    cdef int64_t t
    for i in range(lo, hi):
        t = target[i]
        if t == ignore_index:
            for c in range(C):
                dlogits[i, c] = 0
            continue
        g = dloss_rows[i] if dloss_rows.shape[0] > 0 else scale
        for c in range(C):                       # g * (p - eps/C - (1 - eps) * onehot)
            dlogits[i, c] = <floating>(g * (probs[i, c] - off))
        dlogits[i, t] = <floating>(g * ((probs[i, t] - off) - (1 - eps)))


cdef void _ce_backward(floating[:, ::1] dlogits, const floating[:, ::1] probs,
                       const int64_t[::1] target, const floating[::1] dloss_rows,
                       double scale, int64_t ignore_index, double eps,
                       int nthreads) noexcept nogil:
    cdef Py_ssize_t N = probs.shape[0]
    cdef Py_ssize_t b, nblocks = (N + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    cdef int nt = _threads_for(nblocks, N * probs.shape[1], nthreads)
    if nt <= 1:
        for b in range(nblocks):
            _ce_backward_block(dlogits, probs, target, dloss_rows, scale, b, ignore_index, eps)
    else:
        for b in prange(nblocks, schedule='static', num_threads=nt):
            _ce_backward_block(dlogits, probs, target, dloss_rows, scale, b, ignore_index, eps)


# ---------------------------------------------------------------------------------------------
# NLL on log-probabilities: loss_i = -logp[i, target_i]. O(N) work: always serial.

cdef void _nll_forward(floating[::1] loss_rows, double *total, const floating[:, ::1] logp,
                       const int64_t[::1] target, int64_t ignore_index) noexcept nogil:
    cdef Py_ssize_t i, N = logp.shape[0]
    cdef double loss, acc = 0
    cdef int64_t t
    for i in range(N):
        t = target[i]
        loss = 0 if t == ignore_index else -(<double>logp[i, t])
        if loss_rows.shape[0] > 0:
            loss_rows[i] = <floating>loss
        acc += loss
    total[0] = acc


cdef void _nll_backward(floating[:, ::1] dlogp, const int64_t[::1] target,
                        const floating[::1] dloss_rows, double scale,
                        int64_t ignore_index) noexcept nogil:
    """dlogp is zero on entry; writes -g at each non-ignored target."""
    cdef Py_ssize_t i, N = dlogp.shape[0]
    cdef int64_t t
    for i in range(N):
        t = target[i]
        if t != ignore_index:
            dlogp[i, t] = <floating>(-(dloss_rows[i] if dloss_rows.shape[0] > 0 else scale))


# ---------------------------------------------------------------------------------------------
# Python wrappers: validate, allocate, release the GIL.

def dispatched_simd() -> str:
    """Instruction set this module's row kernels (max, exp, sums) dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _cap_simd(level: str | None) -> str:
    """Test hook: cap this module's dispatch at `level` ('portable', 'avx2', 'avx512'), never
    above what the CPU supports; None restores the detected level. Returns the level in use."""
    global nncore_simd_cached
    nncore_simd_cached = capped_simd_level(level, nncore_simd_detect())
    return dispatched_simd()


def cross_entropy_forward(logits: np.ndarray, target: np.ndarray, reduction: str = "mean",
                          ignore_index: int = -100, label_smoothing: float = 0.0) -> tuple:
    """Fused log-softmax + NLL over classes (PyTorch's F.cross_entropy on (N, C) logits).

    Returns (loss, probs): loss is a 0-d array ("mean"/"sum") or (N,) ("none"); probs (N, C)
    is softmax(logits), the cache cross_entropy_backward needs.
    """
    fn = "cross_entropy"
    logits = as_float_array(logits, "logits", ndim=2)
    cdef int red = _reduction_code(reduction, fn)
    cdef double eps = _smoothing(label_smoothing, fn)
    cdef Py_ssize_t N = logits.shape[0], C = logits.shape[1]
    if C == 0:
        raise ValueError(f"{fn}: logits must have at least one class, got shape {logits.shape}")
    target, count = _checked_targets(target, N, C, ignore_index, fn)
    cdef Py_ssize_t nblocks = (N + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    cdef int nthreads = get_num_threads()
    cdef int64_t ignore = ignore_index
    probs = np.empty_like(logits)
    loss_rows = np.empty(N if red == RED_NONE else 0, logits.dtype)
    block_sum = np.zeros(nblocks, np.float64)
    cdef double[::1] bs = block_sum
    cdef const int64_t[::1] tv = target
    cdef float[:, ::1] p32
    cdef const float[:, ::1] x32
    cdef float[::1] l32
    cdef double[:, ::1] p64
    cdef const double[:, ::1] x64
    cdef double[::1] l64
    if logits.dtype == np.float32:
        p32, x32, l32 = probs, logits, loss_rows
        with nogil:
            _ce_forward(p32, l32, bs, x32, tv, ignore, eps, nthreads)
    else:
        p64, x64, l64 = probs, logits, loss_rows
        with nogil:
            _ce_forward(p64, l64, bs, x64, tv, ignore, eps, nthreads)
    if red == RED_NONE:
        return loss_rows, probs
    cdef double total = 0
    cdef Py_ssize_t b
    for b in range(nblocks):                     # block order: same bits for any thread count
        total += bs[b]
    if red == RED_MEAN:
        total = total / count if count > 0 else float("nan")
    return np.array(total, dtype=logits.dtype), probs


def cross_entropy_backward(dloss, probs: np.ndarray, target: np.ndarray,
                           reduction: str = "mean", ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> np.ndarray:
    """dlogits (N, C) = g_i * (probs - (1 - eps) * onehot(target) - eps / C), 0 on ignored rows.

    g_i is dloss / (non-ignored rows) for "mean", dloss for "sum", dloss[i] for "none".
    """
    fn = "cross_entropy"
    probs = as_float_array(probs, "probs", ndim=2)
    cdef int red = _reduction_code(reduction, fn)
    cdef double eps = _smoothing(label_smoothing, fn)
    cdef Py_ssize_t N = probs.shape[0], C = probs.shape[1]
    target, count = _checked_targets(target, N, C, ignore_index, fn)
    dloss_rows, scale = _grad_scale(dloss, red, N, count, probs.dtype, fn)
    cdef int nthreads = get_num_threads()
    cdef int64_t ignore = ignore_index
    cdef double sc = scale
    dlogits = np.empty_like(probs)
    cdef const int64_t[::1] tv = target
    cdef float[:, ::1] d32
    cdef const float[:, ::1] p32
    cdef const float[::1] g32
    cdef double[:, ::1] d64
    cdef const double[:, ::1] p64
    cdef const double[::1] g64
    if probs.dtype == np.float32:
        d32, p32, g32 = dlogits, probs, dloss_rows
        with nogil:
            _ce_backward(d32, p32, tv, g32, sc, ignore, eps, nthreads)
    else:
        d64, p64, g64 = dlogits, probs, dloss_rows
        with nogil:
            _ce_backward(d64, p64, tv, g64, sc, ignore, eps, nthreads)
    return dlogits


def nll_loss_forward(logp: np.ndarray, target: np.ndarray, reduction: str = "mean",
                     ignore_index: int = -100) -> np.ndarray:
    """Negative log-likelihood: loss_i = -logp[i, target_i] (PyTorch's F.nll_loss on (N, C)).

    Returns a 0-d array ("mean"/"sum") or (N,) ("none").
    """
    fn = "nll_loss"
    logp = as_float_array(logp, "logp", ndim=2)
    cdef int red = _reduction_code(reduction, fn)
    cdef Py_ssize_t N = logp.shape[0], C = logp.shape[1]
    target, count = _checked_targets(target, N, C, ignore_index, fn)
    cdef int64_t ignore = ignore_index
    cdef double total = 0
    loss_rows = np.empty(N if red == RED_NONE else 0, logp.dtype)
    cdef const int64_t[::1] tv = target
    cdef const float[:, ::1] x32
    cdef float[::1] l32
    cdef const double[:, ::1] x64
    cdef double[::1] l64
    if logp.dtype == np.float32:
        x32, l32 = logp, loss_rows
        with nogil:
            _nll_forward(l32, &total, x32, tv, ignore)
    else:
        x64, l64 = logp, loss_rows
        with nogil:
            _nll_forward(l64, &total, x64, tv, ignore)
    if red == RED_NONE:
        return loss_rows
    if red == RED_MEAN:
        total = total / count if count > 0 else float("nan")
    return np.array(total, dtype=logp.dtype)


def nll_loss_backward(dloss, target: np.ndarray, N: int, C: int, reduction: str = "mean",
                      ignore_index: int = -100, dtype=np.float64) -> np.ndarray:
    """dlogp (N, C): -g_i at (i, target_i), 0 elsewhere and on ignored rows (g_i as in
    cross_entropy_backward)."""
    fn = "nll_loss"
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype}")
    if N < 0 or C < 0:
        raise ValueError(f"{fn}: N and C must be >= 0, got N={N}, C={C}")
    cdef int red = _reduction_code(reduction, fn)
    target, count = _checked_targets(target, N, C, ignore_index, fn)
    dloss_rows, scale = _grad_scale(dloss, red, N, count, dtype, fn)
    cdef int64_t ignore = ignore_index
    cdef double sc = scale
    dlogp = np.zeros((N, C), dtype)
    cdef const int64_t[::1] tv = target
    cdef float[:, ::1] d32
    cdef const float[::1] g32
    cdef double[:, ::1] d64
    cdef const double[::1] g64
    if dtype == np.float32:
        d32, g32 = dlogp, dloss_rows
        with nogil:
            _nll_backward(d32, tv, g32, sc, ignore)
    else:
        d64, g64 = dlogp, dloss_rows
        with nogil:
            _nll_backward(d64, tv, g64, sc, ignore)
    return dlogp
