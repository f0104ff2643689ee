"""nncore.optim: SGD, Adam, AdamW against torch.optim trajectories; param groups; state_dict."""
import itertools

import numpy as np
import pytest

import nncore
from nncore import optim
from nncore.nn import Parameter

DTYPES = [np.float32, np.float64]
SHAPES = [(3, 5), (7,), ()]


def _params(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def _grads(dtype, step, shapes=SHAPES):
    rng = np.random.default_rng(1000 + step)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else nncore.Tensor(g)


def _grads_at(dtype, step):
    """The third parameter only gets a gradient on even steps (per-param step counts)."""
    grads = _grads(dtype, step)
    if step % 2:
        grads[2] = None
    return grads


# ------------------------------------------------------------------------------ vs PyTorch
def _sgd_configs():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
            [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.1], [False, True]):
        if nesterov and (momentum <= 0 or dampening != 0):
            continue
        yield {"momentum": momentum, "dampening": dampening, "nesterov": nesterov,
               "weight_decay": wd, "maximize": maximize}


def _adam_configs():
    for name, amsgrad, wd, maximize in itertools.product(
            ["Adam", "AdamW"], [False, True], [0.0, 0.1], [False, True]):
        yield name, {"amsgrad": amsgrad, "weight_decay": wd, "maximize": maximize}


def _compare_with_torch(make_ours, make_torch, dtype, steps=20):
    torch = pytest.importorskip("torch")
    ours = _params(dtype)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt = make_ours([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05}])
    topt = make_torch(torch, [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05}])
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    for step in range(steps):
        grads = _grads_at(dtype, step)
        _set_grads(ours, grads)
        for t, g in zip(theirs, grads):
            t.grad = None if g is None else torch.tensor(g)
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), **tol,
                                       err_msg=f"step {step}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", list(_sgd_configs()), ids=str)
def test_sgd_matches_torch(dtype, cfg):
    _compare_with_torch(lambda groups: optim.SGD(groups, lr=0.02, **cfg),
                        lambda torch, groups: torch.optim.SGD(groups, lr=0.02, foreach=False,
                                                              **cfg), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,cfg", list(_adam_configs()), ids=str)
def test_adam_matches_torch(dtype, name, cfg):
    kw = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, **cfg)
    _compare_with_torch(lambda groups: getattr(optim, name)(groups, **kw),
                        lambda torch, groups: getattr(torch.optim, name)(groups, foreach=False,
                                                                         **kw), dtype)


# ------------------------------------------------------------------------------ state_dict
def _run(opt, params, dtype, steps):
    for step in steps:
        _set_grads(params, _grads_at(dtype, step))
        opt.step()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}]),
], ids=["sgd", "adam", "adamw"])
def test_state_dict_round_trip_continues_bit_identically(dtype, make):
    params = _params(dtype)
    opt = make(params)
    _run(opt, params, dtype, range(5))
    sd = opt.state_dict()
    snapshot = [p.data.copy() for p in params]
    _run(opt, params, dtype, range(5, 10))

    params2 = [Parameter(a) for a in snapshot]
    opt2 = make(params2)
    opt2.load_state_dict(sd)
    _run(opt2, params2, dtype, range(5, 10))
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)
    assert opt.state_dict()["param_groups"] == opt2.state_dict()["param_groups"]


def test_state_dict_structure_is_pytorchs():
    params = _params(np.float32)
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}])
    _set_grads(params, [np.ones(s, np.float32) for s in SHAPES[:2]] + [None])
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 1]  # param 2 had no grad: no state yet
    assert sd["state"][0]["step"] == 1
    assert sd["state"][0]["exp_avg"].shape == (3, 5)
    assert sd["state"][0]["exp_avg"].dtype == np.float32
    before = sd["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)  # a snapshot, not a view


def test_load_state_dict_validates():
    params = _params(np.float64)
    opt = optim.Adam(params)
    _run(opt, params, np.float64, range(2))
    good = opt.state_dict()
    other = optim.Adam(_params(np.float64))
    with pytest.raises(ValueError, match="different number of parameter groups"):
        other.load_state_dict({"state": {}, "param_groups": good["param_groups"] * 2})
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = [0, 1]
    with pytest.raises(ValueError, match="doesn't match the size"):
        other.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][1]["exp_avg"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\] has shape \(2, 2\)"):
        other.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][7] = bad["state"][0]
    with pytest.raises(ValueError, match="parameter index 7"):
        other.load_state_dict(bad)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        other.load_state_dict({"state": {}})
    assert other.state_dict()["state"] == {}  # failed loads change nothing
    other.load_state_dict(good)
    assert other.state_dict()["state"][0]["step"] == 2


