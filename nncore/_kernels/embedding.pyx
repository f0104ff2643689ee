# embedding.pyx: embedding lookup (gather) and its gradient (deterministic scatter-add).
#
# Shapes: N ids (the flattened input), V rows of the table (vocabulary), D embedding size.
# ids (N,) int64; weight, dweight (V, D); out, dout (N, D). OUT buffers are overwritten (=).
#
# Every id is bounds-checked in C before any memory is read: the first id (in input order)
# outside [0, V) is recorded inside the nogil loop and raised as IndexError afterwards.
#
# Backward without races: a stable counting sort groups the positions of each id
# (starts[v] .. starts[v+1] index `order`, positions in their original order). prange then
# splits the V rows among threads (static schedule); each thread owns its rows outright and
# sums a row's contributions in the original input order. No two threads ever write the same
# row and the summation order never depends on the thread count, so dweight has the same bits
# for 1, 2 or any number of threads. Rows that no id touches (and padding_idx) are zero.
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

import numpy as np

from ._checks import as_float_array, as_index_array
from ._parallel import get_num_threads

from ._types cimport floating

cdef enum:
    PARALLEL_MIN = 262144  # elements touched; below this a kernel runs on the calling thread
                           # (a gather is memory-bound: threads only pay off for big copies)


cdef Py_ssize_t _first_bad_id(const int64_t[::1] ids, int64_t V) noexcept nogil:
    """Position of the first id outside [0, V), or -1 when all are in range."""
    cdef Py_ssize_t n
    cdef int64_t v
    for n in range(ids.shape[0]):
        v = ids[n]
        if v < 0 or v >= V:
            return n
    return -1


def _check_ids(ids: np.ndarray, Py_ssize_t V) -> None:
    cdef const int64_t[::1] iv = ids
    cdef Py_ssize_t bad
    with nogil:
        bad = _first_bad_id(iv, V)
    if bad >= 0:
        raise IndexError(f"embedding: index {int(ids[bad])} is out of range for a vocabulary "
                         f"of {V}")


cdef inline int _threads_for(Py_ssize_t work, int nthreads) noexcept nogil:
    return 1 if work < PARALLEL_MIN or nthreads < 1 else nthreads


# ---------------------------------------------------------------------------------------------
# Forward: out[n, :] = weight[ids[n], :]

cdef void _embedding_forward(floating[:, ::1] out,            # OUT (N, D)
                             const int64_t[::1] ids,           # IN (N,), already checked
                             const floating[:, ::1] weight,    # IN (V, D)
                             int nthreads) noexcept nogil:
    cdef Py_ssize_t N = ids.shape[0], D = weight.shape[1], n
    cdef size_t row_bytes = D * sizeof(floating)
    cdef int nt = _threads_for(N * D, nthreads)
    if D == 0:
        return
    if nt <= 1:
        for n in range(N):
            memcpy(&out[n, 0], &weight[ids[n], 0], row_bytes)
    else:
        for n in prange(N, schedule='static', num_threads=nt):
            memcpy(&out[n, 0], &weight[ids[n], 0], row_bytes)


# ---------------------------------------------------------------------------------------------
# Backward: dweight[v, :] = scale_v * sum over n with ids[n] == v of dout[n, :]

cdef void _group_by_id(int64_t[::1] starts,            # OUT (V + 1,) row v: starts[v]..[v+1]
                       int64_t[::1] order,             # OUT (N,) positions grouped by id
                       int64_t[::1] cursor,            # SCRATCH (V,)
                       const int64_t[::1] ids) noexcept nogil:
    """Stable counting sort of the positions 0..N-1 by id."""
    cdef Py_ssize_t N = ids.shape[0], V = cursor.shape[0], n, v
    for v in range(V + 1):
        starts[v] = 0
    for n in range(N):
        starts[ids[n] + 1] += 1
    for v in range(V):
        starts[v + 1] += starts[v]
    for v in range(V):
        cursor[v] = starts[v]
    for n in range(N):
        v = ids[n]
        order[cursor[v]] = n
        cursor[v] += 1


cdef inline void _sum_row(floating[:, ::1] dweight, const int64_t[::1] starts,
                          const int64_t[::1] order, const floating[:, ::1] dout,
                          Py_ssize_t v, int64_t padding_idx, bint by_freq) noexcept nogil:
    cdef Py_ssize_t D = dout.shape[1], d, k
    cdef int64_t lo = starts[v], hi = starts[v + 1]
    cdef floating *row = &dweight[v, 0]
    cdef const floating *src
    cdef floating scale
    if lo == hi or v == padding_idx:
        memset(row, 0, D * sizeof(floating))
        return
    memcpy(row, &dout[order[lo], 0], D * sizeof(floating))
    for k in range(lo + 1, hi):
        src = &dout[order[k], 0]
        for d in range(D):
            row[d] += src[d]
    if by_freq and hi - lo > 1:
        scale = <floating>(1.0 / <double>(hi - lo))
        for d in range(D):
            row[d] *= scale


