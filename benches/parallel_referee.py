#!/usr/bin/env python3
"""What multiprocessing can reach on this machine, measured with plain Python
(standard library only, no gilscope code): the referee for the live view's
headline speedup of processes.

Each round times the sqrt loop once alone, then N copies at once in N forked
processes, and prints how much slower the slowest copy ran than the lone one.
The speedup N processes could show is N × alone ÷ slowest copy: on a machine
whose cores slow each other down (shared caches, a hypervisor's siblings,
frequency limits) it is below N however the work is split. Rounds alternate
alone and together, so that drift in the machine's speed falls on both.

    python3 benches/parallel_referee.py [--processes 2] [--rounds 8]
        [--iterations 4000000]
"""

import argparse
import math
import os
import statistics
import time


def sqrt_loop(n):
    start = time.perf_counter()
    for i in range(n):
        math.sqrt(i)
    return time.perf_counter() - start


def together(k, n):
    """Runs the loop in k forked processes at once; returns each one's time."""
    read_end, write_end = os.pipe()
    children = []
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.write(write_end, f"{sqrt_loop(n)}\n".encode())
            os._exit(0)
        children.append(pid)
    os.close(write_end)
    for pid in children:
        os.waitpid(pid, 0)
    with os.fdopen(read_end) as f:
        return [float(x) for x in f.read().split()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--iterations", type=int, default=4_000_000)
    args = p.parse_args()
    k = args.processes
    reachable = []
    print(f"{k} processes · {args.iterations:,} iterations each · {args.rounds} rounds, alternating")
    for r in range(args.rounds):
        alone = sqrt_loop(args.iterations)
        times = together(k, args.iterations)
        slowest = max(times)
        reachable.append(k * alone / slowest)
        print(f"round {r}: alone {alone:.3f} s · together {' '.join(f'{t:.3f}' for t in times)} s · "
              f"slowest ÷ alone {slowest / alone:.2f} · reachable speedup {reachable[-1]:.2f}×")
    print(f"reachable speedup of {k} processes: median {statistics.median(reachable):.2f}× "
          f"(min {min(reachable):.2f}, max {max(reachable):.2f}) of at most {k}×")


if __name__ == "__main__":
    main()
