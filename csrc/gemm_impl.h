/* The GEMM itself -- the reference loop, then the blocked driver, its threads and the batched
 * form -- written once per element type: gemm.c includes this file once per type with TA (the
 * type of A and B in memory), T (the type of C, alpha and beta, and of the packed panels the
 * micro-kernels compute in) and SFX set, as softmax.c does with softmax_impl.h. For float and
 * double, TA = T. Read it as ordinary C; read gemm.c's top comment first. */

/* ========================================================================================== */
/* The reference: a plain triple loop                                                          */
/* ========================================================================================== */

/* C = alpha * op(A) * op(B) + beta * C, summed in T in the obvious order. It is the reference
 * (easy to read, easy to trust, slow) the fast path is tested and benchmarked against, and
 * the fallback when the packing buffer cannot be allocated. */
static void TGL_FN(gemm_naive)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                               T alpha, const TA *a, int64_t lda, const TA *b, int64_t ldb,
                               T beta, T *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            T acc = 0;
            for (int64_t p = 0; p < k; p++) {
                T av = TGL_FN(widen)(trans_a ? a[p * lda + i] : a[i * lda + p]);
                T bv = TGL_FN(widen)(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
                acc += av * bv;
            }
            T *cij = &c[i * ldc + j];
            *cij = (beta == (T)0) ? alpha * acc : alpha * acc + beta * *cij;
        }
    }
}

/* ========================================================================================== */
/* The blocked driver                                                                          */
/* ========================================================================================== */

/* One code path (gemm.c, "Paths and run-time dispatch"): its micro-kernel, packing and block
 * sizes. ukr: see "Micro-kernels" in gemm.c; pack_a / pack_b: see gemm_pack.h. */
struct TGL_FN(path) {
    int mr, nr;                 /* micro-tile: rows x columns */
    int64_t mc, kc, nc;         /* block size limits (loops 1-3) */
    void (*ukr)(int64_t, const T *, int64_t, const T *, int64_t, T *, int64_t, T, T, int, int);
    void (*pack_a)(int, int64_t, int64_t, const TA *, int64_t, T *, int);
    void (*pack_b)(int, int64_t, int64_t, const TA *, int64_t, T *, int);
    int direct_a;               /* may read A in place */
    int vl;                     /* vector length in elements (for c_head), 0: no head tiles */
    void (*wide)(int64_t, const T *, int64_t, const T *, int64_t, T *, int64_t, T, T, int,
                 int);          /* the wide tiles for B read in place, or NULL */
};
/* The paths, indexed by TGL_FN(path_code)(); defined in gemm.c after this file. */
static const struct TGL_FN(path) TGL_FN(paths)[TGL_FN(NPATHS)];

/* C := beta*C (the whole product when k == 0 or alpha == 0). */
static void TGL_FN(scale_c)(int64_t m, int64_t n, T beta, T *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        T *row = c + i * ldc;
        if (beta == (T)0)
            memset(row, 0, (size_t)n * sizeof(T));
        else if (beta != (T)1)
            for (int64_t j = 0; j < n; j++) row[j] *= beta;
    }
}

/* A or B read in place, as the micro-kernel's panel type (only reached when TA == T). */
#define IN_PLACE(p) ((const T *)(p))

