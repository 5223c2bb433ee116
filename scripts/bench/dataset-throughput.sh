#!/usr/bin/env bash
# Captioning a dataset through the daemon: images/s with --concurrency 1 against the default (the
# daemon's encode lanes plus its decode batch, from Info), over 8 distinct images (no feature-cache
# hits), default decoding options. Prints the CPU, the daemon's schedule and one line per run.
#
#   scripts/bench/dataset-throughput.sh MODEL_DIR [BIN_DIR]
#     MODEL_DIR: a full-size model (scripts/reference/make_full_size_model.py)
#     BIN_DIR:   release builds of blip-captiond and blip-caption (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: $0 MODEL_DIR [BIN_DIR]}
bin=${2:-.build/release}
work=$(mktemp -d)
trap 'kill "$daemon" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
grep -m1 'model name' /proc/cpuinfo
echo "cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$work/images"
for name in astronaut_q90_420.jpg chelsea_q95_444.jpg coffee_progressive.jpg motorcycle_q75_422.jpg \
            gray_camera.jpg rocket.png rgba_astronaut.png gray_moon.png; do
  cp "Tests/Fixtures/images/$name" "$work/images/"
done
"$bin/blip-captiond" --model "$model" --socket "$work/blip.sock" 2>"$work/daemon.log" &
daemon=$!
for _ in $(seq 600); do "$bin/blip-caption" health --socket "$work/blip.sock" >/dev/null 2>&1 && break; sleep 0.5; done
"$bin/blip-caption" info --socket "$work/blip.sock" | grep -E 'schedule|engine'
# Each setting twice, alternating: the first run also pays for page faults on the weights.
for concurrency in 1 default 1 default; do
  flag=(); [ "$concurrency" = default ] || flag=(--concurrency "$concurrency")
  rm -f "$work"/images/*.txt
  echo "--concurrency $concurrency: $("$bin/blip-caption" caption --socket "$work/blip.sock" "${flag[@]}" --sidecar .txt "$work/images" 2>&1 >/dev/null | tail -1)"
done
