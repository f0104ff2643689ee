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
# SGD
# ---------------------------------------------------------------------------------------------
cdef _sgd(list params, list grads, list bufs, double lr, double momentum, double dampening,
         double weight_decay, bint nesterov, bint maximize, list first, bint multi):
    cdef Py_ssize_t k, n = len(params), total = 0
    cdef Hyper h = _zero_hyper()
    cdef Span *spans
    cdef list keep = []
    cdef int nthreads = get_num_threads()
    cdef bint is_double
    if momentum != 0:
        for k in range(n):
            if bufs is None or bufs[k] is None:
                raise ValueError(f"{_name('momentum_bufs', 'momentum_buf', k, multi)}"
                                 f": a momentum buffer is required when momentum={momentum}")
    h.lr = lr
    h.momentum = momentum
    h.dampening = dampening
    h.weight_decay = weight_decay
    h.nesterov = nesterov
    h.maximize = maximize
    spans = _collect(params, grads, bufs if momentum != 0 else None, None, None, multi,
                     (("momentum_bufs", "momentum_buf"), None, None), keep, &total)
    try:
        for k in range(n):
            spans[k].first = bool(first[k])
        is_double = n > 0 and cnp.PyArray_TYPE(<cnp.ndarray>params[0]) == cnp.NPY_DOUBLE
        with nogil:
            _dispatch(is_double, spans, n, total, &h, NNC_SGD, nthreads)
    finally:
        PyMem_Free(spans)


def sgd_step(param, grad, momentum_buf, double lr, double momentum, double dampening,
             double weight_decay, bint nesterov, bint maximize, bint first_step) -> None:
    """One SGD step on `param` in place, in torch.optim.SGD's (foreach=False) operation order.

    g = -grad if maximize else grad;  g += weight_decay * param;
    with momentum: buf = g on the first step, else buf = momentum*buf + (1-dampening)*g;
    g = g + momentum*buf if nesterov else buf;  param -= lr * g.
    param and momentum_buf (same shape/dtype, or None when momentum == 0) are C-contiguous
    float32/float64 arrays updated in place; grad is read only.
    """
    _sgd([param], [grad], [momentum_buf], lr, momentum, dampening, weight_decay, nesterov,
         maximize, [first_step], False)


def sgd_step_multi(params, grads, momentum_bufs, double lr, double momentum,
                   double dampening, double weight_decay, bint nesterov, bint maximize,
                   first_steps) -> None:
    """`sgd_step` over a whole param group in one call (one parallel region for all tensors).

    momentum_bufs: list (entries may be None when momentum == 0) or None; first_steps: one
    bool for all tensors or one per tensor. All arrays share one dtype.
    """
    cdef Py_ssize_t n
    params = _as_list(params, "params", -1)
    n = len(params)
    grads = _as_list(grads, "grads", n)
    if momentum_bufs is not None:
        momentum_bufs = _as_list(momentum_bufs, "momentum_bufs", n)
    _sgd(params, grads, momentum_bufs, lr, momentum, dampening, weight_decay, nesterov,
         maximize, _per_tensor(first_steps, "first_steps", n), True)


