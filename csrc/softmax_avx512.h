/* The hand-written AVX-512 float32 path of the softmax family (included once by softmax.c).
 *
 * Read softmax.c first: this file uses its constants (MAX_CHUNKS, STREAM_MIN_BYTES) and exp
 * helpers, and provides the *_avx512_f32 block functions that softmax_impl.h's entry points pick
 * at run time (TGL_PICK_F32) in place of the portable ones. The portable C stays the reference
 * for what these compute; test_avx512_and_portable_paths_agree compares the two.
 */
/* ---------------------------------------------------------------------------------------- */
/* Hand-written AVX-512 float32 row kernels                                                 */
/* ---------------------------------------------------------------------------------------- */

/* float32 is the type that matters (training runs in it), and the plain C above, even compiled
 * for AVX-512 by target_clones, leaves speed on the table that intrinsics can take:
 *  - the exp: VSCALEFPS computes p * 2^n in one instruction (instead of building 2^n in the
 *    exponent bits: shift, add, multiply), and the magic-number clamp is not needed; with the
 *    same TwoSum-corrected argument and the same Cephes polynomial as tgl_exp_diff_f32 this is
 *    ~21 instructions per 16 floats instead of ~31;
 *  - the sums stay in vector registers: each 256-element piece's float sum is widened to two
 *    double vectors and added there (GCC reduced every `omp simd` sum horizontally through the
 *    stack, once per chunk); one horizontal reduction per row;
 *  - rows of up to 4096 elements are one chunk (one max, no rescaling bookkeeping), longer rows
 *    use 2048-element chunks (8 KiB, in L1);
 *  - large outputs are written with non-temporal (streaming) stores, so the cache lines of the
 *    output are not first read from memory ("read for ownership") only to be overwritten: that
 *    read is a third of the memory traffic of softmax. The values are first computed into a
 *    small per-thread scratch row (in L1/L2) and then streamed out, once.
 * Selected at run time (tgl_softmax_path); tgl_softmax_set_portable(1) forces the generic code
 * (the tests compare both). Results do not depend on the thread count: a row is always computed
 * by the same code in the same order. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(TGL_NO_CLONES)
#define TGL_AVX512_PATH 1
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#define TGL_AVX512 __attribute__((target("avx512f,avx512dq,fma")))
#define TGL_AVX512_INLINE TGL_AVX512 __attribute__((always_inline)) inline

static int tgl_force_portable = 0;

static int tgl_avx512_usable(void) {
    static int cached = -1; /* a benign race: every thread computes the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("fma");
    }
    return cached;
}

static int tgl_use_avx512(void) { return !tgl_force_portable && tgl_avx512_usable(); }

int tgl_softmax_path(void) { return tgl_use_avx512() ? 2 : 0; }

int tgl_softmax_set_portable(int force) {
    tgl_force_portable = force != 0;
    return tgl_softmax_path();
}

/* Per-thread scratch row for the streaming-store path: grown on demand, freed when the thread
 * exits (a pthread key destructor; OpenMP workers live as long as the process). */
static pthread_key_t tgl_scratch_key;
static pthread_once_t tgl_scratch_once = PTHREAD_ONCE_INIT;
static __thread float *tgl_scratch;
static __thread int64_t tgl_scratch_cap;

static void tgl_scratch_key_init(void) { (void)pthread_key_create(&tgl_scratch_key, free); }

static float *tgl_scratch_f32(int64_t n) {
    if (n <= tgl_scratch_cap) return tgl_scratch;
    pthread_once(&tgl_scratch_once, tgl_scratch_key_init);
    free(tgl_scratch);
    const size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    tgl_scratch = aligned_alloc(64, bytes);
    tgl_scratch_cap = tgl_scratch ? n : 0;
    (void)pthread_setspecific(tgl_scratch_key, tgl_scratch);
    return tgl_scratch; /* NULL: the caller falls back to ordinary stores */
}

