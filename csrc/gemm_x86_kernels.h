/* The AVX-512F GEMM micro-kernel (14 x 2-vector tiles, plus the 7 x 4-vector wide tiles),
 * written once for an element type T: gemm.c includes this file once per type with T and SFX
 * set (float/f32: 14 x 32 tiles; double/f64: 14 x 16), as softmax.c does with softmax_impl.h,
 * inside #if TGL_X86. Read it as ordinary C with T standing for the type; the vector operations
 * come from gemm_x86_simd.h. Read gemm.c's top comment first (blocking, tiles, edges); the
 * portable kernel (gemm_kernels.h) is the reference this one is tested against. */
#define VL512 TGL_FN(vl512)
#define V512 TGL_FN(v512)
#define MASK512 TGL_FN(mask512)
#define LOADU512 TGL_FN(loadu512)
#define MASKZ_LOADU512 TGL_FN(maskz_loadu512)
#define STOREU512 TGL_FN(storeu512)
#define MASK_STOREU512 TGL_FN(mask_storeu512)
#define SET1_512 TGL_FN(set1_512)
#define MUL512 TGL_FN(mul512)
#define FMADD512 TGL_FN(fmadd512)
#define MR512 TGL_FN(A512_MR)

/* One body for every tile shape: MR rows (1..14) and NV vectors (1..4; MR * NV <= 28) are
 * compile-time constants after inlining, so the accumulator array is held entirely in
 * registers. */
static TGL_ALWAYS_INLINE T512 void TGL_FN(ukr512_body)(const int MR, const int NV,
                                                      const int DIRECT, int64_t kc, const T *ap,
                                                      int64_t rsa, const T *bp, int64_t ldbp,
                                                      T *c, int64_t ldc, T alpha, T beta,
                                                      int nr) {
    /* DIRECT: A is read in place, row i at ap + i*rsa (no packing). The rows are reached through
     * five base pointers, row i = ar[i/3] + (i%3)*rsa, which x86 addressing modes express
     * directly (index register scaled by 1, 2, 4 or 8), so the loop needs few registers. */
    const T *ar[5];
#pragma GCC unroll 5
    for (int g = 0; g < 5; g++) ar[g] = ap + (DIRECT && 3 * g < MR ? 3 * g * rsa : 0);
    V512 acc[MR512][4];
    /* p = 0 peeled: the accumulators start as products (no zeroing moves; 2-3% on small kc).
     * Only difference to starting from +0: a sum whose products are all -0 stays -0. */
    {
        V512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = LOADU512(bp + VL512 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            V512 av = SET1_512(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = MUL512(av, b[v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += MR512;
        }
        bp += ldbp;
    }
TGL_UNROLL_P
    for (int64_t p = 1; p < kc; p++) {
        V512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = LOADU512(bp + VL512 * v);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            V512 av = SET1_512(DIRECT ? ar[i / 3][(i % 3) * rsa] : ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = FMADD512(av, b[v], acc[i][v]);
        }
        if (DIRECT) {
#pragma GCC unroll 5
            for (int g = 0; g < 5; g++) ar[g]++;
        } else {
            ap += MR512;
        }
        bp += ldbp;
    }
    /* columns in the last vector of the row */
    int last = nr - VL512 * (NV - 1);
    MASK512 mk = last >= VL512 ? (MASK512)~0u : (MASK512)((1u << last) - 1u);
    V512 va = SET1_512(alpha);
    if (beta == (T)0 && alpha == (T)1) { /* the common case: plain stores */
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            T *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++) STOREU512(cp + VL512 * v, acc[i][v]);
            MASK_STOREU512(cp + VL512 * (NV - 1), mk, acc[i][NV - 1]);
        }
    } else if (beta == (T)0) {
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            T *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++) STOREU512(cp + VL512 * v, MUL512(va, acc[i][v]));
            MASK_STOREU512(cp + VL512 * (NV - 1), mk, MUL512(va, acc[i][NV - 1]));
        }
    } else {
        V512 vb = SET1_512(beta);
TGL_UNROLL_ROWS
        for (int i = 0; i < MR; i++) {
            T *cp = c + i * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                STOREU512(cp + VL512 * v,
                          FMADD512(vb, LOADU512(cp + VL512 * v), MUL512(va, acc[i][v])));
            T *cl = cp + VL512 * (NV - 1);
            MASK_STOREU512(cl, mk,
                           FMADD512(vb, MASKZ_LOADU512(mk, cl), MUL512(va, acc[i][NV - 1])));
        }
    }
}

/* Each (rows, vectors, A-in-place) combination is its own small function, reached through a
 * table: cheaper than a switch at run time, and much cheaper to compile than one giant function
 * (sanitizer builds with -g choke on that). ukr512_<A in place>_<vectors>_<rows>_<type>. */
#ifndef TGL_DEF_512
#define TGL_DEF_512(MRv, NVv, DIRv)                                                            \
    static T512 void TGL_FN(ukr512_##DIRv##_##NVv##_##MRv)(int64_t kc, const T *ap,            \
                                                          int64_t rsa, const T *bp,            \
                                                          int64_t ldbp, T *c, int64_t ldc,     \
                                                          T alpha, T beta, int nr) {           \
        TGL_FN(ukr512_body)(MRv, NVv, DIRv, kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);   \
    }
