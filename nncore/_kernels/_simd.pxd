# Run-time SIMD level (see simd.h).
cdef extern from "simd.h" nogil:
    int NNCORE_SIMD_PORTABLE
    int NNCORE_SIMD_AVX2
    int NNCORE_SIMD_AVX512
    int nncore_simd_level()
    const char *nncore_simd_name(int level)
