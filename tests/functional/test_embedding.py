"""F.embedding and nn.Embedding: forward/backward through autograd, padding_idx, init,
from_pretrained, errors, and PyTorch parity where torch is installed."""
from __future__ import annotations

import numpy as np
import pytest

import nncore
import nncore.functional as F
from nncore import nn
from tests.helpers import check_op, rng, torch_or_skip


@pytest.mark.parametrize("ids_shape", [(1,), (7,), (5, 3), (2, 3, 4)])
def test_check_op_weight_grad(ids_shape):
    ids = rng(1).integers(0, 6, ids_shape)
    w = rng(2).standard_normal((6, 5))

    def ref(weight):
        return weight[ids]

    check_op(lambda weight: F.embedding(nncore.tensor(ids), weight), ref, [w])


def test_padding_idx_gets_no_gradient_and_negative_index():
    w = nncore.Tensor(rng(0).standard_normal((5, 3)), requires_grad=True)
    ids = nncore.tensor([[4, 1], [4, 4]])
    F.embedding(ids, w, padding_idx=-1).sum().backward()
    g = w.grad.data
    assert not g[4].any()
    np.testing.assert_array_equal(g[1], np.ones(3))


def test_module_init_padding_row_zero_and_state_dict():
    nncore.manual_seed(0)
    emb = nn.Embedding(1000, 16, padding_idx=3)
    assert emb.weight.shape == (1000, 16) and emb.weight.dtype == np.float32
    assert not emb.weight.data[3].any()
    assert abs(emb.weight.data.std() - 1.0) < 0.05   # N(0, 1)
    assert list(emb.state_dict()) == ["weight"]
    out = emb(nncore.tensor([[1, 2, 3]]))
    assert out.shape == (1, 3, 16)
    assert "padding_idx=3" in repr(emb)


def test_from_pretrained_freeze():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(nncore.tensor([2])).data, table[[2]])
    emb2 = nn.Embedding.from_pretrained(nncore.tensor(table), freeze=False)
    assert emb2.weight.requires_grad
    table[0, 0] = 99                              # a copy, as PyTorch
    assert emb.weight.data[0, 0] == 0


def test_errors():
    emb = nn.Embedding(10, 4)
    with pytest.raises(IndexError, match="index 10 is out of range for a vocabulary of 10"):
        emb(nncore.tensor([1, 10]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(nncore.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        emb(nncore.tensor([1.0]))
    with pytest.raises(NotImplementedError):
        nn.Embedding(10, 4, max_norm=1.0)
    with pytest.raises(NotImplementedError):
        nn.Embedding(10, 4, sparse=True)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(10, 4, padding_idx=10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_parity(dtype):
    torch = torch_or_skip()
    nncore.manual_seed(0)
    ours = nn.Embedding(50, 8, padding_idx=2, dtype=dtype)
    theirs = torch.nn.Embedding(50, 8, padding_idx=2, dtype=getattr(torch, dtype))
    theirs.load_state_dict({"weight": torch.from_numpy(ours.weight.data.copy())})
    ids = rng(3).integers(0, 50, (6, 9))
    ids[0, :4] = 2
    ids[1] = 7
    g = rng(4).standard_normal((6, 9, 8)).astype(dtype)
    out = ours(nncore.tensor(ids))
    out.backward(g)
    tout = theirs(torch.from_numpy(ids))
    tout.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(),
                               rtol=1e-6, atol=1e-6)


def test_torch_parity_scale_grad_by_freq_and_from_pretrained():
    torch = torch_or_skip()
    table = rng(5).standard_normal((12, 4))
    ours = nn.Embedding.from_pretrained(table, freeze=False, scale_grad_by_freq=True)
    theirs = torch.nn.Embedding.from_pretrained(torch.from_numpy(table.copy()), freeze=False,
                                                scale_grad_by_freq=True)
    ids = np.array([[3, 3, 3, 0], [11, 3, 0, 5]])
    g = rng(6).standard_normal((2, 4, 4))
    ours(nncore.tensor(ids)).backward(g)
    theirs(torch.from_numpy(ids)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)
