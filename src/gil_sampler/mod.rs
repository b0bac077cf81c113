//! The real `CPython`'s GIL, read from outside: who holds it, sampled from the
//! worker process's memory.
//!
//! The `CPython` runtime's lanes are otherwise inferred from clock stamps the
//! workers write (see the README). This module reads the lock itself: it
//! finds `_PyRuntime` in a live process ([`symbols`]), knows per version
//! where the GIL's fields are ([`layout`]), copies them out with
//! `process_vm_readv` ([`memory`]) and names the holder's OS thread
//! (`threads`). [`GilReader::read`] takes one consistent sample;
//! [`Sampler`] takes 10,000 a second on a thread of its own. Where perf
//! events are allowed, [`uprobes`] sees every take and release exactly
//! instead, from breakpoints on the interpreter's own functions.
//!
//! Whatever it cannot read faithfully it refuses with a [`Fallback`] that
//! says why in a line, so the caller can keep the inferred lanes: a wrong
//! lane is worse than an inferred one.

pub mod code;
pub mod layout;
pub mod memory;
mod sampler;
pub mod symbols;
mod threads;
pub mod uprobes;

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use layout::{GilHome, Layout, Version};
pub use sampler::{Ending, Sample, Sampler, SamplerConfig, SamplerStats, UNSURE_AFTER, read_sample};

use layout::{DEBUG_BLOCK_LEN, DebugOffsets};
use memory::{MemoryError, Piece, ProcessMemory};
use threads::{Holders, TidSource};

/// Interpreters a list may hold before it is taken for garbage.
const MAX_INTERPRETERS: usize = 4096;

/// Why the GIL of a process cannot be read: the caller falls back to the
/// inferred lanes. `reason` is one line for a human.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub reason: String,
    /// Trying again later may work: the interpreter is still starting.
    pub transient: bool,
}

impl Fallback {
    fn new(reason: impl Into<String>) -> Fallback {
        Fallback { reason: reason.into(), transient: false }
    }

    fn transient(reason: impl Into<String>) -> Fallback {
        Fallback { reason: reason.into(), transient: true }
    }

