// The packed-weight GEMM of CKernels.h. Compiled for baseline x86-64 with the AVX2 + FMA code
// under a target attribute, chosen at run time (blip_gemm_available), so a portable build can
// still use it on an AVX2 machine and never executes it elsewhere.
#include "CKernels.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 6, NR = 16, KC = 256, MC_MAX = 516 };  // MC_MAX: a multiple of MR

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static int cpu_has_avx2_fma(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    // The OS saves the ymm registers (XCR0 bits 1 and 2).
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx >> 5) & 1;  // AVX2
}

int blip_gemm_available(void) {
    // cpuid is slow under a hypervisor (a VM exit): ask once.
    static _Atomic int known = -1;
    int value = known;
    if (value < 0) known = value = cpu_has_avx2_fma();
    return value;
}
#else
int blip_gemm_available(void) { return 0; }
#endif

long blip_gemm_panel_width(void) { return NR; }

size_t blip_gemm_packed_count(long n, long k) { return (size_t)((n + NR - 1) / NR) * NR * (size_t)k; }

static void pack_panel_scalar(const float *w, long n, long k, long p, long k0, float *dst) {
    long c0 = p * NR;
    long width = n - c0 < NR ? n - c0 : NR;
    for (long kk = k0; kk < k; kk++)
        for (long j = 0; j < NR; j++) dst[kk * NR + j] = j < width ? w[(size_t)(c0 + j) * k + kk] : 0.0f;
}

