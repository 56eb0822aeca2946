/* gemm.c -- single- and double-precision GEMM for tinygrad_lite.
 *
 *     C = alpha * op(A) * op(B) + beta * C        (row-major; interface and conventions: gemm.h)
 *
 * Two implementations live here:
 *
 *   tgl_[sd]gemm_naive   the plain triple loop. It is the reference: easy to read, easy to trust,
 *                        slow. Tests and benchmarks compare the fast path against it.
 *   tgl_[sd]gemm(...)    the fast path described below, plus the strided-batched form.
 *
 * ------------------------------------------------------------------------------------------
 * How the fast path works (the Goto / BLIS scheme)
 * ------------------------------------------------------------------------------------------
 * C is produced MR x NR tiles at a time by a "micro-kernel" that keeps the whole tile in vector
 * registers: for p = 0..kc-1 it loads one row of NR values of B (NR/VL vector loads), broadcasts
 * each of the MR values of column p of A, and does MR * NR/VL fused multiply-adds. Nothing but
 * A and B is read inside that loop, so the FMA units stay busy; C is touched once per tile.
 * Rows of C are contiguous (row-major), so the vectors run along n.
 *
 * To feed the micro-kernel from cache, op(A) and op(B) are cut into blocks and copied ("packed")
 * into contiguous buffers laid out exactly in the order the micro-kernel reads them. Packing is
 * also where the transposes and leading dimensions disappear: the micro-kernel never knows
 * whether A or B was transposed, so A^T * G and G * B^T in the backward pass cost no copies.
 *
 *   loop 1  for ic in 0..m step MC        rows of C / A           (A block: L3)
 *   loop 2    for pc in 0..k step KC      the shared dimension    -> pack A[ic:+MC, pc:+KC]
 *   loop 3      for jc in 0..n step NC    columns of C / B        -> pack B[pc:+KC, jc:+NC] (L2)
 *   loop 4        for ir in 0..MC step MR   one A micro-panel, MR x KC        (L1)
 *   loop 5          for jr in 0..NC step NR   micro-kernel: C[ir:+MR, jr:+NR] += Ap * Bp
 *
 * (This is BLIS's loop nest transposed: BLIS is column-major and vectorises along m; we are
 * row-major and vectorise along n, so A plays BLIS's B and B plays BLIS's A.)
 *
 *   - The A micro-panel (MR x KC) is reused by every micro-kernel call of loop 5, so it lives in
 *     L1. Per iteration of p the micro-kernel reads MR scalars of it (broadcasts) and streams NR
 *     values of the packed B block from L2.
 *   - The packed B block (KC x NC) is reused by every A micro-panel of loop 4, so it should stay
 *     in L2.
 *   - The packed A block (MC x KC) is reused across loop 3; it lives in L3 (L2 of this machine
 *     already holds the B block).
 *   - KC also sets how often the C tile is loaded and stored (once per KC FMAs per element):
 *     bigger is better, as far as L1 allows.
 *
 * Sizes for this machine (Intel Xeon, Sapphire Rapids class, 2 cores; L1d 48 KiB per core,
 * L2 2 MiB per core, large shared L3; AVX-512F + FMA, 32 zmm registers, 2 FMA ports):
 *
 *   AVX-512 float:  MR x NR = 14 x 32 (28 zmm accumulators + 2 for B + 1 broadcast = 31 of 32
 *                   registers; 28 independent FMA chains hide the 4-cycle FMA latency on two
 *                   ports with room to spare; per p: 2 vector loads + 14 broadcasts feed 28 FMAs,
 *                   within the 2-3 loads/cycle the core sustains). KC = 384: A micro-panel
 *                   14*384*4 B = 21 KiB, under half of L1d, leaving the rest for the streamed B
 *                   lines and the C tile. NC = 512: B block 384*512*4 B = 768 KiB, ~40% of L2
 *                   (the C tiles being written and the A panels coming from L3 share L2 too).
 *                   MC = 2058 (147 * MR): A block up to 3 MiB, lives in L3; this large so that
 *                   B is packed only once for every m up to 2048 (loop 1 repacks B each pass).
 *   AVX-512 double: MR x NR = 14 x 16 (same register picture, 8 lanes per zmm). KC = 192: A
 *                   micro-panel 14*192*8 B = 21 KiB (L1/2). NC = 512: B block 192*512*8 B =
 *                   768 KiB (L2). MC = 2058.
 *   AVX2+FMA:       16 ymm registers: MR x NR = 6 x 16 float / 6 x 8 double (12 accumulators +
 *                   2 B + 1 broadcast = 15). KC = 384 float / 256 double (A micro-panel 9 /
 *                   12 KiB), NC = 768 / 512, MC = 2052. Only used on CPUs without AVX-512.
 *   portable C:     GCC/Clang vector extensions, 16-byte vectors (SSE2 / NEON width, no target
 *                   flags needed): MR x NR = 6 x 8 float / 6 x 4 double, KC = 256.
 *
 * Block sizes are upper limits: a dimension is cut into the fewest blocks that respect them,
 * all of equal size (k = 400 gives two blocks of 200, not 384 + 16).
 *
 * Edges. Tiles at the bottom/right border are smaller than MR x NR. The AVX-512 micro-kernel is
 * instantiated for every row count 1..MR (so a 4-row remainder costs 4 rows of FMAs, not MR)
 * and for NR or NR/2 columns; the last partial vector of a row is handled with masked
 * loads/stores. The AVX2/portable kernels compute the full tile and copy the valid part through
 * a small stack tile. B panels are zero-padded to NR by the packing; A panels are not padded
 * (the kernel reads only the rows it has). k = 0 or alpha = 0 reduce to C = beta*C (C is not
 * read when beta == 0; neither are A and B).
 *
 * Small problems (the tiny-GPT shapes: short m or k, many calls). Packing costs one read and
 * one write of each operand; it pays when the packed block is reused many times, and for
 * small operands it is a large share of the work (a 64^3 product spent ~25% of its time
 * packing). So the AVX-512 path reads operands in place when that is safe:
 *   - B (not transposed) when m <= 2*MR (B is used by at most two A panels) or B is at most
 *     DIRECT_B_MAX_BYTES; its rows are contiguous, so the kernel just takes ldb as its row step.
 *     Only the ragged right edge (n % NR columns) is packed, zero-padded.
 *   - A (not transposed) when it is at most DIRECT_A_MAX_BYTES; the kernel then broadcasts from
 *     MR row pointers (a variant instantiated with DIRECT = 1).
 *   Both are skipped when the row stride is a multiple of 4 KiB: rows would all map to the
 *   same L1 sets and evict each other, which packing avoids.
 *   With B in place, the full-width columns use wide tiles, 7 rows x 4 vectors (two per
 *   14-row panel): 4 B loads + 7 broadcasts per 28 FMAs instead of 2 + 14. Fewer load uops pay
 *   when the core's other hardware thread is busy (this VM's two vCPUs behave like the two
 *   hyperthreads of one core; its peak FMA rate halves when the sibling runs): batched
 *   8 x 128x20 @ 20x128 5-8% faster then, level with OpenBLAS; with the sibling idle they are
 *   2-5% slower than the 14 x 2 tiles. The other vCPU was busy most of the time we measured.
 *   For small kc the micro-kernel's fixed costs matter: the accumulators start from the p = 0
 *   products rather than zero (saves 28 register moves per tile).
 *
 * C alignment. NumPy's buffers are often only 16-byte aligned (data at 16, 32 or 48 mod 64),
 * and then every full-vector store of a tile row is split over two cache lines. With small
 * kc that costs a lot (batched 8 x 128x20 @ 20x128: double 20-25%, float ~11% slower than
 * with aligned C); masked, shifted aligned stores (permute + 3 masked stores per row) were
 * even slower. So when all rows share the misalignment, the first h < VL columns are computed
 * as a separate, packed head tile and the following tiles start on a line boundary (c_head():
 * only for rows of >= 16 vectors, kc <= 128, and not if that would misalign an aligned B read
 * in place, whose loads outnumber C's stores). Misaligned B read in place costs ~5-9% too;
 * packing it instead gained nothing measurable.
 * Buffers are thread-local and grown on demand, so a call does no malloc in the steady state;
 * m, n or k of 0 or 1 go through the same code (edge kernels) without special cases.
 *
 * Threads (OpenMP, `num_threads`). Each thread computes its own rectangle of C with the
 * sequential algorithm above and private buffers: no barriers, no shared packing. The grid
 * (threads along m x threads along n) minimises the largest per-thread area in whole tiles,
 * ties broken by less repeated packing. Products under MIN_FLOPS_PER_THREAD per thread use
 * fewer threads (spawning costs more than it saves). num_threads <= 0 means OpenMP's default.
 * The batched form parallelises over the batch (when it splits evenly, or is long) *or* inside
 * each product, never both: nested OpenMP regions are avoided entirely (they gave wrong results
 * at 2 threads in another project). A broadcast B (stride 0) with stacked, untransposed A and C
 * becomes one tall product. Caveat: a parallel region waits for every thread, so when another
 * process holds the second core, small threaded calls can stall for a scheduler tick (~ms).
 *
 * Dispatch. The micro-kernels for AVX-512 and AVX2 (gemm_x86_kernels.h, with the AVX-512
 * packing in gemm_x86_pack.h; both included below) are compiled with
 * __attribute__((target(...))), so the file builds with plain -O3 (no -march), and the path is
 * chosen at run time with __builtin_cpu_supports. tgl_gemm_set_portable(1) forces the portable
 * kernel (the Python side maps TGL_GEMM_PORTABLE=1 to it). On non-x86 CPUs only the portable
 * kernel is compiled.
 *
 * Floating point. The build uses -O3 (and -fopenmp), never -ffast-math (it would let the
 * compiler reassociate sums and assume no NaN/Inf, which breaks the NaN semantics above and has
 * broken softmax/GELU gradients elsewhere); -fno-math-errno is harmless here. FMAs are written
 * explicitly. Each element of C is summed in the same order (p ascending, KC blocks in order)
 * whatever the thread count and whether operands are packed or read in place, so results are
 * bitwise identical at 1 and 2 threads on a given path.
 */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define TGL_X86 1