#define TGL_DEF_512_ROWS(NVv, DIRv)                                                            \
    TGL_DEF_512(1, NVv, DIRv) TGL_DEF_512(2, NVv, DIRv) TGL_DEF_512(3, NVv, DIRv)              \
    TGL_DEF_512(4, NVv, DIRv) TGL_DEF_512(5, NVv, DIRv) TGL_DEF_512(6, NVv, DIRv)              \
    TGL_DEF_512(7, NVv, DIRv) TGL_DEF_512(8, NVv, DIRv) TGL_DEF_512(9, NVv, DIRv)              \
    TGL_DEF_512(10, NVv, DIRv) TGL_DEF_512(11, NVv, DIRv) TGL_DEF_512(12, NVv, DIRv)           \
    TGL_DEF_512(13, NVv, DIRv) TGL_DEF_512(14, NVv, DIRv)
#define TGL_ROWS_512(NVv, DIRv)                                                                \
    {NULL, TGL_FN(ukr512_##DIRv##_##NVv##_1), TGL_FN(ukr512_##DIRv##_##NVv##_2),               \
     TGL_FN(ukr512_##DIRv##_##NVv##_3), TGL_FN(ukr512_##DIRv##_##NVv##_4),                     \
     TGL_FN(ukr512_##DIRv##_##NVv##_5), TGL_FN(ukr512_##DIRv##_##NVv##_6),                     \
     TGL_FN(ukr512_##DIRv##_##NVv##_7), TGL_FN(ukr512_##DIRv##_##NVv##_8),                     \
     TGL_FN(ukr512_##DIRv##_##NVv##_9), TGL_FN(ukr512_##DIRv##_##NVv##_10),                    \
     TGL_FN(ukr512_##DIRv##_##NVv##_11), TGL_FN(ukr512_##DIRv##_##NVv##_12),                   \
     TGL_FN(ukr512_##DIRv##_##NVv##_13), TGL_FN(ukr512_##DIRv##_##NVv##_14)}
/* The wide tiles: 7 rows x 4 vectors (see ukr512w). */
#define TGL_DEF_512_ROWS7(DIRv)                                                                \
    TGL_DEF_512(1, 4, DIRv) TGL_DEF_512(2, 4, DIRv) TGL_DEF_512(3, 4, DIRv)                    \
    TGL_DEF_512(4, 4, DIRv) TGL_DEF_512(5, 4, DIRv) TGL_DEF_512(6, 4, DIRv)                    \
    TGL_DEF_512(7, 4, DIRv)
#define TGL_ROWS7_512(DIRv)                                                                    \
    {NULL, TGL_FN(ukr512_##DIRv##_4_1), TGL_FN(ukr512_##DIRv##_4_2),                           \
     TGL_FN(ukr512_##DIRv##_4_3), TGL_FN(ukr512_##DIRv##_4_4), TGL_FN(ukr512_##DIRv##_4_5),    \
     TGL_FN(ukr512_##DIRv##_4_6), TGL_FN(ukr512_##DIRv##_4_7)}
#endif

TGL_DEF_512_ROWS(1, 0)
TGL_DEF_512_ROWS(2, 0)
TGL_DEF_512_ROWS(1, 1)
TGL_DEF_512_ROWS(2, 1)
TGL_DEF_512_ROWS7(0)
TGL_DEF_512_ROWS7(1)

typedef void (*TGL_FN(ukr512_fn))(int64_t, const T *, int64_t, const T *, int64_t, T *, int64_t,
                                  T, T, int);
/* [A in place][vectors - 1][rows] */
static const TGL_FN(ukr512_fn) TGL_FN(ukr512_table)[2][2][MR512 + 1] = {
    {TGL_ROWS_512(1, 0), TGL_ROWS_512(2, 0)}, {TGL_ROWS_512(1, 1), TGL_ROWS_512(2, 1)}};
static const TGL_FN(ukr512_fn) TGL_FN(ukr512w_table)[2][8] = {TGL_ROWS7_512(0),
                                                              TGL_ROWS7_512(1)};

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
static void TGL_FN(ukr512w)(int64_t kc, const T *ap, int64_t rsa, const T *bp, int64_t ldbp,
                            T *c, int64_t ldc, T alpha, T beta, int mr, int nr) {
    TGL_FN(ukr512w_table)[rsa != 0][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta, nr);
}

static void TGL_FN(ukr512)(int64_t kc, const T *ap, int64_t rsa, const T *bp, int64_t ldbp,
                           T *c, int64_t ldc, T alpha, T beta, int mr, int nr) {
    TGL_FN(ukr512_table)[rsa != 0][nr > VL512][mr](kc, ap, rsa, bp, ldbp, c, ldc, alpha, beta,
                                                   nr);
}

#undef VL512
#undef V512
#undef MASK512
#undef LOADU512
#undef MASKZ_LOADU512
#undef STOREU512
#undef MASK_STOREU512
#undef SET1_512
#undef MUL512
#undef FMADD512
#undef MR512
