#!/usr/bin/env bash
# What several callers can gain on this machine's vision encoder (≈80% of a caption), whatever the
# scheme: one process encoding on every thread, against as many single-thread processes as there
# are threads encoding side by side (no shared state, no joins — what encode lanes or batched
# encodes could reach at best). Per precision: images/s of each and their ratio.
#
#   scripts/bench/encode_ceiling.sh [fp32|bf16|int8 ...]     (default: fp32 bf16 int8)
#
# Environment: MODEL (default .build/bench/blip-large-random), IMAGE (default a fixture photo),
# RUNS (timed encodes per process, median; default 5), THREADS (default: the CPUs of this process),
# CONFIG (default release), SCRATCH (swift build --scratch-path).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-.build/bench/blip-large-random}
IMAGE=${IMAGE:-Tests/Fixtures/images/chelsea_q95_444.jpg}
RUNS=${RUNS:-5}
THREADS=${THREADS:-$(nproc)}
CONFIG=${CONFIG:-release}
scratch=()
[ -n "${SCRATCH:-}" ] && scratch=(--scratch-path "$SCRATCH")
[ -e "$MODEL/config.json" ] || { echo "encode_ceiling.sh: $MODEL/config.json is missing (scripts/reference/make_full_size_model.py --out DIR)" >&2; exit 2; }
swift build -c "$CONFIG" "${scratch[@]}" --product blip-bench >&2
BENCH=$(swift build -c "$CONFIG" "${scratch[@]}" --show-bin-path)/blip-bench

vision_s() {  # THREADS PRECISION → median seconds of one vision encode
    BLIP_THREADS=$1 "$BENCH" --model "$MODEL" --image "$IMAGE" --only vision --runs "$RUNS" --precision "$2" --no-probe 2>/dev/null \
        | tail -1 | sed -n 's/.*"vision_s":\([0-9.e-]*\).*/\1/p'
}

echo "encode_ceiling.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $THREADS threads; model $MODEL; median of $RUNS encodes"
for precision in ${@:-fp32 bf16 int8}; do
    together=$(vision_s "$THREADS" "$precision")
    dir=$(mktemp -d)
    for i in $(seq "$THREADS"); do vision_s 1 "$precision" > "$dir/$i" & done
    wait
    cat "$dir"/* | awk -v p="$precision" -v t="$together" -v n="$THREADS" '
        { rate += 1 / $1; each = each sprintf(" %.2f", $1) }
        END { one = 1 / t
              printf "%s: one process on %d threads %.3f s = %.3f images/s; %d single-thread processes side by side%s s = %.3f images/s; ratio %.2f\n", p, n, t, one, n, each, rate, rate / one }'
    rm -rf "$dir"
done
