//! Where `CPython` keeps its GIL, version by version: the few offsets the
//! sampler reads.
//!
//! `CPython`'s runtime structs are internal and change shape between minor
//! versions, so every supported version needs the offsets of the fields the
//! sampler reads. 3.10, 3.11 and 3.12 have a table here. 3.13 publishes most
//! of them itself in `_Py_DebugOffsets`, the block at the very start of
//! `_PyRuntime` meant for out-of-process tools, so they are read from the
//! target (a patch release that moves a field is followed without a new
//! table); what the block lacks (the GIL's `switch_number`, the interpreter's
//! thread-state counter) comes from a 3.13 table entry. `tests/gil_sampler.rs`
//! checks every table entry, and the block's 3.13 shape, against the
//! interpreters' DWARF debug info.
//!
//! The GIL itself (`struct _gil_runtime_state`) starts with the same four
//! fields in every supported version: `interval` (µs), `last_holder` (a
//! `PyThreadState*`), `locked` (an int) and `switch_number`.

use std::fmt;

/// A `CPython` version, as `PY_VERSION_HEX` encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    /// Unknown when the version was read off a file name.
    pub micro: Option<u8>,
}

impl Version {
    /// From `PY_VERSION_HEX` (`Py_Version`, or `_Py_DebugOffsets.version`):
    /// 0xMMmmuuLS, major, minor, micro, release level, serial.
    pub fn from_hex(hex: u64) -> Version {
        Version { major: (hex >> 24) as u8, minor: (hex >> 16) as u8, micro: Some((hex >> 8) as u8) }
    }

