#!/usr/bin/env python3
"""gilscope's instrumented CPython worker (standard library only).

Runs one workload under `threading` or `multiprocessing` and writes gilscope's
wire format (docs/wire-format.md, version 2) on stdout: a header line written
by the top process, then one record per line. Started as

    python3 gilscope_worker.py --model threads|processes --workers N
        --first-worker K --workload cpu|io|mixed --iterations N --requests R
        --io-ms MS --reply-iterations N --switch-interval-s S --spawned-at NS
        [--gun]

or as `python3 gilscope_worker.py --bare [--iterations N]`, which runs the plain
sqrt loop once, uninstrumented, and prints the nanoseconds it took.

CPython does not report its GIL hand-overs to Python code, so the timeline is
inferred: every `chunk` iterations a worker appends `time.monotonic_ns()` to a
local list. Where the stamps advance at their usual pace the thread was
running (for pure-Python code under a GIL that means holding the GIL); a gap
well beyond the usual pace means it was not, and becomes a `release ...
inferred` at the last stamp before the gap and a `take` at the first one after
it. The header's `resolution_ns` is the stamp interval actually used. Around
the blocking wait of an I/O worker the releases and takes are exact. Each
worker also names the OS thread it runs on (`thread`), so that gilscope,
which can read the interpreter's GIL from outside, can tell whose lane the
GIL's holder is: those lanes then replace the inferred ones.

With `--gun` the workers start, say so (`start`, `process`, `thread`, written
at once), and wait for `go` on stdin before their work begins: the start gun,
which gilscope fires once every worker of the race has started and it is
watching each one's GIL. Waiting blocks without the GIL; once the workers
begin, no other thread of the worker takes the GIL until the last of them
finished, so the interpreter's own switch count while they work counts their
hand-overs and nothing else.

Records are written with whole-line writes of at most PIPE_BUF bytes straight
to file descriptor 1, from every thread and every child process, so lines of
different writers never mix. Where it can, the worker writes with libc's
write() called through ctypes.PyDLL, which keeps the GIL: an os.write() would
release it, hand it to a waiting thread and so add a GIL switch of its own to
the very timeline being measured. For the same reason those writes take no
lock: a writer told to drop the GIL while it held a lock made the next writer
block on that lock, which let go of the GIL, and so on, every thread cutting
its holds short at each flush (holds of 14 ms at a 20 ms switch interval).
One write of at most PIPE_BUF bytes to a pipe is whole, and the GIL, held
throughout, keeps this process's threads from writing at the same moment.
"""

import errno
import math
import os
import signal
import sys
import threading
import time

WIRE_VERSION = 2
PIPE_BUF = 4096
# Aim for one stamp about every 100 µs of running: well under a 1 ms lane
# cell, and cheap (the whole instrumentation costs about 4 % of the loop).
TARGET_STAMP_NS = 100_000
# Report progress (and flush the records so far) about every 15 ms of work.
PROGRESS_NS = 15_000_000
# A stamp interval counts as "not running" beyond GAP_FACTOR times the usual
# interval, and never below MIN_GAP_NS.
GAP_FACTOR = 4
MIN_GAP_NS = 200_000
# Intervals a batch needs before its median may update the usual interval.
MEDIAN_MIN_SAMPLES = 16
ERROR_MAX_CHARS = 1000

now = time.monotonic_ns


# ------------------------------------------------------------------ the loop


def plain_loop(iterations):
    """The sqrt loop every worker runs, uninstrumented: `math.sqrt(i)` for i in
    0..iterations, the classic demonstration of the GIL."""
    for i in range(iterations):
        math.sqrt(i)


def calibrate():
    """ns per iteration of the plain loop (the best of a few short runs)."""
    n = 2000
    best = None
    for _ in range(7):
        t = now()
        plain_loop(n)
        dt = now() - t
        if best is None or dt < best:
            best = dt
    return max(best, 1) / n


