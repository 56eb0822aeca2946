/* The x86 GEMM micro-kernels: AVX-512F (14 x 32 float / 14 x 16 double tiles, plus the 7 x 4-vector
 * wide tiles) and AVX2 + FMA (6 x 16 / 6 x 8). Included once by gemm.c, inside #if TGL_X86: read
 * gemm.c's top comment first (blocking, tiles, edges); the portable kernel there is the
 * reference these are tested against. Each function carries a target attribute, so the file
 * builds without -march flags and gemm.c picks a path at run time. */
/* ---------------------------------------------------------------------------- AVX-512F */
#define T512 __attribute__((target("avx512f")))

#define A512_S_MR 14
#define A512_S_NR 32
#define A512_D_MR 14
#define A512_D_NR 16

/* One body for every tile shape: MR rows (1..14) and NV vectors (1..4; MR * NV <= 28) are
 * compile-time constants after inlining, so the accumulator array is held entirely in
 * registers. */
static TGL_ALWAYS_INLINE T512 void s512_body(const int MR, const int NV, const int DIRECT,
                                             int64_t kc, const float *ap, int64_t rsa,
                                             const float *bp, int64_t ldbp, float *c, int64_t ldc,
                                             float alpha, float beta, int nr) {
    /* DIRECT: A is read in place, row i at ap + i*rsa (no packing). The rows are reached through
     * five base pointers, row i = ar[i/3] + (i%3)*rsa, which x86 addressing modes express
     * directly (index register scaled by 1, 2, 4 or 8), so the loop needs few registers. */
    const float *ar[5];
#pragma GCC unroll 5
    for (int g = 0; g < 5; g++) ar[g] = ap + (DIRECT && 3 * g < MR ? 3 * g * rsa : 0);
    __m512 acc[A512_S_MR][4];
    /* p = 0 peeled: the accumulators start as products (no zeroing moves; 2-3% on small kc).
     * Only difference to starting from +0: a sum whose products are all -0 stays -0. */
    {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_ps(bp + 16 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_mul_ps(av, b[v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += A512_S_MR;
        }
        bp += ldbp;
    }
TGL_UNROLL_P
    for (int64_t p = 1; p < kc; p++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_ps(bp + 16 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(av, b[v], acc[i][v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += A512_S_MR;
        }
        bp += ldbp;
    }
    /* columns in the last vector of the row */
    int last = nr - 16 * (NV - 1);
    __mmask16 mk = last >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1u);
    __m512 va = _mm512_set1_ps(alpha);
    if (beta == (float)0 && alpha == (float)1) { /* the common case: plain stores */
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            float *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++) _mm512_storeu_ps(cp + 16 * v, acc[i][v]);
            _mm512_mask_storeu_ps(cp + 16 * (NV - 1), mk, acc[i][NV - 1]);
        }
    } else if (beta == (float)0) {
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            float *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                _mm512_storeu_ps(cp + 16 * v, _mm512_mul_ps(va, acc[i][v]));
            _mm512_mask_storeu_ps(cp + 16 * (NV - 1), mk, _mm512_mul_ps(va, acc[i][NV - 1]));
        }
    } else {
        __m512 vb = _mm512_set1_ps(beta);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            float *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                _mm512_storeu_ps(cp + 16 * v,
                                    _mm512_fmadd_ps(vb, _mm512_loadu_ps(cp + 16 * v),
                                                       _mm512_mul_ps(va, acc[i][v])));
            float *cl = cp + 16 * (NV - 1);
            _mm512_mask_storeu_ps(cl, mk,
                                  _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk, cl),
                                                  _mm512_mul_ps(va, acc[i][NV - 1])));
        }
    }
}

