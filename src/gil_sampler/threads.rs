//! Which OS thread a `PyThreadState*` is.
//!
//! The GIL names its holder by thread-state address; the rest of gilscope
//! knows threads by OS thread id. 3.11 on store the id in the thread state
//! (`native_thread_id`); 3.10 only stores the pthread id, and glibc's
//! `struct pthread` holds the OS id at an offset glibc itself publishes for
//! debuggers (`_thread_db_pthread_tid`, the descriptor `libthread_db` reads).
//!
//! Answers are cached: a thread state's thread never changes while it
//! lives. But a freed thread state's address is often handed to the next
//! one, so the cache is emptied whenever the interpreter has created a
//! thread state since (its `threads_created` counter moved), and an id is
//! only ever given out once `/proc/PID/task` confirms it is one of the
//! process's threads.

use std::collections::{HashMap, HashSet};

use super::memory::ProcessMemory;

/// How a thread state leads to its OS thread id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TidSource {
    /// `PyThreadState.native_thread_id`, at this offset.
    Native { offset: u64 },
    /// `PyThreadState.thread_id` (a `pthread_t`, i.e. the address of glibc's
    /// `struct pthread`) at `thread_id`, and the OS id inside that struct at
    /// `tid_in_pthread`.
    Pthread { thread_id: u64, tid_in_pthread: u64 },
    /// Neither is known: holders stay anonymous.
    Unknown,
}

/// Reads glibc's `libthread_db` descriptor for `struct pthread`'s `tid`: three
/// u32, the field's size in bits, its element count, its offset.
pub fn pthread_tid_offset(descriptor: [u32; 3]) -> Option<u64> {
    let [bits, count, offset] = descriptor;
    (bits == 32 && count == 1 && offset < 4096).then_some(u64::from(offset))
}

/// One of `pid`'s threads, now.
fn is_thread_of(pid: u32, tid: u32) -> bool {
    tid != 0 && std::fs::metadata(format!("/proc/{pid}/task/{tid}")).is_ok()
}

/// The cache of holders' OS thread ids.
#[derive(Debug)]
pub struct Holders {
    pid: u32,
    source: TidSource,
    /// `None`: the thread state gave no id of one of the process's threads.
    cache: HashMap<u64, Option<u32>>,
    /// The interpreter's thread-state counter the cache is valid for.
    threads_created: u64,
}

impl Holders {
    pub fn new(pid: u32, source: TidSource) -> Holders {
        Holders { pid, source, cache: HashMap::new(), threads_created: 0 }
    }

    /// The OS thread id of thread state `tstate`; `threads_created` is the
    /// interpreter's counter read in the same sample.
    pub fn tid(&mut self, memory: &ProcessMemory, tstate: u64, threads_created: u64) -> Option<u32> {
        if tstate == 0 {
            return None;
        }
        if threads_created != self.threads_created {
            self.cache.clear();
            self.threads_created = threads_created;
        }
        if let Some(&known) = self.cache.get(&tstate) {
            return known;
        }
        let tid = self.resolve(memory, tstate).filter(|&tid| is_thread_of(self.pid, tid));
        self.cache.insert(tstate, tid);
        tid
    }

    fn resolve(&self, memory: &ProcessMemory, tstate: u64) -> Option<u32> {
        let id = match self.source {
            TidSource::Native { offset } => memory.read_u64(tstate + offset).ok()?,
            TidSource::Pthread { thread_id, tid_in_pthread } => {
                let pthread = memory.read_u64(tstate + thread_id).ok()?;
                if pthread == 0 {
                    return None;
                }
                u64::from(memory.read_u32(pthread + tid_in_pthread).ok()?)
            }
            TidSource::Unknown => return None,
        };
        u32::try_from(id).ok()
    }

    /// Forgets every answer naming a thread that has exited (and every
    /// "unknown", so it is asked again). Call it now and then.
    pub fn forget_exited(&mut self, live: &HashSet<u32>) {
        self.cache.retain(|_, tid| tid.is_some_and(|tid| live.contains(&tid)));
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake thread state in this very process: native id at offset 8.
    #[repr(C)]
    struct FakeTstate {
        other: u64,
        native_thread_id: u64,
    }

    fn own_tid() -> u32 {
        // SAFETY: gettid has no failure mode.
        unsafe { libc::gettid() as u32 }
    }

    fn memory_of_self(at: u64) -> ProcessMemory {
        ProcessMemory::open(std::process::id(), at, 8).unwrap()
    }

    #[test]
    fn a_thread_state_names_its_thread_and_the_answer_is_cached_until_a_thread_is_created() {
        let mut fake = Box::new(FakeTstate { other: 0, native_thread_id: u64::from(own_tid()) });
        let at = &raw const *fake as u64;
        let memory = memory_of_self(at);
        let mut holders = Holders::new(std::process::id(), TidSource::Native { offset: 8 });
        assert_eq!(holders.tid(&memory, at, 1), Some(own_tid()));
        // The memory changes, but the counter did not: the cache answers.
        fake.native_thread_id = 1;
        assert_eq!(std::hint::black_box(&fake).other, 0);
        assert_eq!(holders.tid(&memory, at, 1), Some(own_tid()));
        // A thread state was created: the address may be someone else's now,
        // and 1 is no thread of ours.
        assert_eq!(holders.tid(&memory, at, 2), None);
        assert_eq!(holders.tid(&memory, 0, 2), None);
    }

    #[test]
    fn an_id_that_is_not_one_of_the_process_threads_is_never_given_out() {
        let fake = Box::new(FakeTstate { other: 0, native_thread_id: 1 });
        let at = &raw const *fake as u64;
        let mut holders = Holders::new(std::process::id(), TidSource::Native { offset: 8 });
        assert_eq!(holders.tid(&memory_of_self(at), at, 0), None);
    }

    #[test]
    fn forgetting_exited_threads_keeps_only_live_answers() {
        let fake = Box::new(FakeTstate { other: 0, native_thread_id: u64::from(own_tid()) });
        let at = &raw const *fake as u64;
        let mut holders = Holders::new(std::process::id(), TidSource::Native { offset: 8 });
        holders.tid(&memory_of_self(at), at, 0);
        holders.forget_exited(&crate::procfs::task_ids(std::process::id()).unwrap());
        assert_eq!(holders.cached(), 1);
        holders.forget_exited(&HashSet::new());
        assert_eq!(holders.cached(), 0);
    }

    #[test]
    fn glibc_publishes_where_struct_pthread_keeps_the_os_thread_id() {
        // This very thread: pthread_self() is the struct pthread's address.
        // The descriptor is found by the dynamic linker here, so that this
        // checks glibc's word and the reading of it, not symbol lookup
        // (which symbols.rs tests).
        // SAFETY: a NUL-terminated name; dlsym has no other precondition.
        let at = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db_pthread_tid".as_ptr()) } as u64;
        assert_ne!(at, 0, "glibc 2.34+ defines _thread_db_pthread_tid");
        let memory = memory_of_self(at);
        let mut raw = [0u8; 12];
        memory.read(at, &mut raw).unwrap();
        let word = |i: usize| u32::from_ne_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let words = [word(0), word(4), word(8)];
        let offset = pthread_tid_offset(words)
            .unwrap_or_else(|| panic!("not a 32-bit tid field: {words:?} at {at:#x}"));
        // SAFETY: pthread_self has no failure mode.
        let me = unsafe { libc::pthread_self() } as u64;
        assert_eq!(memory.read_u32(me + offset).unwrap(), own_tid());
    }
}
