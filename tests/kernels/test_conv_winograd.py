"""Kernel tests for the Winograd F(2x2, 3x3) path of conv2d (nncore/_kernels/conv_winograd.pyx).

Forward and the stride-1 input gradient (run as a forward convolution) against float64
references on odd sizes, odd edges (cropped tiles), asymmetric and 0/1/2 paddings, with and
without bias, float32 and float64; the same against the im2col path; thread determinism; the
routing (which shapes take the path).
"""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import conv as K
from nncore._kernels import conv_winograd as Wg
from tests.kernels.test_conv import ref_conv, ref_conv_backward

# (N, C, H, W, OC, padding as (top, bottom, left, right))
SHAPES = [
    (2, 32, 17, 19, 33, (1, 1, 1, 1)),    # odd output: cropped last tile row and column
    (1, 33, 18, 18, 32, (0, 0, 0, 0)),    # no padding, 16 x 16 output
    (3, 32, 17, 17, 40, (1, 2, 0, 1)),    # asymmetric padding
    (2, 36, 16, 17, 32, (2, 2, 2, 2)),    # padding 2 (the input gradient of a pad-0 conv)
]
TOL32 = dict(rtol=1e-4, atol=1e-4)


def _data(N, C, H, W, OC, dtype, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((N, C, H, W)).astype(dtype),
            (r.standard_normal((OC, C, 3, 3)) / np.sqrt(9 * C)).astype(dtype),
            r.standard_normal(OC).astype(dtype))


