# optim_rmsprop.pxi: RMSprop (centered, momentum): the step driver and its Python wrappers.
# Textually included by optim.pyx (uses its span machinery: _collect, _dispatch, Hyper).

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
