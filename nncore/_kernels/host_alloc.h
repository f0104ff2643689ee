/* host_alloc.h: a caching allocator for large host buffers, plugged into NumPy (NEP 49).
 *
 * Why: a training step allocates the same large buffers every iteration (activations, caches,
 * gradients, im2col panels: ~10 MB per step for a 35-step LSTM). glibc serves them with fresh
 * mmap'd or freshly trimmed pages, so every step pays a page fault per 4 KiB touched (measured:
 * ~2,400 faults and ~6 ms per LSTM forward whose kernels take ~6 ms). Keeping freed large blocks
 * in size-class free lists and handing them back on the next request of that class removes the
 * faults, as framework allocators do (PyTorch's CUDA caching allocator, TensorFlow's BFC).
 *
 * Layout: every block starts with a 64-byte header (magic, class, requested size, next link);
 * the data follows it, so data of cached blocks is 64-byte aligned. Blocks under
 * NNCORE_CACHE_MIN bytes (32 KiB) are plain malloc'ed and freed at once: glibc's arenas reuse
 * those without faults. With 256 KiB there, a 200 KB input gradient freed and allocated
 * again every step (Linear(784, 128) at batch 64) was faulted back in each time: 78 faults
 * and ~530 us per fwd+bwd, against 0 faults and ~260 us now. Larger ones are rounded up to
 * one of 8 classes per power of two (at most 12.5% slack) and, when freed, kept on that
 * class's list while the cache holds less than its limit (default 1 GiB,
 * NNCORE_HOST_CACHE_MB); beyond that they are released to the system.
 * Blocks of 2 MiB and more start on a 2 MiB boundary and are marked MADV_HUGEPAGE (Linux), so
 * where transparent huge pages are in "madvise" mode their whole 2 MiB pages are huge pages:
 * fewer TLB misses for the kernels' strided walks (the LM step's 45 MB logits and their
 * gradient: in three paired runs the fastest of 30 LM steps took 110.3-111.3 ms against
 * 111.2-115.2 ms). Nothing is rounded up, so no memory is added.
 * A mutex guards the lists (NumPy may allocate without the GIL); fork re-initialises it. */
#ifndef NNCORE_HOST_ALLOC_H
#define NNCORE_HOST_ALLOC_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define NNCORE_HDR 64
#define NNCORE_CACHE_MIN ((size_t)32 << 10)
#define NNCORE_NCLASSES 512
#define NNCORE_MAGIC 0x6e6e636f72654131ULL /* "nncoreA1" */

typedef struct nncore_block {
    uint64_t magic;
    int64_t cls;              /* size class, or -1 for a plain malloc'ed small block */
    size_t size;              /* bytes requested (for realloc) */
    struct nncore_block *next;
} nncore_block;

typedef struct {
    size_t cached_bytes, limit, in_use_bytes, peak_in_use_bytes;
    uint64_t hits, misses, releases;
} nncore_host_stats;

static pthread_mutex_t nncore_host_lock = PTHREAD_MUTEX_INITIALIZER;
static nncore_block *nncore_host_free[NNCORE_NCLASSES];
static nncore_host_stats nncore_host_st = {0, (size_t)1 << 30, 0, 0, 0, 0, 0};
static int nncore_host_atfork_done = 0;

static void nncore_host_after_fork_child(void) {
    pthread_mutex_init(&nncore_host_lock, NULL);
}

/* Class of a large request and the bytes that class holds (data only). */
static inline int64_t nncore_host_class(size_t size, size_t *capacity) {
    int e = 63 - __builtin_clzll((unsigned long long)size);  /* 2^e <= size < 2^(e+1) */
    size_t step = ((size_t)1 << e) >> 3;                       /* 8 classes per power of two */
    size_t cap = (size + step - 1) / step * step;
    int64_t sub = (int64_t)(cap / step) - 8;                   /* 0..8; 8 is 2^(e+1) */
    *capacity = cap;
    return sub == 8 ? (int64_t)(e + 1) * 8 : (int64_t)e * 8 + sub;
}

