//! Exact GIL hand-overs from uprobes on `CPython`'s `take_gil` and
//! `drop_gil`, each stamped by the kernel.
//!
//! Sampling sees who holds the GIL every 100 µs; a uprobe sees every take
//! and every release as it happens, at the cost of a breakpoint trap in the
//! interpreter per event (hundreds a second at a 5 ms switch interval)
//! instead of a sampler's wake-ups. Three perf events per thread, opened
//! with `perf_event_open` on the uprobe PMU and the file offsets of the two
//! static functions (so they need the `.symtab` of a build that kept it):
//! `take_gil` entry (the thread starts waiting), `take_gil` return (it
//! holds the GIL), and inside `drop_gil`, just after the GIL was freed (it
//! has let go). Not at `drop_gil`'s entry: a trap there delays the waiter's
//! signal and changes who wins the GIL (see [`super::code`]). Timestamps are
//! `CLOCK_MONOTONIC`, the axis of every other gilscope record. The three
//! events of a thread share one ring buffer, read at each drain.
//!
//! Threads the process starts later are found at the next drain, and
//! traced from then on: `inherit` cannot follow them, as the kernel sets up
//! an inherited uprobe event by reading the probed file's path through the
//! pointer in the attributes, in the new thread's address space, and the
//! thread's creation fails.
//!
//! A return probe fires only for calls entered after it was placed: a
//! thread already waiting in `take_gil` when the probes attach reports no
//! `Take` for that wait, and its first event is the `Drop` that ends it.
//! A thread's events are complete from its first `Wait` on.
//!
//! Known gap: `CPython` 3.13 inlines `drop_gil` into the deprecated
//! `PyEval_ReleaseLock`; a release through that function is not seen.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Fallback, PythonProcess, code};

/// The static function that takes the GIL (in `.symtab` only).
pub const TAKE_GIL: &str = "take_gil";
/// The static function that releases it.
pub const DROP_GIL: &str = "drop_gil";
/// The call in `drop_gil` after which the GIL is free and a waiter signalled.
const RELEASE_CALL: &str = "pthread_mutex_unlock";

/// Where the kernel says which PMU type number uprobes have.
const UPROBE_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";
/// `config` bit that makes a uprobe a return probe (`.../uprobe/format/retprobe`).
const RETPROBE: u64 = 1;

/// Data pages of each thread's ring buffer (a power of two): 128 KiB holds
/// 4,096 events, seconds of hand-overs between two drains.
const DATA_PAGES: usize = 32;

