"""Benchmark records: one dict per measured (or failed) cell, and their JSON file."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nncore.bench.tables import _auto_fmt, display_value, format_cell

__all__ = ["error_record", "memory_record", "record", "write_json"]


def record(family: str, case: str, backend: str, threads: int, stats: dict, unit: str,
           work: float | None = None, batch: int | None = None) -> dict:
    """One measured cell: where it belongs, its display unit and measure()'s statistics."""
    rec = {"family": family, "case": case, "backend": backend, "threads": threads,
           "unit": unit, "work": work, "batch": batch, **stats}
    if hasattr(os, "getloadavg"):  # 1-min load when measured: flags competing work
        rec["loadavg"] = os.getloadavg()[0]
    print(f"  {family:<5} {case:<30} {backend:<6} t={threads}  "
          f"{format_cell(display_value(rec), rec['spread'], _auto_fmt(display_value(rec)))} "
          f"{unit}", file=sys.stderr, flush=True)
    return rec


def error_record(family: str, case: str | None, backend: str, threads: int,
                 error: str) -> dict:
    """A cell that could not be measured, with the reason."""
    print(f"  {family:<5} {case or '*':<30} {backend:<6} t={threads}  FAILED: "
          f"{error.splitlines()[-1] if error else ''}", file=sys.stderr, flush=True)
    return {"family": family, "case": case, "backend": backend, "threads": threads,
            "error": error}


def memory_record(family: str, case: str, backend: str, threads: int, mb: float) -> dict:
    """A record holding a peak-memory figure (unit MB) instead of a time."""
    stats = {"median": mb, "min": mb, "max": mb, "spread": 0.0, "times": [mb]}
    return record(family, f"{case} peak memory (tracemalloc)", backend, threads, stats, "MB")


def write_json(path: str | os.PathLike, records: Sequence[dict], meta: dict) -> None:
    """Every record (with each repeat's time) plus machine info, as indented JSON."""
    Path(path).write_text(json.dumps({"machine": meta, "records": list(records)}, indent=1,
                                     default=str))
