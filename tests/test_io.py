"""nncore.save/load (safetensors, no pickle), checkpoints: round trips, exact resume, atomic
writes, and truncated / tampered / absurd files."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import io as nio
from nncore import nn, optim
from nncore.optim import lr_scheduler

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nncore.__file__)))


def _header(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return raw, n, json.loads(raw[8:8 + n])


def _write_raw(path, header, data=b"", pad=True):
    blob = json.dumps(header).encode()
    if pad:
        blob += b" " * (-(8 + len(blob)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + data)


# ------------------------------------------------------------------------------ round trips
def test_round_trip_all_dtypes_and_shapes(tmp_path):
    rng = np.random.default_rng(0)
    sd = {
        "w": rng.standard_normal((7, 3)).astype(np.float32),
        "d": rng.standard_normal(97),
        "h": rng.standard_normal(5).astype(np.float16),
        "i": np.arange(11, dtype=np.int64).reshape(1, 11),
        "i32": np.arange(-3, 4, dtype=np.int32),
        "u8": np.arange(9, dtype=np.uint8),
        "b": np.array([True, False, True]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), np.float32),
        "t": nncore.tensor([1.0, 2.0]),
        "strided": rng.standard_normal((4, 6))[:, ::2],
    }
    path = tmp_path / "x.safetensors"
    nncore.save(sd, path, metadata={"note": "hello"})
    out = nncore.load(path)
    assert set(out) == set(sd)
    for k, v in sd.items():
        want = v.data if isinstance(v, nncore.Tensor) else v
        assert isinstance(out[k], nncore.Tensor)
        assert out[k].dtype == want.dtype and out[k].shape == want.shape, k
        np.testing.assert_array_equal(out[k].data, want)
    assert nio.load_metadata(path) == {"note": "hello"}
    raw, n, header = _header(path)
    assert (8 + n) % 8 == 0  # data section aligned
    assert header["w"]["dtype"] == "F32" and header["w"]["shape"] == [7, 3]


def test_model_state_dict_round_trip(tmp_path):
    nncore.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    nncore.save(model.state_dict(), tmp_path / "m.safetensors")
    nncore.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    other.load_state_dict(nncore.load(tmp_path / "m.safetensors"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)


def test_reads_files_written_by_the_safetensors_library(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.int64)}
    st.save_file(arrays, str(tmp_path / "ref.safetensors"), metadata={"k": "v"})
    out = nncore.load(tmp_path / "ref.safetensors")
    for k, v in arrays.items():
        np.testing.assert_array_equal(out[k].data, v)
    nncore.save(arrays, tmp_path / "ours.safetensors")
    back = st.load_file(str(tmp_path / "ours.safetensors"))
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="must be a Tensor or numpy.ndarray"):
        nncore.save({"a": [1, 2]}, tmp_path / "x")
    with pytest.raises(TypeError, match="complex128"):
        nncore.save({"a": np.zeros(2, complex)}, tmp_path / "x")
    with pytest.raises(TypeError, match="names must be str"):
        nncore.save({1: np.zeros(2)}, tmp_path / "x")
    with pytest.raises(ValueError, match="reserved"):
        nncore.save({"__metadata__": np.zeros(2)}, tmp_path / "x")
    with pytest.raises(TypeError, match="metadata must map str to str"):
        nncore.save({"a": np.zeros(2)}, tmp_path / "x", metadata={"a": 1})
    assert os.listdir(tmp_path) == []  # nothing half-written


# ------------------------------------------------------------------------------ bad files
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    nncore.save({"a": np.arange(12, dtype=np.float32).reshape(3, 4),
                 "b": np.arange(5, dtype=np.int64)}, path)
    return path


def test_truncated_files(tmp_path, good_file):
    raw = good_file.read_bytes()
    for cut in [0, 5, 8, 20, len(raw) - 1]:
        p = tmp_path / f"cut{cut}"
        p.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            nncore.load(p)


def test_tampered_headers(tmp_path, good_file):
    raw, n, header = _header(good_file)
    data = raw[8 + n:]
    cases = {
        "bad dtype": lambda h: h["a"].update(dtype="C64"),
        "shape vs offsets": lambda h: h["a"].update(shape=[4, 4]),
        "negative dim": lambda h: h["a"].update(shape=[-3, -4]),
        "float dim": lambda h: h["a"].update(shape=[3.0, 4]),
        "bool dim": lambda h: h["a"].update(shape=[True, 12]),
        "offsets past end": lambda h: h["b"].update(
            data_offsets=[h["b"]["data_offsets"][0] + 8, h["b"]["data_offsets"][1] + 8]),
        "overlap": lambda h: h["a"].update(data_offsets=[0, 48], shape=[12]),
        "reversed offsets": lambda h: h["a"].update(data_offsets=[48, 0]),
        "extra field": lambda h: h["a"].update(extra=1),
        "metadata not str": lambda h: h.update(__metadata__={"x": 1}),
        "not a dict": lambda h: h.update(c=[1, 2]),
    }
    for _name, mutate in cases.items():
        h = json.loads(json.dumps(header))
        mutate(h)
        p = tmp_path / "bad.safetensors"
        _write_raw(p, h, data)
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            nncore.load(p)
    p = tmp_path / "junk"
    p.write_bytes(struct.pack("<Q", 6) + b"{nope}" + data)
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        nncore.load(p)
    p.write_bytes(struct.pack("<Q", 2) + b"[]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        nncore.load(p)
    p.write_bytes(raw + b"trailing")
    with pytest.raises(ValueError, match="data section has"):
        nncore.load(p)


def test_huge_claims_allocate_nothing(tmp_path):
    p = tmp_path / "huge.safetensors"
    # A header claiming 1 TB of float32 with offsets that say so; the file is tiny.
    n = 2 ** 38
    _write_raw(p, {"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}})
    with pytest.raises(ValueError, match="run past the end"):
        nncore.load(p)
    # ... and one whose offsets are consistent with a small span but the shape is absurd
    _write_raw(p, {"w": {"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 8]}},
               b"\0" * 8)
    with pytest.raises(ValueError, match="needs"):
        nncore.load(p)
    # A header length of 1 TB / beyond the cap / beyond the file.
    p.write_bytes(struct.pack("<Q", 2 ** 40) + b"{}")
    with pytest.raises(ValueError, match="limit"):
        nncore.load(p)
    p.write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(ValueError, match="truncated"):
        nncore.load(p)


# ------------------------------------------------------------------------------ checkpoints
def _setup(seed=0):
    nncore.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = optim.Adam([{"params": model[0].parameters()},
                      {"params": model[2].parameters(), "lr": 3e-3}], lr=1e-2, amsgrad=True)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.5)
    return model, opt, sched


def _train(model, opt, sched, steps):
    loss_fn = nn.CrossEntropyLoss()
    rng = nncore.random.default_generator()  # the global RNG drives the data: resumed too
    for _ in range(steps):
        x = nncore.Tensor(rng.standard_normal((8, 5)).astype(np.float32))
        y = nncore.Tensor(rng.integers(0, 3, 8))
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()


def test_resume_is_bit_identical(tmp_path):
    straight = _setup()
    _train(*straight, 10)

    first = _setup()
    _train(*first, 4)
    path = tmp_path / "ckpt.safetensors"
    nio.save_checkpoint(path, model=first[0], optimizer=first[1], scheduler=first[2], epoch=4,
                        extra={"history": [1.5, 2.0], "best": np.array([0.25])})
    nncore.manual_seed(123)  # scramble the RNG: the checkpoint must restore it
    resumed = _setup(seed=99)  # fresh objects with different weights
    info = nio.load_checkpoint(path, model=resumed[0], optimizer=resumed[1],
                               scheduler=resumed[2])
    assert info["epoch"] == 4 and info["extra"]["history"] == [1.5, 2.0]
    np.testing.assert_array_equal(info["extra"]["best"], [0.25])
    assert resumed[1].param_groups[0]["betas"] == (0.9, 0.999)
    _train(*resumed, 6)
    for (k, a), (_, b) in zip(straight[0].state_dict().items(),
                              resumed[0].state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)
    assert straight[2].get_last_lr() == resumed[2].get_last_lr()


def test_checkpoint_other_schedulers_and_errors(tmp_path):
    model, opt, _ = _setup()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(1.0)
    path = tmp_path / "c.safetensors"
    nio.save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, rng=False)
    sched2 = lr_scheduler.ReduceLROnPlateau(_setup()[1])
    nio.load_checkpoint(path, scheduler=sched2)
    assert sched2.best == 1.0 and sched2.patience == 0 and sched2.mode_worse == float("inf")
    nncore.save({"a": np.zeros(1)}, tmp_path / "plain")
    with pytest.raises(ValueError, match="not an nncore checkpoint"):
        nio.load_checkpoint(tmp_path / "plain", model=model)
    nio.save_checkpoint(path, model=model)
    with pytest.raises(ValueError, match="no optimizer state"):
        nio.load_checkpoint(path, optimizer=opt)
    with pytest.raises(TypeError, match="cannot store extra"):
        nio.save_checkpoint(path, extra={"f": print})


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched = _setup()
    path = tmp_path / "ckpt.safetensors"
    nio.save_checkpoint(path, model=model, optimizer=opt, epoch=1)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    _train(model, opt, sched, 2)
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        nio.save_checkpoint(path, model=model, optimizer=opt, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # the temp file was removed
    assert nio.load_checkpoint(path, model=model, optimizer=opt)["epoch"] == 1


def test_killed_process_mid_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    nncore.save({"w": np.ones(4, np.float32)}, path)
    # The child writes a big file and is killed (SIGKILL, no cleanup) after some bytes.
    code = f"""