/* Rows up to this long are one chunk; longer rows use AVX_CHUNK-element chunks. */
#define AVX_ONE_CHUNK 4096
#define AVX_CHUNK 2048
/* Float partial sums are widened to double every SUM_PIECE elements (16 values per lane, as
 * the generic code's CHUNK = 256: relative error ~1e-7). */
#define SUM_PIECE 256

static inline int64_t avx_chunk_for(int64_t n) {
    if (n <= AVX_ONE_CHUNK) return n;
    if (n <= (int64_t)AVX_CHUNK * MAX_CHUNKS) return AVX_CHUNK;
    int64_t c = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    return (c + SUM_PIECE - 1) / SUM_PIECE * SUM_PIECE;
}

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* 16 floats from p, of which `left` are valid; the others read as `fill` (no access). */
TGL_AVX512_INLINE static __m512 load16(const float *p, int64_t left, __m512 fill) {
    return left >= 16 ? _mm512_loadu_ps(p) : _mm512_mask_loadu_ps(fill, tail_mask(left), p);
}

/* n = round(v / ln2) for 16 lanes, as an integer-valued float (the magic-number trick of
 * tgl_exp_core_f32: adding 1.5 * 2^23 rounds away the fraction bits). */
TGL_AVX512_INLINE static __m512 round_log2e16(__m512 v) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    return _mm512_sub_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(1.44269504088896341f), magic), magic);
}

/* exp(r) = 1 + r + r^2 P(r) for a reduced argument |r| <= ln2/2: Cephes' degree-5 polynomial, as
 * in tgl_exp_core_f32. Both exps below end with it (then scale by a power of two). */
TGL_AVX512_INLINE static __m512 exp_reduced16(__m512 r) {
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    return _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
}

/* exp(a - b) for 16 lanes, b the running max (nb = -b): tgl_exp_diff_f32 with VSCALEFPS. */
TGL_AVX512_INLINE static __m512 exp_diff16(__m512 a, __m512 b, __m512 nb) {
    const __m512 s = _mm512_sub_ps(a, b);
    /* TwoSum: err is the exact rounding error of s (see tgl_exp_diff_f32). */
    const __m512 bb = _mm512_sub_ps(s, a);
    const __m512 err = _mm512_add_ps(_mm512_sub_ps(a, _mm512_sub_ps(s, bb)), _mm512_sub_ps(nb, bb));
    const __m512 n = round_log2e16(s);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), s);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    const __m512 y = exp_reduced16(_mm512_add_ps(r, err));
    /* s >= lo, or NaN (which passes through): p * 2^n; below lo (incl. -inf): 0. */
    const __mmask16 keep = _mm512_cmp_ps_mask(s, _mm512_set1_ps(-87.33654475f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, y, n);
}

/* exp(a) * 2^-N for 16 lanes, 0 where a < lo (= m - FAST_CLAMP): the power-of-two-shift exp of
 * online_rel_f32 (see there for why). */
TGL_AVX512_INLINE static __m512 exp_rel16(__m512 a, __m512 vN, __m512 lo) {
    const __mmask16 keep = _mm512_cmp_ps_mask(a, lo, _CMP_NLT_UQ); /* a >= lo, or NaN */
    a = _mm512_max_ps(lo, a); /* (VMAXPS returns its second operand, a, if it is NaN) */
    const __m512 n = round_log2e16(a);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    return _mm512_maskz_scalef_ps(keep, exp_reduced16(r), _mm512_sub_ps(n, vN));
}

/* max over p[0..len), NaN skipped (VMAXPS returns its second operand when one is NaN). */
TGL_AVX512_INLINE static float max_f32(const float *p, int64_t len) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf; /* 4 chains: VMAXPS latency */
    int64_t i = 0;
    for (; i + 64 <= len; i += 64) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(p + i), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(p + i + 16), m1);
        m2 = _mm512_max_ps(_mm512_loadu_ps(p + i + 32), m2);
        m3 = _mm512_max_ps(_mm512_loadu_ps(p + i + 48), m3);
    }
    for (; i < len; i += 16) m0 = _mm512_max_ps(load16(p + i, len - i, ninf), m0);
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/* acc (8 doubles) += the 16 float lanes of cs, widened to double. */
TGL_AVX512_INLINE static __m512d add_widened(__m512d acc, __m512 cs) {
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(cs)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(cs), 1))));
}

