"""Kernel tests for nncore._kernels.embedding: gather forward, deterministic scatter-add
backward (np.add.at reference), padding_idx, scale_grad_by_freq, thread-count invariance and
bounds checks on every id."""
from __future__ import annotations

import numpy as np
import pytest

from nncore._kernels import _parallel
from nncore._kernels import embedding as E

DTYPES = [np.float32, np.float64]
# (N ids, V rows, D columns): 1s, odd sizes, and sizes big enough for the parallel path
SHAPES = [(1, 1, 1), (7, 3, 5), (97, 101, 7), (1120, 1000, 128), (4000, 17, 33)]


@pytest.fixture
def threads():
    saved = _parallel.get_num_threads()
    yield _parallel.set_num_threads
    _parallel.set_num_threads(saved)


def make(N, V, D, dtype, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, N)
    w = rng.standard_normal((V, D)).astype(dtype)
    dout = rng.standard_normal((N, D)).astype(dtype)
    return ids, w, dout


def ref_backward(dout, ids, V, padding_idx=None, by_freq=False):
    d = np.zeros((V, dout.shape[1]), np.float64)
    np.add.at(d, ids, dout.astype(np.float64))
    if by_freq:
        counts = np.bincount(ids, minlength=V)
        d /= np.maximum(counts, 1)[:, None]
    if padding_idx is not None:
        d[padding_idx] = 0
    return d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_is_exact_gather(shape, dtype):
    ids, w, _ = make(*shape, dtype)
    out = E.embedding_forward(ids, w)
    assert out.dtype == dtype and out.shape == (shape[0], shape[2])
    np.testing.assert_array_equal(out, w[ids])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_backward_matches_add_at(shape, dtype, padding_idx):
    N, V, D = shape
    ids, _, dout = make(N, V, D, dtype)
    ids[: N // 2] = ids[0]          # many repeats of one id
    got = E.embedding_backward(dout, ids, V, padding_idx)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, ref_backward(dout, ids, V, padding_idx), **tol)
    if padding_idx is not None:
        assert not got[padding_idx].any()


def test_backward_sums_in_input_order():
    # exactly the sequential sum, in the order ids appear: same bits as a Python loop
    ids, _, dout = make(300, 5, 9, np.float32, seed=3)
    expect = np.zeros((5, 9), np.float32)
    seen = np.zeros(5, bool)
    for n, v in enumerate(ids):
        expect[v] = dout[n] if not seen[v] else expect[v] + dout[n]
        seen[v] = True
    np.testing.assert_array_equal(E.embedding_backward(dout, ids, 5), expect)


def test_scale_grad_by_freq():
    ids = np.array([2, 2, 2, 0, 4])
    dout = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_allclose(E.embedding_backward(dout, ids, 6, scale_grad_by_freq=True),
                               ref_backward(dout, ids, 6, by_freq=True), rtol=1e-13)


def test_float64_finite_differences():
    # the gradient of sum(out * g) with respect to weight, by central differences
    ids, w, g = make(11, 6, 4, np.float64, seed=5)
    analytic = E.embedding_backward(g, ids, 6)
    eps = 1e-6
    numeric = np.empty_like(w)
    for idx in np.ndindex(*w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        numeric[idx] = (np.sum(E.embedding_forward(ids, wp) * g)
                        - np.sum(E.embedding_forward(ids, wm) * g)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_vs_two_threads_bit_identical(threads, dtype):
    ids, w, dout = make(5000, 300, 64, dtype, seed=7)
    ids[::3] = 11
    results = []
    for n in (1, 2):
        threads(n)
        results.append((E.embedding_forward(ids, w), E.embedding_backward(dout, ids, 300, 5)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("bad", [10, 11, -1, -10, 2**40])
@pytest.mark.parametrize("n", [1, 5000])
def test_out_of_range_ids_raise_index_error(threads, bad, n):
    threads(2)
    ids = np.zeros(n, np.int64)
    ids[n // 2] = bad
    w = np.zeros((10, 64), np.float32)
    msg = f"index {bad} is out of range for a vocabulary of 10"
    with pytest.raises(IndexError, match=msg):
        E.embedding_forward(ids, w)
    with pytest.raises(IndexError, match=msg):
        E.embedding_backward(np.zeros((n, 64), np.float32), ids, 10)


def test_first_bad_id_is_the_one_reported():
    ids = np.array([0, 3, 12, 99, -4])
    with pytest.raises(IndexError, match="index 12 is"):
        E.embedding_forward(ids, np.zeros((10, 2)))


def test_int32_ids_and_empty_input():
    w = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(E.embedding_forward(np.array([3, 0], np.int32), w), w[[3, 0]])
    assert E.embedding_forward(np.zeros(0, np.int64), w).shape == (0, 3)
    d = E.embedding_backward(np.zeros((0, 3)), np.zeros(0, np.int64), 4)
    np.testing.assert_array_equal(d, np.zeros((4, 3)))


def test_bad_arguments():
    w = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="ids"):
        E.embedding_forward(np.array([0.0, 1.0]), w)
    with pytest.raises(TypeError, match="weight"):
        E.embedding_forward(np.array([0, 1]), w.astype(np.int32))
    with pytest.raises(ValueError, match="weight"):
        E.embedding_forward(np.array([0, 1]), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="rows"):
        E.embedding_backward(np.zeros((3, 3), np.float32), np.array([0, 1]), 4)
    with pytest.raises(ValueError, match="padding_idx"):
        E.embedding_backward(np.zeros((2, 3), np.float32), np.array([0, 1]), 4, padding_idx=4)