# ------------------------------------------------------------------ output


def _raw_writer(fd=1):
    """A function writing all of a bytes object to `fd`, and whether its
    callers must take turns by a lock of their own (os.write releases the
    GIL; libc's write through PyDLL keeps it)."""
    try:
        import ctypes

        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held
        c_write = libc.write
        c_write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        c_write.restype = ctypes.c_ssize_t
        get_errno = ctypes.get_errno
    except Exception:
        c_write = None

    if c_write is None:

        def write_all(data):
            while data:
                data = data[os.write(fd, data) :]

        return write_all, True

    def write_all(data):
        while data:
            n = c_write(fd, data, len(data))
            if n < 0:
                e = get_errno()
                if e == errno.EINTR:
                    continue
                raise OSError(e, os.strerror(e))
            data = data[n:]

    return write_all, False


class Out:
    """Whole-line writes of at most PIPE_BUF bytes to fd 1 (one per process)."""

    def __init__(self):
        self._write, locked = _raw_writer()
        self._lock = threading.Lock() if locked else None

    def send(self, lines):
        """Writes lines (each ending in a newline) in PIPE_BUF-sized batches."""
        batch = []
        size = 0
        for line in lines:
            data = line.encode("utf-8", "replace")
            if size + len(data) > PIPE_BUF and batch:
                self._put(b"".join(batch))
                batch = []
                size = 0
            batch.append(data)
            size += len(data)
        if batch:
            self._put(b"".join(batch))

    def _put(self, data):
        if self._lock is None:
            self._write(data)  # one write, the GIL held: see the module's docstring
        else:
            with self._lock:
                self._write(data)

    def error(self, message):
        """Writes one `error` line; never raises."""
        message = " ".join(str(message).split())[:ERROR_MAX_CHARS]
        try:
            self.send(["error " + message + "\n"])
        except Exception:
            pass


def describe(exc):
    text = str(exc)
    return type(exc).__name__ + (": " + text if text else "")


def peak_rss_kb():
    """This process's own peak resident memory in KiB: VmHWM where Linux
    has it (ru_maxrss keeps an exec'd parent's peak), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_maxrss // 1024 if sys.platform == "darwin" else ru.ru_maxrss


def end_line(switches):
    """The `end` record of this OS process."""
    try:
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu_ns = round((ru.ru_utime + ru.ru_stime) * 1e9)
        rss_kb = peak_rss_kb()
    except Exception:
        cpu_ns = rss_kb = 0
    return f"end {now()} {os.getpid()} {cpu_ns} {rss_kb} {switches}\n"


def count_switches(workers):
    """How often the inferred holder of this process's GIL changed."""
    takes = sorted((t, wk.w) for wk in workers for t in wk.takes)
    switches = 0
    holder = None
    for _, w in takes:
        if holder is not None and w != holder:
            switches += 1
        holder = w
    return switches


# ------------------------------------------------------------------ lifetime


