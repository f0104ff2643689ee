"""Pooling through autograd and nn: check_op (NumPy reference + finite differences), PyTorch
parity for outputs, indices and gradients, unbatched input, layers (kernels tested in
tests/kernels/test_pool.py)."""
from __future__ import annotations

import numpy as np
import pytest

import nncore
import nncore.functional as F
from nncore import nn
from tests.helpers import check_op, rng, torch_or_skip
from tests.kernels.test_pool import ref_adaptive, ref_avgpool, ref_maxpool


def pair(v):
    return (v, v) if isinstance(v, int) else v


def _distinct(shape, seed=0):
    """Values with well separated entries, so finite differences never cross a max tie."""
    x = rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    return x / x.size


@pytest.mark.parametrize("k, s, p, d, ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                              ((2, 3), (1, 2), (1, 1), (2, 1), False)])
def test_max_pool2d_check_op(k, s, p, d, ceil):
    x = _distinct((2, 2, 7, 6))

    def ref(x):
        return ref_maxpool(x, pair(k), pair(s if s is not None else k), pair(p), pair(d),
                           ceil)[0]

    check_op(lambda t: F.max_pool2d(t, k, s, p, d, ceil), ref, [x])


@pytest.mark.parametrize("k, s, p, ceil, cip, div", [(2, None, 0, False, True, None),
                                                     (3, 2, 1, True, False, None),
                                                     ((3, 2), (2, 1), (1, 0), False, True, 3)])
def test_avg_pool2d_check_op(k, s, p, ceil, cip, div):
    x = rng(1).standard_normal((2, 3, 7, 6))
    check_op(lambda t: F.avg_pool2d(t, k, s, p, ceil, cip, div),
             lambda x: ref_avgpool(x, pair(k), pair(s if s is not None else k), pair(p), ceil,
                                   cip, div), [x])


@pytest.mark.parametrize("size", [1, (3, 2), (None, 4), (5, 7)])
def test_adaptive_avg_pool2d_check_op(size):
    x = rng(2).standard_normal((2, 3, 7, 6))
    sz = (size, size) if isinstance(size, int) else size
    oh, ow = (7 if sz[0] is None else sz[0]), (6 if sz[1] is None else sz[1])
    check_op(lambda t: F.adaptive_avg_pool2d(t, size), lambda x: ref_adaptive(x, oh, ow), [x])


def test_unbatched_and_return_indices():
    x = _distinct((3, 6, 6))
    check_op(lambda t: F.max_pool2d(t, 2), lambda x: ref_maxpool(x[None], (2, 2), (2, 2), (0, 0),
                                                                (1, 1), False)[0][0], [x])
    out, idx = F.max_pool2d(nncore.Tensor(x), 2, return_indices=True)
    assert out.shape == idx.shape == (3, 3, 3) and idx.dtype == np.int64
    check_op(lambda t: F.avg_pool2d(t, 2), None, [x])
    check_op(lambda t: F.adaptive_avg_pool2d(t, 2), None, [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_torch_parity(dtype):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = rng(3).standard_normal((2, 3, 11, 9)).astype(dtype)
    cases = [
        (lambda f, t: f.max_pool2d(t, 2), None),
        (lambda f, t: f.max_pool2d(t, 3, 2, 1, 2, True), None),
        (lambda f, t: f.avg_pool2d(t, 3, 2, 1, True, False), None),
        (lambda f, t: f.avg_pool2d(t, 2, 1, 1, False, True, 3), None),
        (lambda f, t: f.adaptive_avg_pool2d(t, (4, 3)), None),
    ]
    for fn, _ in cases:
        xt = torch.tensor(x, requires_grad=True)
        xn = nncore.Tensor(x, requires_grad=True)
        yt, yn = fn(tf, xt), fn(F, xn)
        np.testing.assert_allclose(yn.data, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
        g = rng(4).standard_normal(yn.shape).astype(dtype)
        yt.backward(torch.tensor(g))
        yn.backward(g)
        np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-6, atol=1e-7)
    _, it = tf.max_pool2d(torch.tensor(x), 3, 2, 1, 1, True, return_indices=True)
    _, inn = F.max_pool2d(nncore.Tensor(x), 3, 2, 1, 1, True, return_indices=True)
    np.testing.assert_array_equal(inn.data, it.numpy())


def test_layers_and_repr():
    x = nncore.Tensor(rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32))
    m = nn.MaxPool2d(2)
    assert m(x).shape == (2, 3, 4, 4)
    assert repr(m) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.shape == out.shape
    a = nn.AvgPool2d(3, 2, 1)
    assert a(x).shape == (2, 3, 4, 4) and "kernel_size=3, stride=2, padding=1" in repr(a)
    ad = nn.AdaptiveAvgPool2d((1, 1))
    assert ad(x).shape == (2, 3, 1, 1) and repr(ad) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    assert list(m.state_dict()) == []


def test_pool_bad_input():
    x = nncore.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(x, 2, 2, 2)
    with pytest.raises(ValueError, match="3-D"):
        F.max_pool2d(nncore.randn(4, 4), 2)
    with pytest.raises(ValueError, match="too small"):
        F.avg_pool2d(x, 5)