#if defined(__x86_64__)
// 8×8 transposes: eight rows' runs of 8 inputs become eight 8-wide runs of the panel, so every
// store fills whole cache lines (a scalar scatter is ~5× slower and packing sits on start-up).
__attribute__((target("avx2,fma")))
static void pack_panel_avx(const float *w, long k, long p, float *dst) {
    const float *rows = w + (size_t)p * NR * k;
    long kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        for (int half = 0; half < 2; half++) {
            const float *r = rows + (size_t)half * 8 * k + kk;
            __m256 r0 = _mm256_loadu_ps(r), r1 = _mm256_loadu_ps(r + k), r2 = _mm256_loadu_ps(r + 2 * k);
            __m256 r3 = _mm256_loadu_ps(r + 3 * k), r4 = _mm256_loadu_ps(r + 4 * k), r5 = _mm256_loadu_ps(r + 5 * k);
            __m256 r6 = _mm256_loadu_ps(r + 6 * k), r7 = _mm256_loadu_ps(r + 7 * k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + kk * NR + half * 8;
            _mm256_storeu_ps(d + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
    if (kk < k) pack_panel_scalar(w, (p + 1) * NR, k, p, kk, dst);
}
#endif

void blip_gemm_pack(const float *w, long n, long k, long panel0, long panel1, float *packed) {
    int vector = blip_gemm_available();
    for (long p = panel0; p < panel1; p++) {
        float *dst = packed + (size_t)p * k * NR;
#if defined(__x86_64__)
        if ((p + 1) * NR <= n && vector) { pack_panel_avx(w, k, p, dst); continue; }
#endif
        pack_panel_scalar(w, n, k, p, 0, dst);
    }
}

#if defined(__x86_64__)

// The per-thread buffer for packed A: MC_MAX × KC floats, freed when the thread exits.
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void make_scratch_key(void) { pthread_key_create(&scratch_key, free); }

static float *scratch(void) {
    pthread_once(&scratch_once, make_scratch_key);
    float *buffer = pthread_getspecific(scratch_key);
    if (!buffer) {
        // 16 floats of slack: pack_a's last 8-wide store of a panel runs 2 floats past it.
        buffer = aligned_alloc(64, sizeof(float) * (MC_MAX * KC + 16));
        if (!buffer) abort();
        pthread_setspecific(scratch_key, buffer);
    }
    return buffer;
}

#define AVX2_FMA __attribute__((target("avx2,fma")))

// A (mc, kc) block, row stride lda, into 6-row panels [mc/6][kc][6]; rows past mc are zeros.
// Full panels go 8 inputs at a time through an 8×8 transpose (two rows of zeros), each column
// stored 8 wide at a 6-float step, so the next store overwrites the two extra floats.
AVX2_FMA static void pack_a(const float *a, long lda, long mc, long kc, float *dst) {
    for (long i = 0; i < mc; i += MR) {
        long rows = mc - i < MR ? mc - i : MR;
        float *d = dst + i * kc;
        if (rows == MR) {
            const float *r0 = a + (i + 0) * lda, *r1 = a + (i + 1) * lda, *r2 = a + (i + 2) * lda;
            const float *r3 = a + (i + 3) * lda, *r4 = a + (i + 4) * lda, *r5 = a + (i + 5) * lda;
            long kk = 0;
            const __m256 zero = _mm256_setzero_ps();
            for (; kk + 8 <= kc; kk += 8) {
                __m256 x0 = _mm256_loadu_ps(r0 + kk), x1 = _mm256_loadu_ps(r1 + kk), x2 = _mm256_loadu_ps(r2 + kk);
                __m256 x3 = _mm256_loadu_ps(r3 + kk), x4 = _mm256_loadu_ps(r4 + kk), x5 = _mm256_loadu_ps(r5 + kk);
                __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
                __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
                __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                __m256 u4 = _mm256_shuffle_ps(t4, zero, 0x44), u5 = _mm256_shuffle_ps(t4, zero, 0xEE);
                __m256 u6 = _mm256_shuffle_ps(t5, zero, 0x44), u7 = _mm256_shuffle_ps(t5, zero, 0xEE);
                _mm256_storeu_ps(d + 0 * MR, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(d + 1 * MR, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(d + 2 * MR, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(d + 3 * MR, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(d + 4 * MR, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(d + 5 * MR, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(d + 6 * MR, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(d + 7 * MR, _mm256_permute2f128_ps(u3, u7, 0x31));
                d += 8 * MR;
            }
            for (; kk < kc; kk++) {
                d[0] = r0[kk]; d[1] = r1[kk]; d[2] = r2[kk]; d[3] = r3[kk]; d[4] = r4[kk]; d[5] = r5[kk];
                d += MR;
            }
        } else {
            for (long kk = 0; kk < kc; kk++) {
                for (long r = 0; r < MR; r++) d[r] = r < rows ? a[(i + r) * lda + kk] : 0.0f;
                d += MR;
            }
        }
    }
}


// One 6×16 tile over a K block: a [kc][6], b [kc][16]. `first`: the tile's first K block, where
// the bias and (accumulate) the old C come in. Tiles cut by the edge of C (mr < 6 or nr < 16) run
// the same arithmetic and store only their part. `prefetch`: part of the next B panel to bring
// into L2 meanwhile, or NULL.
static inline __attribute__((always_inline)) AVX2_FMA
void tile(long kc, const float *a, const float *b, float *c, long ldc, int first, const float *bias,
          int accumulate, long mr, long nr, const float *prefetch) {
    for (long r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (long kk = 0; kk < kc; kk++) {
        if (prefetch && (kk & 3) == 0) _mm_prefetch((const char *)(prefetch + kk * 4), _MM_HINT_T1);
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 acc[2 * MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (mr == MR && nr == NR) {
        __m256 t0 = _mm256_setzero_ps(), t1 = t0;
        if (first && bias) { t0 = _mm256_loadu_ps(bias); t1 = _mm256_loadu_ps(bias + 8); }
        for (int r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 lo = acc[2 * r], hi = acc[2 * r + 1];
            if (!first) {
                lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
                hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);
            } else if (bias) {
                __m256 s0 = t0, s1 = t1;
                if (accumulate) { s0 = _mm256_add_ps(_mm256_loadu_ps(cr), s0); s1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), s1); }
                lo = _mm256_add_ps(s0, lo);
                hi = _mm256_add_ps(s1, hi);
            } else if (accumulate) {
                lo = _mm256_add_ps(_mm256_loadu_ps(cr), lo);
                hi = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi);
            }
            _mm256_storeu_ps(cr, lo);
            _mm256_storeu_ps(cr + 8, hi);
        }
    } else {
        // The same additions, one element at a time (IEEE single additions either way).
        float out[MR * NR] __attribute__((aligned(32)));
        for (int r = 0; r < MR; r++) {
            _mm256_store_ps(out + r * NR, acc[2 * r]);
            _mm256_store_ps(out + r * NR + 8, acc[2 * r + 1]);
        }
        for (long r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            for (long j = 0; j < nr; j++) {
                float v = out[r * NR + j];
                if (!first) v = cr[j] + v;
                else if (bias) v = (accumulate ? cr[j] + bias[j] : bias[j]) + v;
                else if (accumulate) v = cr[j] + v;
                cr[j] = v;
            }
        }
    }
}

AVX2_FMA
void blip_gemm_packed(long m, long n, long k, const float *a, long lda, const float *packed,
                      long col0, long col1, const float *bias, int accumulate, float *c, long ldc) {
    if (m <= 0 || col1 <= col0) return;
    if (k <= 0) {
        // No products: only the bias and the old C.
        for (long i = 0; i < m; i++)
            for (long j = col0; j < col1; j++) {
                float *e = c + i * ldc + j;
                *e = accumulate ? (bias ? *e + bias[j] : *e) : (bias ? bias[j] : 0.0f);
            }
        return;
    }
    (void)n;
    float *ap = scratch();
    // Row blocks of at most MC_MAX rows, each a multiple of MR except the last.
    long blocks = (m + MC_MAX - 1) / MC_MAX;
    long mc_step = ((m + blocks - 1) / blocks + MR - 1) / MR * MR;
    for (long pc = 0; pc < k; pc += KC) {
        long kc = k - pc < KC ? k - pc : KC;
        for (long ic = 0; ic < m; ic += mc_step) {
            long mc = m - ic < mc_step ? m - ic : mc_step;
            pack_a(a + ic * lda + pc, lda, mc, kc, ap);
            for (long jr = col0; jr < col1; jr += NR) {
                long nr = col1 - jr < NR ? col1 - jr : NR;
                const float *bp = packed + (size_t)(jr / NR) * k * NR + (size_t)pc * NR;
                const float *next = jr + NR < col1 ? bp + (size_t)k * NR : NULL;
                for (long ir = 0; ir < mc; ir += MR) {
                    long mr = mc - ir < MR ? mc - ir : MR;
                    long quarter = ir / MR;  // the first four tiles prefetch a quarter of the next panel each
                    const float *prefetch = next && quarter < 4 ? next + quarter * kc * 4 : NULL;
                    tile(kc, ap + ir * kc, bp, c + (ic + ir) * ldc + jr, ldc, pc == 0,
                         bias ? bias + jr : NULL, accumulate, mr, nr, prefetch);
                }
            }
        }
    }
}

AVX2_FMA
float blip_fma_probe(long iterations) {
    __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(1.00f), a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f);
    __m256 a3 = _mm256_set1_ps(1.03f), a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f);
    __m256 a6 = _mm256_set1_ps(1.06f), a7 = _mm256_set1_ps(1.07f), a8 = _mm256_set1_ps(1.08f);
    __m256 a9 = _mm256_set1_ps(1.09f), a10 = _mm256_set1_ps(1.10f), a11 = _mm256_set1_ps(1.11f);
    for (long i = 0; i < iterations; i++) {
        // In assembly so the compiler can neither merge the chains nor drop them.
        __asm__ volatile(
            "vfmadd231ps %[x], %[y], %[a0]\n\t" "vfmadd231ps %[x], %[y], %[a1]\n\t"
            "vfmadd231ps %[x], %[y], %[a2]\n\t" "vfmadd231ps %[x], %[y], %[a3]\n\t"
            "vfmadd231ps %[x], %[y], %[a4]\n\t" "vfmadd231ps %[x], %[y], %[a5]\n\t"
            "vfmadd231ps %[x], %[y], %[a6]\n\t" "vfmadd231ps %[x], %[y], %[a7]\n\t"
            "vfmadd231ps %[x], %[y], %[a8]\n\t" "vfmadd231ps %[x], %[y], %[a9]\n\t"
            "vfmadd231ps %[x], %[y], %[a10]\n\t" "vfmadd231ps %[x], %[y], %[a11]\n\t"
            : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5),
              [a6] "+x"(a6), [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9), [a10] "+x"(a10), [a11] "+x"(a11)
            : [x] "x"(x), [y] "x"(y));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    return _mm256_cvtss_f32(s);
}

#else

void blip_gemm_packed(long m, long n, long k, const float *a, long lda, const float *packed,
                      long col0, long col1, const float *bias, int accumulate, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)col0; (void)col1;
    (void)bias; (void)accumulate; (void)c; (void)ldc;
    abort();  // blip_gemm_available() is 0 here
}

float blip_fma_probe(long iterations) { (void)iterations; return 0; }

#endif
