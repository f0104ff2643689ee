"""Every CUDA kernel (nncore.cuda.ops) against the CPU kernel (nncore._kernels) on the same
random inputs: odd shapes, float32 tolerance (float64 tighter), bad labels / ids, allocator
counters. Skipped unless nncore was built with NNCORE_CUDA=1 and a GPU is present."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import nncore.cuda as cuda
from nncore._kernels import activation as KA
from nncore._kernels import conv as KC
from nncore._kernels import embedding as KE
from nncore._kernels import gemm as KG
from nncore._kernels import gru as KR
from nncore._kernels import loss as KL
from nncore._kernels import lstm as KT
from nncore._kernels import norm as KN
from nncore._kernels import optim as KO
from nncore._kernels import pool as KP

pytestmark = pytest.mark.cuda
if not cuda.is_available():
    pytest.skip("no CUDA device, or nncore built without CUDA (NNCORE_CUDA=1)",
                allow_module_level=True)

from nncore.cuda import ops  # noqa: E402  (needs the CUDA build)

D = ops.DeviceArray.from_numpy
DTYPES = [np.float32, np.float64]
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(dtype)


def close(gpu, cpu, dtype=np.float32, tol=None):
    got = gpu.numpy() if isinstance(gpu, ops.DeviceArray) else np.asarray(gpu)
    cpu = np.asarray(cpu)
    assert got.shape == cpu.shape, (got.shape, cpu.shape)
    t = tol if tol is not None else (3e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(got, cpu, rtol=t, atol=t * max(1.0, float(np.abs(cpu).max(
        initial=0))))


# ---------------------------------------------------------------------------- runtime

def test_device_queries_and_roundtrip():
    assert cuda.is_built() and cuda.device_count() >= 1
    assert isinstance(cuda.get_device_name(0), str) and cuda.get_device_name(0)
    x = rand(3, 5, 7)
    d = D(x)
    assert d.shape == x.shape and d.dtype == x.dtype and d.nbytes == x.nbytes
    np.testing.assert_array_equal(d.numpy(), x)
    np.testing.assert_array_equal(d[1].numpy(), x[1])
    np.testing.assert_array_equal(d.reshape(15, 7).numpy(), x.reshape(15, 7))
    np.testing.assert_array_equal(d.copy().numpy(), x)
    np.testing.assert_array_equal(ops.DeviceArray.zeros((4,)).numpy(), np.zeros(4, np.float32))
    cuda.synchronize()


def test_allocator_counters_and_cache():
    cuda.synchronize()
    cuda.empty_cache()
    base = cuda.memory_allocated()
    cuda.reset_peak_memory_stats()
    a = ops.DeviceArray((1000, 1000), np.float32)           # 4 MB
    assert cuda.memory_allocated() >= base + 4_000_000
    assert cuda.max_memory_allocated() >= cuda.memory_allocated()
    ptr = a.ptr
    del a
    assert cuda.memory_allocated() == base
    assert cuda.memory_reserved() >= base + 4_000_000       # cached, not freed
    b = ops.DeviceArray((1000, 1000), np.float32)            # same size class: reused block
    assert b.ptr == ptr
    del b
    cuda.empty_cache()
    assert cuda.memory_reserved() == cuda.memory_allocated() == base
    assert cuda.max_memory_allocated() >= base + 4_000_000


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="a: expected a DeviceArray"):
        ops.gemm(np.ones((2, 2), np.float32), D(rand(2, 2)))
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.gemm(D(rand(2, 3)), D(rand(2, 3)))
    with pytest.raises(TypeError, match="dtype mismatch"):
        ops.gemm(D(rand(2, 2)), D(rand(2, 2, dtype=np.float64)))


# -------------------------------------------------------------------------------- GEMM

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 13, 5), (97, 101, 33), (64, 64, 64),
                                   (130, 67, 200), (5, 3, 0),
                                   # split-K (few output tiles, long K): an LSTM step's shapes
                                   (32, 256, 1024), (32, 1024, 256), (3, 5, 4099)])
def test_gemm(dtype, ta, tb, M, N, K):
    a = rand(*((K, M) if ta else (M, K)), dtype=dtype)
    b = rand(*((N, K) if tb else (K, N)), dtype=dtype)
    c = rand(M, N, dtype=dtype)
    bias = rand(N, dtype=dtype)
    want = KG.gemm(a, b, c.copy(), trans_a=ta, trans_b=tb, alpha=0.5, beta=-1.5, bias=bias)
    got = ops.gemm(D(a), D(b), D(c), trans_a=ta, trans_b=tb, alpha=0.5, beta=-1.5, bias=D(bias))
    close(got, want, dtype)
    plain = ops.gemm(D(a), D(b), trans_a=ta, trans_b=tb)
    close(plain, KG.gemm(a, b, trans_a=ta, trans_b=tb), dtype)


@pytest.mark.parametrize("K", [17, 700])          # 700: the split-K path
@pytest.mark.parametrize("act", ["relu", "gelu", "gelu_tanh"])
def test_gemm_activation(act, K):
    a, b, bias = rand(33, K), rand(K, 70), rand(70)
    close(ops.gemm(D(a), D(b), bias=D(bias), activation=act),
          KG.gemm(a, b, bias=bias, activation=act))


def test_gemm_split_k_is_deterministic():
    a, b = D(rand(16, 3000)), D(rand(3000, 40))
    first = ops.gemm(a, b).numpy()
    for _ in range(3):
        np.testing.assert_array_equal(ops.gemm(a, b).numpy(), first)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
def test_gemm_batched(ta, tb):
    a = rand(5, *((9, 7) if ta else (7, 9)))
    b = rand(5, *((11, 9) if tb else (9, 11)))
    close(ops.gemm_batched(D(a), D(b), trans_a=ta, trans_b=tb),
          KG.gemm_batched(a, b, trans_a=ta, trans_b=tb))


# ----------------------------------------------------------------- elementwise / activations

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "leaky"])
def test_activations(dtype, name):
    x = rand(7, 101, dtype=dtype, scale=3)
    x[0, :4] = [0.0, -0.0, 30.0, -30.0]
    g = rand(7, 101, dtype=dtype)
    if name == "leaky":
        close(ops.leaky_relu_forward(D(x), 0.2), KA.leaky_relu_forward(x, 0.2), dtype)
        close(ops.leaky_relu_backward(D(g), D(x), 0.2), KA.leaky_relu_backward(g, x, 0.2), dtype)
        return
    if name.startswith("gelu"):
        approx = "tanh" if name == "gelu_tanh" else "none"
        close(ops.gelu_forward(D(x), approx), KA.gelu_forward(x, approx), dtype)
        close(ops.gelu_backward(D(g), D(x), approx), KA.gelu_backward(g, x, approx), dtype)
        return
    fwd, bwd = getattr(KA, f"{name}_forward"), getattr(KA, f"{name}_backward")
    y = fwd(x)
    close(getattr(ops, f"{name}_forward")(D(x)), y, dtype)
    close(getattr(ops, f"{name}_backward")(D(g), D(y)), bwd(g, y), dtype)


def test_relu_keeps_nan_and_elementwise_helpers():
    x = np.array([np.nan, -1.0, 2.0], np.float32)
    assert np.isnan(ops.relu_forward(D(x)).numpy()[0])
    a, b = rand(3, 37), rand(3, 37)
    close(ops.add(D(a), D(b)), a + b)
    close(ops.sub(D(a), D(b)), a - b)
    close(ops.mul(D(a), D(b)), a * b)
    s = rand(1000, 33)
    close(ops.sum_rows(D(s)), s.sum(0, dtype=np.float64))


# -------------------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy(dtype, reduction, eps):
    N, C = 37, 11
    logits = rand(N, C, dtype=dtype, scale=4)
    target = RNG.integers(0, C, N)
    target[3] = -100
    loss, probs = KL.cross_entropy_forward(logits, target, reduction, -100, eps)
    gloss, gprobs = ops.cross_entropy_forward(D(logits), target, reduction, -100, eps)
    close(gloss, loss, dtype)
    close(gprobs, probs, dtype)
    dloss = rand(N, dtype=dtype) if reduction == "none" else 0.7
    want = KL.cross_entropy_backward(dloss, probs, target, reduction, -100, eps)
    gd = D(dloss) if reduction == "none" else dloss
    close(ops.cross_entropy_backward(gd, gprobs, D(target.astype(np.int64)), reduction, -100,
                                     eps), want, dtype)
    if reduction != "none":   # a 0-d device dloss, as autograd passes it
        close(ops.cross_entropy_backward(D(np.array(0.7, dtype)), gprobs, target, reduction,
                                         -100, eps), want, dtype)


@pytest.mark.parametrize("where", ["host", "device"])   # checked by NumPy / by a kernel
def test_cross_entropy_all_ignored_and_bad_label(where):
    def labels(*v):
        t = np.array(v, np.int64)
        return t if where == "host" else D(t)

    logits = rand(4, 3)
    loss, _ = ops.cross_entropy_forward(D(logits), labels(-100, -100, -100, -100))
    assert np.isnan(loss.numpy())
    loss, _ = ops.cross_entropy_forward(D(logits), labels(0, -100, 2, -100), "sum")
    close(loss, KL.cross_entropy_forward(logits, np.array([0, -100, 2, -100]), "sum")[0])
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 at position 2 is out of "
                                         r"range \[0, 3\)"):
        ops.cross_entropy_forward(D(logits), labels(0, 1, 3, 0))
    with pytest.raises(IndexError, match="target -5 at position 1"):
        ops.cross_entropy_backward(1.0, D(logits), labels(0, -5, 1, 0))
    with pytest.raises(ValueError, match="target has shape"):
        ops.cross_entropy_forward(D(logits), labels(0, 1, 2))


# ------------------------------------------------------------------------------- conv

CONV = [  # N, C, H, W, OC, KH, KW, stride, padding, dilation, groups
    (2, 3, 11, 13, 5, 3, 3, 1, 1, 1, 1),
    (3, 4, 9, 7, 6, 3, 2, 2, 0, 1, 2),
    (1, 1, 8, 8, 1, 1, 1, 1, 0, 1, 1),
    (2, 6, 10, 9, 6, 3, 3, (2, 1), (1, 0, 2, 1), 2, 3),
    (5, 8, 17, 15, 70, 5, 5, 1, 2, 1, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONV)
def test_conv2d(dtype, cfg):
    N, C, H, W, OC, KH, KW, s, p, d, g = cfg
    x = rand(N, C, H, W, dtype=dtype)
    w = rand(OC, C // g, KH, KW, dtype=dtype, scale=0.3)
    b = rand(OC, dtype=dtype)
    out = KC.conv2d_forward(x, w, b, s, p, d, g)
    gout = ops.conv2d_forward(D(x), D(w), D(b), s, p, d, g)
    close(gout, out, dtype)
    dout = rand(*out.shape, dtype=dtype)
    want = KC.conv2d_backward(dout, x, w, s, p, d, g)
    got = ops.conv2d_backward(D(dout), D(x), D(w), s, p, d, g)
    for a, e in zip(got, want):
        close(a, e, dtype)
    again = ops.conv2d_backward(D(dout), D(x), D(w), s, p, d, g)
    for a, e in zip(again, got):                          # deterministic: same bits
        np.testing.assert_array_equal(a.numpy(), e.numpy())


# ------------------------------------------------------------------------------- pool

POOL = [((2, 3, 9, 11), 3, 2, 1, 1, False), ((1, 2, 8, 8), 2, 2, 0, 1, False),
        ((2, 2, 10, 7), (3, 2), (2, 1), (1, 0), (2, 1), True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k,s,p,d,ceil", POOL)
def test_maxpool(dtype, shape, k, s, p, d, ceil):
    x = rand(*shape, dtype=dtype)
    out, arg = KP.maxpool2d_forward(x, k, s, p, d, ceil)
    gout, garg = ops.maxpool2d_forward(D(x), k, s, p, d, ceil)
    close(gout, out, dtype)
    np.testing.assert_array_equal(garg.numpy(), arg)
    dout = rand(*out.shape, dtype=dtype)
    want = KP.maxpool2d_backward(dout, arg, shape)
    close(ops.maxpool2d_backward(D(dout), garg, shape, k, s, p, d, ceil), want, dtype)
    close(ops.maxpool2d_backward(D(dout), garg, shape), want, dtype)     # atomic scatter


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cip,div", [(True, None), (False, None), (True, 5)])
def test_avgpool(dtype, cip, div):
    shape, k, s, p = (2, 3, 9, 10), (3, 2), (2, 2), (1, 1)
    x = rand(*shape, dtype=dtype)
    out = KP.avgpool2d_forward(x, k, s, p, True, cip, div)
    close(ops.avgpool2d_forward(D(x), k, s, p, True, cip, div), out, dtype)
    dout = rand(*out.shape, dtype=dtype)
    close(ops.avgpool2d_backward(D(dout), shape, k, s, p, True, cip, div),
          KP.avgpool2d_backward(dout, shape, k, s, p, True, cip, div), dtype)


# ------------------------------------------------------------------------- recurrent

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (5, 3, 7, 9), (4, 6, 13, 33)])
def test_lstm(dtype, T, B, I, H):
    x, h0, c0 = rand(T, B, I, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype)
    w_ih, w_hh = rand(4 * H, I, dtype=dtype, scale=0.5), rand(4 * H, H, dtype=dtype, scale=0.5)
    b_ih, b_hh = rand(4 * H, dtype=dtype), rand(4 * H, dtype=dtype)
    out, h_n, c_n, cache = KT.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    g = ops.lstm_forward(D(x), D(h0), D(c0), D(w_ih), D(w_hh), D(b_ih), D(b_hh))
    for a, e in zip(g[:3], (out, h_n, c_n)):
        close(a, e, dtype)
    dout, dh, dc = rand(T, B, H, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype)
    want = KT.lstm_backward(dout, dh, dc, cache)
    got = ops.lstm_backward(D(dout), D(dh), D(dc), g[3])
    for a, e in zip(got, want):
        close(a, e, dtype, tol=1e-3 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (5, 3, 7, 9), (4, 6, 13, 33)])
def test_gru(dtype, T, B, I, H):
    x, h0 = rand(T, B, I, dtype=dtype), rand(B, H, dtype=dtype)
    w_ih, w_hh = rand(3 * H, I, dtype=dtype, scale=0.5), rand(3 * H, H, dtype=dtype, scale=0.5)
    b_ih, b_hh = rand(3 * H, dtype=dtype), rand(3 * H, dtype=dtype)
    hs, gates, ghs = KR.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    ghs_, ggates, gghs = ops.gru_forward(D(x), D(h0), D(w_ih), D(w_hh), D(b_ih), D(b_hh))
    for a, e in zip((ghs_, ggates, gghs), (hs, gates, ghs)):
        close(a, e, dtype)
    dout, dh = rand(T, B, H, dtype=dtype), rand(B, H, dtype=dtype)
    want = KR.gru_backward(dout, dh, gates, ghs, hs, x, w_ih, w_hh)
    got = ops.gru_backward(D(dout), D(dh), ggates, gghs, ghs_, D(x), D(w_ih), D(w_hh))
    for a, e in zip(got, want):
        close(a, e, dtype, tol=1e-3 if dtype == np.float32 else None)


# ------------------------------------------------------------------------- embedding

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad,freq", [(None, False), (2, True)])
def test_embedding(dtype, pad, freq):
    V, Dm, N = 11, 7, 53
    w = rand(V, Dm, dtype=dtype)
    ids = RNG.integers(0, V, N)
    want = KE.embedding_forward(ids, w)
    close(ops.embedding_forward(D(ids.astype(np.int64)), D(w)), want, dtype, tol=0)
    close(ops.embedding_forward(ids.astype(np.int32), D(w)), want, dtype, tol=0)  # host ids
    dout = rand(N, Dm, dtype=dtype)
    want = KE.embedding_backward(dout, ids, V, pad, freq)
    got = ops.embedding_backward(D(dout), ids, V, pad, freq)
    np.testing.assert_array_equal(got.numpy(), want)          # same order: same bits


@pytest.mark.parametrize("where", ["host", "device"])
def test_embedding_bad_ids(where):
    w = D(rand(5, 3))
    ids = np.array([0, 5, 1])
    with pytest.raises(IndexError, match=r"embedding: index 5 at position 1 is out of range"):
        ops.embedding_forward(ids if where == "host" else D(ids), w)
    with pytest.raises(IndexError, match="-1"):
        ops.embedding_backward(D(rand(2, 3)), np.array([0, -1]), 5)


# ------------------------------------------------------------------------- batch norm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 11), (3, 6, 5, 7)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(dtype, shape, training):
    C = shape[1]
    x = rand(*shape, dtype=dtype, scale=2) + 1
    w, b = rand(C, dtype=dtype), rand(C, dtype=dtype)
    rm, rv = rand(C, dtype=dtype), np.abs(rand(C, dtype=dtype)) + 0.5
    grm, grv = D(rm), D(rv)
    out, sm, si = KN.batch_norm_forward(x, w, b, rm, rv, training, 0.1, 1e-5)
    gout, gsm, gsi = ops.batch_norm_forward(D(x), D(w), D(b), grm, grv, training, 0.1, 1e-5)
    close(gout, out, dtype)
    close(gsm, sm, np.float64, tol=1e-6 if dtype == np.float32 else None)
    close(gsi, si, np.float64, tol=1e-6 if dtype == np.float32 else None)
    close(grm, rm, dtype)
    close(grv, rv, dtype)
    dout = rand(*shape, dtype=dtype)
    want = KN.batch_norm_backward(dout, x, sm, si, w, training)
    got = ops.batch_norm_backward(D(dout), D(x), gsm, gsi, D(w), training)
    for a, e in zip(got, want):
        close(a, e, dtype, tol=1e-3 if dtype == np.float32 else None)


# -------------------------------------------------------------------------- optimizers

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, True, 0.01),
                                                  (0.9, False, 0.0)])
def test_sgd_step(dtype, momentum, nesterov, wd):
    p, buf = rand(1001, dtype=dtype), rand(1001, dtype=dtype)
    gp, gbuf = D(p), D(buf)
    for step in range(3):
        grad = rand(1001, dtype=dtype)
        args = (0.1, momentum, 0.0, wd, nesterov, False, step == 0)
        KO.sgd_step(p, grad, buf if momentum else None, *args)
        ops.sgd_step(gp, D(grad), gbuf if momentum else None, *args)
    close(gp, p, dtype, tol=1e-5 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad,decoupled,wd", [(False, False, 0.0), (True, True, 0.01),
                                                  (False, False, 0.1)])
def test_adam_step(dtype, amsgrad, decoupled, wd):
    n = 999
    p, m, v, vmax = rand(n, dtype=dtype), np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)
    gp, gm, gv, gvmax = D(p), D(m), D(v), D(vmax)
    for step in range(1, 4):
        grad = rand(n, dtype=dtype)
        args = (step, 1e-2, 0.9, 0.999, 1e-8, wd, amsgrad, False, decoupled)
        KO.adam_step(p, grad, m, v, vmax if amsgrad else None, *args)
        ops.adam_step(gp, D(grad), gm, gv, gvmax if amsgrad else None, *args)
    close(gp, p, dtype, tol=1e-5 if dtype == np.float32 else None)
    close(gv, v, dtype, tol=1e-5 if dtype == np.float32 else None)
