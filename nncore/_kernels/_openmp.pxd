# OpenMP runtime, declared through nncore_omp.h so a serial build still compiles.
cdef extern from "nncore_omp.h" nogil:
    int NNCORE_HAVE_OPENMP
    int omp_get_max_threads()
    int omp_get_num_procs()
    int omp_get_thread_num()
    int omp_get_num_threads()
    void omp_set_num_threads(int n)
    void nncore_omp_barrier()
    const char *NNCORE_COMPILER
    int NNCORE_OPENMP_VERSION
