"""Fused optimizer kernels (nncore._kernels.optim) against NumPy references of torch's formulas.

The references apply torch.optim's single-tensor operations in the same order with the same
dtype rounding; the kernels never contract a*b+c into an FMA, so they agree bit for bit.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import get_num_threads, set_num_threads
from nncore._kernels import optim as K

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nncore.__file__)))

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 97, 100003]  # 100003 > parallel_min_elements(): the threaded path


# ------------------------------------------------------------------------------ references
def sgd_ref(p, grad, buf, lr, momentum, dampening, wd, nesterov, maximize, first):
    T = p.dtype.type
    g = -grad if maximize else grad.copy()
    if wd != 0:
        g = g + T(wd) * p
    if momentum != 0:
        if first:
            buf[...] = g
        else:
            buf[...] = buf * T(momentum) + T(1.0 - dampening) * g
        g = g + T(momentum) * buf if nesterov else buf
    p[...] = p + T(-lr) * g


def adam_ref(p, grad, m, v, vmax, step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled):
    T = p.dtype.type
    g = -grad if maximize else grad.copy()
    if wd != 0:
        if decoupled:
            p[...] = p * T(1.0 - lr * wd)
        else:
            g = g + T(wd) * p
    w1 = T(1.0 - beta1)
    if abs(w1) < 0.5:
        m[...] = m + w1 * (g - m)
    else:
        m[...] = g - (g - m) * (T(1) - w1)
    v[...] = v * T(beta2)
    v[...] = v + (T(1.0 - beta2) * g) * g
    step_size = lr / (1 - beta1**step)
    bc2_sqrt = (1 - beta2**step) ** 0.5
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        s = vmax
    else:
        s = v
    p[...] = p + (T(-step_size) * m) / (np.sqrt(s) / T(bc2_sqrt) + T(eps))


def _arrays(n, dtype, seed, k):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(k)]


SGD_CONFIGS = [  # momentum, dampening, weight_decay, nesterov, maximize
    (0.0, 0.0, 0.0, False, False),
    (0.0, 0.0, 0.1, False, True),
    (0.9, 0.0, 0.0, False, False),
    (0.9, 0.25, 0.01, False, True),
    (0.9, 0.0, 0.01, True, False),
]
ADAM_CONFIGS = [  # beta1, weight_decay, amsgrad, maximize, decoupled
    (0.9, 0.0, False, False, False),
    (0.9, 0.1, False, True, False),
    (0.9, 0.1, True, False, True),
    (0.3, 0.05, True, True, False),  # beta1 < 0.5: torch's other lerp branch
]


# ------------------------------------------------------------------------------ single tensor
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("cfg", SGD_CONFIGS)
def test_sgd_step_matches_reference(dtype, n, cfg):
    momentum, dampening, wd, nesterov, maximize = cfg
    p, buf = _arrays(n, dtype, 0, 2)
    p_ref, buf_ref = p.copy(), buf.copy()
    for step in range(3):
        (grad,) = _arrays(n, dtype, 10 + step, 1)
        K.sgd_step(p, grad, buf if momentum else None, 0.05, momentum, dampening, wd,
                   nesterov, maximize, step == 0)
        sgd_ref(p_ref, grad, buf_ref, 0.05, momentum, dampening, wd, nesterov, maximize,
                step == 0)
        np.testing.assert_array_equal(p, p_ref)
        if momentum:
            np.testing.assert_array_equal(buf, buf_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("cfg", ADAM_CONFIGS)
def test_adam_step_matches_reference(dtype, n, cfg):
    beta1, wd, amsgrad, maximize, decoupled = cfg
    (p,) = _arrays(n, dtype, 1, 1)
    m, v, vmax = (np.zeros(n, dtype) for _ in range(3))
    ref = [a.copy() for a in (p, m, v, vmax)]
    for step in range(1, 4):
        (grad,) = _arrays(n, dtype, 20 + step, 1)
        K.adam_step(p, grad, m, v, vmax if amsgrad else None, step, 1e-2, beta1, 0.99, 1e-8,
                    wd, amsgrad, maximize, decoupled)
        adam_ref(*ref[:1], grad, *ref[1:], step, 1e-2, beta1, 0.99, 1e-8, wd, amsgrad,
                 maximize, decoupled)
        for got, want in zip((p, m, v, vmax), ref):
            np.testing.assert_array_equal(got, want)


def test_shapes_zero_d_and_empty():
    for shape in [(), (0,), (3, 0, 2), (2, 3, 4)]:
        p = np.ones(shape, np.float64)
        g = np.full(shape, 2.0)
        buf = np.zeros(shape)
        K.sgd_step(p, g, buf, 0.5, 0.9, 0.0, 0.0, False, False, True)
        np.testing.assert_array_equal(p, np.zeros(shape))
        np.testing.assert_array_equal(buf, np.full(shape, 2.0))


def test_nan_propagates():
    p = np.array([1.0, 1.0, 1.0], np.float32)
    g = np.array([np.nan, 1.0, 1.0], np.float32)
    m, v = np.zeros(3, np.float32), np.zeros(3, np.float32)
    vmax = np.array([0.0, np.nan, 0.0], np.float32)
    K.adam_step(p, g, m, v, vmax, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True, False, False)
    assert np.isnan(vmax[:2]).all() and np.isnan(p[:2]).all() and np.isfinite(p[2])


# ------------------------------------------------------------------------------ multi-tensor
def _group(dtype, seed, shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


SHAPES = [(1,), (7,), (97, 3), (), (40000,), (5, 101), (100003,)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_multi_equals_single(dtype):
    params, grads = _group(dtype, 2, SHAPES), _group(dtype, 3, SHAPES)
    ms, vs, vmaxs = (_group(dtype, 4 + i, SHAPES) for i in range(3))
    for a in vs + vmaxs:
        np.abs(a, out=a)
    steps = [1, 2, 5, 1, 3, 9, 4]  # tensors of one group may be at different steps
    single = [[a.copy() for a in arrs] for arrs in (params, ms, vs, vmaxs)]
    for i in range(len(SHAPES)):
        K.adam_step(single[0][i], grads[i], single[1][i], single[2][i], single[3][i], steps[i],
                    1e-3, 0.9, 0.999, 1e-8, 0.01, True, False, True)
    K.adam_step_multi(params, grads, ms, vs, vmaxs, steps, 1e-3, 0.9, 0.999, 1e-8, 0.01, True,
                      False, True)
    for got_list, want_list in zip((params, ms, vs, vmaxs), single):
        for got, want in zip(got_list, want_list):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_multi_equals_single(dtype):
    params, grads, bufs = (_group(dtype, 7 + i, SHAPES) for i in range(3))
    first = [True, False, True, False, False, True, False]
    single = [[a.copy() for a in arrs] for arrs in (params, bufs)]
    for i in range(len(SHAPES)):
        K.sgd_step(single[0][i], grads[i], single[1][i], 0.1, 0.9, 0.1, 0.01, False, True,
                   first[i])
    K.sgd_step_multi(params, grads, bufs, 0.1, 0.9, 0.1, 0.01, False, True, first)
    for got_list, want_list in zip((params, bufs), single):
        for got, want in zip(got_list, want_list):
            np.testing.assert_array_equal(got, want)


def test_multi_scalar_step_and_empty_group():
    K.adam_step_multi([], [], [], [], None, 1, 1e-3, 0.9, 0.999, 1e-8, 0, False, False, False)
    K.sgd_step_multi([], [], None, 0.1, 0.0, 0.0, 0.0, False, False, True)
    p = [np.ones(3), np.ones(2)]
    K.sgd_step_multi(p, [np.ones(3), np.ones(2)], None, 0.5, 0.0, 0.0, 0.0, False, False, True)
    np.testing.assert_array_equal(np.concatenate(p), np.full(5, 0.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_identical(dtype):
    shapes = [(3,), (50000,), (17, 9), (60001,)]  # chunk boundaries fall inside tensors
    saved = get_num_threads()
    results = []
    try:
        for nthreads in (1, 2):
            set_num_threads(nthreads)
            params, grads, ms = (_group(dtype, 30 + i, shapes) for i in range(3))
            vs = [np.abs(a) for a in _group(dtype, 40, shapes)]
            bufs = _group(dtype, 41, shapes)
            K.adam_step_multi(params, grads, ms, vs, None, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0,
                              False, False, False)
            K.sgd_step_multi(params, grads, bufs, 0.1, 0.9, 0.0, 0.0, True, False, False)
            (big,) = _group(dtype, 42, [(100003,)])
            K.sgd_step(big, grads[1][:1].repeat(100003), None, 0.1, 0.0, 0.0, 0.1, False,
                       False, True)
            results.append([a.copy() for a in params + ms + vs + bufs + [big]])
    finally:
        set_num_threads(saved)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


_SIMD_SCRIPT = """
import hashlib, numpy as np
from nncore._kernels import optim as K
rng = np.random.default_rng(0)
h = hashlib.sha256()
for dt in (np.float32, np.float64):
    p, g, m = (rng.standard_normal(1003).astype(dt) for _ in range(3))
    v, vm = np.abs(p * g), np.abs(m)
    K.adam_step(p, g, m, v, vm, 3, 1e-2, 0.9, 0.99, 1e-8, 0.1, True, True, False)
    K.sgd_step(p, g, m, 0.1, 0.9, 0.1, 0.01, False, False, False)
    h.update(p.tobytes() + m.tobytes() + v.tobytes() + vm.tobytes())
