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


@pytest.mark.parametrize("shape, stride, groups, taken", [
    ((2, 32, 16, 16, 32, 3), 1, 1, True),
    ((2, 31, 16, 16, 32, 3), 1, 1, False),   # too few input channels
    ((2, 32, 16, 16, 31, 3), 1, 1, False),   # too few output channels
    ((2, 32, 14, 14, 32, 3), 1, 1, False),   # 14 x 14 output with padding 1 -> too small
    ((2, 32, 33, 33, 32, 3), 2, 1, False),   # stride 2
    ((2, 32, 16, 16, 32, 3), 1, 2, False),   # groups
    ((2, 32, 16, 16, 32, 5), 1, 1, False),   # 5x5
])
def test_routing(shape, stride, groups, taken):
    N, C, H, W, OC, k = shape
    x = np.zeros((N, C, H, W), np.float32)
    w = np.zeros((OC, C // groups, k, k), np.float32)
    gd, _ = K._geometry(x, w, stride, 1 if k == 3 else 2, 1, groups)
    assert Wg.winograd_ok(gd) is taken
