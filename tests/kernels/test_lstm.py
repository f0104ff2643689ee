"""Kernel tests for nncore._kernels.lstm: whole-sequence LSTM and single cell step.

Forward against a per-step NumPy reference, backward against float64 finite differences of
that reference, every SIMD level, 1 vs 2 threads (bit-identical), and bad input.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import nncore
from nncore._kernels import lstm as K

DTYPES = [np.float32, np.float64]
# (T, B, I, H): ones, odd sizes, sizes around the vector widths
SHAPES = [(1, 1, 1, 1), (3, 2, 5, 7), (7, 3, 17, 9), (2, 5, 16, 33), (4, 1, 3, 101)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def ref_lstm(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """Per-step float64 reference: returns (outputs (T, B, H), h_T, c_T)."""
    H = w_hh.shape[1]
    bias = np.zeros(4 * H)
    for b in (b_ih, b_hh):
        if b is not None:
            bias = bias + b
    outs = []
    for t in range(x.shape[0]):
        g = x[t] @ w_ih.T + h @ w_hh.T + bias
        i, f = _sig(g[:, :H]), _sig(g[:, H:2 * H])
        gg, o = np.tanh(g[:, 2 * H:3 * H]), _sig(g[:, 3 * H:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def make(T, B, I, H, dtype=np.float64, seed=0, bias=True):
    r = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    arrays = [r.standard_normal((T, B, I)), r.standard_normal((B, H)) * 0.5,
              r.standard_normal((B, H)) * 0.5, r.uniform(-s, s, (4 * H, I)) * 2,
              r.uniform(-s, s, (4 * H, H)) * 2]
    if bias:
        arrays += [r.uniform(-s, s, 4 * H), r.uniform(-s, s, 4 * H)]
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
    out, h_n, c_n, cache = K.lstm_forward(*args)
    T, B, _, H = shape
    assert out.shape == (T, B, H) and h_n.shape == c_n.shape == (B, H)
    assert out.dtype == h_n.dtype == c_n.dtype == dtype
    ref_out, h, c = ref_lstm(*_f64(args))
    np.testing.assert_allclose(out, ref_out, **TOL[dtype])
    np.testing.assert_array_equal(h_n, out[-1])
    np.testing.assert_allclose(c_n, c, **TOL[dtype])


def _loss_grads(shape, bias=True, seed=0):
    """Analytic gradients of L = sum(out*wo) + sum(h_T*wh) + sum(c_T*wc) and a closure
    computing L from the reference, in float64."""
    T, B, _, H = shape
    args = make(*shape, bias=bias, seed=seed)
    r = np.random.default_rng(seed + 1)
    wo, wh, wc = r.standard_normal((T, B, H)), r.standard_normal((B, H)), r.standard_normal(
        (B, H))
    *_, cache = K.lstm_forward(*args)
    grads = K.lstm_backward(wo, wh, wc, cache)

    def loss(a):
        out, h, c = ref_lstm(*a)
        return np.sum(out * wo) + np.sum(h * wh) + np.sum(c * wc)

    return args, grads, loss


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7), (4, 3, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_backward_matches_finite_differences(shape, bias):
    args, (dx, dh0, dc0, dw_ih, dw_hh, db), loss = _loss_grads(shape, bias)
    analytic = {0: dx, 1: dh0, 2: dc0, 3: dw_ih, 4: dw_hh, 5: db, 6: db}
    eps = 1e-6
    r = np.random.default_rng(5)
    for i, g in analytic.items():
        if args[i] is None:
            continue
        for _ in range(6):                 # random directions through each input
            d = r.standard_normal(args[i].shape)
            plus, minus = list(args), list(args)
            plus[i] = args[i] + eps * d
            minus[i] = args[i] - eps * d
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            np.testing.assert_allclose(np.sum(g * d), numeric, rtol=1e-6, atol=1e-8,
                                       err_msg=f"input {i}")


# the serial path (B * H < 8192) and the one-region parallel path
@pytest.mark.parametrize("shape", [(3, 2, 5, 7), (3, 32, 70, 260)])
@pytest.mark.parametrize("need", list(itertools.product([False, True], repeat=3)))
def test_backward_optional_gradients_are_none_and_others_unchanged(shape, need):
    need_dx, need_dweight, need_dbias = need
    args, full, _ = _loss_grads(shape)
    T, B, _, H = shape
    r = np.random.default_rng(1)
    wo, wh, wc = r.standard_normal((T, B, H)), r.standard_normal((B, H)), r.standard_normal(
        (B, H))
    *_, cache = K.lstm_forward(*args)
    full = K.lstm_backward(wo, wh, wc, cache)
    # the backward is linear in the incoming gradients, and doubling is exact: `part` must be
    # exactly 2 * full, which a buffer left unwritten (holding the values of `full`, freed
    # and handed back by the allocator) cannot be
    part = K.lstm_backward(2 * wo, 2 * wh, 2 * wc, cache, need_dx=need_dx,
                           need_dweight=need_dweight, need_dbias=need_dbias)
    wanted = (need_dx, True, True, need_dweight, need_dweight, need_dbias)
    for i, (want, got, ref) in enumerate(zip(wanted, part, full)):
        if want:
            np.testing.assert_array_equal(got, 2 * ref, err_msg=f"gradient {i}")
        else:
            assert got is None, f"gradient {i}"


# serial and parallel paths, odd and even T (c_T ends in either slot of the two-step ring)
@pytest.mark.parametrize("shape", [(3, 2, 5, 7), (4, 2, 5, 7), (5, 32, 70, 260),
                                   (6, 32, 70, 260)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_forward_without_cache_gives_the_same_bits(shape, dtype, threads):
    """keep_cache=False reuses one step of gate buffers (inference): same outputs, no cache;
    and the buffers' reuse must not leak one step's values into the next (the reference
    check below catches that)."""
    args = make(*shape, dtype=dtype, seed=3)
    before = nncore.get_num_threads()
    try:
        nncore.set_num_threads(threads)
        out, h_n, c_n, cache = K.lstm_forward(*args)
        out2, h_n2, c_n2, cache2 = K.lstm_forward(*args, keep_cache=False)
    finally:
        nncore.set_num_threads(before)
    assert cache is not None and cache2 is None
    for a, b in ((out, out2), (h_n, h_n2), (c_n, c_n2)):
        np.testing.assert_array_equal(a, b)
    ref_out, ref_h, ref_c = ref_lstm(*_f64(args))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(c_n2, ref_c, rtol=tol, atol=tol)
    np.testing.assert_allclose(out2, ref_out, rtol=tol, atol=tol)


def test_no_grad_layer_keeps_no_cache():
    """nn.LSTM under no_grad: same output as with autograd, and nothing saved for backward."""
    lstm = nncore.nn.LSTM(5, 7)
    x = nncore.randn(4, 3, 5)
    out, (h, c) = lstm(x)
    with nncore.no_grad():
        out2, (h2, c2) = lstm(x)
    assert out2.grad_fn is None and out.grad_fn is not None
    for a, b in ((out, out2), (h, h2), (c, c2)):
        np.testing.assert_array_equal(a.detach().numpy(), b.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["b_ih", "b_hh"])
def test_one_bias_only(dtype, which):
    x, h, c, w_ih, w_hh, b_ih, b_hh = make(4, 32, 9, 260, dtype=dtype)
    biases = (b_ih, None) if which == "b_ih" else (None, b_hh)
    out, _, c_n, _ = K.lstm_forward(x, h, c, w_ih, w_hh, *biases)
    ref_out, _, ref_c = ref_lstm(*_f64([x, h, c, w_ih, w_hh, *biases]))
    np.testing.assert_allclose(out, ref_out, **TOL[dtype])
    np.testing.assert_allclose(c_n, ref_c, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_matches_one_step_of_the_sequence(dtype):
    x, h, c, w_ih, w_hh, b_ih, b_hh = make(1, 4, 6, 9, dtype=dtype)
    h1, c1, cell_cache = K.lstm_cell_forward(x[0], h, c, w_ih, w_hh, b_ih, b_hh)
    out, hr, cr = ref_lstm(*_f64([x, h, c, w_ih, w_hh, b_ih, b_hh]))
    np.testing.assert_allclose(h1, hr, **TOL[dtype])
    np.testing.assert_allclose(c1, cr, **TOL[dtype])
    r = np.random.default_rng(3)
    dh, dc = r.standard_normal((4, 9)).astype(dtype), r.standard_normal((4, 9)).astype(dtype)
    cell = K.lstm_cell_backward(dh, dc, cell_cache)
    *_, cache = K.lstm_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    seq = K.lstm_backward(np.zeros((1, 4, 9), dtype), dh, dc, cache)
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
            got, _, c_n, _ = K.lstm_forward(*args)
            out, h, c = ref_lstm(*_f64(args))
            np.testing.assert_allclose(got, out, **TOL[dtype])
            np.testing.assert_allclose(c_n, c, **TOL[dtype])
    finally:
        K._cap_simd(None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", ["portable", "avx2", "avx512"])
def test_one_and_two_threads_are_bit_identical(level, dtype):
    """At every SIMD level of the gate passes and of the GEMM (whose paths depend on the
    shapes it is given: the sequence loops must not change those with the thread count)."""
    from nncore._kernels import gemm as G

    used = K._cap_simd(level)
    G._set_simd_level_for_testing(level)
    try:
        if level != "portable" and not used.startswith(level):
            pytest.skip(f"CPU lacks {level}")
        _check_thread_counts_agree(dtype)
    finally:
        K._cap_simd(None)
        G._set_simd_level_for_testing(None)


def _check_thread_counts_agree(dtype):
    before = nncore.get_num_threads()
    # B*H large enough that the gate passes and column sums really run in parallel
    shape = (3, 32, 24, 300)
    T, B, _, H = shape
    args = make(*shape, dtype=dtype)
    r = np.random.default_rng(2)
    wo = r.standard_normal((T, B, H)).astype(dtype)
    zeros = np.zeros((B, H), dtype)
    runs = []
    try:
        for n in (1, 2, 2, 3):
            nncore.set_num_threads(n)
            out, h_n, c_n, cache = K.lstm_forward(*args)
            grads = K.lstm_backward(wo, zeros, zeros, cache)
            runs.append((out, h_n, c_n) + grads)
    finally:
        nncore.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_bad_input_raises_clear_errors():
    x, h, c, w_ih, w_hh, b_ih, b_hh = make(3, 2, 5, 7)
    with pytest.raises(ValueError, match="weight_ih must have shape"):
        K.lstm_forward(x[:, :, :4], h, c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="h0: expected shape"):
        K.lstm_forward(x, h[:1], c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="c0: expected shape"):
        K.lstm_forward(x, h, c[:, :3], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="empty sequence"):
        K.lstm_forward(x[:0], h, c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="weight_hh"):
        K.lstm_forward(x, h, c, w_ih, w_hh[:, :3], b_ih, b_hh)
    with pytest.raises(ValueError, match="bias_hh"):
        K.lstm_forward(x, h, c, w_ih, w_hh, b_ih, b_hh[:5])
    with pytest.raises(TypeError, match="dtype mismatch"):
        K.lstm_forward(x.astype(np.float32), h, c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(TypeError, match="h0"):
        K.lstm_forward(x, h.astype(np.float32), c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.lstm_forward(x.astype(np.int64), h, c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="3-D"):
        K.lstm_forward(x[0], h, c, w_ih, w_hh, b_ih, b_hh)
    *_, cache = K.lstm_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="dout"):
        K.lstm_backward(np.zeros((2, 2, 7)), h, c, cache)
    with pytest.raises(ValueError, match="dh_n"):
        K.lstm_backward(np.zeros((3, 2, 7)), h[:1], c, cache)
    with pytest.raises(TypeError, match="dout is float32"):
        K.lstm_backward(np.zeros((3, 2, 7), np.float32), h, c, cache)
    with pytest.raises(TypeError, match="LSTMCache"):
        K.lstm_backward(np.zeros((3, 2, 7)), h, c, (1, 2))


def test_nan_propagates():
    x, h, c, w_ih, w_hh, b_ih, b_hh = make(2, 2, 3, 4)
    x[0, 1, 0] = np.nan
    out, _, _, _ = K.lstm_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    assert np.isnan(out[0, 1]).all() and not np.isnan(out[0, 0]).any()
