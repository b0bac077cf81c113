#!/usr/bin/env python3
"""Key-to-screen latency and CPU of the live view during a big race.

gilscope runs on a pseudo-terminal of the given size, read by this script as
a terminal emulator reads it. `?` is pressed: the time until a word of the
help's keys page arrives on the terminal is the key's latency, the way a user
sees it, without a multiplexer in between. The help is closed again,
unmeasured.

    python3 benches/live_keys.py [--workers 256] [--size 200x60] [--keys 30]

Prints the start (space → every worker started, as the screen says),
key-to-screen latencies (median, p95, max) and gilscope's own CPU while the
race ran, in % of one core."""

import argparse
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import tempfile
import termios
import time

ap = argparse.ArgumentParser()
ap.add_argument("--workers", type=int, default=256)
ap.add_argument("--size", default="200x60")
ap.add_argument("--keys", type=int, default=30)
ap.add_argument("--iterations", type=int, default=4_000_000)
ap.add_argument("--binary", default="target/release/gilscope")
# The live view opens on the real interpreter unless told: the figures here
# are the simulation's unless --runtime cpython is given.
ap.add_argument("--runtime", default="sim", choices=["sim", "cpython"])
a = ap.parse_args()
cols, rows = (int(x) for x in a.size.split("x"))

master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(prefix="gilscope-keys-"), TERM="xterm-256color")
args = [a.binary, "--workers", str(a.workers), "--iterations", str(a.iterations), "--models", "threads,processes"]
args += ["--runtime", a.runtime]


def controlling_terminal():
    # crossterm reads keys from /dev/tty: the pty must be the app's own terminal.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


app = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=controlling_terminal)
os.close(slave)
seen = bytearray()


def read_until(marker, limit):
    """Reads the terminal until `marker` arrives; seconds it took."""
    start = time.perf_counter()
    seen.clear()
    while True:
        left = limit - (time.perf_counter() - start)
        if left <= 0:
            tail = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", " ", seen.decode(errors="replace"))[-3000:]
            raise SystemExit(f"no {marker!r} within {limit} s; the terminal got:\n{tail}")
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            seen.extend(os.read(master, 1 << 16))
            if marker.encode() in seen:
                return time.perf_counter() - start


def drain(seconds):
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        if select.select([master], [], [], left)[0]:
            os.read(master, 1 << 16)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


try:
    read_until("starts", 20)
    drain(0.5)
    os.write(master, b"m")  # race: both models at once
    read_until("race", 5)
    drain(0.3)
    os.write(master, b" ")
    t0 = time.perf_counter()
    # The start figure reads "… each, all 0.82 s" once every worker of a
    # model started; the baseline (one worker alone) comes first.
    # Cells left blank are skipped with a cursor move: read those as spaces.
    text = ""
    while text.count("each, all ") < 2:
        if select.select([master], [], [], 120)[0]:
            text += re.sub(r"\x1b\[[0-9;]*[A-Za-z]", " ", os.read(master, 1 << 16).decode(errors="replace"))
            text = text[-200_000:]
    started = time.perf_counter() - t0
    said = [p.split("  ")[0] for p in text.split("each, all ")[1:3]]
    cpu0, wall0 = cpu_s(app.pid), time.perf_counter()
    lat = []
    for _ in range(a.keys):
        os.write(master, b"?")
        lat.append(read_until("SIGSTOP", 30))
        # Closed by ? again (an Esc read together with the next key would
        # arrive as Alt+key): once where the screen shows both help pages at
        # once, else twice (its figures page, then closed).
        for _ in range(1 if rows >= 50 else 2):
            drain(0.25)
            os.write(master, b"?")
        drain(0.25)
    cpu = (cpu_s(app.pid) - cpu0) / (time.perf_counter() - wall0)
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3
    print(f"{a.workers} workers per model at {cols}x{rows}: space → both models' workers all started "
          f"{started:.2f} s (baseline first); the panels say 'all {said[0]}' and 'all {said[1]}'")
    print(f"key → screen: median {pick(0.5):.1f} ms, p95 {pick(0.95):.1f} ms, max {lat[-1] * 1e3:.1f} ms ({len(lat)} keys)")
    print(f"gilscope's own CPU meanwhile: {cpu * 100:.1f} % of a core")
finally:
    os.write(master, b"q")
    try:
        app.wait(10)
    except subprocess.TimeoutExpired:
        app.kill()
