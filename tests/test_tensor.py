"""Tensor construction, zero-copy NumPy interop, dtypes, operators and errors."""
import numpy as np
import pytest

import nncore


def test_default_dtypes_follow_pytorch():
    assert nncore.tensor([1.0, 2.0]).dtype == np.float32
    assert nncore.tensor([1, 2]).dtype == np.int64
    assert nncore.zeros(2, 3).dtype == np.float32
    assert nncore.randn(4, dtype=np.float64).dtype == np.float64
    assert nncore.arange(5).dtype == np.int64
    assert nncore.arange(0.0, 1.0, 0.25).dtype == np.float32


def test_zero_copy_both_ways():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = nncore.from_numpy(a)
    a[0, 0] = 42
    assert t.numpy()[0, 0] == 42
    assert np.asarray(t) is a
    t.data[1, 2] = -1
    assert a[1, 2] == -1


def test_tensor_copies_its_input():
    a = np.zeros(3, np.float32)
    t = nncore.tensor(a)
    a[0] = 1
    assert t.data[0] == 0


def test_numpy_on_requires_grad_tensor_raises():
    t = nncore.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        t.numpy()
    assert t.detach().numpy().shape == (2,)


def test_float32_stays_float32_with_python_and_numpy_scalars():
    t = nncore.ones(3)
    for out in (t * 2.5, t + 1, 2.0 - t, t / np.float64(3.0), t ** 2, np.float32(2) * t):
        assert out.dtype == np.float32, out.dtype


def test_operators_match_numpy():
    a = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    b = np.array([0.5, 2.0], np.float32)
    ta, tb = nncore.tensor(a), nncore.tensor(b)
    np.testing.assert_allclose((ta + tb).numpy(), a + b)
    np.testing.assert_allclose((ta - tb).numpy(), a - b)
    np.testing.assert_allclose((ta * tb).numpy(), a * b)
    np.testing.assert_allclose((ta / tb).numpy(), a / b)
    np.testing.assert_allclose((-ta).numpy(), -a)
    np.testing.assert_allclose((ta @ ta).numpy(), a @ a, rtol=1e-6)
    np.testing.assert_array_equal((ta > 0).numpy(), a > 0)
    np.testing.assert_array_equal((ta == tb).numpy(), a == b)
    assert (ta.sum() == a.sum()).item()


def test_item_and_len():
    assert nncore.tensor([3.5]).item() == 3.5
    with pytest.raises(ValueError, match="cannot be converted"):
        nncore.ones(2).item()
    assert len(nncore.zeros(4, 2)) == 4


def test_indexing_and_setitem():
    t = nncore.arange(12).reshape(3, 4)
    assert t[1, 2].item() == 6
    assert t[:, 1].tolist() == [1, 5, 9]
    assert t[nncore.tensor([0, 2])].shape == (2, 4)
    t[0] = 0
    assert t[0].tolist() == [0, 0, 0, 0]


def test_setitem_on_leaf_requiring_grad_raises():
    t = nncore.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        t[0] = 2.0
    with nncore.no_grad():
        t[0] = 2.0
    assert t.data[0] == 2.0


def test_manual_seed_reproducible():
    nncore.manual_seed(123)
    a = nncore.randn(5).numpy()
    nncore.manual_seed(123)
    b = nncore.randn(5).numpy()
    np.testing.assert_array_equal(a, b)


def test_repr_mentions_grad_fn_and_dtype():
    x = nncore.ones(2, dtype=np.float64, requires_grad=True)
    assert "requires_grad=True" in repr(x) and "float64" in repr(x)
    assert "grad_fn" in repr(x * 2.0)


def test_cast_is_differentiable():
    x = nncore.ones(3, requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])


def test_build_info_reports_everything():
    info = nncore.build_info()
    for key in ("compiler", "openmp", "num_threads", "cpu_simd", "kernels"):
        assert key in info
    assert set(info["kernels"]) >= {"gemm", "activation", "loss", "optim"}
    assert all(not str(v).startswith("not built") for v in info["kernels"].values())
