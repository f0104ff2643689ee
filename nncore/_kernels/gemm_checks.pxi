# gemm_checks.pxi: argument checks of gemm.pyx's Python API (textually included by gemm.pyx,
# which cimports numpy as cnp and uintptr_t): dtype and rank, the in-place matrix layout of a
# view (row stride, transposed or not), overlap of inputs and output, the output's row stride.
# cdef functions on the ndarray C struct: they run on every call, and tiny products pay for
# each Python-level lookup.

cdef cnp.ndarray _float_array(object x, str name, int ndim, str fn="gemm"):
    """x as an ndarray of float32/float64 with `ndim` dims, or raise (no copy here)."""
    if not isinstance(x, cnp.ndarray):  # a C type check (np.ndarray is a module lookup)
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>x
    cdef int tn = cnp.PyArray_TYPE(arr)
    if tn != cnp.NPY_FLOAT32 and tn != cnp.NPY_FLOAT64:
        raise TypeError(f"{fn}: {name} must be float32 or float64, got dtype {arr.dtype}")
    if cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{fn}: {name} must be a {ndim}-D array, got shape "
                         f"{(<object>arr).shape}")
    return arr


cdef cnp.ndarray _matrix_layout(cnp.ndarray x, int axis, bint* trans, Py_ssize_t* ld):
    """The array whose matrix formed by axes (axis, axis+1) is read in place as row-major
    with row stride *ld (*trans flipped for a transposed view); copies only when neither
    stride is the element size or a stride is negative. (Out-parameters, not a tuple: this
    runs on every call, and tiny products pay for each Python object.)"""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(x)
    cdef Py_ssize_t r = x.shape[axis], c = x.shape[axis + 1]
    cdef Py_ssize_t s0 = x.strides[axis], s1 = x.strides[axis + 1]
    cdef Py_ssize_t bs
    if x.ndim == 3:
        bs = x.strides[0]
        if x.shape[0] > 1 and (bs < 0 or bs % item != 0):
            ld[0] = c
            return np.ascontiguousarray(x)
    if (s1 == item or c <= 1) and s0 >= 0 and s0 % item == 0:
        ld[0] = s0 // item if r > 1 else (c if c > 1 else 1)
        return x
    if (s0 == item or r <= 1) and s1 >= 0 and s1 % item == 0:
        trans[0] = not trans[0]
        ld[0] = s1 // item if c > 1 else (r if r > 1 else 1)
        return x
    ld[0] = c
    return np.ascontiguousarray(x)


cdef (uintptr_t, uintptr_t) _extent(cnp.ndarray x):
    """Byte range [lo, hi) spanned by x (strides are non-negative here)."""
    cdef uintptr_t lo = <uintptr_t>cnp.PyArray_DATA(x)
    cdef uintptr_t hi = lo + <uintptr_t>cnp.PyArray_ITEMSIZE(x)
    cdef int d
    if cnp.PyArray_SIZE(x) == 0:
        return lo, lo
    for d in range(cnp.PyArray_NDIM(x)):
        hi += <uintptr_t>((x.shape[d] - 1) * x.strides[d])
    return lo, hi


cdef bint _overlap(cnp.ndarray x, cnp.ndarray y):
    cdef uintptr_t xl, xh, yl, yh
    xl, xh = _extent(x)
    yl, yh = _extent(y)
    return xl < yh and yl < xh


cdef object _out_rows_ok(cnp.ndarray out, Py_ssize_t M, Py_ssize_t N):
    """Row stride of `out` in elements if its rows are contiguous and disjoint, else None."""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(out)
    cdef Py_ssize_t nd = cnp.PyArray_NDIM(out)
    cdef Py_ssize_t s0 = out.strides[nd - 2], s1 = out.strides[nd - 1]
    if M == 0 or N == 0:
        return max(N, 1)  # nothing is written: any strides do
    if not (s1 == item or N <= 1):
        return None
    if M <= 1:
        return max(N, 1)
    if s0 % item != 0 or s0 < N * item:
        return None
    return s0 // item
