"""Kernel tests for nncore._kernels.activation: the elementwise activations (softmax and
log-softmax: test_softmax.py).

Forward against NumPy references (computed in float64), backward against central finite
differences in float64, PyTorch parity where torch is installed, NaN/extreme values, thread
independence, every SIMD level, and bad input.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import activation as A

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1), (7, 3), (97, 101), (64, 10), (3, 5, 7)]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
SIMD_LEVELS = ["portable", "avx2", "avx512"]


# ------------------------------------------------------------------ NumPy references (float64)

def ref_relu(x):
    return np.where(x > 0, x, 0.0)


def ref_leaky(x, slope=0.01):
    return np.where(x > 0, x, x * slope)


def ref_sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))          # same function, different formula


def ref_gelu(x):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def ref_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


FORWARD = {
    "relu": (A.relu_forward, ref_relu, {}),
    "leaky_relu": (A.leaky_relu_forward, lambda x: ref_leaky(x, 0.2), {"negative_slope": 0.2}),
    "sigmoid": (A.sigmoid_forward, ref_sigmoid, {}),
    "tanh": (A.tanh_forward, np.tanh, {}),
    "gelu": (A.gelu_forward, ref_gelu, {}),
    "gelu_tanh": (A.gelu_forward, ref_gelu_tanh, {"approximate": "tanh"}),
}


def data(shape, dtype, seed=0, scale=3.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=dtype)


def assert_same_bits_at_1_and_2_threads(run):
    """run() -> list of arrays: equal bit for bit at 1 and at 2 threads, and on a second run
    at 2 threads. Restores the thread count afterwards."""
    saved = _parallel.get_num_threads()
    try:
        _parallel.set_num_threads(1)
        one = run()
        _parallel.set_num_threads(2)
        two = run()
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(two, run()):
            np.testing.assert_array_equal(a, b)
    finally:
        _parallel.set_num_threads(saved)


def simd_cap_fixture(module):
    """A `simd_cap` fixture for a kernel module with its own SIMD level: yields cap(level),
    which calls module._cap_simd(level) and skips the test where the CPU lacks that level;
    the detected level is restored afterwards."""
    @pytest.fixture
    def simd_cap():
        def cap(level):
            used = module._cap_simd(level)
            if level != "portable" and not used.startswith(level):
                pytest.skip(f"CPU lacks {level}")
            return used

        yield cap
        module._cap_simd(None)

    return simd_cap


simd_cap = simd_cap_fixture(A)


# ------------------------------------------------------------------ forward vs NumPy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(), (0,), (2, 0, 3)])
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_elementwise_forward(name, shape, dtype):
    fn, ref, kw = FORWARD[name]
    x = data(shape, dtype)
    y = fn(x, **kw)
    assert y.shape == x.shape and y.dtype == x.dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), **TOL[dtype])


# ------------------------------------------------------------------ backward

def _fd(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 5, 7)])
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_elementwise_backward_finite_differences(name, shape):
    fn, _, kw = FORWARD[name]
    x = data(shape, np.float64, seed=1)
    if name in ("relu", "leaky_relu"):
        x[np.abs(x) < 1e-3] = 0.5                   # keep away from the kink
    dout = data(shape, np.float64, seed=2)
    expected = dout * _fd(lambda v: fn(v, **kw), x)
    y = fn(x, **kw)
    if name == "relu":
        dx = A.relu_backward(dout, y)
        np.testing.assert_array_equal(A.relu_backward(dout, x), dx)   # input works too
    elif name == "leaky_relu":
        dx = A.leaky_relu_backward(dout, x, 0.2)
    elif name == "sigmoid":
        dx = A.sigmoid_backward(dout, y)
    elif name == "tanh":
        dx = A.tanh_backward(dout, y)
    else:
        dx = A.gelu_backward(dout, x, kw.get("approximate", "none"))
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu"])
def test_elementwise_backward_float32_matches_float64(name, dtype):
    x = data((97, 101), dtype, seed=5)
    dout = data(x.shape, dtype, seed=6)
    x64, d64 = x.astype(np.float64), dout.astype(np.float64)
    if name == "sigmoid":
        got, want = A.sigmoid_backward(dout, A.sigmoid_forward(x)), d64 * ref_sigmoid(x64) * (
            1 - ref_sigmoid(x64))
    elif name == "tanh":
        got, want = A.tanh_backward(dout, A.tanh_forward(x)), d64 * (1 - np.tanh(x64) ** 2)
    else:
        got, want = A.gelu_backward(dout, x), A.gelu_backward(d64, x64)
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-13)


# ------------------------------------------------------------------ PyTorch parity

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate, dtype):
    torch = pytest.importorskip("torch")
    x = data((97, 101), dtype, seed=9)
    dout = data(x.shape, dtype, seed=10)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(A.gelu_forward(x, approximate), yt.detach().numpy(), **TOL[dtype])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(A.gelu_backward(dout, x, approximate), xt.grad.numpy(), **tol)


def test_nan_semantics_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, -1.0, 0.0, 2.0, -np.inf, np.inf])
    xt = torch.tensor(x)
    np.testing.assert_array_equal(A.relu_forward(x), torch.relu(xt).numpy())
    np.testing.assert_allclose(A.sigmoid_forward(x), torch.sigmoid(xt).numpy(), rtol=1e-15)
    ones = np.ones_like(x)
    xg = torch.tensor(x, requires_grad=True)
    torch.relu(xg).backward(torch.ones(len(x), dtype=torch.float64))
    np.testing.assert_array_equal(A.relu_backward(ones, A.relu_forward(x)), xg.grad.numpy())


# ------------------------------------------------------------------ NaN and extreme values

@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagation(dtype):
    x = np.array([np.nan, -1.0, 0.0, 2.0], dtype)
    for name, (fn, _, kw) in FORWARD.items():
        assert np.isnan(fn(x, **kw)[0]), name
    np.testing.assert_array_equal(A.relu_forward(x)[1:], [0, 0, 2])
    at_zero = np.array([0.0, -0.0, 1e-30, -1e-30], dtype)
    assert A.relu_backward(np.ones(4, dtype), at_zero).tolist() == [0, 0, 1, 0]   # 0 at 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_finite(dtype):
    x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype)
    for name, (fn, _, kw) in FORWARD.items():
        assert np.isfinite(fn(x, **kw)).all(), name
    np.testing.assert_array_equal(A.sigmoid_forward(x)[[0, -1]], [0, 1])
    for approx in ("none", "tanh"):
        g = A.gelu_backward(np.ones_like(x), x, approx)
        assert np.isfinite(g).all() and g[0] == 0 and g[-1] == 1


# ------------------------------------------------------------------ threads and SIMD levels

@pytest.mark.skipif(not _parallel.openmp_enabled(), reason="serial build")
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_vs_two_threads_bit_identical(dtype):
    x = data((300_001,), dtype, seed=13)
    dout = data(x.shape, dtype, seed=14)

    def run():
        out = [fn(x, **kw) for fn, _, kw in FORWARD.values()]
        out += [A.gelu_backward(dout, x, "tanh"), A.sigmoid_backward(dout, out[2])]
        return out

    assert_same_bits_at_1_and_2_threads(run)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_reference(simd_cap, level, dtype):
    simd_cap(level)
    # elementwise vector bodies: lengths hitting every tail, values across the ranges
    for n in (1, 5, 8, 13, 16, 31, 1001):
        x = np.linspace(-12, 12, n).astype(dtype) if n > 1 else np.array([0.3], dtype)
        x64 = x.astype(np.float64)
        for name, (fn, ref, kw) in FORWARD.items():
            np.testing.assert_allclose(fn(x, **kw), ref(x64), **TOL[dtype], err_msg=name)
        dout = data((n,), dtype, seed=n)
        d64 = dout.astype(np.float64)
        np.testing.assert_allclose(A.gelu_backward(dout, x, "tanh"),
                                   d64 * _fd(ref_gelu_tanh, x64, 1e-5),
                                   rtol=1e-4, atol=1e-5 if dtype == np.float32 else 1e-9)
    specials = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e4, 1e4], dtype)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(A.sigmoid_forward(specials), [np.nan, 0, 1, .5, .5, 0, 1])
        np.testing.assert_array_equal(A.tanh_forward(specials), [np.nan, -1, 1, -0.0, 0, -1, 1])
        assert np.signbit(A.tanh_forward(specials)[3])
        np.testing.assert_array_equal(A.gelu_forward(specials[2:], "tanh"), [np.inf, 0, 0, 0, 1e4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_vector_bodies_give_the_portable_bits(simd_cap, dtype):
    """relu forward and backward are selections: every SIMD level must give the portable
    loop's bits, nan kept, -0.0 -> +0.0, on lengths that hit every vector tail."""
    specials = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-30, 1e-30], dtype)
    results = {}
    for level in SIMD_LEVELS:
        simd_cap(level)
        got = []
        for n in (1, 3, 7, 8, 15, 16, 17, 33, 1001):
            x = np.concatenate([specials, data((n,), dtype, seed=n)])
            dout = data(x.shape, dtype, seed=n + 1)
            got += [A.relu_forward(x), A.relu_backward(dout, x)]
        results[level] = got
    for level, got in results.items():
        for a, b in zip(got, results["portable"]):
            np.testing.assert_array_equal(a, b, err_msg=level)
            assert np.array_equal(np.signbit(a), np.signbit(b)), level
    y = results["portable"][0][:7]
    np.testing.assert_array_equal(y, [np.nan, 0, np.inf, 0, 0, 0, dtype(1e-30)])
    assert not np.signbit(y[3])