cdef void _embedding_backward(floating[:, ::1] dweight,        # OUT (V, D)
                              const int64_t[::1] starts,        # IN (V + 1,)
                              const int64_t[::1] order,         # IN (N,)
                              const floating[:, ::1] dout,      # IN (N, D)
                              int64_t padding_idx, bint by_freq, int nthreads) noexcept nogil:
    cdef Py_ssize_t V = dweight.shape[0], D = dweight.shape[1], v
    cdef int nt = _threads_for((V + dout.shape[0]) * D, nthreads)
    if D == 0:
        return
    if nt <= 1:
        for v in range(V):
            _sum_row(dweight, starts, order, dout, v, padding_idx, by_freq)
    else:
        for v in prange(V, schedule='static', num_threads=nt):
            _sum_row(dweight, starts, order, dout, v, padding_idx, by_freq)


# ---------------------------------------------------------------------------------------------
# Python wrappers

def _ids_1d(ids) -> np.ndarray:
    return as_index_array(ids, "ids", ndim=1)


def embedding_forward(ids: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """out (N, D) = weight[ids] for ids (N,) integer and weight (V, D) float32/float64.

    Raises IndexError naming the first id outside [0, V).
    """
    ids = _ids_1d(ids)
    weight = as_float_array(weight, "weight", ndim=2)
    cdef Py_ssize_t V = weight.shape[0], N = ids.shape[0], D = weight.shape[1]
    _check_ids(ids, V)
    out = np.empty((N, D), weight.dtype)
    cdef int nthreads = get_num_threads()
    cdef const int64_t[::1] iv = ids
    cdef float[:, ::1] o32
    cdef const float[:, ::1] w32
    cdef double[:, ::1] o64
    cdef const double[:, ::1] w64
    if N == 0 or D == 0:
        return out
    if weight.dtype == np.float32:
        o32, w32 = out, weight
        with nogil:
            _embedding_forward(o32, iv, w32, nthreads)
    else:
        o64, w64 = out, weight
        with nogil:
            _embedding_forward(o64, iv, w64, nthreads)
    return out


def embedding_backward(dout: np.ndarray, ids: np.ndarray, num_embeddings: int,
                       padding_idx: int | None = None,
                       scale_grad_by_freq: bool = False) -> np.ndarray:
    """dweight (V, D): row v is the sum of dout[n] over the positions n with ids[n] == v.

    Summed in input order, so the result is bit-identical for any thread count. The
    padding_idx row (if given, in [0, V)) is zero; with scale_grad_by_freq each row is divided
    by the number of times its id occurs. Raises IndexError for ids outside [0, V).
    """
    ids = _ids_1d(ids)
    dout = as_float_array(dout, "dout", ndim=2)
    cdef Py_ssize_t V = num_embeddings, N = ids.shape[0], D = dout.shape[1]
    if V < 0:
        raise ValueError(f"embedding_backward: num_embeddings must be >= 0, got {V}")
    if dout.shape[0] != N:
        raise ValueError(f"embedding_backward: dout has {dout.shape[0]} rows (shape "
                         f"{dout.shape}) but there are {N} ids")
    cdef int64_t pad = -1
    if padding_idx is not None:
        if not 0 <= padding_idx < V:
            raise ValueError(f"embedding_backward: padding_idx {padding_idx} is out of range "
                             f"for a vocabulary of {V}")
        pad = padding_idx
    _check_ids(ids, V)
    dweight = np.empty((V, D), dout.dtype)
    starts = np.empty(V + 1, np.int64)
    order = np.empty(N, np.int64)
    cursor = np.empty(V, np.int64)
    cdef int64_t[::1] sv = starts, ov = order, cv = cursor
    cdef const int64_t[::1] iv = ids
    cdef int nthreads = get_num_threads()
    cdef bint by_freq = bool(scale_grad_by_freq)
    cdef float[:, ::1] d32
    cdef const float[:, ::1] g32
    cdef double[:, ::1] d64
    cdef const double[:, ::1] g64
    with nogil:
        _group_by_id(sv, ov, cv, iv)
    if V == 0 or D == 0:
        return dweight
    if dout.dtype == np.float32:
        d32, g32 = dweight, dout
        with nogil:
            _embedding_backward(d32, sv, ov, g32, pad, by_freq, nthreads)
    else:
        d64, g64 = dweight, dout
        with nogil:
            _embedding_backward(d64, sv, ov, g64, pad, by_freq, nthreads)
    return dweight


def check_ids(ids: np.ndarray, num_embeddings: int) -> None:
    """Raise IndexError naming the first id outside [0, num_embeddings)."""
    _check_ids(_ids_1d(np.asarray(ids).reshape(-1)), num_embeddings)


__all__ = ["embedding_forward", "embedding_backward", "check_ids"]
