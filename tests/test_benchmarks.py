"""The benchmark suite's own correctness: the NumPy baseline computes what nncore computes
(so the timings compare equal work), the harness statistics, and the table formatting."""
from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from nncore.bench import harness
from nncore.bench import numpy_baseline as nb

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _nncore():
    pytest.importorskip("nncore.optim")
    import nncore

    return nncore


def _nncore_mlp(nc, seed: int = 0):
    nc.manual_seed(seed)
    nn = nc.nn
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


@pytest.fixture(scope="module")
def batch():
    return nb.make_batch(64, 784, 10, seed=3)


# ------------------------------------------------------------------ baseline vs nncore

def test_same_weights_give_same_logits_loss_and_gradients(batch):
    nc = _nncore()
    x, y = batch
    model = _nncore_mlp(nc)
    state = {k: v.data.copy() for k, v in model.state_dict().items()}
    ref = nb.NumpyMLP().load_from(state)

    logits = model(nc.from_numpy(x))
    loss = nc.nn.CrossEntropyLoss()(logits, y)
    loss.backward()
    ref_logits = ref.forward(x)
    ref_loss, dlogits = nb.softmax_cross_entropy(ref_logits, y)
    ref.backward(dlogits)

    np.testing.assert_allclose(ref_logits, logits.data, **TOL)
    assert ref_loss == pytest.approx(float(loss.data), rel=1e-6)
    for p, g in zip(model.parameters(), ref.gradients()):
        assert g.shape == p.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, p.grad.data, rtol=1e-5, atol=1e-7)


def test_one_training_step_gives_same_weights(batch):
    nc = _nncore()
    x, y = batch
    model = _nncore_mlp(nc, seed=1)
    ref = nb.NumpyMLP().load_from({k: v.data for k, v in model.state_dict().items()})
    opt = nc.optim.Adam(model.parameters(), lr=1e-3)
    ref_opt = nb.NumpyAdam(ref.parameters(), lr=1e-3)
    opt.zero_grad()
    loss = nc.nn.CrossEntropyLoss()(model(nc.from_numpy(x)), y)
    loss.backward()
    opt.step()
    ref_loss = nb.train_step(ref, ref_opt, x, y)
    assert ref_loss == pytest.approx(float(loss.data), rel=1e-6)
    # Step 1 moves a weight by lr * g / (|g| + eps): where |g| is near eps (gradients that
    # nearly cancel, ~1e-8) float32 rounding of g shows at ~1e-5, so those are only checked
    # against the bound |update| <= lr.
    for p, r, g in zip(model.parameters(), ref.parameters(), ref.gradients()):
        tiny = np.abs(g) < 1e-6
        np.testing.assert_allclose(r[~tiny], p.data[~tiny], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r[tiny], p.data[tiny], atol=2e-3)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_formula_matches_nncore_over_steps(weight_decay):
    # Same gradients fed to both: several steps of the update rule itself. (Chained training
    # steps are not compared: Adam divides by |g|, so float32 rounding in a gradient that
    # nearly cancels moves a weight by a visible fraction of lr.)
    nc = _nncore()
    rng = np.random.default_rng(4)
    shapes = [(7, 5), (7,), (1, 97)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    params = [nc.nn.Parameter(nc.from_numpy(a.copy())) for a in init]
    ref_params = [a.copy() for a in init]
    opt = nc.optim.Adam(params, lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                        weight_decay=weight_decay)
    ref_opt = nb.NumpyAdam(ref_params, lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                           weight_decay=weight_decay)
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = nc.from_numpy(g.copy())
        opt.step()
        ref_opt.step(grads)
    for p, r in zip(params, ref_params):
        np.testing.assert_allclose(r, p.data, rtol=1e-5, atol=1e-6)


def test_linear_relu_op_matches_nncore():
    nc = _nncore()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 13)).astype(np.float32)
    w = rng.standard_normal((5, 13)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    dout = rng.standard_normal((7, 5)).astype(np.float32)
    y, dx, dw, db = nb.linear_relu_forward_backward(x, w, b, dout)
    xt = nc.from_numpy(x.copy()).requires_grad_(True)
    layer = nc.nn.Linear(13, 5)
    layer.load_state_dict({"weight": w, "bias": b})
    yt = nc.nn.functional.relu(layer(xt))
    yt.backward(nc.from_numpy(dout))
    np.testing.assert_allclose(y, yt.data, **TOL)
    np.testing.assert_allclose(dx, xt.grad.data, **TOL)
    np.testing.assert_allclose(dw, layer.weight.grad.data, **TOL)
    np.testing.assert_allclose(db, layer.bias.grad.data, **TOL)


# ------------------------------------------------------------------ baseline alone

def test_softmax_cross_entropy_is_stable_and_matches_float64():
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((9, 7)) * 3 + 1000).astype(np.float32)  # exp overflows
    labels = rng.integers(0, 7, 9)
    loss, dlogits = nb.softmax_cross_entropy(logits, labels)
    z = logits.astype(np.float64)
    z -= z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    assert np.isfinite(loss) and loss == pytest.approx(-logp[np.arange(9), labels].mean(),
                                                      rel=1e-5)
    expect = np.exp(logp)
    expect[np.arange(9), labels] -= 1
    np.testing.assert_allclose(dlogits, expect / 9, atol=1e-6)
    assert dlogits.dtype == np.float32


