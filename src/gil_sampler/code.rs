//! Reading an interpreter function's machine code, to place a probe inside
//! it rather than at its entry.
//!
//! A uprobe stops the thread that hits it for a breakpoint trap (tens of µs
//! on a virtual machine). At the entry of `drop_gil` that trap falls between
//! the holder deciding to let go and the waiter being signalled, and it
//! changes who wins the GIL: with three CPU threads and an I/O thread at a
//! 5 ms interval, real `CPython` 3.11 handed the I/O thread the GIL after a
//! median 5.2 ms with an entry probe, against 16.5–18.7 ms unprobed. A probe
//! just after `drop_gil`'s call to `pthread_mutex_unlock`, once the GIL is
//! free and a waiter signalled, left the median at 18.1–19.9 ms. This module
//! finds that instruction: x86-64 code is decoded with `iced-x86` (a full
//! decoder: instruction lengths cannot be guessed safely), and a call's
//! target is named through the PLT stub or GOT slot it goes through and the
//! dynamic relocation that fills that slot.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{LazyLock, Mutex, PoisonError};

use iced_x86::{Code, Decoder, DecoderOptions, Instruction};
use object::read::elf::ElfFile64;
use object::read::{Object, ObjectSymbol, ObjectSymbolTable, RelocationTarget};

use super::symbols::{ElfInfo, ElfSymbol, FileId, Mapped, file_id};

/// A file, a function in it and a callee.
type Asked = (FileId, u64, String);

/// What was found so far: every worker process of a run maps the same file.
static FOUND: LazyLock<Mutex<HashMap<Asked, u64>>> = LazyLock::new(Mutex::default);

/// Answers remembered at most.
const REMEMBERED: usize = 64;

/// The address (in the file's own terms) of the instruction after the first
/// call that `function` makes to the external function `callee`: where a
/// probe sees that call's work done.
pub fn after_first_call(
    path: &Path,
    info: &ElfInfo,
    function: ElfSymbol,
    callee: &str,
) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let asked = file_id(&file).map(|id| (id, function.address, callee.to_owned()));
    let found = || FOUND.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = asked.as_ref().and_then(|a| found().get(a).copied()) {
        return Ok(known);
    }
    let point = find_after_first_call(&file, path, info, function, callee)?;
    if let Some(asked) = asked {
        let mut found = found();
        if found.len() >= REMEMBERED {
            found.clear();
        }
        found.insert(asked, point);
    }
    Ok(point)
}

fn find_after_first_call(
    file: &File,
    path: &Path,
    info: &ElfInfo,
    function: ElfSymbol,
    callee: &str,
) -> Result<u64, String> {
    let mapped = Mapped::of(file).map_err(|e| format!("cannot map {}: {e}", path.display()))?;
    let bytes = mapped.bytes();
    let elf = ElfFile64::<object::Endianness, _>::parse(bytes)
        .map_err(|e| format!("{}: not a 64-bit ELF file: {e}", path.display()))?;
    if elf.architecture() != object::Architecture::X86_64 {
        return Err(format!("{}: only x86-64 code can be read", path.display()));
    }
    let slots = got_slots(&elf);
    let code = |vaddr: u64, len: u64| -> Option<&[u8]> {
        let start = usize::try_from(info.file_offset(vaddr)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        bytes.get(start..end)
    };
    let body = code(function.address, function.size).filter(|b| !b.is_empty()).ok_or_else(|| {
        format!("the code of the function at {:#x} is not in {}", function.address, path.display())
    })?;
    let calls_callee = |call: &Instruction| -> bool {
        let slot = if call.is_ip_rel_memory_operand() {
            // call *slot(%rip): straight through the GOT.
            Some(call.ip_rel_memory_address())
        } else if call.code() == Code::Call_rel32_64 {
            // call stub: a PLT entry that jumps through the GOT.
            code(call.near_branch_target(), 32).and_then(|stub| plt_slot(stub, call.near_branch_target()))
        } else {
            None
        };
        slot.and_then(|s| slots.get(&s)).is_some_and(|name| name == callee)
    };
    let mut decoder = Decoder::with_ip(64, body, function.address, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            return Err(format!("undecodable code at {:#x} in {}", instruction.ip(), path.display()));
        }
        if matches!(instruction.code(), Code::Call_rel32_64 | Code::Call_rm64) && calls_callee(&instruction) {
            return Ok(instruction.next_ip());
        }
    }
    Err(format!("the function at {:#x} in {} never calls {callee}", function.address, path.display()))
}

/// The GOT slots the dynamic linker fills with a symbol's address, by slot.
fn got_slots<'d>(elf: &ElfFile64<'d, object::Endianness, &'d [u8]>) -> HashMap<u64, String> {
    let mut slots = HashMap::new();
    let (Some(relocations), Some(symbols)) = (elf.dynamic_relocations(), elf.dynamic_symbol_table()) else {
        return slots;
    };
    for (slot, relocation) in relocations {
        if let RelocationTarget::Symbol(index) = relocation.target()
            && let Ok(symbol) = symbols.symbol_by_index(index)
            && let Ok(name) = symbol.name()
        {
            slots.insert(slot, name.to_owned());
        }
    }
    slots
}

/// The GOT slot a PLT stub at `ip` jumps through: its first indirect jump
/// (after an `endbr64`, with or without a `bnd` prefix).
fn plt_slot(stub: &[u8], ip: u64) -> Option<u64> {
    let mut decoder = Decoder::with_ip(64, stub, ip, DecoderOptions::NONE);
    for _ in 0..3 {
        let instruction = decoder.decode();
        match instruction.code() {
            Code::Endbr64 | Code::Nopd | Code::Nopw | Code::Nop_rm32 | Code::Nop_rm16 => {}
            Code::Jmp_rm64 if instruction.is_ip_rel_memory_operand() => {
                return Some(instruction.ip_rel_memory_address());
            }
            _ => return None,
        }
    }
    None
}
