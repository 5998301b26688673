//! Run marks: a node's own note that one of its wrappers started a slot's job.
//!
//! Owns: the mark files in `lock_dir`, one directory per job (`rcron-ran-JOB`, JOB the job's
//! 16 hex digits) holding one empty file per slot (its scheduled time in epoch seconds), made
//! with `O_CREAT | O_EXCL` by the wrapper about to run the slot; and their pruning, by the
//! same wrapper, in the same small directory.
//!
//! Why: a slot's record names the node that runs it, not the wrapper. A daemon killed after
//! its node recorded the slot and before its wrapper had the answer leaves a record that no
//! wrapper ran; the restarted daemon finds it held by its own node (`ran_here`) and cannot
//! tell that case from a run it did answer. The wrapper that was cut off knows it had no
//! answer; the mark tells it whether another wrapper of this node started the slot. Of the
//! wrappers of a node that can write `lock_dir`, exactly one can make a slot's mark: whichever
//! makes it runs the slot, every other one skips it. A wrapper that cannot make it keeps the
//! daemon's answer: a recorded run still runs, unmarked (so a cut-off wrapper that can make
//! the mark later would run the slot again; both failing and a daemon dying between two
//! wrappers of one slot on one node), and a cut-off wrapper skips.
//!
//! Guarantees: never follows a symlink it did not make (a job directory that is not a
//! directory, or a slot name that exists, is not used); nothing here runs in the daemon;
//! errors are returned, never panic.

use crate::os::sys::Create;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

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

/// The marks to keep, as slot times (epoch seconds) around the slot a wrapper is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    /// Older slots go: no wrapper of theirs is still waiting (the slot's length and the
    /// ledger's retention, [`crate::timing::retention_ms`]).
    pub from: u64,
    /// Later slots go too: past the ledger's own bound (`max_clock_offset` + 2 min ahead),
    /// such marks were left by a clock stepped back, and are not kept forever. Nearer ones
    /// stay: a slot this node ran under its mark is skipped here when a stepped-back clock
    /// reaches it again (exactly once by the slot's name).
    pub until: u64,
}

impl Keep {
    /// For a wrapper of slot `slot` (epoch seconds) of length `slot_s`, with the ledger's
    /// `max_clock_offset_s`.
    pub fn around(slot: u64, slot_s: u64, max_clock_offset_s: u64) -> Keep {
        let retention_s = crate::timing::retention_ms(max_clock_offset_s * 1000) / 1000;
        Keep {
            from: slot.saturating_sub(slot_s + retention_s),
            until: slot.saturating_add(max_clock_offset_s + 120),
        }
    }
}

/// The directory of `job`'s marks in `dir`.
pub fn job_dir(dir: &Path, job: u64) -> PathBuf {
    dir.join(format!("rcron-ran-{job:016x}"))
}

/// Makes the mark of (`job`, `slot`) under `dir` (both directories created when missing, as
/// `--lock` does), unless it exists; then removes the job's marks outside `keep`.
pub fn take(dir: &Path, job: u64, slot: u64, keep: Keep) -> Mark {
    let jobs = job_dir(dir, job);
    if let Err(e) = std::fs::create_dir_all(&jobs) {
        return Mark::Failed(e);
    }
    // A name planted in the way (a symlink, a file) is not followed: the mark is not made.
    match std::fs::symlink_metadata(&jobs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let planted = format!("{} is not a directory (planted in the way)", jobs.display());
            return Mark::Failed(std::io::Error::new(ErrorKind::AlreadyExists, planted));
        }
        Err(e) => return Mark::Failed(e),
    }
    let made = crate::os::sys::open_nofollow(&jobs.join(slot.to_string()), Create::New, 0o600);
    let mark = match made {
        Ok(_) => Mark::Made,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Mark::Taken,
        Err(e) => return Mark::Failed(e),
    };
    prune(&jobs, keep);
    mark
}

/// Removes the marks in the job directory `jobs` whose slot is outside `keep`; other names
/// are left alone. At most a few dozen entries: one per slot this node ran in the retention.
fn prune(jobs: &Path, keep: Keep) {
    let Ok(entries) = std::fs::read_dir(jobs) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(slot) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
        if slot < keep.from || slot > keep.until {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Keep = Keep { from: 0, until: u64::MAX };

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rcron-mark-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn one_wrapper_of_a_node_makes_a_slots_mark() {
        let d = dir("take");
        assert!(matches!(take(&d, 0xab, 1_800_000_000, ALL), Mark::Made), "directories made");
        assert!(matches!(take(&d, 0xab, 1_800_000_000, ALL), Mark::Taken));
        assert!(matches!(take(&d, 0xab, 1_800_000_060, ALL), Mark::Made), "another slot");
        assert!(matches!(take(&d, 0xac, 1_800_000_000, ALL), Mark::Made), "another job");
        assert!(job_dir(&d, 0xab).join("1800000000").is_file());
        assert!(job_dir(&d, 0xab).ends_with("rcron-ran-00000000000000ab"));
        // A planted symlink is never followed: as a slot's name it counts as taken (skip),
        // as a job's directory the mark is not made (the ledger's answer stands).
        let target = d.join("target");
        std::os::unix::fs::symlink(&target, job_dir(&d, 0xab).join("2")).unwrap();
        assert!(matches!(take(&d, 0xab, 2, ALL), Mark::Taken));
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, job_dir(&d, 0xad)).unwrap();
        assert!(matches!(take(&d, 0xad, 2, ALL), Mark::Failed(_)));
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing made through it");
        // A lock_dir that cannot be made.
        let file = d.join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(take(&file, 1, 2, ALL), Mark::Failed(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_new_mark_prunes_its_jobs_marks_outside_the_window() {
        let d = dir("prune");
        for slot in [100, 160, 220, 5000] {
            assert!(matches!(take(&d, 7, slot, ALL), Mark::Made));
        }
        assert!(matches!(take(&d, 8, 100, ALL), Mark::Made), "another job's mark");
        std::fs::write(job_dir(&d, 7).join("notes"), "").unwrap();
        let keep = Keep { from: 160, until: 1000 };
        assert!(matches!(take(&d, 7, 280, keep), Mark::Made));
        let mut left: Vec<String> = std::fs::read_dir(job_dir(&d, 7))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["160", "220", "280", "notes"], "older and far later slots go");
        assert!(job_dir(&d, 8).join("100").exists(), "other jobs are theirs to prune");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_window_covers_the_slot_and_the_ledgers_retention() {
        // 60 s slots, max_clock_offset 30 s: retention 210 s.
        let k = Keep::around(10_000, 60, 30);
        assert_eq!(k, Keep { from: 10_000 - 60 - 210, until: 10_000 + 150 });
        assert_eq!(Keep::around(5, 60, 30).from, 0);
    }
}
