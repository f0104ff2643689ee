"""Case tables measured in one worker process: (name, unit, [work,] builder) tuples."""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

from nncore.bench.records import error_record, record
from nncore.bench.timing import measure

__all__ = ["autograd_lib", "make_case", "run_cases"]


def autograd_lib(backend: str) -> Any:
    """The module of an autograd backend: nncore or torch."""
    if backend == "nncore":
        import nncore

        return nncore
    if backend == "torch":
        import torch

        return torch
    raise ValueError(f"unknown backend {backend!r}")


def make_case(cases: Sequence[tuple], case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` for `backend`; `cases` holds (name, unit, builder)
    or (name, unit, work, builder) tuples, the builder last."""
    for entry in cases:
        if entry[0] == case:
            return entry[-1](backend)
    raise ValueError(f"make_op: unknown case {case!r}; cases: {[c[0] for c in cases]}")


def set_backend_threads(backends: Sequence[str], threads: int) -> None:
    """set_num_threads(threads) on the nncore and torch backends among `backends`; a backend
    that fails to import is skipped here (each of its cases then reports the error)."""
    for backend in set(backends) & {"nncore", "torch"}:
        try:
            autograd_lib(backend).set_num_threads(threads)
        except Exception:
            pass


def run_cases(family: str, cases: Sequence[tuple], backends: Sequence[str], threads: int,
              repeats: int = 7, min_time: float = 0.2, warmup: int = 3,
              only: Sequence[str] | None = None) -> list[dict]:
    """Measure every case (tuples as in `make_case`; `work` feeds GFLOP/s or GB/s) for each
    backend in this process; one record per (case, backend), an error record on failure."""
    set_backend_threads(backends, threads)
    records = []
    for backend in backends:
        for entry in cases:
            name, unit, builder = entry[0], entry[1], entry[-1]
            work = entry[2] if len(entry) == 4 else None
            if only is not None and name not in only:
                continue
            try:
                stats = measure(builder(backend), repeats=repeats, min_time=min_time,
                                warmup=warmup)
                records.append(record(family, name, backend, threads, stats, unit, work=work))
            except Exception:
                records.append(error_record(family, name, backend, threads,
                                            traceback.format_exc()))
    return records
