//! gilscope's cache folder: where the `CPython` worker script is deployed
//! and the calibration is kept.
//!
//! Python runs the script from here, so whoever can write in this folder can
//! run code as the user: the folder must be the user's own and private. It is
//! `$XDG_CACHE_HOME/gilscope` (an absolute path only, as the XDG spec asks),
//! else `$HOME/.cache/gilscope`, else `gilscope-<uid>` in the temporary
//! folder. It is made with mode 0700 and refused when it is a link, belongs
//! to someone else or others may write to it (or to a folder above it that
//! lets them rename it away). Files are read without following links and
//! written whole: a private temporary file beside them, then a rename.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The cache folder, checked.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache folder if it exists (None otherwise): for reading, which
    /// should not make folders.
    pub fn existing() -> Result<Option<Cache>, String> {
        let dir = location();
        match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => check(&dir).map(|()| Some(Cache { dir })),
        }
    }

    /// The cache folder, made if it is not there yet.
    pub fn create() -> Result<Cache, String> {
        let dir = location();
        let fail = |e: std::io::Error| format!("cannot make the cache folder {}: {e}", dir.display());
        if let Some(parent) = dir.parent() {
            // The XDG base folders are made private too.
            DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(fail)?;
        }
        match DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(fail(e)),
            _ => {}
        }
        check(&dir)?;
        Ok(Cache { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The content of file `name`, if it is there, at most `limit` bytes
    /// (a longer file reads as `limit + 1` bytes, so the caller can tell).
    /// A link is not followed: it reads as an error.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let path = self.path(name);
        let file =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path);
        let file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(format!("{} is a symbolic link, not a file of gilscope's", path.display()));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let is_file = file.metadata().is_ok_and(|m| m.is_file());
        if !is_file {
            return Err(format!("{} is not a plain file", path.display()));
        }
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Some(bytes))
    }

    /// Writes file `name` whole or not at all: a new private file beside it
    /// (mode 0600, never an existing file or a link), then a rename over the
    /// old one. On failure the old file stays as it was and nothing is left.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = self.path(name);
        let tmp = self.path(&format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut file: File| {
                file.write_all(bytes)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot write {}: {e}", path.display()));
        }
        Ok(path)
    }
}

/// Where the cache folder is, from the environment.
fn location() -> PathBuf {
    // Relative or empty values are invalid, as the XDG base directory spec says.
    let absolute = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(base) = absolute("XDG_CACHE_HOME") {
        return base.join("gilscope");
    }
    if let Some(home) = absolute("HOME") {
        return home.join(".cache").join("gilscope");
    }
    let tmp = Some(std::env::temp_dir()).filter(|p| p.is_absolute()).unwrap_or_else(|| PathBuf::from("/tmp"));
    // SAFETY: geteuid cannot fail.
    tmp.join(format!("gilscope-{}", unsafe { libc::geteuid() }))
}

/// Whether `dir` is a private folder of the user's own; a sentence saying
/// what is wrong and what to do if it is not.
fn check(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| format!("cannot use the cache folder {shown}: {e}"))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.file_type().is_symlink() {
        return Err(format!(
            "the cache folder {shown} is a symbolic link: remove it, or set XDG_CACHE_HOME to a folder of your own"
        ));
    }
    if !meta.is_dir() {
        return Err(format!(
            "the cache folder {shown} is not a folder: remove it, or set XDG_CACHE_HOME to a folder of your own"
        ));
    }
    if meta.uid() != me {
        return Err(format!(
            "the cache folder {shown} is owned by uid {}, not by you (uid {me}): remove it, or set XDG_CACHE_HOME to a folder of your own",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the cache folder {shown} is writable by others (mode {:o}): run `chmod go-w {shown}`",
            meta.mode() & 0o7777
        ));
    }
    // Others who may write in the folder above could rename ours away and
    // put theirs in its place, unless the sticky bit (as on /tmp) stops them.
    if let Some(parent) = dir.parent()
        && let Ok(above) = std::fs::metadata(parent)
        && above.mode() & 0o022 != 0
        && above.mode() & 0o1000 == 0
        && above.uid() != me
    {
        return Err(format!(
            "the cache folder {shown} is in {}, which others may write to: set XDG_CACHE_HOME to a folder of your own",
            parent.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_nothing_beside_it() {
        let dir = std::env::temp_dir().join(format!("gilscope-cache-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DirBuilder::new().mode(0o700).create(&dir).expect("a scratch folder");
        let cache = Cache { dir: dir.clone() };
        cache.write("f", b"first").expect("write");
        cache.write("f", b"second").expect("write again");
        assert_eq!(cache.read("f", 100).expect("read"), Some(b"second".to_vec()));
        assert_eq!(cache.read("f", 3).expect("read"), Some(b"seco".to_vec()), "limit + 1 bytes");
        assert_eq!(cache.read("missing", 100).expect("read"), None);
        let names: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["f"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
