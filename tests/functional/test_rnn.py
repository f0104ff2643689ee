"""Recurrent layers through autograd: functional lstm/gru layers and cells (check_op: forward
vs NumPy, gradients vs finite differences), nn.LSTM / nn.GRU / nn.LSTMCell / nn.GRUCell against
PyTorch (outputs and every gradient after load_state_dict), shapes, threads and bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

import nncore
import nncore.functional as F
from nncore import nn
from tests.helpers import check_op, rng, torch_or_skip
from tests.kernels.test_gru import make as make_gru
from tests.kernels.test_gru import ref_gru
from tests.kernels.test_lstm import make as make_lstm
from tests.kernels.test_lstm import ref_lstm

TOL64 = dict(rtol=1e-10, atol=1e-12)
TOL32 = dict(rtol=1e-4, atol=1e-5)


def _flat(*tensors):
    return F.cat([F.reshape(t, -1) for t in tensors])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7)])
def test_lstm_layer_check_op(shape):
    inputs = make_lstm(*shape)

    def fn(*a):
        out, h, c = F.lstm_layer(*a)
        return _flat(out, h, c)

    def ref(*a):
        out, h, c = ref_lstm(*a)
        return np.concatenate([out.ravel(), h.ravel(), c.ravel()])

    check_op(fn, ref, inputs, grad_rtol=1e-6, grad_atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7)])
def test_gru_layer_check_op(shape):
    inputs = make_gru(*shape)

    def fn(*a):
        out, h = F.gru_layer(*a)
        return _flat(out, h)

    def ref(*a):
        out, h = ref_gru(*a)
        return np.concatenate([out.ravel(), h.ravel()])

    check_op(fn, ref, inputs, grad_rtol=1e-6, grad_atol=1e-8)


def test_cells_check_op():
    x, h, c, w_ih, w_hh, b_ih, b_hh = make_lstm(1, 3, 4, 5)
    check_op(lambda *a: _flat(*F.lstm_cell(*a)),
             lambda *a: np.concatenate([v.ravel() for v in ref_lstm(a[0][None], *a[1:])[1:]]),
             [x[0], h, c, w_ih, w_hh, b_ih, b_hh], grad_rtol=1e-6, grad_atol=1e-8)
    x, h, w_ih, w_hh, b_ih, b_hh = make_gru(1, 3, 4, 5)
    check_op(F.gru_cell, lambda *a: ref_gru(a[0][None], *a[1:])[1],
             [x[0], h, w_ih, w_hh, b_ih, b_hh], grad_rtol=1e-6, grad_atol=1e-8)


# ------------------------------------------------------------------ nn layers vs PyTorch

def _pair(torch, kind, dtype, **kw):
    tcls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "lstmcell": torch.nn.LSTMCell,
            "grucell": torch.nn.GRUCell}[kind]
    ncls = {"lstm": nn.LSTM, "gru": nn.GRU, "lstmcell": nn.LSTMCell, "grucell": nn.GRUCell}[kind]
    torch.manual_seed(0)
    tm = tcls(**kw).to(getattr(torch, np.dtype(dtype).name))
    m = ncls(**kw, dtype=dtype)
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return tm, m


def _compare_grads(tm, m, tol):
    params = dict(m.named_parameters())
    assert set(params) == {n for n, _ in tm.named_parameters()}
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(params[name].grad.data, p.grad.numpy(), **tol,
                                   err_msg=name)


CONFIGS = [
    dict(num_layers=1, batch_first=False, bias=True, states=False, T=5, B=3),
    dict(num_layers=2, batch_first=False, bias=True, states=True, T=4, B=1),
    dict(num_layers=3, batch_first=True, bias=False, states=True, T=3, B=2),
    dict(num_layers=2, batch_first=True, bias=True, states=False, T=1, B=4),
]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nn_rnn_matches_torch(kind, cfg, dtype):
    torch = torch_or_skip()
    I, H, L = 7, 11, cfg["num_layers"]
    tm, m = _pair(torch, kind, dtype, input_size=I, hidden_size=H, num_layers=L,
                  bias=cfg["bias"], batch_first=cfg["batch_first"])
    r = rng(1)
    T, B = cfg["T"], cfg["B"]
    x = r.standard_normal((B, T, I) if cfg["batch_first"] else (T, B, I)).astype(dtype)
    n_states = 2 if kind == "lstm" else 1
    states = [r.standard_normal((L, B, H)).astype(dtype) for _ in range(n_states)]
    xt = torch.tensor(x, requires_grad=True)
    xn = nncore.Tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    sn = [nncore.Tensor(s, requires_grad=True) for s in states]
    if cfg["states"]:
        hx_t = tuple(st) if kind == "lstm" else st[0]
        hx_n = tuple(sn) if kind == "lstm" else sn[0]
        out_t, fin_t = tm(xt, hx_t)
        out_n, fin_n = m(xn, hx_n)
    else:
        out_t, fin_t = tm(xt)
        out_n, fin_n = m(xn)
    fin_t = list(fin_t) if kind == "lstm" else [fin_t]
    fin_n = list(fin_n) if kind == "lstm" else [fin_n]
    tol = TOL64 if dtype == np.float64 else TOL32
    np.testing.assert_allclose(out_n.data, out_t.detach().numpy(), **tol)
    for a, b in zip(fin_n, fin_t):
        np.testing.assert_allclose(a.data, b.detach().numpy(), **tol)
    w = r.standard_normal(out_n.shape).astype(dtype)
    wf = [r.standard_normal(f.shape).astype(dtype) for f in fin_n]
    loss_t = (out_t * torch.tensor(w)).sum() + sum((f * torch.tensor(v)).sum()
                                                   for f, v in zip(fin_t, wf))
    loss_n = F.sum(out_n * nncore.Tensor(w))
    for f, v in zip(fin_n, wf):
        loss_n = loss_n + F.sum(f * nncore.Tensor(v))
    loss_t.backward()
    loss_n.backward()
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), **tol)
    if cfg["states"]:
        for a, b in zip(sn, st):
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), **tol)
    _compare_grads(tm, m, tol)


@pytest.mark.parametrize("kind", ["lstmcell", "grucell"])
@pytest.mark.parametrize("batched", [True, False])
def test_nn_cells_match_torch(kind, batched):
    torch = torch_or_skip()
    tm, m = _pair(torch, kind, np.float64, input_size=6, hidden_size=5)
    r = rng(2)
    shape = (3, 6) if batched else (6,)
    sshape = (3, 5) if batched else (5,)
    x = r.standard_normal(shape)
    states = [r.standard_normal(sshape) for _ in range(2 if kind == "lstmcell" else 1)]
    xt, xn = torch.tensor(x, requires_grad=True), nncore.Tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    sn = [nncore.Tensor(s, requires_grad=True) for s in states]
    if kind == "lstmcell":
        out_t, out_n = tm(xt, tuple(st)), m(xn, tuple(sn))
    else:
        out_t, out_n = (tm(xt, st[0]),), (m(xn, sn[0]),)
    loss_t = sum((o * o).sum() for o in out_t)
    loss_n = out_n[0] * out_n[0]
    loss_n = F.sum(loss_n) if len(out_n) == 1 else F.sum(loss_n) + F.sum(out_n[1] * out_n[1])
    loss_t.backward()
    loss_n.backward()
    for a, b in zip(out_n, out_t):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a.data, b.detach().numpy(), **TOL64)
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), **TOL64)
    for a, b in zip(sn, st):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), **TOL64)
    _compare_grads(tm, m, TOL64)


def test_unbatched_lstm_matches_batched_and_default_states():
    m = nn.LSTM(4, 6, num_layers=2)
    x = rng(3).standard_normal((5, 4)).astype(np.float32)
    out, (h, c) = m(nncore.Tensor(x))
    assert out.shape == (5, 6) and h.shape == c.shape == (2, 6)
    out_b, (h_b, c_b) = m(nncore.Tensor(x[:, None]))
    np.testing.assert_array_equal(out.data, out_b.data[:, 0])
    np.testing.assert_array_equal(h.data, h_b.data[:, 0])
    g = nn.GRU(4, 6)
    out, h = g(nncore.Tensor(x), nncore.Tensor(np.zeros((1, 6), np.float32)))
    assert out.shape == (5, 6) and h.shape == (1, 6)


def test_state_dict_keys_shapes_and_init():
    m = nn.LSTM(10, 20, num_layers=2)
    sd = m.state_dict()
    assert list(sd) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]
    assert sd["weight_ih_l0"].shape == (80, 10) and sd["weight_ih_l1"].shape == (80, 20)
    assert sd["weight_hh_l0"].shape == (80, 20) and sd["bias_hh_l1"].shape == (80,)
    bound = 1 / np.sqrt(20)
    for v in sd.values():
        v = np.asarray(v.data if hasattr(v, "data") else v)
        assert v.dtype == np.float32 and np.abs(v).max() <= bound
    g = nn.GRU(3, 5, bias=False)
    assert list(g.state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert g.weight_ih_l0.shape == (15, 3)
    cell = nn.LSTMCell(3, 4)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def test_dropout_between_layers_only_in_training():
    nncore.manual_seed(0)
    m = nn.LSTM(3, 8, num_layers=2, dropout=0.5)
    x = nncore.Tensor(rng(4).standard_normal((4, 2, 3)).astype(np.float32))
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a.data, b.data)
    m.train()
    nncore.manual_seed(1)
    c, _ = m(x)
    nncore.manual_seed(1)
    d, _ = m(x)
    np.testing.assert_array_equal(c.data, d.data)   # deterministic for a fixed seed
    assert not np.allclose(c.data, a.data)
    c.sum().backward()
    assert m.weight_ih_l0.grad is not None


def test_one_and_two_threads_agree():
    before = nncore.get_num_threads()
    m = nn.LSTM(16, 64, num_layers=2)
    x = rng(5).standard_normal((6, 32, 16)).astype(np.float32)
    results = []
    try:
        for n in (1, 2):
            nncore.set_num_threads(n)
            m.zero_grad()
            out, (h, c) = m(nncore.Tensor(x))
            (out.sum() + h.sum()).backward()
            results.append([out.data.copy()] + [p.grad.data.copy() for p in m.parameters()])
    finally:
        nncore.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_bad_input_raises_clear_errors():
    m = nn.LSTM(128, 16)
    with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size. "
                                         "Expected 128, got 100"):
        m(nncore.Tensor(np.zeros((3, 2, 100), np.float32)))
    m = nn.LSTM(4, 5, num_layers=2)
    x = nncore.Tensor(np.zeros((3, 2, 4), np.float32))
    bad = nncore.Tensor(np.zeros((2, 3, 5), np.float32))
    good = nncore.Tensor(np.zeros((2, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(2, 2, 5\), got \[2, 3, 5\]"):
        m(x, (bad, good))
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        m(x, (good, bad))
    with pytest.raises(TypeError, match="tuple"):
        m(x, good)
    with pytest.raises(ValueError, match="empty sequence"):
        m(nncore.Tensor(np.zeros((0, 2, 4), np.float32)))
    with pytest.raises(TypeError, match="dtype"):
        m(nncore.Tensor(np.zeros((3, 2, 4), np.float64)))
    with pytest.raises(ValueError, match="2D or 3D"):
        m(nncore.Tensor(np.zeros((3, 2, 4, 1), np.float32)))
    with pytest.raises(NotImplementedError, match="bidirectional"):
        nn.LSTM(4, 5, bidirectional=True)
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(4, 5, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(4, 0)
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(4, 5, dropout=1.5)
    g = nn.GRU(4, 5)
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size"):
        g(x, nncore.Tensor(np.zeros((1, 3, 5), np.float32)))
    cell = nn.LSTMCell(4, 5)
    with pytest.raises(ValueError, match="input_size"):
        cell(nncore.Tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="shape"):
        cell(nncore.Tensor(np.zeros((2, 4), np.float32)),
             (nncore.Tensor(np.zeros((3, 5), np.float32)),) * 2)


def test_numpy_benchmark_baseline_matches_nncore():
    """benchmarks/baseline_rnn.py is an honest baseline: same results as the kernels."""
    from nncore._kernels import gru as KG
    from nncore._kernels import lstm as KL
    from nncore.bench import baseline_rnn as nb

    T, B, I, H = 4, 3, 5, 6
    x, h, c, w_ih, w_hh, b_ih, b_hh = make_lstm(T, B, I, H)
    dout = rng(7).standard_normal((T, B, H))
    zeros = np.zeros((B, H))
    got = nb.lstm_forward_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, dout)
    *_, cache = KL.lstm_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    want = KL.lstm_backward(dout, zeros, zeros, cache)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    x, h, w_ih, w_hh, b_ih, b_hh = make_gru(T, B, I, H)
    got = nb.gru_forward_backward(x, h, w_ih, w_hh, b_ih, b_hh, dout)
    hs, gates, ghs = KG.gru_forward(x, h, w_ih, w_hh, b_ih, b_hh)
    want = KG.gru_backward(dout, zeros, gates, ghs, hs, x, w_ih, w_hh)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
