//! Where a symbol of a live process is: `/proc/PID/maps` says which ELF files
//! are mapped where, the files' symbol tables say where the symbol is inside
//! them, and the difference between the two (the load bias) joins them.
//!
//! The GIL sampler needs `_PyRuntime` (`CPython`'s one global struct, defined
//! by the `python3.x` executable or by `libpython3.x.so`), `Py_Version`, and,
//! for the exact events, the file offsets of `take_gil`/`drop_gil`. ELF files
//! are mapped and parsed with the `object` crate, so only the pages of their
//! headers and symbol tables are read, never a 30 MB debug build whole;
//! what was found in a file is remembered (by its device, inode, size and
//! time of change), as every worker process of a run maps the same ones.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::read::{Object, ObjectSection, ObjectSymbol};

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of the byte mapped at `start`.
    pub offset: u64,
    pub executable: bool,
    pub inode: u64,
    /// The file, for file-backed mappings (`None` for `[heap]`, anonymous…).
    pub path: Option<PathBuf>,
}

/// Parses the text of `/proc/PID/maps`; lines it cannot read are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    // address perms offset dev inode [path]; the path may contain spaces.
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().map_or("", str::trim_start);
    let (start, end) = range.split_once('-')?;
    let path = (path.starts_with('/')).then(|| PathBuf::from(path));
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        inode,
        path,
    })
}

/// A file mapped into the process, with every mapping of it.
#[derive(Clone, Debug)]
pub struct MappedFile {
    pub path: PathBuf,
    pub inode: u64,
    pub mappings: Vec<Mapping>,
}

impl MappedFile {
    /// The file name alone, e.g. `libpython3.11.so.1.0`.
    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Looks like a `CPython` interpreter or its shared library by its name.
    pub fn looks_like_python(&self) -> bool {
        self.name().contains("python")
    }
}

/// The process's mapped files, its executable first, then in address order.
pub fn mapped_files(pid: u32) -> std::io::Result<Vec<MappedFile>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let mut files: Vec<MappedFile> = Vec::new();
    for mapping in parse_maps(&maps) {
        let Some(path) = mapping.path.clone() else { continue };
        match files.iter_mut().find(|f| f.path == path && f.inode == mapping.inode) {
            Some(file) => file.mappings.push(mapping),
            None => files.push(MappedFile { path, inode: mapping.inode, mappings: vec![mapping] }),
        }
    }
    if let Some(exe) = exe {
        files.sort_by_key(|f| f.path != exe);
    }
    Ok(files)
}

/// A symbol as the ELF file states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfSymbol {
    /// Virtual address in the file's own terms (before the load bias).
    pub address: u64,
    pub size: u64,
}

/// A loadable segment: which file bytes land at which virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
}

/// What the sampler needs from one ELF file: some of its symbols and its
/// loadable segments.
#[derive(Clone, Debug, Default)]
pub struct ElfInfo {
    pub symbols: HashMap<String, ElfSymbol>,
    pub segments: Vec<Segment>,
    /// Its dynamic string table names a `libpython`: a `python3.x` built
    /// with a shared library, which defines nothing itself.
    pub links_libpython: bool,
}

/// A file mapped read-only into this process: the parser reads its headers
/// and symbol tables from the page cache, with no system call per read (a
/// read cache took 25 ms for a libpython with debug information, most of it
/// in seeks and small reads).
pub(super) struct Mapped {
    base: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    pub(super) fn of(file: &File) -> std::io::Result<Mapped> {
        let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
        if len == 0 {
            return Err(std::io::Error::other("an empty file"));
        }
        // SAFETY: a fresh private read-only mapping of a file we hold open;
        // nothing else aliases it, and it is unmapped on drop.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0)
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped { base, len })
    }

    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped readable at `base` for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `of` mapped.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// A file as it is now: device, inode, size, change time in s and ns. What
/// was read of a file is remembered under it.
pub(super) type FileId = (u64, u64, u64, i64, i64);

/// The identity of an open file, if its metadata can be read.
pub(super) fn file_id(file: &File) -> Option<FileId> {
    file.metadata().ok().map(|m| (m.dev(), m.ino(), m.size(), m.ctime(), m.ctime_nsec()))
}

/// A file and the symbols asked of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ReadKey {
    file: FileId,
    wanted: Vec<String>,
}

/// Readings remembered at most (the files a few interpreters map).
const REMEMBERED_FILES: usize = 64;

/// What was read of files so far.
static REMEMBERED: LazyLock<Mutex<HashMap<ReadKey, ElfInfo>>> = LazyLock::new(Mutex::default);

