"""Tests for nncore._kernels.gemm against numpy.matmul (float64 reference).

Every SIMD level the CPU has, both paths (packed and direct), small block sizes that put block
edges inside small matrices, all four transpose combinations, strided views, alpha/beta/bias,
NaN/Inf, empty dimensions, thread-count determinism and bad input.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from nncore._kernels import gemm as G
from nncore._kernels._parallel import get_num_threads, openmp_enabled, set_num_threads

LEVELS = ["portable", "avx2+fma", "avx512"]
AVAILABLE = [lv for lv in LEVELS if G._set_simd_level_for_testing(lv) == lv]
G._set_simd_level_for_testing(None)
DTYPES = [np.float32, np.float64]
TRANS = list(itertools.product([False, True], repeat=2))


@pytest.fixture(autouse=True)
def _reset_hooks():
    threads = get_num_threads()
    yield
    G._set_simd_level_for_testing(None)
    G._set_blocking_for_testing()
    G._force_path_for_testing("auto")
    G._set_shared_packing_for_testing(None)
    set_num_threads(threads)


def _operands(rng, M, N, K, dtype, trans_a, trans_b):
    """Stored a, b such that op(a) is (M, K) and op(b) is (K, N)."""
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    return a, b


def _op(x, trans):
    return x.T if trans else x


def assert_gemm_close(c, a_op, b_op, alpha=1.0, beta=0.0, c0=None, bias=None):
    """|c - ref| <= (K + 4) * eps * (|alpha| |A||B| + |beta C0| + |bias|), elementwise.

    A rounding-error bound valid for any summation order, so it scales with K as it must.
    """
    a64, b64 = a_op.astype(np.float64), b_op.astype(np.float64)
    ref = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0:
        ref = ref + beta * c0.astype(np.float64)
        scale = scale + np.abs(beta * c0.astype(np.float64))
    if bias is not None:
        ref = ref + bias.astype(np.float64)
        scale = scale + np.abs(bias.astype(np.float64))
    K = a_op.shape[1]
    eps = np.finfo(c.dtype).eps
    tol = (K + 4) * eps * scale + np.finfo(c.dtype).tiny
    assert c.shape == ref.shape
    err = np.abs(c.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max err {err.max()} (tol there {tol.flat[err.argmax()]})"


# ------------------------------------------------------------------------ correctness

SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (7, 1, 97),
    (7, 97, 101),
    (101, 7, 97),
    (13, 31, 5),
    (14, 32, 64),
    (15, 33, 65),
    (29, 63, 200),
    (64, 10, 64),
    (6, 16, 3),
    (5, 17, 2),
]


@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("path", ["packed", "direct", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_levels_paths_transposes(level, path, dtype):
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing(path)
    rng = np.random.default_rng(0)
    for (M, N, K), (ta, tb) in itertools.product(SHAPES, TRANS):
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        c = G.gemm(a, b, trans_a=ta, trans_b=tb)
        assert c.dtype == dtype
        assert_gemm_close(c, _op(a, ta), _op(b, tb))


@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_block_edges_with_small_blocks(level, dtype):
    """Tiny MC/KC/NC put every block edge (just below, at, just above) in small matrices."""
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing("packed")
    plan = G._plan_for_testing(8, 8, 8, dtype)
    mr, nr = plan["mr"], plan["nr"]
    G._set_blocking_for_testing(mc=2 * mr, kc=16, nc=2 * nr)
    rng = np.random.default_rng(1)
    for d in (-1, 0, 1):
        M, N, K = 4 * mr + d, 4 * nr + d, 32 + d
        for ta, tb in TRANS:
            a, b = _operands(rng, M, N, K, dtype, ta, tb)
            c = G.gemm(a, b, trans_a=ta, trans_b=tb)
            assert_gemm_close(c, _op(a, ta), _op(b, tb))
        # epilogues on later K blocks, with alpha, beta and bias
        a, b = _operands(rng, M, N, K, dtype, False, False)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        bias = rng.standard_normal(N).astype(dtype)
        c = G.gemm(a, b, c0.copy(), alpha=0.5, beta=-2.0, bias=bias)
        assert_gemm_close(c, a, b, alpha=0.5, beta=-2.0, c0=c0, bias=bias)


@pytest.mark.parametrize("dtype", DTYPES)
def test_default_block_sizes_crossed(dtype):
    """Shapes just above the default KC, MC and NC (kept cheap by the other two dims)."""
    G._force_path_for_testing("packed")
    plan = G._plan_for_testing(8, 8, 8, dtype)
    rng = np.random.default_rng(2)
    mr, nr, kc, mc, nc = plan["mr"], plan["nr"], plan["kc"], plan["mc"], plan["nc"]
    shapes = [(30, 40, kc + d) for d in (-1, 0, 1)] + [(mc + d, 33, 20) for d in (-1, 0, 1)]
    shapes += [(3, nc + d, 5) for d in (-1, 0, 1)]
    shapes += [(mr + d, nr + e, 9) for d in (-1, 0, 1) for e in (-1, 0, 1)]
    for M, N, K in shapes:
        for ta, tb in TRANS:
            a, b = _operands(rng, M, N, K, dtype, ta, tb)
            assert_gemm_close(G.gemm(a, b, trans_a=ta, trans_b=tb), _op(a, ta), _op(b, tb))


@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_path_on_mlp_shapes(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 784)).astype(dtype)
    w = rng.standard_normal((128, 784)).astype(dtype)
    bias = rng.standard_normal(128).astype(dtype)
    dout = rng.standard_normal((64, 128)).astype(dtype)
    assert_gemm_close(G.gemm(x, w, trans_b=True, bias=bias), x, w.T, bias=bias)
    assert_gemm_close(G.gemm(x, w.T), x, w.T)  # the .T view flips trans_b without a copy
    assert_gemm_close(G.gemm(x.T, dout), x.T, dout)
    assert_gemm_close(G.gemm(dout, w), dout, w)
    a = rng.standard_normal((300, 200)).astype(dtype)
    b = rng.standard_normal((200, 310)).astype(dtype)
    assert_gemm_close(G.gemm(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_without_unit_stride_and_odd_strides(dtype):
    rng = np.random.default_rng(4)
    base = rng.standard_normal((40, 50)).astype(dtype)
    other = rng.standard_normal((50, 60)).astype(dtype)
    views_a = [base[1:30, 3:40], base[::2, :37], base[:29, ::2], base[::-1, :37], base.T[:37, :29],
               np.broadcast_to(base[0], (29, 50))[:, :37]]
    for va in views_a:
        K = va.shape[1]
        for vb in [other[:K, :], other[:K, ::3], other[:K, 1:].T.T, other.T[:, :K].T,
                   other[K - 1::-1, :]]:
            assert_gemm_close(G.gemm(va, vb), va, vb)
            assert_gemm_close(G.gemm(va.T, vb, trans_a=True), va, vb)
            assert_gemm_close(G.gemm(va, vb.T, trans_b=True), va, vb)


@pytest.mark.parametrize("path", ["packed", "direct", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_alpha_beta_bias_out(path, dtype):
    G._force_path_for_testing(path)
    rng = np.random.default_rng(5)
    for (M, N, K), (ta, tb) in itertools.product([(7, 97, 101), (33, 65, 20)], TRANS):
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        bias = rng.standard_normal(N).astype(dtype)
        for alpha, beta, bb in [(1.0, 1.0, None), (2.5, 0.0, bias), (-1.0, 0.5, bias),
                                (0.0, 1.0, None), (1.0, 0.0, bias)]:
            out = c0.copy()
            res = G.gemm(a, b, out, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta, bias=bb)
            assert res is out
            assert_gemm_close(out, _op(a, ta), _op(b, tb), alpha, beta, c0, bb)
    # out with a row stride larger than N (a slice of a wider array) keeps the rest intact
    a, b = _operands(rng, 9, 20, 11, dtype, False, False)
    wide = np.full((9, 31), 7.0, dtype)
    G.gemm(a, b, wide[:, 5:25])
    assert_gemm_close(wide[:, 5:25], a, b)
    assert np.all(wide[:, :5] == 7) and np.all(wide[:, 25:] == 7)
    # a non-contiguous bias is accepted
    bias2 = rng.standard_normal(40).astype(dtype)[::2]
    assert_gemm_close(G.gemm(a, b, bias=bias2), a, b, bias=bias2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_path_copies_aliasing_panels(dtype):
    """op(B) rows 2 KiB apart (the im2col shapes) are copied panel by panel on the direct path:
    same bits as reading them in place through a row stride that does not alias."""
    G._force_path_for_testing("direct")
    rng = np.random.default_rng(18)
    for M, K, N in [(40, 27, 512 if dtype == np.float32 else 256), (29, 33, 1024)]:
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((K, N)).astype(dtype)
        wide = np.zeros((K, N + 16), dtype)  # same values, row stride not a multiple of 2 KiB
        wide[:, :N] = b
        bias = rng.standard_normal(N).astype(dtype)
        c = G.gemm(a, b, bias=bias, activation="relu")
        np.testing.assert_array_equal(c, G.gemm(a, wide[:, :N], bias=bias, activation="relu"))
        assert_gemm_close(G.gemm(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_product_path(dtype):
    """A @ B.T as 4 x 4 tiles of dot products (AVX-512; elsewhere the forced path falls back
    to direct): every tile remainder, masked K tails, strided rows, epilogues, NaN, threads."""
    from nncore._kernels import activation as A

    G._force_path_for_testing("dot")
    rng = np.random.default_rng(17)
    for M, N, K in [(1, 1, 1), (5, 7, 17), (32, 27, 300), (3, 9, 16), (13, 2, 129)]:
        base_a = rng.standard_normal((M, K + 3)).astype(dtype)
        b = rng.standard_normal((N, K)).astype(dtype)
        a = base_a[:, 2:K + 2]  # rows with a stride larger than K
        bias = rng.standard_normal(N).astype(dtype)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        out = G.gemm(a, b, c0.copy(), trans_b=True, alpha=-0.5, beta=1.5, bias=bias)
        assert_gemm_close(out, a, b.T, -0.5, 1.5, c0, bias)
        np.testing.assert_array_equal(
            G.gemm(a, b, c0.copy(), trans_b=True, alpha=-0.5, beta=1.5, bias=bias,
                   activation="gelu"), A.gelu_forward(out))
        relu = G.gemm(a, b, trans_b=True, bias=bias, activation="relu")
        plain = G.gemm(a, b, trans_b=True, bias=bias)
        np.testing.assert_array_equal(relu, np.where(plain <= 0, 0, plain))
        a_nan = a.copy()
        a_nan[0, K // 2] = np.nan
        assert np.all(np.isnan(G.gemm(a_nan, b, trans_b=True)[0]))
    G._force_path_for_testing("auto")
    a = rng.standard_normal((30, 1000)).astype(dtype)
    b = rng.standard_normal((200, 1000)).astype(dtype)
    if G.dispatched_simd() == "avx512":
        assert G._plan_for_testing(30, 200, 1000, dtype, trans_b=True)["dot"]
    results = []
    for nt in (1, 2):
        set_num_threads(nt)
        results.append(G.gemm(a, b, trans_b=True))
    np.testing.assert_array_equal(results[0], results[1])
    assert_gemm_close(results[0], a, b.T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_thin_panel_kernels_agree(dtype):
    """Tall products with 1-8 (and NR + 1-8) columns: the column-vector kernel (on the direct
    path for a last panel of <= 4 columns, or the whole product on the column path) and the
    row-broadcast kernels give the same bits, with every epilogue, and match NumPy."""
    rng = np.random.default_rng(16)
    for N in [1, 2, 3, 4, 5, 8, 33, 36]:
        for M, K, ta in [(101, 75, False), (50, 9, True), (24, 1, False)]:
            a, b = _operands(rng, M, N, K, dtype, ta, False)
            bias = rng.standard_normal(N).astype(dtype)
            c0 = rng.standard_normal((M, N)).astype(dtype)
            outs = []
            for path in ("direct", "direct_rows", "column"):
                G._force_path_for_testing(path)
                outs.append([G.gemm(a, b, c0.copy(), trans_a=ta, alpha=a_, beta=b_, bias=bb,
                                    activation=act)
                             for a_, b_, bb, act in [(1.0, 0.0, None, "none"),
                                                     (0.5, 2.0, bias, "none"),
                                                     (0.5, 2.0, bias, "relu"),
                                                     (1.0, 1.0, bias, "gelu")]])
            for other in outs[1:]:
                for x, y in zip(outs[0], other):
                    np.testing.assert_array_equal(x, y, err_msg=f"{(M, N, K, ta)}")
            assert_gemm_close(outs[0][0], _op(a, ta), b)
            assert_gemm_close(outs[0][1], _op(a, ta), b, 0.5, 2.0, c0, bias)


COLUMN_LEVELS = [lv for lv in AVAILABLE if lv != "portable"]


@pytest.mark.parametrize("level", COLUMN_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_path_vs_numpy(level, dtype):
    """The column-vector path (thin N, vectors down M): odd M, N = 1-16 (beyond the kernel's
    column limit the path falls back to the direct one), K from 1 to 257, all transposes,
    alpha/beta/bias and the fused activations, against a float64 NumPy reference."""
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing("column")
    rng = np.random.default_rng(21)
    cases = list(itertools.product([1, 15, 33], range(1, 17), [1, 3, 75], TRANS))
    cases += [(M, N, K, tt) for M, N, K, tt in itertools.product(
        [1, 33, 97], [1, 6, 12], [150, 257], TRANS)]
    cases += [(50177, N, K, (ta, False)) for N, K, ta in [(6, 75, False), (1, 3, True),
                                                          (12, 1, False), (16, 3, False)]]
    for i, (M, N, K, (ta, tb)) in enumerate(cases):
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        assert_gemm_close(G.gemm(a, b, trans_a=ta, trans_b=tb), _op(a, ta), _op(b, tb))
        if i % 3 == 0 or M == 50177:
            bias = rng.standard_normal(N).astype(dtype)
            c0 = rng.standard_normal((M, N)).astype(dtype)
            act = ["none", *ACTS][i % 4]
            out = G.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=-0.5, beta=2.0,
                         bias=bias, activation=act)
            pre = (-0.5 * (_op(a, ta).astype(np.float64) @ _op(b, tb).astype(np.float64))
                   + 2.0 * c0 + bias)
            scale = (0.5 * np.abs(_op(a, ta)).astype(np.float64) @ np.abs(_op(b, tb))
                     + 2.0 * np.abs(c0) + np.abs(bias) + 1.0)
            tol = 8 * (K + 4) * np.finfo(dtype).eps * scale
            err = np.abs(out - _act_ref(pre, act))
            assert np.all(err <= tol), f"{(M, N, K, ta, tb, act)}: max err {err.max()}"


@pytest.mark.parametrize("level", COLUMN_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_path_streaming_packing(level, dtype):
    """Full panels of a row-major op(A) are packed block by block inside the column kernel's k
    loop (streaming): the same bits as packing each panel first ("column_packed"), for K
    around the transpose block (K < block falls back), partial last blocks and panels, a row
    stride > K, every epilogue, 1-3 threads, and a float64 NumPy reference."""
    G._set_simd_level_for_testing(level)
    rng = np.random.default_rng(24)
    for M, N, K in [(64, 10, 128), (96, 1, 75), (97, 12, 9), (33, 6, 3), (31, 4, 16),
                    (130, 7, 4), (65, 11, 5), (200, 3, 257)]:
        big = rng.standard_normal((M, K + 3)).astype(dtype)
        for a in (np.ascontiguousarray(big[:, :K]), big[:, 1:K + 1]):
            b = rng.standard_normal((K, N)).astype(dtype)
            bias = rng.standard_normal(N).astype(dtype)
            c0 = rng.standard_normal((M, N)).astype(dtype)
            outs = []
            for path, nt in [("column_packed", 1), ("column", 1), ("column", 2), ("column", 3)]:
                G._force_path_for_testing(path)
                set_num_threads(nt)
                outs.append([G.gemm(a, b, c0.copy(), alpha=a_, beta=b_, bias=bb, activation=act)
                             for a_, b_, bb, act in [(1.0, 0.0, None, "none"),
                                                     (-0.5, 2.0, bias, "relu"),
                                                     (1.0, 1.0, bias, "gelu_tanh")]])
            for other in outs[1:]:
                for x, y in zip(outs[0], other):
                    np.testing.assert_array_equal(x, y, err_msg=f"{(M, N, K, a.strides)}")
            assert_gemm_close(outs[1][0], a, b)
            pre = -0.5 * (a.astype(np.float64) @ b.astype(np.float64)) + 2.0 * c0 + bias
            scale = (0.5 * np.abs(a).astype(np.float64) @ np.abs(b) + 2.0 * np.abs(c0)
                     + np.abs(bias) + 1.0)
            err = np.abs(outs[1][1] - np.maximum(pre, 0))
            assert np.all(err <= 8 * (K + 4) * np.finfo(dtype).eps * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_path_strided_views(dtype):
    """Row-strided op(A) (and a view of A.T), op(B) with a row stride > N, out a column slice
    of a wider array (ldc > N): only out's slice is written."""
    G._force_path_for_testing("column")
    rng = np.random.default_rng(22)
    for M, N, K in [(50, 6, 75), (97, 12, 9), (33, 1, 257), (64, 10, 128)]:
        big_a = rng.standard_normal((2 * M, K + 5)).astype(dtype)
        a = big_a[::2, 2:K + 2]
        big_b = rng.standard_normal((K, N + 7)).astype(dtype)
        b = big_b[:, 3:N + 3]
        wide = rng.standard_normal((M, N + 4)).astype(dtype)
        keep = wide.copy()
        out = wide[:, 1:N + 1]
        G.gemm(a, b, out, beta=0.5, bias=np.ones(N, dtype))
        ref_c0 = keep[:, 1:N + 1]
        assert_gemm_close(out, a, b, beta=0.5, c0=ref_c0, bias=np.ones(N, dtype))
        np.testing.assert_array_equal(wide[:, 0], keep[:, 0])
        np.testing.assert_array_equal(wide[:, N + 1:], keep[:, N + 1:])
        at = np.ascontiguousarray(big_a.T)[2:K + 2, ::2]  # op(A) = at.T, strided columns
        assert_gemm_close(G.gemm(at, b, trans_a=True), at.T, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_path_plan_and_threads(dtype):
    """The planner picks the column path for tall thin products (AVX-512/AVX2), keeps the dot
    path for A @ B.T with long K, and the result is bit-identical for 1, 2 and 3 threads
    (threads split M on whole panels; each element is computed the same way anyway)."""
    rng = np.random.default_rng(23)
    if G.dispatched_simd() == "avx512":
        assert G._plan_for_testing(784, 2, 64, dtype)["column"]
        assert G._plan_for_testing(64, 10, 128, dtype)["column"]
        assert G._plan_for_testing(6401, 12, 75, dtype, 2)["column"]
        assert not G._plan_for_testing(50177, 12, 75, dtype)["column"]  # A > 4 MiB
        assert not G._plan_for_testing(64, 10, 784, dtype, trans_b=True)["column"]
        assert not G._plan_for_testing(784, 13, 64, dtype)["column"]
        if openmp_enabled():
            assert G._plan_for_testing(6401, 12, 75, dtype, 2)["nparts"] == 2
    for M, N, K, ta, tb in [(50177, 6, 75, False, False), (6401, 12, 150, True, False),
                            (785, 2, 64, False, True), (3001, 10, 257, False, False)]:
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        bias = rng.standard_normal(N).astype(dtype)
        for path in ("auto", "column"):
            G._force_path_for_testing(path)
            results = []
            for nt in (1, 2, 3):
                set_num_threads(nt)
                results.append(G.gemm(a, b, trans_a=ta, trans_b=tb, bias=bias,
                                      activation="relu"))
            for r in results[1:]:
                np.testing.assert_array_equal(r, results[0], err_msg=f"{(M, N, K, path)}")
    G._force_path_for_testing("auto")
    G._set_simd_level_for_testing("portable")
    assert not G._plan_for_testing(784, 2, 64, dtype)["column"]


@pytest.mark.parametrize("path", ["packed", "direct", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_ignores_nan_in_out(path, dtype):
    G._force_path_for_testing(path)
    rng = np.random.default_rng(6)
    a, b = _operands(rng, 17, 35, 19, dtype, False, False)
    out = np.full((17, 35), np.nan, dtype)
    G.gemm(a, b, out)
    assert np.all(np.isfinite(out))
    assert_gemm_close(out, a, b)


@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("path", ["packed", "direct", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_propagate_like_numpy(level, path, dtype):
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing(path)
    rng = np.random.default_rng(7)
    a, b = _operands(rng, 19, 37, 23, dtype, False, False)
    a[3, 5] = np.nan
    a[10, 2] = np.inf
    b[7, 30] = -np.inf
    b[2, 4] = 0.0  # inf * 0 -> nan, as numpy
    with np.errstate(invalid="ignore"):
        ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
        c = G.gemm(a, b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(c), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(c), np.isneginf(ref))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_dims(dtype):
    z = np.zeros
    assert G.gemm(z((0, 5), dtype), z((5, 3), dtype)).shape == (0, 3)
    assert G.gemm(z((4, 5), dtype), z((5, 0), dtype)).shape == (4, 0)
    c = G.gemm(z((4, 0), dtype), z((0, 3), dtype))
    np.testing.assert_array_equal(c, np.zeros((4, 3)))
    out = np.full((4, 3), np.nan, dtype)
    G.gemm(z((4, 0), dtype), z((0, 3), dtype), out)  # beta == 0 overwrites garbage with zeros
    np.testing.assert_array_equal(out, np.zeros((4, 3)))
    out = np.ones((4, 3), dtype)
    bias = np.arange(3, dtype=dtype)
    G.gemm(z((4, 0), dtype), z((0, 3), dtype), out, beta=2.0, bias=bias)
    np.testing.assert_array_equal(out, 2.0 + np.arange(3)[None, :] + np.zeros((4, 1)))
    assert G.gemm_batched(z((0, 2, 3), dtype), z((0, 3, 4), dtype)).shape == (0, 2, 4)
    np.testing.assert_array_equal(G.gemm_batched(z((2, 2, 0), dtype), z((2, 0, 4), dtype)),
                                  np.zeros((2, 2, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_aliasing_an_input(dtype):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((20, 20)).astype(dtype)
    b = rng.standard_normal((20, 20)).astype(dtype)
    a0 = a.copy()
    G.gemm(a, b, a)
    assert_gemm_close(a, a0, b)
    b0 = b.copy()
    G.gemm(a0, b, b, beta=1.0)
    assert_gemm_close(b, a0, b0, beta=1.0, c0=b0)


# ------------------------------------------------------------------------ threads

@pytest.mark.parametrize("dtype", DTYPES)
def test_bit_identical_for_1_and_2_threads(dtype):
    rng = np.random.default_rng(9)
    shapes = [(64, 128, 784), (784, 128, 64), (300, 37, 200), (37, 300, 200), (400, 500, 300),
              (101, 97, 7)]
    for (M, N, K), (ta, tb) in itertools.product(shapes, TRANS):
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        bias = rng.standard_normal(N).astype(dtype)
        results = []
        for nt in (1, 2, 3):
            set_num_threads(nt)
            results.append(G.gemm(a, b, trans_a=ta, trans_b=tb, bias=bias))
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])
    if openmp_enabled():
        assert G._plan_for_testing(400, 500, 300, dtype, 2)["nparts"] == 2


@pytest.mark.skipif(not openmp_enabled(), reason="needs OpenMP")
@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shared_b_packing_bit_identical(level, dtype):
    """The threads' shared op(B) panels (split M), with several NC and KC blocks and partial
    tiles everywhere: equal to 1 thread bit for bit, and to NumPy within rounding."""
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing("packed")
    plan = G._plan_for_testing(8, 8, 8, dtype)
    mr, nr = plan["mr"], plan["nr"]
    G._set_blocking_for_testing(mc=2 * mr, kc=24, nc=2 * nr)
    G._set_shared_packing_for_testing(True)
    rng = np.random.default_rng(14)
    M, N, K = 80 * mr + 3, 5 * nr + 7, 301
    assert G._plan_for_testing(M, N, K, dtype, 2)["shared_b"]
    G._set_shared_packing_for_testing(False)
    assert not G._plan_for_testing(M, N, K, dtype, 2)["shared_b"]
    for ta, tb in TRANS:
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        bias = rng.standard_normal(N).astype(dtype)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        results = []
        for nt, shared in ((1, True), (2, True), (3, True), (2, False)):
            set_num_threads(nt)
            G._set_shared_packing_for_testing(shared)
            results.append(G.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=0.5, beta=2.0,
                                  bias=bias, activation="gelu_tanh" if ta else "none"))
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])
        if not ta:
            assert_gemm_close(results[0], a, _op(b, tb), 0.5, 2.0, c0, bias)


@pytest.mark.skipif(not openmp_enabled(), reason="needs OpenMP")
def test_concurrent_callers_of_the_shared_path():
    """Two Python threads in threaded GEMMs at once: the second takes its own B buffer."""
    import threading

    set_num_threads(2)
    G._set_shared_packing_for_testing(True)
    rng = np.random.default_rng(15)
    a = rng.standard_normal((300, 400)).astype(np.float32)
    b = rng.standard_normal((400, 350)).astype(np.float32)
    assert G._plan_for_testing(300, 350, 400, np.float32, 2)["shared_b"]
    expect = G.gemm(a, b)
    bad = []

    def work():
        for _ in range(20):
            if not np.array_equal(G.gemm(a, b), expect):
                bad.append(1)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_batched(dtype):
    rng = np.random.default_rng(10)
    for (Bt, M, N, K), (ta, tb) in itertools.product([(1, 7, 9, 5), (5, 33, 17, 40)], TRANS):
        a = rng.standard_normal((Bt, K, M) if ta else (Bt, M, K)).astype(dtype)
        b = rng.standard_normal((Bt, N, K) if tb else (Bt, K, N)).astype(dtype)
        results = []
        for nt in (1, 2):
            set_num_threads(nt)
            results.append(G.gemm_batched(a, b, trans_a=ta, trans_b=tb))
        np.testing.assert_array_equal(results[0], results[1])
        for i in range(Bt):
            assert_gemm_close(results[0][i], _op(a[i], ta), _op(b[i], tb))
    # views: a transposed batch (last axes swapped) and a strided batch
    a = rng.standard_normal((6, 12, 10)).astype(dtype)
    b = rng.standard_normal((3, 12, 8)).astype(dtype)
    c = G.gemm_batched(a[::2].transpose(0, 2, 1), b)
    for i in range(3):
        assert_gemm_close(c[i], a[2 * i].T, b[i])


# ------------------------------------------------------------------------ bad input

def test_bad_input_messages():
    f32, f64 = np.float32, np.float64
    a = np.zeros((64, 784), f32)
    with pytest.raises(ValueError, match=r"op\(a\) is \(64, 784\), op\(b\) is \(100, 128\)"):
        G.gemm(a, np.zeros((100, 128), f32))
    with pytest.raises(TypeError, match="dtype mismatch"):
        G.gemm(a, np.zeros((784, 2), f64))
    with pytest.raises(TypeError, match="int64"):
        G.gemm(np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"2-D.*\(5,\)"):
        G.gemm(np.zeros(5, f32), np.zeros((5, 2), f32))
    with pytest.raises(TypeError, match="ndarray"):
        G.gemm([[1.0]], np.zeros((1, 1), f32))
    b = np.zeros((784, 3), f32)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        G.gemm(a, b, bias=np.zeros(4, f32))
    with pytest.raises(TypeError, match="bias"):
        G.gemm(a, b, bias=np.zeros(3, f64))
    with pytest.raises(ValueError, match=r"out must have shape \(64, 3\)"):
        G.gemm(a, b, np.zeros((3, 64), f32))
    with pytest.raises(TypeError, match="out"):
        G.gemm(a, b, np.zeros((64, 3), f64))
    with pytest.raises(ValueError, match="contiguous"):
        G.gemm(a, b, np.zeros((3, 64), f32).T)
    with pytest.raises(ValueError, match="beta"):
        G.gemm(a, b, beta=1.0)
    ro = np.zeros((64, 3), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        G.gemm(a, b, ro)
    with pytest.raises(ValueError, match=r"op\(a\) is \(2, 2, 3\)"):
        G.gemm_batched(np.zeros((2, 2, 3), f32), np.zeros((2, 4, 5), f32))
    with pytest.raises(ValueError, match="batch"):
        G.gemm_batched(np.zeros((2, 2, 3), f32), np.zeros((3, 3, 5), f32))
    with pytest.raises(ValueError, match="3-D"):
        G.gemm_batched(np.zeros((2, 3), f32), np.zeros((3, 5), f32))


def test_dispatched_simd_names_a_kernel():
    assert G.dispatched_simd() in LEVELS
    assert G.dispatched_simd() == AVAILABLE[-1]


def test_nncore_simd_env_caps_the_kernel():
    code = ("import numpy as np; from nncore._kernels import gemm as G; "
            "a = np.ones((3, 5)); print(G.dispatched_simd(), G.gemm(a, a.T).sum())")
    env = dict(os.environ, NNCORE_SIMD="portable")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["portable", "45.0"]


# ------------------------------------------------------------------------ fused activations

def _act_ref(x, activation):
    """NumPy reference in float64."""
    from math import erf

    if activation == "relu":
        return np.where(x <= 0, 0.0, x)
    if activation == "gelu":
        return x * 0.5 * (1.0 + np.vectorize(erf, otypes=[np.float64])(x / np.sqrt(2.0)))
    if activation == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    return x


ACTS = ["relu", "gelu", "gelu_tanh"]


@pytest.mark.parametrize("level", AVAILABLE)
@pytest.mark.parametrize("path", ["packed", "direct", "column"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_activation_matches_unfused(level, path, dtype):
    """act(gemm) fused == the unfused result passed through the activation kernel, bit for
    bit, on every path, with several K blocks (the activation must run on the last only)."""
    from nncore._kernels import activation as A

    G._set_simd_level_for_testing(level)
    G._force_path_for_testing(path)
    G._set_blocking_for_testing(kc=16)
    rng = np.random.default_rng(11)
    for (M, N, K), (ta, tb) in itertools.product([(15, 33, 50), (1, 7, 1), (29, 97, 16)],
                                                 TRANS):
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        bias = rng.standard_normal(N).astype(dtype)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        base = G.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=0.7, beta=0.5, bias=bias)
        for act in ACTS:
            out = G.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=0.7, beta=0.5,
                         bias=bias, activation=act)
            if act == "relu":
                expect = np.where(base <= 0, 0, base).astype(dtype)
            else:
                expect = A.gelu_forward(base, "none" if act == "gelu" else "tanh")
            np.testing.assert_array_equal(out, expect, err_msg=f"{act} {(M, N, K, ta, tb)}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTS)
def test_fused_activation_vs_numpy(dtype, activation):
    rng = np.random.default_rng(12)
    for M, N, K in [(64, 10, 128), (33, 65, 700), (200, 300, 40)]:
        a, b = _operands(rng, M, N, K, dtype, False, True)
        bias = rng.standard_normal(N).astype(dtype)
        out = G.gemm(a, b, trans_b=True, bias=bias, activation=activation)
        ref = _act_ref(a.astype(np.float64) @ b.T.astype(np.float64) + bias, activation)
        tol = 64 * np.finfo(dtype).eps * np.sqrt(K) * (1 + np.abs(ref))
        np.testing.assert_array_less(np.abs(out - ref), tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_activation_nan_k0_and_threads(dtype):
    rng = np.random.default_rng(13)
    a, b = _operands(rng, 40, 50, 30, dtype, False, False)
    a[3, 4] = np.nan
    for act in ACTS:
        c = G.gemm(a, b, activation=act)
        assert np.all(np.isnan(c[3])) and np.isfinite(np.delete(c, 3, axis=0)).all()
    # K == 0: act(beta * C + bias)
    out = np.full((3, 4), -2.0, dtype)
    bias = np.array([-1.0, 0.5, 2.0, np.nan], dtype)
    G.gemm(np.zeros((3, 0), dtype), np.zeros((0, 4), dtype), out, beta=1.0, bias=bias,
           activation="relu")
    np.testing.assert_array_equal(out, np.tile(np.array([0, 0, 0, np.nan], dtype), (3, 1)))
    # thread count never changes a bit, activation included
    a, b = _operands(rng, 300, 270, 600, dtype, False, False)
    for act in ACTS:
        results = []
        for nt in (1, 2):
            set_num_threads(nt)
            results.append(G.gemm(a, b, activation=act))
        np.testing.assert_array_equal(results[0], results[1])


def test_bad_activation():
    a = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"activation must be one of .*'sigmoid'"):
        G.gemm(a, a, activation="sigmoid")


# ------------------------------------------------------------------------ fuzz

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(M=st.integers(1, 40), N=st.integers(1, 70), K=st.integers(1, 40),
                  ta=st.booleans(), tb=st.booleans(), f32=st.booleans(),
                  path=st.sampled_from(["auto", "packed", "direct", "column"]),
                  level=st.sampled_from(AVAILABLE), seed=st.integers(0, 2**16))
def test_fuzz_shapes(M, N, K, ta, tb, f32, path, level, seed):
    G._set_simd_level_for_testing(level)
    G._force_path_for_testing(path)
    G._set_blocking_for_testing(kc=17)
    try:
        dtype = np.float32 if f32 else np.float64
        rng = np.random.default_rng(seed)
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        bias = rng.standard_normal(N).astype(dtype)
        assert_gemm_close(G.gemm(a, b, trans_a=ta, trans_b=tb, bias=bias), _op(a, ta),
                          _op(b, tb), bias=bias)
    finally:
        G._set_simd_level_for_testing(None)
        G._force_path_for_testing("auto")
        G._set_blocking_for_testing()


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(M=st.integers(0, 50), N=st.integers(0, 80), K=st.integers(0, 60),
                  ta=st.booleans(), tb=st.booleans(), f32=st.booleans(),
                  act=st.sampled_from(["none", *ACTS]), alpha=st.sampled_from([1.0, -0.5]),
                  beta=st.sampled_from([0.0, 1.0, 2.0]), nan=st.booleans(),
                  blocks=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 3)),
                  seed=st.integers(0, 2**16))
def test_fuzz_epilogues_blocks_threads(M, N, K, ta, tb, f32, act, alpha, beta, nan, blocks,
                                       seed):
    """Random shapes (empty dims included) and block sizes (MC, NC in micro-tiles, any KC)
    through the packed path with every epilogue: close to NumPy, NaN where NumPy has NaN, and
    bit-identical for 1 and 2 threads."""
    dtype = np.float32 if f32 else np.float64
    plan = G._plan_for_testing(8, 8, 8, dtype)
    G._force_path_for_testing("packed")
    G._set_blocking_for_testing(mc=blocks[0] * plan["mr"], kc=blocks[1],
                                nc=blocks[2] * plan["nr"])
    threads = get_num_threads()
    try:
        rng = np.random.default_rng(seed)
        a, b = _operands(rng, M, N, K, dtype, ta, tb)
        if nan and a.size:
            a.flat[rng.integers(a.size)] = np.nan
        c0 = rng.standard_normal((M, N)).astype(dtype)
        bias = rng.standard_normal(N).astype(dtype)
        results = []
        for nt in (1, 2):
            set_num_threads(nt)
            results.append(G.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=alpha,
                                  beta=beta, bias=bias, activation=act))
        np.testing.assert_array_equal(results[0], results[1])
        with np.errstate(invalid="ignore"):
            pre = (alpha * (_op(a, ta).astype(np.float64) @ _op(b, tb).astype(np.float64))
                   + beta * c0 + bias)
        ref = _act_ref(pre, act)
        np.testing.assert_array_equal(np.isnan(results[0]), np.isnan(ref))
        ok = ~np.isnan(ref)
        scale = (np.abs(_op(a, ta)).astype(np.float64) @ np.abs(_op(b, tb)) + np.abs(c0)
                 * abs(beta) + np.abs(bias) + 1.0)
        tol = 8 * (K + 4) * np.finfo(dtype).eps * scale
        assert np.all(np.abs(results[0][ok] - ref[ok]) <= tol[ok])
    finally:
        set_num_threads(threads)
        G._force_path_for_testing("auto")
        G._set_blocking_for_testing()
