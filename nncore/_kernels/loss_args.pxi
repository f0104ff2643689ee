# loss_args.pxi: argument handling of loss.pyx's wrappers (textually included by it): the
# reduction codes, label smoothing, targets (int64, every label bounds-checked in C) and the
# scale the backward kernels apply to the incoming gradient.

cdef enum Reduction:
    RED_NONE
    RED_MEAN
    RED_SUM

_REDUCTIONS = {"none": RED_NONE, "mean": RED_MEAN, "sum": RED_SUM}


cdef Py_ssize_t _check_targets(const int64_t[::1] target, Py_ssize_t C, int64_t ignore_index,
                               Py_ssize_t *count) noexcept nogil:
    """Count the rows that are not ignored; return the first out-of-range row, or -1."""
    cdef Py_ssize_t i, n = 0
    cdef int64_t t
    for i in range(target.shape[0]):
        t = target[i]
        if t == ignore_index:
            continue
        if t < 0 or t >= C:
            count[0] = n
            return i
        n += 1
    count[0] = n
    return -1


def _reduction_code(reduction, fn: str) -> int:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return _REDUCTIONS[reduction]


def _smoothing(label_smoothing, fn: str) -> float:
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    return eps


def _checked_targets(target, Py_ssize_t N, Py_ssize_t C, int64_t ignore_index,
                     fn: str) -> tuple:
    """target as int64 (N,), bounds-checked in C; returns (target, number of counted rows)."""
    target = as_index_array(target, "target", ndim=1)
    if target.shape[0] != N:
        raise ValueError(f"{fn}: target has {target.shape[0]} entries but there are {N} rows "
                         f"(shape {(N, C)})")
    cdef const int64_t[::1] tv = target
    cdef Py_ssize_t count = 0, bad
    with nogil:
        bad = _check_targets(tv, C, ignore_index, &count)
    if bad >= 0:
        raise IndexError(f"{fn}: target {int(target[bad])} is out of range for {C} classes "
                         f"(row {bad})")
    return target, count


def _grad_scale(dloss, int red, Py_ssize_t N, Py_ssize_t count, dtype, fn: str) -> tuple:
    """(per-row dloss array or an empty one, scalar scale) for the backward kernels."""
    if red == RED_NONE:
        dloss = as_float_array(dloss, "dloss", ndim=1, dtype=dtype)
        check_shape(dloss, (N,), "dloss")
        return dloss, 0.0
    if isinstance(dloss, np.ndarray):
        if dloss.size != 1:
            raise ValueError(f"{fn}: dloss must be a scalar for a reduced loss, "
                             f"got shape {dloss.shape}")
        value = float(dloss.reshape(()))
    elif isinstance(dloss, (int, float, np.number)):
        value = float(dloss)
    else:
        raise TypeError(f"{fn}: dloss must be a number or an ndarray, got {type(dloss).__name__}")
    if red == RED_MEAN:
        value = value / count if count > 0 else float("nan")
    return np.empty(0, dtype), value
