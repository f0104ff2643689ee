"""Kernel tests for nncore._kernels.softmax: softmax and log-softmax along any dim.

Forward against NumPy references (computed in float64), backward against central finite
differences in float64, PyTorch parity where torch is installed, NaN/extreme values, thread
independence, every SIMD level, and bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import softmax as S
from tests.kernels.test_activation import (
    DTYPES,
    SHAPES,
    SIMD_LEVELS,
    TOL,
    assert_same_bits_at_1_and_2_threads,
    data,
    simd_cap_fixture,
)

# ------------------------------------------------------------------ NumPy references (float64)

def ref_softmax(x, dim=-1):
    with np.errstate(invalid="ignore"):              # all -inf rows give nan, as expected
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)


def ref_log_softmax(x, dim=-1):
    with np.errstate(invalid="ignore"):
        z = x - x.max(axis=dim, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=dim, keepdims=True))


simd_cap = simd_cap_fixture(S)   # softmax.pyx keeps its own SIMD level, apart from activation


# ------------------------------------------------------------------ forward vs NumPy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_forward_every_dim(shape, dtype):
    x = data(shape, dtype)
    for dim in range(-len(shape), len(shape)):
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(S.softmax_forward(x, dim), ref_softmax(x64, dim), **TOL[dtype])
        np.testing.assert_allclose(S.log_softmax_forward(x, dim), ref_log_softmax(x64, dim),
                                   **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_wide_inner_blocks(dtype):
    # inner = 150 spans three column blocks (64 + 64 + 22); D = 33 rows in each slab.
    x = data((2, 33, 150), dtype, seed=3)
    for fn, ref in ((S.softmax_forward, ref_softmax), (S.log_softmax_forward, ref_log_softmax)):
        np.testing.assert_allclose(fn(x, 1), ref(x.astype(np.float64), 1), **TOL[dtype])
    dout = data(x.shape, dtype, seed=4)
    y = S.softmax_forward(x, 1)
    expected = y * (dout - (dout * y).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(S.softmax_backward(dout, y, 1), expected, **TOL[dtype])


def test_softmax_zero_d_and_empty():
    assert S.softmax_forward(np.array(3.0)) == 1.0
    assert S.log_softmax_forward(np.array(3.0, np.float32), dim=0) == 0.0
    assert S.softmax_forward(np.zeros((0, 5))).shape == (0, 5)
    assert S.log_softmax_backward(np.zeros((4, 0)), np.zeros((4, 0))).shape == (4, 0)


# ------------------------------------------------------------------ backward

@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_finite_differences(log, dim):
    x = data((3, 5, 7), np.float64, seed=7)
    dout = data(x.shape, np.float64, seed=8)
    forward = S.log_softmax_forward if log else S.softmax_forward
    backward = S.log_softmax_backward if log else S.softmax_backward
    dx = backward(dout, forward(x, dim), dim)
    expected = np.empty_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        expected[idx] = ((forward(xp, dim) - forward(xm, dim)) * dout).sum() / (2 * h)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ PyTorch parity

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", [((97, 101), -1), ((3, 5, 7), 1), ((3, 5, 7), 0)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_matches_torch(log, shape, dim, dtype):
    torch = pytest.importorskip("torch")
    x = data(shape, dtype, seed=11)
    dout = data(shape, dtype, seed=12)
    xt = torch.tensor(x, requires_grad=True)
    yt = (torch.log_softmax if log else torch.softmax)(xt, dim)
    yt.backward(torch.tensor(dout))
    forward = S.log_softmax_forward if log else S.softmax_forward
    backward = S.log_softmax_backward if log else S.softmax_backward
    y = forward(x, dim)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(backward(dout, y, dim), xt.grad.numpy(),
                               rtol=1e-4 if dtype == np.float32 else 1e-11,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


# ------------------------------------------------------------------ NaN and extreme values

@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagation(dtype):
    row = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], dtype)
    for fn in (S.softmax_forward, S.log_softmax_forward):
        y = fn(row)
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_finite(dtype):
    big = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]], dtype)
    y = S.softmax_forward(big)
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(S.log_softmax_forward(big)[0], [0, -2e4, -1e4])
    np.testing.assert_allclose(S.softmax_forward(big, dim=0)[:, 1], [0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_neg_inf_row_is_nan(dtype):
    x = np.full((2, 4), -np.inf, dtype)
    x[1, 2] = 0.0
    for fn in (S.softmax_forward, S.log_softmax_forward):
        y = fn(x)
        assert np.isnan(y[0]).all()
    np.testing.assert_array_equal(S.softmax_forward(x)[1], [0, 0, 1, 0])
    assert np.isnan(S.softmax_forward(x, dim=0)[:, 0]).all()


# ------------------------------------------------------------------ threads and SIMD levels

@pytest.mark.skipif(not _parallel.openmp_enabled(), reason="serial build")
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_vs_two_threads_bit_identical(dtype):
    xs = data((600, 513), dtype, seed=15)

    def run():
        out = []
        for dim in (0, 1):
            y = S.softmax_forward(xs, dim)
            out += [y, S.log_softmax_forward(xs, dim), S.softmax_backward(xs, y, dim)]
        return out

    assert_same_bits_at_1_and_2_threads(run)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_reference(simd_cap, level, dtype):
    simd_cap(level)
    # widths around the vector lengths exercise every tail (masked) path
    for D in (1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 101):
        x = data((5, D), dtype, seed=D)
        x[0, 0] = -np.inf
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(S.softmax_forward(x), ref_softmax(x64), **TOL[dtype])
        np.testing.assert_allclose(S.log_softmax_forward(x), ref_log_softmax(x64), **TOL[dtype])
    nanrow = np.array([[1.0, 2.0, np.nan] + [0.0] * 14], dtype)
    assert np.isnan(S.softmax_forward(nanrow)).all()
    wide = np.linspace(-120, 0, 4099).astype(dtype)[None, :]
    tiny = 3e-45 if dtype == np.float32 else 1e-322   # a couple of denormal ulps
    np.testing.assert_allclose(S.softmax_forward(wide), ref_softmax(wide.astype(np.float64)),
                               rtol=TOL[dtype]["rtol"], atol=tiny)   # tiny and denormal values


# ------------------------------------------------------------------ out=, layouts, bad input

def test_out_and_in_place():
    x = data((7, 3), np.float64)
    y = x.copy()
    S.softmax_forward(y, out=y)
    np.testing.assert_allclose(y, ref_softmax(x), rtol=1e-12)
    y = x.copy()
    S.log_softmax_forward(y, 0, out=y)
    np.testing.assert_allclose(y, ref_log_softmax(x, 0), rtol=1e-12)


def test_non_contiguous_input_is_copied():
    x = data((8, 6), np.float32)
    np.testing.assert_array_equal(S.softmax_forward(x[:, ::2]),
                                  S.softmax_forward(np.ascontiguousarray(x[:, ::2])))


def test_numpy_integer_dim_accepted():
    x = data((3, 4), np.float64)
    np.testing.assert_array_equal(S.softmax_forward(x, np.int64(0)), S.softmax_forward(x, 0))


def test_bad_input_raises():
    x = data((4, 5), np.float32)
    with pytest.raises(IndexError, match="dim 2 is out of range for a 2-D array"):
        S.softmax_forward(x, dim=2)
    with pytest.raises(IndexError, match="dim -3"):
        S.log_softmax_backward(x, x, dim=-3)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        S.softmax_forward(x, out=readonly)


def test_dispatched_simd_reports_a_level():
    assert S.dispatched_simd() in ("portable", "avx2+fma", "avx512")
