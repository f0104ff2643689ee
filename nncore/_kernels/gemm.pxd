# gemm.pxd: C-level GEMM entry points for other kernel modules (conv, lstm) to cimport.
#   C = alpha * op(A) @ op(B) + beta * C (+ bias[j] added to every row when bias != NULL)
#   op(A) = A (M x K, row stride lda) or, with trans_a, A stored K x M; likewise op(B) (K x N).
#   C is M x N with row stride ldc. beta == 0 overwrites C without reading it.
# Results are bit-identical for any `nthreads` (threads split M or N, never K).
# Call without the GIL; nthreads <= 1 runs serially without entering a parallel region.

cdef void sgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                float alpha, const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                float beta, float* C, Py_ssize_t ldc, const float* bias,
                int nthreads) noexcept nogil

cdef void dgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                double alpha, const double* A, Py_ssize_t lda, const double* B, Py_ssize_t ldb,
                double beta, double* C, Py_ssize_t ldc, const double* bias,
                int nthreads) noexcept nogil