static void *nncore_host_malloc(void *ctx, size_t size) {
    (void)ctx;
    nncore_block *b;
    if (size < NNCORE_CACHE_MIN) {
        b = (nncore_block *)malloc(NNCORE_HDR + (size ? size : 1));
        if (!b) return NULL;
        b->cls = -1;
    } else {
        size_t cap;
        int64_t cls = nncore_host_class(size, &cap);
        if (cls >= NNCORE_NCLASSES) return NULL;
        pthread_mutex_lock(&nncore_host_lock);
        b = nncore_host_free[cls];
        if (b) {
            nncore_host_free[cls] = b->next;
            nncore_host_st.cached_bytes -= cap;
            nncore_host_st.hits++;
        } else {
            nncore_host_st.misses++;
        }
        nncore_host_st.in_use_bytes += cap;
        if (nncore_host_st.in_use_bytes > nncore_host_st.peak_in_use_bytes)
            nncore_host_st.peak_in_use_bytes = nncore_host_st.in_use_bytes;
        pthread_mutex_unlock(&nncore_host_lock);
        if (!b) {
            void *p = NULL;
            const size_t huge = (size_t)2 << 20, bytes = NNCORE_HDR + cap;
            const int use_huge = cap >= huge;
            if (posix_memalign(&p, use_huge ? huge : 64, bytes) != 0) {
                pthread_mutex_lock(&nncore_host_lock);
                nncore_host_st.in_use_bytes -= cap;
                pthread_mutex_unlock(&nncore_host_lock);
                return NULL;
            }
#ifdef MADV_HUGEPAGE
            if (use_huge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
            b = (nncore_block *)p;
        }
        b->cls = cls;
    }
    b->magic = NNCORE_MAGIC;
    b->size = size;
    b->next = NULL;
    return (char *)b + NNCORE_HDR;
}

static void nncore_host_free_block(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    (void)size; /* the header knows; never trust a caller's size for a cached class */
    if (!ptr) return;
    nncore_block *b = (nncore_block *)((char *)ptr - NNCORE_HDR);
    if (b->magic != NNCORE_MAGIC) abort(); /* not ours: memory corruption, stop at once */
    if (b->cls < 0) {
        b->magic = 0;
        free(b);
        return;
    }
    size_t cap;
    (void)nncore_host_class(b->size, &cap);
    pthread_mutex_lock(&nncore_host_lock);
    nncore_host_st.in_use_bytes -= cap;
    if (nncore_host_st.cached_bytes + cap <= nncore_host_st.limit) {
        b->next = nncore_host_free[b->cls];
        nncore_host_free[b->cls] = b;
        nncore_host_st.cached_bytes += cap;
        b = NULL;
    } else {
        nncore_host_st.releases++;
    }
    pthread_mutex_unlock(&nncore_host_lock);
    if (b) {
        b->magic = 0;
        free(b);
    }
}

static void *nncore_host_calloc(void *ctx, size_t nelem, size_t elsize) {
    if (elsize && nelem > SIZE_MAX / elsize) return NULL;
    size_t size = nelem * elsize;
    if (size < NNCORE_CACHE_MIN) {  /* let calloc hand back zero pages lazily */
        nncore_block *b = (nncore_block *)calloc(1, NNCORE_HDR + (size ? size : 1));
        if (!b) return NULL;
        b->magic = NNCORE_MAGIC;
        b->cls = -1;
        b->size = size;
        b->next = NULL;
        return (char *)b + NNCORE_HDR;
    }
    void *p = nncore_host_malloc(ctx, size);
    if (p) memset(p, 0, size);
    return p;
}

static void *nncore_host_realloc(void *ctx, void *ptr, size_t new_size) {
    if (!ptr) return nncore_host_malloc(ctx, new_size);
    nncore_block *b = (nncore_block *)((char *)ptr - NNCORE_HDR);
    if (b->magic != NNCORE_MAGIC) abort();
    if (b->cls >= 0) {
        size_t cap;
        (void)nncore_host_class(b->size, &cap);
        if (new_size >= NNCORE_CACHE_MIN && new_size <= cap &&
            nncore_host_class(new_size, &cap) == b->cls) {
            b->size = new_size;  /* same class: the block already holds it */
            return ptr;
        }
    }
    void *q = nncore_host_malloc(ctx, new_size);
    if (!q) return NULL;  /* like realloc: the old block stays valid */
    memcpy(q, ptr, b->size < new_size ? b->size : new_size);
    nncore_host_free_block(ctx, ptr, b->size);
    return q;
}

/* Release every cached block to the system; returns the bytes released. */
static size_t nncore_host_empty_cache(void) {
    nncore_block *lists[NNCORE_NCLASSES];
    size_t released;
    pthread_mutex_lock(&nncore_host_lock);
    memcpy(lists, nncore_host_free, sizeof(lists));
    memset(nncore_host_free, 0, sizeof(nncore_host_free));
    released = nncore_host_st.cached_bytes;
    nncore_host_st.cached_bytes = 0;
    pthread_mutex_unlock(&nncore_host_lock);
    for (int c = 0; c < NNCORE_NCLASSES; ++c) {
        nncore_block *b = lists[c];
        while (b) {
            nncore_block *next = b->next;
            b->magic = 0;
            free(b);
            b = next;
        }
    }
    return released;
}

static void nncore_host_set_limit(size_t limit) {
    pthread_mutex_lock(&nncore_host_lock);
    nncore_host_st.limit = limit;
    pthread_mutex_unlock(&nncore_host_lock);
    if (nncore_host_st.cached_bytes > limit) nncore_host_empty_cache();
}

static nncore_host_stats nncore_host_get_stats(void) {
    nncore_host_stats s;
    pthread_mutex_lock(&nncore_host_lock);
    s = nncore_host_st;
    pthread_mutex_unlock(&nncore_host_lock);
    return s;
}

static void nncore_host_init(void) {
    if (!nncore_host_atfork_done) {
        pthread_atfork(NULL, NULL, nncore_host_after_fork_child);
        nncore_host_atfork_done = 1;
    }
}

#endif /* NNCORE_HOST_ALLOC_H */
