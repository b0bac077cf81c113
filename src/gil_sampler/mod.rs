//! The real CPython's GIL, read from outside: who holds it, sampled from the
//! worker process's memory.
//!
//! The CPython runtime's lanes are otherwise inferred from clock stamps the
//! workers write (see the README). This module reads the lock itself: it
//! finds `_PyRuntime` in a live process ([`symbols`]), knows per version
//! where the GIL's fields are ([`layout`]), copies them out with
//! `process_vm_readv` ([`memory`]) and names the holder's OS thread
//! ([`threads`]). [`GilReader::read`] takes one consistent sample;
//! [`Sampler`] takes 10,000 a second on a thread of its own.
//!
//! Whatever it cannot read faithfully it refuses with a [`Fallback`] that
//! says why in a line, so the caller can keep the inferred lanes: a wrong
//! lane is worse than an inferred one.

pub mod layout;
pub mod memory;
mod sampler;
pub mod symbols;
pub mod threads;
pub mod uprobes;

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use layout::{GilHome, Layout, Version};
pub use sampler::{Ending, Sample, Sampler, SamplerConfig, SamplerStats};

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

/// One interpreter of a process (3.12 on, each may have a GIL of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// `PyInterpreterState.id`: 0 for the main interpreter.
    pub id: i64,
    /// Where its `PyInterpreterState` is in the process.
    pub address: u64,
}

/// A CPython process whose runtime has been found and whose version is
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
    /// Finds `pid`'s CPython runtime and its layout; a [`Fallback`] where
    /// the process is no CPython this module can read.
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
            let id = self.memory.read_u64(at + self.layout.interp_id)? as i64;
            found.push(Interpreter { id, address: at });
            at = self.memory.read_u64(at + self.layout.interp_next)?;
        }
        Ok(found)
    }

    /// The main interpreter, once CPython has created it.
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
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
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
                    std::thread::sleep(Duration::from_millis(5))
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
        let field = |offset: u64, len: usize| {
            let at = (offset - l.gil_last_holder) as usize;
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&head[at..at + len]);
            u64::from_ne_bytes(b)
        };
        let switch_number = field(l.gil_switch_number, 8);
        if u64::from_ne_bytes(before) != switch_number {
            return Err(ReadError::Torn);
        }
        let locked = match field(l.gil_locked, 4) {
            0 => false,
            1 => true,
            other => return Err(ReadError::Implausible(format!("locked = {other}"))),
        };
        let holder_tid = if locked {
            self.holders.tid(&self.process.memory, field(l.gil_last_holder, 8), u64::from_ne_bytes(created))
        } else {
            None
        };
        Ok(GilSample { locked, holder_tid, switch_number })
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
                let ready = unsafe { libc::poll(&mut poll, 1, 0) };
                ready > 0 && poll.revents & libc::POLLIN != 0
            }
            None => std::fs::metadata(format!("/proc/{}", self.process.pid)).is_err(),
        }
    }

    /// Forgets cached holders whose threads have exited; call it now and
    /// then (the sampler does, ten times a second).
    pub fn forget_exited_threads(&mut self) -> Result<(), ReadError> {
        let live = threads::task_ids(self.process.pid).map_err(|_| ReadError::Exited)?;
        self.holders.forget_exited(&live);
        Ok(())
    }

    /// A GIL's fields have narrow ranges: the flag is 0 or 1, a holder of a
    /// locked GIL is a thread state of one of the process's interpreters.
    /// A layout that does not fit the process shows here, before a single
    /// lane is drawn from it.
    fn check_plausible(&mut self) -> Result<(), Fallback> {
        let l = self.process.layout;
        let interpreters = self
            .process
            .interpreters()
            .map_err(|e| Fallback::new(format!("cannot list interpreters: {e}")))?;
        let unfit = |why: String| {
            Fallback::new(format!("CPython {}'s GIL does not look like one: {why}", self.process.version))
        };
        let interval = self.switch_interval().map_err(|e| unfit(e.to_string()))?;
        if interval > Duration::from_secs(3600) {
            return Err(unfit(format!("switch interval {interval:?}")));
        }
        let mut mismatched = None;
        // The holder is a moving target: one attempt of several that fits is enough.
        for _ in 0..20 {
            let mut head = [0u8; 32];
            self.process.memory.read(self.gil, &mut head).map_err(Fallback::from_memory)?;
            let word = |at: u64| {
                let at = at as usize;
                u64::from_ne_bytes([
                    head[at],
                    head[at + 1],
                    head[at + 2],
                    head[at + 3],
                    head[at + 4],
                    head[at + 5],
                    head[at + 6],
                    head[at + 7],
                ])
            };
            let locked = word(l.gil_locked) & 0xffff_ffff;
            let holder = word(l.gil_last_holder);
            match locked {
                0 => return Ok(()),
                1 if holder != 0 => {
                    let interp = self.process.memory.read_u64(holder + l.tstate_interp);
                    match interp {
                        Ok(interp) if interpreters.iter().any(|i| i.address == interp) => return Ok(()),
                        Ok(interp) => {
                            mismatched =
                                Some(format!("its holder's interpreter {interp:#x} is none of the process's"))
                        }
                        Err(e) => mismatched = Some(format!("its holder cannot be read: {e}")),
                    }
                }
                1 => mismatched = Some("locked with no holder".to_owned()),
                other => return Err(unfit(format!("locked = {other}"))),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(unfit(mismatched.unwrap_or_default()))
    }
}