/* acc += sum over x[0..len) of exp16(x[i]) (in double, see SUM_PIECE); e[i] = those values when
 * e is not NULL. REL (a constant after inlining) picks the exp: 0, exp_diff16(x, p1 = m,
 * p2 = -m) = exp(x - m); 1, exp_rel16(x, p1 = N, p2 = m - FAST_CLAMP) = exp(x) * 2^-N. The
 * padding of a short last vector is -inf, whose exp is 0 in both. */
TGL_AVX512_INLINE static __m512d expsum_f32(const int REL, const float *x, float *e, int64_t len,
                                            __m512 p1, __m512 p2, __m512d acc) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
#define TGL_EXP16(v) (REL ? exp_rel16((v), p1, p2) : exp_diff16((v), p1, p2))
    for (int64_t p0 = 0; p0 < len; p0 += SUM_PIECE) {
        const int64_t end = len - p0 < SUM_PIECE ? len : p0 + SUM_PIECE;
        __m512 cs0 = _mm512_setzero_ps(), cs1 = _mm512_setzero_ps(); /* 2 chains: add latency */
        int64_t i = p0;
        for (; i + 32 <= end; i += 32) {
            const __m512 v0 = TGL_EXP16(_mm512_loadu_ps(x + i));
            const __m512 v1 = TGL_EXP16(_mm512_loadu_ps(x + i + 16));
            if (e) {
                _mm512_storeu_ps(e + i, v0);
                _mm512_storeu_ps(e + i + 16, v1);
            }
            cs0 = _mm512_add_ps(cs0, v0);
            cs1 = _mm512_add_ps(cs1, v1);
        }
        for (; i < end; i += 16) {
            const __m512 v = TGL_EXP16(load16(x + i, end - i, ninf));
            if (e) _mm512_mask_storeu_ps(e + i, tail_mask(end - i), v);
            cs0 = _mm512_add_ps(cs0, v);
        }
        acc = add_widened(acc, _mm512_add_ps(cs0, cs1));
    }
#undef TGL_EXP16
    return acc;
}

/* A chunk whose max is -inf: each element is -inf (exp 0) or NaN, which the max skipped and which
 * must make the row NaN, as in NumPy (see row_online_pass). Zeroes the chunk of e (if any);
 * returns 1 when there is a NaN. */
TGL_AVX512_INLINE static int empty_chunk_f32(const float *xc, float *ec, int64_t len) {
    int nan_seen = 0;
    for (int64_t i = 0; i < len; i++) {
        if (xc[i] != xc[i]) nan_seen = 1;
        if (ec) ec[i] = 0;
    }
    return nan_seen;
}

/* The online pass (as row_online_pass in softmax_impl.h): m = max(x), s = sum(exp(x - m));
 * with e, e[i] = exp(x[i] - m_c) and chunk_max[c] = m_c. */
TGL_AVX512_INLINE static void online_f32(const float *x, int64_t n, int64_t chunk, float *e,
                                         float *chunk_max, float *m_out, double *s_out) {
    float m = -INFINITY;
    __m512d acc = _mm512_setzero_pd();
    int nan_seen = 0;
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        const float *xc = x + c0;
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;
        const float cm = max_f32(xc, len);
        if (cm == -INFINITY) {
            nan_seen |= empty_chunk_f32(xc, e ? e + c0 : NULL, len);
            if (chunk_max) chunk_max[c] = m;
            continue;
        }
        if (cm > m) {
            if (m != -INFINITY) acc = _mm512_mul_pd(acc, _mm512_set1_pd(exp((double)m - (double)cm)));
            m = cm;
        }
        acc = expsum_f32(0, xc, e ? e + c0 : NULL, len, _mm512_set1_ps(m), _mm512_set1_ps(-m),
                         acc);
        if (chunk_max) chunk_max[c] = m;
    }
    *m_out = m;
    *s_out = nan_seen ? NAN : _mm512_reduce_add_pd(acc);
}

