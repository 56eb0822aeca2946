/* The AVX-512 GEMM packing for the 14 x 2-vector tiles, written once per element type: gemm.c
 * includes this file once per type with TA, T and SFX set (as for gemm_pack.h, whose plain
 * loops are the reference these are tested against), inside #if TGL_X86. The vector
 * operations come from gemm_x86_simd.h; MASKZ_LOAD_WIDEN512 loads up to VL elements of TA and
 * returns them as a vector of T (a plain masked load for float and double).
 *
 * Copies along contiguous memory are (masked) vector loads/stores. The transposing cases
 * (untransposed A: the panel is read row by row but stored column by column; transposed B
 * likewise) load a VL x VL block, transpose it in registers and store the columns. */
#define TARGET512 TGL_FN(target512) /* avx512f, plus what the widening load needs */
#define VL512 TGL_FN(vl512)
#define V512 TGL_FN(v512)
#define MASK512 TGL_FN(mask512)
#define MASKZ_LOAD_WIDEN512 TGL_FN(maskz_load_widen512)
#define STORE512 TGL_FN(store512)
#define MASK_STOREU512 TGL_FN(mask_storeu512)
#define SETZERO512 TGL_FN(setzero512)
#define MR512 TGL_FN(A512_MR)
#define NR512 TGL_FN(A512_NR)
/* vectors per packed row of A (MR values) and of B (NR values) */
#define NVA512 ((MR512 + VL512 - 1) / VL512)

/* The first n lanes (all for n >= VL, none for n <= 0). */
static TGL_ALWAYS_INLINE MASK512 TGL_FN(lanes512)(int64_t n) {
    return n >= VL512 ? (MASK512)~0u : n <= 0 ? (MASK512)0 : (MASK512)((1u << n) - 1u);
}

/* rows x VL block of a row-major matrix (row stride ld, valid columns in colmask), transposed:
 * out[q] = column q (lane i = row i; rows >= `rows` are zero). */
static TGL_ALWAYS_INLINE TARGET512 void TGL_FN(load_transposed512)(const TA *src, int64_t ld,
                                                              int rows, MASK512 colmask,
                                                              V512 out[VL512]) {
#pragma GCC unroll 16
    for (int i = 0; i < VL512; i++)
        out[i] = i < rows ? MASKZ_LOAD_WIDEN512(colmask, src + i * ld) : SETZERO512();
    TGL_FN(transpose512)(out);
}

static TARGET512 void TGL_FN(pack_a512)(int ta, int64_t mc, int64_t kc, const TA *a, int64_t lda,
                                   T *ap, int MR) {
    (void)MR;
    for (int64_t ir = 0; ir < mc; ir += MR512) {
        int mr = (int)TGL_MIN((int64_t)MR512, mc - ir);
        T *dst = ap + ir * kc;
        if (ta) { /* a column of op(A) is contiguous: NVA512 masked copies per p */
            const TA *src = a + ir;
            for (int64_t p = 0; p < kc; p++) {
                T *d = dst + p * MR512;
                const TA *s = src + p * lda;
#pragma GCC unroll 2
                for (int h = 0; h < NVA512; h++) {
                    MASK512 mh = TGL_FN(lanes512)(mr - VL512 * h);
                    if (h == 0 || mh)
                        MASK_STOREU512(d + VL512 * h, mh,
                                       MASKZ_LOAD_WIDEN512(mh, s + VL512 * h));
                }
            }
        } else { /* rows of op(A) are contiguous: transpose VL x VL blocks */
            for (int h = 0; h < NVA512; h++) {
                int rows = mr - VL512 * h;
                if (rows <= 0) break;
                MASK512 mh = TGL_FN(lanes512)(rows);
                const TA *src = a + (ir + VL512 * h) * lda;
                for (int64_t p0 = 0; p0 < kc; p0 += VL512) {
                    int pn = (int)TGL_MIN((int64_t)VL512, kc - p0);
                    V512 col[VL512];
                    TGL_FN(load_transposed512)(src + p0, lda, rows, TGL_FN(lanes512)(pn), col);
                    T *d = dst + p0 * MR512 + VL512 * h;
                    if (pn == VL512) {
#pragma GCC unroll 16
                        for (int q = 0; q < VL512; q++) MASK_STOREU512(d + q * MR512, mh, col[q]);
                    } else {
                        for (int q = 0; q < pn; q++) MASK_STOREU512(d + q * MR512, mh, col[q]);
                    }
                }
            }
        }
    }
}

static TARGET512 void TGL_FN(pack_b512)(int tb, int64_t kc, int64_t nc, const TA *b, int64_t ldb,
                                   T *bp, int NR) {
    (void)NR;
    for (int64_t jr = 0; jr < nc; jr += NR512) {
        int nr = (int)TGL_MIN((int64_t)NR512, nc - jr);
        T *dst = bp + jr * kc;
        if (!tb) { /* rows of op(B) are contiguous: two (masked) vector copies per p */
            MASK512 m0 = TGL_FN(lanes512)(nr), m1 = TGL_FN(lanes512)(nr - VL512);
            const TA *src = b + jr;
            for (int64_t p = 0; p < kc; p++) {
                STORE512(dst + p * NR512, MASKZ_LOAD_WIDEN512(m0, src + p * ldb));
                STORE512(dst + p * NR512 + VL512,
                         MASKZ_LOAD_WIDEN512(m1, src + p * ldb + VL512));
            }
        } else { /* columns of op(B) are contiguous: transpose VL x VL blocks */
            for (int h = 0; h < 2; h++) {
                int rows = (int)TGL_MIN((int64_t)VL512, nr - VL512 * h);
                const TA *src = b + (jr + VL512 * h) * ldb;
                for (int64_t p0 = 0; p0 < kc; p0 += VL512) {
                    int pn = (int)TGL_MIN((int64_t)VL512, kc - p0);
                    T *d = dst + p0 * NR512 + VL512 * h;
                    if (rows <= 0) {
                        for (int q = 0; q < pn; q++) STORE512(d + q * NR512, SETZERO512());
                        continue;
                    }
                    V512 col[VL512];
                    TGL_FN(load_transposed512)(src + p0, ldb, rows, TGL_FN(lanes512)(pn), col);
                    if (pn == VL512) {
#pragma GCC unroll 16
                        for (int q = 0; q < VL512; q++) STORE512(d + q * NR512, col[q]);
                    } else {
                        for (int q = 0; q < pn; q++) STORE512(d + q * NR512, col[q]);
                    }
                }
            }
        }
    }
}

#undef TARGET512
#undef VL512
#undef V512
#undef MASK512
#undef MASKZ_LOAD_WIDEN512
#undef STORE512
#undef MASK_STOREU512
#undef SETZERO512
#undef MR512
#undef NR512
#undef NVA512
