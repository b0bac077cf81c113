#!/usr/bin/env python3
"""What starting threads costs in real CPython, measured on its own: the
referee for the simulation's thread start (standard library only, no
gilscope code).

The main thread starts N threads, one after another, each running the sqrt
loop. `Thread.start()` creates the OS thread, which must take the GIL to run;
the main thread waits (GIL released) until the new thread says it started,
then must win the GIL back from a thread that is now CPU-bound before it can
start the next one. Each thread stamps the clock as its function's first
instruction, just before its first loop iteration.

    python3 benches/start_referee.py --threads 4 --switch-interval-s 0.005

prints one JSON object: each thread's first iteration, in ns after the first
`start()` call, and the start cost per thread as gilscope shows it, (first
iteration of the last thread - first start request) / N.
"""

import argparse
import json
import math
import sys
import threading
import time

now = time.monotonic_ns


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--switch-interval-s", type=float, default=0.005)
    p.add_argument("--iterations", type=int, default=4_000_000)
    args = p.parse_args()
    sys.setswitchinterval(args.switch_interval_s)

    first_iteration = [0] * args.threads

    def work(k):
        first_iteration[k] = now()
        for i in range(args.iterations):
            math.sqrt(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(args.threads)]
    first_request = now()
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    after = [t - first_request for t in first_iteration]
    print(
        json.dumps(
            {
                "runtime": "cpython " + sys.version.split()[0],
                "threads": args.threads,
                "switch_interval_s": args.switch_interval_s,
                "first_iteration_ns": after,
                "start_cost_per_thread_ns": max(after) / args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
