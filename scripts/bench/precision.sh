#!/usr/bin/env bash
# Precision benchmark: this engine in fp32, bf16 and int8 (blip-bench --precision-report) beside
# PyTorch (fp32, bf16) and OpenVINO (fp32, NNCF int8) on the same full-size model and images, in one
# run, then the table of docs/performance.md with the issue's targets.
#
#   scripts/bench/precision.sh [RUNS]     # RUNS: timed repetitions, median reported (default 3)
#
# Environment: MODEL (default .build/bench/blip-large-random, generated if missing), IMAGES (a folder
# of .jpg/.png photos; default: six fixture photos), CONFIG (default release), THREADS (default 2),
# PYTHON (a Python with torch, transformers, Pillow, openvino and nncf; default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
WORK=.build/bench
MODEL=${MODEL:-$WORK/blip-large-random}
CONFIG=${CONFIG:-release}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
mkdir -p "$WORK"

if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "generating a full-size random-weight model in $MODEL" >&2
    "$PYTHON" scripts/reference/make_full_size_model.py --out "$MODEL"
fi
if [ -z "${IMAGES:-}" ]; then
    IMAGES=$WORK/precision-images
    mkdir -p "$IMAGES"
    for f in chelsea_q95_444.jpg rocket.png astronaut_q90_420.jpg coffee_progressive.jpg motorcycle_q75_422.jpg gray_camera.jpg; do
        cp Tests/Fixtures/images/$f "$IMAGES/"
    done
fi

swift build -c "$CONFIG" --product blip-bench >&2
BENCH=$(swift build -c "$CONFIG" --show-bin-path)/blip-bench
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS BLIP_THREADS=$THREADS

echo "engine: fp32, bf16, int8 (runs=$RUNS)…" >&2
"$BENCH" --model "$MODEL" --precision-report "$IMAGES" --runs "$RUNS" > "$WORK/precision-engine.json"
echo "peers: PyTorch fp32/bf16, OpenVINO fp32/int8 (runs=$RUNS)…" >&2
"$PYTHON" scripts/bench/precision_peers.py --model "$MODEL" --images "$IMAGES" --runs "$RUNS" --threads "$THREADS" \
    > "$WORK/precision-peers.json"

date -u +"%Y-%m-%d %H:%M UTC"
"$PYTHON" scripts/bench/precision_table.py --engine "$WORK/precision-engine.json" --peers "$WORK/precision-peers.json"