fn remembered() -> MutexGuard<'static, HashMap<ReadKey, ElfInfo>> {
    REMEMBERED.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ElfInfo {
    /// Reads the defined symbols named in `wanted` from `.dynsym` and
    /// `.symtab` (the dynamic table survives `strip`; the static one also
    /// has the file-local functions such as `take_gil`).
    pub fn read(path: &Path, wanted: &[&str]) -> Result<ElfInfo, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let key = file_id(&file)
            .map(|file| ReadKey { file, wanted: wanted.iter().map(|&w| w.to_owned()).collect() });
        if let Some(known) = key.as_ref().and_then(|k| remembered().get(k).cloned()) {
            return Ok(known);
        }
        let info = ElfInfo::read_file(&file, wanted).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(key) = key {
            let mut known = remembered();
            if known.len() >= REMEMBERED_FILES {
                known.clear();
            }
            known.insert(key, info.clone());
        }
        Ok(info)
    }

    fn read_file(file: &File, wanted: &[&str]) -> Result<ElfInfo, String> {
        let mapped = Mapped::of(file).map_err(|e| format!("cannot map it: {e}"))?;
        let elf = ElfFile64::<object::Endianness, _>::parse(mapped.bytes())
            .map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
        let endian = elf.endian();
        let mut info = ElfInfo::default();
        for header in elf.elf_program_headers() {
            if header.p_type(endian) == elf::PT_LOAD {
                info.segments.push(Segment {
                    vaddr: header.p_vaddr(endian),
                    offset: header.p_offset(endian),
                    filesz: header.p_filesz(endian),
                });
            }
        }
        info.links_libpython = elf
            .section_by_name(".dynstr")
            .and_then(|s| s.data().ok())
            .is_some_and(|d| d.windows(b"libpython".len()).any(|w| w == b"libpython"));
        for symbol in elf.dynamic_symbols().chain(elf.symbols()) {
            if symbol.is_undefined() {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            if wanted.contains(&name) && !info.symbols.contains_key(name) {
                info.symbols
                    .insert(name.to_owned(), ElfSymbol { address: symbol.address(), size: symbol.size() });
            }
        }
        Ok(info)
    }

    /// The file offset holding virtual address `vaddr` (what a uprobe is
    /// placed by), if a loadable segment holds it.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz)
            .map(|s| vaddr - s.vaddr + s.offset)
    }

    /// How far the file's virtual addresses were moved when it was mapped:
    /// the process address of `vaddr` is `vaddr + bias`. Taken from the
    /// mapping of the lowest file offset and the segment that holds it.
    pub fn load_bias(&self, mappings: &[Mapping]) -> Option<u64> {
        let first = mappings.iter().min_by_key(|m| m.offset)?;
        // Segments start at page-rounded file offsets when mapped; their
        // vaddr - offset is the same multiple of the page size either way.
        let segment = self.segments.iter().find(|s| {
            let page_start = s.offset & !0xfff;
            first.offset >= page_start && first.offset < s.offset + s.filesz.max(1)
        })?;
        let vaddr_at_start = segment.vaddr.wrapping_sub(segment.offset).wrapping_add(first.offset);
        Some(first.start.wrapping_sub(vaddr_at_start))
    }
}

/// An ELF file of the process that defines a symbol, where it is loaded.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub file: MappedFile,
    pub info: ElfInfo,
    pub bias: u64,
}

impl Loaded {
    /// Process address of a symbol the file defines.
    pub fn address(&self, name: &str) -> Option<u64> {
        self.info.symbols.get(name).map(|s| s.address.wrapping_add(self.bias))
    }
}

/// Opens a mapped file by its path, or, where that path now names another
/// file (deleted, replaced, another mount namespace), through
/// `/proc/PID/map_files`, which always reaches the mapped one.
fn open_mapped(pid: u32, file: &MappedFile) -> Option<PathBuf> {
    let same = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.ino() == file.inode);
    if same(&file.path) {
        return Some(file.path.clone());
    }
    let m = file.mappings.first()?;
    let via_proc = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
    same(&via_proc).then_some(via_proc)
}

