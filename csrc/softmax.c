/* Softmax, log-softmax (forward and backward) and the fused softmax-cross-entropy.
 *
 * The shape of the problem: `rows` independent rows, each reduced over its `cols` elements.
 * Rows are split across OpenMP threads; within a row the loops are written so GCC vectorises
 * them at -O3 (`#pragma omp simd` gives it permission to reorder the sum reductions).
 *
 * Numerical stability: softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max(x), so every exp
 * argument is <= 0 and nothing overflows, for inputs of +-1e4 as for inputs of 1.
 *
 * Passes over a row ("online softmax"). The row is walked in chunks of CHUNK elements; each
 * chunk's max is found first (the chunk then sits in L1 cache), the running sum is rescaled by
 * exp(m_old - m_new) when the max grows, then the chunk's exp(x - m) are added up. So the max
 * and the sum come out of one read of the row, with one exp per element.
 *   softmax:        that pass also stores exp(x - m_chunk) into y; a second, cheap pass over y
 *                   (still in L2 cache) multiplies each chunk by exp(m_chunk - m) / s.
 *   log-softmax:    the pass stores nothing; the second pass writes x - m - log(s) (no exp).
 *   cross-entropy:  like softmax, writing (softmax - onehot) / count into the gradient; without
 *                   a gradient only the first pass runs.
 * Every variant reads its input from memory once, writes its output once and computes one exp
 * per element -- the minimum. (The NumPy reference makes about eight passes.)
 * Sums are accumulated in double across chunks (a float32 sum over a 100k-wide row would lose
 * about 1e-5 relative accuracy) and in the element type within a chunk (short, so cheap and
 * accurate enough: see row_online_pass).
 *
 * exp: glibc's expf/exp are scalar calls that GCC cannot vectorise without -ffast-math (which we
 * refuse, see csrc/build.py), so tgl_exp_f32/tgl_exp_f64 below are the classic Cephes
 * range-reduction + polynomial, written with plain arithmetic and selects (no branches, no
 * calls) so the loops around them vectorise. Accuracy about 1-2 ulp over the whole range
 * (tested in tests/test_kernels_softmax.py against NumPy's exp).
 *
 * CPU features: the row functions carry `target_clones`, so GCC compiles each of them three
 * times (AVX-512 / AVX2+FMA / baseline x86-64) and picks one when the library is loaded (the
 * helpers they call are inlined into each clone). The
 * build stays portable (no -march=native) and still uses the wide vectors where they exist.
 *
 * The float and double versions share one body: softmax_impl.h, included twice below.
 *
 * float32 on AVX-512 CPUs runs a hand-written path instead (softmax_avx512.h): a power-of-two
 * shift in place of exp(x - max), sums kept in vector registers, streaming stores for outputs
 * larger than L2. This file's code is the portable reference it is tested against, and what
 * every other CPU and float64 run.
 */
#include "softmax.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(TGL_NO_CLONES)
#define TGL_ROW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TGL_ROW_KERNEL
#endif
/* The helpers the row functions share are inlined into each of them -- and so compiled once per
 * clone, with that clone's vector instructions (a call between clones would also cost an
 * indirect jump per row, which matters for short rows). */
#define TGL_INLINE __attribute__((always_inline)) inline

/* Chunk length of the online max+sum pass: 256 floats = 1 KiB, well inside L1 (so the max and
 * the exp loops over a chunk read it from L1), and short enough that a chunk's sum can be kept
 * in float (see row_online_pass). Rows longer than CHUNK * MAX_CHUNKS use longer chunks (see
 * chunk_for). */
#ifndef CHUNK
#define CHUNK 256
#endif
#define MAX_CHUNKS 1024

/* Outputs of at least this many bytes are written with streaming stores where the AVX-512 path
 * can (see there): larger than the L2 cache, so they would not stay in cache anyway. */
#ifndef STREAM_MIN_BYTES
#define STREAM_MIN_BYTES (4 << 20)
#endif

/* Below this many elements in total, threads cost more than they save. */
#define PARALLEL_MIN_ELEMENTS (1 << 15)

static int threads_for(int64_t rows, int64_t cols, int num_threads) {
    if (num_threads < 1 || rows * cols < PARALLEL_MIN_ELEMENTS) return 1;
    return rows < num_threads ? (int)rows : num_threads;
}

/* Rows are handed to threads in pieces of `grain` rows, on demand (schedule(dynamic)): about 4
 * pieces per thread, each of at least PARALLEL_MIN_ELEMENTS/2 elements. With a static split a
 * thread that the OS pauses (another process on the core) would hold up the whole call; on
 * demand, the other thread takes over its remaining pieces. Results do not depend on which
 * thread computes a row. */
static int64_t grain_for(int64_t rows, int64_t cols, int nt) {
    int64_t g = rows / (4 * (int64_t)nt);
    int64_t min_rows = (PARALLEL_MIN_ELEMENTS / 2) / (cols > 0 ? cols : 1);
    if (g < min_rows) g = min_rows;
    return g < 1 ? 1 : g;
}

