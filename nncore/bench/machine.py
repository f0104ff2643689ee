"""What machine a benchmark ran on: CPU, cores, load, NumPy/BLAS, nncore and torch builds."""
from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["machine_info"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, core count, NumPy version and BLAS, nncore build_info() and torch version."""
    import numpy as np

    info: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                            "python": sys.version.split()[0], "numpy": np.__version__}
    if hasattr(os, "getloadavg"):  # other work on the machine makes figures noisy
        info["loadavg_1_5_15"] = os.getloadavg()
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg["Build Dependencies"]["blas"]
    except Exception as e:  # older NumPy: no mode="dicts"
        info["numpy_blas"] = f"unknown ({type(e).__name__})"
    try:
        import nncore

        info["nncore"] = nncore.build_info()
    except Exception as e:
        info["nncore"] = f"not importable: {type(e).__name__}: {e}"
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info