    /// From a file name such as `libpython3.10.so.1.0` or `python3.12`: the
    /// version the name states (without a micro), if it states one.
    pub fn from_file_name(name: &str) -> Option<Version> {
        let rest = &name[name.find("python")? + "python".len()..];
        let (major, rest) = rest.split_once('.')?;
        let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some(Version { major: major.parse().ok()?, minor: minor.parse().ok()?, micro: None })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.micro {
            Some(micro) => write!(f, "{}.{}.{micro}", self.major, self.minor),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

/// Where a version keeps the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GilHome {
    /// 3.10, 3.11: one GIL for the whole runtime, `_PyRuntime.ceval.gil`, at
    /// this offset in `_PyRuntime`.
    Runtime { offset: u64 },
    /// 3.12 on: each interpreter points to its GIL (`interp->ceval.gil`, at
    /// this offset in `PyInterpreterState`); interpreters may share one.
    Interpreter { pointer: u64 },
}

/// The offsets the sampler reads, in bytes from the start of their struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `_PyRuntime.interpreters.head`: the newest interpreter; the rest
    /// follow through `next`, the main one (id 0) last.
    pub runtime_interpreters_head: u64,
    /// `PyInterpreterState.next`.
    pub interp_next: u64,
    /// `PyInterpreterState.id` (an int64).
    pub interp_id: u64,
    /// `PyInterpreterState.threads.next_unique_id` (3.10:
    /// `tstate_next_unique_id`): bumped for every thread state the
    /// interpreter creates, so a reused `PyThreadState*` address shows.
    pub interp_threads_created: u64,
    pub gil: GilHome,
    /// In `struct _gil_runtime_state`: the switch interval, µs (`unsigned long`).
    pub gil_interval: u64,
    /// `last_holder`: a `PyThreadState*`.
    pub gil_last_holder: u64,
    /// `locked`: an int, 0 or 1.
    pub gil_locked: u64,
    /// `switch_number`: an `unsigned long`.
    pub gil_switch_number: u64,
    /// `PyThreadState.interp`.
    pub tstate_interp: u64,
    /// `PyThreadState.thread_id`: the pthread id (`pthread_self()`).
    pub tstate_thread_id: u64,
    /// `PyThreadState.native_thread_id`: the OS thread id (3.11 on).
    pub tstate_native_thread_id: Option<u64>,
}

/// Bytes of the GIL a sample reads in one piece: from `last_holder` to the
/// end of `switch_number`.
pub const GIL_HEAD_LEN: usize = 24;

impl Layout {
    /// The sampler copies `last_holder`, `locked` and `switch_number` as one
    /// piece, and relies on `switch_number` being copied last of the three.
    pub fn gil_head_fits(&self) -> bool {
        self.gil_last_holder < self.gil_locked
            && self.gil_locked + 4 <= self.gil_switch_number
            && self.gil_switch_number + 8 == self.gil_last_holder + GIL_HEAD_LEN as u64
    }
}

/// The GIL struct's head, the same from 3.10 to 3.13.
const GIL_INTERVAL: u64 = 0;
const GIL_LAST_HOLDER: u64 = 8;
const GIL_LOCKED: u64 = 16;
const GIL_SWITCH_NUMBER: u64 = 24;

/// The table entry for a minor version (3.10 to 3.13). For 3.13 the sampler
/// prefers the target's `_Py_DebugOffsets` ([`DebugOffsets::layout_313`]); the
/// entry is what that block was checked against, and its source for the
/// two fields the block lacks.
pub fn table(major: u8, minor: u8) -> Option<Layout> {
    let head =
        |runtime_interpreters_head, interp_id, interp_threads_created, gil, thread_id, native| Layout {
            runtime_interpreters_head,
            interp_next: 0,
            interp_id,
            interp_threads_created,
            gil,
            gil_interval: GIL_INTERVAL,
            gil_last_holder: GIL_LAST_HOLDER,
            gil_locked: GIL_LOCKED,
            gil_switch_number: GIL_SWITCH_NUMBER,
            tstate_interp: 16,
            tstate_thread_id: thread_id,
            tstate_native_thread_id: native,
        };
    match (major, minor) {
        (3, 10) => Some(head(32, 24, 3448, GilHome::Runtime { offset: 352 }, 176, None)),
        (3, 11) => Some(head(40, 48, 8, GilHome::Runtime { offset: 360 }, 152, Some(160))),
        (3, 12) => Some(head(40, 8, 64, GilHome::Interpreter { pointer: 384 }, 136, Some(144))),
        // 3.13 moved the interpreter's ceval state to the front, and `next`
        // and `id` far behind it.
        (3, 13) => Some(Layout {
            interp_next: 7264,
            ..head(632, 7272, 7336, GilHome::Interpreter { pointer: 16 }, 152, Some(160))
        }),
        _ => None,
    }
}

/// The cookie `_Py_DebugOffsets` starts with.
pub const DEBUG_COOKIE: &[u8; 8] = b"xdebugpy";

/// Bytes of `_Py_DebugOffsets` the sampler reads: up to the end of its
/// thread-state part.
pub const DEBUG_BLOCK_LEN: usize = 224;

/// Where, in 3.13's `_Py_DebugOffsets`, each offset the sampler uses is
/// stored (checked against DWARF by the tests).
pub mod debug_block_313 {
    pub const VERSION: usize = 8;
    pub const FREE_THREADED: usize = 16;
    pub const RUNTIME_INTERPRETERS_HEAD: usize = 40;
    pub const INTERP_SIZE: usize = 48;
    pub const INTERP_ID: usize = 56;
    pub const INTERP_NEXT: usize = 64;
    pub const INTERP_THREADS_HEAD: usize = 72;
    pub const INTERP_CEVAL_GIL: usize = 112;
    pub const INTERP_GIL_RUNTIME_STATE: usize = 120;
    pub const INTERP_GIL_LOCKED: usize = 136;
    pub const INTERP_GIL_HOLDER: usize = 144;
    pub const TSTATE_SIZE: usize = 152;
    pub const TSTATE_INTERP: usize = 176;
    pub const TSTATE_THREAD_ID: usize = 192;
    pub const TSTATE_NATIVE_THREAD_ID: usize = 200;
}

/// What the start of `_PyRuntime` says, when it is a `_Py_DebugOffsets`.
pub struct DebugOffsets<'a> {
    block: &'a [u8],
}

impl<'a> DebugOffsets<'a> {
    /// The block, if `bytes` (read from the start of `_PyRuntime`) is one.
    pub fn parse(bytes: &'a [u8]) -> Option<DebugOffsets<'a>> {
        (bytes.len() >= DEBUG_BLOCK_LEN && bytes.starts_with(DEBUG_COOKIE))
            .then_some(DebugOffsets { block: bytes })
    }

    fn field(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.block[at..at + 8]);
        u64::from_le_bytes(b)
    }