/* ---------------------------------------------------------------------------------------- */
/* Vectorisable exp                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* exp(x + x_lo) for float, where x_lo is a tiny correction term (see tgl_exp_diff_f32 below),
 * for x <= 88 (or NaN): the softmax kernels only ever need x <= 0, so this core has no overflow
 * handling -- every compare-and-select it does not do is an instruction saved per 16 elements.
 * x = n*ln2 + r with |r| <= ln2/2, so exp(x) = 2^n * exp(r).
 *  - n = round(x / ln2) by the "magic number" trick: adding 1.5*2^23 pushes the fraction bits
 *    out, so the float t holds n in its low mantissa bits (no float->int conversion needed).
 *  - r = x - n*ln2, with ln2 split in a short exact part C1 and a correction C2 (Cody-Waite),
 *    so r is accurate even for large n.
 *  - exp(r) = 1 + r + r^2 * P(r), the degree-5 polynomial P from Cephes' expf.
 *  - 2^n is built directly in the exponent bits of a float.
 * Below -87.33 (where exp underflows to subnormals) the result is 0; NaN stays NaN. */
static inline float tgl_exp_core_f32(float x, float x_lo) {
    const float lo = -87.33654475f;
    const float xc = x < lo ? lo : x; /* written this way round so a NaN passes through */
    const float magic = 12582912.0f;  /* 1.5 * 2^23 */
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    r = r + x_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    uint32_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    uint32_t sbits = (tbits - 0x4B400000u + 127u) << 23; /* (n + 127) in the exponent field */
    float scale;
    memcpy(&scale, &sbits, sizeof scale);
    y = y * scale;
    return x < lo ? 0.0f : y;
}

/* exp(x) over the whole float range: the core, plus +inf above 88.72 (arguments in
 * (88.0, 88.72] are clamped to 88.0). */
static inline float tgl_exp_f32(float x) {
    const float y = tgl_exp_core_f32(x > 88.0f ? 88.0f : x, 0.0f);
    return x > 88.72283905f ? INFINITY : y;
}

/* exp(x + x_lo) for double, x <= 709 or NaN: same reduction (magic 1.5*2^52), Cephes' Pade
 * approximation exp(r) = 1 + 2r P(r^2) / (Q(r^2) - r P(r^2)). 0 below -708.39. */
static inline double tgl_exp_core_f64(double x, double x_lo) {
    const double lo = -708.39641853226408;
    const double xc = x < lo ? lo : x;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double t = xc * 1.4426950408889634 + magic;
    double n = t - magic;
    double r = xc - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    r = r + x_lo;
    double rr = r * r;
    double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr +
                     9.99999999999999999910e-1);
    double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr +
                 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
    double y = 1.0 + 2.0 * (px / (qx - px));
    uint64_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    uint64_t sbits = (tbits - 0x4338000000000000ull + 1023ull) << 52;
    double scale;
    memcpy(&scale, &sbits, sizeof scale);
    y = y * scale;
    return x < lo ? 0.0 : y;
}

static inline double tgl_exp_f64(double x) {
    const double y = tgl_exp_core_f64(x > 709.0 ? 709.0 : x, 0.0);
    return x > 709.782712893384 ? INFINITY : y;
}

/* exp(a - b) for a <= b (b is the row max), accurately. The difference a - b of two floats is
 * rounded: for a - b = -81 in float32 the rounding error can be 3.8e-6, and exp turns it into a
 * relative error of 3.8e-6 -- more than the 2e-6 we promise for softmax. TwoSum (Knuth)
 * recovers that rounding error exactly with a few more additions, and the exp core folds it
 * into its reduced argument. (When a = -inf the error term is NaN, but the core returns 0 for
 * any argument below -87 without looking at it; a NaN a gives NaN, as it should.) */
static inline float tgl_exp_diff_f32(float a, float b) {
    float s = a - b;
    float bb = s - a;
    float err = (a - (s - bb)) + (-b - bb);
    return tgl_exp_core_f32(s, err);
}
static inline double tgl_exp_diff_f64(double a, double b) {
    double s = a - b;
    double bb = s - a;
    double err = (a - (s - bb)) + (-b - bb);
    return tgl_exp_core_f64(s, err);
}

#include "softmax_avx512.h" /* the AVX-512 float32 fast path, see there */

/* ---------------------------------------------------------------------------------------- */
/* The kernels, once per element type                                                       */
/* ---------------------------------------------------------------------------------------- */

#define T float
#define SFX f32
#define VEXP tgl_exp_f32
#define VEXP_DIFF tgl_exp_diff_f32
#define LIBM_EXP expf
#define TGL_PICK(generic, fast) TGL_PICK_F32(generic, fast)
#include "softmax_impl.h"
#undef T
#undef SFX
#undef VEXP
#undef VEXP_DIFF
#undef LIBM_EXP
#undef TGL_PICK

#define T double
#define SFX f64
#define VEXP tgl_exp_f64
#define VEXP_DIFF tgl_exp_diff_f64
#define LIBM_EXP exp
#define TGL_PICK(generic, fast) (generic)
#include "softmax_impl.h"
#undef T
#undef SFX
#undef VEXP
#undef VEXP_DIFF
#undef LIBM_EXP
#undef TGL_PICK
