#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (a nested SwiftPM package, built with
# --sanitize=fuzzer --sanitize=address into fuzz/.build) and runs each for SECONDS (default 60)
# from the committed seeds in fuzz/corpus/<target>/. New inputs go to fuzz/.build/corpus/<target>/
# (never into the committed seeds); crashes to fuzz/.build/artifacts/. Prints, per target, the
# executions, coverage (libFuzzer's cov:/ft:) and corpus size, and exits non-zero if any crashed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# FUZZ_TIMEOUT (seconds per input, default 10) and FUZZ_RSS_MB (default 4096) set libFuzzer's
# -timeout and -rss_limit_mb; the image targets run the daemon's own limits, so e.g.
# FUZZ_TIMEOUT=3 FUZZ_RSS_MB=768 makes an input that costs seconds or ~700 MiB a finding
# (issue 13's scan bomb and 1 × 40,000,000 PNG did; since issue 22 the pixel limit is Pillow's 178,956,970,
# so an input at the limit legitimately holds ~540 MB to 1.6 GB: keep FUZZ_RSS_MB above that). The seeds scan-bomb-*, progressive-100scans.jpg,
# tall-* and wide-* are HostileImages' output (Tests/BLIPTestSupport/HostileImages.swift).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzFrame FuzzCaptionRequest FuzzJPEG FuzzPNG FuzzImage FuzzEXIF FuzzSafeTensors FuzzTokenizer FuzzCheckpoint)

echo "building ${targets[*]} (fuzzer + address sanitizer)…"
# swiftc 6.3 drops the coverage instrumentation when -sanitize=fuzzer comes with -sanitize=address
# (the Swift code then gives libFuzzer no feedback: "cov: 0", every seed but one discarded); asking
# for it explicitly restores it.
coverage=(-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
for t in "${targets[@]}"; do
    swift build --package-path fuzz --sanitize=fuzzer --sanitize=address "${coverage[@]}" -j 2 --product "$t" 2>&1 | grep -E "error|warning: unre" && exit 1
done
bin=$(swift build --package-path fuzz --sanitize=fuzzer --sanitize=address "${coverage[@]}" --show-bin-path)

# Swift's runtime keeps metadata for ever: leak reports would be noise.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
status=0
printf '%-20s %12s %10s %8s %8s %s\n' target executions exec/s cov ft result
for t in "${targets[@]}"; do
    work=fuzz/.build/corpus/$t
    artifacts=fuzz/.build/artifacts/$t
    mkdir -p "$work" "$artifacts"
    log=fuzz/.build/$t.log
    "$bin/$t" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="${FUZZ_RSS_MB:-4096}" -timeout="${FUZZ_TIMEOUT:-10}" \
        -artifact_prefix="$artifacts/" "$work" "fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
    if [ $rc -eq 0 ]; then result=ok; else result="CRASH (see $log, $artifacts)"; status=1; fi
    printf '%-20s %12s %10s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
