"""The optional CUDA build, checked on a CPU machine: nncore.cuda behaves as documented without
a GPU (and without a CUDA build), `import nncore` imports nothing CUDA, build_cuda.py's gating,
and every nncore/_cuda/*.cu file compiles with nvcc (sm_80) when nvcc is present, so a broken
.cu file fails CI here. The kernels themselves are tested on a GPU by tests/cuda/."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import nncore.cuda as cuda

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "nncore" / "_cuda"


def _build_cuda():
    spec = importlib.util.spec_from_file_location("build_cuda", ROOT / "build_cuda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_nncore_imports_nothing_cuda():
    code = ("import sys, nncore; bad = [m for m in sys.modules if 'cuda' in m.lower()]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")
def test_api_without_a_gpu():
    assert cuda.is_available() is False
    assert cuda.device_count() == 0
    assert cuda.memory_allocated() == cuda.max_memory_allocated() == 0
    assert cuda.memory_reserved() == 0
    cuda.empty_cache()                    # no-ops, never raise
    cuda.reset_peak_memory_stats()
    for fn in (cuda.get_device_name, cuda.synchronize):
        with pytest.raises(RuntimeError, match="NNCORE_CUDA=1" if not cuda.is_built()
                           else "no CUDA device"):
            fn()
    assert issubclass(cuda.CudaError, RuntimeError)
    assert issubclass(cuda.OutOfMemoryError, cuda.CudaError)


@pytest.mark.skipif(cuda.is_built(), reason="this nncore was built with CUDA")
def test_not_built_messages():
    assert cuda.is_built() is False
    with pytest.raises(RuntimeError, match="rebuild with NNCORE_CUDA=1"):
        cuda.DeviceArray  # noqa: B018
    with pytest.raises(RuntimeError, match="built without CUDA"):
        import nncore.cuda.ops  # noqa: F401


def test_build_gating(monkeypatch, capsys):
    bc = _build_cuda()
    monkeypatch.delenv("NNCORE_CUDA", raising=False)
    assert bc.cuda_extensions({}) == []                        # not requested: nothing CUDA
    monkeypatch.setenv("NNCORE_CUDA", "1")
    monkeypatch.setattr(bc, "find_nvcc", lambda: None)
    assert bc.cuda_extensions({}) == []
    assert "nvcc was not found" in capsys.readouterr().out
    assert bc.arch_flags("80;90") == [
        "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
        "-gencode", "arch=compute_90,code=compute_90"]
    with pytest.raises(ValueError, match="NNCORE_CUDA_ARCH"):
        bc.arch_flags("sm_80")


def test_every_cu_file_compiles(tmp_path):
    """nvcc -c each .cu for sm_80 only, two at a time (~40 s on 2 cores)."""
    bc = _build_cuda()
    nvcc = bc.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (set NNCORE_NVCC or put nvcc on PATH)")
    sources = sorted(CUDA_DIR.glob("*.cu"))
    assert len(sources) >= 10

    def compile_one(src: Path):
        cmd = bc.nvcc_compile_command(nvcc, str(src), str(tmp_path / (src.stem + ".o")),
                                      ["-arch=sm_80"])
        return src.name, subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(compile_one, sources))
    failed = [f"{name}:\n{r.stderr[-3000:]}" for name, r in results if r.returncode != 0]
    assert not failed, "nvcc failed:\n" + "\n".join(failed)
    warned = [f"{name}: {r.stderr.strip()[:500]}" for name, r in results if "warning" in r.stderr]
    assert not warned, "nvcc warnings:\n" + "\n".join(warned)
    print(f"compiled {len(sources)} .cu files in {time.perf_counter() - start:.1f} s")
