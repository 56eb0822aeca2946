/* GEMM on bfloat16 and float16 inputs with float32 accumulation and output (included once by
 * gemm.c, at its end; interface in gemm.h: tgl_gemm_bf16, tgl_gemm_f16).
 *
 *     C = alpha * op(A) * op(B) + beta * C       A, B: bf16 or fp16 (uint16_t), C: float
 *
 * Both are the float GEMM with a different packing: the same blocked driver (gemm_impl.h,
 * instantiated with TA = uint16_t, T = float), the same float micro-kernels, and packing that
 * widens each element to float while it copies (gemm_pack.h / gemm_x86_pack.h with
 * TGL_FN(widen) / maskz_load_widen512 below). Widening is exact -- every bf16 and every fp16 is
 * a float -- and so is the product of two widened values (8 + 8 and 11 + 11 significant bits
 * fit in float's 24), so the result differs from the float GEMM on the widened inputs only in
 * the order of the float sums: it is bitwise the float GEMM's on the same path.
 *
 *   bf16 -> float   the 16 bits become the high half of the float's 32 (a shift: bf16 is a
 *                   float with the low 16 mantissa bits cut off).
 *   fp16 -> float   in plain C on the portable and AVX2 paths (widen_f16), with F16C's
 *                   vcvtph2ps (AVX-512F form) on the AVX-512 path.
 *
 * Packing widens mc*kc + kc*nc elements per block while the micro-kernel does 2*mc*nc*kc
 * flops, so the conversion costs little; the packed panels are float, twice the bytes of the
 * inputs, exactly as for a float GEMM. Inputs are never read in place (the kernels read
 * float), so small products always pack (the float GEMM skips packing for them).
 *
 * Not done yet: a path with vdpbf16ps (AVX512_BF16), which multiplies bf16 pairs directly at
 * twice the float FMA rate and halves the packed panels. It needs its own packing -- k-pairs,
 * elements (2q, j) and (2q+1, j) side by side in 32 bits, zero-padded for odd k -- and a
 * micro-kernel whose loop steps over pairs (the AVX-512 body with a pair broadcast and
 * vdpbf16ps in place of the FMA); the driver would count panel lengths in pairs. Its results
 * would differ from the float path's in summation order (and in flushing bf16 subnormals).
 *
 * Paths: the float ones (0 portable, 1 AVX2+FMA, 2 AVX-512F), except that the AVX-512 packing
 * here also needs AVX512BW+VL (16-bit masked loads): without them the AVX2 path runs.
 */