static TGL_ALWAYS_INLINE T512 void d512_body(const int MR, const int NV, const int DIRECT,
                                             int64_t kc, const double *ap, int64_t rsa,
                                             const double *bp, int64_t ldbp, double *c, int64_t ldc,
                                             double alpha, double beta, int nr) {
    /* DIRECT: A is read in place, row i at ap + i*rsa (no packing). The rows are reached through
     * five base pointers, row i = ar[i/3] + (i%3)*rsa, which x86 addressing modes express
     * directly (index register scaled by 1, 2, 4 or 8), so the loop needs few registers. */
    const double *ar[5];
#pragma GCC unroll 5
    for (int g = 0; g < 5; g++) ar[g] = ap + (DIRECT && 3 * g < MR ? 3 * g * rsa : 0);
    __m512d acc[A512_D_MR][4];
    /* p = 0 peeled: the accumulators start as products (no zeroing moves; 2-3% on small kc).
     * Only difference to starting from +0: a sum whose products are all -0 stays -0. */
    {
        __m512d b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_pd(bp + 8 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            __m512d av = _mm512_set1_pd(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_mul_pd(av, b[v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += A512_D_MR;
        }
        bp += ldbp;
    }
TGL_UNROLL_P
    for (int64_t p = 1; p < kc; p++) {
        __m512d b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_pd(bp + 8 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            __m512d av = _mm512_set1_pd(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_pd(av, b[v], acc[i][v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += A512_D_MR;
        }
        bp += ldbp;
    }
    /* columns in the last vector of the row */
    int last = nr - 8 * (NV - 1);
    __mmask8 mk = last >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << last) - 1u);
    __m512d va = _mm512_set1_pd(alpha);
    if (beta == (double)0 && alpha == (double)1) { /* the common case: plain stores */
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            double *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++) _mm512_storeu_pd(cp + 8 * v, acc[i][v]);
            _mm512_mask_storeu_pd(cp + 8 * (NV - 1), mk, acc[i][NV - 1]);
        }
    } else if (beta == (double)0) {
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            double *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                _mm512_storeu_pd(cp + 8 * v, _mm512_mul_pd(va, acc[i][v]));
            _mm512_mask_storeu_pd(cp + 8 * (NV - 1), mk, _mm512_mul_pd(va, acc[i][NV - 1]));
        }
    } else {
        __m512d vb = _mm512_set1_pd(beta);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            double *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                _mm512_storeu_pd(cp + 8 * v,
                                    _mm512_fmadd_pd(vb, _mm512_loadu_pd(cp + 8 * v),
                                                       _mm512_mul_pd(va, acc[i][v])));
            double *cl = cp + 8 * (NV - 1);
            _mm512_mask_storeu_pd(cl, mk,
                                  _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(mk, cl),
                                                  _mm512_mul_pd(va, acc[i][NV - 1])));
        }
    }
}

/* Each (rows, vectors, A-in-place) combination is its own small function, reached through a
 * table: cheaper than a switch at run time, and much cheaper to compile than one giant function
 * (sanitizer builds with -g choke on that). */
#define DEF_512(PFX, T, MRv, NVv, DIRv)                                                        \
    static T512 void PFX##512_##DIRv##_##NVv##_##MRv(int64_t kc, const T *ap, int64_t rsa,     \
                                                      const T *bp, int64_t ldbp, T *c,         \
                                                      int64_t ldc, T alpha, T beta, int nr) {  \
        PFX##512_body(MRv, NVv, DIRv, kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);         \
    }
#define DEF_512_ROWS(PFX, T, NVv, DIRv)                                                        \
    DEF_512(PFX, T, 1, NVv, DIRv) DEF_512(PFX, T, 2, NVv, DIRv) DEF_512(PFX, T, 3, NVv, DIRv)  \
    DEF_512(PFX, T, 4, NVv, DIRv) DEF_512(PFX, T, 5, NVv, DIRv) DEF_512(PFX, T, 6, NVv, DIRv)  \
    DEF_512(PFX, T, 7, NVv, DIRv) DEF_512(PFX, T, 8, NVv, DIRv) DEF_512(PFX, T, 9, NVv, DIRv)  \
    DEF_512(PFX, T, 10, NVv, DIRv) DEF_512(PFX, T, 11, NVv, DIRv)                              \
    DEF_512(PFX, T, 12, NVv, DIRv) DEF_512(PFX, T, 13, NVv, DIRv)                              \
    DEF_512(PFX, T, 14, NVv, DIRv)
