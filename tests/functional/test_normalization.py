"""F.batch_norm (finite differences via check_op) and nn.BatchNorm1d/2d (PyTorch parity for
train and eval, running statistics, momentum=None, state_dict keys, errors)."""
from __future__ import annotations

import numpy as np
import pytest

import nncore
from nncore import functional as F
from nncore import nn
from tests.helpers import check_op, rng, torch_or_skip


def _ref_bn_train(x, w, b):
    ax = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=ax, keepdims=True), x.var(axis=ax, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape", [(7, 3), (5, 2, 9), (3, 4, 5, 3), (2, 1, 1, 7)])
def test_batch_norm_train_check_op(shape):
    r = rng(0)
    x = r.standard_normal(shape) * 1.5 + 0.3
    w = r.standard_normal(shape[1])
    b = r.standard_normal(shape[1])
    check_op(lambda x_, w_, b_: F.batch_norm(x_, None, None, w_, b_, training=True),
             _ref_bn_train, [x, w, b], grad_rtol=1e-5, grad_atol=1e-6,
             tol={np.float32: dict(rtol=1e-4, atol=1e-4),
                  np.float64: dict(rtol=1e-10, atol=1e-10)})


@pytest.mark.parametrize("shape", [(7, 3), (3, 4, 5, 3)])
def test_batch_norm_eval_check_op(shape):
    r = rng(1)
    C = shape[1]
    x = r.standard_normal(shape)
    w, b = r.standard_normal(C), r.standard_normal(C)
    rm, rv = r.standard_normal(C), r.uniform(0.5, 2, C)

    def fn(x_, w_, b_):
        dt = x_.dtype
        return F.batch_norm(x_, nncore.Tensor(rm.astype(dt)), nncore.Tensor(rv.astype(dt)), w_,
                            b_, training=False)

    def ref(x_, w_, b_):
        s = (1, -1) + (1,) * (x_.ndim - 2)
        return (x_ - rm.reshape(s)) / np.sqrt(rv.reshape(s) + 1e-5) * w_.reshape(s) + b_.reshape(s)

    check_op(fn, ref, [x, w, b], tol={np.float32: dict(rtol=1e-5, atol=1e-5),
                                      np.float64: dict(rtol=1e-11, atol=1e-11)})


def test_batch_norm_errors():
    x = nncore.Tensor(np.ones((4, 3, 5), np.float32))
    with pytest.raises(ValueError, match="should contain 3 elements"):
        F.batch_norm(x, nncore.Tensor(np.zeros(4, np.float32)),
                     nncore.Tensor(np.ones(4, np.float32)), training=True)
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm1d(3)(nncore.Tensor(np.ones((4, 5), np.float32)))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(x)
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(nncore.Tensor(np.ones((2, 3, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(nncore.Tensor(np.ones((1, 3), np.float32)))
    # a single sample is fine in eval mode, and with spatial extent in training
    bn = nn.BatchNorm2d(3)
    bn(nncore.Tensor(np.ones((1, 3, 2, 2), np.float32)))
    bn.eval()
    bn(nncore.Tensor(np.ones((1, 3, 1, 1), np.float32)))


def test_module_defaults_and_state_dict_keys():
    bn = nn.BatchNorm2d(6)
    assert list(bn.state_dict().keys()) == ["weight", "bias", "running_mean", "running_var",
                                            "num_batches_tracked"]
    assert bn.num_batches_tracked.data.dtype == np.int64
    assert bn.num_batches_tracked.data.shape == ()
    np.testing.assert_array_equal(bn.weight.data, np.ones(6, np.float32))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(6, np.float32))
    assert repr(bn) == ("BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, "
                        "track_running_stats=True)")
    plain = nn.BatchNorm1d(4, affine=False, track_running_stats=False)
    assert list(plain.state_dict().keys()) == []
    assert list(plain.parameters()) == []
    bn.double()
    assert bn.running_var.data.dtype == np.float64
    assert bn.num_batches_tracked.data.dtype == np.int64


def _torch_pair(torch, cls_name, C, **kw):
    ours = getattr(nn, cls_name)(C, **kw).double()
    theirs = getattr(torch.nn, cls_name)(C, **kw).double()
    r = rng(5)
    if ours.affine:
        w, b = r.standard_normal(C), r.standard_normal(C)
        ours.weight.data[...] = w
        ours.bias.data[...] = b
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    return ours, theirs


@pytest.mark.parametrize("cls_name,shape", [("BatchNorm1d", (16, 5)), ("BatchNorm1d", (8, 5, 7)),
                                            ("BatchNorm2d", (6, 5, 7, 9))])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False},
                                {"track_running_stats": False}])
def test_torch_parity_train_eval(cls_name, shape, kw):
    torch = torch_or_skip()
    C = shape[1]
    ours, theirs = _torch_pair(torch, cls_name, C, **kw)
    r = rng(7)
    for step in range(3):
        x = r.standard_normal(shape) * (step + 1) + step
        dy = r.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.tensor(dy))
        xo = nncore.Tensor(x, requires_grad=True)
        yo = ours(xo)
        yo.backward(dy)
        np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-10)
        if ours.affine:
            np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(),
                                       rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(),
                                       rtol=1e-9, atol=1e-10)
            ours.zero_grad()
            theirs.zero_grad()
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd.keys()) == list(theirs_sd.keys())
    for k in ours_sd:
        np.testing.assert_allclose(ours_sd[k].data, theirs_sd[k].numpy(), rtol=1e-12,
                                   atol=1e-12, err_msg=k)
    ours.eval()
    theirs.eval()
    x = r.standard_normal(shape)
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(nncore.Tensor(x)).data, expected, rtol=1e-10, atol=1e-10)


def test_load_torch_state_dict_and_float32_parity():
    torch = torch_or_skip()
    theirs = torch.nn.BatchNorm2d(4)
    theirs.train()
    for _ in range(2):
        theirs(torch.randn(8, 4, 5, 5) * 3 + 1)
    ours = nn.BatchNorm2d(4)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert int(ours.num_batches_tracked.data) == 2
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 5)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(nncore.Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_basic_block_matches_torch():
    """The residual BasicBlock of examples/cifar_cnn.py (conv-BN-ReLU-conv-BN + projection
    shortcut) gives torch's outputs and gradients for the same weights, in training mode."""
    torch = torch_or_skip()
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "cifar_cnn.py"
    spec = importlib.util.spec_from_file_location("cifar_cnn_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    ours = example.BasicBlock(3, 8, stride=2).double()

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            tnn = torch.nn
            self.conv1 = tnn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(8)
            self.conv2 = tnn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(8)
            self.shortcut = tnn.Sequential(tnn.Conv2d(3, 8, 1, stride=2, bias=False),
                                           tnn.BatchNorm2d(8))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    theirs = TorchBlock().double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng(9).standard_normal((4, 3, 9, 9))
    dy = rng(10).standard_normal((4, 8, 5, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.tensor(dy))
    xo = nncore.Tensor(x, requires_grad=True)
    yo = ours(xo)
    yo.backward(dy)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-8, atol=1e-9)
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, named[name].grad.numpy(), rtol=1e-8, atol=1e-9,
                                   err_msg=name)
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(ours.state_dict()[name].data, b.numpy(), rtol=1e-12,
                                   atol=1e-12, err_msg=name)
