//! The state file: `active` or `passive` on the first line, then optional `key=value` lines.
//!
//! Owns: the format, a bounded non-blocking reader and the atomic writer.
//! Guarantees: reading never blocks (FIFO), never reads more than [`MAX_READ`] bytes, never
//! panics; a reader never sees a half-written file (temp file, fsync, rename); the writer never
//! writes through a symlink planted at the state file or its temp file.
//!
//! Freshness: a file written by rcron's daemon carries `pid=` and `mono_ms=` (CLOCK_MONOTONIC
//! at the last refresh) and `valid_ms=`. rcron's wrapper treats such a file as `passive` when
//! the pid is gone or the stamp is older than `valid_ms`: a dead or frozen daemon never leaves
//! a trusted `active` behind. A plain `active` (keepalived notify scripts) has no stamp and is
//! read as before.

use crate::config::State;
use crate::os::sys::Create;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The most the reader looks at.
pub const MAX_READ: usize = 4096;

/// What a state file says. `state` is `None` when the first line is not exactly
/// `active` or `passive` (after trimming blanks and CR).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub state: Option<State>,
    pub pid: Option<u32>,
    pub mono_ms: Option<u64>,
    pub valid_ms: Option<u64>,
    pub master: Option<String>,
    pub priority: Option<u8>,
    pub since: Option<u64>,
}

/// Parses the bytes of a state file (or its first [`MAX_READ`] bytes).
pub fn parse(bytes: &[u8]) -> Reading {
    let mut lines = bytes.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or(&[]);
    let first = std::str::from_utf8(first).unwrap_or("").trim();
    let mut r = Reading {
        state: match first {
            "active" => Some(State::Active),
            "passive" => Some(State::Passive),
            _ => None,
        },
        ..Reading::default()
    };
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        match k {
            "pid" => r.pid = v.parse().ok(),
            "mono_ms" => r.mono_ms = v.parse().ok(),
            "valid_ms" => r.valid_ms = v.parse().ok(),
            "master" => r.master = Some(v.chars().take(64).collect()),
            "priority" => r.priority = v.parse().ok(),
            "since" => r.since = v.parse().ok(),
            _ => {}
        }
    }
    r
}

/// Reads a state file without blocking and without reading more than [`MAX_READ`] bytes.
pub fn read(path: &Path) -> Result<Reading, String> {
    let mut buf = [0u8; MAX_READ];
    let n = crate::os::sys::read_regular_prefix(path, &mut buf)?;
    Ok(parse(&buf[..n]))
}

/// Why a reading is or is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The file says this, and nothing contradicts it.
    Says(State),
    /// Missing, unreadable, or not exactly `active`/`passive`: use `default_state`.
    Unknown,
    /// Written by an rcron daemon that is gone or no longer refreshes it: passive.
    Stale,
}

/// Decides how far to trust a reading. `now_ms` is CLOCK_MONOTONIC; `alive` tells whether a
/// pid still exists.
pub fn judge(r: &Reading, now_ms: u64, alive: impl Fn(u32) -> bool) -> Trust {
    let Some(state) = r.state else {
        return Trust::Unknown;
    };
    if let Some(pid) = r.pid
        && !alive(pid)
    {
        return Trust::Stale;
    }
    if let Some(stamp) = r.mono_ms {
        let valid = r.valid_ms.unwrap_or(3000);
        if stamp > now_ms || now_ms - stamp > valid {
            return Trust::Stale;
        }
    }
    Trust::Says(state)
}

/// Where a state-file decision came from, for the logs and `--status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    StateFile,
    /// The file could not be trusted; `default_state` applied.
    Default,
    /// The file was left by an rcron daemon that is gone or silent.
    StaleDaemonFile,
}

/// The state a reading means for `cfg` (shared/interface.md, "State file"): what the file
/// says, `default_state` when it says nothing usable, passive when a daemon left it behind.
pub fn decide_reading(
    cfg: &crate::config::Config,
    reading: &Result<Reading, String>,
    now_ms: u64,
    alive: impl Fn(u32) -> bool,
) -> (State, Source) {
    match reading {
        Err(_) => (cfg.default_state, Source::Default),
        Ok(r) => match judge(r, now_ms, alive) {
            Trust::Says(s) => (s, Source::StateFile),
            Trust::Unknown => (cfg.default_state, Source::Default),
            Trust::Stale => (State::Passive, Source::StaleDaemonFile),
        },
    }
}

