/* Fused Adam / AdamW update: see adam.h for the equations.
 *
 * Why a kernel: the NumPy version of this update makes about ten passes over every parameter
 * array (each ufunc reads and writes whole arrays), and for the tiny GPT's 16.6M parameters
 * that memory traffic is a third of a training step. Here each element of p, g, m and v is
 * loaded once and p, m, v stored once: one pass, limited by memory bandwidth.
 *
 * There is no blocking to explain: the loop is a stream. `#pragma omp simd` lets GCC vectorise
 * it (sqrt and divide have vector instructions; no -ffast-math needed), and OpenMP splits it
 * across threads only when each thread gets enough elements to repay waking it.
 *
 * The arithmetic is done in the parameter's own precision, in the same order as the NumPy
 * reference (tinygrad_lite/kernels/reference.py: reference_adam_step), so the two agree to rounding.
 */
#include "adam.h"

#include <math.h>

#define MIN_ELEMENTS_PER_THREAD (1 << 18)

static int threads_for(int64_t n, int num_threads) {
    int64_t useful = n / MIN_ELEMENTS_PER_THREAD;
    if (useful < 1) return 1;
    return useful < num_threads ? (int)useful : num_threads;
}

/* The plain reference loop (one element at a time), kept for reading beside the fast path. */
#define ADAM_ELEMENT(T, SQRT)                                                        \
    do {                                                                             \
        T gi = g[i];                                                                 \
        T pi = p[i];                                                                 \
        if (decoupled) pi = pi * decay;                                              \
        else gi = gi + wd * pi;                                                      \
        T mi = b1 * m[i] + c1 * gi;                                                  \
        T vi = b2 * v[i] + c2 * (gi * gi);                                           \
        m[i] = mi;                                                                   \
        v[i] = vi;                                                                   \
        p[i] = pi - step * (mi / (SQRT(vi) * inv_bc2 + e));                          \
    } while (0)

#define DEFINE_ADAM_STEP(NAME, T, SQRT)                                              \
    void NAME(T *p, const T *g, T *m, T *v, int64_t n, double lr, double beta1,      \
              double beta2, double eps, double weight_decay, int decoupled,          \
              double step_size, double inv_sqrt_bc2, int num_threads) {             \
        const T b1 = (T)beta1, b2 = (T)beta2, c1 = (T)(1.0 - beta1),                 \
                c2 = (T)(1.0 - beta2), e = (T)eps, wd = (T)weight_decay,             \
                decay = (T)(1.0 - lr * weight_decay), step = (T)step_size,           \
                inv_bc2 = (T)inv_sqrt_bc2;                                           \
        int nt = threads_for(n, num_threads);                                        \
        (void)nt;                                                                    \
        _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(nt > 1)") \
        for (int64_t i = 0; i < n; i++) ADAM_ELEMENT(T, SQRT);                       \
    }

DEFINE_ADAM_STEP(tgl_adam_step_f32, float, sqrtf)
DEFINE_ADAM_STEP(tgl_adam_step_f64, double, sqrt)
