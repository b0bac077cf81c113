//! Reading another process's memory: all the GIL sampler ever sees of `CPython`.
//!
//! `process_vm_readv` copies straight out of the target's pages, several
//! pieces in one system call, which is what keeps a 10 kHz sampler cheap.
//! Where it is refused (container seccomp profiles often block it while
//! leaving `/proc`) the same bytes come from `/proc/PID/mem`, one `pread` a
//! piece. Either way a read that comes back short is an error: a half-copied
//! pointer is worse than no pointer.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Pieces one `process_vm_readv` call takes here; a sample needs five.
const PIECES_PER_CALL: usize = 8;

/// Why a read of the target's memory gave nothing usable.
#[derive(Debug)]
pub enum MemoryError {
    /// The process has exited (or was never there).
    Exited,
    /// The kernel refused: no ptrace permission over the target.
    Refused(std::io::Error),
    /// Fewer bytes came back than were asked for: part of the range is not
    /// mapped in the target.
    Short { address: u64, wanted: usize, got: usize },
    /// Any other failure of the system call.
    Io(std::io::Error),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::Exited => write!(f, "the process has exited"),
            MemoryError::Refused(e) => write!(f, "reading process memory refused: {e}"),
            MemoryError::Short { address, wanted, got } => {
                write!(f, "short read at {address:#x}: {got} of {wanted} bytes (unmapped?)")
            }
            MemoryError::Io(e) => write!(f, "reading process memory failed: {e}"),
        }
    }
}

impl std::error::Error for MemoryError {}

impl MemoryError {
    fn from_errno(e: std::io::Error) -> MemoryError {
        match e.raw_os_error() {
            Some(libc::ESRCH) => MemoryError::Exited,
            Some(libc::EPERM | libc::EACCES) => MemoryError::Refused(e),
            _ => MemoryError::Io(e),
        }
    }
}

/// One range to copy out of the target: `buf.len()` bytes at `address`.
pub struct Piece<'a> {
    pub address: u64,
    pub buf: &'a mut [u8],
}

impl<'a> Piece<'a> {
    pub fn new(address: u64, buf: &'a mut [u8]) -> Piece<'a> {
        Piece { address, buf }
    }
}

/// How the bytes are fetched.
#[derive(Clone, Debug)]
enum Access {
    VmReadv,
    /// `/proc/PID/mem`, shared by the clones of one handle.
    ProcMem(Arc<File>),
}

/// Read access to one process's memory.
#[derive(Clone, Debug)]
pub struct ProcessMemory {
    pid: libc::pid_t,
    access: Access,
}

impl ProcessMemory {
    /// Opens `pid`'s memory, proving access with a read of `probe` bytes at
    /// `address` (a location known to be mapped, such as `_PyRuntime`):
    /// `process_vm_readv` first, `/proc/PID/mem` where that is refused.
    pub fn open(pid: u32, address: u64, probe: usize) -> Result<ProcessMemory, MemoryError> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| MemoryError::Exited)?;
        let direct = ProcessMemory { pid, access: Access::VmReadv };
        let mut buf = vec![0u8; probe];
        let refused = match direct.read(address, &mut buf) {
            Ok(()) => return Ok(direct),
            Err(MemoryError::Refused(e)) => e,
            Err(MemoryError::Io(e)) if e.raw_os_error() == Some(libc::ENOSYS) => e,
            Err(other) => return Err(other),
        };
        // Say why the first way failed: the second is only a fallback.
        let Ok(file) = File::open(format!("/proc/{pid}/mem")) else {
            return Err(MemoryError::Refused(refused));
        };
        let via_proc = ProcessMemory { pid, access: Access::ProcMem(Arc::new(file)) };
        via_proc.read(address, &mut buf)?;
        Ok(via_proc)
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Whether reads go through `/proc/PID/mem` rather than `process_vm_readv`.
    pub fn uses_proc_mem(&self) -> bool {
        matches!(self.access, Access::ProcMem(_))
    }