    pub fn version(&self) -> Version {
        Version::from_hex(self.field(debug_block_313::VERSION))
    }

    /// The block's `free_threaded` flag (3.13 on).
    pub fn free_threaded(&self) -> bool {
        self.field(debug_block_313::FREE_THREADED) != 0
    }

    /// The layout of a 3.13 target: from the block where it says, from the
    /// 3.13 table where it does not. Offsets outside the struct they belong
    /// to mean the block is not what it seems.
    pub fn layout_313(&self) -> Result<Layout, String> {
        use debug_block_313 as at;
        let Some(table) = table(3, 13) else {
            return Err("no 3.13 table".to_owned());
        };
        let interp_size = self.field(at::INTERP_SIZE);
        let tstate_size = self.field(at::TSTATE_SIZE);
        let gil_base = self.field(at::INTERP_GIL_RUNTIME_STATE);
        let locked = self.field(at::INTERP_GIL_LOCKED).wrapping_sub(gil_base);
        let holder = self.field(at::INTERP_GIL_HOLDER).wrapping_sub(gil_base);
        let threads_head = self.field(at::INTERP_THREADS_HEAD);
        let layout = Layout {
            runtime_interpreters_head: self.field(at::RUNTIME_INTERPRETERS_HEAD),
            interp_next: self.field(at::INTERP_NEXT),
            interp_id: self.field(at::INTERP_ID),
            // `struct _pythreads` keeps `next_unique_id` right before `head`
            // (3.11 to 3.13), and the block names `head`.
            interp_threads_created: threads_head.wrapping_sub(8),
            gil: GilHome::Interpreter { pointer: self.field(at::INTERP_CEVAL_GIL) },
            gil_interval: table.gil_interval,
            gil_last_holder: holder,
            gil_locked: locked,
            gil_switch_number: table.gil_switch_number,
            tstate_interp: self.field(at::TSTATE_INTERP),
            tstate_thread_id: self.field(at::TSTATE_THREAD_ID),
            tstate_native_thread_id: Some(self.field(at::TSTATE_NATIVE_THREAD_ID)),
        };
        let GilHome::Interpreter { pointer } = layout.gil else { return Err("no GIL pointer".to_owned()) };
        let in_interp = [layout.interp_next, layout.interp_id, layout.interp_threads_created, pointer];
        let in_tstate =
            [layout.tstate_interp, layout.tstate_thread_id, layout.tstate_native_thread_id.unwrap_or(0)];
        // The four GIL fields sit within the GIL struct's first 32 bytes.
        let in_gil = [layout.gil_last_holder, layout.gil_locked];
        if in_interp.iter().any(|&o| o + 8 > interp_size)
            || in_tstate.iter().any(|&o| o + 8 > tstate_size)
            || in_gil.iter().any(|&o| o + 8 > 32)
        {
            return Err("its _Py_DebugOffsets block holds offsets outside their structs".to_owned());
        }
        Ok(layout)
    }
}

