"""sum/mean/max/min/argmax with dim/keepdim."""
import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import check_op, rng

SHAPES_DIMS = [((7,), None), ((7,), 0), ((3, 97), 1), ((101, 7), 0), ((2, 3, 5), (0, 2)),
               ((2, 3, 5), -1), ((1, 1), None)]


@pytest.mark.parametrize("shape,dim", SHAPES_DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(shape, dim, keepdim):
    x = rng(0).standard_normal(shape)
    axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
    check_op(lambda t: F.sum(t, dim, keepdim), lambda a: np.sum(a, axis, keepdims=keepdim), [x])
    check_op(lambda t: F.mean(t, dim, keepdim), lambda a: np.mean(a, axis, keepdims=keepdim),
             [x])


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 97), 1), ((101, 7), 0), ((2, 3, 5), -1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_along_dim(shape, dim, keepdim):
    x = rng(1).standard_normal(shape)
    check_op(lambda t: F.max(t, dim, keepdim).values, lambda a: np.max(a, dim, keepdims=keepdim),
             [x])
    check_op(lambda t: F.min(t, dim, keepdim).values, lambda a: np.min(a, dim, keepdims=keepdim),
             [x])
    idx = F.max(nncore.tensor(x), dim, keepdim).indices
    np.testing.assert_array_equal(idx.numpy(), np.argmax(x, dim, keepdims=keepdim))
    assert idx.dtype == np.int64


def test_max_all_splits_gradient_between_ties():
    x = nncore.tensor([1.0, 3.0, 3.0], requires_grad=True)
    F.max(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_argmax_argmin():
    x = nncore.tensor([[1.0, 9.0, 3.0], [7.0, 2.0, 8.0]])
    assert x.argmax().item() == 1
    assert x.argmax(dim=1).tolist() == [1, 2]
    assert x.argmin(dim=0, keepdim=True).tolist() == [[0, 1, 0]]


def test_bad_dim_raises():
    with pytest.raises(IndexError, match="Dimension out of range"):
        nncore.ones(2, 3).sum(dim=2)


def test_mean_of_integer_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        nncore.arange(4).mean()
