/* Fused Adam / AdamW parameter update (implemented in adam.c).
 *
 * One pass over n elements of the parameter p, its gradient g and the two moment buffers m, v
 * (all contiguous, same dtype), doing what PyTorch's Adam/AdamW step does elementwise:
 *
 *     if decoupled:  p = p * (1 - lr * weight_decay)        (AdamW)
 *     else:          g = g + weight_decay * p                (Adam's L2 penalty; g is not written)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g * g
 *     p = p - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
 *
 * with step_size = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t) computed by the
 * caller (t = the step number). p, m and v are updated in place.
 */
#include <stdint.h>

void tgl_adam_step_f32(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                       double beta1, double beta2, double eps, double weight_decay,
                       int decoupled, double step_size, double inv_sqrt_bc2, int num_threads);
void tgl_adam_step_f64(double *p, const double *g, double *m, double *v, int64_t n, double lr,
                       double beta1, double beta2, double eps, double weight_decay,
                       int decoupled, double step_size, double inv_sqrt_bc2, int num_threads);