#include <immintrin.h>
#else
#define TGL_X86 0
#endif

#define TGL_ALWAYS_INLINE inline __attribute__((always_inline))
/* The micro-kernels unroll their loop over the tile's rows completely (so the accumulators
 * can live in registers) and the p loop 4 times (fewer branches, displacement addressing).
 * AddressSanitizer builds skip the unrolling: same arithmetic in the same order, and the ~110
 * kernel instantiations then compile in seconds instead of minutes at -O1 -g. */
#if defined(__SANITIZE_ADDRESS__)
#define TGL_UNROLL_P
#define TGL_UNROLL_ROWS
#else
#define TGL_UNROLL_P _Pragma("GCC unroll 4")
#define TGL_UNROLL_ROWS _Pragma("GCC unroll 14")
#endif
/* OpenMP pragmas inside the macros below; nothing when built without OpenMP (single thread). */
#ifdef _OPENMP
#define TGL_OMP(x) _Pragma(x)
#else
#define TGL_OMP(x)
#endif
#define TGL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TGL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A product this small (in flops) per thread is not worth waking a thread for: 4 MFLOP is
 * ~25 us of work per core. A fork/join costs a few us when the other core is idle, but a woken
 * thread that has to wait for a busy core (OpenBLAS's spinning workers, another process) can
 * stall the whole call for milliseconds; below this size the second thread gains too little to
 * take that risk (measured: batched 8 x 128x20x128 float went from 41 to 32 us with 2 threads on
 * an idle core, and to 8-20 ms when the other core was busy). */
#define MIN_FLOPS_PER_THREAD (4.0e6)
/* Read B in place (no packing) when m is at most this many micro-panel rows, or B is at most
 * this many bytes; read A in place (AVX-512 path) when it is at most this many bytes. */
#define DIRECT_B_MAX_M_PANELS 2
#define DIRECT_B_MAX_BYTES (128.0 * 1024)
#define DIRECT_A_MAX_BYTES (128.0 * 1024)

/* ========================================================================================== */
/* The reference: a plain triple loop                                                          */
/* ========================================================================================== */

#define NAIVE_BODY(T)                                                                          \
    for (int64_t i = 0; i < m; i++) {                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            T acc = 0;                                                                         \
            for (int64_t p = 0; p < k; p++) {                                                  \
                T av = trans_a ? a[p * lda + i] : a[i * lda + p];                              \
                T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];                              \
                acc += av * bv;                                                                \
            }                                                                                  \
            T *cij = &c[i * ldc + j];                                                          \
            *cij = (beta == (T)0) ? alpha * acc : alpha * acc + beta * *cij;                   \
        }                                                                                      \
    }