/* The sequential blocked algorithm (see gemm.c's top comment). m, n, k >= 1. */
static void TGL_FN(gemm_seq)(const struct TGL_FN(path) *P, int ta, int tb, int64_t m,
                             int64_t n, int64_t k, T alpha, const TA *A, int64_t lda,
                             const TA *B, int64_t ldb, T beta, T *C, int64_t ldc) {
    const int MR = P->mr, NR = P->nr;
    /* Read A or B in place when packing would not pay (see "Small problems" in gemm.c); only
     * when the panels have A's and B's type (READS_IN_PLACE: TA == T). */
    const int direct_b =
        TGL_FN(READS_IN_PLACE) && !tb && (m <= (int64_t)MR * DIRECT_B_MAX_M_PANELS ||
                ((double)k * (double)n * sizeof(TA) <= DIRECT_B_MAX_BYTES &&
                 (ldb * (int64_t)sizeof(TA)) % 4096 != 0));
    const int direct_a = P->direct_a && !ta && lda > 0 &&
                         (double)m * (double)k * sizeof(TA) <= DIRECT_A_MAX_BYTES &&
                         (lda * (int64_t)sizeof(TA)) % 4096 != 0;
    /* Block sizes: as many blocks as the limits P->mc/kc/nc require, then equal-sized
     * (so k = KC + 1 gives two blocks of about KC/2, not KC and 1). */
    const int64_t MC = balanced_block(m, P->mc, MR);
    const int64_t KC = balanced_block(k, P->kc, 1);
    const int64_t NC = direct_b ? n : balanced_block(n, P->nc, NR);
    int64_t head = c_head(P->vl, sizeof(T), C, ldc, n, KC);
    /* ...but not at the price of misaligning B read in place when it is aligned: a tile
     * loads kc*NR/VL vectors of B and stores only mr*NR/VL of C. */
    if (head && direct_b && ((uintptr_t)B & 63) == 0 && ((uint64_t)ldb * sizeof(TA)) % 64 == 0)
        head = 0;
    /* A block (MC rounded up to MR rows) + B block (NC rounded up to NR columns, or one
     * edge panel when B is read in place). */
    size_t a_elems = direct_a ? 0 : (size_t)((MC + MR - 1) / MR * MR) * (size_t)KC;
    size_t b_elems = direct_b ? (size_t)NR * (size_t)KC
                              : (size_t)((NC + NR - 1) / NR * NR) * (size_t)KC;
    if (head) b_elems += (size_t)NR * (size_t)KC; /* + the head panel */
    a_elems = (a_elems + 15) & ~(size_t)15; /* keep the B block 64-byte aligned */
    T *ap = (T *)get_buffer((a_elems + b_elems) * sizeof(T));
    if (!ap) { /* out of memory: still give the right answer */
        TGL_FN(gemm_naive)(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    T *bp = ap + a_elems;
    for (int64_t ic = 0; ic < m; ic += MC) {                  /* loop 1 */
        int64_t mc = TGL_MIN(MC, m - ic);
        for (int64_t pc = 0; pc < k; pc += KC) {              /* loop 2 */
            int64_t kc = TGL_MIN(KC, k - pc);
            T beta_eff = pc == 0 ? beta : (T)1;
            const TA *asrc = ta ? A + pc * lda + ic : A + ic * lda + pc;
            if (!direct_a) P->pack_a(ta, mc, kc, asrc, lda, ap, MR);
            for (int64_t jc = 0; jc < n; jc += NC) {          /* loop 3 */
                int64_t nc = TGL_MIN(NC, n - jc);
                const TA *bsrc = tb ? B + jc * ldb + pc : B + pc * ldb + jc;
                /* the head columns (C alignment), always packed, in the last panel */
                const int64_t h = TGL_MIN(head, nc);
                T *bhead = bp + b_elems - (size_t)NR * (size_t)KC;
                if (h) {
                    P->pack_b(tb, kc, h, bsrc, ldb, bhead, NR);
                    bsrc += tb ? h * ldb : h;
                    nc -= h;
                }
                int64_t nfull = 0; /* columns read in place */
                if (direct_b) {
                    nfull = nc / NR * NR;
                    if (nfull < nc) /* the ragged right edge is packed (zero-padded) */
                        P->pack_b(0, kc, nc - nfull, bsrc + nfull, ldb, bp, NR);
                } else {
                    P->pack_b(tb, kc, nc, bsrc, ldb, bp, NR);
                }
                T *cblk = C + ic * ldc + jc + h;
                for (int64_t ir = 0; ir < mc; ir += MR) {     /* loop 4 */
                    int mr = (int)TGL_MIN((int64_t)MR, mc - ir);
                    const T *apan = direct_a ? IN_PLACE(asrc + ir * lda) : ap + ir * kc;
                    int64_t rsa = direct_a ? lda : 0;
                    T *crow = cblk + ir * ldc;
                    if (h)
                        P->ukr(kc, apan, rsa, bhead, NR, crow - h, ldc, alpha, beta_eff, mr,
                               (int)h);
                    int64_t jr = 0;
                    if (P->wide && direct_b) { /* wide tiles: two 7-row halves */
                        const int64_t nw = nfull / (2 * NR) * (2 * NR);
                        for (int half = 0; half < 2; half++) {
                            int r0 = half * (MR / 2);
                            int mrh = TGL_MIN(mr - r0, MR / 2);
                            if (mrh <= 0) break;
                            const T *ah = direct_a ? apan + r0 * lda : apan + r0;
                            for (jr = 0; jr < nw; jr += 2 * NR)
                                P->wide(kc, ah, rsa, IN_PLACE(bsrc + jr), ldb,
                                        crow + r0 * ldc + jr, ldc, alpha, beta_eff, mrh,
                                        2 * NR);
                        }
                        jr = nw;
                    }
                    for (; jr < nc; jr += NR) { /* loop 5 */
                        int nr = (int)TGL_MIN((int64_t)NR, nc - jr);
                        if (jr < nfull)
                            P->ukr(kc, apan, rsa, IN_PLACE(bsrc + jr), ldb, crow + jr, ldc,
                                   alpha, beta_eff, mr, nr);
                        else
                            P->ukr(kc, apan, rsa, direct_b ? bp : bp + jr * kc, NR, crow + jr,
                                   ldc, alpha, beta_eff, mr, nr);
                    }
                }
            }
        }
    }
}

/* ========================================================================================== */
/* Threads                                                                                     */
/* ========================================================================================== */

/* The OpenMP region: each of the tm x tn threads runs gemm_seq on its rectangle of C. */
static void TGL_FN(parallel_grid)(const struct TGL_FN(path) *P, int ta, int tb, int64_t m,
                                  int64_t n, int64_t k, T alpha, const TA *A, int64_t lda,
                                  const TA *B, int64_t ldb, T beta, T *C, int64_t ldc, int tm,
                                  int tn, int64_t mt, int64_t ntl) {
    int nthreads = tm * tn;
    (void)nthreads;
    TGL_OMP("omp parallel for num_threads(nthreads) schedule(static, 1)")
    for (int t = 0; t < tm * tn; t++) {
        int ti = t / tn, tj = t % tn;
        int64_t i0 = mt * ti / tm * P->mr, i1 = TGL_MIN(m, mt * (ti + 1) / tm * P->mr);
        int64_t j0 = ntl * tj / tn * P->nr, j1 = TGL_MIN(n, ntl * (tj + 1) / tn * P->nr);
        if (i0 >= i1 || j0 >= j1) continue;
        TGL_FN(gemm_seq)(P, ta, tb, i1 - i0, j1 - j0, k, alpha, ta ? A + i0 : A + i0 * lda, lda,
                         tb ? B + j0 * ldb : B + j0, ldb, beta, C + i0 * ldc + j0, ldc);
    }
}

/* One product with up to nt threads (no nesting: each thread runs gemm_seq). */
static void TGL_FN(gemm_mt)(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha,
                            const TA *A, int64_t lda, const TA *B, int64_t ldb, T beta, T *C,
                            int64_t ldc, int nt) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == (T)0) {
        TGL_FN(scale_c)(m, n, beta, C, ldc);
        return;
    }
    const struct TGL_FN(path) *P = &TGL_FN(paths)[TGL_FN(path_code)()];
    nt = threads_for(2.0 * (double)m * (double)n * (double)k, nt);
    if (nt <= 1) {
        TGL_FN(gemm_seq)(P, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int tm, tn;
    thread_grid(m, n, P->mr, P->nr, nt, &tm, &tn);
    int64_t mt = (m + P->mr - 1) / P->mr, ntl = (n + P->nr - 1) / P->nr;
    TGL_FN(parallel_grid)(P, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, tm, tn, mt,
                          ntl);
}

/* Batched: either the batch entries are spread over the threads (each product sequential), or
 * the products run one after another with the threads inside each; never both (no nested
 * parallel regions). A broadcast B (stride_b == 0) with contiguous, untransposed A and C
 * stacks turns into one tall product. */
static void TGL_FN(gemm_batched)(int ta, int tb, int64_t batch, int64_t m, int64_t n, int64_t k,
                                 T alpha, const TA *a, int64_t lda, int64_t sa, const TA *b,
                                 int64_t ldb, int64_t sb, T beta, T *c, int64_t ldc, int64_t sc,
                                 int num_threads) {
    if (batch <= 0 || m <= 0 || n <= 0) return;
    int nt = resolve_threads(num_threads);
    if (batch == 1) {
        TGL_FN(gemm_mt)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nt);
        return;
    }
    if (sb == 0 && !ta && sa == m * lda && sc == m * ldc) {
        TGL_FN(gemm_mt)(ta, tb, batch * m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nt);
        return;
    }
    double flops = 2.0 * (double)m * (double)n * (double)(k > 0 ? k : 1);
    int ntb = threads_for(flops * (double)batch, nt);
    /* Over the batch when it divides evenly or is long enough to balance, and the output
     * matrices are distinct (sc == 0 would make threads race on one C). */
    if (ntb > 1 && sc != 0 && (batch % ntb == 0 || batch >= 4 * ntb)) {
        TGL_OMP("omp parallel for num_threads(ntb) schedule(static)")
        for (int64_t i = 0; i < batch; i++)
            TGL_FN(gemm_mt)(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,
                            c + i * sc, ldc, 1);
        return;
    }
    for (int64_t i = 0; i < batch; i++)
        TGL_FN(gemm_mt)(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,
                        c + i * sc, ldc, nt);
}

#undef IN_PLACE
