"""RMSprop and Adagrad: fused kernels against NumPy transcriptions of torch's single-tensor
update (bit for bit), the optimizers against torch.optim trajectories, state_dict, bad input."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import optim
from nncore._kernels import optim as K
from nncore.nn import Parameter

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 97, 100003]  # 100003 > parallel_min_elements(): the threaded path
SHAPES = [(3, 5), (7,), ()]


# ------------------------------------------------------------------------------ references
def _lerp(a, b, w):
    T = a.dtype.type
    w = T(w)
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (T(1) - w)


def rmsprop_ref(p, grad, sq, buf, ga, lr, alpha, eps, wd, momentum, centered, maximize):
    T = p.dtype.type
    g = -grad if maximize else grad.copy()
    if wd != 0:
        g = g + T(wd) * p
    sq[...] = sq * T(alpha)
    sq[...] = sq + (T(1 - alpha) * g) * g
    if centered:
        ga[...] = _lerp(ga, g, 1 - alpha)
        avg = np.sqrt(sq - ga * ga)
    else:
        avg = np.sqrt(sq)
    avg = avg + T(eps)
    if momentum > 0:
        buf[...] = buf * T(momentum)
        buf[...] = buf + g / avg
        p[...] = p + T(-lr) * buf
    else:
        p[...] = p + (T(-lr) * g) / avg


def adagrad_ref(p, grad, ssum, step, lr, lr_decay, wd, eps, maximize):
    T = p.dtype.type
    g = -grad if maximize else grad.copy()
    if wd != 0:
        g = g + T(wd) * p
    clr = lr / (1 + (step - 1) * lr_decay)
    ssum[...] = ssum + g * g
    p[...] = p + (T(-clr) * g) / (np.sqrt(ssum) + T(eps))


def _arrays(n, dtype, seed, k):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(k)]


RMS_CONFIGS = list(itertools.product([0.0, 0.9], [False, True], [0.0, 0.1], [False, True]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("cfg", RMS_CONFIGS, ids=str)
def test_rmsprop_kernel_matches_reference(dtype, n, cfg):
    momentum, centered, wd, maximize = cfg
    (p,) = _arrays(n, dtype, 0, 1)
    sq, buf, ga = (np.zeros(n, dtype) for _ in range(3))
    ref = [a.copy() for a in (p, sq, buf, ga)]
    for step in range(3):
        (grad,) = _arrays(n, dtype, 10 + step, 1)
        K.rmsprop_step(p, grad, sq, buf if momentum else None, ga if centered else None,
                       1e-2, 0.9, 1e-8, wd, momentum, centered, maximize)
        rmsprop_ref(ref[0], grad, *ref[1:], 1e-2, 0.9, 1e-8, wd, momentum, centered, maximize)
        for got, want in zip((p, sq, buf, ga), ref):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("cfg", list(itertools.product([0.0, 0.1], [0.0, 0.05], [False, True])),
                         ids=str)
def test_adagrad_kernel_matches_reference(dtype, n, cfg):
    lr_decay, wd, maximize = cfg
    (p,) = _arrays(n, dtype, 1, 1)
    ssum = np.full(n, 0.1, dtype)
    ref = [p.copy(), ssum.copy()]
    for step in range(1, 4):
        (grad,) = _arrays(n, dtype, 20 + step, 1)
        K.adagrad_step(p, grad, ssum, step, 1e-2, lr_decay, wd, 1e-10, maximize)
        adagrad_ref(ref[0], grad, ref[1], step, 1e-2, lr_decay, wd, 1e-10, maximize)
        np.testing.assert_array_equal(p, ref[0])
        np.testing.assert_array_equal(ssum, ref[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_equals_single_and_threads_agree(dtype):
    sizes = [5, 70001, 1, 40000]
    base = [_arrays(n, dtype, 30 + i, 2) for i, n in enumerate(sizes)]
    results = []
    for nthreads, multi in [(1, False), (1, True), (2, True)]:
        old = nncore.get_num_threads()
        nncore.set_num_threads(nthreads)
        try:
            ps = [b[0].copy() for b in base]
            gs = [b[1] for b in base]
            sq = [np.zeros_like(p) for p in ps]
            buf = [np.zeros_like(p) for p in ps]
            ga = [np.zeros_like(p) for p in ps]
            qs = [b[0].copy() for b in base]
            sums = [np.full_like(p, 0.5) for p in ps]
            steps = [1, 2, 3, 4]
            if multi:
                K.rmsprop_step_multi(ps, gs, sq, buf, ga, 1e-2, 0.99, 1e-8, 0.01, 0.9, True,
                                     False)
                K.adagrad_step_multi(qs, gs, sums, steps, 1e-2, 0.1, 0.0, 1e-10, True)
            else:
                for i in range(len(ps)):
                    K.rmsprop_step(ps[i], gs[i], sq[i], buf[i], ga[i], 1e-2, 0.99, 1e-8, 0.01,
                                   0.9, True, False)
                    K.adagrad_step(qs[i], gs[i], sums[i], steps[i], 1e-2, 0.1, 0.0, 1e-10,
                                   True)
            results.append(ps + sq + buf + ga + qs + sums)
        finally:
            nncore.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


_SIMD_SCRIPT = """
import hashlib, numpy as np
from nncore._kernels import optim as K
rng = np.random.default_rng(0)
h = hashlib.sha256()
for dt in (np.float32, np.float64):
    p, g, ga, buf = (rng.standard_normal(1003).astype(dt) for _ in range(4))
    sq = np.abs(p * g) + 1
    K.rmsprop_step(p, g, sq, buf, ga, 1e-2, 0.9, 1e-8, 0.1, 0.9, True, True)
    K.rmsprop_step(p, g, sq, buf, ga, 1e-2, 0.3, 1e-8, 0.0, 0.0, False, False)
    K.adagrad_step(p, g, sq, 3, 1e-2, 0.1, 0.01, 1e-10, False)
    h.update(p.tobytes() + sq.tobytes() + buf.tobytes() + ga.tobytes())