/// The layout of a target of `version`; `block` is the start of its
/// `_PyRuntime` when it holds a `_Py_DebugOffsets`. `Err` says why there is
/// none, in a line.
pub fn layout_for(version: Version, block: Option<&DebugOffsets<'_>>) -> Result<Layout, String> {
    let layout = match (version.major, version.minor, block) {
        (3, 13, Some(block)) => {
            if block.free_threaded() {
                return Err(format!(
                    "free-threaded CPython {version}: its GIL has another layout, not supported"
                ));
            }
            block.layout_313()?
        }
        (3, 13, None) => return Err(format!("CPython {version} without its _Py_DebugOffsets block")),
        (major, minor, _) => {
            table(major, minor).ok_or_else(|| format!("unknown CPython {major}.{minor}: no layout for it"))?
        }
    };
    if !layout.gil_head_fits() {
        return Err(format!("CPython {version}'s GIL fields are not in the order the sampler reads them"));
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_hex_and_file_names_give_major_minor_micro() {
        assert_eq!(Version::from_hex(0x030D_00F0), Version { major: 3, minor: 13, micro: Some(0) });
        assert_eq!(Version::from_hex(0x030B_07F0).to_string(), "3.11.7");
        let v310 = Version::from_file_name("libpython3.10.so.1.0").unwrap();
        assert_eq!(v310, Version { major: 3, minor: 10, micro: None });
        assert_eq!(v310.to_string(), "3.10");
        assert_eq!(Version::from_file_name("python3.9"), Some(Version { major: 3, minor: 9, micro: None }));
        assert_eq!(
            Version::from_file_name("python3.13t"),
            Some(Version { major: 3, minor: 13, micro: None })
        );
        assert_eq!(Version::from_file_name("python3"), None);
        assert_eq!(Version::from_file_name("sleep"), None);
    }

    #[test]
    fn every_table_entry_lets_a_sample_read_the_gil_in_one_piece() {
        for minor in 10..=13 {
            let layout = table(3, minor).unwrap();
            assert!(layout.gil_head_fits(), "3.{minor}");
        }
        let shuffled = Layout { gil_locked: 24, gil_switch_number: 16, ..table(3, 11).unwrap() };
        assert!(!shuffled.gil_head_fits());
    }

    #[test]
    fn versions_without_a_table_are_named_in_the_reason() {
        let v39 = Version { major: 3, minor: 9, micro: Some(18) };
        assert_eq!(layout_for(v39, None), Err("unknown CPython 3.9: no layout for it".to_owned()));
        assert!(layout_for(Version { major: 3, minor: 14, micro: Some(0) }, None).is_err());
        assert!(layout_for(Version { major: 3, minor: 11, micro: Some(2) }, None).is_ok());
    }

    /// A 3.13 block as `CPython` 3.13.0 fills it (values from its DWARF).
    fn block_313(free_threaded: u64) -> Vec<u8> {
        use debug_block_313 as at;
        let mut b = vec![0u8; DEBUG_BLOCK_LEN];
        b[..8].copy_from_slice(DEBUG_COOKIE);
        let mut put = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(at::VERSION, 0x030D_00F0);
        put(at::FREE_THREADED, free_threaded);
        put(at::RUNTIME_INTERPRETERS_HEAD, 632);
        put(at::INTERP_SIZE, 194_968);
        put(at::INTERP_ID, 7272);
        put(at::INTERP_NEXT, 7264);
        put(at::INTERP_THREADS_HEAD, 7344);
        put(at::INTERP_CEVAL_GIL, 16);
        put(at::INTERP_GIL_RUNTIME_STATE, 7752);
        put(at::INTERP_GIL_LOCKED, 7768);
        put(at::INTERP_GIL_HOLDER, 7760);
        put(at::TSTATE_SIZE, 304);
        put(at::TSTATE_INTERP, 16);
        put(at::TSTATE_THREAD_ID, 152);
        put(at::TSTATE_NATIVE_THREAD_ID, 160);
        b
    }

    #[test]
    fn a_313_debug_block_gives_the_same_layout_as_the_313_table() {
        let bytes = block_313(0);
        let block = DebugOffsets::parse(&bytes).unwrap();
        assert_eq!(block.version().minor, 13);
        assert_eq!(layout_for(block.version(), Some(&block)), Ok(table(3, 13).unwrap()));
    }

    #[test]
    fn a_free_threaded_or_corrupt_block_gives_no_layout() {
        let bytes = block_313(1);
        let block = DebugOffsets::parse(&bytes).unwrap();
        let why = layout_for(block.version(), Some(&block)).unwrap_err();
        assert!(why.contains("free-threaded"), "{why}");

        let mut bytes = block_313(0);
        bytes[debug_block_313::TSTATE_NATIVE_THREAD_ID..][..8].copy_from_slice(&4096u64.to_le_bytes());
        let block = DebugOffsets::parse(&bytes).unwrap();
        assert!(layout_for(block.version(), Some(&block)).is_err());

        let mut bytes = block_313(0);
        bytes[0] = b'X';
        assert!(DebugOffsets::parse(&bytes).is_none());
    }
}