void tgl_sgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc) {
    NAIVE_BODY(float)
}

void tgl_dgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc) {
    NAIVE_BODY(double)
}

/* ========================================================================================== */
/* Micro-kernels                                                                               */
/* ========================================================================================== */
/* Every micro-kernel has this signature (T = float or double):
 *
 *   ukr(kc, ap, bp, ldbp, c, ldc, alpha, beta, mr, nr)
 *
 *   ap    packed A micro-panel: element (i, p) at ap[p*MR + i], i < mr <= MR
 *   bp    B micro-panel: element (p, j) at bp[p*ldbp + j], j < NR (packed: ldbp = NR, columns
 *         nr..NR-1 zero; in place: ldbp = ldb and nr == NR)
 *   c     the C tile, mr x nr, row stride ldc: c = alpha * (Ap * Bp) + beta * c, and c is not
 *         read when beta == 0.
 */
typedef void (*ukr_s_t)(int64_t, const float *, int64_t, const float *, int64_t, float *,
                        int64_t, float, float, int, int);
typedef void (*ukr_d_t)(int64_t, const double *, int64_t, const double *, int64_t, double *,
                        int64_t, double, double, int, int);

/* The C-tile update for the paths that go through a small stack tile at the edges. */
#define STORE_TILE_SCALAR(T, tile, TNR, c, ldc, alpha, beta, mr, nr)                           \
    do {                                                                                       \
        for (int i_ = 0; i_ < (mr); i_++)                                                      \
            for (int j_ = 0; j_ < (nr); j_++) {                                                \
                T t_ = (alpha) * (tile)[i_ * (TNR) + j_];                                      \
                T *c_ = &(c)[i_ * (ldc) + j_];                                                 \
                *c_ = ((beta) == (T)0) ? t_ : t_ + (beta) * *c_;                               \
            }                                                                                  \
    } while (0)

/* ---------------------------------------------------------------- portable (vector ext.) */
/* 16-byte vectors: SSE2 on any x86-64, NEON on ARM; no target flags needed. */
typedef float tgl_v4f __attribute__((vector_size(16)));
typedef double tgl_v2d __attribute__((vector_size(16)));

#define P_S_MR 6
#define P_S_NR 8
#define P_D_MR 6
#define P_D_NR 4

#define PORTABLE_KERNEL(NAME, T, V, VL, MRP, NRP)                                              \
    static void NAME(int64_t kc, const T *ap, int64_t rsa, const T *bp, int64_t ldbp, T *c,    \
                     int64_t ldc, T alpha, T beta, int mr, int nr) {                           \
        (void)rsa; /* this path always packs A */                                              \
        V acc[MRP][2];                                                                         \
        for (int i = 0; i < MRP; i++) acc[i][0] = acc[i][1] = (V){0};                          \
        for (int64_t p = 0; p < kc; p++) {                                                     \
            V b0, b1;                                                                          \
            memcpy(&b0, bp, sizeof b0);                                                        \
            memcpy(&b1, bp + VL, sizeof b1);                                                   \
            for (int i = 0; i < MRP; i++) {                                                    \
                T av = ap[i];                                                                  \
                acc[i][0] += av * b0;                                                          \
                acc[i][1] += av * b1;                                                          \
            }                                                                                  \
            ap += MRP;                                                                         \
            bp += ldbp;                                                                        \
        }                                                                                      \
        if (mr == MRP && nr == NRP) {                                                          \
            for (int i = 0; i < MRP; i++)                                                      \
                for (int v = 0; v < 2; v++) {                                                  \
                    T *cp = c + i * ldc + v * VL;                                              \
                    V r = alpha * acc[i][v];                                                   \
                    if (beta != (T)0) {                                                        \
                        V old;                                                                 \
                        memcpy(&old, cp, sizeof old);                                          \
                        r += beta * old;                                                       \
                    }                                                                          \
                    memcpy(cp, &r, sizeof r);                                                  \
                }                                                                              \
        } else {                                                                               \
            T tile[MRP * NRP];                                                                 \
            for (int i = 0; i < MRP; i++) {                                                    \
                memcpy(tile + i * NRP, &acc[i][0], sizeof(V));                                 \
                memcpy(tile + i * NRP + VL, &acc[i][1], sizeof(V));                            \
            }                                                                                  \
            STORE_TILE_SCALAR(T, tile, NRP, c, ldc, alpha, beta, mr, nr);                      \
        }                                                                                      \
    }

