"""Kernel tests for nncore._kernels.gru: whole-sequence GRU and single cell step.

Forward against a per-step NumPy reference (PyTorch's formula, b_hn inside the reset product),
backward against float64 finite differences, every SIMD level, 1 vs 2 threads, bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

import nncore
from nncore._kernels import gru as K

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1, 1, 1), (3, 2, 5, 7), (7, 3, 17, 9), (2, 5, 16, 33), (4, 1, 3, 101)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def ref_gru(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """Per-step float64 reference: returns (outputs (T, B, H), h_T)."""
    H = w_hh.shape[1]
    b_ih = np.zeros(3 * H) if b_ih is None else b_ih
    b_hh = np.zeros(3 * H) if b_hh is None else b_hh
    outs = []
    for t in range(x.shape[0]):
        gi = x[t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = _sig(gi[:, :H] + gh[:, :H])
        z = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h


def make(T, B, I, H, dtype=np.float64, seed=0, bias=True):
    r = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    arrays = [r.standard_normal((T, B, I)), r.standard_normal((B, H)) * 0.5,
              r.uniform(-s, s, (3 * H, I)) * 2, r.uniform(-s, s, (3 * H, H)) * 2]
    if bias:
        arrays += [r.uniform(-s, s, 3 * H), r.uniform(-s, s, 3 * H)]
    else:
        arrays += [None, None]
    return [a.astype(dtype) if a is not None else None for a in arrays]


def _f64(arrays):
    return [a.astype(np.float64) if a is not None else None for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_reference(shape, dtype, bias):
    args = make(*shape, dtype=dtype, bias=bias)
    hs, gates, ghs = K.gru_forward(*args)
    T, B, _, H = shape
    assert hs.shape == (T + 1, B, H) and gates.shape == ghs.shape == (T, B, 3 * H)
    out, h = ref_gru(*_f64(args))
    np.testing.assert_allclose(hs[1:], out, **TOL[dtype])
    np.testing.assert_array_equal(hs[0], args[1])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7), (4, 3, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_backward_matches_finite_differences(shape, bias):
    T, B, _, H = shape
    args = make(*shape, bias=bias)
    r = np.random.default_rng(1)
    wo, wh = r.standard_normal((T, B, H)), r.standard_normal((B, H))
    hs, gates, ghs = K.gru_forward(*args)
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = K.gru_backward(wo, wh, gates, ghs, hs, args[0],
                                                         args[2], args[3])

    def loss(a):
        out, h = ref_gru(*a)
        return np.sum(out * wo) + np.sum(h * wh)

    analytic = {0: dx, 1: dh0, 2: dw_ih, 3: dw_hh, 4: db_ih, 5: db_hh}
    eps = 1e-6
    for i, g in analytic.items():
        if args[i] is None:
            continue
        for _ in range(6):
            d = r.standard_normal(args[i].shape)
            plus, minus = list(args), list(args)
            plus[i] = args[i] + eps * d
            minus[i] = args[i] - eps * d
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            np.testing.assert_allclose(np.sum(g * d), numeric, rtol=1e-6, atol=1e-8,
                                       err_msg=f"input {i}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_matches_one_step_of_the_sequence(dtype):
    x, h, w_ih, w_hh, b_ih, b_hh = make(1, 4, 6, 9, dtype=dtype)
    h1, gates, gh = K.gru_cell_forward(x[0], h, w_ih, w_hh, b_ih, b_hh)
    _, hr = ref_gru(*_f64([x, h, w_ih, w_hh, b_ih, b_hh]))
    np.testing.assert_allclose(h1, hr, **TOL[dtype])
    dh = np.random.default_rng(3).standard_normal((4, 9)).astype(dtype)
    cell = K.gru_cell_backward(dh, gates, gh, x[0], h, w_ih, w_hh)
    hs, g, ghs = K.gru_forward(x, h, w_ih, w_hh, b_ih, b_hh)
    seq = K.gru_backward(np.zeros((1, 4, 9), dtype), dh, g, ghs, hs, x, w_ih, w_hh)
    np.testing.assert_array_equal(cell[0], seq[0][0])
    for a, b in zip(cell[1:], seq[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", ["portable", "avx2", "avx512"])
def test_every_simd_level_matches_reference(level, dtype):
    try:
        used = K._cap_simd(level)
        if level != "portable" and not used.startswith(level):
            pytest.skip(f"CPU lacks {level}")
        for shape in [(2, 3, 5, 7), (2, 2, 4, 16), (2, 2, 3, 17)]:
            args = make(*shape, dtype=dtype)
            hs, _, _ = K.gru_forward(*args)
            np.testing.assert_allclose(hs[1:], ref_gru(*_f64(args))[0], **TOL[dtype])
    finally:
        K._cap_simd(None)


# the serial row path and the parallel one (B * H >= 8192)
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (5, 32, 70, 260)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_without_cache_gives_the_same_bits(shape, dtype, threads):
    """keep_cache=False reuses one step of ghs (inference): the same hs, no ghs."""
    args = make(*shape, dtype=dtype, seed=5)
    before = nncore.get_num_threads()
    try:
        nncore.set_num_threads(threads)
        hs, gates, ghs = K.gru_forward(*args)
        hs2, gates2, ghs2 = K.gru_forward(*args, keep_cache=False)
    finally:
        nncore.set_num_threads(before)
    assert ghs is not None and ghs2 is None
    np.testing.assert_array_equal(hs, hs2)
    np.testing.assert_array_equal(gates, gates2)
    ref_out, ref_h = ref_gru(*_f64(args))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(hs2[1:], ref_out, rtol=tol, atol=tol)


def test_no_grad_layer_keeps_no_cache():
    gru = nncore.nn.GRU(5, 7)
    x = nncore.randn(4, 3, 5)
    out, h = gru(x)
    with nncore.no_grad():
        out2, h2 = gru(x)
    assert out2.grad_fn is None and out.grad_fn is not None
    np.testing.assert_array_equal(out.detach().numpy(), out2.numpy())
    np.testing.assert_array_equal(h.detach().numpy(), h2.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_are_bit_identical(dtype):
    before = nncore.get_num_threads()
    shape = (3, 32, 24, 300)
    T, B, _, H = shape
    args = make(*shape, dtype=dtype)
    wo = np.random.default_rng(2).standard_normal((T, B, H)).astype(dtype)
    runs = []
    try:
        for n in (1, 2, 2):
            nncore.set_num_threads(n)
            hs, gates, ghs = K.gru_forward(*args)
            grads = K.gru_backward(wo, np.zeros((B, H), dtype), gates, ghs, hs, args[0],
                                   args[2], args[3])
            runs.append((hs,) + grads)
    finally:
        nncore.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_bad_input_raises_clear_errors():
    x, h, w_ih, w_hh, b_ih, b_hh = make(3, 2, 5, 7)
    with pytest.raises(ValueError, match="weight_ih must have shape"):
        K.gru_forward(x[:, :, :4], h, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="h0: expected shape"):
        K.gru_forward(x, h[:1], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="empty sequence"):
        K.gru_forward(x[:0], h, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="weight_hh"):
        K.gru_forward(x, h, w_ih[:, :], w_hh[:20], b_ih, b_hh)
    with pytest.raises(TypeError, match="dtype mismatch"):
        K.gru_forward(x, h, w_ih.astype(np.float32), w_hh, b_ih, b_hh)
    hs, gates, ghs = K.gru_forward(x, h, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="ghs"):
        K.gru_backward(np.zeros((3, 2, 7)), h, gates, ghs[:, :1], hs, x, w_ih, w_hh)
