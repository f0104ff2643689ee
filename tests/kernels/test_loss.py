"""Kernel tests for nncore._kernels.loss: fused softmax cross-entropy and NLL.

Forward and backward against a plain NumPy log-softmax formula, finite differences in float64,
PyTorch parity where torch is installed, determinism across thread counts, every SIMD level,
and bad targets / shapes / dtypes.
"""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import loss as L

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1), (7, 3), (97, 101), (64, 10)]
REDUCTIONS = ["mean", "sum", "none"]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


# ------------------------------------------------------------------ NumPy references (float64)

def ref_log_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def ref_cross_entropy(x, t, reduction="mean", ignore_index=-100, eps=0.0):
    """PyTorch's cross_entropy on (N, C) logits, from log-softmax, in float64."""
    logp = ref_log_softmax(x.astype(np.float64))
    keep = t != ignore_index
    safe_t = np.where(keep, t, 0)
    nll = -logp[np.arange(len(t)), safe_t]
    smooth = -logp.mean(axis=1)
    rows = np.where(keep, (1 - eps) * nll + eps * smooth, 0.0)
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / keep.sum() if keep.any() else np.nan


def ref_cross_entropy_grad(x, t, dloss, reduction="mean", ignore_index=-100, eps=0.0):
    p = np.exp(ref_log_softmax(x.astype(np.float64)))
    N, C = x.shape
    keep = t != ignore_index
    target = np.zeros((N, C))
    target[np.arange(N)[keep], t[keep]] = 1.0
    grad = p - (1 - eps) * target - eps / C
    if reduction == "none":
        g = np.asarray(dloss, np.float64)
    elif reduction == "sum":
        g = np.full(N, float(dloss))
    else:
        g = np.full(N, float(dloss) / max(keep.sum(), 1))   # all ignored: rows are 0 anyway
    return np.where(keep[:, None], grad * g[:, None], 0.0)


def data(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def targets(N, C, seed=0, ignore_every=0, ignore_index=-100):
    t = np.random.default_rng(seed + 100).integers(0, C, N)
    if ignore_every:
        t[::ignore_every] = ignore_index
    return t


def dloss_for(reduction, N, dtype, seed=0):
    if reduction == "none":
        return data((N,), dtype, seed=seed + 200, scale=1.0)
    return np.array(0.75, dtype)


@pytest.fixture
def threads():
    saved = _parallel.get_num_threads()
    yield _parallel.set_num_threads
    _parallel.set_num_threads(saved)


@pytest.fixture
def simd_cap():
    yield L._cap_simd
    L._cap_simd(None)


# ------------------------------------------------------------------ forward / backward vs NumPy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps,ignore_every", [(0.0, 0), (0.0, 3), (0.1, 0), (0.25, 4)])
def test_cross_entropy_matches_numpy(eps, ignore_every, reduction, shape, dtype):
    N, C = shape
    x = data(shape, dtype)
    t = targets(N, C, ignore_every=ignore_every)
    loss, probs = L.cross_entropy_forward(x, t, reduction, -100, eps)
    want = ref_cross_entropy(x, t, reduction, -100, eps)
    assert loss.dtype == x.dtype and loss.shape == np.shape(want)
    np.testing.assert_allclose(loss, want, **TOL[dtype])
    np.testing.assert_allclose(probs, np.exp(ref_log_softmax(x.astype(np.float64))),
                               **TOL[dtype])
    dloss = dloss_for(reduction, N, dtype)
    dx = L.cross_entropy_backward(dloss, probs, t, reduction, -100, eps)
    assert dx.dtype == x.dtype and dx.shape == shape
    want_dx = ref_cross_entropy_grad(x, t, dloss, reduction, -100, eps)
    np.testing.assert_allclose(dx, want_dx, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_numpy(reduction, dtype):
    N, C = 97, 101
    logp = ref_log_softmax(data((N, C), np.float64)).astype(dtype)
    t = targets(N, C, ignore_every=5, ignore_index=7)
    loss = L.nll_loss_forward(logp, t, reduction, 7)
    keep = t != 7
    rows = np.where(keep, -logp.astype(np.float64)[np.arange(N), np.where(keep, t, 0)], 0.0)
    want = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / keep.sum()}[reduction]
    np.testing.assert_allclose(loss, want, **TOL[dtype])
    dloss = dloss_for(reduction, N, dtype)
    dlogp = L.nll_loss_backward(dloss, t, N, C, reduction, 7, dtype)
    g = {"none": np.asarray(dloss, np.float64), "sum": np.full(N, 0.75),
         "mean": np.full(N, 0.75 / keep.sum())}[reduction]
    want_d = np.zeros((N, C))
    want_d[np.arange(N)[keep], t[keep]] = -g[keep]
    assert dlogp.dtype == dtype
    np.testing.assert_allclose(dlogp, want_d, **TOL[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_cross_entropy_backward_finite_differences(eps, reduction):
    N, C = 6, 5
    x = data((N, C), np.float64, seed=3)
    t = targets(N, C, seed=3)
    t[2] = -100
    dloss = dloss_for(reduction, N, np.float64, seed=3)

    def f(v):
        loss, _ = L.cross_entropy_forward(v, t, reduction, -100, eps)
        return float((np.asarray(loss) * dloss).sum())

    _, probs = L.cross_entropy_forward(x, t, reduction, -100, eps)
    dx = L.cross_entropy_backward(dloss, probs, t, reduction, -100, eps)
    expected = np.empty_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        expected[idx] = (f(xp) - f(xm)) / (2 * h)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)
    assert not dx[2].any()                           # ignored row: zero gradient


# ------------------------------------------------------------------ PyTorch parity

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps,ignore_index", [(0.0, -100), (0.0, 2), (0.2, -100), (0.2, 2)])
def test_cross_entropy_matches_torch(eps, ignore_index, reduction, dtype):
    torch = pytest.importorskip("torch")
    N, C = 64, 10
    x = data((N, C), dtype, seed=5)
    t = targets(N, C, seed=5, ignore_every=6, ignore_index=ignore_index)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), reduction=reduction,
                                           ignore_index=ignore_index, label_smoothing=eps)
    dloss = dloss_for(reduction, N, dtype, seed=5)
    lt.backward(torch.tensor(dloss))
    loss, probs = L.cross_entropy_forward(x, t, reduction, ignore_index, eps)
    np.testing.assert_allclose(loss, lt.detach().numpy(), **TOL[dtype])
    dx = L.cross_entropy_backward(dloss, probs, t, reduction, ignore_index, eps)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    logp = ref_log_softmax(data((64, 10), np.float64, seed=6))
    t = targets(64, 10, seed=6, ignore_every=5)
    lpt = torch.tensor(logp, requires_grad=True)
    lt = torch.nn.functional.nll_loss(lpt, torch.tensor(t), reduction=reduction)
    dloss = dloss_for(reduction, 64, np.float64, seed=6)
    lt.backward(torch.tensor(dloss))
    np.testing.assert_allclose(L.nll_loss_forward(logp, t, reduction), lt.detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(L.nll_loss_backward(dloss, t, 64, 10, reduction), lpt.grad.numpy(),
                               rtol=1e-12)


def test_all_ignored_matches_torch():
    torch = pytest.importorskip("torch")
    x = data((4, 3), np.float64)
    t = np.full(4, -100)
    for reduction in REDUCTIONS:
        want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t),
                                                 reduction=reduction).numpy()
        loss, _ = L.cross_entropy_forward(x, t, reduction)
        np.testing.assert_array_equal(loss, want)


