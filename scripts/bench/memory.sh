#!/usr/bin/env bash
# The daemon's memory on the full-size model, as an operator sizes a host by it: a release
# blip-captiond (default options but --precision) is started by hand, and its VmRSS and VmHWM
# (/proc/PID/status) are read
#   1. at READY (health answers SERVING: model mapped, quick warm-up done),
#   2. once the weights are copied into memory the daemon owns (its log says so, after READY),
#   3. after 3 beam-3 captions one at a time, then after 8 at concurrency 4 (the default
#      --max-batch 4: four captions decoding together), each request a distinct copy of the image
#      (blip-caption bench's default, so every caption runs the vision encoder and fills the
#      feature cache as new images would).
# VmHWM is the peak resident set since the start: what a memory limit must allow.
#
bf16 ...]       (default: fp32 bf16)|bf16 ...]       (default: fp32 bf16)
#
# Environment: MODEL (default .build/bench/blip-large-random; scripts/bench/run.sh makes it, or
# scripts/reference/make_full_size_model.py --out DIR), IMAGE (default .build/bench/chelsea_1024x768.jpg,
# made by run.sh; any JPEG or PNG), CONFIG (default release), SCRATCH (swift build --scratch-path).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-.build/bench/blip-large-random}
IMAGE=${IMAGE:-.build/bench/chelsea_1024x768.jpg}
CONFIG=${CONFIG:-release}
scratch=()
[ -n "${SCRATCH:-}" ] && scratch=(--scratch-path "$SCRATCH")
for f in "$MODEL/config.json" "$IMAGE"; do
    [ -e "$f" ] || { echo "memory.sh: $f is missing (see the header of this script)" >&2; exit 2; }
done
swift build -c "$CONFIG" "${scratch[@]}" --product blip-captiond >&2
swift build -c "$CONFIG" "${scratch[@]}" --product blip-caption >&2
BIN=$(swift build -c "$CONFIG" "${scratch[@]}" --show-bin-path)

gib() { awk -v k="$1" 'BEGIN { printf "%.2f GiB", k / 1048576 }'; }
sample() {  # "VmRSS VmHWM" in KiB
    awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$1/status"
}
echo "memory.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; model $MODEL; image $IMAGE"
for weights in "${@:-fp32 bf16}"; do
    for w in $weights; do
        dir=$(mktemp -d)
        sock=$dir/blip.sock
        "$BIN/blip-captiond" --model "$MODEL" --socket "$sock" --socket-mode 0600 --queue-depth 64 --precision "$w" 2> "$dir/log" &
        pid=$!
        trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
        until "$BIN/blip-caption" health --socket "$sock" > /dev/null 2>&1; do
            kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
            sleep 0.1
        done
        read -r ready_rss ready_hwm < <(sample "$pid")
        for _ in $(seq 600); do grep -q 'weights copied into memory' "$dir/log" && break; sleep 0.1; done
        grep -q 'weights copied into memory' "$dir/log" || { echo "memory.sh: the daemon never said its weights were copied" >&2; cat "$dir/log" >&2; exit 1; }
        read -r copied_rss copied_hwm < <(sample "$pid")
        "$BIN/blip-caption" bench --socket "$sock" -n 3 -c 1 "$IMAGE" > "$dir/bench1"
        read -r one_rss one_hwm < <(sample "$pid")
        "$BIN/blip-caption" bench --socket "$sock" -n 8 -c 4 "$IMAGE" > "$dir/bench4"
        read -r four_rss four_hwm < <(sample "$pid")
        cache=$("$BIN/blip-caption" info --socket "$sock" | sed -n 's/^cache: *//p')
        echo "--precision $w"
        echo "  at READY:                         RSS $(gib "$ready_rss"), peak $(gib "$ready_hwm")"
        echo "  weights copied ($(grep -o 'weights copied[^)]*)' "$dir/log")):"
        echo "                                    RSS $(gib "$copied_rss"), peak $(gib "$copied_hwm")"
        echo "  after 3 captions, 1 at a time:    RSS $(gib "$one_rss"), peak $(gib "$one_hwm") ($(grep -o 'feature cache hits.*' "$dir/bench1" | cut -c1-30))"
        echo "  after 8 more, 4 at a time:        RSS $(gib "$four_rss"), peak $(gib "$four_hwm") = $(awk -v k="$four_hwm" 'BEGIN { printf "%.2f GB", k * 1024 / 1e9 }') ($(grep -o 'feature cache hits.*' "$dir/bench4" | cut -c1-30))"
        echo "  feature cache: $cache"
        kill -TERM "$pid"; wait "$pid" || true
        trap - EXIT
        rm -rf "$dir"
    done
done