def test_adamw_stays_decoupled_when_loading_adam_state():
    params = _params(np.float32)
    sd = optim.Adam(params).state_dict()
    opt = optim.AdamW(params)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert opt.param_groups[0]["params"][0] is params[0]


def test_load_casts_state_to_param_dtype():
    p32 = _params(np.float32)
    opt = optim.SGD(p32, lr=0.1, momentum=0.5)
    sd = optim.SGD(p32, lr=0.1, momentum=0.5).state_dict()
    sd["state"] = {0: {"momentum_buffer": np.ones((3, 5), np.float64)}}
    opt.load_state_dict(sd)
    buf = opt.state[p32[0]]["momentum_buffer"]
    assert buf.dtype == np.float32 and buf.flags.c_contiguous


# ------------------------------------------------------------------------------ behaviour
def test_params_without_grad_are_skipped_and_mixed_dtypes_work():
    params = _params(np.float32)[:2] + _params(np.float64)[:2]
    before = [p.data.copy() for p in params]
    opt = optim.Adam(params, lr=0.1)
    _set_grads(params, [np.ones(p.data.shape, p.data.dtype) for p in params[:3]] + [None])
    opt.step()
    for p, b in zip(params[:3], before):
        np.testing.assert_allclose(p.data, b - 0.1, atol=1e-6)  # first Adam step: -lr*sign(g)
    np.testing.assert_array_equal(params[3].data, before[3])
    assert params[3] not in opt.state and len(opt.state) == 3


def test_zero_grad():
    params = _params(np.float32)
    opt = optim.SGD(params)
    _set_grads(params, _grads(np.float32, 0))
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_closure_returns_loss():
    params = _params(np.float64)
    opt = optim.SGD(params, lr=0.1)
    calls = []

    def closure():
        calls.append(nncore.is_grad_enabled())
        _set_grads(params, _grads(np.float64, 0))
        return 3.5

    with nncore.no_grad():
        assert opt.step(closure) == 3.5
    assert calls == [True]


def test_add_param_group_and_defaults():
    params = _params(np.float32)
    opt = optim.SGD(params[:1], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[1], "lr": 0.01})
    assert len(opt.param_groups[1]["params"]) == 1
    assert opt.param_groups[1]["params"][0] is params[1]
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    assert "Parameter Group 1" in repr(opt)


def test_invalid_hyper_parameters():
    ps = _params(np.float32)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD(ps, lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        optim.SGD(ps, momentum=-0.1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD(ps, nesterov=True)
    with pytest.raises(ValueError, match="Invalid weight_decay value"):
        optim.SGD(ps, weight_decay=-1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam(ps, lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
        optim.Adam(ps, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.AdamW(ps, betas=(0.9, -0.1))
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        optim.Adam(ps, eps=-1e-8)


def test_invalid_params():
    p = _params(np.float32)[0]
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({p})
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2])


def test_bad_arrays_raise():
    p = Parameter(np.ones((4, 6), np.float32)[:, ::2])  # a non-contiguous view
    opt = optim.Adam([p])
    p.grad = nncore.Tensor(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step()
    q = Parameter(np.ones(3, np.float32))
    opt = optim.SGD([q])
    q.grad = nncore.Tensor(np.ones(3, np.float64))
    with pytest.raises(ValueError, match="grad has shape .* dtype float64"):
        opt.step()
    q.grad = nncore.Tensor(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"param 0 of param group 0: grad has shape \(4,\)"):
        opt.step()
