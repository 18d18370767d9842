#!/usr/bin/env bash
# Instructions per event, counted by callgrind (valgrind), for the journal alone
# and for the whole store. Repeatable where wall-clock figures are not: the
# count hardly depends on the machine's load.
#
#   Benchmarks/cpu-per-event.sh journal OUT [N1 N2]   # JournalCPU: JournalAppend's workload, splitter held
#   Benchmarks/cpu-per-event.sh store OUT [N1 N2]     # ringstore bench --streams 10000 --event-size 200
#                                                     #   --writers 64 --warm-up (1 event per append, durable;
#                                                     #   WRITERS=256 for another number of writers;
#                                                     #   PAYLOAD=padded for the payload of earlier figures)
#   Benchmarks/cpu-per-event.sh read OUT STORE [READS]  # warm reads of a kept store (ringstore bench --dir):
#                                                     #   --read-store STORE --reads READS (default all-only)
#
# Each workload runs twice under callgrind, with N1 and N2 events (default
# 20,000 and 100,000); the figure is (instructions at N2 - instructions at N1) /
# (N2 - N1): what one more event costs, with start-up, the warm-up (one append
# to each of the 10,000 streams first, in both runs) and closing cancelled out.
# With the defaults the store sees about one checkpoint between N1 and N2 (a
# checkpoint covers about half the 64 MiB ring), so what changes from one
# checkpoint to the next (arrays regrown, hints learned) barely shows; pass
# 100000 300000 (about four minutes) to weigh several. Two runs of one build
# differ by a few hundred instructions per event (the threads interleave
# differently under valgrind), so compare builds over more than one run.
# `read` runs `ringstore bench --read-store STORE --reads READS` with one pass
# and with two: the difference is one warm pass (the first warms the caches),
# divided by the events a pass reads.
# Only user-space instructions count; the kernel's work (writes, syncs, futex
# calls) is not in it.
#
# Binaries: $RINGSTORE (default: .build/release/ringstore at the repository's
# root, built with `swift build -c release --product ringstore`) and
# $JOURNAL_CPU (default: Benchmarks/.build/release/JournalCPU, built with
# `swift build -c release --product JournalCPU` in Benchmarks/). OUT must not
# exist; the callgrind profiles stay there (callgrind_annotate --inclusive=yes
# OUT/<workload>-N2.callgrind | swift demangle --simplified).
#
# Two workarounds for valgrind 3.19 (Debian 12) are applied: it cannot read the
# DWARF 5 debug information Swift emits, so the binaries are copied without it
# (function names stay); and it writes into the mask passed to sigsuspend,
# which libdispatch keeps in read-only memory, so a preloaded sigsuspend
# passes a copy.
set -euo pipefail

workload=${1:-}
out=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
if [[ $workload == read ]]; then
    store=${3:-}
    reads=${4:-all-only}
    n1=1
    n2=2
    if [[ -z $store || ! -d $store ]]; then
        echo "usage: $0 read OUT STORE [all-only|streams-only|all]" >&2
        exit 2
    fi
    store=$(cd "$store" && pwd)
else
    n1=${3:-20000}
    n2=${4:-100000}
fi
if [[ -z $out || ( $workload != journal && $workload != store && $workload != read ) ]]; then
    echo "usage: $0 journal|store OUT [N1 N2] | read OUT STORE [READS]" >&2
    exit 2
fi
if [[ -e $out ]]; then
    echo "$0: $out already exists" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "$0: needs valgrind" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

cat >"$out/sigsuspend.c" <<'EOF'
#define _GNU_SOURCE
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);  // the kernel's sigset: 64 bits
}
EOF
cc -O2 -shared -fPIC -o "$out/sigsuspend.so" "$out/sigsuspend.c"

if [[ $workload == store || $workload == read ]]; then
    binary=${RINGSTORE:-$here/../.build/release/ringstore}
else
    binary=${JOURNAL_CPU:-$here/.build/release/JournalCPU}
fi
cp "$binary" "$out/$workload.bin"
strip --strip-debug "$out/$workload.bin"

count() {  # count N: runs the workload with N events, prints the instructions counted
    local n=$1 data="$out/$workload-$1.data"
    local args
    if [[ $workload == store ]]; then
        # --slow-append-ms: under callgrind every append takes milliseconds, and the
        # report's look at what each slow append ran alongside (after the run) would
        # add thousands of instructions per event that are the bench's, not the store's.
        args=(bench --streams 10000 --event-size 200 --payload "${PAYLOAD:-sensor}" --writers "${WRITERS:-64}" --events "$n" --warm-up
              --slow-append-ms 60000 --dir "$data")
    elif [[ $workload == read ]]; then
        args=(bench --read-store "$store" --reads "$reads" --passes "$n")
    else
        args=(--events "$n" --dir "$data")
    fi
    LD_PRELOAD="$out/sigsuspend.so" valgrind --tool=callgrind --log-file="$out/$workload-$n.valgrind" \
        --callgrind-out-file="$out/$workload-$n.callgrind" "$out/$workload.bin" "${args[@]}" \
        >"$out/$workload-$n.stdout" 2>"$out/$workload-$n.stderr" || {
        echo "$0: the run with $n failed:" >&2
        tail -3 "$out/$workload-$n.stderr" >&2
        return 1
    }
    rm -rf "$data"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$workload-$n.valgrind"
}

checkpoints() {  # checkpoints N: how many checkpoints the run with N events wrote (calls of Checkpointer.write)
    callgrind_annotate --tree=calling --threshold=100 "$out/$workload-$1.callgrind" 2>/dev/null \
        | sed -n 's/.*> .*CheckpointerC5write.*(\([0-9,]*\)x).*/\1/p' | head -1 | tr -d ,
}

i1=$(count "$n1")
i2=$(count "$n2")
if [[ $workload == read ]]; then
    # Events of one pass, from the bench's own line for the last pass.
    events=$(sed -n 's/^pass 2: \$all \([0-9,]*\) events.* streams, \([0-9,]*\) events.*/\1 \2/p' "$out/read-2.stdout" \
        | tr -d , | awk '{ print $1 + $2 }')
    echo "read ($reads): $i1 instructions with 1 pass, $i2 with 2, $events events a pass: $(( (i2 - i1) / events )) per event"
    exit 0
fi
echo "$workload: $i1 instructions with $n1 events, $i2 with $n2: $(( (i2 - i1) / (n2 - n1) )) per event"
if [[ $workload == store ]]; then
    # The splitter checkpoints at least every 10 s of wall clock, and under callgrind a
    # run is ~50 times slower than natively, so a slow (busy) machine can add a
    # checkpoint, each of which writes a block for every stream with pending records:
    # compare runs with the same difference.
    echo "store: checkpoints: $(checkpoints "$n1") with $n1 events, $(checkpoints "$n2") with $n2"
fi
