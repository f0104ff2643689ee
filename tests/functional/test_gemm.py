"""matmul and linear through autograd (the GEMM kernel itself is tested in tests/kernels)."""
import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import check_op, rng

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


@pytest.mark.parametrize("sa,sb", [((7, 3), (3, 5)), ((1, 1), (1, 1)), ((3,), (3,)),
                                   ((3,), (3, 4)), ((4, 3), (3,)), ((2, 7, 3), (3, 5)),
                                   ((2, 1, 4, 3), (5, 3, 2)), ((97, 101), (101, 7))])
def test_matmul_shapes(sa, sb):
    r = rng(0)
    a, b = r.standard_normal(sa), r.standard_normal(sb)
    check_op(F.matmul, np.matmul, [a, b], tol=TOL)


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (7, 3, 5), (64, 97, 10), (2, 101, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(n, i, o, bias):
    r = rng(1)
    x, w, b = r.standard_normal((n, i)), r.standard_normal((o, i)), r.standard_normal(o)
    if bias:
        check_op(F.linear, lambda x, w, b: x @ w.T + b, [x, w, b], tol=TOL)
    else:
        check_op(lambda x, w: F.linear(x, w), lambda x, w: x @ w.T, [x, w], tol=TOL)


def test_linear_on_3d_input():
    r = rng(2)
    x, w, b = r.standard_normal((2, 5, 3)), r.standard_normal((4, 3)), r.standard_normal(4)
    check_op(F.linear, lambda x, w, b: x @ w.T + b, [x, w, b], tol=TOL)


def test_shape_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"64x100 and 784x128"):
        F.linear(nncore.ones(64, 100), nncore.ones(128, 784))
    with pytest.raises(RuntimeError, match="inner dimensions"):
        F.matmul(nncore.ones(2, 3), nncore.ones(4, 5))


def test_dtype_mismatch_raises():
    with pytest.raises(TypeError, match="same dtype"):
        F.matmul(nncore.ones(2, 2), nncore.ones(2, 2, dtype=np.float64))
    with pytest.raises(TypeError):
        F.matmul(nncore.arange(4).reshape(2, 2), nncore.arange(4).reshape(2, 2))


def test_empty_dims():
    out = F.matmul(nncore.ones(0, 3), nncore.ones(3, 4))
    assert out.shape == (0, 4)
    out = F.matmul(nncore.ones(2, 0), nncore.ones(0, 4))
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 4)))


def test_non_contiguous_inputs():
    r = rng(3)
    a = r.standard_normal((6, 8))[:, ::2]
    b = r.standard_normal((5, 4)).T
    got = F.matmul(nncore.Tensor(a), nncore.Tensor(b)).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-12)
