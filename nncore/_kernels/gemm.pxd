# gemm.pxd: C-level GEMM entry points for other kernel modules (conv, lstm) to cimport.
#   C = alpha * op(A) @ op(B) + beta * C (+ bias[j] added to every row when bias != NULL)
#   op(A) = A (M x K, row stride lda) or, with trans_a, A stored K x M; likewise op(B) (K x N).
#   C is M x N with row stride ldc. beta == 0 overwrites C without reading it.
# Results are bit-identical for any `nthreads` (threads split M or N, never K).
# Call without the GIL; nthreads <= 1 runs serially without entering a parallel region.
# sgemm_ex / dgemm_ex add a fused activation, applied last: C = act(alpha*op(A)@op(B) + beta*C
# + bias) with act one of GEMM_ACT_* (any other value runs as GEMM_ACT_NONE). GELU is the erf
# form, GELU_TANH PyTorch's tanh approximation; both equal activation.gelu_forward bit for bit.

cdef enum:
    GEMM_ACT_NONE = 0
    GEMM_ACT_RELU = 1
    GEMM_ACT_GELU = 2
    GEMM_ACT_GELU_TANH = 3

cdef void sgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                float alpha, const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                float beta, float* C, Py_ssize_t ldc, const float* bias,
                int nthreads) noexcept nogil

cdef void dgemm(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                double alpha, const double* A, Py_ssize_t lda, const double* B, Py_ssize_t ldb,
                double beta, double* C, Py_ssize_t ldc, const double* bias,
                int nthreads) noexcept nogil

cdef void sgemm_ex(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   float alpha, const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                   float beta, float* C, Py_ssize_t ldc, const float* bias, int activation,
                   int nthreads) noexcept nogil

cdef void dgemm_ex(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   double alpha, const double* A, Py_ssize_t lda, const double* B,
                   Py_ssize_t ldb, double beta, double* C, Py_ssize_t ldc, const double* bias,
                   int activation, int nthreads) noexcept nogil