# ------------------------------------------------------------------ semantics and edge cases

@pytest.mark.parametrize("dtype", DTYPES)
def test_all_ignored_and_empty_batch(dtype):
    x = data((4, 3), dtype)
    t = np.full(4, -100)
    loss, probs = L.cross_entropy_forward(x, t, "mean")
    assert np.isnan(loss)
    assert L.cross_entropy_forward(x, t, "sum")[0] == 0
    assert not L.cross_entropy_backward(np.array(1.0, dtype), probs, t, "mean").any()
    assert np.isnan(L.nll_loss_forward(x, t, "mean"))
    empty = np.zeros((0, 3), dtype)
    assert np.isnan(L.cross_entropy_forward(empty, np.zeros(0, np.int64))[0])
    assert L.cross_entropy_forward(empty, np.zeros(0, np.int64), "none")[0].shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]], dtype)
    t = np.array([0, 2, 1])
    for eps in (0.0, 0.1):
        loss, probs = L.cross_entropy_forward(x, t, "none", label_smoothing=eps)
        assert np.isfinite(loss).all() and np.isfinite(probs).all()
        want = ref_cross_entropy(x.astype(np.float64), t, "none", eps=eps)
        np.testing.assert_allclose(loss, want, rtol=1e-6)
    loss, _ = L.cross_entropy_forward(x, np.array([1, 0, 0]), "none")
    np.testing.assert_allclose(loss, [2e4, np.log(3), np.log(3)], rtol=1e-6)


@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.uint8, np.int16])
def test_target_integer_dtypes(tdtype):
    x = data((7, 3), np.float64)
    t = targets(7, 3)
    want, _ = L.cross_entropy_forward(x, t)
    got, _ = L.cross_entropy_forward(x, t.astype(tdtype))
    assert got == want


def test_nan_logits_propagate():
    x = data((3, 4), np.float64)
    x[1, 2] = np.nan
    loss, probs = L.cross_entropy_forward(x, np.array([0, 1, 2]), "none")
    assert np.isnan(loss[1]) and np.isnan(probs[1]).all()
    assert np.isfinite(loss[[0, 2]]).all()


# ------------------------------------------------------------------ threads and SIMD levels