    fn from_memory(e: MemoryError) -> Fallback {
        match e {
            MemoryError::Exited => Fallback::new("the process has exited"),
            other => Fallback::new(other.to_string()),
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Fallback {}

/// Why one sample could not be taken.
#[derive(Debug)]
pub enum ReadError {
    /// The process has exited: no further read will work.
    Exited,
    /// The GIL changed hands while it was being read (its `switch_number`
    /// differed before and after); read again.
    Torn,
    /// The bytes read cannot be a GIL (e.g. `locked` neither 0 nor 1).
    Implausible(String),
    Memory(MemoryError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Exited => write!(f, "the process has exited"),
            ReadError::Torn => write!(f, "the GIL changed hands during the read"),
            ReadError::Implausible(why) => write!(f, "not a GIL: {why}"),
            ReadError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<MemoryError> for ReadError {
    fn from(e: MemoryError) -> ReadError {
        match e {
            MemoryError::Exited => ReadError::Exited,
            other => ReadError::Memory(other),
        }
    }
}

/// The GIL at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GilSample {
    pub locked: bool,
    /// The OS thread id (as in `/proc/PID/task`) of the holder, while the
    /// lock is held and the holder is one of the process's threads.
    pub holder_tid: Option<u32>,
    /// The interpreter's own count of hand-overs: it grows by one each time
    /// a thread takes the GIL that is not the thread that held it last.
    pub switch_number: u64,
}

/// A [`GilSample`] and when it was copied (`CLOCK_MONOTONIC`, ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// The middle of the copy.
    pub t: u64,
    /// How long the copy took: `t` is known to within half of it.
    pub took: u64,
    pub gil: GilSample,
}

/// One interpreter of a process (3.12 on, each may have a GIL of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// `PyInterpreterState.id`: 0 for the main interpreter.
    pub id: i64,
    /// Where its `PyInterpreterState` is in the process.
    pub address: u64,
}

/// A `CPython` process whose runtime has been found and whose version is
/// supported.
#[derive(Clone, Debug)]
pub struct PythonProcess {
    pid: u32,
    version: Version,
    layout: Layout,
    memory: ProcessMemory,
    /// `_PyRuntime` in the process.
    runtime: u64,
    tids: TidSource,
    /// Tells, when the pid is reused, that our process is gone.
    pidfd: Option<Arc<OwnedFd>>,
    /// The ELF file defining `_PyRuntime` (for the uprobes).
    python: symbols::Loaded,
}

impl PythonProcess {
    /// Finds `pid`'s `CPython` runtime and its layout; a [`Fallback`] where
    /// the process is no `CPython` this module can read.
    pub fn attach(pid: u32) -> Result<PythonProcess, Fallback> {
        let files = symbols::mapped_files(pid).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Fallback::new(format!("no process {pid}")),
            _ => Fallback::new(format!("cannot read /proc/{pid}/maps: {e}")),
        })?;
        let also = ["Py_Version", uprobes::TAKE_GIL, uprobes::DROP_GIL];
        let Some(python) = symbols::find_defining(pid, &files, "_PyRuntime", &also) else {
            return Err(no_runtime(pid, &files));
        };
        let Some(runtime) = python.address("_PyRuntime") else {
            return Err(Fallback::new("no _PyRuntime address"));
        };
        let memory = ProcessMemory::open(pid, runtime, 8).map_err(Fallback::from_memory)?;
        let mut head = vec![0u8; DEBUG_BLOCK_LEN];
        memory.read(runtime, &mut head).map_err(Fallback::from_memory)?;
        let block = DebugOffsets::parse(&head);
        let name = python.file.name();
        let version = match (python.address("Py_Version"), &block) {
            (Some(at), _) => {
                Version::from_hex(memory.read_u64(at).map_err(Fallback::from_memory)? & 0xffff_ffff)
            }
            (None, Some(block)) => block.version(),
            (None, None) => Version::from_file_name(&name).ok_or_else(|| {
                Fallback::new(format!(
                    "cannot tell which CPython {name} is: no Py_Version, no version in its name"
                ))
            })?,
        };
        let layout = layout::layout_for(version, block.as_ref()).map_err(Fallback::new)?;
        let tids = match layout.tstate_native_thread_id {
            Some(offset) => TidSource::Native { offset },
            None => pthread_tids(pid, &files, &memory, layout.tstate_thread_id),
        };
        Ok(PythonProcess { pid, version, layout, memory, runtime, tids, pidfd: pidfd_open(pid), python })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The offsets in use (from the table, or from the process's own
    /// `_Py_DebugOffsets`).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where `_PyRuntime` is in the process.
    pub fn runtime_address(&self) -> u64 {
        self.runtime
    }

    /// The ELF file that defines `_PyRuntime`, and where it is loaded.
    pub fn python_file(&self) -> &symbols::Loaded {
        &self.python
    }

    /// Whether holders can be named by OS thread id.
    pub fn names_holders(&self) -> bool {
        self.tids != TidSource::Unknown
    }

    /// The process's interpreters, newest first, the main one (id 0) last.
    pub fn interpreters(&self) -> Result<Vec<Interpreter>, ReadError> {
        let mut at = self.memory.read_u64(self.runtime + self.layout.runtime_interpreters_head)?;
        let mut found = Vec::new();
        while at != 0 {
            if found.len() == MAX_INTERPRETERS {
                return Err(ReadError::Implausible("the interpreter list does not end".to_owned()));
            }
            let id = self.memory.read_u64(at + self.layout.interp_id)?.cast_signed();
            found.push(Interpreter { id, address: at });
            at = self.memory.read_u64(at + self.layout.interp_next)?;
        }
        Ok(found)
    }

    /// The main interpreter, once `CPython` has created it.
    pub fn main_interpreter(&self) -> Result<Interpreter, Fallback> {
        let all = self.interpreters().map_err(|e| Fallback::new(format!("cannot list interpreters: {e}")))?;
        match all.iter().find(|i| i.id == 0) {
            Some(main) => Ok(*main),
            None if all.is_empty() => {
                Err(Fallback::transient("CPython has not created its main interpreter yet"))
            }
            None => Err(Fallback::new("no interpreter with id 0: the layout does not fit this process")),
        }
    }

    /// A reader of the GIL `interpreter` uses (before 3.12 every
    /// interpreter shares the runtime's one GIL). Checks first that what it
    /// would read looks like a GIL.
    pub fn gil_reader(&self, interpreter: Interpreter) -> Result<GilReader, Fallback> {
        let gil = match self.layout.gil {
            GilHome::Runtime { offset } => self.runtime + offset,
            GilHome::Interpreter { pointer } => {
                let gil =
                    self.memory.read_u64(interpreter.address + pointer).map_err(Fallback::from_memory)?;
                if gil == 0 {
                    return Err(Fallback::transient(format!(
                        "interpreter {} has no GIL yet",
                        interpreter.id
                    )));
                }
                gil
            }
        };
        let mut reader =
            GilReader { process: self.clone(), interpreter, gil, holders: Holders::new(self.pid, self.tids) };
        reader.check_plausible()?;
        Ok(reader)
    }
}

/// Why no `_PyRuntime` was found, in the words that fit the process.
fn no_runtime(pid: u32, files: &[symbols::MappedFile]) -> Fallback {
    // A parent returns from spawning as soon as the child's exec has begun,
    // before the kernel has mapped the new program, and ld.so maps the
    // libraries after that: a process this young is asked again later.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let Some(exe) = files.iter().find(|f| Some(&f.path) == exe.as_ref()) else {
        return Fallback::transient(format!("process {pid} is starting: its program is not mapped yet"));
    };
    let loading = exe.looks_like_python()
        && !files.iter().any(|f| f.name().starts_with("libpython"))
        && symbols::ElfInfo::read(&exe.path, &[]).is_ok_and(|info| info.links_libpython);
    if loading {
        return Fallback::transient(format!("process {pid} has not loaded its libpython yet"));
    }
    match files.iter().find(|f| f.looks_like_python()) {
        Some(f) => Fallback::new(format!("stripped interpreter: {} defines no _PyRuntime symbol", f.name())),
        None => Fallback::new(format!("not CPython: nothing mapped in process {pid} defines _PyRuntime")),
    }
}

/// 3.10 keeps only the pthread id; glibc says where in `struct pthread` the
/// OS id is.
fn pthread_tids(
    pid: u32,
    files: &[symbols::MappedFile],
    memory: &ProcessMemory,
    thread_id: u64,
) -> TidSource {
    const DESCRIPTOR: &str = "_thread_db_pthread_tid";
    let Some(at) = symbols::find_defining(pid, files, DESCRIPTOR, &[]).and_then(|l| l.address(DESCRIPTOR))
    else {
        return TidSource::Unknown;
    };
    let mut raw = [0u8; 12];
    if memory.read(at, &mut raw).is_err() {
        return TidSource::Unknown;
    }
    let word = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    match threads::pthread_tid_offset([word(0), word(4), word(8)]) {
        Some(tid_in_pthread) => TidSource::Pthread { thread_id, tid_in_pthread },
        None => TidSource::Unknown,
    }
}

fn pidfd_open(pid: u32) -> Option<Arc<OwnedFd>> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.cast_signed(), 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Some(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Reads one interpreter's GIL.
#[derive(Debug)]
pub struct GilReader {
    process: PythonProcess,
    interpreter: Interpreter,
    /// The `struct _gil_runtime_state` in the process.
    gil: u64,
    holders: Holders,
}

impl GilReader {
    /// The GIL of `pid`'s main interpreter.
    pub fn attach(pid: u32) -> Result<GilReader, Fallback> {
        let process = PythonProcess::attach(pid)?;
        let main = process.main_interpreter()?;
        process.gil_reader(main)
    }

    /// [`GilReader::attach`], tried again every 5 ms while the interpreter
    /// is still starting, for at most `within`: for a process just spawned.
    pub fn attach_within(pid: u32, within: Duration) -> Result<GilReader, Fallback> {
        let start = Instant::now();
        loop {
            match GilReader::attach(pid) {
                Err(f) if f.transient && start.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                done => return done,
            }
        }
    }

    pub fn process(&self) -> &PythonProcess {
        &self.process
    }

    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    pub fn version(&self) -> Version {
        self.process.version
    }

    pub fn interpreter(&self) -> Interpreter {
        self.interpreter
    }

    /// Where the GIL struct is in the process.
    pub fn gil_address(&self) -> u64 {
        self.gil
    }

    /// One consistent sample: the switch number is read before and after
    /// the holder and the flag, in the same system call, and a sample
    /// during which it moved is [`ReadError::Torn`].
    pub fn read(&mut self) -> Result<GilSample, ReadError> {
        self.read_stamped().map(|stamped| stamped.gil)
    }

    /// [`GilReader::read`], with when its bytes were copied: the clock is
    /// read either side of the copy alone, not of the holder's name (which
    /// may mean reading the thread state too, or `/proc`).
    pub fn read_stamped(&mut self) -> Result<Stamped, ReadError> {
        let before = crate::clock::now_ns();
        let raw = self.read_raw();
        let after = crate::clock::now_ns();
        let raw = raw?;
        let (t, took) = (before + (after - before) / 2, after - before);
        if raw.switch_before != raw.switch_number {
            return Err(ReadError::Torn);
        }
        let locked = match raw.locked {
            0 => false,
            1 => true,
            other => return Err(ReadError::Implausible(format!("locked = {other}"))),
        };
        let holder_tid = if locked {
            self.holders.tid(&self.process.memory, raw.holder, raw.threads_created)
        } else {
            None
        };
        Ok(Stamped { t, took, gil: GilSample { locked, holder_tid, switch_number: raw.switch_number } })
    }

    /// The GIL's fields as copied, not yet judged.
    fn read_raw(&self) -> Result<RawGil, ReadError> {
        let l = &self.process.layout;
        let (mut before, mut head, mut created) = ([0u8; 8], [0u8; layout::GIL_HEAD_LEN], [0u8; 8]);
        // Three pieces, copied in this order: the switch number, then the
        // GIL's head from `last_holder` on (its last field, `switch_number`,
        // copied after the others), then the thread-state counter. Each
        // piece costs the kernel a page walk, so fewer is cheaper.
        self.process.memory.read_pieces(&mut [
            Piece::new(self.gil + l.gil_switch_number, &mut before),
            Piece::new(self.gil + l.gil_last_holder, &mut head),
            // Last: a thread state is counted before its thread can take the
            // GIL, so the holder read above is never newer than this count.
            Piece::new(self.interpreter.address + l.interp_threads_created, &mut created),
        ])?;
        // In bounds: `layout_for` only hands out layouts whose GIL fields
        // fit `GIL_HEAD_LEN` bytes from `last_holder`.
        let field = |offset: u64, len: usize| {
            let at = (offset - l.gil_last_holder) as usize;
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&head[at..at + len]);
            u64::from_ne_bytes(b)
        };
        Ok(RawGil {
            switch_before: u64::from_ne_bytes(before),
            holder: field(l.gil_last_holder, 8),
            locked: field(l.gil_locked, 4),
            switch_number: field(l.gil_switch_number, 8),
            threads_created: u64::from_ne_bytes(created),
        })
    }

    /// The interpreter's switch interval (`sys.getswitchinterval()`).
    pub fn switch_interval(&self) -> Result<Duration, ReadError> {
        let us = self.process.memory.read_u64(self.gil + self.process.layout.gil_interval)?;
        Ok(Duration::from_micros(us))
    }

    /// The process has exited (told by its pidfd, so a reused pid does not
    /// fool it; without a pidfd, by `/proc`).
    pub fn has_exited(&self) -> bool {
        match &self.process.pidfd {
            Some(fd) => {
                let mut poll = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd, no wait.
                let ready = unsafe { libc::poll(&raw mut poll, 1, 0) };
                ready > 0 && poll.revents & libc::POLLIN != 0
            }
            None => std::fs::metadata(format!("/proc/{}", self.process.pid)).is_err(),
        }
    }

    /// Forgets cached holders whose threads have exited; call it now and
    /// then (the sampler does, ten times a second).
    pub fn forget_exited_threads(&mut self) -> Result<(), ReadError> {
        let live = crate::procfs::task_ids(self.process.pid).map_err(|_| ReadError::Exited)?;
        self.holders.forget_exited(&live);
        Ok(())
    }

    /// A GIL's fields have narrow ranges: the flag is 0 or 1, the switch
    /// interval is positive, and the last holder (set by the first take,
    /// never cleared) is a thread state of one of the process's
    /// interpreters. A layout that does not fit the process, even one that
    /// lands on zeroed memory, shows here before a single lane is drawn.
    fn check_plausible(&mut self) -> Result<(), Fallback> {
        let interpreters = self
            .process
            .interpreters()
            .map_err(|e| Fallback::new(format!("cannot list interpreters: {e}")))?;
        let version = self.process.version;
        let unfit =
            |why: String| Fallback::new(format!("CPython {version}'s GIL does not look like one: {why}"));
        let interval = self.switch_interval().map_err(|e| unfit(e.to_string()))?;
        if interval.is_zero() || interval > Duration::from_hours(1) {
            return Err(unfit(format!("switch interval {interval:?}")));
        }
        let mut mismatch = None;
        // The holder is a moving target (and a finished thread's state may
        // be freed): one fitting attempt of several is enough.
        for _ in 0..20 {
            let raw = self.read_raw().map_err(|e| unfit(e.to_string()))?;
            if raw.locked > 1 {
                return Err(unfit(format!("locked = {}", raw.locked)));
            }
            if raw.holder != 0 {
                match self.process.memory.read_u64(raw.holder + self.process.layout.tstate_interp) {
                    Ok(interp) if interpreters.iter().any(|i| i.address == interp) => return Ok(()),
                    Ok(interp) => {
                        mismatch =
                            Some(format!("its holder's interpreter {interp:#x} is none of the process's"));
                    }
                    Err(e) => mismatch = Some(format!("its holder cannot be read: {e}")),
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match mismatch {
            Some(why) => Err(unfit(why)),
            None => Err(Fallback::transient("the GIL has not been taken yet")),
        }
    }
}

/// The GIL's fields as one read copied them.
struct RawGil {
    switch_before: u64,
    holder: u64,
    locked: u64,
    switch_number: u64,
    threads_created: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `CPython` 3.11 runtime in this very process: `_PyRuntime`, one
    /// interpreter, one thread state (this thread), a GIL it holds.
    struct FakeRuntime {
        runtime: Box<[u64; 64]>,
        interp: Box<[u64; 16]>,
        tstate: Box<[u64; 32]>,
    }

    fn addr<T>(b: &T) -> u64 {
        std::ptr::from_ref::<T>(b) as u64
    }

    fn own_tid() -> u64 {
        // SAFETY: gettid has no failure mode.
        u64::from(unsafe { libc::gettid() } as u32)
    }

    impl FakeRuntime {
        fn new() -> FakeRuntime {
            let mut fake = FakeRuntime {
                runtime: Box::new([0; 64]),
                interp: Box::new([0; 16]),
                tstate: Box::new([0; 32]),
            };
            let l = Self::layout();
            fake.runtime[l.runtime_interpreters_head as usize / 8] = addr(&*fake.interp);
            fake.interp[l.interp_threads_created as usize / 8] = 1;
            fake.tstate[l.tstate_interp as usize / 8] = addr(&*fake.interp);
            fake.tstate[l.tstate_native_thread_id.unwrap_or(0) as usize / 8] = own_tid();
            fake.set_gil(5_000, addr(&*fake.tstate), 1, 42);
            fake
        }

        fn layout() -> Layout {
            layout::table(3, 11).unwrap()
        }

        fn set_gil(&mut self, interval: u64, holder: u64, locked: u64, switch_number: u64) {
            let GilHome::Runtime { offset } = Self::layout().gil else { unreachable!() };
            let at = offset as usize / 8;
            self.runtime[at..at + 4].copy_from_slice(&[interval, holder, locked, switch_number]);
        }

        fn process(&self) -> PythonProcess {
            let pid = std::process::id();
            let runtime = addr(&*self.runtime);
            let file = symbols::MappedFile { path: "fake".into(), inode: 0, mappings: Vec::new() };
            PythonProcess {
                pid,
                version: Version { major: 3, minor: 11, micro: Some(7) },
                layout: Self::layout(),
                memory: ProcessMemory::open(pid, runtime, 8).unwrap(),
                runtime,
                tids: TidSource::Native { offset: Self::layout().tstate_native_thread_id.unwrap() },
                pidfd: None,
                python: symbols::Loaded { file, info: symbols::ElfInfo::default(), bias: 0 },
            }
        }

        fn reader(&self) -> Result<GilReader, Fallback> {
            let process = self.process();
            let main = process.main_interpreter()?;
            process.gil_reader(main)
        }
    }

    #[test]
    fn a_gil_that_fits_its_layout_is_read_with_its_holder_named() {
        let fake = FakeRuntime::new();
        let mut reader = fake.reader().unwrap();
        let sample = reader.read().unwrap();
        assert_eq!(sample, GilSample { locked: true, holder_tid: Some(own_tid() as u32), switch_number: 42 });
        assert_eq!(reader.switch_interval().unwrap(), Duration::from_millis(5));
    }

    #[test]
    fn zeroed_memory_is_no_gil() {
        let mut fake = FakeRuntime::new();
        fake.set_gil(0, 0, 0, 0);
        let why = fake.reader().unwrap_err();
        assert!(why.reason.contains("does not look like one"), "{why}");
    }

    #[test]
    fn a_flag_that_is_neither_0_nor_1_is_no_gil() {
        let mut fake = FakeRuntime::new();
        let holder = addr(&*fake.tstate);
        fake.set_gil(5_000, holder, 7, 42);
        let why = fake.reader().unwrap_err();
        assert!(why.reason.ends_with("locked = 7"), "{why}");
    }

    #[test]
    fn a_holder_of_no_known_interpreter_is_no_gil() {
        let mut fake = FakeRuntime::new();
        let interp_at = FakeRuntime::layout().tstate_interp as usize / 8;
        fake.tstate[interp_at] = 0x1234_5678;
        let why = fake.reader().unwrap_err();
        assert!(why.reason.contains("none of the process's"), "{why}");
    }

    #[test]
    fn a_gil_nobody_has_taken_yet_is_worth_asking_again() {
        let mut fake = FakeRuntime::new();
        fake.set_gil(5_000, 0, 0, 0);
        let why = fake.reader().unwrap_err();
        assert!(why.transient, "{why}");
    }

    #[test]
    fn a_switch_number_that_moves_during_the_read_makes_it_torn() {
        // Another thread bumps switch_number as fast as it can: some reads
        // must see it move between their first piece and their last field.
        let fake = FakeRuntime::new();
        let mut reader = fake.reader().unwrap();
        let l = FakeRuntime::layout();
        let gil = reader.gil_address() + l.gil_switch_number;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bump = {
            let stop = std::sync::Arc::clone(&stop);
            let at = gil as usize;
            std::thread::spawn(move || {
                // SAFETY: `at` is the fake GIL's switch_number, alive until joined.
                let word = unsafe { &*(at as *const std::sync::atomic::AtomicU64) };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    word.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        // Read only once the bumping thread is seen running, and until a
        // read is caught mid-move or ten seconds have passed: on a busy or
        // single-core machine the two threads may share a core, and then
        // only a read preempted between its pieces can see the move.
        // SAFETY: as above; the fake outlives this function.
        let word = unsafe { &*(gil as usize as *const std::sync::atomic::AtomicU64) };
        let first = word.load(std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        while word.load(std::sync::atomic::Ordering::Relaxed) == first && started.elapsed().as_secs() < 10 {
            std::thread::yield_now();
        }
        let (mut reads, mut torn) = (0u64, 0u64);
        let reading = std::time::Instant::now();
        while torn == 0 && reading.elapsed().as_secs() < 10 {
            reads += 1;
            torn += u64::from(matches!(reader.read(), Err(ReadError::Torn)));
        }
        let bumps = word.load(std::sync::atomic::Ordering::Relaxed) - first;
        // The bumping thread spins until told to stop: stop it before the
        // fake goes away, and so it spins on no core after this test.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = bump.join();
        assert!(torn > 0, "{bumps} bumps during {reads} reads, none caught mid-read");
    }
}
