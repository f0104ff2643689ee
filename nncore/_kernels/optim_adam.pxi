# optim_adam.pxi: Adam and AdamW (decoupled weight decay, amsgrad): the step driver and its
# Python wrappers.
# Textually included by optim.pyx (uses its span machinery: _collect, _dispatch, Hyper).

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
