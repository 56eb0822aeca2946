/* GEMM packing in plain C, written once per element type: gemm.c includes this file once per
 * type with TA (the type of the A and B matrices in memory), T (the type of the packed panels,
 * which the micro-kernels compute in) and SFX set. TGL_FN(widen) turns a TA into a T (for
 * float and double the identity). Read it as ordinary C.
 *
 * These loops are the reference the AVX-512 packing (gemm_x86_pack.h) is tested against, and
 * the packing of the portable and AVX2 paths.
 *
 * pack_a(ta, mc, kc, a, lda, ap, MR): the A block op(A)[0:mc, 0:kc], where
 *   op(A)(i, p) = ta ? a[p*lda + i] : a[i*lda + p],
 * goes to ap as micro-panels of MR rows: panel r (rows r*MR..) at ap + r*MR*kc, element (i, p)
 * at [p*MR + i]. Rows past mc in the last panel are not written (the kernel does not read them).
 *
 * pack_b(tb, kc, nc, b, ldb, bp, NR): the B block op(B)[0:kc, 0:nc], where
 *   op(B)(p, j) = tb ? b[j*ldb + p] : b[p*ldb + j],
 * goes to bp as micro-panels of NR columns: panel s at bp + s*NR*kc, element (p, j) at
 * [p*NR + j], zero-padded to NR columns. */

static void TGL_FN(pack_a_generic)(int ta, int64_t mc, int64_t kc, const TA *a, int64_t lda,
                                   T *ap, int MR) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int mr = (int)TGL_MIN((int64_t)MR, mc - ir);
        T *dst = ap + ir * kc;
        if (ta) {
            for (int64_t p = 0; p < kc; p++) {
                const TA *src = a + p * lda + ir;
                for (int i = 0; i < mr; i++) dst[p * MR + i] = TGL_FN(widen)(src[i]);
            }
        } else {
            for (int i = 0; i < mr; i++) {
                const TA *src = a + (ir + i) * lda;
                for (int64_t p = 0; p < kc; p++) dst[p * MR + i] = TGL_FN(widen)(src[p]);
            }
        }
    }
}

static void TGL_FN(pack_b_generic)(int tb, int64_t kc, int64_t nc, const TA *b, int64_t ldb,
                                   T *bp, int NR) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int nr = (int)TGL_MIN((int64_t)NR, nc - jr);
        T *dst = bp + jr * kc;
        if (!tb) {
            for (int64_t p = 0; p < kc; p++) {
                const TA *src = b + p * ldb + jr;
                T *d = dst + p * NR;
                int j = 0;
                for (; j < nr; j++) d[j] = TGL_FN(widen)(src[j]);
                for (; j < NR; j++) d[j] = 0;
            }
        } else {
            for (int j = 0; j < nr; j++) {
                const TA *src = b + (jr + j) * ldb;
                for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = TGL_FN(widen)(src[p]);
            }
            if (nr < NR)
                for (int64_t p = 0; p < kc; p++)
                    for (int j = nr; j < NR; j++) dst[p * NR + j] = 0;
        }
    }
}