/// Reads `cfg.state_file` now and decides: the state, its source, and the reading.
pub fn decide(cfg: &crate::config::Config) -> (State, Source, Result<Reading, String>) {
    let reading = read(&cfg.state_file);
    let now = crate::os::sys::monotonic_ms();
    let (s, why) = decide_reading(cfg, &reading, now, crate::os::sys::pid_alive);
    (s, why, reading)
}

/// Writes `r` to `path` atomically (`sync`: fsync too, at transitions), making the directory
/// when it has gone (a tmpfs cleaned up) and trying once more. Errors are logged.
pub fn store(path: &Path, r: &Reading, sync: bool) {
    let text = render(r);
    if write_atomic_opt(path, text.as_bytes(), sync).is_err() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = write_atomic_opt(path, text.as_bytes(), sync) {
            log::error!("state file: {e}");
        }
    }
}

/// Writes a plain `passive` (with the time): what the supervisor leaves when its worker is
/// gone, before anything else.
pub fn store_passive(path: &Path) {
    let since = crate::os::sys::wall_secs();
    let r = Reading { state: Some(State::Passive), since: Some(since), ..Reading::default() };
    store(path, &r, true);
}

/// What the daemon writes: the state, then the fields a reader needs.
pub fn render(r: &Reading) -> String {
    let mut s = String::with_capacity(128);
    render_into(&mut s, r);
    s
}

/// [`render`] into `s` (cleared first), so that a refresh reuses one buffer.
pub fn render_into(s: &mut String, r: &Reading) {
    use std::fmt::Write;
    s.clear();
    s.push_str(r.state.unwrap_or(State::Passive).as_str());
    s.push('\n');
    // Writing into a String cannot fail.
    if let Some(v) = r.since {
        let _ = writeln!(s, "since={v}");
    }
    if let Some(v) = &r.master {
        let _ = writeln!(s, "master={v}");
    }
    if let Some(v) = r.priority {
        let _ = writeln!(s, "priority={v}");
    }
    if let Some(v) = r.pid {
        let _ = writeln!(s, "pid={v}");
    }
    if let Some(v) = r.mono_ms {
        let _ = writeln!(s, "mono_ms={v}");
    }
    if let Some(v) = r.valid_ms {
        let _ = writeln!(s, "valid_ms={v}");
    }
}

/// Replaces `path` with `content` atomically: a temp file in the same directory, created
/// exclusively and without following symlinks, fsynced, then renamed over `path`.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), String> {
    write_atomic_opt(path, content, true)
}

/// As [`write_atomic`]; `sync: false` skips the fsync (a periodic refresh: readers still never
/// see a partial file, only a crash of the whole machine could lose the refresh).
pub fn write_atomic_opt(path: &Path, content: &[u8], sync: bool) -> Result<(), String> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        return Err(format!("{} is a symlink; refusing to replace it", path.display()));
    }
    let tmp = temp_path(path);
    // A temp file left by a crash of a process with our pid: unlink never follows a symlink.
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::os::sys::open_nofollow(&tmp, Create::New, 0o644)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let r = f.write_all(content).and_then(|_| if sync { f.sync_all() } else { Ok(()) });
    drop(f);
    if let Err(e) = r.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