/* The faster online pass: no exp(a - b) at all. The idea: softmax is shift-invariant, and the
 * shift only has to keep exp from overflowing, so it may be a power of two, 2^N with
 * N = round(m / ln2) (m the running max), instead of exp(m). Then
 *     exp(a) * 2^-N = 2^(n_a - N) * exp(r_a),   n_a = round(a / ln2), r_a = a - n_a ln2,
 * where r_a is reduced from a itself -- an input, exact -- so the rounding of a - m that the
 * TwoSum correction repaired never happens (and its 6 instructions per vector go away). n_a <= N
 * because the rounding is monotonic, so the values are at most ~1.42: no overflow. A new record
 * rescales the sums by 2^(N_old - N_new), exactly. VSCALEFPS applies 2^(n_a - N).
 * Arguments below m - 87.34 (whose exp relative to the max is below FLT_MIN, as -inf's) give 0,
 * as in the portable exp core. They must not be computed and left to underflow: a subnormal
 * result costs a microcode assist of ~100+ cycles, and a causal attention mask (-inf above the
 * diagonal) then made softmax four times slower. (They are also clamped up to m - 87.34 before
 * the reduction, which keeps |a| small.) NaN passes the clamp and makes the row NaN.
 * The reduction a - n*C1 - n*C2 is accurate for |n| < 2^15 (C1 has 9 significant bits), so this
 * pass is used when |max| <= 8192; returns 0 for the rare row whose max is beyond that (+-inf
 * included), and the caller uses online_f32 instead. */
#define FAST_MAX_ABS 8192.0f
#define FAST_CLAMP 87.33654475f

/* m = max(x), N and s = sum(exp(x)) * 2^-N; with e, e[i] = exp(x[i]) * 2^-N_c and
 * chunk_N[c] = N_c (the N when chunk c was processed). Returns 0 when |max| > FAST_MAX_ABS
 * (nothing useful computed then). */
TGL_AVX512_INLINE static int online_rel_f32(const float *x, int64_t n, int64_t chunk, float *e,
                                            float *chunk_N, float *m_out, float *N_out,
                                            double *s_out) {
    float m = -INFINITY, N = 0.0f;
    __m512d acc = _mm512_setzero_pd();
    int nan_seen = 0;
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        const float *xc = x + c0;
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;
        const float cm = max_f32(xc, len);
        if (cm == -INFINITY) {
            nan_seen |= empty_chunk_f32(xc, e ? e + c0 : NULL, len);
            if (chunk_N) chunk_N[c] = N;
            continue;
        }
        if (cm > m) {
            if (!(cm <= FAST_MAX_ABS && cm >= -FAST_MAX_ABS)) return 0;
            const float newN = _mm512_cvtss_f32(round_log2e16(_mm512_set1_ps(cm)));
            if (m != -INFINITY && newN != N)
                acc = _mm512_mul_pd(acc, _mm512_set1_pd(ldexp(1.0, (int)(N - newN))));
            m = cm;
            N = newN;
        }
        acc = expsum_f32(1, xc, e ? e + c0 : NULL, len, _mm512_set1_ps(N),
                         _mm512_set1_ps(m - FAST_CLAMP), acc);
        if (chunk_N) chunk_N[c] = N;
    }
    *m_out = m;
    *N_out = N;
    *s_out = nan_seen ? NAN : _mm512_reduce_add_pd(acc);
    return 1;
}

/* Chunks processed before the final N: e *= 2^(N_c - N) (exact, short of underflow). */
TGL_AVX512_INLINE static void fixup_rel_f32(float *e, int64_t n, int64_t chunk,
                                            const float *chunk_N, float N) {
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        if (chunk_N[c] == N) continue;
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;
        const __m512 d = _mm512_set1_ps(chunk_N[c] - N);
        for (int64_t i = c0; i < c0 + len; i += 16) {
            const __mmask16 k = tail_mask(c0 + len - i);
            _mm512_mask_storeu_ps(e + i, k, _mm512_scalef_ps(_mm512_maskz_loadu_ps(k, e + i), d));
        }
    }
}

