/* OpenMP runtime calls with serial stubs, so kernels compile with or without -fopenmp. */
#ifndef NNCORE_OMP_H
#define NNCORE_OMP_H
#ifdef _OPENMP
#include <omp.h>
#define NNCORE_HAVE_OPENMP 1
#else
#define NNCORE_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

/* A barrier of the innermost enclosing parallel region (an orphaned directive), for loops
 * that keep one parallel region across dependent steps (lstm.pyx); a no-op serially. Every
 * thread of the region must reach it the same number of times. */
static inline void nncore_omp_barrier(void) {
#ifdef _OPENMP
#pragma omp barrier
#endif
}
#endif

/* The compiler that built the kernels, for nncore.build_info(). */
#ifndef NNCORE_COMPILER
#if defined(__clang__)
#define NNCORE_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define NNCORE_COMPILER "gcc " __VERSION__
#else
#define NNCORE_COMPILER "unknown"
#endif
#endif
#ifdef _OPENMP
#define NNCORE_OPENMP_VERSION _OPENMP
#else
#define NNCORE_OPENMP_VERSION 0
#endif