# ---------------------------------------------------------------------------------------------
# Adam / AdamW
# ---------------------------------------------------------------------------------------------
cdef _adam(list params, list grads, list exp_avgs, list exp_avg_sqs, list max_exp_avg_sqs,
          list steps, double lr, double beta1, double beta2, double eps, double weight_decay,
          bint amsgrad, bint maximize, bint decoupled, bint multi):
    cdef Py_ssize_t k, n = len(params), total = 0
    cdef Hyper h = _zero_hyper()
    cdef Span *spans
    cdef list keep = []
    cdef int nthreads = get_num_threads()
    cdef bint is_double
    cdef double bc1, bc2
    if not (0.0 <= beta1 < 1.0) or not (0.0 <= beta2 < 1.0):
        raise ValueError(f"betas must lie in [0, 1), got ({beta1}, {beta2})")
    if amsgrad and (max_exp_avg_sqs is None or any(a is None for a in max_exp_avg_sqs)):
        raise ValueError("amsgrad=True needs max_exp_avg_sq buffers, got None")
    for k in range(n):
        if int(steps[k]) != steps[k] or steps[k] < 1:
            raise ValueError(f"{_name('steps', 'step', k, multi)}: the step count "
                             f"(after increment) must be an integer >= 1, got {steps[k]}")
    h.lr = lr
    h.beta1 = beta1
    h.beta2 = beta2
    h.eps = eps
    h.weight_decay = weight_decay
    h.amsgrad = amsgrad
    h.maximize = maximize
    h.decoupled = decoupled
    spans = _collect(params, grads, exp_avgs, exp_avg_sqs,
                     max_exp_avg_sqs if amsgrad else None, multi,
                     (("exp_avgs", "exp_avg"), ("exp_avg_sqs", "exp_avg_sq"),
                      ("max_exp_avg_sqs", "max_exp_avg_sq")), keep, &total)
    try:
        for k in range(n):
            if spans[k].buf1 == NULL:
                raise ValueError(f"{_name('exp_avgs', 'exp_avg', k, multi)}: "
                                 "got None")
            # Bias corrections in double, as torch does with Python floats.
            bc1 = 1.0 - beta1 ** float(steps[k])
            bc2 = 1.0 - beta2 ** float(steps[k])
            spans[k].step_size = lr / bc1
            spans[k].bc2_sqrt = bc2 ** 0.5
        is_double = n > 0 and cnp.PyArray_TYPE(<cnp.ndarray>params[0]) == cnp.NPY_DOUBLE
        with nogil:
            _dispatch(is_double, spans, n, total, &h, NNC_ADAM, nthreads)
    finally:
        PyMem_Free(spans)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, double lr,
              double beta1, double beta2, double eps, double weight_decay, bint amsgrad,
              bint maximize, bint decoupled) -> None:
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place, as torch.optim.

    step is the step count AFTER this step's increment (1 on the first step).
    g = -grad if maximize else grad;  AdamW: param *= 1 - lr*wd;  Adam: g += wd*param;
    exp_avg = lerp(exp_avg, g, 1-beta1);  exp_avg_sq = beta2*exp_avg_sq + (1-beta2)*g*g;
    amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), used in place of exp_avg_sq;
    param -= lr/(1-beta1^step) * exp_avg / (sqrt(v)/sqrt(1-beta2^step) + eps).
    All arrays are C-contiguous, of the param's shape and dtype; grad is read only.
    """
    _adam([param], [grad], [exp_avg], [exp_avg_sq], [max_exp_avg_sq] if amsgrad else None,
          [step], lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, False)


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs,
                    max_exp_avg_sqs, steps, double lr, double beta1, double beta2, double eps,
                    double weight_decay, bint amsgrad, bint maximize, bint decoupled) -> None:
    """`adam_step` over a whole param group in one call (one parallel region for all tensors).

    max_exp_avg_sqs: list, or None unless amsgrad; steps: one int for all tensors or one per
    tensor (each after its increment). All arrays share one dtype.
    """
    cdef Py_ssize_t n
    params = _as_list(params, "params", -1)
    n = len(params)
    grads = _as_list(grads, "grads", n)
    exp_avgs = _as_list(exp_avgs, "exp_avgs", n)
    exp_avg_sqs = _as_list(exp_avg_sqs, "exp_avg_sqs", n)
    if amsgrad:
        if max_exp_avg_sqs is None:
            raise ValueError("amsgrad=True needs max_exp_avg_sqs, got None")
        max_exp_avg_sqs = _as_list(max_exp_avg_sqs, "max_exp_avg_sqs", n)
    else:
        max_exp_avg_sqs = None
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
          _per_tensor(steps, "steps", n), lr, beta1, beta2, eps, weight_decay, amsgrad,
          maximize, decoupled, True)


# ---------------------------------------------------------------------------------------------
# RMSprop
# ---------------------------------------------------------------------------------------------
cdef _rmsprop(list params, list grads, list square_avgs, list momentum_buffers, list grad_avgs,
              double lr, double alpha, double eps, double weight_decay, double momentum,
              bint centered, bint maximize, bint multi):
    cdef Py_ssize_t k, n = len(params), total = 0
    cdef Hyper h = _zero_hyper()
    cdef Span *spans
    cdef list keep = []
    cdef int nthreads = get_num_threads()
    cdef bint is_double
    if momentum > 0 and (momentum_buffers is None or any(b is None for b in momentum_buffers)):
        raise ValueError(f"momentum={momentum} needs momentum_buffer arrays, got None")
    if centered and (grad_avgs is None or any(b is None for b in grad_avgs)):
        raise ValueError("centered=True needs grad_avg arrays, got None")
    h.lr = lr
    h.alpha = alpha
    h.eps = eps
    h.weight_decay = weight_decay
    h.momentum = momentum
    h.centered = centered
    h.maximize = maximize
    spans = _collect(params, grads, square_avgs, momentum_buffers if momentum > 0 else None,
                     grad_avgs if centered else None, multi,
                     (("square_avgs", "square_avg"), ("momentum_buffers", "momentum_buffer"),
                      ("grad_avgs", "grad_avg")), keep, &total)
    try:
        for k in range(n):
            if spans[k].buf1 == NULL:
                raise ValueError(f"{_name('square_avgs', 'square_avg', k, multi)}: got None")
        is_double = n > 0 and cnp.PyArray_TYPE(<cnp.ndarray>params[0]) == cnp.NPY_DOUBLE
        with nogil:
            _dispatch(is_double, spans, n, total, &h, NNC_RMSPROP, nthreads)
    finally:
        PyMem_Free(spans)


def rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg, double lr, double alpha,
                 double eps, double weight_decay, double momentum, bint centered,
                 bint maximize) -> None:
    """One RMSprop step on `param` in place, in torch.optim.RMSprop's (foreach=False) order.

    g = -grad if maximize else grad;  g += weight_decay * param;
    square_avg = alpha*square_avg + (1-alpha)*g*g;
    centered: grad_avg = lerp(grad_avg, g, 1-alpha), avg = sqrt(square_avg - grad_avg^2) + eps,
    else avg = sqrt(square_avg) + eps;
    momentum > 0: buf = momentum*buf + g/avg, param -= lr*buf;  else param -= lr*g/avg.
    momentum_buffer (momentum > 0) and grad_avg (centered) may be None when unused.
    """
    _rmsprop([param], [grad], [square_avg], [momentum_buffer], [grad_avg], lr, alpha, eps,
             weight_decay, momentum, centered, maximize, False)


def rmsprop_step_multi(params, grads, square_avgs, momentum_buffers, grad_avgs, double lr,
                       double alpha, double eps, double weight_decay, double momentum,
                       bint centered, bint maximize) -> None:
    """`rmsprop_step` over a whole param group in one call (one parallel region).

    momentum_buffers / grad_avgs: lists, or None when momentum == 0 / not centered.
    """
    cdef Py_ssize_t n
    params = _as_list(params, "params", -1)
    n = len(params)
    grads = _as_list(grads, "grads", n)
    square_avgs = _as_list(square_avgs, "square_avgs", n)
    momentum_buffers = (_as_list(momentum_buffers, "momentum_buffers", n)
                        if momentum > 0 and momentum_buffers is not None else None)
    grad_avgs = (_as_list(grad_avgs, "grad_avgs", n)
                 if centered and grad_avgs is not None else None)
    _rmsprop(params, grads, square_avgs, momentum_buffers, grad_avgs, lr, alpha, eps,
             weight_decay, momentum, centered, maximize, True)


# ---------------------------------------------------------------------------------------------
# Adagrad
# ---------------------------------------------------------------------------------------------
cdef _adagrad(list params, list grads, list state_sums, list steps, double lr, double lr_decay,
              double weight_decay, double eps, bint maximize, bint multi):
    cdef Py_ssize_t k, n = len(params), total = 0
    cdef Hyper h = _zero_hyper()
    cdef Span *spans
    cdef list keep = []
    cdef int nthreads = get_num_threads()
    cdef bint is_double
    for k in range(n):
        if int(steps[k]) != steps[k] or steps[k] < 1:
            raise ValueError(f"{_name('steps', 'step', k, multi)}: the step count "
                             f"(after increment) must be an integer >= 1, got {steps[k]}")
    h.lr = lr
    h.eps = eps
    h.weight_decay = weight_decay
    h.maximize = maximize
    spans = _collect(params, grads, state_sums, None, None, multi,
                     (("state_sums", "state_sum"), None, None), keep, &total)
    try:
        for k in range(n):
            if spans[k].buf1 == NULL:
                raise ValueError(f"{_name('state_sums', 'state_sum', k, multi)}: got None")
            # The decayed learning rate in double, as torch does with Python floats.
            spans[k].step_size = lr / (1 + (float(steps[k]) - 1) * lr_decay)
        is_double = n > 0 and cnp.PyArray_TYPE(<cnp.ndarray>params[0]) == cnp.NPY_DOUBLE
        with nogil:
            _dispatch(is_double, spans, n, total, &h, NNC_ADAGRAD, nthreads)
    finally:
        PyMem_Free(spans)


def adagrad_step(param, grad, state_sum, step, double lr, double lr_decay, double weight_decay,
                 double eps, bint maximize) -> None:
    """One Adagrad step on `param` in place, in torch.optim.Adagrad's (foreach=False) order.

    step is the step count AFTER this step's increment (1 on the first step).
    g = -grad if maximize else grad;  g += weight_decay * param;  state_sum += g*g;
    param -= clr * g / (sqrt(state_sum) + eps),  clr = lr / (1 + (step-1)*lr_decay).
    """
    _adagrad([param], [grad], [state_sum], [step], lr, lr_decay, weight_decay, eps, maximize,
             False)


def adagrad_step_multi(params, grads, state_sums, steps, double lr, double lr_decay,
                       double weight_decay, double eps, bint maximize) -> None:
    """`adagrad_step` over a whole param group in one call (one parallel region).

    steps: one int for all tensors or one per tensor (each after its increment).
    """
    cdef Py_ssize_t n
    params = _as_list(params, "params", -1)
    n = len(params)
    grads = _as_list(grads, "grads", n)
    state_sums = _as_list(state_sums, "state_sums", n)
    _adagrad(params, grads, state_sums, _per_tensor(steps, "steps", n), lr, lr_decay,
             weight_decay, eps, maximize, True)


def parallel_min_elements() -> int:
    """Calls with fewer elements than this (all tensors together) run on one thread."""
    return PARALLEL_MIN


def dispatched_simd() -> str:
    """Instruction set the optimizer loops run with on this CPU (portable, avx2+fma, avx512)."""
    return nncore_simd_name(nncore_simd_level()).decode()


dispatched_simd()  # fill simd.h's cache now, before any parallel region reads it
