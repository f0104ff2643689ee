"""Bucketed gradient all-reduce that overlaps with backward (the engine under DDP).

Parameters are packed, in reverse registration order (roughly the order backward finishes
them), into flat per-dtype buckets of about `bucket_cap_mb`. A post-accumulate-grad hook copies
each final gradient into its bucket slot; when a bucket is full it starts a non-blocking
in-place ``Iallreduce`` (buckets start strictly in index order on every rank, as MPI requires
collectives to be issued in the same order everywhere). Each later hook pokes MPI's progress
engine (``Testall``) so the transfers advance while backward computes. A callback queued on the
autograd engine waits for all of them when backward ends, divides by the world size and writes
the averages back into ``.grad``. With ``find_unused_parameters`` the set of buckets that fill
during backward may differ between ranks, so all reductions are issued after backward instead
(no overlap), following a small all-reduce that agrees which parameters any rank used.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import autograd
from ..tensor import Tensor


class _Bucket:
    __slots__ = ("buffer", "params", "views", "pending", "started")

    def __init__(self, params: list, dtype: np.dtype) -> None:
        self.params = params
        self.buffer = np.zeros(sum(p.data.size for p in params), dtype)
        self.views = []
        offset = 0
        for p in params:
            self.views.append(self.buffer[offset:offset + p.data.size].reshape(p.data.shape))
            offset += p.data.size
        self.pending = len(params)
        self.started = False


def _assign_buckets(params: list, cap_bytes: int) -> list[_Bucket]:
    buckets, open_by_dtype = [], {}
    for p in reversed(params):
        group = open_by_dtype.setdefault(p.data.dtype, [[], 0])
        if group[0] and group[1] + p.data.nbytes > cap_bytes:
            buckets.append(_Bucket(group[0], p.data.dtype))
            group[0], group[1] = [], 0
        group[0].append(p)
        group[1] += p.data.nbytes
    for dtype, (members, _) in open_by_dtype.items():
        if members:
            buckets.append(_Bucket(members, dtype))
    return buckets


class GradientReducer:
    """Averages the gradients of `params` over `comm` once per backward pass."""

    def __init__(self, params: list, comm: Any, mpi: Any, bucket_cap_mb: float,
                 find_unused_parameters: bool, gradient_as_bucket_view: bool) -> None:
        self.comm, self.mpi = comm, mpi
        self.world = comm.Get_size()
        self.buckets = _assign_buckets(params, max(1, int(bucket_cap_mb * 2**20)))
        self.slot = {id(p): (b, i) for b in self.buckets for i, p in enumerate(b.params)}
        self.find_unused = find_unused_parameters
        self.as_view = gradient_as_bucket_view
        self.enabled = True
        self.last_comm_seconds = 0.0
        self.last_overlapped_buckets = 0  # buckets whose all-reduce began before backward ended
        self._reset()
        # one rank: the average is the gradient itself, so there is nothing to hook
        self._handles = [] if self.world == 1 else [
            p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()

    def _reset(self) -> None:
        self.requests: list = []
        self.next_bucket = 0
        self.in_pass = False
        self.ready: set[int] = set()
        self.comm_seconds = 0.0
        for b in self.buckets:
            b.pending, b.started = len(b.params), False

    # --------------------------------------------------------------- during backward
    def _grad_ready(self, p: Tensor) -> None:
        if not self.enabled:
            return
        if not self.in_pass:
            self.in_pass = True
            autograd.queue_callback(self._finish)
        if id(p) in self.ready:  # fired twice in one pass (retain_graph re-entry): keep first
            return
        self.ready.add(id(p))
        bucket, i = self.slot[id(p)]
        np.copyto(bucket.views[i], p.grad.data)
        bucket.pending -= 1
        if self.find_unused:
            # Which buckets fill during backward can differ between ranks here, so every
            # all-reduce waits for _finish, where all ranks issue them in one agreed order.
            return
        self._start_ready_buckets()
        if self.requests:
            t0 = time.perf_counter()
            self.mpi.Request.Testall(self.requests)  # lets MPI progress the open transfers
            self.comm_seconds += time.perf_counter() - t0

    def _start_ready_buckets(self) -> None:
        while self.next_bucket < len(self.buckets):
            bucket = self.buckets[self.next_bucket]
            if bucket.pending:
                return
            self._start(bucket)

    def _start(self, bucket: _Bucket) -> None:
        t0 = time.perf_counter()
        self.requests.append(
            self.comm.Iallreduce(self.mpi.IN_PLACE, bucket.buffer, op=self.mpi.SUM))
        self.comm_seconds += time.perf_counter() - t0
        bucket.started = True
        self.next_bucket += 1

    # --------------------------------------------------------------- after backward
    def _finish(self) -> None:
        try:
            unused = [p for b in self.buckets for p in b.params if id(p) not in self.ready]
            if unused and not self.find_unused:
                raise RuntimeError(
                    f"DistributedDataParallel: {len(unused)} parameter(s) received no gradient "
                    f"in this backward pass (shapes {[p.shape for p in unused][:5]}), so their "
                    "buckets could not be reduced. Pass find_unused_parameters=True if parts of "
                    "the model are legitimately unused.")
            self.last_overlapped_buckets = self.next_bucket
            used_mask = None
            if self.find_unused:
                for p in unused:
                    bucket, i = self.slot[id(p)]
                    bucket.views[i][...] = 0
                    bucket.pending -= 1
                used_mask = self._globally_used()
            self._start_ready_buckets()
            t0 = time.perf_counter()
            self.mpi.Request.Waitall(self.requests)
            self.comm_seconds += time.perf_counter() - t0
            self._write_back(used_mask)
            self.last_comm_seconds = self.comm_seconds
        finally:
            if self.requests:  # never leave a transfer dangling into the next pass
                self.mpi.Request.Waitall(self.requests)
            self._reset()

    def _globally_used(self) -> np.ndarray:
        params = [p for b in self.buckets for p in b.params]
        mask = np.fromiter((id(p) in self.ready for p in params), np.int32, len(params))
        self.comm.Allreduce(self.mpi.IN_PLACE, mask, op=self.mpi.MAX)
        return mask

    def _write_back(self, used_mask: np.ndarray | None) -> None:
        scale = 1.0 / self.world
        k = 0
        for bucket in self.buckets:
            bucket.buffer *= bucket.buffer.dtype.type(scale)
            for p, view in zip(bucket.params, bucket.views):
                globally_used = used_mask is None or used_mask[k]
                k += 1
                if not globally_used:
                    continue
                if self.as_view or p.grad is None:
                    p.grad = Tensor(view if self.as_view else view.copy())
                else:
                    np.copyto(p.grad.data, view)