/// The first mapped file (executable first) that defines `anchor`, with
/// whichever of `also` it defines as well. Files that are not ELF are
/// passed over.
pub fn find_defining(pid: u32, files: &[MappedFile], anchor: &str, also: &[&str]) -> Option<Loaded> {
    let mut wanted = vec![anchor];
    wanted.extend_from_slice(also);
    for file in files {
        let Some(path) = open_mapped(pid, file) else { continue };
        let Ok(info) = ElfInfo::read(&path, &wanted) else { continue };
        if !info.symbols.contains_key(anchor) {
            continue;
        }
        let Some(bias) = info.load_bias(&file.mappings) else { continue };
        return Some(Loaded { file: file.clone(), info, bias });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_ranges_offsets_and_paths_even_with_spaces() {
        let text = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234                       /usr/bin/python3.11
55d0c0a01000-55d0c0b00000 r-xp 00001000 08:01 1234                       /usr/bin/python3.11
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0                          [stack]
7f1000000000-7f1000001000 r--p 00002000 08:01 99 /tmp/dir with space/libx.so (deleted)
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 5);
        assert_eq!(maps[1].start, 0x55d0_c0a0_1000);
        assert_eq!(maps[1].offset, 0x1000);
        assert!(maps[1].executable && !maps[0].executable);
        assert_eq!(maps[0].path.as_deref(), Some(Path::new("/usr/bin/python3.11")));
        assert_eq!(maps[2].path, None);
        assert_eq!(maps[3].path, None);
        assert_eq!(maps[4].path.as_deref(), Some(Path::new("/tmp/dir with space/libx.so (deleted)")));
        assert_eq!(maps[4].inode, 99);
    }

    #[test]
    fn the_load_bias_joins_file_addresses_to_process_addresses() {
        // A PIE mapped at 0x5550_0000_0000: vaddr 0 at the first byte.
        let info = ElfInfo {
            symbols: HashMap::new(),
            links_libpython: false,
            segments: vec![
                Segment { vaddr: 0, offset: 0, filesz: 0x500 },
                Segment { vaddr: 0x1000 + 0x500, offset: 0x500, filesz: 0x2000 },
            ],
        };
        let at = |start, offset| Mapping {
            start,
            end: start + 0x1000,
            offset,
            executable: false,
            inode: 1,
            path: None,
        };
        // File offset 0x1000 lies in the second segment, at vaddr 0x2000.
        assert_eq!(
            info.load_bias(&[at(0x5550_0000_2000, 0x1000), at(0x5550_0000_0000, 0)]),
            Some(0x5550_0000_0000)
        );
        assert_eq!(info.load_bias(&[at(0x5550_0000_2000, 0x1000)]), Some(0x5550_0000_0000));
        // A non-PIE executable linked at 0x400000 loads there: no bias.
        let fixed = ElfInfo {
            segments: vec![Segment { vaddr: 0x40_0000, offset: 0, filesz: 0x1000 }],
            ..ElfInfo::default()
        };
        assert_eq!(fixed.load_bias(&[at(0x40_0000, 0)]), Some(0));
        assert_eq!(info.file_offset(0x1600), Some(0x600));
        assert_eq!(info.file_offset(0x900), None);
    }

    /// A function of the test binary under a name of its own. (Declaring
    /// the harness's `main` here instead made rustc refuse to build some
    /// release test binaries: "entry symbol `main` declared multiple times".)
    #[unsafe(no_mangle)]
    extern "C" fn gilscope_symbols_test_marker() -> u64 {
        std::hint::black_box(42)
    }

    #[test]
    fn a_function_of_this_test_binary_is_found_where_it_runs() {
        // The test binary's own symbol table and maps must agree on where
        // the marker function is.
        let marker = "gilscope_symbols_test_marker";
        let pid = std::process::id();
        let files = mapped_files(pid).unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(files[0].path, exe, "the executable comes first");
        let loaded = find_defining(pid, &files, marker, &[]).expect("the test binary defines the marker");
        let here = gilscope_symbols_test_marker as *const () as usize as u64;
        assert_eq!(loaded.address(marker), Some(here));
        assert_eq!(gilscope_symbols_test_marker(), 42);
    }

    #[test]
    fn a_symbol_nobody_defines_is_not_found() {
        let pid = std::process::id();
        let files = mapped_files(pid).unwrap();
        assert!(find_defining(pid, &files, "_PyRuntime", &[]).is_none());
    }

    #[test]
    fn a_file_is_read_once_and_again_only_once_it_changed() {
        let dir = std::env::temp_dir().join(format!("gilscope-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("prog");
        std::fs::copy("/bin/true", &copy).unwrap();
        let inode = std::fs::metadata(&copy).unwrap().ino();
        let first = ElfInfo::read(&copy, &[]).unwrap();
        assert!(!first.segments.is_empty());
        assert!(remembered().keys().any(|k| k.file.1 == inode), "not remembered");
        assert_eq!(ElfInfo::read(&copy, &[]).unwrap().segments, first.segments);
        // Another program written into the same file: read anew.
        std::fs::write(&copy, std::fs::read("/bin/ls").unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&copy).unwrap().ino(), inode);
        let second = ElfInfo::read(&copy, &[]).unwrap();
        assert_eq!(second.segments, ElfInfo::read(Path::new("/bin/ls"), &[]).unwrap().segments);
        assert_ne!(second.segments, first.segments);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
