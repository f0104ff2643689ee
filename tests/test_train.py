"""nncore.train.fit / Trainer: history, metrics, schedulers, early stopping, checkpoints."""
import os

import numpy as np
import pytest

import nncore
from nncore import nn, optim
from nncore.data import DataLoader, TensorDataset
from nncore.io import load_checkpoint
from nncore.optim import lr_scheduler
from nncore.train import Trainer, fit, plot_history


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def _setup(lr=0.05):
    nncore.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    return model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=lr)


def _loaders(batch=32):
    x, y = _data()
    xv, yv = _data(128, seed=1)
    return (DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True),
            DataLoader(TensorDataset(xv, yv), batch_size=64))


def test_fit_learns_and_returns_history():
    model, loss_fn, opt = _setup()
    train, val = _loaders()
    h = fit(model, loss_fn, opt, train, val, epochs=6, metrics=["accuracy", "f1_score"],
            progress=False)
    assert h["epoch"] == [1, 2, 3, 4, 5, 6]
    for key in ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_f1_score",
                "lr", "train_samples_per_s"]:
        assert len(h[key]) == 6, key
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_accuracy"][-1] > 0.8
    assert model.training  # evaluation restores the mode it found
    ev = Trainer(model, loss_fn, opt, metrics={"acc": "accuracy"}, progress=False).evaluate(val)
    assert ev["acc"] == pytest.approx(h["val_accuracy"][-1])


def test_fit_is_the_same_as_a_plain_loop():
    train, _ = _loaders()
    model, loss_fn, opt = _setup()
    nncore.manual_seed(5)
    fit(model, loss_fn, opt, train, epochs=2, metrics=None, progress=False)
    model2, loss_fn2, opt2 = _setup()
    nncore.manual_seed(5)
    for _ in range(2):
        model2.train()
        for x, y in train:
            opt2.zero_grad()
            loss_fn2(model2(x), y).backward()
            opt2.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_schedulers_step_at_the_right_time():
    train, val = _loaders()
    model, loss_fn, opt = _setup()
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, loss_fn, opt, train, val, epochs=3, scheduler=sched, progress=False)
    assert h["lr"] == pytest.approx([0.05, 0.025, 0.0125])
    model, loss_fn, opt = _setup()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=len(train))
    fit(model, loss_fn, opt, train, epochs=2, scheduler=sched, progress=False)
    assert sched.last_epoch == 2 * len(train)  # stepped per batch
    model, loss_fn, opt = _setup()
    sched = lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=0, factor=0.5)
    fit(model, loss_fn, opt, train, val, epochs=2, scheduler=sched, progress=False)
    assert sched.last_epoch == 2


def test_early_stopping_and_best_checkpoint(tmp_path):
    train, val = _loaders()
    model, loss_fn, opt = _setup(lr=0.0)  # lr 0: nothing improves after epoch 1
    path = str(tmp_path / "best.safetensors")
    h = fit(model, loss_fn, opt, train, val, epochs=10, early_stopping_patience=2,
            checkpoint_path=path, progress=False)
    assert h["epoch"] == [1, 2, 3]  # epochs 2 and 3 did not improve: stop
    info = load_checkpoint(path, model=model, optimizer=opt)
    assert info["epoch"] == 1 and info["extra"]["monitor"] == "val_loss"
    assert info["extra"]["history"]["epoch"] == [1]
    model, loss_fn, opt = _setup()
    h = fit(model, loss_fn, opt, train, val, epochs=3, monitor="val_accuracy", mode="max",
            checkpoint_path=path, progress=False)
    assert load_checkpoint(path)["extra"]["best"] == max(h["val_accuracy"][:])


def test_progress_output(capsys):
    pytest.importorskip("tqdm")
    train, _ = _loaders()
    model, loss_fn, opt = _setup()
    fit(model, loss_fn, opt, train, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "train_loss=" in err and "samples/s" in err


def test_plot(tmp_path):
    h = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7],
         "train_accuracy": [0.5, 0.7], "lr": [0.1, 0.1], "train_time_s": [1, 1]}
    path = tmp_path / "curves.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.warns(RuntimeWarning, match="matplotlib is not installed"):
            assert plot_history(h, str(path)) is False
        return
    assert plot_history(h, str(path)) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000


def test_bad_arguments():
    model, loss_fn, opt = _setup()
    train, _ = _loaders()
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        fit(model, loss_fn, opt, train, metrics=["auc"], progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(model, loss_fn, opt, train, epochs=0, progress=False)
    with pytest.raises(KeyError, match="monitor 'val_loss'"):
        fit(model, loss_fn, opt, train, monitor="val_loss", progress=False)
    with pytest.raises(ValueError, match="yielded no batches"):
        fit(model, loss_fn, opt, [], progress=False)


def test_auto_metrics_and_regression():
    train, _ = _loaders()
    model, loss_fn, opt = _setup()
    h = fit(model, loss_fn, opt, train, epochs=1, progress=False)
    assert "train_accuracy" in h  # integer labels + class scores: accuracy by default
    nncore.manual_seed(0)
    reg = nn.Linear(4, 1)
    x, _ = _data()
    y = (x[:, :1] * 2.0).astype(np.float32)
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    h = fit(reg, nn.MSELoss(), optim.SGD(reg.parameters(), lr=0.1), loader, epochs=3,
            progress=False)
    assert "train_accuracy" not in h and h["train_loss"][-1] < h["train_loss"][0]
    h = fit(reg, nn.MSELoss(), optim.SGD(reg.parameters(), lr=0.1), loader, epochs=1,
            metrics={"mae": lambda p, t: float(np.abs(p - t).mean())}, progress=False)
    assert h["train_mae"][0] >= 0


# ------------------------------------------------------------------ benchmark baseline
def test_bench_optim_numpy_sgd_baseline_matches_nncore():
    """benchmarks/bench_optim.py's in-place NumPy SGD computes what nncore's SGD computes."""
    from nncore.bench.bench_optim import NumpySGD, make_step

    rng = np.random.default_rng(0)
    p = rng.standard_normal(1001).astype(np.float64)
    grads = [rng.standard_normal(1001) for _ in range(4)]
    base = NumpySGD([p.copy()], lr=0.01, momentum=0.9)
    param = nn.Parameter(p.copy())
    opt = optim.SGD([param], lr=0.01, momentum=0.9)
    for g in grads:
        base.step([g])
        param.grad = nncore.Tensor(g)
        opt.step()
    np.testing.assert_allclose(base.params[0], param.data, rtol=1e-12)
    make_step("sgd 1M", "nncore")()  # the builders run
