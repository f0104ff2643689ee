"""Dropout: the counter-based kernel (mask statistics, scaling, determinism, threads, SIMD
levels), F.dropout / F.dropout2d autograd and nn.Dropout / nn.Dropout2d."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import functional as F
from nncore import nn
from nncore._kernels import _parallel
from nncore._kernels import dropout as K

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_statistics(p):
    n = 200_000
    mask = K.dropout_mask(n, p, seed=1234)
    keep = mask.mean()
    # binomial std of the mean: sqrt(p(1-p)/n) <= 0.0012; allow 5 sigma
    assert abs(keep - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # neighbouring decisions are uncorrelated
    m = mask.astype(np.float64) - keep
    corr = float(np.dot(m[:-1], m[1:]) / np.dot(m, m))
    assert abs(corr) < 0.02


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 97, 101, 40_000])
def test_forward_matches_mask_and_scale(dtype, n):
    r = np.random.default_rng(0)
    x = r.standard_normal(n).astype(dtype)
    p = 0.3
    y = K.dropout_forward(x, p, seed=99)
    mask = K.dropout_mask(n, p, seed=99).astype(bool)
    scale = dtype(1) / dtype(1 - p)
    np.testing.assert_array_equal(y, np.where(mask, x * scale, 0).astype(dtype))
    assert y.dtype == dtype


def test_group_mask_is_shared_within_group():
    x = np.ones((3, 4, 5, 6), np.float32)
    y = K.dropout_forward(x, 0.5, seed=5, group=30).reshape(12, 30)
    mask = K.dropout_mask(12, 0.5, seed=5).astype(bool)
    assert np.all(y.std(axis=1) == 0)
    np.testing.assert_array_equal(y[:, 0] != 0, mask)


def test_determinism_and_seed_dependence():
    x = np.ones(10_000, np.float32)
    a = K.dropout_forward(x, 0.5, seed=7)
    b = K.dropout_forward(x, 0.5, seed=7)
    c = K.dropout_forward(x, 0.5, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_threads_bit_identical():
    x = np.random.default_rng(1).standard_normal(300_001).astype(np.float32)
    old = _parallel.get_num_threads()
    try:
        _parallel.set_num_threads(1)
        one = K.dropout_forward(x, 0.25, seed=3)
        _parallel.set_num_threads(2)
        two = K.dropout_forward(x, 0.25, seed=3)
    finally:
        _parallel.set_num_threads(old)
    np.testing.assert_array_equal(one, two)


def test_simd_levels_agree():
    code = ("import numpy as np, sys, hashlib\n"
            "from nncore._kernels import dropout as K\n"
            "x = np.arange(100_003, dtype=np.float32)\n"
            "y = K.dropout_forward(x, 0.4, seed=11)\n"
            "sys.stdout.write(hashlib.sha256(y.tobytes()).hexdigest())\n")
    digests = set()
    for level in ("portable", "avx2", "avx512"):
        env = dict(os.environ, NNCORE_SIMD=level)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        digests.add(res.stdout)
    assert len(digests) == 1


def test_edge_probabilities_and_errors():
    x = np.ones((4, 5), np.float32)
    np.testing.assert_array_equal(K.dropout_forward(x, 0.0, 1), x)
    np.testing.assert_array_equal(K.dropout_forward(x, 1.0, 1), np.zeros_like(x))
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            K.dropout_forward(x, p, 1)
    with pytest.raises(TypeError):
        K.dropout_forward(np.ones(3, np.int32), 0.5, 1)
    with pytest.raises(ValueError, match="group"):
        K.dropout_forward(x, 0.5, 1, group=3)


# ------------------------------------------------------------------ functional / nn

def test_functional_backward_uses_same_mask():
    nncore.manual_seed(0)
    x = nncore.Tensor(np.random.default_rng(0).standard_normal((8, 50)), requires_grad=True)
    y = F.dropout(x, 0.4, training=True)
    y.backward(np.ones((8, 50)))
    kept = y.data != 0
    np.testing.assert_array_equal(x.grad.data, np.where(kept, 1 / 0.6, 0.0))


def test_functional_seeded_by_nncore_random():
    x = nncore.Tensor(np.ones((64, 64), np.float32))
    nncore.manual_seed(42)
    a = F.dropout(x, 0.5).data
    b = F.dropout(x, 0.5).data
    nncore.manual_seed(42)
    a2 = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, b)  # a fresh seed per call


def test_module_train_eval_and_errors():
    layer = nn.Dropout(0.5)
    x = nncore.Tensor(np.ones((100, 100), np.float32))
    y = layer(x)
    frac = float((y.data != 0).mean())
    assert 0.45 < frac < 0.55
    assert set(np.unique(y.data)) <= {0.0, 2.0}
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, -0.5)
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"


def test_dropout2d_zeroes_whole_channels():
    nncore.manual_seed(1)
    x = nncore.Tensor(np.ones((8, 16, 5, 5), np.float32), requires_grad=True)
    y = nn.Dropout2d(0.5)(x)
    per_channel = y.data.reshape(8, 16, 25)
    assert np.all(per_channel.std(axis=2) == 0)
    assert 0 < (per_channel[:, :, 0] == 0).mean() < 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.dropout2d(nncore.Tensor(np.ones((4, 4), np.float32)))


def test_torch_dropout_statistics_match():
    torch = pytest.importorskip("torch")
    n, p = 100_000, 0.3
    ours = F.dropout(nncore.Tensor(np.ones(n, np.float32)), p).data
    theirs = torch.nn.functional.dropout(torch.ones(n), p).numpy()
    assert np.unique(ours[ours != 0]).tolist() == np.unique(theirs[theirs != 0]).tolist()
    assert abs((ours != 0).mean() - (theirs != 0).mean()) < 0.01