def set_pdeathsig():
    """Asks Linux for SIGKILL when our parent dies; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
    except Exception:
        return False


def os_thread_namer():
    """A function naming the calling OS thread `worker-N`, the name gilscope
    counts worker threads by (Python 3.13 and older keep a Thread's name to
    themselves). Linux only; elsewhere, or where it fails, threads keep their
    names. Made before the workers start: loading libc may release the GIL."""
    try:
        if not sys.platform.startswith("linux"):
            raise OSError("no prctl")
        import ctypes

        prctl = ctypes.PyDLL(None).prctl  # PyDLL: calls keep the GIL
    except Exception:
        return lambda w: None
    pr_set_name = 15

    def name(w):
        try:
            prctl(pr_set_name, f"worker-{w}".encode(), 0, 0, 0)
        except Exception:
            pass

    return name


def watch_stdin(out, on_eof, on_go=None):
    """A daemon thread: on_go() at the first `go` on stdin (the start gun),
    and at end of file on stdin, on_eof() and exit non-zero."""

    def run():
        go = on_go
        heard = b""
        try:
            while True:
                data = os.read(0, 4096)
                if not data:
                    break
                if go is not None:
                    heard = (heard + data)[-8:]
                    if b"go\n" in heard:
                        go()
                        go = None
        except OSError as e:
            if e.errno == errno.EBADF:
                if go is not None:
                    go()  # no stdin at all: nobody will fire the gun
                return  # nothing to watch
        try:
            on_eof()
        finally:
            out.error("stdin closed: gilscope went away, stopping")
            os._exit(1)

    threading.Thread(target=run, name="gilscope-stdin", daemon=True).start()


def watch_parent(parent):
    """Where there is no PDEATHSIG: exit once our parent is gone."""

    def run():
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=run, name="gilscope-parent", daemon=True).start()


class NoGun:
    """Without --gun: the workers begin at once."""

    def wait(self):
        pass

    def fire(self):
        pass


class PipeGun:
    """The start gun for workers of this one process (threads, and workers
    in subinterpreters, which share nothing but the process's descriptors):
    each waits reading one byte of a pipe; firing writes one per worker.
    Firing keeps the GIL (a raw write), so no worker starts before the
    firing thread is back waiting on stdin."""

    def __init__(self, workers):
        self.fd, self._w = os.pipe()
        self._workers = workers
        self._write, _ = _raw_writer(self._w)

    def wait(self):
        os.read(self.fd, 1)

    def fire(self):
        self._write(b"g" * self._workers)


def gun_wait(fd):
    """A PipeGun's wait, for a worker given only its descriptor."""
    if fd is not None:
        os.read(fd, 1)


# ------------------------------------------------------------------ a worker


class Worker:
    """One worker: runs its workload and buffers its records."""

    def __init__(self, w, kind, cfg, out):
        self.w = w
        self.kind = kind  # "cpu" or "io"
        self.cfg = cfg
        self.out = out
        self.lines = []
        self.takes = []
        self.stamps = []
        self.res = cfg["resolution_ns"]
        self.usual = self.res
        self.req = 0

    # records
    def take(self, t):
        self.lines.append(f"take {t} {self.w}\n")
        self.takes.append(t)

    def release(self, t, reason):
        self.lines.append(f"release {t} {self.w} {reason}\n")

    def progress(self, t, done, total):
        self.lines.append(f"progress {t} {self.w} {done} {total}\n")

    def flush(self):
        if self.lines:
            lines = self.lines
            self.lines = []
            self.out.send(lines)

    def infer(self):
        """Turns the stamps so far into inferred releases and takes."""
        s = self.stamps
        if len(s) < 2:
            return
        gaps = [b - a for a, b in zip(s, s[1:])]
        if len(gaps) >= MEDIAN_MIN_SAMPLES:
            median = sorted(gaps)[len(gaps) // 2]
            # A median far beyond the calibrated pace is made of gaps, not runs.
            if median <= 3 * self.res:
                self.usual = median
        threshold = max(GAP_FACTOR * self.usual, MIN_GAP_NS)
        for j, gap in enumerate(gaps):
            if gap > threshold:
                self.release(s[j], "inferred")
                self.take(s[j + 1])
        del s[:-1]

    def stamped_loop(self, n, on_batch):
        """n iterations of the sqrt loop, stamping every chunk iterations and
        calling on_batch(done) about every PROGRESS_NS of work."""
        chunk = self.cfg["chunk"]
        per_batch = chunk * self.cfg["batch"]
        append = self.stamps.append
        done = 0
        while done < n:
            stop = min(n, done + per_batch)
            while done < stop:
                nxt = done + chunk
                if nxt > stop:
                    nxt = stop
                for i in range(done, nxt):
                    math.sqrt(i)
                append(now())
                done = nxt
            on_batch(done)

    # workloads
    def run_cpu(self):
        total = self.cfg["iterations"]

        def on_batch(done):
            self.infer()
            self.progress(self.stamps[-1], done, total)
            self.flush()

        self.stamped_loop(total, on_batch)
        if total == 0:
            self.progress(now(), 0, 0)

    def run_io(self):
        total = self.cfg["requests"]
        wait_s = self.cfg["io_ms"] / 1000.0
        reply_n = self.cfg["reply_iterations"]
        w = self.w
        last_flush = now()

        def on_batch(_done):
            self.infer()

        for r in range(total):
            t_req = now()
            self.release(t_req, "io")
            self.lines.append(f"io {t_req} {w}\n")
            time.sleep(wait_s)  # releases the GIL, as blocking I/O does
            t_back = now()  # running Python again: holding the GIL
            self.take(t_back)
            self.stamps.clear()
            self.stamps.append(t_back)
            self.stamped_loop(reply_n, on_batch)
            self.infer()
            t_done = now()
            self.lines.append(f"reply {t_done} {w} {t_back - t_req}\n")
            self.progress(t_done, r + 1, total)
            if t_done - last_flush >= PROGRESS_NS // 2 or r + 1 == total:
                self.flush()
                last_flush = t_done
        if total == 0:
            self.progress(now(), 0, 0)

    def run(self, t0, wait_for_gun, interp=0):
        """The worker's whole life; t0 is its function's first instruction.
        It says who it is at once, then its work begins at the start gun."""
        w = self.w
        pid = os.getpid()
        tid = threading.get_native_id()
        self.lines.append(f"start {t0} {w} {self.req}\n")
        self.lines.append(f"process {t0} {w} {pid}\n")
        self.lines.append(f"thread {t0} {w} {pid} {tid} {interp}\n")
        self.flush()
        wait_for_gun()
        t_go = now()
        self.take(t_go)
        # The stamps start with the workload: the setup since t0 (a child
        # process's prctl, ctypes) ran Python too and must not read as a gap.
        self.stamps.append(now())
        if self.kind == "io":
            self.run_io()
        else:
            self.run_cpu()
        t_end = now()
        self.release(t_end, "finished")
        self.lines.append(f"cpu {t_end} {w} {time.thread_time_ns()}\n")
        self.lines.append(f"finished {t_end} {w}\n")
        self.flush()


def worker_kind(cfg, w):
    workload = cfg["workload"]
    if workload == "io" or (workload == "mixed" and w == cfg["first"]):
        return "io"
    return "cpu"


# ------------------------------------------------------------------ models


def thread_main(wk, name_os_thread, gun, done):
    t0 = now()
    try:
        name_os_thread(wk.w)
        wk.run(t0, gun.wait)
    except BaseException as e:  # noqa: BLE001 - any failure ends the run
        wk.out.error(f"worker {wk.w}: {describe(e)}")
        os._exit(1)
    done()


def run_threads(cfg, out):
    gun = PipeGun(cfg["workers"]) if cfg["gun"] else NoGun()
    watch_stdin(out, lambda: None, gun.fire)
    first = cfg["first"]
    workers = [
        Worker(first + i, worker_kind(cfg, first + i), cfg, out)
        for i in range(cfg["workers"])
    ]
    name_os_thread = os_thread_namer()
    # The main thread waits for the last worker to finish on one lock, not
    # by joining them one by one: it takes no GIL while any still works.
    import _thread
    import itertools

    all_done = _thread.allocate_lock()
    all_done.acquire()
    finishing = itertools.count(1)  # next() on it is one C call: atomic

    def done():
        if next(finishing) == len(workers):
            all_done.release()

    threads = []
    for wk in workers:
        th = threading.Thread(target=thread_main, args=(wk, name_os_thread, gun, done), daemon=True)
        th.name = f"gilscope-worker-{wk.w}"
        threads.append(th)
        wk.req = now()
        th.start()
    all_done.acquire()
    for th in threads:
        th.join()
    out.send([end_line(count_switches(workers))])
    return 0


def _child_main(cfg, gun):
    """A worker process's target (module level, so that spawn can find it)."""
    t0 = now()
    out = Out()
    try:
        if set_pdeathsig():
            # The parent may have died before prctl: then no signal will come.
            if cfg["method"] != "forkserver" and os.getppid() != cfg["top_pid"]:
                os._exit(1)
        else:
            watch_parent(os.getppid())
        os_thread_namer()(cfg["w"])
        sys.setswitchinterval(cfg["switch_interval_s"])
        wk = Worker(cfg["w"], worker_kind(cfg, cfg["w"]), cfg, out)
        wk.req = cfg["req"]
        wk.run(t0, gun.wait if gun is not None else lambda: None)
        out.send([end_line(0)])
    except BaseException as e:  # noqa: BLE001 - any failure ends the run
        out.error(f"worker {cfg['w']}: {describe(e)}")
        sys.exit(1)


def run_processes(cfg, out):
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context(cfg["start_method"])
    cfg["method"] = ctx.get_start_method()
    # The children's start gun: an event of multiprocessing's, which every
    # start method hands on to them.
    gun = ctx.Event() if cfg["gun"] else None
    procs = []  # (w, Process)

    def kill_all():
        for _, p in procs:
            try:
                if p.pid is not None:
                    os.kill(p.pid, signal.SIGKILL)
            except Exception:
                pass

    try:
        for i in range(cfg["workers"]):
            w = cfg["first"] + i
            child_cfg = dict(cfg, w=w)
            p = ctx.Process(target=_child_main, args=(child_cfg, gun), daemon=True)
            p.name = f"gilscope-worker-{w}"
            procs.append((w, p))
            child_cfg["req"] = now()  # read at start(): by fork or by pickle
            p.start()
        # Started only now: forking a process that runs threads is unsafe.
        watch_stdin(out, kill_all, gun.set if gun is not None else None)

        pending = {p.sentinel: (w, p) for w, p in procs}
        while pending:
            for sentinel in wait(list(pending)):
                w, p = pending.pop(sentinel)
                p.join()
                code = p.exitcode
                if code != 0:
                    if code is not None and code < 0:
                        try:
                            reason = "killed by " + signal.Signals(-code).name
                        except ValueError:
                            reason = f"killed by signal {-code}"
                    else:
                        reason = f"exit code {code}"
                    kill_all()
                    out.error(f"worker {w} (pid {p.pid}) died: {reason}")
                    return 1
    except BaseException:
        kill_all()
        raise
    out.send([end_line(0)])
    return 0


def interpreter_api():
    """(create(own_gil) -> id, run(id, code) -> error text or None, destroy(id))
    for this Python's subinterpreters; raises where there are none."""
    if sys.version_info >= (3, 13):
        import _interpreters as api

        def create(own_gil):
            return api.create(api.new_config("isolated" if own_gil else "legacy"))

        def run(iid, code):
            failure = api.exec(iid, code)
            return None if failure is None else str(getattr(failure, "formatted", failure))

        return create, run, api.destroy
    if sys.version_info >= (3, 12):
        import _xxsubinterpreters as api

        def create(own_gil):
            return api.create(isolated=own_gil)

        def run(iid, code):
            try:
                api.run_string(iid, code)
            except Exception as e:  # noqa: BLE001 - the interpreter's failure, reported
                return describe(e)
            return None

        return create, run, api.destroy
    raise RuntimeError(
        f"Python {sys.version.split()[0]} has no subinterpreters with a GIL of their own (3.12 or later)"
    )


def current_interpreter():
    """This interpreter's id (0: the main one)."""
    if sys.version_info >= (3, 13):
        import _interpreters

        return int(_interpreters.get_current()[0])
    import _xxsubinterpreters

    return int(_xxsubinterpreters.get_current())


def interpreter_main(cfg, w, req, gun_fd=None):
    """A worker inside an interpreter of its own: the same loop, the same records."""
    t0 = now()
    out = Out()
    try:
        sys.setswitchinterval(cfg["switch_interval_s"])
        wk = Worker(w, worker_kind(cfg, w), cfg, out)
        wk.req = req
        wk.run(t0, lambda: gun_wait(gun_fd), current_interpreter())
    except BaseException as e:  # noqa: BLE001 - any failure ends the run
        out.error(f"worker {w}: {describe(e)}")
        raise


def worker_module_code(script):
    """Code that loads this very file as a module `_m` inside an interpreter
    (its own copy of every module: nothing is shared)."""
    return (
        "import importlib.util as _u\n"
        f"_s = _u.spec_from_file_location('gilscope_worker', {script!r})\n"
        "_m = _u.module_from_spec(_s)\n"
        "_s.loader.exec_module(_m)\n"
    )


def interpreter_start_ns(rounds=3):
    """What starting a worker in an interpreter of its own costs, in ns: the
    interpreter created with its own GIL and this file loaded in it, as
    run_subinterpreters does (the median of a few)."""
    create, run, destroy = interpreter_api()
    code = worker_module_code(os.path.abspath(__file__))
    times = []
    for _ in range(rounds):
        t = now()
        iid = create(True)
        failure = run(iid, code)
        times.append(now() - t)
        if failure is not None:
            raise RuntimeError(f"a subinterpreter failed: {' '.join(failure.split())}")
        # Created and run by this thread: destroying it is safe on 3.12 too.
        destroy(iid)
    return sorted(times)[len(times) // 2]


def run_subinterpreters(cfg, out):
    """N interpreters in this one process, one worker each, each driven by a
    thread of the main interpreter (the call runs the worker to its end)."""
    create, run, destroy = interpreter_api()
    gun = PipeGun(cfg["workers"]) if cfg["gun"] else None
    gun_fd = gun.fd if gun is not None else None
    watch_stdin(out, lambda: None, gun.fire if gun is not None else None)
    own_gil = not cfg["shared_gil"]
    failures = []
    threads = []
    interpreters = []

    def drive(iid, code):
        failure = run(iid, code)
        if failure is not None:
            failures.append(failure)

    for i in range(cfg["workers"]):
        w = cfg["first"] + i
        req = now()  # starting a worker is creating its interpreter
        iid = create(own_gil)
        interpreters.append(iid)
        code = worker_module_code(cfg["script"]) + f"_m.interpreter_main({cfg!r}, {w}, {req}, {gun_fd!r})\n"
        th = threading.Thread(target=drive, args=(iid, code), daemon=True)
        th.name = f"gilscope-interpreter-{w}"
        threads.append(th)
        th.start()
    for th in threads:
        th.join()
    if failures:
        out.error(f"a subinterpreter failed: {' '.join(failures[0].split())}")
        os._exit(1)
    out.send([end_line(0)])
    if sys.version_info >= (3, 13):
        for iid in interpreters:
            destroy(iid)
        return 0
    # 3.12's module cannot destroy an interpreter another thread ran (it
    # hangs): the records are out, so leave without tearing them down.
    os._exit(0)


# ------------------------------------------------------------------ command line


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise _argparse().ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise _argparse().ArgumentTypeError(f"{value} is below {low}")
        return value

    return parse


def _milliseconds(text):
    try:
        value = float(text)
    except ValueError:
        raise _argparse().ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise _argparse().ArgumentTypeError(f"{text!r} is not a number of milliseconds")
    return value


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise _argparse().ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise _argparse().ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _argparse():
    """argparse, imported only where arguments are parsed: a worker inside a
    subinterpreter loads this file too, and should not pay for it."""
    import argparse

    return argparse


def parse_args(argv):
    argparse = _argparse()

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())}\n")
            sys.exit(2)

    p = Parser(
        prog="gilscope_worker.py",
        description="gilscope's instrumented CPython worker (wire format 2).",
        allow_abbrev=False,
    )
    p.add_argument("--model", choices=["threads", "processes", "subinterpreters"], default="threads")
    p.add_argument("--start-method", choices=["fork", "forkserver", "spawn"], default="fork")
    p.add_argument(
        "--shared-gil",
        action="store_true",
        help="subinterpreters share the main GIL (the legacy config) instead of one each",
    )
    p.add_argument("--workers", type=_int_at_least(1), default=2)
    p.add_argument("--first-worker", type=_int_at_least(0), default=0)
    p.add_argument("--workload", choices=["cpu", "io", "mixed"], default="cpu")
    p.add_argument("--iterations", type=_int_at_least(0), default=4_000_000)
    p.add_argument("--requests", type=_int_at_least(0), default=20)
    p.add_argument("--io-ms", type=_milliseconds, default=5.0)
    p.add_argument("--reply-iterations", type=_int_at_least(0), default=20_000)
    p.add_argument("--switch-interval-s", type=_positive_seconds, default=0.005)
    p.add_argument("--spawned-at", type=_int_at_least(0), default=0)
    p.add_argument(
        "--gun",
        action="store_true",
        help="the workers begin their work at `go` on stdin (gilscope's start gun), not at once",
    )
    p.add_argument(
        "--bare",
        action="store_true",
        help="run the plain sqrt loop once, uninstrumented, and print its ns",
    )
    p.add_argument(
        "--interpreter-start",
        action="store_true",
        help="with --bare: print what starting a worker in a subinterpreter costs, in ns",
    )
    return p.parse_args(argv)


def gil_enabled():
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    set_pdeathsig()
    if args.bare and args.interpreter_start:
        os.write(1, f"{interpreter_start_ns()}\n".encode())
        return 0
    if args.bare:
        t = now()
        plain_loop(args.iterations)
        elapsed = now() - t
        os.write(1, f"{elapsed}\n".encode())
        return 0

    out = Out()
    try:
        sys.setswitchinterval(args.switch_interval_s)
        ns_per_iteration = calibrate()
        chunk = min(max(round(TARGET_STAMP_NS / ns_per_iteration), 64), 1_000_000)
        resolution_ns = max(round(chunk * ns_per_iteration), 1)
        cfg = {
            "workers": args.workers,
            "first": args.first_worker,
            "workload": args.workload,
            "iterations": args.iterations,
            "requests": args.requests,
            "io_ms": args.io_ms,
            "reply_iterations": args.reply_iterations,
            "switch_interval_s": args.switch_interval_s,
            "chunk": chunk,
            "batch": max(1, round(PROGRESS_NS / resolution_ns)),
            "resolution_ns": resolution_ns,
            "top_pid": os.getpid(),
            "start_method": args.start_method,
            "shared_gil": args.shared_gil,
            "script": os.path.abspath(__file__),
            "gun": args.gun,
        }
        # Interpreters of their own have a GIL each, unless they share the main one.
        gils = ""
        if args.model == "subinterpreters":
            gils = f" gils={1 if args.shared_gil else args.workers}"
        out.send(
            [
                f"gilscope {WIRE_VERSION} pid={os.getpid()} runtime=cpython"
                f" gil={'on' if gil_enabled() else 'off'} threads={args.workers}"
                f" first={args.first_worker} timeline=inferred"
                f" resolution_ns={resolution_ns}{gils}\n"
            ]
        )
        if args.model == "threads":
            return run_threads(cfg, out)
        if args.model == "subinterpreters":
            return run_subinterpreters(cfg, out)
        return run_processes(cfg, out)
    except BaseException as e:  # noqa: BLE001 - report, then exit non-zero
        out.error(describe(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
