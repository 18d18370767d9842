#!/usr/bin/env bash
# Processor time per event, by thread, for the whole store or for the
# flush-limit probe: which thread the time beyond the probe's goes to.
#
#   Benchmarks/thread-cpu.sh store EVENTS [bench options...]
#       ringstore bench --events EVENTS --dir <temporary> [bench options...]
#       e.g. Benchmarks/thread-cpu.sh store 2000000 --streams 10000 --event-size 200 --writers 64 --warm-up
#   Benchmarks/thread-cpu.sh probe WRITERS
#       flush-limit-tasks DIR WRITERS 1 8 (8 s of one-record calls)
#
# `perf stat --per-thread -e task-clock` is attached to the process as soon as
# it has started, and reads each thread's processor time (user and system)
# when it exits. Threads are grouped by name: the concurrency pool (the
# appending tasks: the bench's loop, `EventStore.append` up to its suspension,
# resumed tasks), the flusher, the acknowledger, the splitter, the
# checkpointer, the segment mover, the rest. Each group's milliseconds are
# divided by the events: for `store`, EVENTS (the warm-up's one event per
# stream and the settle after the run are counted in the time, not in the
# events: a fraction of a percent with two million events over 10,000
# streams); for `probe`, its printed rate times 8 s.
#
# Binaries: $RINGSTORE (default .build/release/ringstore, built with
# `swift build -c release --product ringstore`); $PROBE (default: compiled
# from Benchmarks/flush-limit-tasks.swift with `swiftc -O` into the temporary
# folder). Needs `perf` (Debian: linux-perf) and permission to attach to one's
# own processes (root, or kernel.perf_event_paranoid at most 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mode=${1:-}
[[ $mode == store || $mode == probe ]] && [[ $# -ge 2 ]] || {
    sed -n '2,10p' "$0" >&2
    exit 2
}
shift
command -v perf >/dev/null || { echo "$0: needs perf (Debian: apt-get install linux-perf)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/data"

if [[ $mode == store ]]; then
    events=$1
    shift
    binary=${RINGSTORE:-$root/.build/release/ringstore}
    [[ -x $binary ]] || { echo "$0: no ringstore binary at $binary" >&2; exit 2; }
    "$binary" bench --events "$events" --dir "$work/data/store" "$@" >"$work/out.txt" 2>&1 &
else
    writers=$1
    probe=${PROBE:-}
    if [[ -z $probe ]]; then
        probe="$work/flush-limit-tasks"
        swiftc -O "$here/flush-limit-tasks.swift" -o "$probe"
    fi
    "$probe" "$work/data" "$writers" 1 8 >"$work/out.txt" 2>&1 &
fi
pid=$!
# `perf stat -p` counts the threads that exist when it attaches, so it waits
# for them: the store's splitter (started when the store opens, before the
# warm-up), or the probe's flusher and pool threads.
for _ in $(seq 200); do
    if [[ $mode == store ]]; then
        grep -qx rs-splitter /proc/"$pid"/task/*/comm 2>/dev/null && break
    else
        [[ $(ls /proc/"$pid"/task 2>/dev/null | wc -l) -ge 4 ]] && break
    fi
    sleep 0.05
done
perf stat --per-thread -e task-clock -p "$pid" -o "$work/stat.txt" 2>/dev/null || true
wait "$pid" || { cat "$work/out.txt" >&2; exit 1; }

if [[ $mode == probe ]]; then
    rate=$(awk '/^events\/s/ {sub(/,$/, "", $2); print $2}' "$work/out.txt")
    events=$(awk -v r="$rate" 'BEGIN {printf "%d", r * 8}')
    echo "probe, $writers writers: $rate events/s"
else
    echo "ringstore: $(grep -E '^events/s' "$work/out.txt" | tr -s ' ')"
fi
awk -v events="$events" '
    /task-clock/ {
        name = $1; sub(/-[0-9]+$/, "", name)
        if (name ~ /qos/) group = "pool"
        else if (name ~ /^rs-(flusher|acknowledger|splitter|checkpoint|mover)$/) group = substr(name, 4)
        else if (name == "flush-limit-tas") group = "flusher"  # the probe: its flusher and its idle main thread
        else group = "other"
        ms[group] += $2; total += $2
    }
    END {
        printf "processor time per event: %.2f µs\n", total * 1000 / events
        n = split("pool flusher acknowledger splitter checkpoint mover other", order, " ")
        for (i = 1; i <= n; i++) if (order[i] in ms) printf "  %-13s %.2f µs\n", order[i], ms[order[i]] * 1000 / events
    }' "$work/stat.txt"