def test_mlp_backward_matches_finite_differences():
    model = nb.NumpyMLP((5, 4, 3), seed=2, dtype=np.float64)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    _, dlogits = nb.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    eps = 1e-6
    for p, g in zip(model.parameters(), model.gradients()):
        for idx in itertools.islice(np.ndindex(p.shape), 5):
            old = p[idx]
            p[idx] = old + eps
            up = nb.softmax_cross_entropy(model.forward(x), y)[0]
            p[idx] = old - eps
            down = nb.softmax_cross_entropy(model.forward(x), y)[0]
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def test_load_from_rejects_wrong_shapes():
    state = nb.init_mlp_weights((784, 128, 64, 10))
    state["2.weight"] = state["2.weight"][:, :5]
    with pytest.raises(ValueError, match="layer 2"):
        nb.NumpyMLP().load_from(state)


# ------------------------------------------------------------------ harness

def test_measure_statistics_with_a_fake_clock():
    now = [0.0]
    costs = itertools.cycle([1e-3, 1e-3, 3e-3])  # uneven calls: repeats differ a little
    calls = [0]

    def fn():
        calls[0] += 1
        now[0] += next(costs)

    stats = harness.measure(fn, repeats=5, min_time=0.01, warmup=2, clock=lambda: now[0])
    assert stats["number"] >= 1 and stats["number"] * 1e-3 * 5 / 3 >= 0.01 * 0.99
    assert len(stats["times"]) == stats["repeats"] == 5
    assert stats["min"] <= stats["median"] <= stats["max"]
    assert stats["spread"] == pytest.approx((stats["max"] - stats["min"]) / stats["median"])
    assert 1e-3 <= stats["median"] <= 3e-3
    assert calls[0] > 2 + 5 * stats["number"]  # warm-up + calibration + repeats


def test_measure_slow_call_uses_one_inner_loop_and_rejects_zero_repeats():
    now = [0.0]

    def slow():
        now[0] += 0.5

    stats = harness.measure(slow, repeats=3, min_time=0.2, warmup=0, clock=lambda: now[0])
    assert stats["number"] == 1 and stats["median"] == 0.5 and stats["spread"] == 0.0
    with pytest.raises(ValueError, match="repeats"):
        harness.measure(slow, repeats=0)


