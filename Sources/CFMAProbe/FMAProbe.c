// The FMA peak probe of FMAProbe.h. Compiled for baseline x86-64 with the AVX2 + FMA code under a
// target attribute, chosen at run time (blip_fma_available), so a portable build can still probe an
// AVX2 machine and never executes the probe elsewhere.
#include "FMAProbe.h"

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

int blip_fma_available(void) {
    // cpuid is slow under a hypervisor (a VM exit): ask once.
    static _Atomic int known = -1;
    int value = known;
    if (value < 0) known = value = cpu_has_avx2_fma();
    return value;
}

__attribute__((target("avx2,fma")))
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
int blip_fma_available(void) { return 0; }

float blip_fma_probe(long iterations) { (void)iterations; return 0; }

#endif
