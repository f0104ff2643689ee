# optim_adagrad.pxi: Adagrad (lr decay, initial accumulator): the step driver and its Python
# wrappers.
# Textually included by optim.pyx (uses its span machinery: _collect, _dispatch, Hyper).

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
