"""How the benchmarks time a call and measure its memory.

Method: a few warm-up calls, then an inner loop count calibrated so one repeat lasts at least
`min_time`, then `repeats` timed repeats with time.perf_counter. The figure is the median time
per call; spread = (max - min) / median tells how noisy it was.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["measure", "peak_memory_mb"]


def measure(fn: Callable[[], Any], repeats: int = 7, min_time: float = 0.2,
            warmup: int = 3, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Time `fn()`: median/min/max seconds per call over `repeats` calibrated repeats.

    Returns dict(median, min, max, spread=(max-min)/median, times=[seconds per call for
    each repeat], number=inner calls per repeat, repeats). `clock` is for tests.
    """
    if repeats < 1:
        raise ValueError(f"measure: repeats must be >= 1, got {repeats}")
    for _ in range(max(0, warmup)):
        fn()
    number = 1
    while True:  # grow the inner loop until one repeat lasts >= min_time
        t0 = clock()
        for _ in range(number):
            fn()
        elapsed = clock() - t0
        if elapsed >= min_time:
            break
        # aim 20% past min_time, grow at least 2x and at most 100x per round
        guess = number * 1.2 * min_time / max(elapsed, 1e-9)
        number = int(min(max(guess, 2 * number), 100 * number))
    times = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(number):
            fn()
        times.append((clock() - t0) / number)
    median = statistics.median(times)
    lo, hi = min(times), max(times)
    return {"median": median, "min": lo, "max": hi,
            "spread": (hi - lo) / median if median > 0 else 0.0,
            "times": times, "number": number, "repeats": repeats}


def peak_memory_mb(step: Callable[[], Any]) -> float:
    """Peak traced (Python + NumPy-allocated) memory of one call, after a warm-up call, in MB.

    tracemalloc sees NumPy arrays, so this covers nncore and the NumPy baseline; torch's own
    allocator is invisible to it (torch cells report no memory figure)."""
    import tracemalloc

    step()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
