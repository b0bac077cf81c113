//! How much memory a model's processes hold, and how much of it is theirs
//! alone: resident (RSS), proportional (PSS: a page shared by k processes
//! counts 1/k in each) and unique (USS: pages no other process maps), from
//! `/proc/PID/smaps_rollup`. "Threads share memory, processes do not" is
//! the difference between the sum of RSS and the sum of USS.

use std::collections::BTreeMap;

/// One process's memory, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    pub rss_kb: u64,
    pub pss_kb: u64,
    pub uss_kb: u64,
}

impl Memory {
    /// Process `pid`'s memory now; None when it is gone or unreadable.
    pub fn of(pid: u32) -> Option<Memory> {
        let text = crate::procfs::read(&format!("/proc/{pid}/smaps_rollup"))?;
        let field = |name: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Some(Memory {
            rss_kb: field("Rss"),
            pss_kb: field("Pss"),
            uss_kb: field("Private_Clean") + field("Private_Dirty"),
        })
    }
}

/// The largest reading of each process of a run, summed: the model's peak.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    each: BTreeMap<u32, Memory>,
    last: Option<std::time::Instant>,
}

impl Peaks {
    /// Whether a tenth of a second passed since the last reading (or none was taken).
    pub fn due(&mut self) -> bool {
        let due = self.last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100));
        if due {
            self.last = Some(std::time::Instant::now());
        }
        due
    }

    /// Reads `pids` now and keeps each one's largest figures.
    pub fn read(&mut self, pids: impl IntoIterator<Item = u32>) {
        for pid in pids {
            if let Some(now) = Memory::of(pid) {
                self.add(pid, now);
            }
        }
    }

    /// Keeps `now` of process `pid` where it is larger than what was seen.
    pub fn add(&mut self, pid: u32, now: Memory) {
        let peak = self.each.entry(pid).or_default();
        peak.rss_kb = peak.rss_kb.max(now.rss_kb);
        peak.pss_kb = peak.pss_kb.max(now.pss_kb);
        peak.uss_kb = peak.uss_kb.max(now.uss_kb);
    }

    /// The sum over the processes; None before any was read.
    pub fn total(&self) -> Option<Memory> {
        (!self.each.is_empty()).then(|| Memory {
            rss_kb: self.each.values().map(|m| m.rss_kb).sum(),
            pss_kb: self.each.values().map(|m| m.pss_kb).sum(),
            uss_kb: self.each.values().map(|m| m.uss_kb).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_memory_is_read_and_unique_memory_grows_with_what_we_touch() {
        let me = std::process::id();
        let block = vec![7u8; 32 << 20];
        std::hint::black_box(&block);
        let after = Memory::of(me).unwrap_or_default();
        assert!(after.rss_kb >= after.pss_kb && after.pss_kb >= after.uss_kb, "{after:?}");
        // Other tests in this process allocate and free meanwhile: only the
        // block this one holds is sure to be there.
        assert!(after.uss_kb >= 32 * 1024, "a 32 MiB block touched, yet {after:?}");
    }
}
