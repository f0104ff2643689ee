"""optim.lr_scheduler: closed forms, torch.optim.lr_scheduler trajectories, state_dict."""
import math

import numpy as np
import pytest

from nncore import optim
from nncore.nn import Parameter
from nncore.optim import lr_scheduler as S

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")


def _opt(kind="sgd", lrs=(0.1, 0.02)):
    ps = [Parameter(np.zeros(2, np.float32)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)]
    if kind == "adam":
        return optim.Adam(groups, lr=lrs[0])
    return optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _trajectory(sched, opt, n, metric=None):
    out = [[g["lr"] for g in opt.param_groups]]
    for i in range(n):
        if metric is None:
            sched.step()
        else:
            sched.step(metric(i))
        out.append([g["lr"] for g in opt.param_groups])
    return np.array(out)


# ------------------------------------------------------------------------------ closed forms
def test_step_lr_closed_form():
    opt = _opt()
    s = S.StepLR(opt, step_size=3, gamma=0.5)
    traj = _trajectory(s, opt, 10)
    for e in range(11):
        np.testing.assert_allclose(traj[e], [0.1 * 0.5 ** (e // 3), 0.02 * 0.5 ** (e // 3)])
    assert s.get_last_lr() == list(traj[-1])


def test_multistep_lr_closed_form_with_repeated_milestone():
    opt = _opt()
    s = S.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.1)
    traj = _trajectory(s, opt, 7)
    want = [0.1 * 0.1 ** (int(e >= 2) + 2 * int(e >= 5)) for e in range(8)]
    np.testing.assert_allclose(traj[:, 0], want)


def test_exponential_and_linear_closed_forms():
    opt = _opt()
    traj = _trajectory(S.ExponentialLR(opt, gamma=0.9), opt, 6)
    np.testing.assert_allclose(traj[:, 0], [0.1 * 0.9 ** e for e in range(7)])
    opt = _opt()
    traj = _trajectory(S.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=4), opt, 8)
    want = [0.1 * (0.25 + 0.75 * min(4, e) / 4) for e in range(9)]
    np.testing.assert_allclose(traj[:, 0], want)


def test_cosine_closed_form_and_eta_min():
    opt = _opt()
    s = S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    traj = _trajectory(s, opt, 10)
    want = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(11)]
    np.testing.assert_allclose(traj[:, 0], want, rtol=1e-12, atol=1e-15)
    assert traj[-1, 0] == pytest.approx(0.001)


def test_lambda_lr_per_group():
    opt = _opt()
    s = S.LambdaLR(opt, [lambda e: 0.5 ** e, lambda e: 1.0 / (e + 1)])
    traj = _trajectory(s, opt, 4)
    np.testing.assert_allclose(traj[:, 0], [0.1 * 0.5 ** e for e in range(5)])
    np.testing.assert_allclose(traj[:, 1], [0.02 / (e + 1) for e in range(5)])


def test_one_cycle_shape():
    opt = _opt()
    s = S.OneCycleLR(opt, max_lr=1.0, total_steps=100)
    traj = _trajectory(s, opt, 99)
    lr = traj[:, 0]
    assert lr[0] == pytest.approx(1.0 / 25)
    assert int(np.argmax(lr)) == 29 and lr[29] == pytest.approx(1.0)  # pct_start*100 - 1
    assert lr[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="Tried to step 101 times"):
        s.step()
        s.step()


def test_reduce_on_plateau_rules():
    opt = _opt()
    s = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1, min_lr=0.03)
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    traj = _trajectory(s, opt, len(losses), metric=lambda i: losses[i])
    # bad epochs at 2, 3, 4 -> reduce after epoch 4 (3 > patience); cooldown 1 epoch; then
    # bad epochs again at 6, 7, 8 -> reduce after epoch 8 (clamped at min_lr for group 0).
    np.testing.assert_allclose(traj[:, 0], [0.1] * 5 + [0.05] * 4 + [0.03] * 2)
    np.testing.assert_allclose(traj[:, 1], [0.02] * 11)  # min_lr above it: never changes
    assert s.get_last_lr() == [0.03, 0.02]


# ------------------------------------------------------------------------------ vs PyTorch
CASES = {
    "step": (lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), "sgd", 12),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), "sgd", 12),
    "exponential": (lambda m, o: m.ExponentialLR(o, gamma=0.8), "sgd", 12),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.01), "sgd", 23),
    "linear": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=6), "sgd", 12),
    "lambda": (lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e), "sgd", 12),
    "onecycle": (lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=40), "sgd", 40),
    "onecycle3": (lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=4, steps_per_epoch=10,
                                            anneal_strategy="linear", three_phase=True),
                  "adam", 40),
    "constant": (lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=4), "sgd", 8),
    "polynomial": (lambda m, o: m.PolynomialLR(o, total_iters=6, power=2.0), "sgd", 9),
    "warm_restarts": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                  eta_min=0.001), "sgd", 25),
    "chained": (lambda m, o: m.ChainedScheduler([m.ExponentialLR(o, gamma=0.9),
                                                 m.StepLR(o, step_size=4, gamma=0.5)]),
                "sgd", 12),
    "sequential": (lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.2,
                                                              total_iters=3),
                                                   m.ExponentialLR(o, gamma=0.9)], [3]),
                   "sgd", 10),
}


