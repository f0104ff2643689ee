"""Activation functions through autograd (kernels tested in tests/kernels)."""
from math import erf

import numpy as np
import pytest

import nncore
import nncore.functional as F
from tests.helpers import ODD_SHAPES, check_op, rng, torch_or_skip

_erf = np.vectorize(erf)


def _away_from_zero(shape, seed=0):
    x = rng(seed).standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.1
    return x


REFS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (lambda t: F.gelu(t, "tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
}


@pytest.mark.parametrize("name", sorted(REFS))
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_activation(name, shape):
    fn, ref = REFS[name]
    check_op(fn, ref, [_away_from_zero(shape)])


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 97), 1), ((101, 7), 0), ((2, 3, 5), 1),
                                       ((1, 1), -1)])
def test_softmax_log_softmax(shape, dim):
    x = rng(1).standard_normal(shape)
    check_op(lambda t: F.softmax(t, dim), lambda a: _softmax(a, dim), [x])
    check_op(lambda t: F.log_softmax(t, dim), lambda a: np.log(_softmax(a, dim)), [x])


def test_modules_match_torch():
    torch = torch_or_skip()
    x = rng(2).standard_normal((5, 7)).astype(np.float32)
    pairs = [(nncore.nn.GELU("tanh"), torch.nn.GELU("tanh")), (nncore.nn.ReLU(), torch.nn.ReLU()),
             (nncore.nn.LogSoftmax(1), torch.nn.LogSoftmax(1)),
             (nncore.nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(nncore.tensor(x)).numpy(),
                                   theirs(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