/// Keeps the state file fresh at the advert pace without creating or freeing an inode at each
/// refresh (on a disk, each freed inode is a truncate and a discard): the file and a spare
/// beside it (`.NAME.spare`), the new content written into the spare and swapped in by one
/// `renameat2(RENAME_EXCHANGE)`, which readers see as atomically as a rename. Before each swap
/// the spare's name must still be the spare's inode (never a planted symlink). Where the
/// kernel or the filesystem cannot exchange, or anything is amiss, a write is [`store`]'s
/// (temp file and rename) and the pair is set up again afterwards. A refresh costs a
/// `lstat`, a `pwrite` and the exchange: no allocation, no truncate unless the text got
/// shorter.
pub struct Writer {
    path: PathBuf,
    spare_path: PathBuf,
    /// `path` and `spare_path` for the exchange, made once (`None`: a path with a NUL byte).
    names: Option<(std::ffi::CString, std::ffi::CString)>,
    pair: Option<Pair>,
    exchange_works: bool,
    /// The text being written, kept to reuse its allocation.
    text: String,
}

/// The two files of a [`Writer`]: the one named `path` now, and the spare.
struct Pair {
    current: Inode,
    spare: Inode,
}

struct Inode {
    file: std::fs::File,
    ino: u64,
    /// Bytes in the file.
    len: u64,
}

impl Writer {
    pub fn new(path: &Path) -> Writer {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let spare_path = path.with_file_name(format!(".{name}.spare"));
        let text = String::with_capacity(256);
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok();
        let names = c(path).zip(c(&spare_path));
        let exchange_works = names.is_some();
        Writer { path: path.to_path_buf(), spare_path, names, pair: None, exchange_works, text }
    }

    /// Writes `r` (`sync`: fsync too, at transitions); errors are logged.
    pub fn write(&mut self, r: &Reading, sync: bool) {
        render_into(&mut self.text, r);
        if let (Some(pair), Some(names)) = (&mut self.pair, &self.names) {
            match swap_in(&self.spare_path, names, &mut pair.spare, self.text.as_bytes(), sync) {
                Ok(()) => {
                    std::mem::swap(&mut pair.current, &mut pair.spare);
                    return;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                    log::debug!(
                        "{}: no RENAME_EXCHANGE here; rename each time",
                        self.path.display()
                    );
                    self.exchange_works = false;
                }
                Err(_) => {}
            }
            self.pair = None;
        }
        store(&self.path, r, sync);
        if self.exchange_works {
            self.pair = self.set_up();
        }
    }

    /// The pair after a plain write: the file as written, and a new, empty spare.
    fn set_up(&self) -> Option<Pair> {
        use std::os::unix::fs::MetadataExt;
        let open = |p: &Path, create: Create| {
            let file = crate::os::sys::open_nofollow(p, create, 0o644).ok()?;
            let m = file.metadata().ok().filter(|m| m.is_file())?;
            Some(Inode { file, ino: m.ino(), len: m.len() })
        };
        let current = open(&self.path, Create::Never)?;
        // A spare left by an earlier daemon: unlink never follows a symlink.
        let _ = std::fs::remove_file(&self.spare_path);
        let spare = open(&self.spare_path, Create::New)?;
        Some(Pair { current, spare })
    }
}

