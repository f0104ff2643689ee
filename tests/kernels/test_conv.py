"""Kernel tests for nncore._kernels.conv: conv2d forward/backward against a plain NumPy loop
reference across stride/padding/dilation/groups and odd sizes, thread independence,
bit-identical repeats, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import conv as K

TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}


# ---------------------------------------------------------------- reference (float64 loops)

def ref_conv(x, w, b, stride, pad, dil, groups):
    """Direct definition: pad, then for every kernel tap add a strided slice times weights."""
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    (sh, sw), (dh, dw) = stride, dil
    pt, pb, pl, pr = pad
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    out = np.zeros((N, OC, OH, OW))
    OCg = OC // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        ws = w[g * OCg:(g + 1) * OCg]
        for p in range(KH):
            for q in range(KW):
                patch = xs[:, :, p * dh:p * dh + sh * (OH - 1) + 1:sh,
                           q * dw:q * dw + sw * (OW - 1) + 1:sw]
                out[:, g * OCg:(g + 1) * OCg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, p, q])
    if b is not None:
        out += b[None, :, None, None]
    return out


def ref_conv_backward(dout, x, w, stride, pad, dil, groups):
    """Gradients by the adjoint of ref_conv, tap by tap."""
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    (sh, sw), (dh, dw) = stride, dil
    pt, pb, pl, pr = pad
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    dxp = np.zeros_like(xp)
    dw_ = np.zeros_like(w, dtype=np.float64)
    OH, OW = dout.shape[2:]
    OCg = OC // groups
    for g in range(groups):
        cs, os_ = slice(g * Cg, (g + 1) * Cg), slice(g * OCg, (g + 1) * OCg)
        for p in range(KH):
            for q in range(KW):
                sl = (slice(None), cs, slice(p * dh, p * dh + sh * (OH - 1) + 1, sh),
                      slice(q * dw, q * dw + sw * (OW - 1) + 1, sw))
                dw_[os_, :, p, q] = np.einsum("nohw,nchw->oc", dout[:, os_], xp[sl])
                dxp[sl] += np.einsum("nohw,oc->nchw", dout[:, os_], w[os_, :, p, q])
    return dxp[:, :, pt:pt + H, pl:pl + W], dw_, dout.sum(axis=(0, 2, 3))


# (N, C, H, W, OC, (KH, KW), stride, pad (t, b, l, r), dilation, groups)
CASES = [
    (2, 3, 8, 8, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (3, 4, 7, 9, 6, (2, 3), (2, 1), (1, 1, 0, 0), (1, 2), 2),
    (2, 6, 6, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6),     # depthwise
    (2, 4, 5, 7, 8, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 1x1 direct path
    (2, 4, 5, 7, 8, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 2),     # 1x1 strided
    (5, 3, 11, 13, 5, (5, 7), (2, 3), (2, 2, 3, 3), (1, 1), 1),
    (2, 2, 9, 9, 3, (3, 3), (3, 2), (0, 0, 0, 0), (2, 3), 1),
    (3, 2, 6, 5, 2, (2, 2), (1, 1), (0, 1, 0, 1), (1, 1), 1),     # asymmetric ("same", even k)
    (7, 5, 7, 7, 7, (7, 1), (1, 1), (3, 3, 0, 0), (1, 1), 1),
    (3, 8, 40, 41, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),   # col larger than L1
    # >= 32 input channels, stride 1: the input gradient runs as a forward convolution
    (2, 32, 6, 7, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (3, 33, 5, 4, 40, (2, 3), (1, 1), (0, 1, 2, 0), (1, 1), 1),   # asymmetric, even kernel
    (2, 48, 4, 4, 3, (3, 3), (1, 1), (2, 2, 2, 2), (1, 1), 1),    # padding K - 1
    (2, 32, 3, 3, 4, (1, 1), (1, 1), (1, 1, 1, 1), (1, 1), 1),    # padding >= K: col2im
    (2, 32, 7, 7, 8, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),    # stride 2: col2im
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_forward_backward_vs_reference(case, dtype):
    N, C, H, W, OC, (KH, KW), stride, pad, dil, groups = case
    r = np.random.default_rng(hash(case) % 2**32)
    x = r.standard_normal((N, C, H, W))
    w = r.standard_normal((OC, C // groups, KH, KW))
    b = r.standard_normal(OC)
    expect = ref_conv(x, w, b, stride, pad, dil, groups)
    out = K.conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), stride, pad, dil,
                           groups)
    assert out.dtype == dtype and out.shape == expect.shape
    np.testing.assert_allclose(out, expect, **TOL[dtype])
    dout = r.standard_normal(expect.shape)
    rdx, rdw, rdb = ref_conv_backward(dout, x, w, stride, pad, dil, groups)
    dx, dw, db = K.conv2d_backward(dout.astype(dtype), x.astype(dtype), w.astype(dtype),
                                   stride, pad, dil, groups)
    np.testing.assert_allclose(dx, rdx, **TOL[dtype])
    np.testing.assert_allclose(dw, rdw, **TOL[dtype])
    np.testing.assert_allclose(db, rdb, **TOL[dtype])


def test_backward_only_requested_gradients():
    r = np.random.default_rng(1)
    x, w = r.standard_normal((2, 3, 6, 6)), r.standard_normal((4, 3, 3, 3))
    dout = r.standard_normal((2, 4, 4, 4))
    full = K.conv2d_backward(dout, x, w)
    for mask in [(True, False, False), (False, True, False), (False, False, True)]:
        got = K.conv2d_backward(dout, x, w, need_dinp=mask[0], need_dweight=mask[1],
                                need_dbias=mask[2])
        for want, g, m in zip(full, got, mask):
            if m:
                np.testing.assert_array_equal(g, want)
            else:
                assert g is None


def test_no_bias_and_bias_equal_up_to_bias():
    r = np.random.default_rng(2)
    x, w, b = r.standard_normal((2, 3, 5, 5)), r.standard_normal((4, 3, 3, 3)), r.standard_normal(4)
    np.testing.assert_allclose(K.conv2d_forward(x, w, b),
                               K.conv2d_forward(x, w) + b[None, :, None, None], rtol=1e-12)


@pytest.mark.parametrize("N", [1, 3, 8])
def test_threads_equal_and_repeats_bit_identical(N):
    r = np.random.default_rng(3)
    x = r.standard_normal((N, 4, 9, 9)).astype(np.float32)
    w = r.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = r.standard_normal(6).astype(np.float32)
    dout = r.standard_normal((N, 6, 9, 9)).astype(np.float32)
    old = _parallel.get_num_threads()
    results = {}
    try:
        for nt in (1, 2):
            _parallel.set_num_threads(nt)
            runs = [(K.conv2d_forward(x, w, b, 1, 1, 1, 2),)
                    + K.conv2d_backward(dout, x, w, 1, 1, 1, 2) for _ in range(2)]
            for a, c in zip(runs[0], runs[1]):
                np.testing.assert_array_equal(a, c)       # bit-identical repeats
            results[nt] = runs[0]
    finally:
        _parallel.set_num_threads(old)
    for a, c in zip(results[1], results[2]):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


def test_workspace_independent_of_result_layout_views():
    # non-contiguous inputs are copied, results equal the contiguous call
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 6, 7, 7))[:, ::2]
    w = r.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(K.conv2d_forward(x, w), K.conv2d_forward(x.copy(), w))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3))), {}, ValueError, "channels"),
    ((np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3))), {"groups": 2}, ValueError, "divisible"),
    ((np.zeros((1, 3, 5, 5)), np.zeros((3, 1, 3, 3))), {"groups": 0}, ValueError, "groups"),
    ((np.zeros((1, 3, 2, 2)), np.zeros((4, 3, 3, 3))), {}, ValueError, "Kernel size"),
    ((np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3))), {"stride": 0}, ValueError, "stride"),
    ((np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3))), {"dilation": -1}, ValueError,
     "dilation"),
    ((np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3))), {"padding": -1}, ValueError, "padding"),
    ((np.zeros((3, 5, 5)), np.zeros((4, 3, 3, 3))), {}, ValueError, "4-D"),
    ((np.zeros((1, 3, 5, 5), np.float32), np.zeros((4, 3, 3, 3))), {}, TypeError, "dtype"),
    ((np.zeros((1, 3, 5, 5), np.int32), np.zeros((4, 3, 3, 3))), {}, TypeError, "float32"),
])
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        K.conv2d_forward(*args, **kwargs)


def test_bad_bias_and_dout():
    x, w = np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="bias"):
        K.conv2d_forward(x, w, np.zeros(3))
    with pytest.raises(ValueError, match="dout shape"):
        K.conv2d_backward(np.zeros((1, 4, 2, 2)), x, w)


def test_empty_batch():
    out = K.conv2d_forward(np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones(4))
    assert out.shape == (0, 4, 3, 3)
    dx, dw, db = K.conv2d_backward(np.zeros((0, 4, 3, 3)), np.zeros((0, 3, 5, 5)),
                                   np.ones((4, 3, 3, 3)))
    assert dx.shape == (0, 3, 5, 5) and not dw.any() and not db.any()


def test_numpy_benchmark_baseline_matches_kernel():
    """benchmarks/baseline_conv.py computes the same conv forward/backward (equal work)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from nncore.bench import baseline_conv as bc

    r = np.random.default_rng(5)
    x, w, b = r.standard_normal((3, 4, 9, 9)), r.standard_normal((5, 4, 3, 3)), r.standard_normal(5)
    dout = r.standard_normal((3, 5, 9, 9))
    out, dx, dw, db = bc.conv2d_forward_backward(x, w, b, dout, 1, 1)
    np.testing.assert_allclose(out, K.conv2d_forward(x, w, b, 1, 1), rtol=1e-10)
    for got, want in zip((dx, dw, db), K.conv2d_backward(dout, x, w, 1, 1)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