/* Chunks whose running max m_c was below the final max: e *= exp(m_c - m). */
TGL_AVX512_INLINE static void fixup_f32(float *e, int64_t n, int64_t chunk, const float *chunk_max,
                                        float m) {
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        if (chunk_max[c] == m) continue;
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;
        const __m512 f = _mm512_set1_ps((float)exp((double)chunk_max[c] - (double)m));
        for (int64_t i = c0; i < c0 + len; i += 16) {
            const __mmask16 k = tail_mask(c0 + len - i);
            _mm512_mask_storeu_ps(e + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, e + i), f));
        }
    }
}

/* The element-wise output passes. */
enum { MAP_SCALE, MAP_LOG_SOFTMAX, MAP_SOFTMAX_BWD };

TGL_AVX512_INLINE static __m512 map16(int op, __m512 a, __m512 b, __m512 c1, __m512 c2) {
    switch (op) {
    case MAP_SCALE: return _mm512_mul_ps(a, c1);                         /* a * c1 */
    case MAP_LOG_SOFTMAX: return _mm512_sub_ps(_mm512_sub_ps(a, c1), c2); /* (x - m) - log s */
    default: return _mm512_mul_ps(a, _mm512_sub_ps(b, c1));              /* y * (dy - d) */
    }
}

/* dst[i] = map(a[i], b[i]) for i < n. stream: the 64-byte-aligned body of dst is written with
 * streaming stores (the caller issues the SFENCE), the unaligned head and the tail with
 * ordinary masked stores. */
TGL_AVX512_INLINE static void map_store_f32(int op, const float *a, const float *b, float *dst,
                                            int64_t n, float c1, float c2, int stream) {
    const __m512 v1 = _mm512_set1_ps(c1), v2 = _mm512_set1_ps(c2), z = _mm512_setzero_ps();
    int64_t i = 0;
    if (stream && ((uintptr_t)dst & 3) == 0) {
        int64_t head = (int64_t)((64 - ((uintptr_t)dst & 63)) & 63) / 4;
        if (head > n) head = n;
        if (head) {
            const __mmask16 k = tail_mask(head);
            const __m512 vb = b ? _mm512_maskz_loadu_ps(k, b) : z;
            _mm512_mask_storeu_ps(dst, k, map16(op, _mm512_maskz_loadu_ps(k, a), vb, v1, v2));
            i = head;
        }
        for (; i + 16 <= n; i += 16) {
            const __m512 vb = b ? _mm512_loadu_ps(b + i) : z;
            _mm512_stream_ps(dst + i, map16(op, _mm512_loadu_ps(a + i), vb, v1, v2));
        }
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 vb = b ? _mm512_loadu_ps(b + i) : z;
        _mm512_storeu_ps(dst + i, map16(op, _mm512_loadu_ps(a + i), vb, v1, v2));
    }
    if (i < n) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 vb = b ? _mm512_maskz_loadu_ps(k, b + i) : z;
        _mm512_mask_storeu_ps(dst + i, k, map16(op, _mm512_maskz_loadu_ps(k, a + i), vb, v1, v2));
    }
}

/* log(sum(exp(x - m))) from online_rel_f32's results: sum(exp(x - m)) = s / (exp(m) * 2^-N),
 * dividing by the max's own term exp(m) * 2^-N as the pass computed it (not the exact value): so
 * when the max dominates the row the result is as exact as with exp(x - m), whose max term is
 * exactly 1 -- a row whose only finite element is the max gets exactly 0 (log-softmax = 0 there),
 * and cross-entropy's p_t - 1 does not pick up the exp's rounding. */
TGL_AVX512_INLINE static double sum_rel_f32(float m, float N, double s) {
    const __m512 vm = _mm512_set1_ps(m);
    const float e_m = _mm512_cvtss_f32(
        exp_rel16(vm, _mm512_set1_ps(N), _mm512_sub_ps(vm, _mm512_set1_ps(FAST_CLAMP))));
    return s / (double)e_m;
}
TGL_AVX512_INLINE static double log_sum_rel_f32(float m, float N, double s) {
    return log(sum_rel_f32(m, N, s));
}

