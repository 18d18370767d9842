#!/usr/bin/env bash
# Fuzz one of Ringstore's decoders with libFuzzer for a set time.
#
#   tools/fuzz/run.sh TARGET SECONDS        TARGET: journal-record | stream-block | header-slots | segment-summary | json-lines | all
#
# Builds the fuzz package (tools/fuzz, debug, -sanitize=fuzzer,address) and runs
# the target on its corpus: tools/fuzz/corpus/TARGET (kept in the repository)
# plus a scratch folder for what this run finds. With RINGSTORE_FUZZ_MERGE=1 the
# inputs that reach new code are merged back into the kept corpus afterwards.
# A crash, a hang (>10 s per input), an allocation over 512 MiB or a broken
# decoder promise stops the run with status 1 and leaves the input in
# $SCRATCH/artifacts. Environment: RINGSTORE_FUZZ_SCRATCH (default .build-fuzz
# at the repository root), RINGSTORE_FUZZ_JOBS (parallel fuzzing processes, default 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="${RINGSTORE_FUZZ_SCRATCH:-$root/.build-fuzz}"

usage() { echo "usage: $0 journal-record|stream-block|header-slots|segment-summary|json-lines|all SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
target="$1"
seconds="$2"
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

executable() {
    case "$1" in
        journal-record) echo FuzzJournalRecord ;;
        stream-block) echo FuzzStreamBlock ;;
        header-slots) echo FuzzHeaderSlots ;;
        segment-summary) echo FuzzSegmentSummary ;;
        json-lines) echo FuzzJSONLines ;;
        *) usage ;;
    esac
}

if [ "$target" = all ]; then
    for t in journal-record stream-block header-slots segment-summary json-lines; do "$0" "$t" "$seconds"; done
    exit 0
fi
binary="$scratch/debug/$(executable "$target")"

swift build --package-path "$here" --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld \
    2>&1 | grep -v "Cannot export local symbol" >&2

corpus="$here/corpus/$target"
work="$scratch/corpus-work/$target"
artifacts="$scratch/artifacts"
mkdir -p "$corpus" "$work" "$artifacts"
if [ -z "$(ls -A "$corpus")" ]; then
    RINGSTORE_FUZZ_WRITE_SEEDS="$corpus" "$binary"
fi

echo "fuzzing $target for $seconds s (corpus: $corpus)" >&2
status=0
jobs="${RINGSTORE_FUZZ_JOBS:-1}"
parallel=()
# Several jobs run as child processes that log to fuzz-N.log in the current folder.
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
(cd "$scratch" && "$binary" "$work" "$corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    "${parallel[@]}" -print_final_stats=1 -artifact_prefix="$artifacts/$target-") || status=$?

if [ "${RINGSTORE_FUZZ_MERGE:-0}" = 1 ] && [ $status -eq 0 ]; then
    "$binary" -merge=1 "$corpus" "$work" 2>&1 | tail -1 >&2
fi
exit $status
