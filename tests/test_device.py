"""GPU tensors end to end: moving data, autograd on the device, nn layers, optimizers,
clipping, checkpoints and short training runs, each compared with the same computation on the
CPU. With a GPU (CUDA build) this runs on it; without one, on the host stand-in of
tests/_fake_cuda.py, which checks the plumbing (dispatch, shapes, device bookkeeping) in CI
while tests/cuda/ checks the kernels' numbers on a real device."""
from __future__ import annotations

import numpy as np
import pytest

import nncore as nc
import nncore.cuda
from nncore import nn
from nncore.nn import functional as F

from ._fake_cuda import install

REAL_GPU = nncore.cuda.is_available()


@pytest.fixture(autouse=True)
def cuda_backend(monkeypatch):
    """The real CUDA backend when a GPU is present, else the host stand-in."""
    if not REAL_GPU:
        install(monkeypatch)
    nc.manual_seed(0)
    yield


def close(gpu, cpu, tol):
    got = gpu.cpu().detach().numpy() if isinstance(gpu, nc.Tensor) else gpu
    want = cpu.detach().numpy() if isinstance(cpu, nc.Tensor) else cpu
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


TOL = {np.float32: 2e-4, np.float64: 1e-10}


# ------------------------------------------------------------------------- tensors

def test_to_and_back():
    x = nc.randn(3, 5)
    y = x.to("cuda")
    assert y.is_cuda and not x.is_cuda
    assert y.device == nc.device("cuda", 0) and str(y.device) == "cuda:0"
    assert y.device.type == "cuda" and x.device == "cpu"
    assert y.shape == (3, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    assert y.to("cuda") is y and x.cpu() is x
    assert "device='cuda:0'" in repr(y)
    assert nc.tensor([2.5]).cuda().item() == 2.5
    assert y.to("cuda", np.float64).dtype == np.float64
    ids = nc.tensor([[1, 2], [3, 4]]).cuda()
    assert ids.dtype == np.int64 and ids.cpu().tolist() == [[1, 2], [3, 4]]


def test_host_reads_need_cpu():
    y = nc.randn(2, 2, device="cuda")
    with pytest.raises(TypeError, match=r"Use Tensor.cpu\(\)"):
        y.numpy()
    with pytest.raises(TypeError, match="cuda"):
        np.asarray(y)
    with pytest.raises(NotImplementedError, match="cuda"):
        _ = y > 0


def test_factories_take_device():
    nc.manual_seed(3)
    a = nc.randn(4, 3, device="cuda")
    nc.manual_seed(3)
    b = nc.randn(4, 3)
    np.testing.assert_array_equal(a.cpu().numpy(), b.numpy())   # same draws on both
    assert nc.zeros(2, 3, device="cuda").cpu().numpy().sum() == 0
    assert nc.ones_like(a).is_cuda and nc.ones_like(a).cpu().numpy().sum() == 12
    assert nc.full((2,), 7.0, device="cuda").cpu().tolist() == [7.0, 7.0]


def test_mixed_devices_and_unsupported_ops_raise():
    a, b = nc.randn(3), nc.randn(3).cuda()
    with pytest.raises(RuntimeError, match="same device"):
        a + b
    with pytest.raises(NotImplementedError, match="Exp has no CUDA implementation"):
        nc.exp(b)
    with pytest.raises(NotImplementedError, match="broadcasting"):
        nc.randn(4, 3).cuda() + nc.randn(3).cuda()


def test_to_device_is_differentiable():
    x = nc.randn(4, requires_grad=True)
    y = (x.to("cuda") * 3.0).sum()
    y.backward()
    assert not x.grad.is_cuda
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 3.0, np.float32))


# ------------------------------------------------------------ ops: cuda == cpu (+ grads)

