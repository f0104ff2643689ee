"""reshape/view/flatten/transpose/permute/squeeze/unsqueeze/indexing/cat/stack."""
import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import check_op, rng


def test_reshape_view_flatten():
    x = rng(0).standard_normal((2, 3, 5))
    check_op(lambda t: t.reshape(6, 5), lambda a: a.reshape(6, 5), [x])
    check_op(lambda t: t.view(-1), lambda a: a.reshape(-1), [x])
    check_op(lambda t: F.flatten(t, 1), lambda a: a.reshape(2, 15), [x])
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        nncore.ones(6).reshape(4, 2)


def test_transpose_permute_T():
    x = rng(1).standard_normal((2, 3, 5))
    check_op(lambda t: t.transpose(0, 2), lambda a: a.transpose(2, 1, 0), [x])
    check_op(lambda t: t.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0), [x])
    y = rng(2).standard_normal((7, 3))
    check_op(lambda t: t.T * 1.0, lambda a: a.T, [y])
    with pytest.raises(RuntimeError, match="number of dims"):
        nncore.ones(2, 3).permute(0)


def test_squeeze_unsqueeze_expand():
    x = rng(3).standard_normal((1, 3, 1))
    check_op(lambda t: t.squeeze(), lambda a: a.squeeze(), [x])
    check_op(lambda t: t.squeeze(0), lambda a: a.squeeze(0), [x])
    check_op(lambda t: t.unsqueeze(1), lambda a: a[:, None], [x])
    check_op(lambda t: t.expand(4, 3, 2), lambda a: np.broadcast_to(a, (4, 3, 2)), [x])


@pytest.mark.parametrize("index", [1, (slice(None), 2), (slice(1, None, 2),), (Ellipsis, 0),
                                   (np.array([0, 2, 2]),), (np.array([True, False, True, True]),)])
def test_getitem(index):
    x = rng(4).standard_normal((4, 3))
    check_op(lambda t: t[index], lambda a: a[index], [x])


def test_cat_stack():
    a, b = rng(5).standard_normal((2, 3)), rng(6).standard_normal((4, 3))
    check_op(lambda s, t: F.cat([s, t], 0), lambda s, t: np.concatenate([s, t]), [a, b])
    c = rng(7).standard_normal((2, 3))
    check_op(lambda s, t: F.stack([s, t], 1), lambda s, t: np.stack([s, t], 1), [a, c])
    with pytest.raises(RuntimeError, match="equal size"):
        F.stack([nncore.ones(2), nncore.ones(3)])
    with pytest.raises(RuntimeError, match="sizes of tensors must match"):
        F.cat([nncore.ones(2, 2), nncore.ones(3, 3)], 0)
