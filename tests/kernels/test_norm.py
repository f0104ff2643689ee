"""Kernel tests for nncore._kernels.norm: batch-norm forward (train/eval, running stats) and
backward against NumPy references, thread independence, every SIMD level, bad input."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import norm as K

DTYPES = [np.float32, np.float64]
SHAPES = [(2, 1), (7, 3), (97, 5), (5, 4, 9), (3, 2, 1), (4, 3, 5, 7), (2, 16, 13, 17),
          (1, 3, 7, 3)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _bc(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def ref_forward(x, w, b, rm, rv, training, momentum, eps):
    """float64 reference -> (out, new_rm, new_rv)."""
    x = x.astype(np.float64)
    ax = _axes(x)
    if training:
        mean, var = x.mean(axis=ax), x.var(axis=ax)
        m = x.size // x.shape[1]
        new_rm = (1 - momentum) * rm + momentum * mean
        new_rv = (1 - momentum) * rv + momentum * var * m / (m - 1)
    else:
        mean, var, new_rm, new_rv = rm, rv, rm, rv
    out = (x - _bc(mean, x)) / np.sqrt(_bc(var, x) + eps) * _bc(w, x) + _bc(b, x)
    return out, new_rm, new_rv


def ref_backward(dy, x, w, training, eps, rm=None, rv=None):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    ax = _axes(x)
    if training:
        mean, var = x.mean(axis=ax), x.var(axis=ax)
    else:
        mean, var = rm, rv
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - _bc(mean, x)) * _bc(invstd, x)
    dbias = dy.sum(axis=ax)
    dweight = (dy * xhat).sum(axis=ax)
    if training:
        m = x.size // x.shape[1]
        dx = _bc(w * invstd, x) * (dy - _bc(dbias / m, x) - xhat * _bc(dweight / m, x))
    else:
        dx = dy * _bc(w * invstd, x)
    return dx, dweight, dbias


def _inputs(shape, dtype, seed=0):
    r = np.random.default_rng(seed)
    C = shape[1]
    x = (r.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w = r.standard_normal(C).astype(dtype)
    b = r.standard_normal(C).astype(dtype)
    rm = r.standard_normal(C).astype(dtype)
    rv = r.uniform(0.5, 2, C).astype(dtype)
    dy = r.standard_normal(shape).astype(dtype)
    return x, w, b, rm, rv, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_forward_backward_vs_numpy(shape, dtype, training):
    x, w, b, rm, rv, dy = _inputs(shape, dtype)
    exp_out, exp_rm, exp_rv = ref_forward(x, w, b, rm.astype(np.float64), rv.astype(np.float64),
                                          training, 0.1, 1e-5)
    rm_k, rv_k = rm.copy(), rv.copy()
    out, sm, si = K.batch_norm_forward(x, w, b, rm_k, rv_k, training, 0.1, 1e-5)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_allclose(out, exp_out, **TOL[dtype])
    np.testing.assert_allclose(rm_k, exp_rm, **TOL[dtype])
    np.testing.assert_allclose(rv_k, exp_rv, **TOL[dtype])
    dx, dw, db = K.batch_norm_backward(dy, x, sm, si, w, training)
    exp_dx, exp_dw, exp_db = ref_backward(dy, x, w, training, 1e-5, rm.astype(np.float64),
                                          rv.astype(np.float64))
    scale = max(1.0, float(np.abs(exp_db).max()), float(np.abs(exp_dw).max()))
    tol = dict(rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10 * scale)
    np.testing.assert_allclose(dx, exp_dx, **tol)
    np.testing.assert_allclose(dw, exp_dw, **tol)
    np.testing.assert_allclose(db, exp_db, **tol)


def test_no_affine_no_running_stats_and_no_dinp():
    x, w, b, rm, rv, dy = _inputs((6, 4, 5), np.float64)
    out, sm, si = K.batch_norm_forward(x, None, None, None, None, True)
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2)), 1, rtol=1e-4)
    dx, dw, db = K.batch_norm_backward(dy, x, sm, si, None, True, need_dinp=False)
    assert dx is None
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2)), rtol=1e-12)


def test_float32_large_mean_is_accurate():
    # sums in double: a large common offset must not destroy the variance
    r = np.random.default_rng(3)
    x = (1000 + r.standard_normal((64, 4, 10, 10))).astype(np.float32)
    out, _, _ = K.batch_norm_forward(x, None, None, None, None, True)
    exp, _, _ = ref_forward(x, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4), True, 0.1, 1e-5)
    np.testing.assert_allclose(out, exp, rtol=1e-3, atol=2e-3)


def test_threads_bit_identical():
    x, w, b, rm, rv, dy = _inputs((16, 8, 15, 17), np.float32)
    results = []
    old = _parallel.get_num_threads()
    try:
        for n in (1, 2):
            _parallel.set_num_threads(n)
            rm_k, rv_k = rm.copy(), rv.copy()
            out, sm, si = K.batch_norm_forward(x, w, b, rm_k, rv_k, True)
            results.append((out, rm_k, rv_k) + K.batch_norm_backward(dy, x, sm, si, w, True))
    finally:
        _parallel.set_num_threads(old)
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(a, b_)


def test_simd_levels_agree():
    """Portable / AVX2 / AVX-512 row loops give identical bits (no FMA contraction)."""
    code = (
        "import numpy as np\n"
        "from nncore._kernels import norm as K\n"
        "r = np.random.default_rng(0)\n"
        "x = r.standard_normal((8, 3, 11, 13)).astype(np.float32)\n"
        "dy = r.standard_normal(x.shape).astype(np.float32)\n"
        "o, sm, si = K.batch_norm_forward(x, None, None, None, None, True)\n"
        "dx, dw, db = K.batch_norm_backward(dy, x, sm, si, None, True)\n"
        "import sys\n"
        "sys.stdout.write(K.dispatched_simd() + ' ' + str(hash(o.tobytes() + dx.tobytes())))\n"
    )
    outs = {}
    for level in ("portable", "avx2", "avx512"):
        env = dict(os.environ, NNCORE_SIMD=level, PYTHONHASHSEED="0")
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        name, digest = res.stdout.split()
        outs[name] = digest
    assert len(set(outs.values())) == 1, outs


def test_bad_input():
    x = np.ones((4, 3, 5), np.float32)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        K.batch_norm_forward(np.ones((1, 3), np.float32), None, None, None, None, True)
    with pytest.raises(ValueError, match=r"expected shape \(3,\)"):
        K.batch_norm_forward(x, np.ones(4, np.float32), None, None, None, True)
    with pytest.raises(TypeError, match="dtype"):
        K.batch_norm_forward(x, np.ones(3, np.float64), None, None, None, True)
    with pytest.raises(ValueError, match="required when training=False"):
        K.batch_norm_forward(x, None, None, None, None, False)
    with pytest.raises(ValueError, match="both"):
        K.batch_norm_forward(x, None, None, np.zeros(3, np.float32), None, True)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        K.batch_norm_forward(np.ones(5, np.float32), None, None, None, None, True)
    with pytest.raises(TypeError):
        K.batch_norm_forward(np.ones((4, 3), np.int64), None, None, None, None, True)
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        K.batch_norm_forward(x, None, None, ro, np.ones(3, np.float32), True)
    _, sm, si = K.batch_norm_forward(x, None, None, None, None, True)
    with pytest.raises(ValueError, match="dout shape"):
        K.batch_norm_backward(np.ones((4, 3, 6), np.float32), x, sm, si, None, True)


def test_empty_batch_eval():
    x = np.zeros((0, 3, 4), np.float32)
    out, _, _ = K.batch_norm_forward(x, None, None, np.zeros(3, np.float32),
                                     np.ones(3, np.float32), False)
    assert out.shape == (0, 3, 4)


def test_benchmark_numpy_baseline_matches_kernel():
    """benchmarks/bench_norm.py's NumPy baseline does the same work as the kernel."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from nncore.bench.bench_norm import (
        numpy_batch_norm_forward_backward,
        numpy_dropout_forward_backward,
    )

    x, w, b, rm, rv, dy = _inputs((8, 4, 7, 5), np.float32)
    rm_np, rv_np, rm_k, rv_k = rm.copy(), rv.copy(), rm.copy(), rv.copy()
    out, dx, dw, db = numpy_batch_norm_forward_backward(x, w, b, rm_np, rv_np, dy)
    out_k, sm, si = K.batch_norm_forward(x, w, b, rm_k, rv_k, True)
    dx_k, dw_k, db_k = K.batch_norm_backward(dy, x, sm, si, w, True)
    for a, e in ((out, out_k), (dx, dx_k), (dw, dw_k), (db, db_k), (rm_np, rm_k),
                 (rv_np, rv_k)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)
    xs = np.ones(100_000, np.float32)
    y, dxs = numpy_dropout_forward_backward(xs, xs, 0.5, np.random.default_rng(0))
    assert set(np.unique(y)) == {0.0, 2.0} and abs((y != 0).mean() - 0.5) < 0.01
    np.testing.assert_array_equal(y, dxs)