ERR_FWD, ERR_BWD = 2.5e-7, 3e-7   # measured at AVX-512: 1.4e-7 and 1.5e-7 (about 2 ulp of 1)


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_float32_exact_gelu_dense(simd_cap, level):
    """The float32 vector GELU (polynomial erf) over a dense sweep and the branch edges of its
    erf (|x / sqrt 2| = 1 and 3.92): within ERR_FWD of the float64 reference (relative above
    1), its gradient within ERR_BWD; -0, infinities and NaN as the libm loop gives them."""
    simd_cap(level)
    edges = np.sqrt(2) * np.array([1.0, -1.0, 3.92, -3.92])
    x = np.concatenate([np.linspace(-12, 12, 400_001), edges - 1e-6, edges, edges + 1e-6])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    y64 = A.gelu_forward(x64)
    err = np.abs(A.gelu_forward(x) - y64) / np.maximum(1.0, np.abs(y64))
    assert err.max() <= ERR_FWD, err.max()
    g64 = A.gelu_backward(np.ones_like(x64), x64)
    assert np.abs(A.gelu_backward(np.ones_like(x), x) - g64).max() <= ERR_BWD
    specials = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0], np.float32)
    with np.errstate(invalid="ignore"):
        got = A.gelu_forward(specials)
        np.testing.assert_array_equal(got, A.gelu_forward(specials.astype(np.float64)))
        assert np.signbit(got[3])