/* log of 8 doubles q >= 1 (or NaN), to ~1e-12 absolute (the callers round it to float): short
 * rows need a log per row, and a libm call each was a fifth of log-softmax's time on 128-wide
 * rows. q = 2^k f with f in [0.75, 1.5) (VGETMANTPD / VGETEXPPD), log f = 2 atanh(u) with
 * u = (f - 1) / (f + 1), |u| <= 0.2, by its series up to u^13 (next term < 1e-10 * u). */
TGL_AVX512_INLINE static __m512d log8_pd(__m512d q) {
    const __m512d f = _mm512_getmant_pd(q, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
    const __m512d k = _mm512_sub_pd(_mm512_getexp_pd(q), _mm512_getexp_pd(f));
    const __m512d one = _mm512_set1_pd(1.0);
    const __m512d u = _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
    const __m512d u2 = _mm512_mul_pd(u, u);
    __m512d p = _mm512_set1_pd(2.0 / 13);
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0 / 11));
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0 / 9));
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0 / 7));
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0 / 5));
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0 / 3));
    p = _mm512_fmadd_pd(p, u2, _mm512_set1_pd(2.0));
    return _mm512_fmadd_pd(k, _mm512_set1_pd(0.69314718055994530942), _mm512_mul_pd(p, u));
}

/* log(sum(exp(x - m))) (in double) and m = max(x), without writing anything. */
TGL_AVX512_INLINE static double log_sum_f32(const float *x, int64_t n, float *m_out) {
    float m, N;
    double s;
    const int64_t chunk = avx_chunk_for(n);
    if (online_rel_f32(x, n, chunk, NULL, NULL, &m, &N, &s)) {
        *m_out = m;
        return log_sum_rel_f32(m, N, s);
    }
    online_f32(x, n, chunk, NULL, NULL, &m, &s);
    *m_out = m;
    return log(s);
}

/* softmax(x) * scale into y (stream: through the scratch row, then streamed out). Returns
 * logsumexp(x) when want_lse (cross-entropy; a log per row is not free for short rows). */
TGL_AVX512_INLINE static double softmax_scaled_row_f32(const float *x, float *y, int64_t n,
                                                       double scale, int stream, int want_lse) {
    float chunk_tab[MAX_CHUNKS];
    const int64_t chunk = avx_chunk_for(n);
    /* (The scratch row must stay in L2 next to x's row to pay off: 1 MiB at most.) */
    float *e = stream && n <= (1 << 18) ? tgl_scratch_f32(n) : NULL;
    if (!e) {
        e = y;
        stream = 0;
    }
    float m, N;
    double s, lse = 0.0;
    if (online_rel_f32(x, n, chunk, e, chunk_tab, &m, &N, &s)) {
        if (n > chunk) fixup_rel_f32(e, n, chunk, chunk_tab, N);
        if (want_lse) lse = (double)m + log_sum_rel_f32(m, N, s);
    } else {
        online_f32(x, n, chunk, e, chunk_tab, &m, &s);
        if (n > chunk) fixup_f32(e, n, chunk, chunk_tab, m);
        if (want_lse) lse = (double)m + log(s);
    }
    map_store_f32(MAP_SCALE, e, NULL, y, n, (float)(scale / s), 0.0f, stream);
    return lse;
}

/* Rows [0, rows) of each op: the per-row loop is inside the AVX-512 function, so the row helpers
 * inline into it and no call per row is needed. stream: see the entry points in
 * softmax_impl.h. */
TGL_AVX512 static void softmax_block_avx512_f32(const float *x, int64_t ldx, float *y,
                                                int64_t rows, int64_t cols, int stream) {
    for (int64_t r = 0; r < rows; r++)
        (void)softmax_scaled_row_f32(x + r * ldx, y + r * cols, cols, 1.0, stream, 0);
    if (stream) _mm_sfence();
}

/* Short rows in groups of 8: the sums of 8 rows first, one vector log for all of them, then the 8
 * output rows (their inputs are still in cache). */