def _uses_winograd(x, w, pad):
    gd, _ = K._geometry(x, w, 1, pad, 1, 1)
    return Wg.winograd_ok(gd)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_matches_float64_reference(shape, dtype, with_bias):
    N, C, H, W, OC, pad = shape
    x, w, b = _data(N, C, H, W, OC, dtype)
    b = b if with_bias else None
    assert _uses_winograd(x, w, pad)
    y = K.conv2d_forward(x, w, b, padding=pad)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64),
                   None if b is None else b.astype(np.float64), (1, 1), pad, (1, 1), 1)
    assert y.dtype == dtype and y.shape == ref.shape
    if dtype == np.float64:
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(y, ref, **TOL32)


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_same_results_as_the_im2col_path(shape):
    N, C, H, W, OC, pad = shape
    x, w, b = _data(N, C, H, W, OC, np.float64, seed=1)
    y = K.conv2d_forward(x, w, b, padding=pad)
    before = Wg._set_allowed_for_testing(False)
    try:
        assert not _uses_winograd(x, w, pad)
        y_im2col = K.conv2d_forward(x, w, b, padding=pad)
    finally:
        Wg._set_allowed_for_testing(before)
    np.testing.assert_allclose(y, y_im2col, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_gradient_through_the_transposed_forward(dtype):
    """>= 32 channels, stride 1: conv2d_backward runs the input gradient as a forward
    convolution of dout with the flipped kernel, which takes the Winograd path."""
    x, w, _ = _data(2, 32, 18, 17, 32, dtype, seed=2)
    pad = (1, 1, 1, 1)
    dout = np.random.default_rng(3).standard_normal((2, 32, 18, 17)).astype(dtype)
    assert _uses_winograd(dout, K._flipped(w), pad)
    dx, dw, db = K.conv2d_backward(dout, x, w, padding=pad)
    rdx, rdw, rdb = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                                      w.astype(np.float64), (1, 1), pad, (1, 1), 1)
    tol = dict(rtol=1e-12, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dx, rdx, **tol)
    np.testing.assert_allclose(dw, rdw, **tol)
    np.testing.assert_allclose(db, rdb, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_simd_level_of_the_transforms_gives_the_same_bits(dtype):
    """The transforms only add and subtract, in a fixed order per element: the portable,
    AVX2 and AVX-512 bodies must agree bit for bit (the GEMM level stays as detected)."""
    x, w, b = _data(2, 32, 17, 19, 33, dtype, seed=5)
    results = {}
    try:
        for level in ("portable", "avx2", "avx512"):
            results[Wg._cap_simd(level)] = K.conv2d_forward(x, w, b, padding=1)
    finally:
        Wg._cap_simd(None)
    assert "portable" in results
    for level, y in results.items():
        np.testing.assert_array_equal(y, results["portable"], err_msg=level)


@pytest.mark.parametrize("N", [5, 2, 1])   # batch >= threads, and smaller than 2 or 3 threads
def test_thread_count_does_not_change_the_bits(N):
    x, w, b = _data(N, 32, 17, 18, 32, np.float32, seed=4)
    before = _parallel.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            _parallel.set_num_threads(threads)
            results.append(K.conv2d_forward(x, w, b, padding=1))
    finally:
        _parallel.set_num_threads(before)
    for y in results[1:]:
        np.testing.assert_array_equal(y, results[0])


# (N, C, H, W, OC, kernel), stride, groups -> (forward takes it, weight gradient takes it)
@pytest.mark.parametrize("shape, stride, groups, taken", [
    ((2, 32, 16, 16, 32, 3), 1, 1, (True, True)),
    ((2, 16, 16, 16, 32, 3), 1, 1, (True, False)),    # 16 input channels: forward only
    ((2, 15, 16, 16, 32, 3), 1, 1, (False, False)),   # too few input channels
    ((2, 32, 16, 16, 31, 3), 1, 1, (False, False)),   # too few output channels
    ((4, 32, 8, 8, 32, 3), 1, 1, (False, True)),      # 8 x 8 needs >= 64 channels forward
    ((4, 64, 8, 8, 64, 3), 1, 1, (True, True)),
    ((16, 64, 4, 4, 64, 3), 1, 1, (True, True)),      # 4 x 4, 64 tiles
    ((8, 64, 4, 4, 64, 3), 1, 1, (True, False)),      # 32 tiles: too few for dW
    ((1, 64, 8, 8, 64, 3), 1, 1, (False, False)),     # 16 tiles: the filter transform dominates
    ((64, 64, 3, 3, 64, 3), 1, 1, (False, False)),    # 3 x 3 output
    ((2, 32, 33, 33, 32, 3), 2, 1, (False, False)),   # stride 2
    ((2, 32, 16, 16, 32, 3), 1, 2, (False, False)),   # groups
    ((2, 32, 16, 16, 32, 5), 1, 1, (False, False)),   # 5x5
])
def test_routing(shape, stride, groups, taken):
    N, C, H, W, OC, k = shape
    x = np.zeros((N, C, H, W), np.float32)
    w = np.zeros((OC, C // groups, k, k), np.float32)
    gd, _ = K._geometry(x, w, stride, 1 if k == 3 else 2, 1, groups)
    assert (Wg.winograd_ok(gd), Wg.weight_grad_ok(gd)) == taken


# small outputs (8 x 8, odd 5 x 7, 4 x 4) that take both paths with 64 channels
SMALL_SHAPES = [(4, 64, 8, 8, 64, (1, 1, 1, 1)), (8, 64, 5, 7, 64, (1, 1, 1, 1)),
                (16, 64, 4, 4, 64, (1, 1, 1, 1))]


@pytest.mark.parametrize("shape", SMALL_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_outputs_match_float64_reference(shape, dtype):
    N, C, H, W, OC, pad = shape
    x, w, b = _data(N, C, H, W, OC, dtype, seed=21)
    gd, _ = K._geometry(x, w, 1, pad, 1, 1)
    assert Wg.winograd_ok(gd) and Wg.weight_grad_ok(gd)
    y = K.conv2d_forward(x, w, b, padding=pad)
    dout = np.random.default_rng(22).standard_normal(y.shape).astype(dtype)
    _, dw, db = K.conv2d_backward(dout, x, w, padding=pad, need_dinp=False)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref = ref_conv(x64, w64, b.astype(np.float64), (1, 1), pad, (1, 1), 1)
    _, rdw, rdb = ref_conv_backward(dout.astype(np.float64), x64, w64, (1, 1), pad, (1, 1), 1)
    for got, want in ((y, ref), (dw, rdw), (db, rdb)):
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err <= (1e-13 if dtype == np.float64 else 3e-6)


# ------------------------------------------------------------------ weight gradient
def _dout(x, w, pad, seed):
    N, _, H, W = x.shape
    OH, OW = H + pad[0] + pad[1] - 2, W + pad[2] + pad[3] - 2
    return np.random.default_rng(seed).standard_normal((N, w.shape[0], OH, OW)).astype(x.dtype)


def _weight_grads(dout, x, w, pad):
    _, dw, db = K.conv2d_backward(dout, x, w, padding=pad, need_dinp=False)
    return dw, db


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_matches_float64_reference(shape, dtype):
    N, C, H, W, OC, pad = shape
    x, w, _ = _data(N, C, H, W, OC, dtype, seed=6)
    dout = _dout(x, w, pad, 7)
    assert _uses_winograd(x, w, pad)
    dw, db = _weight_grads(dout, x, w, pad)
    _, rdw, rdb = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                                    w.astype(np.float64), (1, 1), pad, (1, 1), 1)
    assert dw.dtype == dtype and dw.shape == w.shape and db.shape == (OC,)
    if dtype == np.float64:
        np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-11)
    else:   # relative to the largest entry: measured 2.7-8.3e-7 (im2col: 3.6-4.5e-7)
        assert np.abs(dw - rdw).max() <= 3e-6 * np.abs(rdw).max()
        assert np.abs(db - rdb).max() <= 3e-6 * np.abs(rdb).max()


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_weight_gradient_same_as_the_im2col_path(shape):
    N, C, H, W, OC, pad = shape
    x, w, _ = _data(N, C, H, W, OC, np.float64, seed=8)
    dout = _dout(x, w, pad, 9)
    dw, db = _weight_grads(dout, x, w, pad)
    before = Wg._set_allowed_for_testing(False)
    try:
        dw2, db2 = _weight_grads(dout, x, w, pad)
    finally:
        Wg._set_allowed_for_testing(before)
    np.testing.assert_allclose(dw, dw2, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(db, db2, rtol=1e-12, atol=1e-11)


def test_weight_gradient_without_bias_and_alone():
    x, w, _ = _data(2, 32, 17, 19, 33, np.float32, seed=10)
    pad = (1, 1, 1, 1)
    dout = _dout(x, w, pad, 11)
    dx, dw, db = K.conv2d_backward(dout, x, w, padding=pad, need_dinp=False, need_dbias=False)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, _weight_grads(dout, x, w, pad)[0])


def test_weight_gradient_finite_differences_float64():
    """d/dt sum(conv(x, w + t v) * dout) at t = 0 equals <dw, v>, both paths Winograd."""
    x, w, _ = _data(1, 32, 17, 16, 32, np.float64, seed=12)
    pad = (1, 1, 1, 1)
    dout = _dout(x, w, pad, 13)
    dw, db = _weight_grads(dout, x, w, pad)
    r = np.random.default_rng(14)
    for _ in range(3):
        v = r.standard_normal(w.shape)
        eps = 1e-6
        loss = [float(np.sum(K.conv2d_forward(x, w + s * eps * v, None, padding=pad) * dout))
                for s in (1, -1)]
        fd = (loss[0] - loss[1]) / (2 * eps)
        assert abs(fd - float(np.sum(dw * v))) <= 1e-6 * max(1.0, abs(fd))
    b = r.standard_normal(32)
    fd_b = (np.sum((K.conv2d_forward(x, w, 1e-6 * b, padding=pad)
                    - K.conv2d_forward(x, w, -1e-6 * b, padding=pad)) * dout) / 2e-6)
    assert abs(fd_b - float(np.sum(db * b))) <= 1e-6 * max(1.0, abs(fd_b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_every_simd_level_gives_the_same_bits(dtype):
    x, w, _ = _data(3, 32, 17, 19, 33, dtype, seed=15)
    pad = (1, 1, 1, 1)
    dout = _dout(x, w, pad, 16)
    results = {}
    try:
        for level in ("portable", "avx2", "avx512"):
            results[Wg._cap_simd(level)] = _weight_grads(dout, x, w, pad)
    finally:
        Wg._cap_simd(None)
    for level, (dw, db) in results.items():
        np.testing.assert_array_equal(dw, results["portable"][0], err_msg=level)
        np.testing.assert_array_equal(db, results["portable"][1], err_msg=level)


def _at_threads(threads, fn):
    before = _parallel.get_num_threads()
    try:
        _parallel.set_num_threads(threads)
        return fn()
    finally:
        _parallel.set_num_threads(before)


@pytest.mark.parametrize("N, counts", [(1, (1, 2, 3)), (2, (1, 3))])
def test_weight_gradient_batch_below_the_thread_count_same_bits(N, counts):
    """Below the thread count, the threads share each sample group's transforms and GEMMs:
    the same GEMM calls in the same order as one thread, so the same bits."""
    x, w, _ = _data(N, 32, 17, 18, 32, np.float32, seed=17)
    pad = (1, 1, 1, 1)
    dout = _dout(x, w, pad, 18)
    results = [_at_threads(t, lambda: _weight_grads(dout, x, w, pad)) for t in counts]
    for dw, db in results[1:]:
        np.testing.assert_array_equal(dw, results[0][0])
        np.testing.assert_array_equal(db, results[0][1])


def test_weight_gradient_batch_split_over_threads_is_deterministic():
    """From nthreads samples on, each thread sums its chunk into its own partial, added in
    thread order: the same bits on every call at a fixed count, rounding apart across counts."""
    x, w, _ = _data(5, 32, 17, 18, 32, np.float32, seed=19)
    pad = (1, 1, 1, 1)
    dout = _dout(x, w, pad, 20)
    one = _at_threads(1, lambda: _weight_grads(dout, x, w, pad))
    for threads in (2, 3):
        first = _at_threads(threads, lambda: _weight_grads(dout, x, w, pad))
        again = _at_threads(threads, lambda: _weight_grads(dout, x, w, pad))
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        for got, ref in zip(first, one):   # float32 sums of 5 x 144 tiles in two orders
            assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_random_geometries_match_float64_reference():
    """A sweep of random sizes and paddings (0-3 per side, down to 4 x 4 outputs): forward,
    input and weight gradients against the float64 reference, whichever path each takes."""
    r = np.random.default_rng(31)
    taken = [0, 0]
    for _ in range(24):
        N = int(r.integers(1, 4)) * 8
        C, OC = int(r.choice([16, 33, 64, 67])), int(r.choice([32, 40, 64]))
        H, W = (int(v) for v in r.integers(3, 19, 2))
        pad = tuple(int(v) for v in r.integers(0, 4, 4))
        if H + pad[0] + pad[1] < 3 or W + pad[2] + pad[3] < 3:
            continue
        x, w, b = _data(N, C, H, W, OC, np.float64, seed=int(r.integers(1 << 30)))
        gd, _ = K._geometry(x, w, 1, pad, 1, 1)
        taken[0] += Wg.winograd_ok(gd)
        taken[1] += Wg.weight_grad_ok(gd)
        y = K.conv2d_forward(x, w, b, padding=pad)
        dout = r.standard_normal(y.shape)
        dx, dw, db = K.conv2d_backward(dout, x, w, padding=pad)
        ref = ref_conv(x, w, b, (1, 1), pad, (1, 1), 1)
        rdx, rdw, rdb = ref_conv_backward(dout, x, w, (1, 1), pad, (1, 1), 1)
        for got, want in ((y, ref), (dx, rdx), (dw, rdw), (db, rdb)):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-10,
                                       err_msg=f"{(N, C, H, W, OC, pad)}")
    assert taken[0] >= 5 and taken[1] >= 5, taken
