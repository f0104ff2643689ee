/* Run-time SIMD level detection. Kernels compile several bodies with GCC `target`
 * attributes and pick one per call from nncore_simd_level(), so the default build runs on
 * any x86-64 (and builds on aarch64, where only the portable path exists).
 * NNCORE_SIMD=portable|avx2|avx512 in the environment caps the level (for tests). */
#ifndef NNCORE_SIMD_H
#define NNCORE_SIMD_H
#include <stdlib.h>
#include <string.h>

#define NNCORE_SIMD_PORTABLE 0
#define NNCORE_SIMD_AVX2 1
#define NNCORE_SIMD_AVX512 2

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define NNCORE_X86 1
#else
#define NNCORE_X86 0
#endif

/* Per-level plain-C bodies (rnn_pointwise.h, conv_winograd.h): BODIES(T, SFX, ISA, ATTR)
 * defines functions named name_##SFX##_##ISA carrying ATTR, a GCC target attribute, so that
 * the compiler vectorises their loops at that width (the build itself targets baseline
 * x86-64). NNCORE_SIMD_CLONES instantiates them for float (f32) and double (f64) at every
 * level this build has; NNCORE_SIMD_PICK calls fn##_<isa> for a run-time level. */
#if NNCORE_X86
#define NNCORE_SIMD_CLONES(BODIES)                                                           \
    BODIES(float, f32, portable, )                                                           \
    BODIES(double, f64, portable, )                                                          \
    BODIES(float, f32, avx2, __attribute__((target("avx2,fma"))))                            \
    BODIES(double, f64, avx2, __attribute__((target("avx2,fma"))))                           \
    BODIES(float, f32, avx512, __attribute__((target("avx512f,fma"))))                       \
    BODIES(double, f64, avx512, __attribute__((target("avx512f,fma"))))
#define NNCORE_SIMD_PICK(level, fn, args)                                                    \
    if ((level) >= NNCORE_SIMD_AVX512) fn##_avx512 args;                                     \
    else if ((level) >= NNCORE_SIMD_AVX2) fn##_avx2 args;                                    \
    else fn##_portable args
#else
#define NNCORE_SIMD_CLONES(BODIES)                                                           \
    BODIES(float, f32, portable, )                                                           \
    BODIES(double, f64, portable, )
#define NNCORE_SIMD_PICK(level, fn, args) fn##_portable args
#endif

static int nncore_simd_detect(void) {
    int level = NNCORE_SIMD_PORTABLE;
#if NNCORE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        level = NNCORE_SIMD_AVX2;
    if (level == NNCORE_SIMD_AVX2 && __builtin_cpu_supports("avx512f"))
        level = NNCORE_SIMD_AVX512;
#endif
    const char *cap = getenv("NNCORE_SIMD");
    if (cap) {
        int c = level;
        if (strcmp(cap, "portable") == 0) c = NNCORE_SIMD_PORTABLE;
        else if (strcmp(cap, "avx2") == 0) c = NNCORE_SIMD_AVX2;
        else if (strcmp(cap, "avx512") == 0) c = NNCORE_SIMD_AVX512;
        if (c < level) level = c;
    }
    return level;
}

static int nncore_simd_cached = -1;

static inline int nncore_simd_level(void) {
    if (nncore_simd_cached < 0) nncore_simd_cached = nncore_simd_detect();
    return nncore_simd_cached;
}

static inline const char *nncore_simd_name(int level) {
    return level == NNCORE_SIMD_AVX512 ? "avx512" : level == NNCORE_SIMD_AVX2 ? "avx2+fma" : "portable";
}
#endif