print(K.dispatched_simd(), h.hexdigest())
"""


def test_simd_levels_give_identical_bits():
    """No FMA contraction: every instruction set rounds exactly like the portable loop."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(nncore.__file__)))
    out = {}
    for level in ("portable", "avx2", "avx512"):
        env = dict(os.environ, NNCORE_SIMD=level)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        res = subprocess.run([sys.executable, "-c", _SIMD_SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        name, digest = res.stdout.split()
        out[name] = digest
    assert len(set(out.values())) == 1, out


def test_kernel_bad_input():
    p, g = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match="momentum_buffer"):
        K.rmsprop_step(p, g, np.zeros(3), None, None, 0.1, 0.9, 1e-8, 0, 0.9, False, False)
    with pytest.raises(ValueError, match="grad_avg"):
        K.rmsprop_step(p, g, np.zeros(3), None, None, 0.1, 0.9, 1e-8, 0, 0.0, True, False)
    with pytest.raises(ValueError, match=r"square_avgs\[1\]: shape \(2,\)"):
        K.rmsprop_step_multi([p, p.copy()], [g, g], [np.zeros(3), np.zeros(2)], None, None,
                             0.1, 0.9, 1e-8, 0, 0, False, False)
    with pytest.raises(TypeError, match="state_sum: dtype float32"):
        K.adagrad_step(p, g, np.zeros(3, np.float32), 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(ValueError, match="step count"):
        K.adagrad_step(p, g, np.zeros(3), 0, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(ValueError, match="share memory"):
        K.adagrad_step(p, g, p, 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(ValueError, match="steps: expected 1 values"):
        K.adagrad_step_multi([p], [g], [np.zeros(3)], [1, 2], 0.1, 0, 0, 1e-10, False)


# ------------------------------------------------------------------------------ vs PyTorch
def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def _grads_at(dtype, step):
    rng = np.random.default_rng(1000 + step)
    grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    if step % 2:
        grads[2] = None  # per-parameter step counts
    return grads


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else nncore.Tensor(g)


def _compare_with_torch(make_ours, make_torch, dtype, steps=20):
    torch = pytest.importorskip("torch")
    ours = _params(dtype)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt = make_ours([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05}])
    topt = make_torch(torch, [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05}])
    tol = {"rtol": 1e-11, "atol": 1e-11} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
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
    return opt, topt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [dict(zip(("momentum", "centered", "weight_decay", "maximize"), c))
                                 for c in RMS_CONFIGS], ids=str)
def test_rmsprop_matches_torch(dtype, cfg):
    kw = dict(lr=0.01, alpha=0.9, eps=1e-6, **cfg)
    opt, topt = _compare_with_torch(
        lambda groups: optim.RMSprop(groups, **kw),
        lambda torch, groups: torch.optim.RMSprop(groups, foreach=False, **kw), dtype)
    ts = topt.state_dict()["state"]
    for i, s in opt.state_dict()["state"].items():
        assert sorted(s) == sorted(ts[i])  # PyTorch's state keys
        assert s["step"] == int(ts[i]["step"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [
    {}, {"lr_decay": 0.1}, {"weight_decay": 0.1, "maximize": True},
    {"initial_accumulator_value": 0.5, "eps": 1e-6}], ids=str)
def test_adagrad_matches_torch(dtype, cfg):
    opt, topt = _compare_with_torch(
        lambda groups: optim.Adagrad(groups, lr=0.1, **cfg),
        lambda torch, groups: torch.optim.Adagrad(groups, lr=0.1, foreach=False, **cfg), dtype)
    ts = topt.state_dict()["state"]
    for i, s in opt.state_dict()["state"].items():
        assert sorted(s) == sorted(ts[i])
        np.testing.assert_allclose(s["sum"], ts[i]["sum"].numpy(), rtol=1e-5)


def test_defaults_match_torch():
    torch = pytest.importorskip("torch")
    p = _params(np.float32)
    t = [torch.zeros(1, requires_grad=True)]
    for ours, theirs in [(optim.RMSprop(p), torch.optim.RMSprop(t)),
                         (optim.Adagrad(p), torch.optim.Adagrad(t))]:
        tg = theirs.param_groups[0]
        for k, v in ours.param_groups[0].items():
            if k != "params":
                assert tg[k] == v, k


# ------------------------------------------------------------------------------ state_dict
@pytest.mark.parametrize("make", [
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    lambda ps: optim.Adagrad([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}], lr_decay=0.01),
], ids=["rmsprop", "adagrad"])
def test_state_dict_round_trip_continues_bit_identically(make):
    dtype = np.float32
    params = _params(dtype)
    opt = make(params)
    for step in range(5):
        _set_grads(params, _grads_at(dtype, step))
        opt.step()
    sd = opt.state_dict()
    snapshot = [p.data.copy() for p in params]
    params2 = [Parameter(a) for a in snapshot]
    opt2 = make(params2)
    opt2.load_state_dict(sd)
    for step in range(5, 10):
        for ps, o in ((params, opt), (params2, opt2)):
            _set_grads(ps, _grads_at(dtype, step))
            o.step()
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)