// perf ABI (linux/perf_event.h), as numbers.
const PERF_SAMPLE_TID: u64 = 1 << 1;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_IDENTIFIER: u64 = 1 << 16;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const IOC_ENABLE: libc::c_ulong = 0x2400;
const IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
const IOC_ID: libc::c_ulong = 0x8008_2407;
/// `perf_event_mmap_page`: where `data_head`, `data_tail`, `data_offset`
/// and `data_size` are.
const MMAP_DATA_HEAD: usize = 1024;
const MMAP_DATA_TAIL: usize = 1032;
const MMAP_DATA_OFFSET: usize = 1040;
const MMAP_DATA_SIZE: usize = 1048;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5`, the fields this
/// module sets named, the rest zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// `uprobe_path`: a pointer to the file's path.
    config1: u64,
    /// `probe_offset`: the file offset of the probed instruction.
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

/// What a thread did to the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GilEventKind {
    /// Entered `take_gil`: it wants the GIL (and may have to wait).
    Wait,
    /// Returned from `take_gil`: it holds the GIL.
    Take,
    /// Let go: `drop_gil` has freed the GIL and signalled a waiter (the
    /// waiter may already hold it by the time this is stamped).
    Drop,
}

/// One event, kernel-stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GilEvent {
    /// `CLOCK_MONOTONIC`, ns.
    pub t: u64,
    /// OS thread id.
    pub tid: u32,
    pub kind: GilEventKind,
}

/// One thread's ring buffer, shared by its three events.
struct Ring {
    base: *mut u8,
    len: usize,
    data_offset: usize,
    data_size: usize,
}

// SAFETY: the mapping is owned by the Ring and only read (and its tail
// written) through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    fn map(fd: &OwnedFd) -> std::io::Result<Ring> {
        let page = usize::try_from(crate::procfs::page_size()).unwrap_or(4096);
        let len = page * (1 + DATA_PAGES);
        // SAFETY: a shared mapping of a perf event fd of the size perf
        // requires (1 + 2^n pages); checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut ring = Ring { base: base.cast(), len, data_offset: page, data_size: page * DATA_PAGES };
        // Kernels since 4.1 say where the data is; older ones leave zeros.
        let (offset, size) = (ring.word(MMAP_DATA_OFFSET), ring.word(MMAP_DATA_SIZE));
        if offset != 0 && size != 0 {
            ring.data_offset = offset as usize;
            ring.data_size = size as usize;
        }
        Ok(ring)
    }

    fn word(&self, at: usize) -> u64 {
        // SAFETY: `at` is within the metadata page and 8-aligned (the page
        // is, and every offset read is a multiple of 8).
        #[allow(clippy::cast_ptr_alignment)]
        unsafe {
            std::ptr::read_volatile(self.base.add(at).cast::<u64>())
        }
    }

    fn atomic(&self, at: usize) -> &AtomicU64 {
        // SAFETY: within the metadata page, 8-aligned, and the kernel
        // treats data_head/data_tail as atomically updated words.
        #[allow(clippy::cast_ptr_alignment)]
        unsafe {
            &*self.base.add(at).cast::<AtomicU64>()
        }
    }

    /// Copies out every record written since the last call.
    fn take_records(&mut self, out: &mut Vec<u8>) {
        let head = self.atomic(MMAP_DATA_HEAD).load(Ordering::Acquire);
        let tail = self.atomic(MMAP_DATA_TAIL).load(Ordering::Relaxed);
        let mut at = tail;
        while at < head {
            let start = (at % self.data_size as u64) as usize;
            let n = ((head - at) as usize).min(self.data_size - start);
            // SAFETY: `start + n` stays within the data area.
            let bytes = unsafe { std::slice::from_raw_parts(self.base.add(self.data_offset + start), n) };
            out.extend_from_slice(bytes);
            at += n as u64;
        }
        self.atomic(MMAP_DATA_TAIL).store(head, Ordering::Release);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// The probes of one thread: its ring buffer and its three events.
struct Traced {
    ring: Ring,
    /// Closing them removes the probes from the thread.
    _events: Vec<OwnedFd>,
}

/// The probes on one process: events of every thread, drained on demand.
pub struct GilProbes {
    pid: u32,
    pmu: u32,
    /// The probed file, as `perf_event_open` takes it (its attributes point here).
    path: std::ffi::CString,
    take: u64,
    drop: u64,
    threads: HashMap<u32, Traced>,
    kinds: HashMap<u64, GilEventKind>,
    lost: u64,
    untraced: u64,
    /// The largest share of its ring any thread filled between the last
    /// two drains (0 to 1).
    fullest: f64,
    /// When the process's threads were last listed.
    /// None: at the next drain.
    listed_at: Option<std::time::Instant>,
}

/// How often a drain looks for threads that began or ended: listing
/// /proc/PID/task at every drain (25 to 100 ms apart, per process) was most
/// of the reading thread's CPU, and a worker's threads all start before its
/// GIL is taken in.
const RELIST_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl std::fmt::Debug for GilProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GilProbes")
            .field("pid", &self.pid)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

/// The file offsets of `take_gil`'s entry and of the point in `drop_gil`
/// where the GIL is free (just after its `pthread_mutex_unlock`), in the
/// ELF file that defines `_PyRuntime`.
fn probe_offsets(process: &PythonProcess) -> Result<(u64, u64), Fallback> {
    let python = process.python_file();
    let symbol = |name: &str| {
        python.info.symbols.get(name).copied().ok_or_else(|| {
            Fallback::new(format!("no {name} symbol in {}: its .symtab was stripped", python.file.name()))
        })
    };
    let offset = |what: &str, vaddr: u64| {
        python.info.file_offset(vaddr).ok_or_else(|| Fallback::new(format!("{what} lies in no segment")))
    };
    let take = offset(TAKE_GIL, symbol(TAKE_GIL)?.address)?;
    let let_go = code::after_first_call(&python.file.path, &python.info, symbol(DROP_GIL)?, RELEASE_CALL)
        .map_err(|why| {
            Fallback::new(format!(
                "cannot find where {DROP_GIL} lets go ({why}); a probe at its entry would change who wins the GIL"
            ))
        })?;
    Ok((take, offset(DROP_GIL, let_go)?))
}

fn perf_event_open(attr: &PerfEventAttr, tid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid perf_event_attr of the size it states, its
    // path pointer valid for the call; an event of one thread on any CPU.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref::<PerfEventAttr>(attr),
            tid.cast_signed(),
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe {
        OwnedFd::from_raw_fd(
            i32::try_from(fd).map_err(|_| std::io::Error::other("a descriptor out of range"))?,
        )
    })
}

fn ioctl(fd: &OwnedFd, request: libc::c_ulong, arg: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: perf ioctls on a perf fd; `arg` is a value or a valid pointer as each request needs.
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn refused(e: &std::io::Error) -> Fallback {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            Fallback::new(format!("perf_event_open refused: {e} (uprobes need root or CAP_PERFMON)"))
        }
        _ => Fallback::new(format!("perf_event_open failed: {e}")),
    }
}

impl GilProbes {
    /// Puts the probes on every thread of `process`.
    pub fn attach(process: &PythonProcess) -> Result<GilProbes, Fallback> {
        let (take, drop) = probe_offsets(process)?;
        let pmu: u32 = std::fs::read_to_string(UPROBE_TYPE)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Fallback::new(format!("no uprobe PMU here ({UPROBE_TYPE})")))?;
        let path = std::ffi::CString::new(process.python_file().file.path.as_os_str().as_encoded_bytes())
            .map_err(|_| Fallback::new("the interpreter's path holds a NUL"))?;
        let tids = crate::procfs::task_ids(process.pid())
            .map_err(|e| Fallback::new(format!("cannot list threads: {e}")))?;
        let mut gil = GilProbes {
            pid: process.pid(),
            pmu,
            path,
            take,
            drop,
            threads: HashMap::new(),
            kinds: HashMap::new(),
            lost: 0,
            untraced: 0,
            fullest: 0.0,
            listed_at: Some(std::time::Instant::now()),
        };
        for tid in tids {
            // Refusals show on the first thread: say why, do not half-attach.
            if let Some(traced) = gil.trace(tid).map_err(|e| refused(&e))? {
                gil.threads.insert(tid, traced);
            }
        }
        Ok(gil)
    }

    /// Opens the three events of `tid` into one ring buffer, and enables
    /// them; `None` if the thread has ended.
    fn trace(&mut self, tid: u32) -> std::io::Result<Option<Traced>> {
        let probes = [
            (0, self.take, GilEventKind::Wait),
            (RETPROBE, self.take, GilEventKind::Take),
            (0, self.drop, GilEventKind::Drop),
        ];
        let mut events: Vec<OwnedFd> = Vec::new();
        let mut ring = None;
        for (config, offset, kind) in probes {
            let attr = PerfEventAttr {
                kind: self.pmu,
                size: std::mem::size_of::<PerfEventAttr>() as u32,
                config,
                sample_period: 1,
                sample_type: PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME,
                flags: FLAG_DISABLED | FLAG_USE_CLOCKID,
                config1: self.path.as_ptr() as u64,
                config2: offset,
                clockid: libc::CLOCK_MONOTONIC,
                ..PerfEventAttr::default()
            };
            let fd = match perf_event_open(&attr, tid) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut id = 0u64;
            ioctl(&fd, IOC_ID, &raw mut id as libc::c_ulong)?;
            self.kinds.insert(id, kind);
            match events.first() {
                None => ring = Some(Ring::map(&fd)?),
                Some(owner) => ioctl(&fd, IOC_SET_OUTPUT, owner.as_raw_fd() as libc::c_ulong)?,
            }
            events.push(fd);
        }
        for fd in &events {
            ioctl(fd, IOC_ENABLE, 0)?;
        }
        Ok(ring.map(|ring| Traced { ring, _events: events }))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Threads traced now.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Events the kernel dropped because a ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// New threads that could not be traced (e.g. out of descriptors).
    pub fn untraced(&self) -> u64 {
        self.untraced
    }

    /// Has the next drain list the process's threads whatever the time
    /// since the last listing: a thread just started is traced from then on.
    pub fn list_threads_at_next_drain(&mut self) {
        self.listed_at = None;
    }

    /// The largest share of its ring buffer a thread filled between the
    /// last two drains: how much sooner the next must come.
    pub fn fullest(&self) -> f64 {
        self.fullest
    }

    /// Every event recorded since the last drain, in time order; starts
    /// tracing threads that appeared since and lets go of those that ended
    /// (after reading their last events). Threads write to buffers of
    /// their own, so an event can come one drain later than another
    /// stamped a little after it.
    pub fn drain(&mut self) -> Vec<GilEvent> {
        // An exited process has no task list: every thread is gone.
        let live = self.listed_at.is_none_or(|at| at.elapsed() >= RELIST_EVERY).then(|| {
            self.listed_at = Some(std::time::Instant::now());
            crate::procfs::task_ids(self.pid).unwrap_or_default()
        });
        for &tid in live.iter().flatten() {
            if self.threads.contains_key(&tid) {
                continue;
            }
            match self.trace(tid) {
                Ok(Some(traced)) => {
                    self.threads.insert(tid, traced);
                }
                Ok(None) => {}
                Err(_) => self.untraced += 1,
            }
        }
        let mut events = Vec::new();
        let mut bytes = Vec::new();
        self.fullest = 0.0;
        for traced in self.threads.values_mut() {
            bytes.clear();
            traced.ring.take_records(&mut bytes);
            self.fullest = self.fullest.max(bytes.len() as f64 / traced.ring.data_size as f64);
            self.lost += parse_records(&bytes, &self.kinds, &mut events);
        }
        if let Some(live) = live {
            self.threads.retain(|tid, _| live.contains(tid));
        }
        events.sort_by_key(|e| e.t);
        events
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Decodes perf records (header: type u32, misc u16, size u16); samples are
/// id, pid, tid, time. Returns how many events the kernel reported lost.
fn parse_records(bytes: &[u8], kinds: &HashMap<u64, GilEventKind>, out: &mut Vec<GilEvent>) -> u64 {
    let mut lost = 0;
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let kind = u32_at(bytes, at);
        let size = usize::from(u16::from_ne_bytes([bytes[at + 6], bytes[at + 7]]));
        if size < 8 || at + size > bytes.len() {
            break;
        }
        let body = &bytes[at + 8..at + size];
        match kind {
            PERF_RECORD_SAMPLE if body.len() >= 24 => {
                if let Some(&event) = kinds.get(&u64_at(body, 0)) {
                    out.push(GilEvent { t: u64_at(body, 16), tid: u32_at(body, 12), kind: event });
                }
            }
            PERF_RECORD_LOST if body.len() >= 16 => lost += u64_at(body, 8),
            _ => {}
        }
        at += size;
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attr_struct_has_the_size_of_perf_attr_size_ver5() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 112);
        assert_eq!(std::mem::offset_of!(PerfEventAttr, config1), 56);
        assert_eq!(std::mem::offset_of!(PerfEventAttr, clockid), 92);
    }

    fn record(kind: u32, body: &[u64]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&kind.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&((8 + 8 * body.len()) as u16).to_ne_bytes());
        for w in body {
            r.extend_from_slice(&w.to_ne_bytes());
        }
        r
    }

    #[test]
    fn samples_become_events_of_their_probe_and_lost_records_are_counted() {
        let kinds = HashMap::from([(7, GilEventKind::Take), (8, GilEventKind::Drop)]);
        let pid_tid = |pid: u64, tid: u64| pid | (tid << 32);
        let mut bytes = record(PERF_RECORD_SAMPLE, &[7, pid_tid(100, 101), 5_000]);
        bytes.extend(record(PERF_RECORD_LOST, &[8, 3]));
        bytes.extend(record(PERF_RECORD_SAMPLE, &[8, pid_tid(100, 102), 6_000]));
        bytes.extend(record(PERF_RECORD_SAMPLE, &[99, pid_tid(100, 102), 7_000]));
        // A record cut short at the end is left alone.
        bytes.extend(&record(PERF_RECORD_SAMPLE, &[7, pid_tid(100, 101), 8_000])[..20]);
        let mut events = Vec::new();
        assert_eq!(parse_records(&bytes, &kinds, &mut events), 3);
        assert_eq!(
            events,
            vec![
                GilEvent { t: 5_000, tid: 101, kind: GilEventKind::Take },
                GilEvent { t: 6_000, tid: 102, kind: GilEventKind::Drop },
            ]
        );
    }
}
