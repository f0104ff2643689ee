"""Host memory: the caching allocator that serves NumPy arrays for nncore.

A training step allocates the same large buffers every iteration. glibc hands them back as fresh
or freshly trimmed pages, so each step pays a page fault per 4 KiB it touches (measured here:
~2,400 faults and ~6 ms per LSTM forward whose kernels take ~6 ms). ``import nncore`` therefore
installs a caching allocator as NumPy's data allocator (NumPy's NEP 49 hook) in the importing
thread: freed blocks of 32 KiB and more are kept in size classes (at most 12.5% slack) and
reused, up to a cache limit (default 1 GiB); smaller blocks go straight to malloc. Blocks of
2 MiB and more start on a 2 MiB boundary and ask Linux for transparent huge pages
(``MADV_HUGEPAGE``, used where THP is in "madvise" or "always" mode). Arrays always return to
the allocator that made them, so switching at any time is safe.

Environment: ``NNCORE_HOST_ALLOCATOR=numpy`` keeps NumPy's default allocator;
``NNCORE_HOST_CACHE_MB`` sets the cache limit. The hook is per thread (a context variable):
arrays allocated in other threads use NumPy's default unless those threads call
``set_host_allocator("caching")``.
"""
from __future__ import annotations

import os

from ._kernels import _allocator

__all__ = ["empty_host_cache", "host_allocator", "host_memory_stats", "set_host_allocator",
           "set_host_cache_limit"]

_KINDS = ("caching", "numpy")


def set_host_allocator(kind: str) -> None:
    """Allocate new NumPy arrays (in this thread) with nncore's caching allocator ("caching")
    or NumPy's default ("numpy")."""
    if kind not in _KINDS:
        raise ValueError(f"set_host_allocator: kind must be one of {_KINDS}, got {kind!r}")
    _allocator.install(kind == "caching")


def host_allocator() -> str:
    """"caching" or "numpy": which allocator serves new arrays in this thread."""
    return "caching" if _allocator.installed() else "numpy"


def empty_host_cache() -> int:
    """Return every cached free block to the system; returns the bytes released."""
    return _allocator.empty_cache()


def set_host_cache_limit(megabytes: float) -> None:
    """Keep at most this many MiB of freed blocks cached (0 caches nothing)."""
    if megabytes < 0:
        raise ValueError(f"set_host_cache_limit: megabytes must be >= 0, got {megabytes}")
    _allocator.set_limit(int(megabytes * 2**20))


def host_memory_stats() -> dict:
    """Counters of the caching allocator: bytes cached / in use / peak in use (blocks of at
    least ``min_cached_block_bytes``), cache hits and misses, blocks released over the limit."""
    return _allocator.stats()


def _configure_from_environment() -> None:
    kind = os.environ.get("NNCORE_HOST_ALLOCATOR", "caching").strip().lower() or "caching"
    if kind not in _KINDS:
        raise ValueError(f"NNCORE_HOST_ALLOCATOR must be one of {_KINDS}, got {kind!r}")
    limit = os.environ.get("NNCORE_HOST_CACHE_MB", "").strip()
    if limit:
        try:
            set_host_cache_limit(float(limit))
        except ValueError as exc:
            raise ValueError(f"NNCORE_HOST_CACHE_MB must be a number of MiB, got {limit!r}") \
                from exc
    set_host_allocator(kind)
