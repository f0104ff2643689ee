"""Post-accumulate-grad hooks and queue_callback: the engine features DDP stands on."""
import numpy as np
import pytest

import nncore as nc
from nncore import autograd


def _leaf(*shape):
    return nc.Tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)


def test_hook_fires_once_after_all_uses_with_final_grad():
    w = _leaf(3)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.data.copy()))
    x = _leaf(3)
    loss = (w * x).sum() + (w * w).sum() + w.sum()  # three paths into w
    loss.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], x.data + 2 * w.data + 1)
    np.testing.assert_allclose(seen[0], w.grad.data)


def test_hook_order_follows_readiness_and_fires_each_backward():
    a, b = _leaf(2), _leaf(2)
    order = []
    a.register_post_accumulate_grad_hook(lambda t: order.append("a"))
    b.register_post_accumulate_grad_hook(lambda t: order.append("b"))
    h = (a * 2.0).tanh()          # a is used first in forward ...
    (h * b).sum().backward()      # ... so b's gradient is final first in backward
    assert order == ["b", "a"]
    (a.sum() + b.sum()).backward()
    assert sorted(order[2:]) == ["a", "b"]


def test_hook_remove_and_root_leaf_and_inputs_filter():
    w = _leaf(4)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    autograd.backward(w, np.ones(4))           # a leaf as the root
    assert calls == [1]
    v = _leaf(4)
    (w * v).sum().backward(inputs=[v])         # w is not asked for: no grad, no hook
    assert calls == [1]
    handle.remove()
    (w * 3.0).sum().backward()
    assert calls == [1]


def test_hook_rejects_non_leaf_and_no_grad_tensors():
    w = _leaf(2)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        nc.zeros(2).register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_runs_after_pass_and_only_inside_one():
    w = _leaf(3)
    events = []

    def hook(t):
        events.append("hook")
        autograd.queue_callback(lambda: events.append(("done", t.grad is not None)))

    w.register_post_accumulate_grad_hook(hook)
    (w * w).sum().backward()
    assert events == ["hook", ("done", True)]
    with pytest.raises(RuntimeError, match="during a backward pass"):
        autograd.queue_callback(lambda: None)


def test_callbacks_dropped_when_backward_fails():
    w = _leaf(3)
    ran = []
    w.register_post_accumulate_grad_hook(
        lambda t: autograd.queue_callback(lambda: ran.append(1)))
    loss = (w * w).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()
    assert ran == [1]
    (w * 2.0).sum().backward()  # state is clean after the failure
    assert ran == [1, 1]
