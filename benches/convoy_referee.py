#!/usr/bin/env python3
"""The convoy effect in real CPython, measured on its own: the referee for the
simulation's `mixed` workload (standard library only, no gilscope code).

One I/O thread makes R blocking requests: each is a `time.sleep(io_wait)`
(the GIL released, as blocking I/O does), then about 1 ms of CPU to handle
the reply under the GIL. Beside it, C threads run the sqrt loop for as long
as the I/O thread runs, so every request meets the same contention. The
latency of a request runs from just before the sleep to the first Python
instruction after it: the moment the I/O thread holds the GIL again.

    python3 benches/convoy_referee.py --cpu-threads 3 --switch-interval-s 0.02
        --io-wait-s 0.001 --requests 200 --reply-iterations 15000

prints one JSON object: the latencies in ns, in request order, and the
figures computed from them (mean, p50, p99, max, in ms).
"""

import argparse
import json
import math
import sys
import threading
import time

now = time.monotonic_ns


def percentile(sorted_values, q):
    """The q-quantile by the nearest-rank rule (q in 0..1)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-threads", type=int, default=3)
    p.add_argument("--switch-interval-s", type=float, default=0.005)
    p.add_argument("--io-wait-s", type=float, default=0.001)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--reply-iterations", type=int, default=15_000)
    args = p.parse_args()
    sys.setswitchinterval(args.switch_interval_s)

    stop = False
    running = []  # one entry per CPU thread that reached its loop
    cpu_iterations = [0] * args.cpu_threads

    tids = {}

    def cpu(k):
        tids[k] = threading.get_native_id()
        running.append(k)
        n = 0
        while not stop:
            for i in range(10_000):
                math.sqrt(i)
            n += 10_000
        cpu_iterations[k] = n

    latencies = []
    busy_during = []  # CPU threads still looping when each reply came back

    def io():
        tids["io"] = threading.get_native_id()
        for _ in range(args.requests):
            asked = now()
            time.sleep(args.io_wait_s)
            back = now()  # running Python again: holding the GIL
            latencies.append(back - asked)
            busy_during.append(len(running) if not stop else 0)
            for i in range(args.reply_iterations):
                math.sqrt(i)

    cpus = [threading.Thread(target=cpu, args=(k,)) for k in range(args.cpu_threads)]
    for th in cpus:
        th.start()
    # Every CPU thread is in its loop before the first request.
    while len(running) < args.cpu_threads:
        time.sleep(0.001)
    started = now()
    io_thread = threading.Thread(target=io)
    io_thread.start()
    io_thread.join()
    elapsed = now() - started
    stop = True
    for th in cpus:
        th.join()

    ms = sorted(x / 1e6 for x in latencies)
    print(
        json.dumps(
            {
                "runtime": "cpython " + sys.version.split()[0],
                "cpu_threads": args.cpu_threads,
                "switch_interval_s": args.switch_interval_s,
                "io_wait_s": args.io_wait_s,
                "requests": len(latencies),
                "all_busy": all(b == args.cpu_threads for b in busy_during),
                "elapsed_s": elapsed / 1e9,
                "mean_ms": sum(ms) / len(ms) if ms else None,
                "p50_ms": percentile(ms, 0.50),
                "p99_ms": percentile(ms, 0.99),
                "max_ms": ms[-1] if ms else None,
                "io_tid": tids.get("io"),
                "cpu_tids": [tids.get(k) for k in range(args.cpu_threads)],
                "latencies_ns": latencies,
            }
        )
    )


if __name__ == "__main__":
    main()
