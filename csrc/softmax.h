/* Softmax family kernels (implemented in softmax.c): softmax and log-softmax over the last axis,
 * their backward passes, and the fused softmax-cross-entropy.
 *
 * Layout: `rows` independent rows of `cols` elements. Inputs may have a row stride (ldx, ldy,
 * ldd: elements from the start of one row to the next, >= cols) so sliced views need no copy;
 * outputs are always contiguous (row stride = cols) and must not overlap any input.
 * `num_threads` is an upper bound: small inputs run on one thread.
 *
 * Every function here trusts its arguments: the Python bridge (tinygrad_lite/kernels/) checks
 * dtypes, shapes, strides, aliasing and target ranges before calling.
 */
#include <stdint.h>

/* y = softmax(x) over each row. */
void tgl_softmax_f32(const float *x, int64_t ldx, float *y, int64_t rows, int64_t cols,
                     int num_threads);
void tgl_softmax_f64(const double *x, int64_t ldx, double *y, int64_t rows, int64_t cols,
                     int num_threads);

/* y = log_softmax(x) = x - logsumexp(x) over each row. */
void tgl_log_softmax_f32(const float *x, int64_t ldx, float *y, int64_t rows, int64_t cols,
                         int num_threads);
void tgl_log_softmax_f64(const double *x, int64_t ldx, double *y, int64_t rows, int64_t cols,
                         int num_threads);

/* Given y = softmax(x) and dy = dL/dy: dx = y * (dy - sum(dy * y)). */
void tgl_softmax_backward_f32(const float *y, int64_t ldy, const float *dy, int64_t ldd,
                              float *dx, int64_t rows, int64_t cols, int num_threads);
void tgl_softmax_backward_f64(const double *y, int64_t ldy, const double *dy, int64_t ldd,
                              double *dx, int64_t rows, int64_t cols, int num_threads);

/* Given y = log_softmax(x) and dy: dx = dy - exp(y) * sum(dy). */
void tgl_log_softmax_backward_f32(const float *y, int64_t ldy, const float *dy, int64_t ldd,
                                  float *dx, int64_t rows, int64_t cols, int num_threads);
void tgl_log_softmax_backward_f64(const double *y, int64_t ldy, const double *dy, int64_t ldd,
                                  double *dx, int64_t rows, int64_t cols, int num_threads);

/* Fused softmax + cross-entropy for logits (rows, cols) and targets (rows,).
 *
 *   losses[r]  = logsumexp(logits[r]) - logits[r, targets[r]]        (0 for ignored rows)
 *   dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * scale   (0 for ignored rows)
 *
 * A row is ignored when targets[r] == ignore_index. `scale` is 1/count of non-ignored rows
 * (the bridge computes it, and the mean of `losses`). dlogits == NULL: forward only, no
 * gradient is written. Returns the number of non-ignored rows whose target is outside [0, cols);
 * those rows get loss NaN and are otherwise skipped (the bridge rejects such targets before the
 * call, so this is only a second line of defence: never an out-of-bounds access).
 */
int64_t tgl_cross_entropy_f32(const float *logits, int64_t ldl, const int64_t *targets,
                              int64_t rows, int64_t cols, int64_t ignore_index, double scale,
                              double *losses, float *dlogits, int num_threads);
int64_t tgl_cross_entropy_f64(const double *logits, int64_t ldl, const int64_t *targets,
                              int64_t rows, int64_t cols, int64_t ignore_index, double scale,
                              double *losses, double *dlogits, int num_threads);

/* Plain reference loops (three passes, libm exp, one thread): what the fast path is tested
 * against. log_output != 0 gives log_softmax. Rows contiguous. */
void tgl_softmax_reference_f32(const float *x, float *y, int64_t rows, int64_t cols,
                               int log_output);
void tgl_softmax_reference_f64(const double *x, double *y, int64_t rows, int64_t cols,
                               int log_output);

/* The vectorisable exp used by the fast path, exposed so tests can measure its accuracy. */
void tgl_vexp_f32(const float *x, float *y, int64_t n);
void tgl_vexp_f64(const double *x, double *y, int64_t n);

/* Which softmax code path runs: 2 = hand-written AVX-512 (float32 only), 0 = portable C
 * (compiled per CPU level with target_clones). tgl_softmax_set_portable(1) forces the portable
 * code, (0) releases it (for tests and benchmarks); both return tgl_softmax_path(). */
int tgl_softmax_path(void);
int tgl_softmax_set_portable(int force);