def test_adagrad_state_is_created_eagerly():
    params = _params(np.float64)
    opt = optim.Adagrad(params[:2], initial_accumulator_value=0.25)
    opt.add_param_group({"params": params[2:]})
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert sd["state"][0]["step"] == 0
    np.testing.assert_array_equal(sd["state"][0]["sum"], np.full((3, 5), 0.25))


def test_invalid_hyper_parameters():
    ps = _params(np.float32)
    for kw, msg in [({"lr": -1}, "Invalid learning rate"), ({"eps": -1}, "Invalid epsilon"),
                    ({"momentum": -1}, "Invalid momentum"), ({"alpha": -1}, "Invalid alpha"),
                    ({"weight_decay": -1}, "Invalid weight_decay")]:
        with pytest.raises(ValueError, match=msg):
            optim.RMSprop(ps, **kw)
    for kw, msg in [({"lr": -1}, "Invalid learning rate"), ({"lr_decay": -1}, "lr_decay"),
                    ({"initial_accumulator_value": -1}, "initial_accumulator_value"),
                    ({"eps": -1}, "Invalid epsilon"), ({"weight_decay": -1}, "weight_decay")]:
        with pytest.raises(ValueError, match=msg):
            optim.Adagrad(ps, **kw)


@pytest.mark.parametrize("name,kw", [("RMSprop", {"momentum": 0.9, "centered": True}),
                                     ("Adagrad", {"lr_decay": 0.01}),
                                     ("Adam", {"amsgrad": True})])
def test_loads_a_torch_optimizer_state_dict(name, kw):
    torch = pytest.importorskip("torch")
    ours = _params(np.float64)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    topt = getattr(torch.optim, name)(theirs, lr=0.01, foreach=False, **kw)
    for step in range(3):
        for t, g in zip(theirs, _grads(np.float64, step)):
            t.grad = torch.tensor(g)
        topt.step()
    for p, t in zip(ours, theirs):
        p.data[...] = t.detach().numpy()
    opt = getattr(optim, name)(ours, lr=0.01, **kw)
    opt.load_state_dict(topt.state_dict())  # torch tensors in, NumPy arrays + int steps out
    assert opt.state[ours[0]]["step"] == 3
    for step in range(3, 6):
        grads = _grads(np.float64, step)
        _set_grads(ours, grads)
        for t, g in zip(theirs, grads):
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-11, atol=1e-12)


def _grads(dtype, step):
    rng = np.random.default_rng(2000 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]
