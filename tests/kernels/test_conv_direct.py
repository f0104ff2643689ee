"""The direct few-channel convolution path of nncore._kernels.conv (conv_direct.h): the same
results as the reference and as the im2col path on the shapes it takes (float32, AVX-512,
stride 1, dilation 1, one group, <= 16 output channels; <= 16 input channels for the input
gradient), odd sizes and every tail of the 16-lane rows and 8-channel blocks."""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import conv as K
from nncore._kernels import conv_direct as D
from tests.kernels.test_conv import ref_conv, ref_conv_backward

pytestmark = pytest.mark.skipif(_parallel.simd_level() != "avx512",
                                reason="the direct convolution path is AVX-512 only")

TOL = dict(rtol=2e-4, atol=2e-4)

# (N, C, H, W, OC, (KH, KW), pad (t, b, l, r))
SHAPES = [
    (2, 3, 32, 32, 6, (5, 5), (0, 0, 0, 0)),      # LeNet conv1
    (3, 6, 14, 14, 16, (5, 5), (0, 0, 0, 0)),     # LeNet conv2
    (1, 1, 1, 1, 1, (1, 3), (0, 0, 1, 1)),        # one pixel, padded
    (2, 5, 9, 17, 9, (3, 3), (1, 1, 1, 1)),       # 15 lanes; 9 channels: a block of 8 + 1
    (2, 2, 6, 20, 8, (2, 5), (1, 0, 2, 2)),       # asymmetric padding, 20 = 16 + 4 lanes
    (1, 16, 5, 33, 16, (1, 2), (0, 0, 0, 1)),     # 1 x 2 kernel, 33 lanes = 16 + 16 + 1
    (4, 7, 11, 3, 3, (4, 3), (3, 0, 2, 2)),       # padding up to K - 1
    (2, 3, 8, 8, 13, (3, 3), (0, 2, 1, 0)),       # odd output height (one-row tail)
]


def _data(N, C, H, W, OC, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((OC, C) + k).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    return x, w, b


@pytest.fixture
def direct_path():
    old = D._set_direct_for_testing(True)
    yield
    D._set_direct_for_testing(old)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_input_gradient_match_reference_and_im2col(shape, direct_path):
    N, C, H, W, OC, k, pad = shape
    x, w, b = _data(N, C, H, W, OC, k)
    y = K.conv2d_forward(x, w, b, padding=pad)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   (1, 1), pad, (1, 1), 1)
    np.testing.assert_allclose(y, ref, **TOL)
    dout = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = K.conv2d_backward(dout, x, w, padding=pad)
    rdx, rdw, rdb = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                                      w.astype(np.float64), (1, 1), pad, (1, 1), 1)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(dw, rdw, **TOL)
    np.testing.assert_allclose(db, rdb, **TOL)
    D._set_direct_for_testing(False)
    y2 = K.conv2d_forward(x, w, b, padding=pad)
    dx2 = K.conv2d_backward(dout, x, w, padding=pad, need_dweight=False, need_dbias=False)[0]
    np.testing.assert_allclose(y, y2, **TOL)
    np.testing.assert_allclose(dx, dx2, **TOL)


def test_no_bias_and_only_input_gradient(direct_path):
    x, w, _ = _data(2, 4, 10, 12, 5, (3, 3))
    y = K.conv2d_forward(x, w)
    np.testing.assert_allclose(y, ref_conv(x.astype(np.float64), w.astype(np.float64), None,
                                           (1, 1), (0, 0, 0, 0), (1, 1), 1), **TOL)
    dout = np.ones_like(y)
    dx, dw, db = K.conv2d_backward(dout, x, w, need_dweight=False, need_dbias=False)
    assert dw is None and db is None
    rdx = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                            w.astype(np.float64), (1, 1), (0, 0, 0, 0), (1, 1), 1)[0]
    np.testing.assert_allclose(dx, rdx, **TOL)


def test_direct_path_is_thread_independent_and_repeatable(direct_path):
    x, w, b = _data(7, 6, 14, 14, 16, (5, 5), seed=3)
    dout = np.random.default_rng(4).standard_normal((7, 16, 10, 10)).astype(np.float32)
    results = []
    before = _parallel.get_num_threads()
    try:
        for threads in (1, 2, 2):
            _parallel.set_num_threads(threads)
            results.append((K.conv2d_forward(x, w, b), K.conv2d_backward(dout, x, w)[0]))
    finally:
        _parallel.set_num_threads(before)
    for y, dx in results[1:]:  # per-sample work in a fixed order: same bits at any count
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def test_shapes_outside_the_direct_path_still_agree(direct_path):
    """float64, stride 2, dilation 2, groups, > 16 channels: im2col path, same answers."""
    rng = np.random.default_rng(5)
    for dtype, stride, dil, groups, OC in ((np.float64, 1, 1, 1, 4), (np.float32, 2, 1, 1, 4),
                                           (np.float32, 1, 2, 1, 4), (np.float32, 1, 1, 2, 4),
                                           (np.float32, 1, 1, 1, 24)):
        x = rng.standard_normal((2, 4, 9, 9)).astype(dtype)
        w = rng.standard_normal((OC, 4 // groups, 3, 3)).astype(dtype)
        y = K.conv2d_forward(x, w, None, stride=stride, dilation=dil, groups=groups)
        ref = ref_conv(x.astype(np.float64), w.astype(np.float64), None, (stride, stride),
                       (0, 0, 0, 0), (dil, dil), groups)
        np.testing.assert_allclose(y, ref, rtol=2e-4, atol=2e-4)
