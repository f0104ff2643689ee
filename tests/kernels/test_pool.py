"""Kernel tests for nncore._kernels.pool: max/avg/adaptive-avg pooling forward and backward
against plain NumPy loop references (PyTorch's window rules), NaN handling, thread
independence and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import pool as K


def _out_size(n, k, s, p, d, ceil):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_maxpool(x, k, s, p, d, ceil):
    N, C, H, W = x.shape
    OH, OW = _out_size(H, k[0], s[0], p[0], d[0], ceil), _out_size(W, k[1], s[1], p[1], d[1], ceil)
    out = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), np.int64)
    for i in range(OH):
        for j in range(OW):
            cells = [(i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1])
                     for a in range(k[0]) for b in range(k[1])]
            cells = [(h, w) for h, w in cells if 0 <= h < H and 0 <= w < W]
            vals = np.stack([x[:, :, h, w] for h, w in cells], -1)
            best = np.argmax(vals, -1)            # first max, as PyTorch for ties
            out[:, :, i, j] = np.take_along_axis(vals, best[..., None], -1)[..., 0]
            flat = np.array([h * W + w for h, w in cells])
            idx[:, :, i, j] = flat[best]
    return out, idx


def ref_avgpool(x, k, s, p, ceil, cip, div):
    N, C, H, W = x.shape
    OH, OW = _out_size(H, k[0], s[0], p[0], 1, ceil), _out_size(W, k[1], s[1], p[1], 1, ceil)
    out = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            hs, ws = i * s[0] - p[0], j * s[1] - p[1]
            he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
            pool = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
            if hs >= he or ws >= we:
                continue
            d = div or (pool if cip else (he - hs) * (we - ws))
            out[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / d
    return out


def ref_adaptive(x, oh, ow):
    H, W = x.shape[2:]
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = i * H // oh, math.ceil((i + 1) * H / oh)
            w0, w1 = j * W // ow, math.ceil((j + 1) * W / ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def numeric_vjp(f, x, dout, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = np.sum((f(xp) - f(xm)) * dout) / (2 * eps)
    return g


# (shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((2, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), False),     # odd size, fast path
    ((2, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),      # ceil: partial last window
    ((1, 3, 9, 11), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 1, 10, 7), (3, 2), (1, 2), (1, 1), (2, 3), False),
    ((1, 2, 5, 5), (5, 7), (1, 1), (2, 3), (1, 1), False),
]


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_vs_reference(case, dtype):
    shape, k, s, p, d, ceil = case
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out, idx = K.maxpool2d_forward(x, k, s, p, d, ceil)
    rout, ridx = ref_maxpool(x.astype(np.float64), k, s, p, d, ceil)
    np.testing.assert_array_equal(out, rout.astype(dtype))
    np.testing.assert_array_equal(idx, ridx)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    dx = K.maxpool2d_backward(dout, idx, x.shape)
    expect = np.zeros(x.shape)
    flat = expect.reshape(shape[0] * shape[1], -1)
    for pl, (di, ii) in enumerate(zip(dout.reshape(len(flat), -1), idx.reshape(len(flat), -1))):
        np.add.at(flat[pl], ii, di)
    np.testing.assert_allclose(dx, expect, rtol=1e-6)


def test_maxpool_nan_and_inf():
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]], np.float32)
    out, idx = K.maxpool2d_forward(x, 2)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    # general path: the last NaN of a window wins (PyTorch's `val > max || isnan(val)`)
    x = np.array([[[[1.0, np.nan, 3.0], [np.nan, 2.0, 0.0], [5.0, 6.0, 7.0]]]])
    out, idx = K.maxpool2d_forward(x, 3, 1, 1)
    assert np.isnan(out[0, 0, 1, 1]) and idx[0, 0, 1, 1] == 3
    assert out[0, 0, 2, 2] == 7.0 and idx[0, 0, 2, 2] == 8
    np.testing.assert_array_equal(idx[0, 0], [[3, 3, 1], [3, 3, 1], [3, 3, 8]])  # torch's
    x = np.full((1, 1, 3, 3), -np.inf)
    out, idx = K.maxpool2d_forward(x, 2, 1, 1)
    assert np.all(out == -np.inf) and idx.min() >= 0


AVG_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False, True, None),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1), True, True, None),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1), True, False, None),
    ((2, 1, 5, 6), (3, 2), (1, 2), (1, 1), False, False, 4),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), False, True, None),
]


@pytest.mark.parametrize("case", AVG_CASES)
def test_avgpool_vs_reference_and_grad(case):
    shape, k, s, p, ceil, cip, div = case
    x = np.random.default_rng(2).standard_normal(shape)
    opts = (k, s, p, ceil, cip, div)
    out = K.avgpool2d_forward(x, *opts)
    np.testing.assert_allclose(out, ref_avgpool(x, k, s, p, ceil, cip, div), rtol=1e-12)
    out32 = K.avgpool2d_forward(x.astype(np.float32), *opts)
    np.testing.assert_allclose(out32, out, rtol=1e-5, atol=1e-6)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    dx = K.avgpool2d_backward(dout, x.shape, *opts)
    np.testing.assert_allclose(dx, numeric_vjp(lambda v: K.avgpool2d_forward(v, *opts), x, dout),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape, size", [((2, 3, 10, 7), (3, 4)), ((1, 2, 5, 5), 1),
                                         ((1, 1, 7, 9), (None, 4)), ((1, 1, 3, 3), (5, 7))])
def test_adaptive_avg_vs_reference_and_grad(shape, size):
    x = np.random.default_rng(4).standard_normal(shape)
    out = K.adaptive_avgpool2d_forward(x, size)
    sz = (size, size) if isinstance(size, int) else size
    oh, ow = (shape[2] if sz[0] is None else sz[0]), (shape[3] if sz[1] is None else sz[1])
    np.testing.assert_allclose(out, ref_adaptive(x, oh, ow), rtol=1e-12)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    dx = K.adaptive_avgpool2d_backward(dout, x.shape)
    np.testing.assert_allclose(
        dx, numeric_vjp(lambda v: K.adaptive_avgpool2d_forward(v, size), x, dout),
        rtol=1e-6, atol=1e-8)


def test_threads_equal():
    x = np.random.default_rng(6).standard_normal((8, 16, 32, 32)).astype(np.float32)
    old = _parallel.get_num_threads()
    res = []
    try:
        for nt in (1, 2):
            _parallel.set_num_threads(nt)
            out, idx = K.maxpool2d_forward(x, 3, 2, 1)
            res.append((out, idx, K.maxpool2d_backward(out, idx, x.shape),
                        K.avgpool2d_forward(x, 3, 2, 1),
                        K.adaptive_avgpool2d_backward(x[:, :, :5, :5].copy(), x.shape)))
    finally:
        _parallel.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, match", [
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 2, 2), "at most half"),
    (lambda: K.avgpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 2, 2), "at most half"),
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 0), "stride"),
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 4, 4)), 0), "kernel_size"),
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 1, 0, 0), "dilation"),
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 2, 2)), 3), "too small"),
    (lambda: K.maxpool2d_forward(np.zeros((4, 4)), 2), "4-D"),
    (lambda: K.maxpool2d_forward(np.zeros((1, 1, 4, 4), np.int64), 2), "float32"),
    (lambda: K.avgpool2d_forward(np.zeros((1, 1, 4, 4)), 2, divisor_override=0), "divisor"),
    (lambda: K.adaptive_avgpool2d_forward(np.zeros((1, 1, 4, 4)), 0), "positive"),
    (lambda: K.maxpool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3), np.int64),
                                  (1, 1, 4, 4)), "match"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_numpy_benchmark_baseline_matches_kernel():
    """benchmarks/baseline_conv.py's max pooling equals the kernel (forward and backward)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from nncore.bench import baseline_conv as bc

    r = np.random.default_rng(7)
    x = r.standard_normal((2, 3, 8, 6))
    dout = r.standard_normal((2, 3, 4, 3))
    out, dx = bc.maxpool2d_forward_backward(x, dout, 2)
    kout, idx = K.maxpool2d_forward(x, 2)
    np.testing.assert_array_equal(out, kout)
    np.testing.assert_array_equal(dx, K.maxpool2d_backward(dout, idx, x.shape))
    np.testing.assert_allclose(bc.avgpool2d_forward(x, 2), K.avgpool2d_forward(x, 2))
