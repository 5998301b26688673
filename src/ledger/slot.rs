//! A slot's name, as every node's wrapper computes it (shared/interface.md, "Handoff"): the
//! job's identity and its scheduled time.
//!
//! Owns: both derivations. Pure: the wall clock and the user are passed in.

use std::ffi::OsString;

/// FNV-1a, 64 bits: stable across builds and architectures (the peers compare the values).
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The command line's hash: each word followed by a NUL (so `a b` and `ab` differ). Also
/// names the job's `--lock` file.
pub fn argv_hash(argv: &[OsString]) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    argv.iter().fold(FNV_OFFSET, |h, a| fnv1a(fnv1a(h, a.as_bytes()), &[0]))
}

/// The job's identity in the ledger: `--id NAME` when given, else the user and the command
/// line; with the slot length, so that the same command on two schedules names two jobs.
pub fn job_id(id: Option<&str>, uid: u32, argv: &[OsString], slot_s: u64) -> u64 {
    let h = match id {
        Some(name) => fnv1a(fnv1a(FNV_OFFSET, b"id\0"), name.as_bytes()),
        None => fnv1a(fnv1a(FNV_OFFSET, &uid.to_be_bytes()), &argv_hash(argv).to_be_bytes()),
    };
    fnv1a(h, &slot_s.to_be_bytes())
}

/// The slot's scheduled time, epoch seconds: `wall_s` rounded down to `slot_s` (> 0).
pub fn scheduled(wall_s: u64, slot_s: u64) -> u64 {
    wall_s - wall_s % slot_s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    /// Nodes whose crons fire the same line within the same minute name the same slot,
    /// whatever their phase in it.
    #[test]
    fn the_same_minute_names_the_same_slot_whatever_the_phase() {
        let minute = 1_796_000_040;
        for phase in [0, 1, 7, 59] {
            assert_eq!(scheduled(minute + phase, 60), minute);
        }
        assert_eq!(scheduled(minute + 60, 60), minute + 60);
        assert_eq!(scheduled(minute + 13, 10), minute + 10);
    }

    #[test]
    fn a_job_is_its_user_command_line_and_schedule_or_its_id() {
        let a = argv(&["backup", "--full"]);
        let id = |i, u, v: &[OsString], s| job_id(i, u, v, s);
        assert_eq!(id(None, 0, &a, 60), id(None, 0, &a, 60), "stable");
        assert_ne!(id(None, 0, &a, 60), id(None, 1000, &a, 60), "another user");
        assert_ne!(id(None, 0, &a, 60), id(None, 0, &a, 10), "another schedule");
        assert_ne!(id(None, 0, &argv(&["a b"]), 60), id(None, 0, &argv(&["a", "b"]), 60));
        assert_eq!(id(Some("nightly"), 0, &a, 60), id(Some("nightly"), 1000, &argv(&["x"]), 60));
        assert_ne!(id(Some("nightly"), 0, &a, 60), id(None, 0, &a, 60));
        // The value every node computes, pinned: a change would split a mixed-version group.
        assert_eq!(id(Some("nightly"), 0, &a, 60), 0x927b_2cdb_066c_63a1);
    }
}