    /// Fills `buf` from `address`, all of it or an error.
    pub fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read_pieces(&mut [Piece::new(address, buf)])
    }

    pub fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read(address, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    pub fn read_u32(&self, address: u64) -> Result<u32, MemoryError> {
        let mut b = [0u8; 4];
        self.read(address, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// Fills every piece, in order, with as few system calls as possible (one
    /// for up to eight pieces with `process_vm_readv`). The pieces are copied
    /// one after the other, so a value read twice, first and last, brackets
    /// the others in time.
    pub fn read_pieces(&self, pieces: &mut [Piece<'_>]) -> Result<(), MemoryError> {
        match &self.access {
            Access::VmReadv => {
                for chunk in pieces.chunks_mut(PIECES_PER_CALL) {
                    self.vm_readv(chunk)?;
                }
                Ok(())
            }
            Access::ProcMem(file) => {
                for piece in pieces.iter_mut() {
                    pread_all(file, piece)?;
                }
                Ok(())
            }
        }
    }

    fn vm_readv(&self, pieces: &mut [Piece<'_>]) -> Result<(), MemoryError> {
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        let mut local = [empty; PIECES_PER_CALL];
        let mut remote = [empty; PIECES_PER_CALL];
        let mut wanted = 0usize;
        for (i, piece) in pieces.iter_mut().enumerate().take(PIECES_PER_CALL) {
            local[i] = libc::iovec { iov_base: piece.buf.as_mut_ptr().cast(), iov_len: piece.buf.len() };
            remote[i] = libc::iovec {
                iov_base: piece.address as usize as *mut libc::c_void,
                iov_len: piece.buf.len(),
            };
            wanted += piece.buf.len();
        }
        let n = pieces.len().min(PIECES_PER_CALL);
        // SAFETY: every local iovec points into a live `&mut [u8]` of exactly
        // its length; the remote ones are only addresses in the other process,
        // which the kernel checks.
        let got = unsafe {
            libc::process_vm_readv(
                self.pid,
                local.as_ptr(),
                n as libc::c_ulong,
                remote.as_ptr(),
                n as libc::c_ulong,
                0,
            )
        };
        if got < 0 {
            return Err(MemoryError::from_errno(std::io::Error::last_os_error()));
        }
        let got = got as usize;
        if got != wanted {
            // The kernel stops at the first piece it cannot copy in full.
            let mut before = 0usize;
            for piece in pieces.iter().take(n) {
                if before + piece.buf.len() > got {
                    return Err(MemoryError::Short {
                        address: piece.address,
                        wanted: piece.buf.len(),
                        got: got - before,
                    });
                }
                before += piece.buf.len();
            }
        }
        Ok(())
    }
}

fn pread_all(file: &File, piece: &mut Piece<'_>) -> Result<(), MemoryError> {
    let mut done = 0usize;
    while done < piece.buf.len() {
        match file.read_at(&mut piece.buf[done..], piece.address + done as u64) {
            // /proc/PID/mem reads nothing (or EIO) where nothing is mapped.
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => return Err(MemoryError::from_errno(e)),
        }
    }
    if done != piece.buf.len() {
        return Err(MemoryError::Short { address: piece.address, wanted: piece.buf.len(), got: done });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_pid() -> u32 {
        std::process::id()
    }

    fn address_of(bytes: &[u8]) -> u64 {
        bytes.as_ptr() as usize as u64
    }

    #[test]
    fn several_pieces_come_back_in_one_call_with_the_bytes_they_hold() {
        let first = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let second = 0xdead_beef_u32.to_ne_bytes();
        let memory = ProcessMemory::open(own_pid(), address_of(&first), 8).unwrap();
        assert!(!memory.uses_proc_mem());
        let (mut a, mut b) = ([0u8; 8], [0u8; 4]);
        memory
            .read_pieces(&mut [
                Piece::new(address_of(&first), &mut a),
                Piece::new(address_of(&second), &mut b),
            ])
            .unwrap();
        assert_eq!(a, first);
        assert_eq!(u32::from_ne_bytes(b), 0xdead_beef);
    }

    #[test]
    fn proc_mem_reads_the_same_bytes_as_process_vm_readv() {
        let value = 0x0123_4567_89ab_cdef_u64.to_ne_bytes();
        let file = File::open(format!("/proc/{}/mem", own_pid())).unwrap();
        let memory = ProcessMemory { pid: own_pid().cast_signed(), access: Access::ProcMem(Arc::new(file)) };
        assert_eq!(memory.read_u64(address_of(&value)).unwrap(), 0x0123_4567_89ab_cdef);
    }

    /// A mapping followed by a hole: a read across the edge must fail, both ways.
    fn page_before_a_hole() -> (u64, usize) {
        let page = 4096usize;
        // SAFETY: a fresh anonymous mapping of two pages, the second unmapped
        // at once; the first is leaked for the rest of the test run.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            assert_eq!(libc::munmap(p.cast::<u8>().add(page).cast(), page), 0);
            (p as usize as u64, page)
        }
    }

    #[test]
    fn a_read_running_into_unmapped_memory_is_an_error_not_a_partial_value() {
        let (start, page) = page_before_a_hole();
        let straddling = start + page as u64 - 4;
        let memory = ProcessMemory::open(own_pid(), start, 8).unwrap();
        let mut buf = [0u8; 8];
        match memory.read(straddling, &mut buf) {
            Err(MemoryError::Short { got: 4, wanted: 8, .. }) => {}
            other => panic!("expected a short read, got {other:?}"),
        }
        // A later piece that fails makes the whole call fail, too.
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        let err =
            memory.read_pieces(&mut [Piece::new(start, &mut a), Piece::new(straddling, &mut b)]).unwrap_err();
        assert!(matches!(err, MemoryError::Short { .. }), "{err}");

        let file = File::open(format!("/proc/{}/mem", own_pid())).unwrap();
        let via_proc =
            ProcessMemory { pid: own_pid().cast_signed(), access: Access::ProcMem(Arc::new(file)) };
        assert!(matches!(via_proc.read(straddling, &mut buf), Err(MemoryError::Short { .. })));
    }

    #[test]
    fn reading_a_process_that_has_exited_says_so() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = ProcessMemory::open(pid, 0x1000, 8).unwrap_err();
        assert!(matches!(err, MemoryError::Exited), "{err}");
    }
}
