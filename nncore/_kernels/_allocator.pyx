# _allocator.pyx: plugs the caching host allocator of host_alloc.h into NumPy as its data
# allocator (NEP 49, PyDataMem_SetHandler), and reports on it. Public face: nncore.memory.
# NumPy records the handler in every array it allocates, so arrays made before or after a
# switch are always freed by the allocator that made them; switching is safe at any time.
# The handler is a context variable: it applies to the thread (context) that installs it.
from libc.stdint cimport uint64_t

cimport numpy as cnp

cnp.import_array()

cdef extern from "host_alloc.h" nogil:
    ctypedef struct nncore_host_stats:
        size_t cached_bytes
        size_t limit
        size_t in_use_bytes
        size_t peak_in_use_bytes
        uint64_t hits
        uint64_t misses
        uint64_t releases
    size_t nncore_host_empty_cache()
    void nncore_host_set_limit(size_t limit)
    nncore_host_stats nncore_host_get_stats()
    void nncore_host_init()
    size_t NNCORE_CACHE_MIN

cdef extern from *:
    """
    static PyDataMem_Handler nncore_numpy_handler = {
        "nncore_caching_host_allocator", 1,
        {NULL, nncore_host_malloc, nncore_host_calloc, nncore_host_realloc,
         nncore_host_free_block}};
    static PyObject *nncore_handler_capsule(void) {
        return PyCapsule_New(&nncore_numpy_handler, "mem_handler", NULL);
    }
    """
    object nncore_handler_capsule()
    object PyDataMem_SetHandler(object handler)
    object PyDataMem_GetHandler()

nncore_host_init()
_caching = nncore_handler_capsule()
_numpy_default = PyDataMem_GetHandler()


def install(bint caching) -> None:
    """Make the caching allocator (True) or NumPy's default (False) allocate new arrays in
    this thread's context."""
    PyDataMem_SetHandler(_caching if caching else _numpy_default)


def installed() -> bool:
    """True when new arrays in this context come from the caching allocator."""
    return PyDataMem_GetHandler() is _caching


def empty_cache() -> int:
    """Release all cached blocks to the system; returns the bytes released."""
    return nncore_host_empty_cache()


def set_limit(size_t limit_bytes) -> None:
    """Cache at most this many bytes of freed blocks (0: cache nothing)."""
    nncore_host_set_limit(limit_bytes)


def stats() -> dict:
    cdef nncore_host_stats s = nncore_host_get_stats()
    return {"cached_bytes": s.cached_bytes, "cache_limit_bytes": s.limit,
            "in_use_bytes": s.in_use_bytes, "peak_in_use_bytes": s.peak_in_use_bytes,
            "hits": s.hits, "misses": s.misses, "released_over_limit": s.releases,
            "min_cached_block_bytes": NNCORE_CACHE_MIN}
