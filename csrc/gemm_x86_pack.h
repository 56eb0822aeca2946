/* The x86 packing routines for the AVX-512 tiles (gemm.c's "Packing" section says what pack_a and
 * pack_b produce; the generic C versions there are the reference). Included once by gemm.c,
 * inside #if TGL_X86. */
/* AVX-512 packing for the 14 x 32 (float) and 14 x 16 (double) tiles. Copies along contiguous
 * memory are (masked) vector loads/stores. The transposing cases (untransposed A: the panel
 * is read row by row but stored column by column; transposed B likewise) load a 16 x 16
 * (float) or 8 x 8 (double) block, transpose it in registers with unpack/shuffle instructions
 * and store the columns: about 4 shuffles per 16 floats, instead of one scalar store each. */

/* In-register transpose of r[0..15] (rows) into r[0..15] (columns). */
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

static TGL_ALWAYS_INLINE __mmask16 mask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}
static TGL_ALWAYS_INLINE __mmask8 mask8(int64_t n) {
    return n >= 8 ? (__mmask8)0xFF : n <= 0 ? (__mmask8)0 : (__mmask8)((1u << n) - 1u);
}

/* rows x 16 block of a row-major matrix (row stride ld, `cols` valid columns), transposed:
 * out[q] = column q (lane i = row i; rows >= `rows` are zero). */
static TGL_ALWAYS_INLINE T512 void load_tr16_ps(const float *src, int64_t ld, int rows,
                                                 __mmask16 colmask, __m512 out[16]) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        out[i] = i < rows ? _mm512_maskz_loadu_ps(colmask, src + i * ld) : _mm512_setzero_ps();
    tr16x16_ps(out);
}
static TGL_ALWAYS_INLINE T512 void load_tr8_pd(const double *src, int64_t ld, int rows,
                                                __mmask8 colmask, __m512d out[8]) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        out[i] = i < rows ? _mm512_maskz_loadu_pd(colmask, src + i * ld) : _mm512_setzero_pd();
    tr8x8_pd(out);
}

static T512 void s512_pack_a(int ta, int64_t mc, int64_t kc, const float *a, int64_t lda,
                             float *ap, int MR) {
    (void)MR;
    for (int64_t ir = 0; ir < mc; ir += A512_S_MR) {
        int mr = (int)TGL_MIN((int64_t)A512_S_MR, mc - ir);
        __mmask16 mm = mask16(mr);
        float *dst = ap + ir * kc;
        if (ta) {
            const float *src = a + ir;
            for (int64_t p = 0; p < kc; p++)
                _mm512_mask_storeu_ps(dst + p * A512_S_MR, mm,
                                      _mm512_maskz_loadu_ps(mm, src + p * lda));
        } else {
            const float *src = a + ir * lda;
            for (int64_t p0 = 0; p0 < kc; p0 += 16) {
                int pn = (int)TGL_MIN((int64_t)16, kc - p0);
                __m512 col[16];
                load_tr16_ps(src + p0, lda, mr, mask16(pn), col);
                float *d = dst + p0 * A512_S_MR;
                if (pn == 16) {
#pragma GCC unroll 16
                    for (int q = 0; q < 16; q++)
                        _mm512_mask_storeu_ps(d + q * A512_S_MR, mm, col[q]);
                } else {
                    for (int q = 0; q < pn; q++)
                        _mm512_mask_storeu_ps(d + q * A512_S_MR, mm, col[q]);
                }
            }
        }
    }
}

static T512 void s512_pack_b(int tb, int64_t kc, int64_t nc, const float *b, int64_t ldb,
                             float *bp, int NR) {
    (void)NR;
    for (int64_t jr = 0; jr < nc; jr += A512_S_NR) {
        int nr = (int)TGL_MIN((int64_t)A512_S_NR, nc - jr);
        float *dst = bp + jr * kc;
        if (!tb) {
            __mmask16 m0 = mask16(nr), m1 = mask16(nr - 16);
            const float *src = b + jr;
            for (int64_t p = 0; p < kc; p++) {
                _mm512_store_ps(dst + p * 32, _mm512_maskz_loadu_ps(m0, src + p * ldb));
                _mm512_store_ps(dst + p * 32 + 16, _mm512_maskz_loadu_ps(m1, src + p * ldb + 16));
            }
        } else {
            for (int h = 0; h < 2; h++) {
                int rows = (int)TGL_MIN((int64_t)16, nr - 16 * h);
                const float *src = b + (jr + 16 * h) * ldb;
                for (int64_t p0 = 0; p0 < kc; p0 += 16) {
                    int pn = (int)TGL_MIN((int64_t)16, kc - p0);
                    float *d = dst + p0 * 32 + 16 * h;
                    if (rows <= 0) {
                        for (int q = 0; q < pn; q++) _mm512_store_ps(d + q * 32, _mm512_setzero_ps());
                        continue;
                    }
                    __m512 col[16];
                    load_tr16_ps(src + p0, ldb, rows, mask16(pn), col);
                    if (pn == 16) {
#pragma GCC unroll 16
                        for (int q = 0; q < 16; q++) _mm512_store_ps(d + q * 32, col[q]);
                    } else {
                        for (int q = 0; q < pn; q++) _mm512_store_ps(d + q * 32, col[q]);
                    }
                }
            }
        }
    }
}

