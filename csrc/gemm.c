/* gemm.c -- single- and double-precision GEMM for tinygrad_lite.
 *
 *     C = alpha * op(A) * op(B) + beta * C        (row-major; interface and conventions: gemm.h)
 *
 * Two implementations:
 *
 *   tgl_[sd]gemm_naive   the plain triple loop. It is the reference: easy to read, easy to trust,
 *                        slow. Tests and benchmarks compare the fast path against it.
 *   tgl_[sd]gemm(...)    the fast path described below, plus the strided-batched form.
 *
 * Files. This file holds what does not depend on the element type (the comment you are reading,
 * run-time dispatch, buffers, thread and block sizing) and the public entry points. Everything
 * per type is written once, in terms of T, and included once per type (as softmax.c does with
 * softmax_impl.h); each file starts with the plain reference of what it implements:
 *   gemm_impl.h          the triple loop, then the blocked driver, its threads, the batched form
 *   gemm_kernels.h       the portable micro-kernel, then the AVX2 one
 *   gemm_pack.h          packing in plain C (portable and AVX2 paths)
 *   gemm_x86_kernels.h   the AVX-512 micro-kernel (all its tile shapes)
 *   gemm_x86_pack.h      the AVX-512 packing
 *   gemm_x86_simd.h      (once, not per type) the vector operations by type, e.g. fmadd512_f32
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
 * Dispatch. The micro-kernels for AVX-512 and AVX2 (gemm_x86_kernels.h and gemm_kernels.h,
 * with the AVX-512 packing in gemm_x86_pack.h) are compiled with
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
/* ========================================================================================== */
/* Paths and run-time dispatch                                                                 */
/* ========================================================================================== */
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
/* The kernels, packing and driver, once per element type                                      */
/* ========================================================================================== */
/* Each body below is written once, in terms of T (the type C and the packed panels have), TA
 * (the type of A and B in memory; = T here) and SFX (the suffix of every name it defines:
 * TGL_FN(gemm_seq) is gemm_seq_f32 for float), and included once per type, as softmax.c does
 * with softmax_impl.h. The per-type names they use (tile sizes below, vector operations in
 * gemm_x86_simd.h) are spelled with the same suffix. */
#define TGL_PASTE2(a, b) a##_##b
#define TGL_PASTE(a, b) TGL_PASTE2(a, b)
#define TGL_FN(name) TGL_PASTE(name, SFX)

/* Micro-tiles, MR rows x NR columns, of each path and type (sizes: see the top comment). */
#define PORT_MR_f32 6
#define PORT_NR_f32 8
#define PORT_MR_f64 6
#define PORT_NR_f64 4
#define AVX2_MR_f32 6
#define AVX2_NR_f32 16
#define AVX2_MR_f64 6
#define AVX2_NR_f64 8
#define A512_MR_f32 14
#define A512_NR_f32 32
#define A512_MR_f64 14
#define A512_NR_f64 16

/* The portable kernel's 16-byte vectors (GCC/Clang vector extensions). */
typedef float vport_f32 __attribute__((vector_size(16)));
typedef double vport_f64 __attribute__((vector_size(16)));

/* A and B elements as the panels hold them: the same type for float and double. */
static inline float widen_f32(float x) { return x; }
static inline double widen_f64(double x) { return x; }

/* How many paths each type has, which one runs, and whether its driver may read A and B in
 * place (only when the panels have their type). */
#define NPATHS_f32 3
#define NPATHS_f64 3
#define path_code_f32 tgl_gemm_path
#define path_code_f64 tgl_gemm_path
#define READS_IN_PLACE_f32 1
#define READS_IN_PLACE_f64 1

#if TGL_X86
#include "gemm_x86_simd.h" /* the vector operations, by type */
#define maskz_load_widen512_f32 _mm512_maskz_loadu_ps
#define maskz_load_widen512_f64 _mm512_maskz_loadu_pd
#endif

