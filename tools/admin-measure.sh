#!/usr/bin/env bash
# Measures ringstore-admin on a store built from one-event appends over many streams:
# verify and compact throughput (MB/s of input), blocks per stream, and the $all read
# rate (`ringstore export`, events/s) before and after compacting.
#
#   tools/admin-measure.sh [DIR] [EVENTS] [STREAMS]      # defaults: a new temporary folder, 1000000, 10000
#
# The store is DIR/store (kept afterwards; delete it yourself). The design's full
# measurement uses 100,000 streams and at least 1 GiB (e.g. EVENTS=5000000 STREAMS=100000);
# run it on a quiet machine, with the page cache warm or dropped as you intend to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-$(mktemp -d)}
EVENTS=${2:-1000000}
STREAMS=${3:-10000}
STORE="$DIR/store"
swift build -c release --product ringstore >/dev/null
swift build -c release --product ringstore-admin >/dev/null
BIN=.build/release

seconds() { date +%s.%N; }
# Wall time, CPU time and peak RSS of a command, when GNU time is there.
timed() {
  if [ -x /usr/bin/time ]; then /usr/bin/time -f "  (%e s wall, %U s user, %S s system, peak RSS %M KiB)" "$@"; else "$@"; fi
}
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

echo "== building $STORE: $EVENTS one-event appends over $STREAMS streams"
"$BIN/ringstore" demo --dir "$STORE" --events "$EVENTS" --streams "$STREAMS" --max-batch 1 >/dev/null
du -sh "$STORE"

allRate() {
  local start end count
  start=$(seconds)
  count=$("$BIN/ringstore" export --data "$STORE" | wc -l)
  end=$(seconds)
  echo "\$all via export: $count events, $(rate "$count" "$start" "$end") events/s"
}

echo "== before"
"$BIN/ringstore-admin" stats "$STORE" --top 0
allRate
timed "$BIN/ringstore-admin" verify "$STORE"

echo "== compact"
timed "$BIN/ringstore-admin" compact "$STORE"

echo "== after"
"$BIN/ringstore-admin" stats "$STORE" --top 0
allRate
timed "$BIN/ringstore-admin" verify "$STORE"
