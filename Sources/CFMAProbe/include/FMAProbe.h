#pragma once

// What the CPU's fused multiply-add units can do, for blip-bench's peak probe: the figure the
// engine's products are measured against.

/// 1 when this CPU runs the probe (AVX2 and FMA, and the OS saves the ymm registers), else 0: then
/// blip_fma_probe must not be called.
int blip_fma_available(void);

/// Runs 12 independent chains of `iterations` 8-lane fused multiply-adds (192 flops per
/// iteration) from registers only. Returns a value to keep the work from being optimised away.
float blip_fma_probe(long iterations);