import os, numpy as np, nncore.io as nio, nncore._safetensors as fmt
def write_then_die(f):
    f.write(b"\\0" * 64)
    f.flush()
    os.kill(os.getpid(), 9)
orig = fmt._atomic_write
fmt._atomic_write = lambda path, write: orig(path, write_then_die)
nio.save({{"w": np.zeros(10**6, np.float32)}}, {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=_REPO_ROOT, capture_output=True)
    assert proc.returncode == -9
    np.testing.assert_array_equal(nncore.load(path)["w"].data, np.ones(4, np.float32))
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))  # the orphan temp file


# ------------------------------------------------------------------------------ interop
def test_from_torch_state_dict():
    torch = pytest.importorskip("torch")
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    tmodel[0].weight.data = tmodel[0].weight.data.to(torch.bfloat16).float()
    sd = nio.from_torch_state_dict(tmodel.state_dict())
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(nncore.Tensor(x)).data, want, rtol=1e-5, atol=1e-6)
    bf = nio.from_torch_state_dict({"x": torch.ones(2, dtype=torch.bfloat16)})
    assert bf["x"].dtype == np.float32
    with pytest.raises(TypeError, match="not a tensor"):
        nio.from_torch_state_dict({"x": 3})


def test_dlpack_zero_copy():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = nncore.from_dlpack(t)
    t[0, 0] = 42
    assert x.shape == (2, 3) and x.data[0, 0] == 42  # shares memory
    y = nncore.ones(4)
    back = torch.from_dlpack(y)
    y.data[1] = 7
    assert back[1].item() == 7
    assert y.__dlpack_device__()[0] == 1  # kDLCPU
    z = nncore.from_dlpack(np.arange(3.0))
    assert z.dtype == np.float64
    with pytest.raises(RuntimeError, match="require gradient"):
        torch.from_dlpack(nncore.ones(2, requires_grad=True))


