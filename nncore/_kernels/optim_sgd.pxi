# optim_sgd.pxi: SGD (momentum, dampening, Nesterov, weight decay): the step driver and its
# Python wrappers.
# Textually included by optim.pyx (uses its span machinery: _collect, _dispatch, Hyper).

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
