#!/usr/bin/env bash
# Soak: blip-captiond on the tiny-a fixture model, CLIENTS concurrent clients for MINUTES, driven by
# `blip-caption bench` in batches (each batch opens fresh connections). Records requests, errors by
# code, the daemon's RSS / fd count / threads at start and end (and their peak), and latency
# percentiles (per batch from bench; over the whole run from the daemon's own Info counters).
# Beside them runs one hostile client that pipelines requests and never reads
# (scripts/hostile_client.py; SOAK_HOSTILE=0 leaves it out): the well-behaved clients must see no
# errors, and the daemon disconnects the hostile one each time it stops draining.
#
#   scripts/soak.sh [MINUTES] [CLIENTS]        (defaults: 10 minutes, 8 clients)
# Needs `swift build` first (uses .build/debug/blip-captiond and blip-caption).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
clients=${2:-8}
batch=${SOAK_BATCH:-400}
image=${SOAK_IMAGE:-Tests/Fixtures/images/rocket.png}
bin=.build/debug
dir=$(mktemp -d /tmp/blip-soak.XXXXXX)
sock=$dir/blip.sock
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

OPENBLAS_NUM_THREADS=1 $bin/blip-captiond --model Tests/Fixtures/models/tiny-a --socket "$sock" --queue-depth 64 2>"$dir/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && $bin/blip-caption health --socket "$sock" >/dev/null 2>&1 && break; sleep 0.2; done

sample() {  # rss_kib fds threads
    echo "$(awk '/^VmRSS/{print $2}' /proc/$pid/status) $(ls /proc/$pid/fd | wc -l) $(awk '/^Threads/{print $2}' /proc/$pid/status)"
}
read -r rss0 fd0 th0 < <(sample)
peak_rss=$rss0; peak_fd=$fd0
echo "soak: $minutes min, $clients clients, batches of $batch, image $image, daemon pid $pid"
echo "start: RSS ${rss0} KiB, fds $fd0, threads $th0"
hostile_pid=
if [ "${SOAK_HOSTILE:-1}" != 0 ]; then
    python3 scripts/hostile_client.py "$sock" $((minutes * 60)) > "$dir/hostile.log" 2>&1 &
    hostile_pid=$!
fi

end=$(( $(date +%s) + minutes * 60 ))
total=0; failed_batches=0; n=0
declare -A errors=()
while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    out=$($bin/blip-caption bench --socket "$sock" -n "$batch" -c "$clients" "$image" 2>&1) || failed_batches=$((failed_batches + 1))
    total=$((total + batch))
    line=$(grep '^errors' <<<"$out" | sed 's/^errors //')
    if [ "$line" != "none" ]; then
        IFS=',' read -ra parts <<<"$line"
        for p in "${parts[@]}"; do set -- $p; errors[$1]=$(( ${errors[$1]:-0} + $2 )); done
    fi
    read -r rss fd th < <(sample)
    [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
    [ "$fd" -gt "$peak_fd" ] && peak_fd=$fd
    if (( n % 10 == 1 )); then
        echo "batch $n: $(grep '^latency' <<<"$out"); RSS $rss KiB, fds $fd, threads $th"
    fi
done
if [ -n "$hostile_pid" ]; then
    wait "$hostile_pid" || true
    cat "$dir/hostile.log"
    echo "daemon disconnected non-reading clients $(grep -c 'client stopped reading' "$dir/daemon.log" || true) times"
fi
sleep 0.5
read -r rss1 fd1 th1 < <(sample)
echo "end:   RSS ${rss1} KiB, fds $fd1, threads $th1 (peak RSS $peak_rss KiB, peak fds $peak_fd)"
echo "requests $total in $n batches; failed batches $failed_batches"
if [ ${#errors[@]} -eq 0 ]; then echo "errors none"; else for k in "${!errors[@]}"; do echo "errors $k ${errors[$k]}"; done; fi
echo "daemon counters (Info):"
$bin/blip-caption info --socket "$sock" 2>&1 | grep -E '^(uptime|latency|requests|limits):' | sed 's/^/  /'
kill -TERM $pid; wait $pid; rc=$?
echo "daemon exit status $rc; log lines $(wc -l < "$dir/daemon.log"), errors in log: $(grep -cvE 'OK in|open \(|closed \(|loading|loaded|listening|warm|serving|stopp|exiting|now|Info OK' "$dir/daemon.log" || true)"
[ ${#errors[@]} -eq 0 ] && [ "$failed_batches" -eq 0 ]