# ------------------------------------------------------------------ out=, layouts, bad input

def test_out_and_in_place():
    x = data((7, 3), np.float64)
    out = np.empty_like(x)
    assert A.relu_forward(x, out=out) is out
    np.testing.assert_array_equal(out, ref_relu(x))


def test_non_contiguous_input_is_copied():
    x = data((8, 6), np.float32)
    np.testing.assert_array_equal(A.tanh_forward(x.T), A.tanh_forward(np.ascontiguousarray(x.T)))


def test_bad_input_raises():
    x = data((4, 5), np.float32)
    with pytest.raises(TypeError, match="x: expected float32 or float64, got dtype int64"):
        A.relu_forward(np.arange(4))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        A.sigmoid_forward([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype mismatch"):
        A.tanh_backward(x, x.astype(np.float64))
    with pytest.raises(ValueError, match=r"y: expected shape \(4, 5\), got \(5, 4\)"):
        A.sigmoid_backward(x, x.T.copy())
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        A.gelu_forward(x, approximate="erf")
    with pytest.raises(TypeError, match="out has dtype float64"):
        A.relu_forward(x, out=np.empty((4, 5)))
    with pytest.raises(ValueError, match="out: expected shape"):
        A.relu_forward(x, out=np.empty((5, 4), np.float32))
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        A.relu_forward(x, out=np.empty((5, 4), np.float32).T)


def test_dispatched_simd_reports_a_level():
    assert A.dispatched_simd() in ("portable", "avx2+fma", "avx512")