/* Note: the portable kernel computes a*b + acc as two roundings (no FMA contraction is forced);
 * GCC may contract it to an FMA on targets that have one (-ffp-contract=fast is GCC's default
 * for GNU C). Either is within the usual GEMM error. */
PORTABLE_KERNEL(ukr_s_portable, float, tgl_v4f, 4, P_S_MR, P_S_NR)
PORTABLE_KERNEL(ukr_d_portable, double, tgl_v2d, 2, P_D_MR, P_D_NR)

#if TGL_X86
#include "gemm_x86_kernels.h" /* AVX-512 and AVX2 micro-kernels */
#endif /* TGL_X86 */

/* ========================================================================================== */
/* Packing                                                                                     */
/* ========================================================================================== */
/* pack_a(ta, mc, kc, a, lda, ap, MR): the A block op(A)[0:mc, 0:kc], where
 *   op(A)(i, p) = ta ? a[p*lda + i] : a[i*lda + p],
 * goes to ap as micro-panels of MR rows: panel r (rows r*MR..) at ap + r*MR*kc, element (i, p)
 * at [p*MR + i]. Rows past mc in the last panel are not written (the kernel does not read them).
 *
 * pack_b(tb, kc, nc, b, ldb, bp, NR): the B block op(B)[0:kc, 0:nc], where
 *   op(B)(p, j) = tb ? b[j*ldb + p] : b[p*ldb + j],
 * goes to bp as micro-panels of NR columns: panel s at bp + s*NR*kc, element (p, j) at
 * [p*NR + j], zero-padded to NR columns. */
typedef void (*pack_s_t)(int, int64_t, int64_t, const float *, int64_t, float *, int);
typedef void (*pack_d_t)(int, int64_t, int64_t, const double *, int64_t, double *, int);

