/* Body of the softmax-family kernels, written once for an element type T.
 *
 * softmax.c includes this file twice: with T = float (names end in _f32, VEXP = tgl_exp_f32)
 * and with T = double (_f64, tgl_exp_f64). Read it as ordinary C with T standing for the type.
 */
#ifndef TGL_FN
#define TGL_PASTE2(a, b) a##_##b
#define TGL_PASTE(a, b) TGL_PASTE2(a, b)
#define TGL_FN(name) TGL_PASTE(name, SFX)
#endif

/* The streaming pass over one row ("online softmax", see the top of softmax.c).
 *
 * Computes m = max(x) and s = sum(exp(x - m)) in one read of x. Each chunk's sum is kept in T
 * (so the loop runs at the full vector width: a float->double conversion per element would halve
 * it) and added to s in double; with CHUNK = 256 and 16 float lanes each lane adds only 16
 * values, a relative error of at most ~1e-6 and typically ~1e-7. When e is not
 * NULL it also writes e[i] = exp(x[i] - m_c), where m_c is the running max when x[i]'s chunk was
 * processed (kept in chunk_max[c]); the caller rescales chunk c by exp(m_c - m) afterwards, while
 * e is still in cache. That way each element costs one exp, and x is read from memory once. */
TGL_INLINE
static void TGL_FN(row_online_pass)(const T *x, int64_t n, int64_t chunk, T *e, T *chunk_max,
                                    T *m_out, double *s_out) {
    T m = -INFINITY;
    double s = 0.0;
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        const T *xc = x + c0;
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;

        T cm = -INFINITY;
#pragma omp simd reduction(max : cm)
        for (int64_t i = 0; i < len; i++) cm = xc[i] > cm ? xc[i] : cm;

        if (cm == -INFINITY) {
            /* Every element is -inf (exp gives 0, nothing to add) -- or NaN, which the max
             * skipped; a NaN anywhere must make the row NaN, as in NumPy. */
            for (int64_t i = 0; i < len; i++) {
                if (xc[i] != xc[i]) s = NAN;
                if (e) e[c0 + i] = 0;
            }
            if (chunk_max) chunk_max[c] = m;
            continue;
        }
        if (cm > m) {
            /* New record: rescale what was summed relative to the old max. (While m is still
             * -inf, s is 0 -- or NaN, which must stay NaN -- and needs no rescaling.) */
            if (m != -INFINITY) s *= exp((double)m - (double)cm);
            m = cm;
        }
        const T mm = m;
        T cs = 0;
        if (e) {
            T *ec = e + c0;
#pragma omp simd reduction(+ : cs)
            for (int64_t i = 0; i < len; i++) {
                const T v = VEXP_DIFF(xc[i], mm);
                ec[i] = v;
                cs += v;
            }
            chunk_max[c] = mm;
        } else {
#pragma omp simd reduction(+ : cs)
            for (int64_t i = 0; i < len; i++) cs += VEXP_DIFF(xc[i], mm);
        }
        s += (double)cs;
    }
    *m_out = m;
    *s_out = s;
}

/* Second half of the online pass: multiply chunk c of e (written by row_online_pass) by
 * exp(m_c - m) * factor, which turns exp(x - m_c) into exp(x - m) * factor. */
TGL_INLINE
static void TGL_FN(row_rescale)(T *e, int64_t n, int64_t chunk, const T *chunk_max, T m,
                                double factor) {
    for (int64_t c0 = 0, c = 0; c0 < n; c0 += chunk, c++) {
        const int64_t len = n - c0 < chunk ? n - c0 : chunk;
        /* (chunk_max[c] == m for the chunks after the last new record: factor itself.) */
        const T f = (T)(chunk_max[c] == m ? factor
                                          : exp((double)chunk_max[c] - (double)m) * factor);
        T *ec = e + c0;
#pragma omp simd
        for (int64_t i = 0; i < len; i++) ec[i] *= f;
    }
}

/* Chunk length for a row of n: CHUNK, or longer for very long rows so that the per-chunk maxima
 * fit a fixed array on the stack (MAX_CHUNKS entries). */
static inline int64_t TGL_FN(chunk_for)(int64_t n) {
    if (n <= (int64_t)CHUNK * MAX_CHUNKS) return CHUNK;
    int64_t c = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    return (c + 63) / 64 * 64;
}

/* m = max(x) and s = sum(exp(x - m)), without writing anything. */
TGL_INLINE
static void TGL_FN(row_max_sumexp)(const T *x, int64_t n, T *m, double *s) {
    TGL_FN(row_online_pass)(x, n, TGL_FN(chunk_for)(n), NULL, NULL, m, s);
}

TGL_INLINE
static void TGL_FN(softmax_row)(const T *x, T *y, int64_t n) {
    T chunk_max[MAX_CHUNKS];
    const int64_t chunk = TGL_FN(chunk_for)(n);
    T m;
    double s;
    TGL_FN(row_online_pass)(x, n, chunk, y, chunk_max, &m, &s);
    TGL_FN(row_rescale)(y, n, chunk, chunk_max, m, 1.0 / s);
}

