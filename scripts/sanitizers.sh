#!/usr/bin/env bash
# The test suite under AddressSanitizer and ThreadSanitizer, each in its own scratch path so the
# ordinary .build is untouched:  scripts/sanitizers.sh [address|thread|all] [extra swift test args…]
#   e.g. scripts/sanitizers.sh thread --filter BLIPServerTests
# Prints one summary line per sanitizer and exits non-zero if either reported a problem.
set -uo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
shift || true
[ "$which" = all ] && which="address thread"
# Swift's runtime keeps metadata for ever: LeakSanitizer reports would be noise.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# ReliabilityTests run the sanitized daemon (built next to the tests) and skip their RSS bounds:
# ASan's quarantine and TSan's shadow memory make RSS meaningless.
export BLIP_SANITIZER=1
status=0
for s in $which; do
    case $s in address) path=.build-asan ;; thread) path=.build-tsan ;; *) echo "unknown sanitizer $s"; exit 2 ;; esac
    mkdir -p "$path"
    log=$path/sanitizer-test.log
    start=$(date +%s)
    swift test --sanitize="$s" --scratch-path "$path" -j 2 "$@" > "$log" 2>&1
    rc=$?
    reports=$(grep -cE '^(==[0-9]+==ERROR: (AddressSanitizer|ThreadSanitizer)|WARNING: ThreadSanitizer)' "$log" || true)
    summary=$(grep -E '^(✔|✘) Test run with' "$log" | tail -1)
    echo "$s: exit $rc, $reports sanitizer report(s), $(( $(date +%s) - start )) s; ${summary:-no test summary} (log: $log)"
    [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ] && status=1
done
exit $status