TGL_AVX512 static void log_softmax_block_avx512_f32(const float *x, int64_t ldx, float *y,
                                                    int64_t rows, int64_t cols, int stream) {
    const int64_t chunk = avx_chunk_for(cols);
    /* (Long rows one at a time: 8 of them would not stay in cache for the second pass.) */
    const int64_t group = cols <= 4096 ? 8 : 1;
    for (int64_t r0 = 0; r0 < rows; r0 += group) {
        const int64_t g = rows - r0 < group ? rows - r0 : group;
        double q[8] = {1, 1, 1, 1, 1, 1, 1, 1}, log_q[8];
        float m[8];
        for (int64_t j = 0; j < g; j++) {
            const float *xr = x + (r0 + j) * ldx;
            float N;
            double s;
            if (online_rel_f32(xr, cols, chunk, NULL, NULL, &m[j], &N, &s)) {
                q[j] = sum_rel_f32(m[j], N, s); /* sum(exp(x - m)), see log_sum_rel_f32 */
            } else {
                online_f32(xr, cols, chunk, NULL, NULL, &m[j], &s);
                q[j] = s;
            }
        }
        _mm512_storeu_pd(log_q, log8_pd(_mm512_loadu_pd(q)));
        for (int64_t j = 0; j < g; j++) {
            /* (q = 0, a row of -inf only, gives NaN rather than -inf: the row is NaN either way) */
            map_store_f32(MAP_LOG_SOFTMAX, x + (r0 + j) * ldx, NULL, y + (r0 + j) * cols, cols,
                          m[j], (float)log_q[j], stream);
        }
    }
    if (stream) _mm_sfence();
}

/* sum(a * b) over a row, float within SUM_PIECE pieces and double across them. */
TGL_AVX512_INLINE static double dot_f32(const float *a, const float *b, int64_t n) {
    __m512d acc = _mm512_setzero_pd();
    for (int64_t p0 = 0; p0 < n; p0 += SUM_PIECE) {
        const int64_t end = n - p0 < SUM_PIECE ? n : p0 + SUM_PIECE;
        __m512 cs0 = _mm512_setzero_ps(), cs1 = _mm512_setzero_ps();
        int64_t i = p0;
        for (; i + 32 <= end; i += 32) {
            cs0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), cs0);
            cs1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), cs1);
        }
        for (; i < end; i += 16) {
            const __mmask16 k = tail_mask(end - i);
            cs0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), cs0);
        }
        acc = add_widened(acc, _mm512_add_ps(cs0, cs1));
    }
    return _mm512_reduce_add_pd(acc);
}

TGL_AVX512 static void softmax_backward_block_avx512_f32(const float *y, int64_t ldy,
                                                         const float *dy, int64_t ldd, float *dx,
                                                         int64_t rows, int64_t cols, int stream) {
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dr = dy + r * ldd;
        const float d = (float)dot_f32(dr, yr, cols);
        map_store_f32(MAP_SOFTMAX_BWD, yr, dr, dx + r * cols, cols, d, 0.0f, stream);
    }
    if (stream) _mm_sfence();
}

TGL_AVX512 static double cross_entropy_row_avx512_f32(const float *x, int64_t n, int64_t t,
                                                      double scale, float *g, int stream) {
    double lse;
    if (g) {
        lse = softmax_scaled_row_f32(x, g, n, scale, stream, 1); /* g = softmax * scale */
        if (stream) _mm_sfence(); /* the streamed row is in place before g[t] is overwritten */
        g[t] = (float)((exp((double)x[t] - lse) - 1.0) * scale); /* see cross_entropy_row */
    } else {
        float m;
        lse = log_sum_f32(x, n, &m);
        lse += (double)m;
    }
    return lse - (double)x[t];
}

#define TGL_PICK_F32(generic, fast) (tgl_use_avx512() ? (fast) : (generic))
#else
int tgl_softmax_path(void) { return 0; }
int tgl_softmax_set_portable(int force) { (void)force; return 0; }
#define TGL_PICK_F32(generic, fast) (generic)
#endif

