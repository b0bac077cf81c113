//! Reading the kernel's /proc files cheaply. They report a size of zero, so
//! `fs::read_to_string` reads them in growing steps (a stat and six reads
//! for /proc/stat); a monitor that reads a dozen of them twice a second
//! pays for every step. These read into a buffer big enough for the whole
//! file at once.

use std::io::Read;

/// Room for the files gilscope reads in one read (`/proc/stat` of a
/// 256-core machine is about 30 KiB; the rest are under 2 KiB).
const ROOM: usize = 64 * 1024;

/// The whole text of a /proc file, or None if it cannot be read.
pub fn read(path: &str) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut text = Vec::with_capacity(ROOM);
    file.read_to_end(&mut text).ok()?;
    String::from_utf8(text).ok()
}

/// What one read of `/proc/PID/stat` tells of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// User and system time of all its threads, in clock ticks.
    pub cpu_ticks: u64,
    /// User and system time of its children that it reaped, in clock ticks.
    pub reaped_children_ticks: u64,
    /// Every OS thread, the main thread included.
    pub threads: u32,
    pub rss_pages: u64,
    /// It has exited and waits to be reaped (a zombie, or dead): its memory
    /// and threads are gone, so it has none to report.
    pub exited: bool,
}

impl Stat {
    pub fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&read(&format!("/proc/{pid}/stat"))?)
    }

    /// Parses a stat line; the name in parentheses may hold spaces and ")".
    pub fn parse(stat: &str) -> Option<Stat> {
        let (_, rest) = stat.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 0, utime 11, stime 12, cutime 13,
        // cstime 14, num_threads 17, rss 21.
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        Some(Stat {
            cpu_ticks: number(11)? + number(12)?,
            reaped_children_ticks: number(13)? + number(14)?,
            threads: u32::try_from(number(17)?).ok()?,
            rss_pages: number(21)?,
            exited: matches!(fields.first(), Some(&("Z" | "X"))),
        })
    }
}

/// Clock ticks per second of /proc's CPU times (`USER_HZ`).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|hz| *hz > 0).unwrap_or(100)
}

/// Bytes in a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|p| *p > 0).unwrap_or(4096)
}

/// The ids of process `pid`'s threads now (its `/proc/PID/task` entries).
pub fn task_ids(pid: u32) -> std::io::Result<std::collections::HashSet<u32>> {
    let mut ids = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(id) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_name_that_holds_spaces_and_parentheses() {
        let line = "4242 (a) b (c) ) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 31 4 5 20 0 7 0 123456 1000000 2560 18446744073709551615";
        let stat = Stat::parse(line).expect("a well-formed line");
        assert_eq!(
            stat,
            Stat { cpu_ticks: 281, reaped_children_ticks: 9, threads: 7, rss_pages: 2560, exited: false }
        );
        let zombie = Stat::parse(&line.replace(") ) S ", ") ) Z ")).expect("a zombie's line");
        assert!(zombie.exited);
        assert_eq!(Stat::parse("4242 (cut) S 1 2"), None, "a short line is no reading");
        let mine = Stat::of(std::process::id()).expect("our own stat");
        assert!(mine.threads >= 1 && mine.rss_pages > 0, "{mine:?}");
    }

    #[test]
    fn reads_a_whole_proc_file_and_nothing_for_a_missing_one() {
        let stat = read("/proc/stat").expect("/proc/stat is readable on Linux");
        assert!(stat.starts_with("cpu ") && stat.contains("\nctxt "), "{stat}");
        let me = read(&format!("/proc/{}/stat", std::process::id())).expect("our own stat");
        assert!(me.starts_with(&format!("{} (", std::process::id())), "{me}");
        assert_eq!(read("/proc/no-such-file"), None);
    }
}
