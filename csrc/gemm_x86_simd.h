/* The x86 vector vocabulary of the GEMM: one name per operation and element type, so that the
 * per-type bodies (gemm_kernels.h, gemm_x86_kernels.h, gemm_x86_pack.h) are written once.
 *
 * A body says e.g. FMADD512(a, b, acc); it defines FMADD512 as TGL_FN(fmadd512), which is
 * fmadd512_f32 -> _mm512_fmadd_ps when gemm.c includes it with SFX = f32, and fmadd512_f64 ->
 * _mm512_fmadd_pd with SFX = f64. The names below are plain aliases of the intrinsics (the
 * compiled code is exactly what the intrinsics give), plus the few helpers that are not single
 * instructions (the in-register transposes). Included once by gemm.c, inside #if TGL_X86.
 *
 * Every function carries a target attribute, so the file builds without -march flags and gemm.c
 * picks a path at run time. */
#define T512 __attribute__((target("avx512f")))
#define TAVX2 __attribute__((target("avx2,fma")))

/* ---------------------------------------------------------- AVX-512F: 16 floats / 8 doubles */
#define vl512_f32 16
#define v512_f32 __m512
#define mask512_f32 __mmask16
#define loadu512_f32 _mm512_loadu_ps
#define maskz_loadu512_f32 _mm512_maskz_loadu_ps
#define storeu512_f32 _mm512_storeu_ps
#define store512_f32 _mm512_store_ps /* 64-byte aligned */
#define mask_storeu512_f32 _mm512_mask_storeu_ps
#define set1_512_f32 _mm512_set1_ps
#define setzero512_f32 _mm512_setzero_ps
#define mul512_f32 _mm512_mul_ps
#define fmadd512_f32 _mm512_fmadd_ps
#define transpose512_f32 tr16x16_ps
#define target512_f32 T512

#define vl512_f64 8
#define v512_f64 __m512d
#define mask512_f64 __mmask8
#define loadu512_f64 _mm512_loadu_pd
#define maskz_loadu512_f64 _mm512_maskz_loadu_pd
#define storeu512_f64 _mm512_storeu_pd
#define store512_f64 _mm512_store_pd
#define mask_storeu512_f64 _mm512_mask_storeu_pd
#define set1_512_f64 _mm512_set1_pd
#define setzero512_f64 _mm512_setzero_pd
#define mul512_f64 _mm512_mul_pd
#define fmadd512_f64 _mm512_fmadd_pd
#define transpose512_f64 tr8x8_pd
#define target512_f64 T512

/* ---------------------------------------------------------- AVX2 + FMA: 8 floats / 4 doubles */
#define vl256_f32 8
#define v256_f32 __m256
#define loadu256_f32 _mm256_loadu_ps
#define storeu256_f32 _mm256_storeu_ps
#define setzero256_f32 _mm256_setzero_ps
#define set1_256_f32 _mm256_set1_ps
#define broadcast256_f32 _mm256_broadcast_ss
#define mul256_f32 _mm256_mul_ps
#define fmadd256_f32 _mm256_fmadd_ps

#define vl256_f64 4
#define v256_f64 __m256d
#define loadu256_f64 _mm256_loadu_pd
#define storeu256_f64 _mm256_storeu_pd
#define setzero256_f64 _mm256_setzero_pd
#define set1_256_f64 _mm256_set1_pd
#define broadcast256_f64 _mm256_broadcast_sd
#define mul256_f64 _mm256_mul_pd
#define fmadd256_f64 _mm256_fmadd_pd

/* ---------------------------------------------------------- in-register transposes */
/* The transposing packs (untransposed A: the panel is read row by row but stored column by
 * column; transposed B likewise) load a VL x VL block, transpose it with unpack/shuffle
 * instructions and store the columns: about 4 shuffles per 16 floats, instead of one scalar
 * store each. */

/* In-register transpose of r[0..15] (rows of 16 floats) into r[0..15] (columns). */
static TGL_ALWAYS_INLINE T512 void tr16x16_ps(__m512 r[16]) {
    __m512 t[16], s[16];
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++) {
        t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
        __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
        s[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        s[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        s[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        s[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* s[4q + c] holds, for rows 4q..4q+3, columns c, c+4, c+8, c+12 in its four 128-bit lanes */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 u0 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0x88);
        __m512 v0 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(s[c], s[4 + c], 0xdd);
        __m512 v1 = _mm512_shuffle_f32x4(s[8 + c], s[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(u0, v0, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(u0, v0, 0xdd);
        r[c + 4] = _mm512_shuffle_f32x4(u1, v1, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(u1, v1, 0xdd);
    }
}

/* In-register transpose of r[0..7] (rows of 8 doubles) into columns. */
static TGL_ALWAYS_INLINE T512 void tr8x8_pd(__m512d r[8]) {
    __m512d t[8], u[8];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        t[2 * q] = _mm512_unpacklo_pd(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_pd(r[2 * q], r[2 * q + 1]);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        u[4 * h + 0] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0x88);
        u[4 * h + 1] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0x88);
        u[4 * h + 2] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0xdd);
        u[4 * h + 3] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0xdd);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f64x2(u[c], u[4 + c], 0x88);
        r[c + 4] = _mm512_shuffle_f64x2(u[c], u[4 + c], 0xdd);
    }
}
