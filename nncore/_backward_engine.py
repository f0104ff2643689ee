"""The backward engine: runs a define-by-run graph (autograd.py's Contexts) in reverse
topological order, found iteratively so that deep graphs (long RNN unrolls) never hit Python's
recursion limit, and accumulates gradients on fan-out (the Functions never do)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _device
from ._backward_hooks import LeafHooks, run_with_callbacks
from .tensor import Tensor, _HookHandle

if TYPE_CHECKING:
    from .autograd import Context

FREED_GRAPH_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward(). Specify retain_graph=True if you need to backward through the "
    "graph a second time.")


def _topological_order(roots: list[Context]) -> list[Context]:
    """Contexts reachable from `roots`, each after every context that consumes its outputs."""
    order: list[Context] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(root.parents))]
        while stack:
            node, parents = stack[-1]
            advanced = False
            for p in parents:
                if p is not None and p._ctx is not None and id(p._ctx) not in visited:
                    visited.add(id(p._ctx))
                    stack.append((p._ctx, iter(p._ctx.parents)))
                    advanced = True
                    break
            if not advanced:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate_leaf(leaf: Tensor, g: Any, owned: set[int]) -> None:
    if leaf.grad is None:
        # Never alias a gradient buffer that another tensor may hold or a view of one:
        # in-place updates of .grad (clipping, zero_) must not leak across tensors.
        if id(g) in owned or g.base is not None or (isinstance(g, np.ndarray)
                                                     and not g.flags.writeable):
            g = g.copy()
        owned.add(id(g))
        leaf.grad = Tensor(g)
    else:
        # Out of place: during a pass `g` or the old buffer may still be held by a pending
        # node, so summing in place could corrupt a gradient that is not yet consumed.
        leaf.grad.data = _device.add(leaf.grad.data, g)


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool = False,
             inputs: Any = None) -> None:
    """Accumulate d(tensors)/d(leaf) into the `.grad` of every leaf that requires grad.

    `grad_tensors` holds the gradient flowing into each root (defaults to 1 for scalars).
    With `inputs`, only those tensors receive `.grad`. Post-accumulate-grad hooks fire as leaves
    become final; callbacks queued with `queue_callback` run after the pass.
    """
    run_with_callbacks(_run_backward, tensors, grad_tensors, retain_graph, inputs)


def _run_backward(tensors: Any, grad_tensors: Any, retain_graph: bool, inputs: Any) -> None:
    roots = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, (Tensor, np.ndarray)):
        grads_in = [grad_tensors] * len(roots) if grad_tensors is None else [grad_tensors]
    else:
        grads_in = list(grad_tensors)
    only = None if inputs is None else {id(t) for t in (
        [inputs] if isinstance(inputs, Tensor) else inputs)}

    pending: dict[int, list] = {}
    owned: set[int] = set()
    order = _topological_order([t._ctx for t in roots if t._ctx is not None])
    hooks = None
    if _HookHandle._next_id:  # some tensor has ever had a hook: count edges into hooked leaves
        hooks = LeafHooks(order, [t for t in roots
                                   if t._ctx is None and t._grad_hooks is not None])
        if not hooks.remaining:
            hooks = None

    def deliver(t: Tensor, g: Any) -> None:
        """Hand gradient `g` to `t`: a leaf accumulates it into .grad (when asked for) and
        tells its hooks; a non-leaf's node sums it for its backward, and a non-leaf that
        retains its grad also accumulates it into .grad. Roots and inner edges alike."""
        if t._ctx is None:
            if only is None or id(t) in only:
                _accumulate_leaf(t, g, owned)
                if hooks is not None:
                    hooks.delivered(t)
            return
        if t._retains_grad:
            _accumulate_leaf(t, g, owned)
        slot = pending.setdefault(id(t._ctx), [None] * t._ctx.n_outputs)
        i = t._out_index
        slot[i] = g if slot[i] is None else _device.add(slot[i], g)

    for t, g in zip(roots, grads_in):
        if not t.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; got shape "
                    f"{t.shape}. Pass a gradient to backward().")
            g = _device.ones(t.data.shape, t.data.dtype, t.data)
        else:
            g = g.data if isinstance(g, Tensor) else g
            if _device.is_device_array(g):   # a fresh array of t's dtype, on t's device
                g = _device.astype(g.copy(), t.dtype) if t.is_cuda else \
                    np.asarray(g.numpy(), t.dtype)
            else:
                # no copy (as torch): backward functions never write into their dout; a leaf
                # that would adopt the caller's array as .grad copies it (owned, below)
                g = np.asarray(g, dtype=t.dtype)
                owned.add(id(g))
            if tuple(g.shape) != t.shape:
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)} but the "
                                   f"tensor has shape {t.shape}")
            g = _device.move(g, t.device)
        deliver(t, g)

    for ctx in order:
        douts = pending.pop(id(ctx), None)
        if douts is None:
            continue
        if ctx._freed:
            raise RuntimeError(FREED_GRAPH_MESSAGE)
        if ctx.n_outputs > 1:
            like = next(d for d in douts if d is not None)
            douts = [d if d is not None else _device.zeros(s, dt, like)
                     for d, (s, dt) in zip(douts, ctx.output_meta)]
        dins = ctx.fn.backward(ctx, *douts)
        if not isinstance(dins, tuple):
            dins = (dins,)
        if not retain_graph:
            ctx._saved = ()
            ctx._freed = True
        for parent, g in zip(ctx.parents, dins):
            if parent is None or g is None:
                continue
            if tuple(g.shape) != parent.shape:
                raise RuntimeError(
                    f"{ctx.fn.__name__}.backward returned a gradient of shape {g.shape} for an "
                    f"input of shape {parent.shape}")
            if g.dtype != parent.dtype:
                g = _device.astype(g, parent.dtype)
            deliver(parent, g)
    if hooks is not None:
        hooks.finish()


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None,
         retain_graph: bool = False) -> tuple:
    """Return d(outputs)/d(inputs) without touching any `.grad` attribute."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    saved = [(t, t.grad) for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        backward(outputs, grad_outputs, retain_graph=retain_graph, inputs=inputs)
        result = tuple(t.grad for t in inputs)
    finally:
        for t, g in saved:
            t.grad = g
    return result