/* Plain C packing, for any MR / NR (used by the portable and AVX2 paths). */
#define DEFINE_PACK_GENERIC(T, PFX)                                                            \
    static void PFX##_pack_a_generic(int ta, int64_t mc, int64_t kc, const T *a, int64_t lda,  \
                                     T *ap, int MR) {                                          \
        for (int64_t ir = 0; ir < mc; ir += MR) {                                              \
            int mr = (int)TGL_MIN((int64_t)MR, mc - ir);                                       \
            T *dst = ap + ir * kc;                                                             \
            if (ta) {                                                                          \
                for (int64_t p = 0; p < kc; p++) {                                             \
                    const T *src = a + p * lda + ir;                                           \
                    for (int i = 0; i < mr; i++) dst[p * MR + i] = src[i];                     \
                }                                                                              \
            } else {                                                                           \
                for (int i = 0; i < mr; i++) {                                                 \
                    const T *src = a + (ir + i) * lda;                                         \
                    for (int64_t p = 0; p < kc; p++) dst[p * MR + i] = src[p];                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static void PFX##_pack_b_generic(int tb, int64_t kc, int64_t nc, const T *b, int64_t ldb,  \
                                     T *bp, int NR) {                                          \
        for (int64_t jr = 0; jr < nc; jr += NR) {                                              \
            int nr = (int)TGL_MIN((int64_t)NR, nc - jr);                                       \
            T *dst = bp + jr * kc;                                                             \
            if (!tb) {                                                                         \
                for (int64_t p = 0; p < kc; p++) {                                             \
                    const T *src = b + p * ldb + jr;                                           \
                    T *d = dst + p * NR;                                                       \
                    int j = 0;                                                                 \
                    for (; j < nr; j++) d[j] = src[j];                                         \
                    for (; j < NR; j++) d[j] = 0;                                              \
                }                                                                              \
            } else {                                                                           \
                for (int j = 0; j < nr; j++) {                                                 \
                    const T *src = b + (jr + j) * ldb;                                         \
                    for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = src[p];                 \
                }                                                                              \
                if (nr < NR)                                                                   \
                    for (int64_t p = 0; p < kc; p++)                                           \
                        for (int j = nr; j < NR; j++) dst[p * NR + j] = 0;                     \
            }                                                                                  \
        }                                                                                      \
    }

DEFINE_PACK_GENERIC(float, s)
DEFINE_PACK_GENERIC(double, d)

#if TGL_X86
#include "gemm_x86_pack.h" /* AVX-512 packing */
#endif /* TGL_X86 */

/* ========================================================================================== */
/* Paths and run-time dispatch                                                                 */
/* ========================================================================================== */

struct spath { int mr, nr; int64_t mc, kc, nc; ukr_s_t ukr; pack_s_t pack_a, pack_b; int direct_a, vl; ukr_s_t wide; };
struct dpath { int mr, nr; int64_t mc, kc, nc; ukr_d_t ukr; pack_d_t pack_a, pack_b; int direct_a, vl; ukr_d_t wide; };

/* index = path code: 0 portable, 1 AVX2+FMA, 2 AVX-512F */
static const struct spath g_spaths[3] = {
    {P_S_MR, P_S_NR, 2052, 256, 1024, ukr_s_portable, s_pack_a_generic, s_pack_b_generic, 0, 0, NULL},
#if TGL_X86
    {A2_S_MR, A2_S_NR, 2052, 384, 768, ukr_s_avx2, s_pack_a_generic, s_pack_b_generic, 0, 0, NULL},
    {A512_S_MR, A512_S_NR, 2058, 384, 512, ukr_s512, s512_pack_a, s512_pack_b, 1, 16, ukr_s512w},
#else
    {P_S_MR, P_S_NR, 2052, 256, 1024, ukr_s_portable, s_pack_a_generic, s_pack_b_generic, 0, 0, NULL},
    {P_S_MR, P_S_NR, 2052, 256, 1024, ukr_s_portable, s_pack_a_generic, s_pack_b_generic, 0, 0, NULL},
#endif
};
static const struct dpath g_dpaths[3] = {
    {P_D_MR, P_D_NR, 2052, 256, 512, ukr_d_portable, d_pack_a_generic, d_pack_b_generic, 0, 0, NULL},
#if TGL_X86
    {A2_D_MR, A2_D_NR, 2052, 256, 512, ukr_d_avx2, d_pack_a_generic, d_pack_b_generic, 0, 0, NULL},
    {A512_D_MR, A512_D_NR, 2058, 192, 512, ukr_d512, d512_pack_a, d512_pack_b, 1, 8, ukr_d512w},
#else
    {P_D_MR, P_D_NR, 2052, 256, 512, ukr_d_portable, d_pack_a_generic, d_pack_b_generic, 0, 0, NULL},
    {P_D_MR, P_D_NR, 2052, 256, 512, ukr_d_portable, d_pack_a_generic, d_pack_b_generic, 0, 0, NULL},
#endif
};

static int g_force_portable = 0;
static int g_cpu_path = -1; /* detected on first use (every thread would find the same) */

static int detect_cpu_path(void) {
#if TGL_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int tgl_gemm_path(void) {
    if (__atomic_load_n(&g_force_portable, __ATOMIC_RELAXED)) return 0;
    int path = __atomic_load_n(&g_cpu_path, __ATOMIC_RELAXED);
    if (path < 0) {
        path = detect_cpu_path();
        __atomic_store_n(&g_cpu_path, path, __ATOMIC_RELAXED);
    }
    return path;
}

int tgl_gemm_set_portable(int force) {
    __atomic_store_n(&g_force_portable, force != 0, __ATOMIC_RELAXED);
    return tgl_gemm_path();
}

/* ========================================================================================== */
/* Thread-local packing buffers, grown on demand (no malloc per call in the steady state)      */
/* ========================================================================================== */

static __thread void *tl_buf = NULL;
static __thread size_t tl_cap = 0;

static void *get_buffer(size_t bytes) {
    if (bytes > tl_cap) {
        void *p = NULL;
        size_t cap = bytes + (bytes >> 2) + 4096; /* headroom: avoid regrowing by a few bytes */
        cap = (cap + 4095) & ~(size_t)4095;
        if (posix_memalign(&p, 64, cap) != 0) return NULL;
        free(tl_buf);
        tl_buf = p;
        tl_cap = cap;
    }
    return tl_buf;
}

static int resolve_threads(int num_threads) {
#ifdef _OPENMP
    if (num_threads <= 0) num_threads = omp_get_max_threads();
    return num_threads < 1 ? 1 : num_threads;
#else
    (void)num_threads;
    return 1;
#endif
}

/* Threads worth using for `flops` of work: at least MIN_FLOPS_PER_THREAD each. */
static int threads_for(double flops, int nt) {
    double useful = flops / MIN_FLOPS_PER_THREAD;
    if (useful < (double)nt) nt = useful < 1.0 ? 1 : (int)useful;
    return nt;
}

/* Split nt threads into a tm x tn grid over C (in units of MR x NR tiles): minimise the largest
 * per-thread area, then the repeated packing (each thread packs m/tm rows of A and n/tn
 * columns of B). */
static void thread_grid(int64_t m, int64_t n, int mr, int nr, int nt, int *tm_out, int *tn_out) {
    int64_t mt = (m + mr - 1) / mr, ntl = (n + nr - 1) / nr;
    double best = -1, best_pack = 0;
    int btm = 1, btn = nt;
    for (int tm = 1; tm <= nt; tm++) {
        if (nt % tm) continue;
        int tn = nt / tm;
        if (tm > mt || tn > ntl) continue;
        double area = (double)((mt + tm - 1) / tm) * mr * (double)((ntl + tn - 1) / tn) * nr;
        double pack = (double)m / tm + (double)n / tn;
        if (best < 0 || area < best * 0.999 || (area < best * 1.001 && pack < best_pack)) {
            best = area;
            best_pack = pack;
            btm = tm;
            btn = tn;
        }
    }
    if (best < 0) { /* fewer tiles than threads in both directions */
        btm = 1;
        btn = (int)TGL_MIN((int64_t)nt, ntl);
        if (mt > ntl) { btm = (int)TGL_MIN((int64_t)nt, mt); btn = 1; }
    }
    *tm_out = btm;
    *tn_out = btn;
}

/* Split `total` into the fewest blocks of at most `limit` (limit a multiple of `unit`), all of
 * about equal size, rounded up to a multiple of `unit`; returns the block size. */
static int64_t balanced_block(int64_t total, int64_t limit, int unit) {
    if (total <= limit) return total;
    int64_t nblocks = (total + limit - 1) / limit;
    int64_t size = (total + nblocks - 1) / nblocks;
    size = (size + unit - 1) / unit * unit;
    return TGL_MIN(size, limit);
}

/* C alignment: the columns before the first 64-byte line boundary of C's rows (0 = none), so
 * that the micro-tiles after them store whole cache lines (see the top comment). Used only
 * when every row has the same misalignment (ldc * size a multiple of 64), and when the extra,
 * partly-filled head vector per row panel costs less than the split stores it avoids: the
 * head adds 1/(n/vl) to the FMAs, the split stores cost in proportion to stores per FMA,
 * 1/kc. Measured (one thread): batched 8 x 128x20 @ 20x128 double (16 vectors, kc 20) 10-12%
 * faster; 256x80 @ 80x320 float (20 vectors, kc 80) 4-7% faster; 80 x 256 x 320 and 256^3
 * (kc 256) 2-4% slower, hence the kc limit; 128^2 x 20 float (8 vectors) no gain. */
#define HEAD_MIN_VECTORS 16
#define HEAD_MAX_KC 128
static int64_t c_head(int vl, size_t size, const void *c, int64_t ldc, int64_t n, int64_t kc) {
    uintptr_t mis = (uintptr_t)c & 63;
    if (vl == 0 || mis == 0 || mis % size != 0 || ((uint64_t)ldc * size) % 64 != 0 ||
        n < (int64_t)HEAD_MIN_VECTORS * vl || kc > HEAD_MAX_KC)
        return 0;
    return (int64_t)((64 - mis) / size);
}

/* ========================================================================================== */
/* Packing and the blocked driver, once per element type                                       */
/* ========================================================================================== */

#define DEFINE_GEMM(T, PFX, PATHS, PATHTYPE)                                                   \
                                                                                               \
    /* C := beta*C (the whole product when k == 0 or alpha == 0). */                           \
    static void PFX##_scale_c(int64_t m, int64_t n, T beta, T *c, int64_t ldc) {               \
        for (int64_t i = 0; i < m; i++) {                                                      \
            T *row = c + i * ldc;                                                              \
            if (beta == (T)0)                                                                  \
                memset(row, 0, (size_t)n * sizeof(T));                                         \
            else if (beta != (T)1)                                                             \
                for (int64_t j = 0; j < n; j++) row[j] *= beta;                                \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* The sequential blocked algorithm (see the comment at the top). m, n, k >= 1. */         \
    static void PFX##_gemm_seq(const PATHTYPE *P, int ta, int tb, int64_t m, int64_t n,        \
                               int64_t k, T alpha, const T *A, int64_t lda, const T *B,        \
                               int64_t ldb, T beta, T *C, int64_t ldc) {                       \
        const int MR = P->mr, NR = P->nr;                                                      \
        /* Read A or B in place when packing would not pay (see "Small problems" above). */    \
        const int direct_b =                                                                   \
            !tb && (m <= (int64_t)MR * DIRECT_B_MAX_M_PANELS ||                                \
                    ((double)k * (double)n * sizeof(T) <= DIRECT_B_MAX_BYTES &&                \
                     (ldb * (int64_t)sizeof(T)) % 4096 != 0));                                 \
        const int direct_a = P->direct_a && !ta && lda > 0 &&                                  \
                             (double)m * (double)k * sizeof(T) <= DIRECT_A_MAX_BYTES &&        \
                             (lda * (int64_t)sizeof(T)) % 4096 != 0;                           \
        /* Block sizes: as many blocks as the limits P->mc/kc/nc require, then equal-sized     \
         * (so k = KC + 1 gives two blocks of about KC/2, not KC and 1). */                    \
        const int64_t MC = balanced_block(m, P->mc, MR);                                       \
        const int64_t KC = balanced_block(k, P->kc, 1);                                        \
        const int64_t NC = direct_b ? n : balanced_block(n, P->nc, NR);                        \
        int64_t head = c_head(P->vl, sizeof(T), C, ldc, n, KC);                                \
        /* ...but not at the price of misaligning B read in place when it is aligned: a tile   \
         * loads kc*NR/VL vectors of B and stores only mr*NR/VL of C. */                       \
        if (head && direct_b && ((uintptr_t)B & 63) == 0 &&                                    \
            ((uint64_t)ldb * sizeof(T)) % 64 == 0)                                             \
            head = 0;                                                                          \
        /* A block (MC rounded up to MR rows) + B block (NC rounded up to NR columns, or one   \
         * edge panel when B is read in place). */                                             \
        size_t a_elems = direct_a ? 0 : (size_t)((MC + MR - 1) / MR * MR) * (size_t)KC;        \
        size_t b_elems = direct_b ? (size_t)NR * (size_t)KC                                    \
                                  : (size_t)((NC + NR - 1) / NR * NR) * (size_t)KC;            \
        if (head) b_elems += (size_t)NR * (size_t)KC; /* + the head panel */                   \
        a_elems = (a_elems + 15) & ~(size_t)15; /* keep the B block 64-byte aligned */         \
        T *ap = (T *)get_buffer((a_elems + b_elems) * sizeof(T));                              \
        if (!ap) { /* out of memory: still give the right answer */                            \
            PFX##_gemm_naive_impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);       \
            return;                                                                            \
        }                                                                                      \
        T *bp = ap + a_elems;                                                                  \
        for (int64_t ic = 0; ic < m; ic += MC) {                  /* loop 1 */                 \
            int64_t mc = TGL_MIN(MC, m - ic);                                                  \
            for (int64_t pc = 0; pc < k; pc += KC) {              /* loop 2 */                 \
                int64_t kc = TGL_MIN(KC, k - pc);                                              \
                T beta_eff = pc == 0 ? beta : (T)1;                                            \
                const T *asrc = ta ? A + pc * lda + ic : A + ic * lda + pc;                    \
                if (!direct_a) P->pack_a(ta, mc, kc, asrc, lda, ap, MR);                       \
                for (int64_t jc = 0; jc < n; jc += NC) {          /* loop 3 */                 \
                    int64_t nc = TGL_MIN(NC, n - jc);                                          \
                    const T *bsrc = tb ? B + jc * ldb + pc : B + pc * ldb + jc;                \
                    /* the head columns (C alignment), always packed, in the last panel */     \
                    const int64_t h = TGL_MIN(head, nc);                                       \
                    T *bhead = bp + b_elems - (size_t)NR * (size_t)KC;                         \
                    if (h) {                                                                   \
                        P->pack_b(tb, kc, h, bsrc, ldb, bhead, NR);                            \
                        bsrc += tb ? h * ldb : h;                                              \
                        nc -= h;                                                               \
                    }                                                                          \
                    int64_t nfull = 0; /* columns read in place */                             \
                    if (direct_b) {                                                            \
                        nfull = nc / NR * NR;                                                  \
                        if (nfull < nc) /* the ragged right edge is packed (zero-padded) */    \
                            P->pack_b(0, kc, nc - nfull, bsrc + nfull, ldb, bp, NR);           \
                    } else {                                                                   \
                        P->pack_b(tb, kc, nc, bsrc, ldb, bp, NR);                              \
                    }                                                                          \
                    T *cblk = C + ic * ldc + jc + h;                                           \
                    for (int64_t ir = 0; ir < mc; ir += MR) {     /* loop 4 */                 \
                        int mr = (int)TGL_MIN((int64_t)MR, mc - ir);                           \
                        const T *apan = direct_a ? asrc + ir * lda : ap + ir * kc;             \
                        int64_t rsa = direct_a ? lda : 0;                                      \
                        T *crow = cblk + ir * ldc;                                             \
                        if (h)                                                                 \
                            P->ukr(kc, apan, rsa, bhead, NR, crow - h, ldc, alpha, beta_eff,   \
                                   mr, (int)h);                                                \
                        int64_t jr = 0;                                                        \
                        if (P->wide && direct_b) { /* wide tiles: two 7-row halves */          \
                            const int64_t nw = nfull / (2 * NR) * (2 * NR);                    \
                            for (int half = 0; half < 2; half++) {                             \
                                int r0 = half * (MR / 2);                                      \
                                int mrh = TGL_MIN(mr - r0, MR / 2);                            \
                                if (mrh <= 0) break;                                           \
                                const T *ah = direct_a ? apan + r0 * lda : apan + r0;          \
                                for (jr = 0; jr < nw; jr += 2 * NR)                            \
                                    P->wide(kc, ah, rsa, bsrc + jr, ldb, crow + r0 * ldc + jr, \
                                            ldc, alpha, beta_eff, mrh, 2 * NR);                \
                            }                                                                  \
                            jr = nw;                                                           \
                        }                                                                      \
                        for (; jr < nc; jr += NR) { /* loop 5 */                               \
                            int nr = (int)TGL_MIN((int64_t)NR, nc - jr);                       \
                            if (jr < nfull)                                                    \
                                P->ukr(kc, apan, rsa, bsrc + jr, ldb, crow + jr, ldc, alpha,   \
                                       beta_eff, mr, nr);                                      \
                            else                                                               \
                                P->ukr(kc, apan, rsa, direct_b ? bp : bp + jr * kc, NR,        \
                                       crow + jr, ldc, alpha, beta_eff, mr, nr);               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* One product with up to nt threads (no nesting: each thread runs _gemm_seq). */          \
    static void PFX##_gemm_mt(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha,        \
                              const T *A, int64_t lda, const T *B, int64_t ldb, T beta, T *C,  \
                              int64_t ldc, int nt) {                                           \
        if (m <= 0 || n <= 0) return;                                                          \
        if (k <= 0 || alpha == (T)0) {                                                         \
            PFX##_scale_c(m, n, beta, C, ldc);                                                 \
            return;                                                                            \
        }                                                                                      \
        const PATHTYPE *P = &PATHS[tgl_gemm_path()];                                           \
        nt = threads_for(2.0 * (double)m * (double)n * (double)k, nt);                         \
        if (nt <= 1) {                                                                         \
            PFX##_gemm_seq(P, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);           \
            return;                                                                            \
        }                                                                                      \
        int tm, tn;                                                                            \
        thread_grid(m, n, P->mr, P->nr, nt, &tm, &tn);                                         \
        int64_t mt = (m + P->mr - 1) / P->mr, ntl = (n + P->nr - 1) / P->nr;                   \
        PFX##_parallel_grid(P, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, tm, tn,   \
                            mt, ntl);                                                          \
    }

/* The OpenMP region lives in its own small function per type (kept out of the macro so the
 * pragma is easy to read). */
#define DEFINE_PARALLEL_GRID(T, PFX, PATHTYPE)                                                 \
    static void PFX##_parallel_grid(const PATHTYPE *P, int ta, int tb, int64_t m, int64_t n,   \
                                    int64_t k, T alpha, const T *A, int64_t lda, const T *B,   \
                                    int64_t ldb, T beta, T *C, int64_t ldc, int tm, int tn,    \
                                    int64_t mt, int64_t ntl) {                                 \
        int nthreads = tm * tn;                                                                \
        (void)nthreads;                                                                        \
        TGL_OMP("omp parallel for num_threads(nthreads) schedule(static, 1)")                  \
        for (int t = 0; t < tm * tn; t++) {                                                    \
            int ti = t / tn, tj = t % tn;                                                      \
            int64_t i0 = mt * ti / tm * P->mr, i1 = TGL_MIN(m, mt * (ti + 1) / tm * P->mr);    \
            int64_t j0 = ntl * tj / tn * P->nr, j1 = TGL_MIN(n, ntl * (tj + 1) / tn * P->nr);  \
            if (i0 >= i1 || j0 >= j1) continue;                                                \
            PFX##_gemm_seq(P, ta, tb, i1 - i0, j1 - j0, k, alpha,                              \
                           ta ? A + i0 : A + i0 * lda, lda, tb ? B + j0 * ldb : B + j0, ldb,   \
                           beta, C + i0 * ldc + j0, ldc);                                      \
        }                                                                                      \
    }

/* The naive loop under a name the macros can reach (used if a buffer cannot be allocated). */
static void s_gemm_naive_impl(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const float *a, int64_t lda, const float *b, int64_t ldb,
                              float beta, float *c, int64_t ldc) {
    tgl_sgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void d_gemm_naive_impl(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                              const double *a, int64_t lda, const double *b, int64_t ldb,
                              double beta, double *c, int64_t ldc) {
    tgl_dgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void s_gemm_seq(const struct spath *, int, int, int64_t, int64_t, int64_t, float,
                       const float *, int64_t, const float *, int64_t, float, float *, int64_t);
static void d_gemm_seq(const struct dpath *, int, int, int64_t, int64_t, int64_t, double,
                       const double *, int64_t, const double *, int64_t, double, double *,
                       int64_t);
DEFINE_PARALLEL_GRID(float, s, struct spath)
DEFINE_PARALLEL_GRID(double, d, struct dpath)
DEFINE_GEMM(float, s, g_spaths, struct spath)
DEFINE_GEMM(double, d, g_dpaths, struct dpath)

/* ========================================================================================== */
/* Public entry points                                                                         */
/* ========================================================================================== */

void tgl_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, int num_threads) {
    s_gemm_mt(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
              resolve_threads(num_threads));
}

void tgl_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
               int64_t ldc, int num_threads) {
    d_gemm_mt(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
              resolve_threads(num_threads));
}

/* Batched: either the batch entries are spread over the threads (each product sequential), or
 * the products run one after another with the threads inside each; never both (no nested
 * parallel regions). A broadcast B (stride_b == 0) with contiguous, untransposed A and C
 * stacks turns into one tall product. */
#define DEFINE_BATCHED(T, PFX, PATHS)                                                          \
    static void PFX##_gemm_batched(int ta, int tb, int64_t batch, int64_t m, int64_t n,        \
                                   int64_t k, T alpha, const T *a, int64_t lda, int64_t sa,    \
                                   const T *b, int64_t ldb, int64_t sb, T beta, T *c,          \
                                   int64_t ldc, int64_t sc, int num_threads) {                 \
        if (batch <= 0 || m <= 0 || n <= 0) return;                                            \
        int nt = resolve_threads(num_threads);                                                 \
        if (batch == 1) {                                                                      \
            PFX##_gemm_mt(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nt);           \
            return;                                                                            \
        }                                                                                      \
        if (sb == 0 && !ta && sa == m * lda && sc == m * ldc) {                                \
            PFX##_gemm_mt(ta, tb, batch * m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nt);   \
            return;                                                                            \
        }                                                                                      \
        double flops = 2.0 * (double)m * (double)n * (double)(k > 0 ? k : 1);                  \
        int ntb = threads_for(flops * (double)batch, nt);                                      \
        /* Over the batch when it divides evenly or is long enough to balance, and the output  \
         * matrices are distinct (sc == 0 would make threads race on one C). */                \
        if (ntb > 1 && sc != 0 && (batch % ntb == 0 || batch >= 4 * ntb)) {                    \
            TGL_OMP("omp parallel for num_threads(ntb) schedule(static)")                     \
            for (int64_t i = 0; i < batch; i++)                                                \
                PFX##_gemm_mt(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,  \
                              c + i * sc, ldc, 1);                                             \
            return;                                                                            \
        }                                                                                      \
        for (int64_t i = 0; i < batch; i++)                                                    \
            PFX##_gemm_mt(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,      \
                          c + i * sc, ldc, nt);                                                \
    }

DEFINE_BATCHED(float, s, g_spaths)
DEFINE_BATCHED(double, d, g_dpaths)

void tgl_sgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, int64_t stride_a,
                       const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                       int64_t ldc, int64_t stride_c, int num_threads) {
    s_gemm_batched(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                   beta, c, ldc, stride_c, num_threads);
}

void tgl_dgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       double alpha, const double *a, int64_t lda, int64_t stride_a,
                       const double *b, int64_t ldb, int64_t stride_b, double beta, double *c,
                       int64_t ldc, int64_t stride_c, int num_threads) {
    d_gemm_batched(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                   beta, c, ldc, stride_c, num_threads);
}
