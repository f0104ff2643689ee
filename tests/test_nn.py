"""nn.Module machinery, Linear, containers, state_dict, and parity with PyTorch."""
import numpy as np
import pytest

import nncore
from nncore import nn
from tests.helpers import rng, torch_or_skip


def _mlp():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def test_parameters_and_state_dict_keys_match_pytorch_names():
    model = _mlp()
    keys = list(model.state_dict())
    assert keys == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert model[0].weight.shape == (128, 784) and model[0].bias.shape == (128,)
    assert sum(p.numel() for p in model.parameters()) == 784 * 128 + 128 + 128 * 64 + 64 + 650
    assert [n for n, _ in model.named_children()] == ["0", "1", "2", "3", "4"]


def test_linear_default_init_bounds():
    nncore.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_load_state_dict_strict_errors():
    model = _mlp()
    sd = model.state_dict()
    del sd["0.bias"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match="Missing key.*0.bias"):
        model.load_state_dict(sd)
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    bad = model.state_dict()
    bad["0.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        model.load_state_dict(bad)


def test_state_dict_roundtrip_copies_values():
    a, b = _mlp(), _mlp()
    b.load_state_dict(a.state_dict())
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
        assert not np.shares_memory(pa.numpy(), pb.numpy())


def test_train_eval_zero_grad_repr():
    model = _mlp()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    x = nncore.randn(3, 784)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert "Linear(in_features=784, out_features=128, bias=True)" in repr(model)


def test_assigning_non_parameter_to_parameter_slot_raises():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign"):
        layer.weight = nncore.ones(2, 2)


def test_module_to_float64():
    model = _mlp().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    out = model(nncore.randn(2, 784, dtype=np.float64))
    assert out.dtype == np.float64


def test_linear_input_mismatch_message():
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        nn.Linear(784, 10)(nncore.ones(4, 100))


def test_nan_input_propagates_not_crashes():
    out = nn.Linear(3, 2)(nncore.tensor([[np.nan, 1.0, 2.0]])).detach()
    assert np.isnan(out.numpy()).all()


def test_zero_size_batch():
    out = _mlp()(nncore.zeros(0, 784))
    assert out.shape == (0, 10)


def test_weights_move_both_ways_with_pytorch():
    torch = torch_or_skip()
    ours = _mlp()
    theirs = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                 torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                 torch.nn.Linear(64, 10))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    x = rng(0).standard_normal((5, 784)).astype(np.float32)
    y = np.array([1, 2, 3, 4, 0])
    out_ours = ours(nncore.tensor(x))
    loss_ours = nn.CrossEntropyLoss()(out_ours, y)
    loss_ours.backward()
    xt = torch.from_numpy(x)
    loss_theirs = torch.nn.CrossEntropyLoss()(theirs(xt), torch.from_numpy(y))
    loss_theirs.backward()
    np.testing.assert_allclose(loss_ours.item(), loss_theirs.item(), rtol=1e-5)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    # and back: torch -> nncore
    ours2 = _mlp()
    ours2.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(ours2(nncore.tensor(x)).detach().numpy(),
                               theirs(xt).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
