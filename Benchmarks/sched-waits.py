#!/usr/bin/env python3
"""What the store's latency-critical threads wait behind on their processor.

Usage:
  perf sched record -o sched.data -a -- sleep 40 &   # start before the bench
  ringstore bench --streams 10000 --event-size 200 --writers 64 --warm-up --rate 90000 --duration 15
  perf sched timehist -i sched.data > timehist.txt
  Benchmarks/sched-waits.py timehist.txt PID [THRESHOLD_MS [FROM TO]]

For every switch-in of a concurrency-pool thread (named ...default-qos), the
flusher or the acknowledger of process PID that waited THRESHOLD_MS (1.0) or
more after its wake-up, it adds up what ran during that wait on the same
processor and on both, by thread (other processes' threads prefixed "X:"),
and prints the wait percentiles of the three. FROM and TO (perf timestamps)
limit it to the measured part of the run.
"""
import bisect
import collections
import re
import sys

LINE = re.compile(r'\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s*$')
WAITERS = ('pool', 'rs-flusher', 'rs-acknowledger')


def load(path):
    rows = []
    for line in open(path):
        m = LINE.match(line)
        if m:
            rows.append((float(m.group(1)), int(m.group(2)), m.group(3).strip(),
                         float(m.group(4)), float(m.group(5)), float(m.group(6))))
    return rows


def kind(name, pid):
    m = re.search(r'\[(\d+)(?:/(\d+))?\]', name)
    owner = (m.group(2) or m.group(1)) if m else None
    base = re.sub(r'\[\d+(/\d+)?\]', '', name).strip()
    if owner != pid and base != '<idle>':
        return 'X:' + base
    return 'pool' if 'default-qos' in base else base


def main():
    path, pid = sys.argv[1], sys.argv[2]
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    rows = load(path)
    start, end = (float(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (rows[0][0], rows[-1][0])
    # Each row: a thread switched out at `time` on `cpu` after running `run` ms.
    runs = collections.defaultdict(list)
    for time, cpu, name, _, _, run in rows:
        runs[cpu].append((time - run / 1000, time, kind(name, pid)))
    for cpu in runs:
        runs[cpu].sort()
    starts = {cpu: [r[0] for r in runs[cpu]] for cpu in runs}
    waiters = [r for r in rows if kind(r[2], pid) in WAITERS and start <= r[0] <= end]
    late = [r for r in waiters if r[4] >= threshold]
    print('switch-ins of pool, flusher, acknowledger waiting >= %.1f ms: %d of %d' % (threshold, len(late), len(waiters)))
    same, both = collections.Counter(), collections.Counter()
    for time, cpu, _, _, delay, run in late:
        wait_start, wait_end = time - run / 1000 - delay / 1000, time - run / 1000
        for c in runs:
            i = max(0, bisect.bisect_left(starts[c], wait_start) - 3)
            for s, e, who in runs[c][i:]:
                if s > wait_end:
                    break
                overlap = min(e, wait_end) - max(s, wait_start)
                if overlap > 0:
                    both[who] += overlap * 1000
                    if c == cpu:
                        same[who] += overlap * 1000
    for title, counts in (('same processor', same), ('both processors', both)):
        total = sum(counts.values()) or 1
        print('-- ran on the %s during those waits: %.1f ms' % (title, total))
        for who, ms in counts.most_common(10):
            print('   %-28s %8.1f ms  %5.1f%%' % (who, ms, 100 * ms / total))
    for who in WAITERS:
        delays = sorted(r[4] for r in waiters if kind(r[2], pid) == who)
        if delays:
            pick = lambda q: delays[min(len(delays) - 1, int(len(delays) * q))]
            print('%s wait after wake-up: p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms'
                  % (who, pick(0.5), pick(0.99), pick(0.999), delays[-1]))


if __name__ == '__main__':
    main()
