#!/usr/bin/env bash
# Daemon throughput: `blip-caption bench` at concurrency 1, 2, 4, 8 against a release blip-captiond on
# the full-size model (default decoding: beam 3, at most 20 tokens), after one warm-up request. Each
# request is a distinct copy of the image (bench's default), so the feature cache answers none and
# the rate is that of whole captions; bench reports the cache hits it saw.
#
#   scripts/bench/throughput.sh [ROUNDS]    # requests per level = ROUNDS × concurrency (default 3)
#
# Environment: MODEL (default .build/bench/blip-large-random: run scripts/bench/run.sh once to make
# it), IMAGE (default .build/bench/chelsea_1024x768.jpg, made by run.sh), LEVELS (default "1 2 4 8"),
# MAX_BATCH (the daemon's --max-batch, default 4; 1 = one caption at a time, the comparison).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
MODEL=${MODEL:-.build/bench/blip-large-random}
IMAGE=${IMAGE:-.build/bench/chelsea_1024x768.jpg}
LEVELS=${LEVELS:-"1 2 4 8"}
MAX_BATCH=${MAX_BATCH:-4}
for f in "$MODEL/config.json" "$IMAGE"; do
    [ -e "$f" ] || { echo "throughput.sh: $f is missing: run scripts/bench/run.sh once (it makes both)" >&2; exit 2; }
done

CONFIG=${CONFIG:-release}
swift build -c "$CONFIG" --product blip-captiond >&2
swift build -c "$CONFIG" --product blip-caption >&2
BIN=$(swift build -c "$CONFIG" --show-bin-path)
DIR=$(mktemp -d)
SOCK=$DIR/blip.sock
"$BIN/blip-captiond" --model "$MODEL" --socket "$SOCK" --socket-mode 0600 --queue-depth 64 --max-batch "$MAX_BATCH" 2> "$DIR/daemon.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
until [ -S "$SOCK" ] && "$BIN/blip-caption" health --socket "$SOCK" > /dev/null 2>&1; do
    kill -0 $PID 2>/dev/null || { cat "$DIR/daemon.log" >&2; exit 1; }
    sleep 0.2
done
"$BIN/blip-caption" bench --socket "$SOCK" -n 1 -c 1 "$IMAGE" > /dev/null  # warm-up request
echo "blip-captiond --max-batch $MAX_BATCH, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
for c in $LEVELS; do
    echo "== concurrency $c"
    "$BIN/blip-caption" bench --socket "$SOCK" -n $((ROUNDS * c)) -c "$c" "$IMAGE"
done
