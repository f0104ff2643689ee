"""Hooks into a backward pass: post-accumulate-grad hooks on leaves and end-of-pass callbacks.

`LeafHooks` fires each hooked leaf's hooks once its gradient is final (what
``nncore.distributed.DistributedDataParallel`` starts its bucket all-reduces from);
`queue_callback` schedules work for when the running pass has finished. The engine in
``nncore.autograd`` calls `run_with_callbacks` and `LeafHooks`; nothing here is on the path of
a graph without hooks.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .tensor import Tensor


class _BackwardState(threading.local):
    callbacks: list | None = None


_backward_state = _BackwardState()


def queue_callback(callback: Any) -> None:
    """Run ``callback()`` once the backward pass now running has finished (as PyTorch's
    engine ``queue_callback``). Only valid inside a backward pass, e.g. from a grad hook."""
    if _backward_state.callbacks is None:
        raise RuntimeError("queue_callback can only be called during a backward pass")
    _backward_state.callbacks.append(callback)


class LeafHooks:
    """Fires each hooked leaf's post-accumulate-grad hooks once its gradient is final.

    A leaf is final when every graph edge into it has delivered its gradient; edges are counted
    up front (only for leaves that have hooks, so hook-free graphs pay one attribute test per
    edge).
    """

    __slots__ = ("remaining", "tensors", "touched")

    def __init__(self, order: list, roots: list) -> None:
        self.remaining: dict[int, int] = {}
        self.tensors: dict[int, Tensor] = {}
        self.touched: set[int] = set()
        for t in roots:
            self._count(t)
        for ctx in order:
            for p in ctx.parents:
                if p is not None and p._grad_hooks is not None and p._ctx is None:
                    self._count(p)

    def _count(self, t: Tensor) -> None:
        self.remaining[id(t)] = self.remaining.get(id(t), 0) + 1
        self.tensors[id(t)] = t

    def delivered(self, t: Tensor) -> None:
        key = id(t)
        left = self.remaining.get(key)
        if left is None:
            return
        self.touched.add(key)
        self.remaining[key] = left - 1
        if left == 1:
            _fire(t)

    def finish(self) -> None:
        """Fire leaves that got some but not all of their gradients (an edge delivered None)."""
        for key in self.touched:
            if self.remaining[key] > 0:
                self.remaining[key] = 0
                _fire(self.tensors[key])


def _fire(t: Tensor) -> None:
    if t._grad_hooks is not None:
        for hook in list(t._grad_hooks.values()):
            hook(t)


def run_with_callbacks(run: Callable[..., None], *args: Any) -> None:
    """Run one backward pass; then, if it succeeded, the callbacks it queued, in order."""
    outer = _backward_state.callbacks
    _backward_state.callbacks = callbacks = []
    try:
        run(*args)
    finally:
        _backward_state.callbacks = outer
    for callback in callbacks:
        callback()
