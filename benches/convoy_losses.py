#!/usr/bin/env python3
"""How often the I/O thread of the convoy loses the GIL to a CPU thread while
it waits, in real CPython and in gilscope's simulation: the tool behind the
convoy tail's open question (see `cargo bench --bench convoy`).

A "loss" is a take of the GIL by another thread between the I/O thread asking
for the GIL and getting it. Real CPython is watched from outside with perf
uprobes on `take_gil`'s entry and return (root; an interpreter with
`.symtab`, e.g. pyenv's), running `benches/convoy_referee.py`; the simulation
is read from the records of `gilscope run --runtime sim --workload mixed
--record`. Only waits while every CPU thread was at work count.

    sudo python3 benches/convoy_losses.py [--python PY] [--gilscope BIN]
        [--cpu-threads 3] [--interval-ms 20] [--requests 200]

prints, for each runtime, the losses per wait (mean, p50, p90, p99, max) with
their histogram, and the wait's length, and the takers during the longest
waits.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from convoy_referee import percentile  # noqa: E402  the referee's rule (nearest rank)


def waits(events, io):
    """(losses, wait ms, takers) for each wait of thread `io`, from events
    (t_ns, thread, 'ask' | 'take') in time order."""
    found, asked, takers = [], None, []
    for t, who, kind in sorted(events):
        if who == io and kind == "ask":
            asked, takers = t, []
        elif who == io and kind == "take" and asked is not None:
            found.append((len(takers), (t - asked) / 1e6, takers))
            asked = None
        elif kind == "take" and asked is not None:
            takers.append((t - asked, who))
    # A take of a free GIL is no wait.
    return [w for w in found if w[1] > 0.05]


def report(name, found):
    if not found:
        print(f"{name}: no waits seen")
        return
    losses = sorted(w[0] for w in found)
    ms = sorted(w[1] for w in found)
    n = len(found)
    print(
        f"{name}: {n} waits · losses per wait mean {sum(losses) / n:.2f}, p50 {percentile(losses, 0.5)}, "
        f"p90 {percentile(losses, 0.9)}, p99 {percentile(losses, 0.99)}, max {losses[-1]} · "
        f"wait ms mean {sum(ms) / n:.1f}, p50 {percentile(ms, 0.5):.1f}, p99 {percentile(ms, 0.99):.1f}"
    )
    histogram = collections.Counter(losses)
    print("  losses: " + " ".join(f"{k}×{histogram[k]}" for k in sorted(histogram)))
    for losses_, wait, takers in sorted(found, key=lambda w: -w[0])[:3]:
        names = " ".join(f"{who % 100}@{t / 1e6:.0f}" for t, who in takers)
        print(f"  a wait of {wait:.0f} ms, takers (thread id mod 100 @ ms): {names}")


def cpython(args, work):
    # The interpreter itself, not a launcher (pyenv's shim) in front of it.
    args.python = subprocess.run([args.python, "-c", "import sys; print(sys.executable)"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    lib = subprocess.run(
        [args.python, "-c", "import sysconfig, os; print(os.path.join(sysconfig.get_config_var('LIBDIR'), "
         "sysconfig.get_config_var('LDLIBRARY')))"],
        capture_output=True, text=True, check=True).stdout.strip()
    target = lib if os.path.exists(lib) and "libpython" in lib else os.path.realpath(args.python)
    group = "gilscope_convoy"
    subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], capture_output=True)
    for spec in ("ask=take_gil", "take=take_gil%return"):
        subprocess.run(["perf", "probe", "-q", "-x", target, "-a", f"{group}:{spec}"], check=True)
    data = os.path.join(work, "perf.data")
    try:
        out = subprocess.run(
            ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", f"{group}:*", "-o", data, "--",
             args.python, os.path.join(HERE, "convoy_referee.py"), "--cpu-threads", str(args.cpu_threads),
             "--switch-interval-s", str(args.interval_ms / 1000), "--io-wait-s", "0.001",
             "--requests", str(args.requests)],
            capture_output=True, text=True, check=True).stdout
        script = subprocess.run(["perf", "script", "-i", data, "-F", "tid,time,event"],
                                capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], capture_output=True)
    referee = json.loads(out)
    events = []
    for line in script.splitlines():
        tid, at, event = line.split()[:3]
        events.append((int(float(at.rstrip(":")) * 1e9), int(tid), "take" if "take" in event else "ask"))
    report(f"CPython ({referee['runtime']}, p99 {referee['p99_ms']:.0f} ms)", waits(events, referee["io_tid"]))


def simulation(args, work):
    recording = os.path.join(work, "sim.rec")
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))
    subprocess.run(
        [args.gilscope, "run", "--runtime", "sim", "--models", "threads", "--workload", "mixed",
         "-n", str(args.cpu_threads + 1), "--switch-interval", f"{args.interval_ms}ms", "--io-wait", "1ms",
         "--requests", str(args.requests), "--iterations", "200000000", "--rounds", "1",
         "--record", recording],
        capture_output=True, text=True, check=True, env=env)
    runs = collections.defaultdict(list)
    with open(recording) as f:
        for line in f:
            if '"rec"' in line:
                run, _, text = json.loads(line)["rec"]
                runs[run].append(text.split())
    for run, records in sorted(runs.items()):
        io = next((int(r[2]) for r in records if r[0] == "reply"), None)
        takers = {int(r[2]) for r in records if r[0] == "take"}
        if io is None or len(takers) < 2:
            continue  # the baseline
        # While every CPU worker is at work: up to the first one's end.
        ends = [int(r[1]) for r in records if r[0] == "release" and r[-1] == "finished" and int(r[2]) != io]
        until = min(ends) if ends else float("inf")
        events = [(int(r[1]), int(r[2]), "ask" if r[0] == "wait" else "take")
                  for r in records if r[0] in ("wait", "take") and int(r[1]) < until]
        report(f"simulation (run {run})", waits(events, io))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default="python3")
    p.add_argument("--gilscope", default=os.path.join(HERE, "..", "target", "release", "gilscope"))
    p.add_argument("--cpu-threads", type=int, default=3)
    p.add_argument("--interval-ms", type=float, default=20)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("convoy_losses: uprobes need root")
    with tempfile.TemporaryDirectory() as work:
        cpython(args, work)
        simulation(args, work)


if __name__ == "__main__":
    main()