/* ------------------------------------------------------------------------- float (f32) */
#define T float
#define TA float
#define SFX f32
#include "gemm_kernels.h" /* portable and AVX2 micro-kernels */
#include "gemm_pack.h"    /* plain packing */
#if TGL_X86
#include "gemm_x86_kernels.h" /* AVX-512 micro-kernel */
#include "gemm_x86_pack.h"    /* AVX-512 packing */
#endif
#include "gemm_impl.h" /* reference loop, blocked driver, threads, batched */

/* index = path code: 0 portable, 1 AVX2+FMA, 2 AVX-512F */
static const struct path_f32 paths_f32[3] = {
    {PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_f32, pack_b_generic_f32, 0, 0, NULL},
#if TGL_X86
    {AVX2_MR_f32, AVX2_NR_f32, 2052, 384, 768, ukr_avx2_f32, pack_a_generic_f32, pack_b_generic_f32, 0, 0, NULL},
    {A512_MR_f32, A512_NR_f32, 2058, 384, 512, ukr512_f32, pack_a512_f32, pack_b512_f32, 1, 16, ukr512w_f32},
#else
    {PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_f32, pack_b_generic_f32, 0, 0, NULL},
    {PORT_MR_f32, PORT_NR_f32, 2052, 256, 1024, ukr_portable_f32, pack_a_generic_f32, pack_b_generic_f32, 0, 0, NULL},
#endif
};
#undef T
#undef TA
#undef SFX

/* ------------------------------------------------------------------------ double (f64) */
#define T double
#define TA double
#define SFX f64
#include "gemm_kernels.h"
#include "gemm_pack.h"
#if TGL_X86
#include "gemm_x86_kernels.h"
#include "gemm_x86_pack.h"
#endif
#include "gemm_impl.h"

static const struct path_f64 paths_f64[3] = {
    {PORT_MR_f64, PORT_NR_f64, 2052, 256, 512, ukr_portable_f64, pack_a_generic_f64, pack_b_generic_f64, 0, 0, NULL},
#if TGL_X86
    {AVX2_MR_f64, AVX2_NR_f64, 2052, 256, 512, ukr_avx2_f64, pack_a_generic_f64, pack_b_generic_f64, 0, 0, NULL},
    {A512_MR_f64, A512_NR_f64, 2058, 192, 512, ukr512_f64, pack_a512_f64, pack_b512_f64, 1, 8, ukr512w_f64},
#else
    {PORT_MR_f64, PORT_NR_f64, 2052, 256, 512, ukr_portable_f64, pack_a_generic_f64, pack_b_generic_f64, 0, 0, NULL},
    {PORT_MR_f64, PORT_NR_f64, 2052, 256, 512, ukr_portable_f64, pack_a_generic_f64, pack_b_generic_f64, 0, 0, NULL},
#endif
};
#undef T
#undef TA
#undef SFX

/* ------------------------------------------------- bfloat16 and float16 inputs, float C */
#include "gemm_lowp.h"

/* ========================================================================================== */
/* Public entry points                                                                         */
/* ========================================================================================== */

void tgl_sgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc) {
    gemm_naive_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void tgl_dgemm_naive(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc) {
    gemm_naive_f64(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void tgl_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, int num_threads) {
    gemm_mt_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                resolve_threads(num_threads));
}

void tgl_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
               int64_t ldc, int num_threads) {
    gemm_mt_f64(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                resolve_threads(num_threads));
}

/* Batched: see gemm_batched in gemm_impl.h. */
void tgl_sgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, int64_t stride_a,
                       const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                       int64_t ldc, int64_t stride_c, int num_threads) {
    gemm_batched_f32(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                     beta, c, ldc, stride_c, num_threads);
}

void tgl_dgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                       double alpha, const double *a, int64_t lda, int64_t stride_a,
                       const double *b, int64_t ldb, int64_t stride_b, double beta, double *c,
                       int64_t ldc, int64_t stride_c, int num_threads) {
    gemm_batched_f64(trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                     beta, c, ldc, stride_c, num_threads);
}