def test_thread_env_sets_every_thread_variable():
    env = harness.thread_env(2, base={"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] \
        == "2"
    assert env["PYTHONPATH"].split(":")[0] == str(harness.REPO_ROOT)


def test_format_cell_and_table():
    assert harness.format_cell(1.23456, 0.05) == "1.235"
    assert harness.format_cell(1.23456, 0.25) == "1.235~"
    assert harness.format_cell(None) == "-"
    text = harness.format_table(["case", "t", "value"],
                                [["a", 1, "1.0"], ["long name", 2, "10.25~"]])
    lines = text.splitlines()
    assert len(lines) == 4 and set(lines[1]) <= {"-", " "}
    assert len({len(ln) for ln in lines}) == 1  # right-aligned last column: equal widths
    assert lines[2].startswith("a ") and lines[3].endswith("10.25~")
    with pytest.raises(ValueError, match="cells"):
        harness.format_table(["a", "b"], [["x"]])


def test_results_table_ratios_and_samples_row():
    def rec(backend, median, spread=0.01):
        return {"family": "mlp", "case": "step", "backend": backend, "threads": 1,
                "unit": "ms", "work": None, "batch": 64, "median": median, "spread": spread}

    records = [rec("nncore", 0.001), rec("numpy", 0.003, spread=0.2),
               {"family": "ops", "case": "x", "backend": "torch", "threads": 2,
                "error": "ImportError: no torch"}]
    text = harness.results_table(records, ["nncore", "numpy", "torch"])
    assert "3.00x~" in text  # numpy/nncore, flagged: the numpy cell was noisy
    assert "64,000" in text and "samples/s" in text  # 64 / 1 ms
    assert "not measured" in text and "no torch" in text


def test_collect_rounds_alternate_the_order_and_merge_every_repeat(monkeypatch):
    from nncore.bench import workers

    calls = []
    times = {"nncore": [[1.0, 3.0], [2.0, 8.0]], "numpy": [[5.0, 5.0], [7.0, 6.0]]}

    def fake_worker(module, group, threads, args):
        calls.append(group[0])
        t = times[group[0]].pop(0)
        return {"records": [{"family": "f", "case": "c", "backend": group[0],
                             "threads": threads, "unit": "ms", "times": t,
                             "median": sorted(t)[len(t) // 2]}]}

    monkeypatch.setattr(workers, "run_worker", fake_worker)
    records = workers.collect("m", [1], ["nncore", "numpy"], rounds=2)
    assert calls == ["nncore", "numpy", "numpy", "nncore"]  # second round reversed
    by = {r["backend"]: r for r in records}
    assert by["nncore"]["times"] == [1.0, 3.0, 2.0, 8.0] and by["nncore"]["rounds"] == 2
    assert by["nncore"]["median"] == 2.5 and by["nncore"]["repeats"] == 4
    assert by["nncore"]["spread"] == pytest.approx((8.0 - 1.0) / 2.5)
    assert by["numpy"]["median"] == 5.5 and by["numpy"]["min"] == 5.0


def test_merge_rounds_keeps_an_error_only_where_no_round_measured_the_cell():
    from nncore.bench.workers import merge_rounds

    ok = {"family": "f", "case": "c", "backend": "nncore", "threads": 1, "unit": "ms",
          "times": [1.0], "median": 1.0}
    err = {"family": "f", "case": "d", "backend": "nncore", "threads": 1, "error": "boom"}
    torch_err = {"family": "f", "case": "c", "backend": "torch", "threads": 1, "error": "x"}
    torch_ok = {"family": "f", "case": "c", "backend": "torch", "threads": 1, "unit": "ms",
                "times": [2.0], "median": 2.0}
    merged = merge_rounds([[ok, err, torch_err], [ok, err, torch_ok]])
    assert [(r["case"], r["backend"], r.get("error")) for r in merged] == [
        ("c", "nncore", None), ("d", "nncore", "boom"), ("c", "torch", None)]
    assert merged[0]["rounds"] == 2 and merged[2]["rounds"] == 1 and merged[2]["median"] == 2.0


# ------------------------------------------------------------------ workers in-process

def test_mlp_worker_in_process():
    from nncore.bench import bench_mlp

    backends = ["numpy"]
    try:
        import nncore.optim  # noqa: F401

        backends.append("nncore")
    except ImportError:
        pass
    records = bench_mlp.mlp_worker(backends, threads=1, repeats=2, min_time=0.001, warmup=1)
    memory = [r for r in records if r["unit"] == "MB"]
    records = [r for r in records if r["unit"] != "MB"]
    assert [r["backend"] for r in records] == backends
    assert [r["backend"] for r in memory] == backends and all(r["median"] > 0 for r in memory)
    for r in records:
        assert "error" not in r, r.get("error")
        assert r["median"] > 0 and r["batch"] == bench_mlp.BATCH and len(r["times"]) == 2


def test_ops_worker_in_process():
    from nncore.bench import bench_ops

    cases = ["softmax-ce fb 64x10", "tiny linear(4,4) fwd+bwd", "adam step mlp params"]
    backends = ["numpy"]
    try:
        import nncore.optim  # noqa: F401

        backends.append("nncore")
    except ImportError:
        pass
    records = bench_ops.ops_worker(backends, threads=1, repeats=2, min_time=0.001, warmup=1,
                                   cases=cases)
    assert len(records) == len(cases) * len(backends)
    assert all("error" not in r and r["median"] > 0 for r in records), records
    with pytest.raises(ValueError, match="unknown case"):
        bench_ops.make_op("nope", "numpy")


def test_run_rejects_unknown_family(capsys):
    from nncore.bench import run

    assert run.main(["--only", "bogus"]) == 2
    assert "unknown families" in capsys.readouterr().err


def test_quick_cli_smoke_run(tmp_path):
    """`python -m nncore.bench --quick` end to end: table on stdout, JSON written."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "nncore.bench", "--quick", "--only", "mlp", "--threads", "1",
         "--backends", "nncore,numpy", "--repeat", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "numpy/nncore" in proc.stdout
    import json

    data = json.loads(out.read_text())
    assert {"machine", "records"} <= set(data)
    assert {r["backend"] for r in data["records"]} == {"nncore", "numpy"}
    assert all(len(r["times"]) == 3 for r in data["records"] if r["unit"] != "MB")
    assert any(r["unit"] == "MB" for r in data["records"])  # peak memory per training step


def test_plot_ratios_from_records():
    from nncore.bench.plot import ratios

    recs = [
        {"family": "f", "case": "a", "backend": "nncore", "threads": 1, "median": 2.0},
        {"family": "f", "case": "a", "backend": "numpy", "threads": 1, "median": 5.0},
        {"family": "f", "case": "a", "backend": "torch", "threads": 1, "error": "x"},
        {"family": "f", "case": "b", "backend": "numpy", "threads": 2, "median": 1.0},
    ]
    r = ratios(recs)
    assert r[1]["numpy"]["f/a"] == 2.5
    assert "torch" not in r[1]
    assert 2 not in r  # no nncore cell to compare against


def test_lenet_numpy_baseline_matches_nncore_step():
    """bench_cnn's NumPy LeNet-5 step does the same work as nncore's: equal loss and equal
    weights after two Adam steps."""
    from nncore.bench import bench_cnn

    ours = bench_cnn.make_step("nncore", 1)
    base = bench_cnn.make_step("numpy", 1)
    for _ in range(2):
        loss_ours, loss_base = ours().item(), base()
        np.testing.assert_allclose(loss_ours, loss_base, rtol=1e-5)
    for (name, _), p in zip(bench_cnn.SHAPES, base.params):
        got = ours.model.state_dict()[name].numpy()
        np.testing.assert_allclose(got, p, rtol=1e-4, atol=2e-5, err_msg=name)


def test_peak_memory_is_measured():
    from nncore.bench import bench_cnn

    assert harness.peak_memory_mb(bench_cnn.make_step("numpy", 1)) > 1.0