/// Writes `text` into `spare` and exchanges the names `spare_path` and the state file's
/// (`names`: the state file's, then the spare's), once the spare's name is checked to still
/// be the spare's inode.
fn swap_in(
    spare_path: &Path,
    names: &(std::ffi::CString, std::ffi::CString),
    spare: &mut Inode,
    text: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let named = std::fs::symlink_metadata(spare_path)?;
    if !named.file_type().is_file() || named.ino() != spare.ino {
        return Err(std::io::Error::from_raw_os_error(libc::ESTALE));
    }
    spare.file.write_all_at(text, 0)?;
    let len = text.len() as u64;
    if len < spare.len {
        spare.file.set_len(len)?;
    }
    spare.len = len;
    if sync {
        spare.file.sync_all()?;
    }
    crate::os::sys::rename_exchange(&names.1, &names.0)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(default: State) -> crate::config::Config {
        crate::config::Config { default_state: default, ..Default::default() }
    }

    #[test]
    fn run_or_skip_from_the_state_file() {
        let r = |b: &[u8]| Ok(parse(b));
        type Case = (Result<Reading, String>, State, (State, Source));
        let table: &[Case] = &[
            (r(b"active\n"), State::Passive, (State::Active, Source::StateFile)),
            (r(b"passive\n"), State::Active, (State::Passive, Source::StateFile)),
            (r(b"garbage\n"), State::Passive, (State::Passive, Source::Default)),
            (r(b"garbage\n"), State::Active, (State::Active, Source::Default)),
            (r(b"inactive\n"), State::Passive, (State::Passive, Source::Default)),
            (Err("missing".into()), State::Passive, (State::Passive, Source::Default)),
            (Err("FIFO".into()), State::Active, (State::Active, Source::Default)),
            // Left by a daemon whose pid is gone: passive even with default_state active.
            (
                r(b"active\npid=1\nmono_ms=5\n"),
                State::Active,
                (State::Passive, Source::StaleDaemonFile),
            ),
        ];
        for (reading, default, want) in table {
            let got = decide_reading(&cfg(*default), reading, 10, |_| false);
            assert_eq!(got, *want, "{reading:?} default={default:?}");
        }
    }

    #[test]
    fn first_line_must_be_exactly_active_or_passive() {
        let table: &[(&[u8], Option<State>)] = &[
            (b"active\n", Some(State::Active)),
            (b"passive", Some(State::Passive)),
            (b"  active \r\n", Some(State::Active)),
            (b"active\nsince=1\n", Some(State::Active)),
            // The original's substring match counted these as active: a bug we fix.
            (b"inactive\n", None),
            (b"activeX\n", None),
            (b"ACTIVE\n", None),
            (b"", None),
            (b"\nactive\n", None),
            (&[0xff, 0x00, 0x13], None),
        ];
        for (bytes, want) in table {
            assert_eq!(parse(bytes).state, *want, "{bytes:?}");
        }
    }

    #[test]
    fn daemon_fields_round_trip() {
        let r = Reading {
            state: Some(State::Active),
            pid: Some(42),
            mono_ms: Some(1000),
            valid_ms: Some(3000),
            master: Some("192.0.2.1".into()),
            priority: Some(150),
            since: Some(1_700_000_000),
        };
        assert_eq!(parse(render(&r).as_bytes()), r);
    }

    #[test]
    fn a_stamped_file_is_stale_when_its_daemon_is_gone_or_silent() {
        let mut r = parse(b"active\npid=7\nmono_ms=10000\nvalid_ms=3000\n");
        assert_eq!(judge(&r, 12_000, |_| true), Trust::Says(State::Active));
        assert_eq!(judge(&r, 13_001, |_| true), Trust::Stale, "not refreshed in time");
        assert_eq!(judge(&r, 12_000, |_| false), Trust::Stale, "daemon pid gone");
        assert_eq!(judge(&r, 9_000, |_| true), Trust::Stale, "stamp from another boot");
        r.state = None;
        assert_eq!(judge(&r, 12_000, |_| true), Trust::Unknown);
        // A keepalived notify script's plain line is trusted as it is.
        assert_eq!(judge(&parse(b"active\n"), 5, |_| false), Trust::Says(State::Active));
    }

    /// Refreshes swap two inodes (none created or freed) and the file always reads whole.
    #[test]
    fn the_writer_swaps_two_inodes_and_readers_see_whole_files() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("rcron-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let mut w = Writer::new(&path);
        let mut inodes = std::collections::BTreeSet::new();
        for i in 0..20u64 {
            let state = if i % 2 == 0 { State::Active } else { State::Passive };
            let r = Reading { state: Some(state), mono_ms: Some(1000 + i), ..Reading::default() };
            w.write(&r, i == 0);
            let back = parse(&std::fs::read(&path).unwrap());
            assert_eq!((back.state, back.mono_ms), (Some(state), Some(1000 + i)));
            inodes.insert(std::fs::metadata(&path).unwrap().ino());
        }
        assert_eq!(inodes.len(), 2, "two inodes, exchanged: {inodes:?}");
        // A planted symlink at the spare's name is never swapped in: a plain write instead.
        let spare = dir.join(".state.spare");
        std::fs::remove_file(&spare).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &spare).unwrap();
        w.write(&Reading { state: Some(State::Active), ..Reading::default() }, false);
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(parse(&std::fs::read(&path).unwrap()).state, Some(State::Active));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