def _pair(*shapes, dtype=np.float64, scale=1.0):
    """Leaf tensors on the CPU and their copies on the GPU, all requiring grad."""
    cpu = [nc.tensor(np.random.default_rng(i).standard_normal(s) * scale, dtype=dtype,
                     requires_grad=True) for i, s in enumerate(shapes)]
    gpu = [nc.tensor(t.detach().numpy(), device="cuda", requires_grad=True) for t in cpu]
    return cpu, gpu


def _check_op(fn, *shapes, dtype=np.float64, scale=1.0):
    cpu, gpu = _pair(*shapes, dtype=dtype, scale=scale)
    out_c, out_g = fn(*cpu), fn(*gpu)
    assert out_g.is_cuda
    close(out_g, out_c, TOL[dtype])
    weights = np.random.default_rng(9).standard_normal(out_c.shape).astype(dtype)
    (out_c * nc.tensor(weights)).sum().backward()
    (out_g * nc.tensor(weights, device="cuda")).sum().backward()
    for c, g in zip(cpu, gpu):
        assert g.grad.is_cuda
        close(g.grad, c.grad, TOL[dtype])


OPS = {
    "add": (lambda a, b: a + b, (5, 7), (5, 7)),
    "sub_scalar": (lambda a: 2.0 - a * 0.5, (6,)),
    "mul_div": (lambda a, b: a * b / (b * b + 1.0), (3, 4), (3, 4)),
    "reductions": (lambda a: nc.cat([nc.stack([(-a).mean(), a.sum()]), a.sum(0), a.mean(0)]),
                   (5, 3)),
    "linear": (lambda x, w, b: F.linear(x, w, b), (2, 3, 7), (5, 7), (5,)),
    "matmul": (lambda a, b: a @ b, (4, 6), (6, 3)),
    "bmm": (lambda a, b: a @ b, (2, 4, 6), (2, 6, 3)),
    "activations": (lambda x: F.relu(x) + F.tanh(x) * F.sigmoid(x) + F.gelu(x)
                    + F.leaky_relu(x, 0.1), (4, 9)),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (2, 3, 9, 8),
               (4, 3, 3, 3), (4,)),
    "pools": (lambda x: F.max_pool2d(x, 2) + F.avg_pool2d(x, 2), (2, 3, 8, 6)),
    "global_pool": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 5, 4, 4)),
    "index_stack_cat": (lambda a: nc.stack([a[1], a[0]]) + nc.cat([a[2:], a[:1]]), (3, 4)),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   (4, 3, 5, 5), (3,), (3,)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_cpu(name, dtype):
    fn, *shapes = OPS[name]
    _check_op(fn, *shapes, dtype=dtype)


def test_cross_entropy_and_labels():
    cpu, gpu = _pair((6, 5))
    target = np.array([0, 4, 2, 1, 3, 4])
    for reduction in ("mean", "sum"):
        lc = F.cross_entropy(cpu[0], target, reduction=reduction, label_smoothing=0.1)
        lg = F.cross_entropy(gpu[0], target, reduction=reduction, label_smoothing=0.1)
        close(lg, lc, 1e-10)
        lc.backward()
        lg.backward()
        close(gpu[0].grad, cpu[0].grad, 1e-10)
    with pytest.raises(IndexError):
        F.cross_entropy(gpu[0], np.array([0, 5, 0, 0, 0, 0]))
    close(F.cross_entropy(gpu[0], nc.tensor(target).cuda()), F.cross_entropy(cpu[0], target),
          1e-10)
    with pytest.raises(RuntimeError, match="same device"):
        F.cross_entropy(cpu[0], nc.tensor(target).cuda())


