/* The portable and the AVX2 + FMA GEMM micro-kernels, written once for an element type T:
 * gemm.c includes this file once per type with T and SFX set (float/f32, double/f64), as
 * softmax.c does with softmax_impl.h. Read it as ordinary C with T standing for the type.
 *
 * Every micro-kernel has the signature described in gemm.c ("Micro-kernels"). The portable one
 * comes first: it is the reference the AVX2 and AVX-512 (gemm_x86_kernels.h) kernels are
 * tested against, and what runs on CPUs without either. */
#define PORT_MR TGL_FN(PORT_MR)
#define PORT_NR TGL_FN(PORT_NR)
#define VPORT TGL_FN(vport)
#define VLPORT ((int)(sizeof(VPORT) / sizeof(T)))

/* The C-tile update for the kernels that go through a small stack tile at the edges:
 * c = alpha * tile + beta * c for the valid mr x nr part (c is not read when beta == 0). */
static TGL_ALWAYS_INLINE void TGL_FN(store_tile)(const T *tile, int tile_nr, T *c, int64_t ldc, T alpha,
                                      T beta, int mr, int nr) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            T t = alpha * tile[i * tile_nr + j];
            T *cij = &c[i * ldc + j];
            *cij = (beta == (T)0) ? t : t + beta * *cij;
        }
}

/* ---------------------------------------------------------------- portable (vector ext.) */
/* 16-byte vectors (GCC/Clang vector extensions): SSE2 on any x86-64, NEON on ARM; no target
 * flags needed. Two vectors per row of the tile.
 *
 * Note: the portable kernel computes a*b + acc as two roundings (no FMA contraction is forced);
 * GCC may contract it to an FMA on targets that have one (-ffp-contract=fast is GCC's default
 * for GNU C). Either is within the usual GEMM error. */
static void TGL_FN(ukr_portable)(int64_t kc, const T *ap, int64_t rsa, const T *bp,
                                 int64_t ldbp, T *c, int64_t ldc, T alpha, T beta, int mr,
                                 int nr) {
    (void)rsa; /* this path always packs A */
    VPORT acc[PORT_MR][2];
    for (int i = 0; i < PORT_MR; i++) acc[i][0] = acc[i][1] = (VPORT){0};
    for (int64_t p = 0; p < kc; p++) {
        VPORT b0, b1;
        memcpy(&b0, bp, sizeof b0);
        memcpy(&b1, bp + VLPORT, sizeof b1);
        for (int i = 0; i < PORT_MR; i++) {
            T av = ap[i];
            acc[i][0] += av * b0;
            acc[i][1] += av * b1;
        }
        ap += PORT_MR;
        bp += ldbp;
    }
    if (mr == PORT_MR && nr == PORT_NR) {
        for (int i = 0; i < PORT_MR; i++)
            for (int v = 0; v < 2; v++) {
                T *cp = c + i * ldc + v * VLPORT;
                VPORT r = alpha * acc[i][v];
                if (beta != (T)0) {
                    VPORT old;
                    memcpy(&old, cp, sizeof old);
                    r += beta * old;
                }
                memcpy(cp, &r, sizeof r);
            }
    } else {
        T tile[PORT_MR * PORT_NR];
        for (int i = 0; i < PORT_MR; i++) {
            memcpy(tile + i * PORT_NR, &acc[i][0], sizeof(VPORT));
            memcpy(tile + i * PORT_NR + VLPORT, &acc[i][1], sizeof(VPORT));
        }
        TGL_FN(store_tile)(tile, PORT_NR, c, ldc, alpha, beta, mr, nr);
    }
}

#undef PORT_MR
#undef PORT_NR
#undef VPORT
#undef VLPORT

#if TGL_X86
/* ---------------------------------------------------------------- AVX2 + FMA */
/* 16 ymm registers: MR x NR = 6 x 2 vectors (12 accumulators + 2 B + 1 broadcast = 15). */
#define AVX2_MR TGL_FN(AVX2_MR)
#define AVX2_NR TGL_FN(AVX2_NR)
#define VL256 TGL_FN(vl256)
#define V256 TGL_FN(v256)

static TAVX2 void TGL_FN(ukr_avx2)(int64_t kc, const T *ap, int64_t rsa, const T *bp,
                                   int64_t ldbp, T *c, int64_t ldc, T alpha, T beta, int mr,
                                   int nr) {
    (void)rsa; /* this path always packs A */
    V256 acc[AVX2_MR][2];
    for (int i = 0; i < AVX2_MR; i++) acc[i][0] = acc[i][1] = TGL_FN(setzero256)();
TGL_UNROLL_P
    for (int64_t p = 0; p < kc; p++) {
        V256 b0 = TGL_FN(loadu256)(bp), b1 = TGL_FN(loadu256)(bp + VL256);
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            V256 av = TGL_FN(broadcast256)(ap + i);
            acc[i][0] = TGL_FN(fmadd256)(av, b0, acc[i][0]);
            acc[i][1] = TGL_FN(fmadd256)(av, b1, acc[i][1]);
        }
        ap += AVX2_MR;
        bp += ldbp;
    }
    V256 va = TGL_FN(set1_256)(alpha);
    if (mr == AVX2_MR && nr == AVX2_NR) {
        V256 vb = TGL_FN(set1_256)(beta);
        for (int i = 0; i < AVX2_MR; i++)
            for (int v = 0; v < 2; v++) {
                T *cp = c + i * ldc + VL256 * v;
                V256 r = TGL_FN(mul256)(va, acc[i][v]);
                if (beta != (T)0) r = TGL_FN(fmadd256)(vb, TGL_FN(loadu256)(cp), r);
                TGL_FN(storeu256)(cp, r);
            }
    } else {
        T tile[AVX2_MR * AVX2_NR];
        for (int i = 0; i < AVX2_MR; i++) {
            TGL_FN(storeu256)(tile + i * AVX2_NR, acc[i][0]);
            TGL_FN(storeu256)(tile + i * AVX2_NR + VL256, acc[i][1]);
        }
        TGL_FN(store_tile)(tile, AVX2_NR, c, ldc, alpha, beta, mr, nr);
    }
}

#undef AVX2_MR
#undef AVX2_NR
#undef VL256
#undef V256
#endif /* TGL_X86 */