def test_tampered_checkpoint_state_and_deep_json(tmp_path):
    model, opt, sched = _setup()
    path = tmp_path / "c.safetensors"
    nio.save_checkpoint(path, model=model, optimizer=opt, scheduler=sched)
    arrays, meta = nio._read(path)
    payload = json.loads(meta["nncore.checkpoint"])
    bad = dict(payload, rng={"bit_generator": "PCG64", "state": "nope"})
    nncore.save(arrays, path, {"nncore.checkpoint": json.dumps(bad)})
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="invalid RNG state"):
        nio.load_checkpoint(path, model=model, optimizer=opt)
    bad = dict(payload, optimizer={"__tensor__": "optimizer.nope"})
    nncore.save(arrays, path, {"nncore.checkpoint": json.dumps(bad)})
    with pytest.raises(ValueError, match="missing tensor"):
        nio.load_checkpoint(path, model=model, optimizer=opt)
    bad = dict(payload, scheduler={"__dict__": 5})
    nncore.save(arrays, path, {"nncore.checkpoint": json.dumps(bad)})
    with pytest.raises(ValueError, match="malformed checkpoint state"):
        nio.load_checkpoint(path, model=model, scheduler=sched)
    for p, b in zip(model.parameters(), before):  # nothing was changed by the failures
        np.testing.assert_array_equal(p.data, b)
    deep = b"[" * 100000 + b"]" * 100000
    path.write_bytes(struct.pack("<Q", len(deep)) + deep)
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        nncore.load(path)


def test_checkpoint_extra_round_trips_awkward_structures(tmp_path):
    extra = {"a.b": np.ones(2), "a": {"b": np.zeros(3)}, 3: "int key", "__x": (1, [2.5, None]),
             ("t", 1): True, "inf": float("inf"), "big": 2 ** 100}
    path = tmp_path / "e.safetensors"
    nio.save_checkpoint(path, rng=False, extra=extra)
    got = nio.load_checkpoint(path)["extra"]
    np.testing.assert_array_equal(got["a.b"], np.ones(2))
    np.testing.assert_array_equal(got["a"]["b"], np.zeros(3))
    assert got[3] == "int key" and got["__x"] == (1, [2.5, None]) and got[("t", 1)] is True
    assert got["inf"] == float("inf") and got["big"] == 2 ** 100
