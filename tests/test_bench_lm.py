"""benchmarks/bench_lm.py computes the same LM training step in every backend: equal losses
over a few Adam steps from the same weights and tokens."""
from __future__ import annotations

import numpy as np
import pytest

from nncore.bench import bench_lm

SMALL = (301, 16, 24, 5, 7)   # V, E, H, B, T: the same code paths, quick


def test_weights_and_tokens_have_pytorch_shapes():
    state = bench_lm.init_lm_weights()
    assert state["encoder.weight"].shape == (bench_lm.V, bench_lm.E)
    assert state["rnn.weight_ih_l0"].shape == (4 * bench_lm.H, bench_lm.E)
    assert state["decoder.weight"].shape == (bench_lm.V, bench_lm.H)
    x, y = bench_lm.make_tokens()
    assert x.shape == y.shape == (bench_lm.T, bench_lm.B)
    np.testing.assert_array_equal(x[1:], y[:-1])


def _losses(step, n=3):
    out = []
    for _ in range(n):
        loss = step()
        out.append(float(loss.item() if hasattr(loss, "item") else loss))
    return out


@pytest.fixture(scope="module")
def nncore_losses():
    return _losses(bench_lm.make_step("nncore", 1, dims=SMALL))


def test_nncore_and_numpy_steps_agree(nncore_losses):
    numpy_step = bench_lm.make_step("numpy", 1, dims=SMALL)
    if numpy_step is None:
        pytest.skip("nncore/bench/baseline_rnn.py not present")
    np.testing.assert_allclose(nncore_losses, _losses(numpy_step), rtol=1e-5, atol=1e-6)


def test_nncore_and_torch_steps_agree(nncore_losses):
    pytest.importorskip("torch")
    np.testing.assert_allclose(nncore_losses, _losses(bench_lm.make_step("torch", 1, dims=SMALL)),
                               rtol=1e-5, atol=1e-6)


def test_worker_record_counts_tokens():
    recs = bench_lm.lm_worker(["nncore"], 1, repeats=1, min_time=0.0, warmup=0)
    assert recs[0]["batch"] == bench_lm.B * bench_lm.T and "median" in recs[0]
    with pytest.raises(ValueError, match="unknown backend"):
        bench_lm.make_step("jax", 1)
