//! Shared test helpers: a scratch directory, a private `/dev/log` to capture the syslog lines
//! rcron really sends, and a way to run the built binary inside a mount namespace that shows
//! that socket as `/dev/log`. These tests need root (mount namespaces); they fail, never skip,
//! without it.
#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const RCRON: &str = env!("CARGO_BIN_EXE_rcron");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(uid, "0", "these tests need root (namespaces, mounts): run them as root");
}

/// A scratch directory with a syslog socket; removed on drop.
pub struct Sandbox {
    pub dir: PathBuf,
    pub devdir: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rcron-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let devdir = dir.join("dev");
        std::fs::create_dir_all(&devdir).unwrap();
        std::fs::write(devdir.join("null"), b"").unwrap();
        let log = UnixDatagram::bind(devdir.join("log")).unwrap();
        log.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        // A reader thread, as a syslogd would be: the socket's queue is only 10 datagrams.
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while !st.load(Ordering::SeqCst) {
                if let Ok(n) = log.recv(&mut buf) {
                    l.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        Sandbox { dir, devdir, lines, stop }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// A config with this sandbox's state file and lock dir, plus `extra` lines.
    pub fn conf(&self, extra: &str) -> PathBuf {
        let text = format!(
            "cluster_name test\nstate_file {}\nlock_dir {}\n{extra}",
            self.path("state").display(),
            self.path("locks").display()
        );
        self.write("rcron.conf", &text)
    }

    pub fn set_state(&self, s: &str) {
        self.write("state", s);
    }

    /// The command that runs `args` with this sandbox's socket as `/dev/log`.
    pub fn command(&self, bin: &str, args: &[&str]) -> Command {
        let script = "mount --make-rprivate / && mount --bind /dev/null \"$D/null\" && \
                      mount --rbind \"$D\" /dev && exec \"$@\"";
        let mut c = Command::new("unshare");
        c.args(["-m", "--", "sh", "-c", script, "sh", bin]).args(args);
        c.env("D", &self.devdir).current_dir(&self.dir);
        c.stdin(Stdio::null());
        c
    }

    /// Runs rcron with `args`; returns its output.
    pub fn rcron(&self, args: &[&str]) -> Output {
        self.command(RCRON, args).output().unwrap()
    }

    /// Every syslog datagram received since the last call.
    pub fn logs(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `cond` every 10 ms until it is true or `limit` passes; true if it became true.
pub fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Waits, if needed, until the wall clock is at least `margin_s` seconds clear of the next
/// multiple of `period_s` (a `--slot` length), so that wrappers started within `margin_s` of
/// the return, on any node of the lab (one clock), name one slot.
pub fn clear_of_the_turn(period_s: u64, margin_s: u64) {
    while rcron::os::sys::wall_secs() % period_s >= period_s - margin_s {
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(true)
}

pub mod etcd;
pub mod net;
