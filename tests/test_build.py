"""The build is what it claims: OpenMP really on, thread count honoured, determinism."""
import os
import shlex
import subprocess
import sysconfig
import tempfile

import numpy as np
import pytest

import nncore
from nncore import nn
from nncore._kernels._parallel import _distinct_threads_in_prange


def _compiler_supports_openmp() -> bool:
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            r = subprocess.run(cc + ["-fopenmp", src, "-o", os.path.join(tmp, "probe")],
                               capture_output=True)
        except OSError:
            return False
    return r.returncode == 0


@pytest.fixture
def threads():
    """Restore the thread count after a test changes it."""
    before = nncore.get_num_threads()
    yield
    nncore.set_num_threads(before)


def test_openmp_is_on_when_the_compiler_supports_it():
    if os.environ.get("NNCORE_NO_OPENMP", "") not in ("", "0"):
        pytest.skip("built with NNCORE_NO_OPENMP")
    if not _compiler_supports_openmp():
        pytest.skip("this compiler has no OpenMP")
    assert nncore.openmp_enabled(), "OpenMP silently went missing from the build"
    assert nncore.build_info()["openmp_version"] >= 200805
    assert _distinct_threads_in_prange(2) == 2, "a 2-thread prange did not run on 2 threads"


def test_set_num_threads_validates_and_round_trips(threads):
    nncore.set_num_threads(1)
    assert nncore.get_num_threads() == 1
    assert _distinct_threads_in_prange(1) == 1
    with pytest.raises(ValueError, match=">= 1"):
        nncore.set_num_threads(0)


def test_omp_num_threads_sets_the_default():
    code = "import nncore; print(nncore.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([os.sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "1"


def _train_mlp(steps: int, seed: int = 0) -> list:
    nncore.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    opt = nncore.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = nncore.from_numpy(rng.standard_normal((64, 784)).astype(np.float32))
        y = rng.integers(0, 10, 64)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_fixed_seed_and_threads_give_bit_identical_training(threads):
    for n in (1, 2):
        nncore.set_num_threads(n)
        a, b = _train_mlp(5), _train_mlp(5)
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa, pb)


def test_one_thread_equals_two_threads_within_rounding(threads):
    nncore.set_num_threads(1)
    one = _train_mlp(3)
    nncore.set_num_threads(2)
    two = _train_mlp(3)
    for p1, p2 in zip(one, two):
        np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-6)


def test_large_ops_identical_across_thread_counts(threads):
    rng = np.random.default_rng(0)
    x = nncore.Tensor(rng.standard_normal((300, 1001)).astype(np.float32))
    w = nncore.Tensor(rng.standard_normal((257, 1001)).astype(np.float32))
    results = []
    for n in (1, 2):
        nncore.set_num_threads(n)
        y = nn.functional.linear(x, w)
        results.append((y.numpy().copy(), nn.functional.relu(y).numpy().copy(),
                        nn.functional.log_softmax(y, 1).numpy().copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