print(K.dispatched_simd(), h.hexdigest())
"""


def test_simd_levels_give_identical_bits():
    """No FMA contraction: every instruction set rounds exactly like the portable loop."""
    out = {}
    for level in ("portable", "avx2", "avx512"):
        env = dict(os.environ, NNCORE_SIMD=level)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_REPO_ROOT, env.get("PYTHONPATH")]))
        res = subprocess.run([sys.executable, "-c", _SIMD_SCRIPT], env=env, capture_output=True,
                             text=True, check=True)
        name, digest = res.stdout.split()
        out[name] = digest
    assert len(set(out.values())) == 1, out


# ------------------------------------------------------------------------------ bad input
def _adam_args(n=5, dtype=np.float64):
    return [np.ones(n, dtype), np.ones(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)]


def _adam(p, g, m, v, vmax=None, step=1, amsgrad=False):
    K.adam_step(p, g, m, v, vmax, step, 1e-3, 0.9, 0.999, 1e-8, 0.0, amsgrad, False, False)


def test_non_contiguous_param_or_state_raises():
    p, g, m, v = _adam_args(10)
    with pytest.raises(ValueError, match="param: must be C-contiguous"):
        _adam(p[::2], g[::2], m[::2].copy(), v[::2].copy())
    with pytest.raises(ValueError, match="exp_avg: must be C-contiguous"):
        _adam(p[::2].copy(), g[::2], m[::2], v[::2].copy())


def test_non_contiguous_grad_is_read_through_a_copy():
    p1, g, m1, v1 = _adam_args(10)
    g[:] = np.arange(10.0)
    p2, m2, v2 = p1.copy(), m1.copy(), v1.copy()
    gt = np.repeat(g[:, None], 2, axis=1)[:, 0]  # strided view with equal values
    assert not gt.flags.c_contiguous
    _adam(p1, g, m1, v1)
    _adam(p2, gt, m2, v2)
    np.testing.assert_array_equal(p1, p2)


def test_dtype_and_shape_mismatch_name_the_index():
    ps = [np.ones(3), np.ones(4)]
    gs = [np.ones(3), np.ones(4, np.float32)]
    ms = [np.zeros(3), np.zeros(4)]
    vs = [np.zeros(3), np.zeros(4)]
    with pytest.raises(TypeError, match=r"grads\[1\].*float32"):
        K.adam_step_multi(ps, gs, ms, vs, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0, False, False,
                          False)
    with pytest.raises(TypeError, match=r"params\[1\]"):
        K.sgd_step_multi([np.ones(3), np.ones(4, np.float32)], [np.ones(3), np.ones(4)], None,
                         0.1, 0.0, 0.0, 0.0, False, False, True)
    vs[1] = np.zeros(5)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[1\]: shape \(5,\)"):
        K.adam_step_multi(ps, [np.ones(3), np.ones(4)], ms, vs, None, 1, 1e-3, 0.9, 0.999,
                          1e-8, 0, False, False, False)
    with pytest.raises(ValueError, match=r"momentum_buf: shape"):
        K.sgd_step(np.ones(3), np.ones(3), np.ones(2), 0.1, 0.9, 0.0, 0.0, False, False, False)


def test_other_bad_input():
    p, g, m, v = _adam_args()
    with pytest.raises(TypeError, match="param: expected float32 or float64"):
        _adam(p.astype(np.int64), g, m, v)
    with pytest.raises(TypeError, match="grad: expected a numpy.ndarray"):
        _adam(p, [1.0] * 5, m, v)
    with pytest.raises(ValueError, match="step"):
        _adam(p, g, m, v, step=0)
    with pytest.raises(ValueError, match="amsgrad"):
        _adam(p, g, m, v, amsgrad=True)
    with pytest.raises(ValueError, match="share memory"):
        _adam(p, g, m, m)
    with pytest.raises(ValueError, match="share memory"):
        _adam(p, p, m, v)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _adam(ro, g, m, v)
    with pytest.raises(ValueError, match="momentum buffer is required"):
        K.sgd_step(p, g, None, 0.1, 0.9, 0.0, 0.0, False, False, True)
    with pytest.raises(ValueError, match=r"grads: expected 2 entries"):
        K.sgd_step_multi([p, p.copy()], [g], None, 0.1, 0.0, 0.0, 0.0, False, False, True)
    with pytest.raises(ValueError, match=r"steps: expected 1 values"):
        K.adam_step_multi([p], [g], [m], [v], None, [1, 2], 1e-3, 0.9, 0.999, 1e-8, 0, False,
                          False, False)
    with pytest.raises(TypeError, match="expected a list"):
        K.adam_step_multi(p, [g], [m], [v], None, 1, 1e-3, 0.9, 0.999, 1e-8, 0, False, False,
                          False)
    with pytest.raises(ValueError, match="betas"):
        K.adam_step(p, g, m, v, None, 1, 1e-3, 1.0, 0.999, 1e-8, 0, False, False, False)
    np.testing.assert_array_equal(p, np.ones(5))  # nothing was updated by the failed calls


def test_dispatched_simd_reports_a_level():
    assert K.dispatched_simd() in ("portable", "avx2+fma", "avx512")
    assert K.parallel_min_elements() > 1000
