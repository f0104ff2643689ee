"""The autograd engine: graph recording, accumulation, deep graphs, grad mode, errors."""
import numpy as np
import pytest

import nncore
from nncore.autograd import Function


def test_simple_chain_rule():
    x = nncore.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x * 3.0 + 2.0 * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1, 2, 3]) + 2)


def test_fan_out_accumulates():
    x = nncore.tensor([2.0], requires_grad=True)
    y = x * 3.0
    z = y + y * y  # y used twice
    z.backward(np.ones(1, np.float32))
    # dz/dx = 3 + 2*y*3 = 3 + 36
    np.testing.assert_allclose(x.grad.numpy(), [39.0])


def test_grad_accumulates_across_backward_calls():
    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_gradients_never_alias_between_leaves():
    a = nncore.tensor([1.0, 2.0], requires_grad=True)
    b = nncore.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data *= 10  # an in-place edit (like grad clipping) must not touch b.grad
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_deep_chain_does_not_hit_recursion_limit():
    x = nncore.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward(np.ones(1, np.float32))
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-3)


def test_second_backward_through_freed_graph_raises():
    x = nncore.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = nncore.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_no_grad_records_nothing():
    x = nncore.tensor([1.0], requires_grad=True)
    with nncore.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.grad_fn is None

    @nncore.no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad
    assert nncore.is_grad_enabled()


def test_requires_grad_propagates_only_when_needed():
    a = nncore.tensor([1.0])
    b = nncore.tensor([1.0], requires_grad=True)
    assert not (a * 2.0).requires_grad
    assert (a * b).requires_grad
    assert (a * b).grad_fn is not None


def test_backward_on_non_scalar_needs_gradient():
    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()


def test_root_gradients_may_be_array_likes():
    x = nncore.tensor([1.0, 2.0, 3.0], requires_grad=True)
    nncore.autograd.backward([x * 2.0], [[1.0, 2.0, 3.0]])       # a nested list per root
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    x.grad = None
    (x * 2.0).backward(np.ones(3, np.float64))                  # cast to the root's dtype
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nncore.tensor([1.0]).sum().backward()


def test_detach_shares_memory_and_cuts_graph():
    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.grad_fn is None
    x2 = x.detach()
    x2.data[0] = 5.0
    assert x.data[0] == 5.0


def test_retain_grad_on_intermediate():
    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * np.array([3.0, 6.0]))


def test_retain_grad_on_the_root_of_backward():
    """As torch: a retained non-leaf that backward starts from gets the incoming gradient."""
    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    y.backward(nncore.tensor([0.5, 2.0]))
    np.testing.assert_allclose(y.grad.numpy(), [0.5, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), [1.5, 6.0])
    z = x * 2.0
    z.retain_grad()
    z.sum().backward()        # the scalar root of a sum: z gets ones
    np.testing.assert_allclose(z.grad.numpy(), [1.0, 1.0])


def test_custom_function_contract():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return scale * x ** 3

        @staticmethod
        def backward(ctx, dout):
            (x,) = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False)
            return dout * 3 * ctx.scale * x ** 2, None

    x = nncore.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    Cube.apply(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_wrong_gradient_shape_from_function_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, dout):
            return dout[:1]

    x = nncore.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Bad.backward returned a gradient of shape"):
        Bad.apply(x).sum().backward()


def test_broadcast_gradient_reduced_to_input_shape():
    a = nncore.Tensor(np.ones((3, 1), np.float64), requires_grad=True)
    b = nncore.Tensor(np.ones((2, 1, 4), np.float64), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (2, 1, 4)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 8.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full((2, 1, 4), 3.0))


def test_autograd_grad_leaves_dot_grad_untouched():
    x = nncore.tensor([3.0], requires_grad=True)
    (g,) = nncore.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [6.0])
    assert x.grad is None


def test_multi_output_function_with_unused_output():
    values, indices = nncore.max(nncore.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True), 1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()  # indices output unused: engine fills zeros


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        nncore.tensor([1, 2], requires_grad=True)


def test_backward_gradient_argument_is_neither_copied_into_grad_nor_modified():
    """backward(gradient) reads the caller's array in place (as torch) but never writes it,
    and a leaf never adopts it as .grad: later in-place .grad updates stay private."""
    g = np.arange(6, dtype=np.float32).reshape(2, 3).copy()   # an array of its own, no view
    before = g.copy()
    leaf = nncore.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    leaf.backward(g)                              # the root is the leaf itself
    mid = nncore.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    (mid + 0.0).backward(g)                       # add passes dout straight through
    (mid * 1.0).relu().backward(g)                # and a chain that reads it
    for t in (leaf, mid):
        assert not np.shares_memory(t.grad.numpy(), g)
    np.testing.assert_array_equal(g, before)
    leaf.grad.numpy()[...] = -1
    np.testing.assert_array_equal(g, before)
    np.testing.assert_array_equal(mid.grad.numpy(), 2 * before)   # relu passes ones: all > 0