@pytest.mark.skipif(not _parallel.openmp_enabled(), reason="serial build")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_thread_count_does_not_change_bits(threads, eps, dtype):
    N, C = 4096, 10                                  # 40960 elements: the parallel path
    x = data((N, C), dtype, seed=8)
    t = targets(N, C, seed=8, ignore_every=7)
    dl_rows = data((N,), dtype, seed=9)

    def run():
        out = []
        for reduction in REDUCTIONS:
            loss, probs = L.cross_entropy_forward(x, t, reduction, -100, eps)
            dloss = dl_rows if reduction == "none" else np.array(1.3, dtype)
            out += [loss, probs, L.cross_entropy_backward(dloss, probs, t, reduction, -100, eps)]
        return out

    threads(1)
    one = run()
    threads(2)
    two = run()
    again = run()
    for a, b, c in zip(one, two, again):
        np.testing.assert_array_equal(b, c)          # bit-identical on repeat
        np.testing.assert_array_equal(a, b)          # fixed row blocks: same bits for 1 and 2
    np.testing.assert_allclose(one[0], ref_cross_entropy(x, t, "mean", eps=eps), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", ["portable", "avx2", "avx512"])
def test_every_simd_level_matches_reference(simd_cap, level, dtype):
    used = simd_cap(level)
    if level != "portable" and not used.startswith(level):
        pytest.skip(f"CPU lacks {level}")
    for C in (1, 3, 8, 9, 16, 17, 33, 101):
        x = data((9, C), dtype, seed=C)
        t = targets(9, C, seed=C)
        for eps in (0.0, 0.2):
            loss, probs = L.cross_entropy_forward(x, t, "none", -100, eps)
            np.testing.assert_allclose(loss, ref_cross_entropy(x, t, "none", eps=eps),
                                       **TOL[dtype])


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [5, -3, 1000])
def test_out_of_range_label_raises(fn, bad):
    x = data((4, 5), np.float32)
    t = np.array([0, 4, bad, 1])
    msg = rf"{fn}: target {bad} is out of range for 5 classes \(row 2\)"
    with pytest.raises(IndexError, match=msg):
        if fn == "cross_entropy":
            L.cross_entropy_forward(x, t)
        else:
            L.nll_loss_forward(x, t)
    with pytest.raises(IndexError, match=msg):
        if fn == "cross_entropy":
            L.cross_entropy_backward(np.array(1.0, np.float32), x, t)
        else:
            L.nll_loss_backward(1.0, t, 4, 5)


def test_first_bad_row_is_reported_in_parallel_path(threads):
    threads(2)
    x = data((8192, 8), np.float32)
    t = targets(8192, 8)
    t[5000], t[7000] = 8, -3
    with pytest.raises(IndexError, match=r"target 8 is out of range for 8 classes \(row 5000\)"):
        L.cross_entropy_forward(x, t)


def test_in_range_ignore_index_is_ignored_not_rejected():
    x = data((4, 5), np.float64)
    t = np.array([0, 4, 3, 3])
    loss, _ = L.cross_entropy_forward(x, t, "none", ignore_index=3)
    assert loss[2] == 0 and loss[3] == 0 and loss[0] > 0
    with pytest.raises(IndexError, match="target -100 is out of range"):
        L.cross_entropy_forward(x, np.array([0, -100, 1, 2]), ignore_index=3)


def test_bad_input_raises():
    x = data((4, 5), np.float32)
    t = np.array([0, 1, 2, 3])
    with pytest.raises(TypeError, match="target: expected an integer array, got dtype float64"):
        L.cross_entropy_forward(x, t.astype(np.float64))
    with pytest.raises(ValueError, match="target has 3 entries but there are 4 rows"):
        L.cross_entropy_forward(x, t[:3])
    with pytest.raises(ValueError, match=r"logits: expected a 2-D array, got shape \(5,\)"):
        L.cross_entropy_forward(x[0], t[:1])
    with pytest.raises(TypeError, match="logits: expected float32 or float64, got dtype int64"):
        L.cross_entropy_forward(np.ones((4, 5), np.int64), t)
    with pytest.raises(ValueError, match="target: expected a 1-D array"):
        L.cross_entropy_forward(x, t[:, None])
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        L.cross_entropy_forward(x, t, "average")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        L.cross_entropy_forward(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="at least one class"):
        L.cross_entropy_forward(np.zeros((4, 0), np.float32), np.full(4, -100))
    _, probs = L.cross_entropy_forward(x, t)
    with pytest.raises(ValueError, match="dloss must be a scalar"):
        L.cross_entropy_backward(np.ones(4, np.float32), probs, t, "mean")
    with pytest.raises(ValueError, match=r"dloss: expected shape \(4,\)"):
        L.cross_entropy_backward(np.ones(3, np.float32), probs, t, "none")
    with pytest.raises(TypeError, match="dloss: expected dtype float32"):
        L.cross_entropy_backward(np.ones(4), probs, t, "none")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        L.nll_loss_backward(1.0, t, 4, 5, dtype=np.int32)
    with pytest.raises(ValueError, match="target has 4 entries but there are 3 rows"):
        L.nll_loss_backward(1.0, t, 3, 5)


def test_dispatched_simd_reports_a_level():
    assert L.dispatched_simd() in ("portable", "avx2+fma", "avx512")
