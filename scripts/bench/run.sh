#!/usr/bin/env bash
# Side-by-side benchmark: this engine (blip-bench) and PyTorch transformers on the same full-size
# random-weight BLIP-large model and the same 1024×768 JPEG, in one run, then the comparison table
# of docs/performance.md.
#
#   scripts/bench/run.sh [RUNS]          # RUNS: repetitions per stage, median reported (default 5)
#
# Environment: MODEL (default .build/bench/blip-large-random, generated if missing, ~1.8 GB),
# CONFIG (swift build configuration, default release), THREADS (default 2), BASELINE (optional path
# of an earlier blip-bench binary, run in the same session and shown as a "before" column),
# THROUGHPUT (default 1: finish with scripts/bench/throughput.sh, the daemon at concurrency 1, 2, 4, 8
# with THROUGHPUT_ROUNDS rounds, default 3; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
WORK=.build/bench
MODEL=${MODEL:-$WORK/blip-large-random}
CONFIG=${CONFIG:-release}
THREADS=${THREADS:-2}
mkdir -p "$WORK"

if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "generating a full-size random-weight model in $MODEL" >&2
    python3 scripts/reference/make_full_size_model.py --out "$MODEL"
fi
IMAGE=$WORK/chelsea_1024x768.jpg
if [ ! -f "$IMAGE" ]; then
    python3 -c "
from PIL import Image
Image.open('Tests/Fixtures/images/chelsea_q95_444.jpg').convert('RGB').resize((1024, 768), Image.BICUBIC).save('$IMAGE', quality=90)"
fi

swift build -c "$CONFIG" --product blip-bench >&2
swift build -c "$CONFIG" --product blip-captiond >&2
BENCH=$(swift build -c "$CONFIG" --show-bin-path)/blip-bench
DAEMON=$(swift build -c "$CONFIG" --show-bin-path)/blip-captiond
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

# Start-up: separate processes, alternating, after one warm-up of each (warm page cache).
"$BENCH" --model "$MODEL" --load-only > /dev/null
python3 scripts/bench/pytorch_reference.py --model "$MODEL" --threads "$THREADS" --load-only > /dev/null
ENGINE_READY=() PYTORCH_READY=()
for i in 1 2 3; do
    "$BENCH" --model "$MODEL" --load-only > "$WORK/engine-ready-$i.json"
    python3 scripts/bench/pytorch_reference.py --model "$MODEL" --threads "$THREADS" --load-only > "$WORK/pytorch-ready-$i.json"
    ENGINE_READY+=("$WORK/engine-ready-$i.json") PYTORCH_READY+=("$WORK/pytorch-ready-$i.json")
done

# Daemon start-up: process start → READY=1 with the default (quick) warm-up, three runs after one
# uncounted one (warm page cache).
echo "daemon start → READY=1…" >&2
python3 scripts/bench/ready_time.py --binary "$DAEMON" --model "$MODEL" --runs 3 > "$WORK/engine-daemon-ready.json"

echo "engine stages (runs=$RUNS)…" >&2
"$BENCH" --model "$MODEL" --image "$IMAGE" --runs "$RUNS" > "$WORK/engine.json"
BASELINE_ARGS=()
if [ -n "${BASELINE:-}" ]; then
    echo "baseline engine stages (runs=$RUNS)…" >&2
    "$BASELINE" --model "$MODEL" --image "$IMAGE" --runs "$RUNS" --no-probe > "$WORK/baseline.json"
    BASELINE_ARGS=(--baseline "$WORK/baseline.json")
fi
echo "engine with bf16 decoder weights (runs=$RUNS)…" >&2
"$BENCH" --model "$MODEL" --image "$IMAGE" --runs "$RUNS" --no-probe --precision bf16 \
    --only greedy_step,beam3_step,batch4_step,captions > "$WORK/engine-bf16.json"
echo "PyTorch stages (runs=$RUNS)…" >&2
python3 scripts/bench/pytorch_reference.py --model "$MODEL" --image "$IMAGE" --runs "$RUNS" --threads "$THREADS" > "$WORK/pytorch.json"

date -u +"%Y-%m-%d %H:%M UTC"
python3 scripts/bench/report.py --config "$MODEL/config.json" --engine "$WORK/engine.json" --pytorch "$WORK/pytorch.json" \
    --engine-ready "${ENGINE_READY[@]}" --pytorch-ready "${PYTORCH_READY[@]}" \
    --daemon-ready "$WORK/engine-daemon-ready.json" --bf16 "$WORK/engine-bf16.json" \
    "${BASELINE_ARGS[@]}"

if [ "${THROUGHPUT:-1}" != 0 ]; then
    echo
    echo "daemon throughput (scripts/bench/throughput.sh ${THROUGHPUT_ROUNDS:-3})…" >&2
    MODEL="$MODEL" IMAGE="$IMAGE" CONFIG="$CONFIG" scripts/bench/throughput.sh "${THROUGHPUT_ROUNDS:-3}"
fi

if [ "${LOOP:-1}" != 0 ]; then
    echo
    echo "engine loop (blip-bench --loop: cached second prompt, three prompts, cancel mid-encode, 4 callers ÷ 1)…" >&2
    "$BENCH" --model "$MODEL" --image "$IMAGE" --loop | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("engine loop: second prompt on a cached image / first call = %.2f (%.2f s / %.2f s; target <= 0.3)" % (r["loop_cached_ratio"], r["loop_cached_second_prompt_s"], r["loop_first_call_s"]))
print("engine loop: three prompts in one call / one prompt = %.2f (%.2f s / %.2f s; target <= 1.3)" % (r["loop_three_prompts_ratio"], r["loop_three_prompts_s"], r["loop_one_prompt_s"]))
print("engine loop: cancel mid-encode to answer = %.3f s median, %.3f s max (target <= 0.3 s)" % (r["loop_cancel_to_answer_s"], r["loop_cancel_to_answer_max_s"]))
print("engine loop: 4 callers / 1 caller = %.2f (%.3f / %.3f images/s, %d lanes x %d threads; target >= 1.2)" % (r["loop_4_over_1"], r["loop_4_callers_images_per_s"], r["loop_1_caller_images_per_s"], r["loop_encode_lanes"], r["loop_threads_per_lane"]))
'
fi
