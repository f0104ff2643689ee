"""Arithmetic and unary math: forward vs NumPy, backward vs finite differences."""
import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import ODD_SHAPES, check_op, rng

BROADCAST_PAIRS = [((7,), (7,)), ((3, 1), (1, 5)), ((2, 3, 4), (4,)), ((1,), (97,)),
                   ((101, 1), (101, 7))]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS)
@pytest.mark.parametrize("op,ref", [(F.add, np.add), (F.sub, np.subtract), (F.mul, np.multiply),
                                    (F.div, np.divide), (F.maximum, np.maximum)])
def test_binary_ops(op, ref, sa, sb):
    r = rng(1)
    a = r.standard_normal(sa)
    b = r.standard_normal(sb) + (3.0 if op is F.div else 0.0)
    check_op(op, ref, [a, b])


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_pow_both_arguments(shape):
    r = rng(2)
    a = r.uniform(0.5, 2.0, shape)
    b = r.uniform(-1.5, 1.5, shape)
    check_op(F.pow, np.power, [a, b])
    check_op(lambda x: x ** 3, lambda x: x ** 3, [a])
    check_op(lambda x: 2.0 ** x, lambda x: 2.0 ** x, [b])


@pytest.mark.parametrize("shape", ODD_SHAPES)
@pytest.mark.parametrize("op,ref,lo", [(F.exp, np.exp, -2), (F.log, np.log, 0.5),
                                       (F.sqrt, np.sqrt, 0.5), (F.neg, np.negative, -2),
                                       (F.abs, np.abs, -2)])
def test_unary_ops(op, ref, lo, shape):
    x = rng(3).uniform(lo, 2.0, shape)
    if op is F.abs:
        x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the kink
    check_op(op, ref, [x])


def test_clamp_forward_and_gradient_mask():
    x = np.array([-2.0, -0.5, 0.3, 0.9, 3.0])
    check_op(lambda t: F.clamp(t, -1.0, 1.0), lambda a: np.clip(a, -1, 1), [x])
    check_op(lambda t: t.clamp(min=0.0), lambda a: np.maximum(a, 0), [x])
    with pytest.raises(ValueError, match="min"):
        F.clamp(nncore.ones(2))


def test_where_routes_gradients():
    cond = np.array([True, False, True])
    check_op(lambda a, b: F.where(cond, a, b), lambda a, b: np.where(cond, a, b),
             [rng(4).standard_normal(3), rng(5).standard_normal(3)])


def test_log_of_zero_and_negative_follow_pytorch():
    out = F.log(nncore.tensor([0.0, -1.0])).numpy()
    assert out[0] == -np.inf and np.isnan(out[1])


def test_nan_propagates():
    x = nncore.tensor([np.nan, 1.0])
    assert np.isnan((x * 2.0).numpy()[0])
    assert np.isnan(F.exp(x).numpy()[0])