def _torch_opt(torch, kind, lrs=(0.1, 0.02)):
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lrs[0])
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    make, kind, n = CASES[name]
    opt, topt = _opt(kind), _torch_opt(torch, kind)
    ours = _trajectory(make(S, opt), opt, n)
    theirs = _trajectory(make(torch.optim.lr_scheduler, topt), topt, n)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-16)
    if kind == "adam":
        assert opt.param_groups[0]["betas"] == pytest.approx(topt.param_groups[0]["betas"])


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    metrics = [5, 4, 4.5, 4.2, 4.1, 4.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1]
    for kw in [{"patience": 1}, {"mode": "max", "patience": 2, "threshold_mode": "abs",
                                 "threshold": 0.2, "cooldown": 2, "factor": 0.3}]:
        opt, topt = _opt(), _torch_opt(torch, "sgd")
        ours = _trajectory(S.ReduceLROnPlateau(opt, **kw), opt, len(metrics),
                           lambda i: metrics[i])
        theirs = _trajectory(torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw), topt,
                             len(metrics), lambda i: metrics[i])
        np.testing.assert_allclose(ours, theirs, rtol=1e-13)


# ------------------------------------------------------------------------------ state_dict
@pytest.mark.parametrize("name", ["step", "multistep", "cosine", "onecycle", "lambda",
                                  "chained", "warm_restarts", "polynomial"])
def test_state_dict_resume(name):
    make, kind, n = CASES[name]
    opt = _opt(kind)
    sched = make(S, opt)
    _trajectory(sched, opt, n // 2)
    sd = sched.state_dict()
    osd = opt.state_dict()
    rest = _trajectory(sched, opt, n - n // 2 - 1)

    opt2 = _opt(kind)
    sched2 = make(S, opt2)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(sd)
    rest2 = _trajectory(sched2, opt2, n - n // 2 - 1)
    np.testing.assert_array_equal(rest, rest2)


def test_reduce_on_plateau_state_dict():
    opt = _opt()
    s = S.ReduceLROnPlateau(opt, patience=0)
    s.step(1.0)
    s.step(2.0)
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["best"] == 1.0
    s2 = S.ReduceLROnPlateau(_opt())
    s2.load_state_dict(sd)
    assert s2.best == 1.0 and s2.patience == 0


def test_resume_with_last_epoch_needs_initial_lr():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(opt, 2, last_epoch=3)
    S.StepLR(opt, 2)
    s = S.StepLR(opt, 2, last_epoch=3)
    assert s.last_epoch == 4


def test_deprecated_epoch_argument_uses_closed_form():
    opt = _opt()
    s = S.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        s.step(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)


def test_bad_arguments():
    opt = _opt()
    with pytest.raises(TypeError, match="not an Optimizer"):
        S.StepLR(object(), 2)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode foo is unknown"):
        S.ReduceLROnPlateau(opt, mode="foo")
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        S.OneCycleLR(opt, max_lr=[0.1], total_steps=10)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        S.LambdaLR(opt, [lambda e: 1.0])
    plain = optim.Adagrad([Parameter(np.zeros(1))])
    with pytest.raises(ValueError, match="must support momentum"):
        S.OneCycleLR(plain, max_lr=0.1, total_steps=10)


def test_new_closed_forms_and_fractional_restart_epochs():
    opt = _opt()
    traj = _trajectory(S.PolynomialLR(opt, total_iters=4, power=2.0), opt, 6)
    np.testing.assert_allclose(traj[:, 0], [0.1 * (1 - min(e, 4) / 4) ** 2 for e in range(7)],
                               atol=1e-15)
    opt = _opt()
    traj = _trajectory(S.ConstantLR(opt, factor=0.5, total_iters=2), opt, 4)
    np.testing.assert_allclose(traj[:, 0], [0.05, 0.05, 0.1, 0.1, 0.1])
    torch = pytest.importorskip("torch")
    opt, topt = _opt(), _torch_opt(torch, "sgd")
    ours = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=2, T_mult=3)
    for epoch in [0.5, 1.7, 2.0, 5.3, 9.9, 0.2]:
        ours.step(epoch)
        theirs.step(epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-13)