TGL_INLINE
static void TGL_FN(log_softmax_row)(const T *x, T *y, int64_t n) {
    T m;
    double s;
    TGL_FN(row_max_sumexp)(x, n, &m, &s);
    const T log_s = (T)log(s);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
}

/* sum(a * b) over a row (sum(a) when b is NULL): in T within chunks of CHUNK, so the loop runs
 * at full vector width, and in double across chunks, as in row_online_pass. */
TGL_INLINE
static double TGL_FN(row_dot)(const T *a, const T *b, int64_t n) {
    double total = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
        const int64_t len = n - c0 < CHUNK ? n - c0 : CHUNK;
        T cs = 0;
        if (b) {
#pragma omp simd reduction(+ : cs)
            for (int64_t i = c0; i < c0 + len; i++) cs += a[i] * b[i];
        } else {
#pragma omp simd reduction(+ : cs)
            for (int64_t i = c0; i < c0 + len; i++) cs += a[i];
        }
        total += (double)cs;
    }
    return total;
}

TGL_INLINE
static void TGL_FN(softmax_backward_row)(const T *y, const T *dy, T *dx, int64_t n) {
    const T d = (T)TGL_FN(row_dot)(dy, y, n);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - d);
}

TGL_INLINE
static void TGL_FN(log_softmax_backward_row)(const T *y, const T *dy, T *dx, int64_t n) {
    const T sd = (T)TGL_FN(row_dot)(dy, NULL, n);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] - VEXP(y[i]) * sd;
}

TGL_ROW_KERNEL
static double TGL_FN(cross_entropy_row)(const T *x, int64_t n, int64_t t, double scale, T *g,
                                        int stream) {
    (void)stream; /* only the AVX-512 path streams */
    T m;
    double s;
    if (g) {
        T chunk_max[MAX_CHUNKS];
        const int64_t chunk = TGL_FN(chunk_for)(n);
        TGL_FN(row_online_pass)(x, n, chunk, g, chunk_max, &m, &s);
        TGL_FN(row_rescale)(g, n, chunk, chunk_max, m, scale / s); /* g = softmax * scale */
    } else {
        TGL_FN(row_max_sumexp)(x, n, &m, &s);
    }
    const double lse = (double)m + log(s);
    if (g) {
        /* The target entry, p_t - 1, in double: when p_t is close to 1 the float subtraction
         * would cancel most of its digits. */
        g[t] = (T)((exp((double)x[t] - lse) - 1.0) * scale);
    }
    return lse - (double)x[t];
}

/* Blocks of rows: the unit the threads take (the row loop sits inside the cloned function, so
 * the row helpers inline into each clone and there is no dispatched call per row). `stream`
 * only matters to the AVX-512 float path (softmax.c). */
typedef void (*TGL_FN(fwd_block_fn))(const T *x, int64_t ldx, T *y, int64_t rows, int64_t cols,
                                     int stream);
typedef void (*TGL_FN(bwd_block_fn))(const T *y, int64_t ldy, const T *dy, int64_t ldd, T *dx,
                                     int64_t rows, int64_t cols, int stream);

TGL_ROW_KERNEL
static void TGL_FN(softmax_block)(const T *x, int64_t ldx, T *y, int64_t rows, int64_t cols,
                                  int stream) {
    (void)stream;
    for (int64_t r = 0; r < rows; r++) TGL_FN(softmax_row)(x + r * ldx, y + r * cols, cols);
}

TGL_ROW_KERNEL
static void TGL_FN(log_softmax_block)(const T *x, int64_t ldx, T *y, int64_t rows, int64_t cols,
                                      int stream) {
    (void)stream;
    for (int64_t r = 0; r < rows; r++) TGL_FN(log_softmax_row)(x + r * ldx, y + r * cols, cols);
}

TGL_ROW_KERNEL
static void TGL_FN(softmax_backward_block)(const T *y, int64_t ldy, const T *dy, int64_t ldd,
                                           T *dx, int64_t rows, int64_t cols, int stream) {
    (void)stream;
    for (int64_t r = 0; r < rows; r++)
        TGL_FN(softmax_backward_row)(y + r * ldy, dy + r * ldd, dx + r * cols, cols);
}

TGL_ROW_KERNEL
static void TGL_FN(log_softmax_backward_block)(const T *y, int64_t ldy, const T *dy, int64_t ldd,
                                               T *dx, int64_t rows, int64_t cols, int stream) {
    (void)stream;
    for (int64_t r = 0; r < rows; r++)
        TGL_FN(log_softmax_backward_row)(y + r * ldy, dy + r * ldd, dx + r * cols, cols);
}

/* ---- public entry points: threads over blocks of rows ---- */

