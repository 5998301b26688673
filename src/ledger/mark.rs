//! Run marks: a node's own note that one of its wrappers started a slot's job.
//!
//! Owns: the mark files in `lock_dir`, `rcron-ran-JOB-SLOT` (JOB the job's 16 hex digits, SLOT
//! its scheduled time in epoch seconds), each made with `O_CREAT | O_EXCL` by the wrapper about
//! to run the slot, and their removal once the ledger's retention has passed.
//!
//! Why: a slot's record names the node that runs it, not the wrapper. A daemon killed after
//! its node recorded the slot and before its wrapper had the answer leaves a record that no
//! wrapper ran; the restarted daemon finds it held by its own node (`ran_here`) and cannot
//! tell that case from a run it did answer. The wrapper that was cut off knows it had no
//! answer; the mark tells it whether another wrapper of this node started the slot. Exactly one
//! wrapper of a node can make a slot's mark, so whichever makes it runs the slot and every
//! other wrapper of that node skips it.
//!
//! Guarantees: never follows a symlink (`O_NOFOLLOW`, and `O_EXCL` fails on any name that
//! exists); errors are returned, never panic.

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const PREFIX: &str = "rcron-ran-";
/// How often the daemon sweeps (on a wrapper's question, never by a wake-up of its own).
pub const SWEEP_EVERY_MS: u64 = 60_000;

/// What [`take`] found.
#[derive(Debug)]
pub enum Mark {
    /// Made now: this wrapper is the one of its node that runs the slot.
    Made,
    /// It exists: another wrapper of this node started the slot.
    Taken,
    /// It could not be made (`lock_dir` not writable, a read-only file system, ...): the
    /// ledger's answer stands alone, as before marks.
    Failed(std::io::Error),
}

/// The mark of `job`'s slot scheduled at `slot` (epoch seconds) in `dir`.
pub fn path(dir: &Path, job: u64, slot: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{job:016x}-{slot}"))
}

/// Makes the mark of (`job`, `slot`) in `dir` (created when missing, as `--lock` does),
/// unless it exists.
pub fn take(dir: &Path, job: u64, slot: u64) -> Mark {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Mark::Failed(e);
    }
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path(dir, job, slot));
    match made {
        Ok(_) => Mark::Made,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Mark::Taken,
        Err(e) => Mark::Failed(e),
    }
}

/// Removes the marks in `dir` made before `before` (epoch seconds, by their modification
/// time): by then the ledger has dropped their slots' records, and a wrapper asking about such
/// a slot is told to run it afresh or not at all. Returns how many went; other files, and
/// names that only look like marks, are left alone.
pub fn sweep(dir: &Path, before: i64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        let Some((job, slot)) = rest.split_once('-') else { continue };
        let hex = job.len() == 16 && job.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || slot.is_empty() || !slot.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // `DirEntry::metadata` does not follow a symlink: only files made by `take` count.
        let old = e.metadata().is_ok_and(|m| m.file_type().is_file() && m.mtime() < before);
        if old && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rcron-mark-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn one_wrapper_of_a_node_makes_a_slots_mark() {
        let d = dir("take");
        assert!(matches!(take(&d, 0xab, 1_800_000_000), Mark::Made), "the directory is made too");
        assert!(matches!(take(&d, 0xab, 1_800_000_000), Mark::Taken));
        assert!(matches!(take(&d, 0xab, 1_800_000_060), Mark::Made), "another slot");
        assert!(matches!(take(&d, 0xac, 1_800_000_000), Mark::Made), "another job");
        assert!(path(&d, 0xab, 1_800_000_000).ends_with("rcron-ran-00000000000000ab-1800000000"));
        // A planted symlink is never followed, and counts as taken (the safe side: skip).
        let target = d.join("target");
        std::os::unix::fs::symlink(&target, path(&d, 1, 2)).unwrap();
        assert!(matches!(take(&d, 1, 2), Mark::Taken));
        assert!(!target.exists());
        // A directory that cannot be made.
        let file = d.join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(take(&file.join("sub"), 1, 2), Mark::Failed(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_sweep_removes_old_marks_only() {
        let d = dir("sweep");
        assert!(matches!(take(&d, 1, 60), Mark::Made));
        std::fs::write(d.join("rcron-0123456789abcdef.lock"), "").unwrap();
        std::fs::write(d.join("rcron-ran-notajob-60"), "").unwrap();
        std::os::unix::fs::symlink("/", d.join("rcron-ran-0000000000000002-60")).unwrap();
        let now = crate::os::sys::wall_secs() as i64;
        assert_eq!(sweep(&d, now - 60), 0, "made a moment ago");
        assert!(path(&d, 1, 60).exists());
        assert_eq!(sweep(&d, now + 2), 1);
        assert!(!path(&d, 1, 60).exists());
        let left: Vec<_> =
            std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 3, "the lock, the look-alike and the symlink stay: {left:?}");
        assert_eq!(sweep(&d.join("missing"), now), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
