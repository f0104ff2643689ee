"""conv2d and nn.Conv2d through autograd: NumPy reference + finite differences (check_op),
PyTorch parity for outputs and every gradient, padding strings, unbatched input, init and
bad input (kernels tested in tests/kernels/test_conv.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nncore
import nncore.functional as F
from nncore import nn
from tests.helpers import check_op, rng, torch_or_skip
from tests.kernels.test_conv import ref_conv

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), (1, (1, 2), (2, 1), 2), ((2, 1), 0, 1, 4), (1, 1, 1, 1),
])
def test_conv2d_check_op(stride, padding, dilation, groups):
    r = rng(0)
    x = r.standard_normal((2, 4, 6, 5))
    w = r.standard_normal((4, 4 // groups, 3, 2))
    b = r.standard_normal(4)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation

    def ref(x, w, b):
        return ref_conv(x, w, b, (sh, sw), (ph, ph, pw, pw), (dh, dw), groups)

    check_op(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), ref,
             [x, w, b], tol=TOL)


def test_conv2d_no_bias_unbatched_and_same():
    r = rng(1)
    x, w = r.standard_normal((3, 7, 6)), r.standard_normal((5, 3, 4, 3))
    # "same" with an even kernel pads 1 above, 2 below (PyTorch puts the extra at the end)
    check_op(lambda x, w: F.conv2d(x, w, padding="same"),
             lambda x, w: ref_conv(x[None], w, None, (1, 1), (1, 2, 1, 1), (1, 1), 1)[0],
             [x, w], tol=TOL)
    out = F.conv2d(nncore.Tensor(x), nncore.Tensor(w), padding="valid")
    assert out.shape == (5, 4, 4)


def _torch_conv_pair(torch, layer_args, layer_kwargs, x_shape, dtype, seed=0):
    tl = torch.nn.Conv2d(*layer_args, **layer_kwargs).to(getattr(torch, np.dtype(dtype).name))
    nl = nn.Conv2d(*layer_args, **layer_kwargs, dtype=dtype)
    nl.load_state_dict({k: nncore.Tensor(v.detach().numpy().copy())
                        for k, v in tl.state_dict().items()})
    x = rng(seed).standard_normal(x_shape).astype(dtype)
    return tl, nl, x


@pytest.mark.parametrize("args, kwargs, x_shape", [
    ((3, 6, 5), {}, (4, 3, 12, 12)),
    ((6, 16, 5), {"stride": 2, "padding": 2}, (3, 6, 14, 14)),
    ((8, 8, 3), {"padding": "same", "groups": 8, "bias": False}, (2, 8, 7, 9)),
    ((4, 6, (3, 2)), {"dilation": (2, 1), "groups": 2, "padding": (1, 0)}, (2, 4, 9, 7)),
    ((4, 6, 1), {}, (2, 4, 5, 5)),
    ((3, 4, 4), {"padding": "same"}, (1, 3, 6, 7)),
    # batches >= 16 (input gradient with samples along the lanes), 12-16 output channels
    # (channels along the lanes), >= 32 input channels (input gradient as a forward conv)
    ((6, 16, 5), {}, (17, 6, 14, 14)),
    ((5, 12, 3), {"padding": 1}, (16, 5, 9, 10)),
    ((32, 8, 3), {"padding": (1, 0)}, (3, 32, 7, 6)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_torch_parity(args, kwargs, x_shape, dtype):
    torch = torch_or_skip()
    tl, nl, x = _torch_conv_pair(torch, args, kwargs, x_shape, dtype)
    xt = torch.tensor(x, requires_grad=True)
    xn = nncore.Tensor(x, requires_grad=True)
    yt, yn = tl(xt), nl(xn)
    def close(got, want):
        # float32 sums of N*OH*OW products round in proportion to their magnitude (weight
        # gradients reach ~150 here), on both sides: atol follows the largest value
        if dtype == np.float32:
            atol = max(1e-5, 2e-6 * float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

    close(yn.data, yt.detach().numpy())
    g = rng(9).standard_normal(yn.shape).astype(dtype)
    yt.backward(torch.tensor(g))
    yn.backward(g)
    close(xn.grad.data, xt.grad.numpy())
    close(nl.weight.grad.data, tl.weight.grad.numpy())
    if nl.bias is not None:
        close(nl.bias.grad.data, tl.bias.grad.numpy())


def test_conv2d_layer_api_and_init():
    m = nn.Conv2d(6, 16, 5)
    assert m.weight.shape == (16, 6, 5, 5) and m.bias.shape == (16,)
    assert m.weight.dtype == np.float32
    assert list(m.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(6 * 25)      # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ...)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.weight.data).max() > 0.8 * bound
    assert np.abs(m.bias.data).max() <= bound
    assert repr(m) == "Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))"
    m2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False, dtype=np.float64)
    assert "padding=(1, 1)" in repr(m2) and "groups=2" in repr(m2) and "bias=False" in repr(m2)
    assert m2.bias is None and m2.weight.dtype == np.float64
    assert list(m2.state_dict()) == ["weight"]


@pytest.mark.parametrize("kwargs, exc", [
    ({"padding_mode": "reflect"}, NotImplementedError),
    ({"padding_mode": "bogus"}, ValueError),
    ({"groups": 4}, ValueError),
    ({"padding": "same", "stride": 2}, ValueError),
    ({"padding": "full"}, ValueError),
])
def test_conv2d_layer_bad_args(kwargs, exc):
    with pytest.raises(exc):
        nn.Conv2d(6, 8, 3, **kwargs)


def test_conv2d_functional_bad_input():
    x = nncore.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(x, nncore.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match="3-D"):
        F.conv2d(nncore.randn(8, 8), nncore.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, nncore.randn(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match="Kernel size"):
        F.conv2d(x, nncore.randn(4, 3, 9, 9))
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(x, nncore.Tensor(np.zeros((4, 3, 3, 3))))