static void TGL_FN(run_forward)(TGL_FN(fwd_block_fn) fn, const T *x, int64_t ldx, T *y,
                                int64_t rows, int64_t cols, int num_threads) {
    const int nt = threads_for(rows, cols, num_threads);
    const int64_t grain = grain_for(rows, cols, nt);
    const int64_t blocks = (rows + grain - 1) / grain;
    const int stream = (double)rows * (double)cols * sizeof(T) >= STREAM_MIN_BYTES;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t r0 = b * grain, nr = rows - r0 < grain ? rows - r0 : grain;
        fn(x + r0 * ldx, ldx, y + r0 * cols, nr, cols, stream);
    }
}

static void TGL_FN(run_backward)(TGL_FN(bwd_block_fn) fn, const T *y, int64_t ldy, const T *dy,
                                 int64_t ldd, T *dx, int64_t rows, int64_t cols,
                                 int num_threads) {
    const int nt = threads_for(rows, cols, num_threads);
    const int64_t grain = grain_for(rows, cols, nt);
    const int64_t blocks = (rows + grain - 1) / grain;
    const int stream = (double)rows * (double)cols * sizeof(T) >= STREAM_MIN_BYTES;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t r0 = b * grain, nr = rows - r0 < grain ? rows - r0 : grain;
        fn(y + r0 * ldy, ldy, dy + r0 * ldd, ldd, dx + r0 * cols, nr, cols, stream);
    }
}

void TGL_FN(tgl_softmax)(const T *x, int64_t ldx, T *y, int64_t rows, int64_t cols,
                         int num_threads) {
    TGL_FN(run_forward)(TGL_PICK(TGL_FN(softmax_block), TGL_FN(softmax_block_avx512)), x, ldx, y,
                        rows, cols, num_threads);
}

void TGL_FN(tgl_log_softmax)(const T *x, int64_t ldx, T *y, int64_t rows, int64_t cols,
                             int num_threads) {
    TGL_FN(run_forward)(TGL_PICK(TGL_FN(log_softmax_block), TGL_FN(log_softmax_block_avx512)), x,
                        ldx, y, rows, cols, num_threads);
}

void TGL_FN(tgl_softmax_backward)(const T *y, int64_t ldy, const T *dy, int64_t ldd, T *dx,
                                  int64_t rows, int64_t cols, int num_threads) {
    TGL_FN(run_backward)(TGL_PICK(TGL_FN(softmax_backward_block),
                                  TGL_FN(softmax_backward_block_avx512)),
                         y, ldy, dy, ldd, dx, rows, cols, num_threads);
}

void TGL_FN(tgl_log_softmax_backward)(const T *y, int64_t ldy, const T *dy, int64_t ldd, T *dx,
                                      int64_t rows, int64_t cols, int num_threads) {
    TGL_FN(run_backward)(TGL_FN(log_softmax_backward_block), y, ldy, dy, ldd, dx, rows, cols,
                         num_threads);
}

int64_t TGL_FN(tgl_cross_entropy)(const T *logits, int64_t ldl, const int64_t *targets,
                                  int64_t rows, int64_t cols, int64_t ignore_index, double scale,
                                  double *losses, T *dlogits, int num_threads) {
    const int nt = threads_for(rows, cols, num_threads);
    const int64_t grain = grain_for(rows, cols, nt);
    const int stream = dlogits && (double)rows * (double)cols * sizeof(T) >= STREAM_MIN_BYTES;
    double (*row_fn)(const T *, int64_t, int64_t, double, T *, int) =
        TGL_PICK(TGL_FN(cross_entropy_row), TGL_FN(cross_entropy_row_avx512));
    int64_t bad = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, grain) if (nt > 1) reduction(+ : bad)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = targets[r];
        T *g = dlogits ? dlogits + r * cols : NULL;
        if (t == ignore_index || t < 0 || t >= cols) {
            /* Ignored row: no loss, no gradient. An out-of-range target (which the bridge
             * never lets through) is counted and never used as an index. */
            const int out_of_range = t != ignore_index;
            bad += out_of_range;
            losses[r] = out_of_range ? NAN : 0.0;
            if (g) memset(g, 0, (size_t)cols * sizeof(T));
            continue;
        }
        losses[r] = row_fn(logits + r * ldl, cols, t, scale, g, stream);
    }
    return bad;
}

/* ---- reference loops ---- */

void TGL_FN(tgl_softmax_reference)(const T *x, T *y, int64_t rows, int64_t cols,
                                   int log_output) {
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * cols;
        T *yr = y + r * cols;
        T m = -INFINITY; /* pass 1: the max */
        for (int64_t i = 0; i < cols; i++)
            if (xr[i] > m) m = xr[i];
        double s = 0.0; /* pass 2: the sum of exp(x - m) */
        for (int64_t i = 0; i < cols; i++) s += (double)LIBM_EXP(xr[i] - m);
        for (int64_t i = 0; i < cols; i++) /* pass 3: write */
            yr[i] = log_output ? (xr[i] - m) - (T)log(s) : (T)(LIBM_EXP(xr[i] - m) / s);
    }
}

void TGL_FN(tgl_vexp)(const T *x, T *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = VEXP(x[i]);
}