static T512 void d512_pack_a(int ta, int64_t mc, int64_t kc, const double *a, int64_t lda,
                             double *ap, int MR) {
    (void)MR;
    for (int64_t ir = 0; ir < mc; ir += A512_D_MR) {
        int mr = (int)TGL_MIN((int64_t)A512_D_MR, mc - ir);
        __mmask8 m0 = mask8(mr), m1 = mask8(mr - 8);
        double *dst = ap + ir * kc;
        if (ta) {
            const double *src = a + ir;
            for (int64_t p = 0; p < kc; p++) {
                double *d = dst + p * A512_D_MR;
                const double *s = src + p * lda;
                _mm512_mask_storeu_pd(d, m0, _mm512_maskz_loadu_pd(m0, s));
                if (m1) _mm512_mask_storeu_pd(d + 8, m1, _mm512_maskz_loadu_pd(m1, s + 8));
            }
        } else {
            for (int h = 0; h < 2; h++) {
                int rows = mr - 8 * h;
                if (rows <= 0) break;
                __mmask8 mh = h ? m1 : m0;
                const double *src = a + (ir + 8 * h) * lda;
                for (int64_t p0 = 0; p0 < kc; p0 += 8) {
                    int pn = (int)TGL_MIN((int64_t)8, kc - p0);
                    __m512d col[8];
                    load_tr8_pd(src + p0, lda, rows, mask8(pn), col);
                    double *d = dst + p0 * A512_D_MR + 8 * h;
                    if (pn == 8) {
#pragma GCC unroll 8
                        for (int q = 0; q < 8; q++) _mm512_mask_storeu_pd(d + q * A512_D_MR, mh, col[q]);
                    } else {
                        for (int q = 0; q < pn; q++) _mm512_mask_storeu_pd(d + q * A512_D_MR, mh, col[q]);
                    }
                }
            }
        }
    }
}

static T512 void d512_pack_b(int tb, int64_t kc, int64_t nc, const double *b, int64_t ldb,
                             double *bp, int NR) {
    (void)NR;
    for (int64_t jr = 0; jr < nc; jr += A512_D_NR) {
        int nr = (int)TGL_MIN((int64_t)A512_D_NR, nc - jr);
        double *dst = bp + jr * kc;
        if (!tb) {
            __mmask8 m0 = mask8(nr), m1 = mask8(nr - 8);
            const double *src = b + jr;
            for (int64_t p = 0; p < kc; p++) {
                _mm512_store_pd(dst + p * 16, _mm512_maskz_loadu_pd(m0, src + p * ldb));
                _mm512_store_pd(dst + p * 16 + 8, _mm512_maskz_loadu_pd(m1, src + p * ldb + 8));
            }
        } else {
            for (int h = 0; h < 2; h++) {
                int rows = (int)TGL_MIN((int64_t)8, nr - 8 * h);
                const double *src = b + (jr + 8 * h) * ldb;
                for (int64_t p0 = 0; p0 < kc; p0 += 8) {
                    int pn = (int)TGL_MIN((int64_t)8, kc - p0);
                    double *d = dst + p0 * 16 + 8 * h;
                    if (rows <= 0) {
                        for (int q = 0; q < pn; q++) _mm512_store_pd(d + q * 16, _mm512_setzero_pd());
                        continue;
                    }
                    __m512d col[8];
                    load_tr8_pd(src + p0, ldb, rows, mask8(pn), col);
                    if (pn == 8) {
#pragma GCC unroll 8
                        for (int q = 0; q < 8; q++) _mm512_store_pd(d + q * 16, col[q]);
                    } else {
                        for (int q = 0; q < pn; q++) _mm512_store_pd(d + q * 16, col[q]);
                    }
                }
            }
        }
    }
}
