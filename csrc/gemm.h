/* GEMM kernels (implemented in gemm.c).
 *
 *   C = alpha * op(A) * op(B) + beta * C          row-major, op(X) = X or X^T
 *
 * op(A) is m x k, op(B) is k x n, C is m x n. A is stored m x k when trans_a == 0 and k x m
 * when trans_a != 0 (likewise B: k x n, or n x k when transposed). lda, ldb, ldc are the row
 * strides, in elements, of the stored matrices (>= their stored column counts). When beta == 0,
 * C is only written, never read (it may hold NaN or garbage), as in BLAS.
 *
 * The batched forms run `batch` independent products; matrix i starts at a + i*stride_a (and
 * likewise b, c). A stride of 0 reuses one matrix for every batch entry (broadcasting).
 */
#include <stdint.h>

void tgl_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, int num_threads);
void tgl_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
               int64_t ldc, int num_threads);

void tgl_sgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, int64_t stride_a,
                       const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                       int64_t ldc, int64_t stride_c, int num_threads);
void tgl_dgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       double alpha, const double *a, int64_t lda, int64_t stride_a,
                       const double *b, int64_t ldb, int64_t stride_b, double beta, double *c,
                       int64_t ldc, int64_t stride_c, int num_threads);

/* The plain triple loop: the reference the fast path is tested and benchmarked against. */
void tgl_sgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc);
void tgl_dgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc);

/* Low-precision inputs, float32 accumulation and output (gemm_lowp.h):
 *
 *   C = alpha * op(A) * op(B) + beta * C     A, B: bfloat16 (tgl_gemm_bf16) or float16
 *                                            (tgl_gemm_f16) bit patterns as uint16_t; C: float
 *
 * Same conventions as tgl_sgemm (strides in elements, C not read when beta == 0). The result is
 * bitwise tgl_sgemm's on the inputs widened to float, on the same code path. */
void tgl_gemm_bf16(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                   float *c, int64_t ldc, int num_threads);
void tgl_gemm_f16(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                  float *c, int64_t ldc, int num_threads);
/* Strided-batched forms, as tgl_sgemm_batched. */
void tgl_gemm_bf16_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
                           int64_t k, float alpha, const uint16_t *a, int64_t lda,
                           int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                           float beta, float *c, int64_t ldc, int64_t stride_c,
                           int num_threads);
void tgl_gemm_f16_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
                          int64_t k, float alpha, const uint16_t *a, int64_t lda,
                          int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                          float beta, float *c, int64_t ldc, int64_t stride_c,
                          int num_threads);
/* Their plain triple loops (the reference, one thread). */
void tgl_gemm_bf16_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                         float beta, float *c, int64_t ldc);
void tgl_gemm_f16_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                        const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);
/* Their code path (tgl_gemm_path's codes): AVX-512 needs AVX512BW+VL too, else 1 (AVX2). */
int tgl_gemm_lowp_path(void);

/* Force (force != 0) or release the portable micro-kernel; returns tgl_gemm_path()'s code. */
int tgl_gemm_set_portable(int force);
/* Micro-kernel in use: 0 = portable C, 1 = AVX2+FMA, 2 = AVX-512F (chosen at run time). */
int tgl_gemm_path(void);
