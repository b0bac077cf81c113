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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_whole_proc_file_and_nothing_for_a_missing_one() {
        let stat = read("/proc/stat").expect("/proc/stat is readable on Linux");
        assert!(stat.starts_with("cpu ") && stat.contains("\nctxt "), "{stat}");
        let me = read(&format!("/proc/{}/stat", std::process::id())).expect("our own stat");
        assert!(me.starts_with(&format!("{} (", std::process::id())), "{me}");
        assert_eq!(read("/proc/no-such-file"), None);
    }
}