#define ROWS_512(PFX, NVv, DIRv)                                                               \
    {NULL, PFX##512_##DIRv##_##NVv##_1, PFX##512_##DIRv##_##NVv##_2,                           \
     PFX##512_##DIRv##_##NVv##_3, PFX##512_##DIRv##_##NVv##_4, PFX##512_##DIRv##_##NVv##_5,    \
     PFX##512_##DIRv##_##NVv##_6, PFX##512_##DIRv##_##NVv##_7, PFX##512_##DIRv##_##NVv##_8,    \
     PFX##512_##DIRv##_##NVv##_9, PFX##512_##DIRv##_##NVv##_10, PFX##512_##DIRv##_##NVv##_11,  \
     PFX##512_##DIRv##_##NVv##_12, PFX##512_##DIRv##_##NVv##_13,                               \
     PFX##512_##DIRv##_##NVv##_14}

DEF_512_ROWS(s, float, 1, 0)
DEF_512_ROWS(s, float, 2, 0)
DEF_512_ROWS(s, float, 1, 1)
DEF_512_ROWS(s, float, 2, 1)
DEF_512_ROWS(d, double, 1, 0)
DEF_512_ROWS(d, double, 2, 0)
DEF_512_ROWS(d, double, 1, 1)
DEF_512_ROWS(d, double, 2, 1)
/* The wide tiles: 7 rows x 4 vectors (see ukr_*512w). */
#define DEF_512_ROWS7(PFX, T, DIRv)                                                            \
    DEF_512(PFX, T, 1, 4, DIRv) DEF_512(PFX, T, 2, 4, DIRv) DEF_512(PFX, T, 3, 4, DIRv)        \
    DEF_512(PFX, T, 4, 4, DIRv) DEF_512(PFX, T, 5, 4, DIRv) DEF_512(PFX, T, 6, 4, DIRv)        \
    DEF_512(PFX, T, 7, 4, DIRv)
#define ROWS7_512(PFX, DIRv)                                                                   \
    {NULL, PFX##512_##DIRv##_4_1, PFX##512_##DIRv##_4_2, PFX##512_##DIRv##_4_3,                \
     PFX##512_##DIRv##_4_4, PFX##512_##DIRv##_4_5, PFX##512_##DIRv##_4_6, PFX##512_##DIRv##_4_7}
DEF_512_ROWS7(s, float, 0)
DEF_512_ROWS7(s, float, 1)
DEF_512_ROWS7(d, double, 0)
DEF_512_ROWS7(d, double, 1)

typedef void (*s512_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t,
                        float, float, int);
typedef void (*d512_fn)(int64_t, const double *, int64_t, const double *, int64_t, double *,
                        int64_t, double, double, int);
/* [A in place][vectors - 1][rows] */
static const s512_fn s512_table[2][2][A512_S_MR + 1] = {
    {ROWS_512(s, 1, 0), ROWS_512(s, 2, 0)}, {ROWS_512(s, 1, 1), ROWS_512(s, 2, 1)}};
static const d512_fn d512_table[2][2][A512_D_MR + 1] = {
    {ROWS_512(d, 1, 0), ROWS_512(d, 2, 0)}, {ROWS_512(d, 1, 1), ROWS_512(d, 2, 1)}};

static const s512_fn s512w_table[2][8] = {ROWS7_512(s, 0), ROWS7_512(s, 1)};
static const d512_fn d512w_table[2][8] = {ROWS7_512(d, 0), ROWS7_512(d, 1)};

/* Wide tiles: mr <= 7 rows x nr <= 4 vectors (7 x 64 float, 7 x 32 double), the same 28
 * accumulators as the 14 x 2-vector tile. Per p they need 4 vector loads of B + 7 broadcasts
 * for 28 FMAs, instead of 2 + 14: fewer load uops per FMA. That pays when the core's other
 * hardware thread is busy (this VM's two vCPUs behave like one core's two hyperthreads: with
 * the sibling loaded, batched 8 x 128x20 @ 20x128 ran 5-8% faster, on a par with OpenBLAS),
 * and a row of 4 vectors touches 5 cache lines when C is misaligned, not 2 x 3. Used for B
 * read in place only (packed B panels are NR = 2 vectors wide); A is read in place or from
 * the packed 14-row panel (rows 0-6 or 7-13 of it). Register note: 28 accumulators + 4 B
 * vectors + the broadcast need 33 zmm, so GCC keeps one accumulator on the stack (one load +
 * one store per p); 6 x 4 tiles (no spill, 6 + 6 + 2 rows per panel) measured no better. */
static void ukr_s512w(int64_t kc, const float *ap, int64_t rsa, const float *bp, int64_t ldbp,
                      float *c, int64_t ldc, float alpha, float beta, int mr, int nr) {
    s512w_table[rsa != 0][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);
}
static void ukr_d512w(int64_t kc, const double *ap, int64_t rsa, const double *bp, int64_t ldbp,
                      double *c, int64_t ldc, double alpha, double beta, int mr, int nr) {
    d512w_table[rsa != 0][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);
}

static void ukr_s512(int64_t kc, const float *ap, int64_t rsa, const float *bp, int64_t ldbp,
                     float *c, int64_t ldc, float alpha, float beta, int mr, int nr) {
    s512_table[rsa != 0][nr > 16][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);
}

static void ukr_d512(int64_t kc, const double *ap, int64_t rsa, const double *bp, int64_t ldbp,
                     double *c, int64_t ldc, double alpha, double beta, int mr, int nr) {
    d512_table[rsa != 0][nr > 8][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);
}

/* ---------------------------------------------------------------------------- AVX2 + FMA */
#define TAVX2 __attribute__((target("avx2,fma")))

#define A2_S_MR 6
#define A2_S_NR 16
#define A2_D_MR 6
#define A2_D_NR 8

static TAVX2 void ukr_s_avx2(int64_t kc, const float *ap, int64_t rsa, const float *bp,
                             int64_t ldbp, float *c, int64_t ldc, float alpha, float beta, int mr,
                             int nr) {
    (void)rsa; /* this path always packs A */
    __m256 acc[A2_S_MR][2];
    for (int i = 0; i < A2_S_MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
TGL_UNROLL_P
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < A2_S_MR; i++) {
            __m256 av = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        ap += A2_S_MR;
        bp += ldbp;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (mr == A2_S_MR && nr == A2_S_NR) {
        __m256 vb = _mm256_set1_ps(beta);
        for (int i = 0; i < A2_S_MR; i++)
            for (int v = 0; v < 2; v++) {
                float *cp = c + i * ldc + 8 * v;
                __m256 r = _mm256_mul_ps(va, acc[i][v]);
                if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), r);
                _mm256_storeu_ps(cp, r);
            }
    } else {
        float tile[A2_S_MR * A2_S_NR];
        for (int i = 0; i < A2_S_MR; i++) {
            _mm256_storeu_ps(tile + i * A2_S_NR, acc[i][0]);
            _mm256_storeu_ps(tile + i * A2_S_NR + 8, acc[i][1]);
        }
        STORE_TILE_SCALAR(float, tile, A2_S_NR, c, ldc, alpha, beta, mr, nr);
    }
}

static TAVX2 void ukr_d_avx2(int64_t kc, const double *ap, int64_t rsa, const double *bp,
                             int64_t ldbp, double *c, int64_t ldc, double alpha, double beta,
                             int mr, int nr) {
    (void)rsa; /* this path always packs A */
    __m256d acc[A2_D_MR][2];
    for (int i = 0; i < A2_D_MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
TGL_UNROLL_P
    for (int64_t p = 0; p < kc; p++) {
        __m256d b0 = _mm256_loadu_pd(bp), b1 = _mm256_loadu_pd(bp + 4);
#pragma GCC unroll 6
        for (int i = 0; i < A2_D_MR; i++) {
            __m256d av = _mm256_broadcast_sd(ap + i);
            acc[i][0] = _mm256_fmadd_pd(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(av, b1, acc[i][1]);
        }
        ap += A2_D_MR;
        bp += ldbp;
    }
    __m256d va = _mm256_set1_pd(alpha);
    if (mr == A2_D_MR && nr == A2_D_NR) {
        __m256d vb = _mm256_set1_pd(beta);
        for (int i = 0; i < A2_D_MR; i++)
            for (int v = 0; v < 2; v++) {
                double *cp = c + i * ldc + 4 * v;
                __m256d r = _mm256_mul_pd(va, acc[i][v]);
                if (beta != 0.0) r = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cp), r);
                _mm256_storeu_pd(cp, r);
            }
    } else {
        double tile[A2_D_MR * A2_D_NR];
        for (int i = 0; i < A2_D_MR; i++) {
            _mm256_storeu_pd(tile + i * A2_D_NR, acc[i][0]);
            _mm256_storeu_pd(tile + i * A2_D_NR + 4, acc[i][1]);
        }
        STORE_TILE_SCALAR(double, tile, A2_D_NR, c, ldc, alpha, beta, mr, nr);
    }
}