/* ---------------------------------------------------------------- widening, in plain C */
static inline float widen_bf16(uint16_t x) {
    uint32_t bits = (uint32_t)x << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float widen_f16(uint16_t x) {
    uint32_t sign = (uint32_t)(x & 0x8000u) << 16, exponent = (x >> 10) & 0x1fu;
    uint32_t mantissa = x & 0x3ffu, bits;
    if (exponent == 0) { /* zero or subnormal: mantissa * 2^-24, exact in float */
        float f = (float)mantissa * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exponent == 0x1f) /* inf, or NaN (payload kept, so a quiet NaN stays quiet) */
        bits = sign | 0x7f800000u | (mantissa << 13);
    else /* rebias: 15 -> 127 */
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- which path runs */
static int g_lowp_avx512 = -1; /* does the CPU have what the AVX-512 widening packs need? */

static int lowp_path(void) {
    int path = tgl_gemm_path();
#if TGL_X86
    if (path == 2) {
        int ok = __atomic_load_n(&g_lowp_avx512, __ATOMIC_RELAXED);
        if (ok < 0) {
            __builtin_cpu_init();
            ok = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
            __atomic_store_n(&g_lowp_avx512, ok, __ATOMIC_RELAXED);
        }
        if (!ok) path = 1;
    }
#endif
    return path;
}

int tgl_gemm_lowp_path(void) { return lowp_path(); }

/* Per-type names the bodies use (see gemm.c): the float panels' tiles and vocabulary. */
#define NPATHS_bf16 3
#define NPATHS_f16 3
#define path_code_bf16 lowp_path
#define path_code_f16 lowp_path
#define READS_IN_PLACE_bf16 0
#define READS_IN_PLACE_f16 0
#define A512_MR_bf16 A512_MR_f32
#define A512_NR_bf16 A512_NR_f32
#define A512_MR_f16 A512_MR_f32
#define A512_NR_f16 A512_NR_f32

#if TGL_X86
#define T512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
/* up to 16 elements (the lanes in `mask`) widened to a vector of 16 floats */
static TGL_ALWAYS_INLINE T512BW __m512 maskz_load_widen512_bf16(__mmask16 mask,
                                                                const uint16_t *p) {
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
static TGL_ALWAYS_INLINE T512BW __m512 maskz_load_widen512_f16(__mmask16 mask,
                                                               const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}
#define target512_bf16 T512BW
#define vl512_bf16 vl512_f32
#define v512_bf16 v512_f32
#define mask512_bf16 mask512_f32
#define store512_bf16 store512_f32
#define mask_storeu512_bf16 mask_storeu512_f32
#define setzero512_bf16 setzero512_f32
#define transpose512_bf16 transpose512_f32
#define target512_f16 T512BW
#define vl512_f16 vl512_f32
#define v512_f16 v512_f32
#define mask512_f16 mask512_f32
#define store512_f16 store512_f32
#define mask_storeu512_f16 mask_storeu512_f32
#define setzero512_f16 setzero512_f32
#define transpose512_f16 transpose512_f32
#endif

/* The paths of both types: the float micro-kernels, the widening packs of the type. */
#if TGL_X86
#define LOWP_PATHS(SFXv)                                                                       \
    {{PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_##SFXv,      \
      pack_b_generic_##SFXv, 0, 0, NULL},                                                   \
     {AVX2_MR_f32, AVX2_NR_f32, 2052, 384, 768, ukr_avx2_f32, pack_a_generic_##SFXv,           \
      pack_b_generic_##SFXv, 0, 0, NULL},                                                   \
     {A512_MR_f32, A512_NR_f32, 2058, 384, 512, ukr512_f32, pack_a512_##SFXv,                  \
      pack_b512_##SFXv, 0, 0, NULL}}
#else
#define LOWP_PATHS(SFXv)                                                                       \
    {{PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_##SFXv,      \
      pack_b_generic_##SFXv, 0, 0, NULL},                                                   \
     {PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_##SFXv,      \
      pack_b_generic_##SFXv, 0, 0, NULL},                                                   \
     {PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_##SFXv,      \
      pack_b_generic_##SFXv, 0, 0, NULL}}
#endif

/* ------------------------------------------------------------------------- bfloat16 */
#define T float
#define TA uint16_t
#define SFX bf16
#include "gemm_pack.h"
#if TGL_X86
#include "gemm_x86_pack.h"
#endif
#include "gemm_impl.h"
static const struct path_bf16 paths_bf16[NPATHS_bf16] = LOWP_PATHS(bf16);
#undef T
#undef TA
#undef SFX

/* ------------------------------------------------------------------------- float16 */
#define T float
#define TA uint16_t
#define SFX f16
#include "gemm_pack.h"
#if TGL_X86
#include "gemm_x86_pack.h"
#endif
#include "gemm_impl.h"
static const struct path_f16 paths_f16[NPATHS_f16] = LOWP_PATHS(f16);
#undef T
#undef TA
#undef SFX

/* ------------------------------------------------------------------------- entry points */
void tgl_gemm_bf16(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                   float *c, int64_t ldc, int num_threads) {
    gemm_mt_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                 resolve_threads(num_threads));
}

void tgl_gemm_f16(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                  float *c, int64_t ldc, int num_threads) {
    gemm_mt_f16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                resolve_threads(num_threads));
}

void tgl_gemm_bf16_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
                           int64_t k, float alpha, const uint16_t *a, int64_t lda,
                           int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                           float beta, float *c, int64_t ldc, int64_t stride_c,
                           int num_threads) {
    gemm_batched_bf16(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb,
                      stride_b, beta, c, ldc, stride_c, num_threads);
}

void tgl_gemm_f16_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n,
                          int64_t k, float alpha, const uint16_t *a, int64_t lda,
                          int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                          float beta, float *c, int64_t ldc, int64_t stride_c,
                          int num_threads) {
    gemm_batched_f16(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb,
                     stride_b, beta, c, ldc, stride_c, num_threads);
}

void tgl_gemm_bf16_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                         float beta, float *c, int64_t ldc) {
    gemm_naive_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void tgl_gemm_f16_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                        const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc) {
    gemm_naive_f16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
