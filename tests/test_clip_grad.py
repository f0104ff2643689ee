"""nn.utils.clip_grad_norm_ / clip_grad_value_: PyTorch's formula, inf norm, non-finite norms,
parameters without gradients, and parity with torch where installed."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nncore
from nncore import nn
from tests.helpers import rng, torch_or_skip


def params_with_grads(dtype=np.float32, scale=1.0, seed=0):
    r = rng(seed)
    ps = []
    for shape in [(7, 3), (97,), (1,), (4, 5, 2)]:
        p = nn.Parameter(r.standard_normal(shape).astype(dtype))
        p.grad = nncore.Tensor((r.standard_normal(shape) * scale).astype(dtype))
        ps.append(p)
    ps.append(nn.Parameter(np.zeros(3, dtype)))      # no grad: skipped
    return ps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_norm_formula(dtype, norm_type):
    ps = params_with_grads(dtype, scale=5.0)
    grads = [p.grad.data.astype(np.float64).copy() for p in ps if p.grad is not None]
    flat = np.concatenate([g.ravel() for g in grads])
    total = (np.abs(flat).max() if norm_type == math.inf
             else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type))
    got = nn.utils.clip_grad_norm_(ps, 1.5, norm_type)
    assert got.dtype == dtype and got.shape == ()
    np.testing.assert_allclose(float(got), total, rtol=1e-5)
    coef = min(1.0, 1.5 / (total + 1e-6))
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad.data, g * coef, rtol=1e-5)
    after = np.concatenate([p.grad.data.ravel() for p in ps if p.grad is not None])
    new = (np.abs(after).max() if norm_type == math.inf
           else np.sum(np.abs(after.astype(np.float64)) ** norm_type) ** (1 / norm_type))
    assert new <= 1.5 * (1 + 1e-5)


def test_small_norm_leaves_grads_unchanged_and_single_tensor():
    ps = params_with_grads(scale=1e-3)
    before = [p.grad.data.copy() for p in ps if p.grad is not None]
    nn.utils.clip_grad_norm_(ps, 10.0)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad.data, b)
    p = ps[0]
    total = nn.utils.clip_grad_norm_(p, 1e-3)
    assert float(total) > 0 and np.linalg.norm(p.grad.data) <= 1e-3 * (1 + 1e-5)


def test_no_grads_returns_zero():
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(np.ones(3, np.float32))], 1.0)) == 0.0


def test_nonfinite_norm():
    ps = params_with_grads()
    ps[0].grad.data[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = nn.utils.clip_grad_norm_(ps, 1.0)
    assert math.isnan(float(total))


def test_clip_value():
    ps = params_with_grads(scale=3.0)
    before = [p.grad.data.copy() for p in ps if p.grad is not None]
    nn.utils.clip_grad_value_(ps, 0.5)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad.data, np.clip(b, -0.5, 0.5))
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(ps, -1.0)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_torch_parity(norm_type):
    torch = torch_or_skip()
    ps = params_with_grads(np.float64, scale=4.0, seed=2)
    tps = []
    for p in ps:
        t = torch.nn.Parameter(torch.from_numpy(p.data.copy()))
        if p.grad is not None:
            t.grad = torch.from_numpy(p.grad.data.copy())
        tps.append(t)
    total = nn.utils.clip_grad_norm_(ps, 0.7, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.7, norm_type)
    np.testing.assert_allclose(float(total), float(ttotal), rtol=1e-12)
    for p, t in zip(ps, tps):
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    nn.utils.clip_grad_value_(ps, 0.01)
    torch.nn.utils.clip_grad_value_(tps, 0.01)
    for p, t in zip(ps, tps):
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-15)
