"""The one generic op checker every op test uses.

check_op(fn, ref, inputs) verifies an nncore op three ways:
  1. forward against a NumPy reference, in float32 and float64;
  2. backward against central finite differences in float64 (every element for small
     inputs, random directions for large ones);
  3. optionally against PyTorch, when it is installed (see `torch_or_skip`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

import nncore

ODD_SHAPES = [(1,), (7,), (97,), (101,), (1, 1), (7, 3), (3, 97), (101, 7), (2, 3, 5)]

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _is_diff(x) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _to_tensors(inputs: Sequence, dtype, requires_grad: bool) -> list:
    out = []
    for x in inputs:
        if _is_diff(x):
            out.append(nncore.Tensor(x.astype(dtype), requires_grad=requires_grad))
        elif isinstance(x, np.ndarray):
            out.append(nncore.Tensor(x))
        else:
            out.append(x)
    return out


def numeric_grad(f: Callable[[list], float], inputs: list, i: int, eps: float = 1e-6,
                 max_elements: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of scalar f w.r.t. inputs[i].

    Returns (directions, derivatives): for inputs of up to `max_elements` elements the
    directions are the unit vectors (full Jacobian-vector check), else 8 random directions.
    """
    x = inputs[i]
    if x.size <= max_elements:
        dirs = np.eye(x.size).reshape((x.size,) + x.shape)
    else:
        dirs = rng(seed).standard_normal((8,) + x.shape)
    derivs = np.empty(len(dirs))
    for k, d in enumerate(dirs):
        plus = list(inputs)
        minus = list(inputs)
        plus[i] = x + eps * d
        minus[i] = x - eps * d
        derivs[k] = (f(plus) - f(minus)) / (2 * eps)
    return dirs, derivs


def check_op(fn: Callable, ref: Callable | None, inputs: Sequence, *, check_grad: bool = True,
             grad_rtol: float = 1e-5, grad_atol: float = 1e-7, dtypes=(np.float32, np.float64),
             tol: dict | None = None, seed: int = 0) -> None:
    """Check `fn` (on nncore Tensors) against `ref` (on float64 ndarrays) and finite
    differences. Non-float inputs (labels, ints, options) are passed through unchanged."""
    inputs = list(inputs)
    if ref is not None:
        expected = np.asarray(ref(*[x.astype(np.float64) if _is_diff(x) else x
                                    for x in inputs]))
        for dtype in dtypes:
            got = fn(*_to_tensors(inputs, dtype, False))
            assert got.dtype == np.dtype(dtype), f"output dtype {got.dtype} != {dtype}"
            t = (tol or TOL)[dtype]
            np.testing.assert_allclose(got.data, expected, **t,
                                       err_msg=f"forward mismatch in {np.dtype(dtype)}")
    if not check_grad:
        return
    x64 = [x.astype(np.float64) if _is_diff(x) else x for x in inputs]
    tensors = _to_tensors(x64, np.float64, True)
    out = fn(*tensors)
    weights = rng(seed + 1).standard_normal(out.shape)
    out.backward(weights)

    def scalar(values: list) -> float:
        with nncore.no_grad():
            o = fn(*_to_tensors(values, np.float64, False))
        return float(np.sum(o.data * weights))

    for i, (x, t) in enumerate(zip(x64, tensors)):
        if not _is_diff(x):
            continue
        assert t.grad is not None, f"input {i} received no gradient"
        assert t.grad.shape == x.shape, f"grad shape {t.grad.shape} != input shape {x.shape}"
        dirs, numeric = numeric_grad(scalar, x64, i, seed=seed)
        analytic = np.tensordot(dirs, t.grad.data, axes=x.ndim)
        np.testing.assert_allclose(analytic, numeric, rtol=grad_rtol, atol=grad_atol,
                                   err_msg=f"gradient mismatch for input {i}")


def torch_or_skip():
    """Import torch or skip the test (parity tests run where torch==2.13.0 is installed)."""
    return pytest.importorskip("torch")


def shared_data_dir():
    """The real datasets folder: $NNCORE_SHARED_DATA, else ../shared/data beside the repo,
    else /work/shared/data; None when none exists (tests using it then skip)."""
    import os
    from pathlib import Path

    candidates = [os.environ.get("NNCORE_SHARED_DATA"),
                  Path(__file__).resolve().parents[2] / "shared" / "data",
                  "/work/shared/data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None