def test_embedding_lstm_gru_dropout():
    nc.manual_seed(1)
    emb, lstm, gru = nn.Embedding(11, 6), nn.LSTM(6, 5, num_layers=2), nn.GRU(5, 4)
    ids = np.random.default_rng(0).integers(0, 11, size=(7, 3))

    def run(device):
        nc.manual_seed(5)
        mods = [m.to(device) for m in (emb, lstm, gru)]
        for m in mods:
            for p in m.parameters():
                p.grad = None
        x = F.dropout(mods[0](nc.tensor(ids, device=device)), 0.3)
        y, (h, c) = mods[1](x)
        z, hz = mods[2](y)
        (z.sum() + h.sum() * 0.5 + c.mean() + hz.sum()).backward()
        grads = [p.grad.cpu().numpy() for m in mods for p in m.parameters()]
        return z.detach().cpu().numpy(), grads

    z_cpu, g_cpu = run("cpu")
    z_gpu, g_gpu = run("cuda")
    close(z_gpu, z_cpu, 1e-4)
    for a, b in zip(g_gpu, g_cpu):
        close(a, b, 1e-4)
    with pytest.raises(IndexError):
        emb.to("cuda")(nc.tensor([[11]], device="cuda"))
    with pytest.raises(RuntimeError, match="same device"):
        emb.cpu()(nc.tensor([[1]], device="cuda"))


# ------------------------------------------------------------------- training parity

def _lenet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, 10))


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_training_matches_cpu(opt):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 16)

    def train(device):
        nc.manual_seed(0)
        model = _lenet().to(device)
        optim = (nc.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                              weight_decay=1e-4) if opt == "sgd"
                 else nc.optim.AdamW(model.parameters(), lr=1e-3))
        losses = []
        for _ in range(6):
            optim.zero_grad()
            loss = F.cross_entropy(model(nc.from_numpy(x).to(device)), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            losses.append(loss.item())
        return losses, model

    cpu_losses, _ = train("cpu")
    gpu_losses, model = train("cuda")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=2e-4)
    assert all(p.is_cuda for p in model.parameters())


def test_batchnorm_buffers_state_dict_and_checkpoint(tmp_path):
    nc.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    cpu_model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    cpu_model.load_state_dict(model.state_dict())
    model.cuda()
    assert all(b.is_cuda for b in model.buffers())
    x = nc.randn(3, 2, 6, 6)
    for _ in range(2):
        out_g, out_c = model(x.cuda()), cpu_model(x)
    close(out_g, out_c, 1e-4)
    state = model.state_dict()
    assert int(state["1.num_batches_tracked"].item()) == 2
    close(state["1.running_var"], cpu_model.state_dict()["1.running_var"], 1e-5)
    optim = nc.optim.Adam(model.parameters())
    model(x.cuda()).sum().backward()
    optim.step()
    path = tmp_path / "ckpt.safetensors"
    nc.io.save_checkpoint(path, model=model, optimizer=optim, epoch=1)
    fresh = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).cuda()
    fresh_opt = nc.optim.Adam(fresh.parameters())
    nc.io.load_checkpoint(path, model=fresh, optimizer=fresh_opt)
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
        assert a.is_cuda
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    moments = [s["exp_avg"] for s in fresh_opt.state.values()]
    assert moments and all(not isinstance(m, np.ndarray) for m in moments)
    assert all(not p.is_cuda for p in fresh.cpu().parameters())


def test_unsupported_optimizer_says_so():
    model = nn.Linear(3, 2).cuda()
    opt = nc.optim.RMSprop(model.parameters())
    model(nc.randn(4, 3).cuda()).sum().backward()
    with pytest.raises(NotImplementedError, match="rmsprop"):
        opt.step()


def test_stand_in_exports_every_cuda_op():
    """tests/_fake_cuda.py hard-codes the op list: it must follow nncore/cuda/ops.py."""
    import ast
    from pathlib import Path

    from . import _fake_cuda

    source = Path(nncore.cuda.__file__).with_name("ops.py").read_text()
    real = {alias.asname or alias.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) for alias in node.names}
    fake = {n for n in vars(_fake_cuda.fake_ops) if not n.startswith("_")}
    assert real - fake == set(), f"missing from the stand-in: {sorted(real - fake)}"
