# optim.pyx: fused optimizer steps (SGD with momentum/Nesterov, Adam, AdamW, RMSprop, Adagrad),
# in place.
# Shapes: every tensor is a flat run of n elements (any shape, C-contiguous); its state buffers
# (momentum_buf, exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, sum) have the
# parameter's shape and dtype.
# Write rule: the one exception to "outputs are overwritten": a step UPDATES param and its
# state IN PLACE, reading and writing each element once (one pass over memory per tensor).
# Formulas follow torch.optim's single-tensor (foreach=False) path operation by operation,
# with each hyper-parameter rounded to the parameter dtype where PyTorch rounds it (the exact
# operation order is written out in optim_simd.h). Differences to torch are last-bit only:
# torch's CPU build fuses some a*b+c into FMAs and its vector sqrt is not always correctly
# rounded; ours never contracts, so every SIMD level gives the same bits.
# Parallelism: the elements of all tensors of one call form one concatenated range, cut into
# one contiguous static chunk per thread, only when it has >= PARALLEL_MIN elements. Elements
# are independent, so the result is bit-identical for every thread count.
# SIMD: the element loops are plain C in optim_simd.h, compiled three times (portable, AVX2,
# AVX-512F via GCC target attributes) and chosen at run time from nncore_simd_level().
from cython.parallel cimport prange
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cimport numpy as cnp
import numpy as np

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._parallel import get_num_threads

cnp.import_array()

cdef extern from "optim_simd.h" nogil:
    ctypedef struct nnc_optim_hyper:
        double lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha
        int nesterov, maximize, amsgrad, decoupled, centered
    ctypedef struct nnc_span:
        void *param
        const void *grad
        void *buf1
        void *buf2
        void *buf3
        Py_ssize_t start
        Py_ssize_t n
        double step_size
        double bc2_sqrt
        int first
    int NNC_SGD, NNC_ADAM, NNC_RMSPROP, NNC_ADAGRAD
    void nnc_optim_span_f(const nnc_span *s, Py_ssize_t a, Py_ssize_t n,
                          const nnc_optim_hyper *h, int kind)
    void nnc_optim_span_d(const nnc_span *s, Py_ssize_t a, Py_ssize_t n,
                          const nnc_optim_hyper *h, int kind)

ctypedef nnc_optim_hyper Hyper
ctypedef nnc_span Span   # one tensor of a call: its arrays, offset and own scalars (see .h)

# Below this many elements in one call a parallel region costs more than it saves.
cdef Py_ssize_t PARALLEL_MIN = 32768
# Chunk boundaries are multiples of this many elements (64 bytes of float32): no false sharing
# of a cache line between threads inside one tensor.
cdef Py_ssize_t CHUNK_ALIGN = 16


# ---------------------------------------------------------------------------------------------
# Drivers: walk the part [lo, hi) of the concatenated range, span by span.
# ---------------------------------------------------------------------------------------------
cdef void _chunk(const Span *spans, Py_ssize_t nspans, Py_ssize_t lo, Py_ssize_t hi,
                 const Hyper *h, int kind, bint is_double) noexcept nogil:
    cdef Py_ssize_t k = 0, a, b
    cdef const Span *s
    while k < nspans and spans[k].start + spans[k].n <= lo:
        k += 1
    while k < nspans and spans[k].start < hi:
        s = &spans[k]
        a = (lo if lo > s.start else s.start) - s.start   # [a, b): this chunk's part of span k
        b = (hi if hi < s.start + s.n else s.start + s.n) - s.start
        if is_double:
            nnc_optim_span_d(s, a, b - a, h, kind)
        else:
            nnc_optim_span_f(s, a, b - a, h, kind)
        k += 1


cdef void _dispatch(bint is_double, const Span *spans, Py_ssize_t nspans, Py_ssize_t total,
                    const Hyper *h, int kind, int nthreads) noexcept nogil:
    cdef Py_ssize_t chunk, t, lo, hi
    if nthreads <= 1 or total < PARALLEL_MIN:
        _chunk(spans, nspans, 0, total, h, kind, is_double)
        return
    chunk = (total + nthreads - 1) // nthreads
    chunk = (chunk + CHUNK_ALIGN - 1) // CHUNK_ALIGN * CHUNK_ALIGN
    for t in prange(nthreads, schedule='static', num_threads=nthreads):
        lo = t * chunk
        hi = lo + chunk
        if hi > total:
            hi = total
        if lo < hi:
            _chunk(spans, nspans, lo, hi, h, kind, is_double)


# ---------------------------------------------------------------------------------------------
# Validation: collect pointers and sizes (with the GIL), then one nogil call.
# ---------------------------------------------------------------------------------------------
cdef str _name(str plural, str singular, Py_ssize_t i, bint multi):
    """How errors name array i: "exp_avgs[3]" in a multi-tensor call, "exp_avg" otherwise."""
    return f"{plural}[{i}]" if multi else singular


cdef bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int d
    if cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for d in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d):
            return False
    return True


