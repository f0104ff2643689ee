"""Optional CUDA build for setup.py: nncore/_cuda/*.cu compiled by nvcc, linked into the
Cython extension nncore._cuda._ext.

Environment variables:
  NNCORE_CUDA=1             build the CUDA extension (nothing CUDA is built without it).
  NNCORE_NVCC=/path/nvcc    the nvcc to use (else nvcc on PATH, else /usr/local/cuda/bin/nvcc).
  NNCORE_CUDA_ARCH="80;90"  compute capabilities to generate code for (SASS per arch, plus
                            PTX of the newest so later GPUs can JIT it).

The CUDA runtime is linked statically (libcudart_static.a) when the toolkit has it, so the
built extension needs only the NVIDIA driver at run time, and imports (reporting no device)
on machines without one.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

CUDA_DIR = os.path.join("nncore", "_cuda")
DEFAULT_ARCHS = "80;90"


def requested() -> bool:
    return os.environ.get("NNCORE_CUDA", "") not in ("", "0")


def find_nvcc() -> str | None:
    """nvcc from NNCORE_NVCC, PATH or /usr/local/cuda/bin, or None."""
    candidates = [os.environ.get("NNCORE_NVCC"), shutil.which("nvcc"),
                  "/usr/local/cuda/bin/nvcc"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def arch_flags(archs: str | None = None) -> list:
    """-gencode flags for "80;90"-style lists (SASS for each, PTX for the last)."""
    archs = archs or os.environ.get("NNCORE_CUDA_ARCH") or DEFAULT_ARCHS
    codes = [a.strip().replace(".", "") for a in archs.replace(",", ";").split(";") if a.strip()]
    if not codes or not all(c.isdigit() for c in codes):
        raise ValueError(f"NNCORE_CUDA_ARCH must look like '80;90', got {archs!r}")
    flags = []
    for c in codes:
        flags += ["-gencode", f"arch=compute_{c},code=sm_{c}"]
    flags += ["-gencode", f"arch=compute_{codes[-1]},code=compute_{codes[-1]}"]
    return flags


def nvcc_compile_command(nvcc: str, source: str, obj: str, arch: list) -> list:
    """The nvcc command that compiles one .cu file into a relocatable object."""
    return [nvcc, "-c", source, "-o", obj, "-O3", "-std=c++17", "-Xcompiler", "-fPIC",
            "-I", CUDA_DIR, *arch]


def _toolkit_lib(nvcc: str) -> str | None:
    """The toolkit's library folder holding libcudart (next to nvcc, CUDA_HOME, /usr/local/cuda)."""
    roots = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc))),
             os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib")):
            lib = os.path.join(root, sub)
            if any(os.path.exists(os.path.join(lib, f))
                   for f in ("libcudart_static.a", "libcudart.so")):
                return lib
    return None


def cuda_extensions(cythonize_options: dict) -> list:
    """[] unless NNCORE_CUDA=1 and nvcc exists; else the cythonized nncore._cuda._ext."""
    if not requested():
        return []
    nvcc = find_nvcc()
    if nvcc is None:
        print("nncore: NNCORE_CUDA=1 but nvcc was not found (set NNCORE_NVCC or put nvcc on "
              "PATH); building without CUDA")
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    libdir = _toolkit_lib(nvcc)
    if libdir is None:
        print(f"nncore: NNCORE_CUDA=1 but no libcudart was found for {nvcc} (set CUDA_HOME); "
              "building without CUDA")
        return []
    static = os.path.join(libdir, "libcudart_static.a")
    if os.path.exists(static):
        link = dict(extra_objects=[static], libraries=["rt", "dl", "pthread"])
    else:
        link = dict(libraries=["cudart"], library_dirs=[libdir],
                    runtime_library_dirs=[libdir])
    import numpy as np

    ext = Extension(
        "nncore._cuda._ext",
        [os.path.join(CUDA_DIR, "_ext.pyx")],
        include_dirs=[np.get_include(), CUDA_DIR],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=sorted(glob.glob(os.path.join(CUDA_DIR, "*.cu"))
                       + glob.glob(os.path.join(CUDA_DIR, "*.cuh"))
                       + glob.glob(os.path.join(CUDA_DIR, "*.h"))),
        language="c++",
        **link,
    )
    print(f"nncore: building CUDA kernels with {nvcc} ({' '.join(arch_flags())})")
    # generated C++ goes under build/ (ignored), not next to the .pyx
    return cythonize([ext], build_dir=os.path.join("build", "cuda_cython"), **cythonize_options)


class CudaBuildMixin:
    """build_ext mixin: compiles the .cu files with nvcc before linking nncore._cuda._ext."""

    def build_extension(self, ext):
        if ext.name != "nncore._cuda._ext":
            return super().build_extension(ext)
        nvcc, arch = find_nvcc(), arch_flags()
        objdir = os.path.join(self.build_temp, "nncore_cuda")
        os.makedirs(objdir, exist_ok=True)
        objects = []
        for source in sorted(glob.glob(os.path.join(CUDA_DIR, "*.cu"))):
            obj = os.path.join(objdir, os.path.basename(source)[:-3] + ".o")
            deps = [source] + glob.glob(os.path.join(CUDA_DIR, "*.cuh")) + [
                os.path.join(CUDA_DIR, "nncore_cuda.h")]
            if self.force or not os.path.exists(obj) or any(
                    os.path.getmtime(d) > os.path.getmtime(obj) for d in deps):
                print(f"nvcc {source}")
                subprocess.check_call(nvcc_compile_command(nvcc, source, obj, arch))
            objects.append(obj)
        # the .cu objects come first: libcudart_static.a must follow the code that uses it
        ext.extra_objects = objects + [o for o in ext.extra_objects if o not in objects]
        return super().build_extension(ext)
