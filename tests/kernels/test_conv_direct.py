"""The direct few-channel convolution paths of nncore._kernels.conv (conv_direct.h, and
conv_oc16.h for 12-16 output channels along the lanes): the same results as the reference and
as the im2col path on the shapes they take (float32, AVX-512, stride 1, dilation 1, one group,
<= 16 output channels; <= 16 input channels for the input gradient), odd sizes and every tail
of the 16-lane rows, the 8-channel blocks, the 2-row x <= 12-column tiles and the 8-tap
weight-gradient groups."""
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
    (2, 3, 30, 30, 12, (3, 3), (1, 1, 1, 1)),     # 12 lanes of channels; 30 = 3 x 10 columns
    (3, 2, 7, 27, 14, (2, 4), (0, 1, 3, 0)),      # 7 rows (one-row tail), 27 = 3 x 9 columns
    (1, 5, 13, 13, 15, (3, 5), (2, 2, 0, 4)),     # 75 taps: 9 groups of 8 + 3
    (5, 1, 4, 40, 16, (1, 1), (0, 0, 1, 1)),      # 1x1 padded: 42 = 11 + 10 + 11 + 10 columns
    (3, 20, 7, 9, 10, (3, 3), (1, 1, 1, 1)),      # 20 inputs: dinp on im2col, dW/db direct
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


def test_lane_channel_weight_gradient_is_repeatable_and_thread_count_close(direct_path):
    """12-16 channels: per-thread partial sums added in chunk order: the same bits for a fixed
    thread count, float rounding apart across counts."""
    x, w, _ = _data(9, 6, 14, 14, 16, (5, 5), seed=6)
    dout = np.random.default_rng(7).standard_normal((9, 16, 10, 10)).astype(np.float32)
    before = _parallel.get_num_threads()
    got = {}
    try:
        for threads in (1, 2, 2, 3):
            _parallel.set_num_threads(threads)
            dw = K.conv2d_backward(dout, x, w, need_dinp=False, need_dbias=False)[1]
            if threads in got:
                np.testing.assert_array_equal(dw, got[threads])
            got[threads] = dw
    finally:
        _parallel.set_num_threads(before)
    ref = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                            w.astype(np.float64), (1, 1), (0, 0, 0, 0), (1, 1), 1)[1]
    for dw in got.values():
        np.testing.assert_allclose(dw, ref, **TOL)


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


@pytest.mark.parametrize("shape", [s for s in SHAPES if 9 <= s[4] <= 16])
def test_both_forward_kernels_match_reference(shape):
    """conv.pyx picks the row kernel or the channels-along-lanes kernel by lane use; both
    must be right on every shape either could get."""
    N, C, H, W, OC, k, pad = shape
    x, w, b = _data(N, C, H, W, OC, k)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                   (1, 1), pad, (1, 1), 1)
    for run in (D.run, D.run_oc16):
        out = np.full(ref.shape, np.nan, np.float32)
        run(out, x, w, b, pad, 2)
        np.testing.assert_allclose(out, ref, **TOL)


# (N, C, H, W, OC, (KH, KW), pad): >= 16 samples and >= 4 input channels take the input
# gradient with the samples along the lanes (conv_batchlane.h)
BATCH_SHAPES = [
    (16, 6, 14, 14, 16, (5, 5), (0, 0, 0, 0)),    # LeNet conv2, one full group
    (17, 4, 7, 9, 3, (3, 3), (1, 1, 1, 1)),       # a second group of 1 sample
    (35, 9, 6, 5, 5, (2, 4), (1, 0, 2, 1)),       # 9 channels: blocks of 8 + 1; asymmetric pads
    (20, 16, 5, 11, 13, (3, 1), (2, 2, 0, 0)),    # 16 channels: two full blocks
    (16, 5, 3, 3, 2, (3, 3), (2, 2, 2, 2)),       # padding K - 1: every output reads padding
]


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_batch_lane_input_gradient_matches_reference(shape, direct_path):
    N, C, H, W, OC, k, pad = shape
    x, w, _ = _data(N, C, H, W, OC, k, seed=8)
    y = K.conv2d_forward(x, w, padding=pad)
    dout = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    ref = ref_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                            w.astype(np.float64), (1, 1), pad, (1, 1), 1)
    dx, dw, db = K.conv2d_backward(dout, x, w, padding=pad)
    np.testing.assert_allclose(dx, ref[0], **TOL)
    np.testing.assert_allclose(dw, ref[1], **TOL)
    np.testing.assert_allclose(db, ref[2], **TOL)
    direct = np.full(x.shape, np.nan, np.float32)
    D.dinp_batchlane(direct, dout, w, pad[0], pad[2], 3)
    np.testing.assert_allclose(direct, ref[0], **TOL)


def test_batch_lane_input_gradient_is_thread_independent(direct_path):
    """Each group of 16 samples is computed by one thread in a fixed order: same bits."""
    x, w, _ = _data(40, 6, 14, 14, 16, (5, 5), seed=10)
    dout = np.random.default_rng(11).standard_normal((40, 16, 10, 10)).astype(np.float32)
    before = _parallel.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            _parallel.set_num_threads(threads)
            results.append(K.conv2d_backward(dout, x, w, need_dweight=False,
                                             need_dbias=False)[0])
    finally:
        _parallel.set_num_threads(before)
    for dx in results[1:]:
        np.testing.assert_array_equal(dx, results[0])