cdef cnp.ndarray _check_array(object x, str name, cnp.ndarray ref, bint same_shape,
                              bint writable, bint copy_ok):
    """Return x as an ndarray with ref's dtype (and shape if same_shape), or raise."""
    cdef cnp.ndarray a
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    a = <cnp.ndarray>x
    if ref is None:
        if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT and cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE:
            raise TypeError(f"{name}: expected float32 or float64, got dtype {(<object>a).dtype}")
    else:
        if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(ref):
            raise TypeError(f"{name}: dtype {(<object>a).dtype} does not match the param's "
                            f"{(<object>ref).dtype} (all arrays of one call share one dtype)")
        if same_shape and not _same_shape(a, ref):
            raise ValueError(f"{name}: shape {(<object>a).shape} does not match the param's "
                             f"{(<object>ref).shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        if not copy_ok:
            raise ValueError(f"{name}: must be C-contiguous (it is updated in place; a "
                             f"contiguous copy would lose the update), got strides "
                             f"{(<object>a).strides}")
        a = np.ascontiguousarray(a)
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name}: array is read-only but is updated in place")
    return a


cdef list _as_list(object x, str name, Py_ssize_t n):
    """x as a list of n entries (n < 0: any length)."""
    if isinstance(x, np.ndarray) or not isinstance(x, (list, tuple)):
        raise TypeError(f"{name}: expected a list of arrays, got {type(x).__name__}")
    if n >= 0 and len(x) != n:
        raise ValueError(f"{name}: expected {n} entries (one per param), got {len(x)}")
    return list(x)


cdef list _per_tensor(object x, str name, Py_ssize_t n):
    """A scalar broadcast to n tensors, or a sequence of n values."""
    if isinstance(x, (list, tuple, np.ndarray)):
        if len(x) != n:
            raise ValueError(f"{name}: expected {n} values (one per param), got {len(x)}")
        return list(x)
    return [x] * n


cdef void *_use(object x, tuple plural_singular, Py_ssize_t k, bint multi, cnp.ndarray p,
               list names, list ptrs) except? NULL:
    """Validate state buffer k against param p; record its name and address; return it."""
    cdef str name = _name(plural_singular[0], plural_singular[1], k, multi)
    cdef cnp.ndarray a = _check_array(x, name, p, True, True, False)
    names.append(name)
    ptrs.append(<size_t>cnp.PyArray_DATA(a))
    return cnp.PyArray_DATA(a)


cdef Span *_collect(list params, list grads, list bufs1, list bufs2, list bufs3, bint multi,
                    tuple names123, list keep, Py_ssize_t *total) except NULL:
    """Validate every array and fill a PyMem-allocated Span array (caller frees)."""
    cdef Py_ssize_t k, i, j, n = len(params), start = 0, nbytes, gap
    cdef cnp.ndarray p, ref = None, a
    cdef list names, ptrs
    cdef Span *spans = <Span *>PyMem_Malloc(max(n, 1) * sizeof(Span))
    if spans == NULL:
        raise MemoryError()
    try:
        for k in range(n):
            names = [_name("params", "param", k, multi)]
            p = _check_array(params[k], names[0], ref, False, True, False)
            if ref is None:
                ref = p
            ptrs = [<size_t>cnp.PyArray_DATA(p)]
            spans[k].param = cnp.PyArray_DATA(p)
            names.append(_name("grads", "grad", k, multi))
            a = _check_array(grads[k], names[1], p, True, False, True)
            keep.append(a)  # a contiguous copy of a strided grad must outlive the call
            ptrs.append(<size_t>cnp.PyArray_DATA(a))
            spans[k].grad = cnp.PyArray_DATA(a)
            spans[k].buf1 = spans[k].buf2 = spans[k].buf3 = NULL
            if bufs1 is not None and bufs1[k] is not None:
                spans[k].buf1 = _use(bufs1[k], names123[0], k, multi, p, names, ptrs)
            if bufs2 is not None:
                spans[k].buf2 = _use(bufs2[k], names123[1], k, multi, p, names, ptrs)
            if bufs3 is not None:
                spans[k].buf3 = _use(bufs3[k], names123[2], k, multi, p, names, ptrs)
            # The C loops take these as `restrict` pointers: they must not overlap.
            nbytes = cnp.PyArray_NBYTES(p)
            for i in range(len(ptrs)):
                for j in range(i):
                    gap = <Py_ssize_t>(<size_t>ptrs[i] - <size_t>ptrs[j])
                    if nbytes > 0 and abs(gap) < nbytes:
                        raise ValueError(f"{names[j]} and {names[i]} share memory; each "
                                         "must be its own array")
            spans[k].start = start
            spans[k].n = cnp.PyArray_SIZE(p)
            start += spans[k].n
    except BaseException:
        PyMem_Free(spans)
        raise
    total[0] = start
    return spans


cdef Hyper _zero_hyper() noexcept:
    cdef Hyper h
    h.lr = h.momentum = h.dampening = h.weight_decay = h.beta1 = h.beta2 = h.eps = 0
    h.alpha = 0
    h.nesterov = h.maximize = h.amsgrad = h.decoupled = h.centered = 0
    return h


# ---------------------------------------------------------------------------------------------
# The optimizers, one file each
# ---------------------------------------------------------------------------------------------
include "optim_sgd.pxi"
include "optim_adam.pxi"
include "optim_rmsprop.pxi"
include "optim_adagrad.pxi"


def parallel_min_elements() -> int:
    """Calls with fewer elements than this (all tensors together) run on one thread."""
    return PARALLEL_MIN


def dispatched_simd() -> str:
    """Instruction set the optimizer loops run with on this CPU (portable, avx2+fma, avx512)."""
    return nncore_simd_name(nncore_simd_level()).decode()


dispatched_simd()  # fill simd.h's cache now, before any parallel region reads it
