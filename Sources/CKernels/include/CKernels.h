#pragma once
#include <stddef.h>

// A float32 GEMM for products by constant weights (the vision encoder's linear layers):
// C (m, n) = A (m, k) · Wᵀ with W (n, k) row-major as PyTorch stores it, W packed once into
// 16-column panels, [ceil(n/16)][k][16] (columns past n zero). AVX2 + FMA 6×16 micro-kernel;
// K is blocked in 256s, A is packed per call into 6-row panels on the calling thread.
//
// Every output element is the same sequence of operations whatever the column range a call
// covers and wherever the row sits in a block: per 256-long K block, one fused multiply-add
// chain in k order, added to the element in block order. Splitting the columns between threads
// on panel boundaries therefore gives bit-identical results.

/// 1 when this CPU runs the kernels (AVX2 and FMA), else 0: then nothing else here may be called.
int blip_gemm_available(void);

/// Columns per panel (16): column ranges given to blip_gemm_packed start on a multiple of this.
long blip_gemm_panel_width(void);

/// Floats the packed form of an (n, k) weight takes.
size_t blip_gemm_packed_count(long n, long k);

/// Packs panels [panel0, panel1) of w (n, k), row-major, into packed (blip_gemm_packed_count
/// floats); disjoint panel ranges may be packed on different threads.
void blip_gemm_pack(const float *w, long n, long k, long panel0, long panel1, float *packed);

/// C[:, col0..<col1] = A · Wᵀ[:, col0..<col1], plus bias[col] when bias is not NULL, plus what C
/// holds when accumulate is non-zero: c = ((c_old + bias) + block_0) + block_1 + ….
/// a: (m, k) with row stride lda; c: row stride ldc; col0 a multiple of 16, col1 <= n.
/// Uses a per-thread scratch buffer of 6 × 256 × 512 floats at most (allocated on first use).
void blip_gemm_packed(long m, long n, long k, const float *a, long lda, const float *packed,
                      long col0, long col1, const float *bias, int accumulate, float *c, long ldc);

/// Runs 12 independent chains of `iterations` 8-lane fused multiply-adds (192 flops per
/// iteration) from registers only: what the FMA units can do, for the benchmark's peak probe.
/// Returns a value to keep the work from being optimised away.
float blip_fma_probe(long iterations);
