//! `rcron.conf`: the hand-rolled parser and the validated configuration.
//!
//! Owns: turning bytes into a [`Config`] or a list of every error with its line number.
//! Guarantees: never panics on any input; every configuration the original C rcron accepted
//! (its six keys, `k v` / `k = v` / `k\tv`, quoted values, column-1 comments) parses to the
//! same meaning. Additions: `k=v`, trailing comments, CR-LF, the daemon's keys, and errors
//! (not silent fallbacks) for bad values and unknown keys. A single-valued key set twice is
//! not an error: the last one wins, as in the original, with a warning naming both lines.
//! Pure: no I/O except [`load`], which reads one bounded file.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Default configuration path, as in the original rcron.
pub const DEFAULT_PATH: &str = "/etc/rcron/rcron.conf";
/// Longest accepted line, in bytes (255 virtual addresses with prefixes fit on one). Longer
/// lines are an error, not a truncation.
pub const MAX_LINE: usize = 8192;
/// Largest accepted file, in bytes.
pub const MAX_FILE: usize = 4 << 20;
/// Unicast peers, at most: one advert copy each per interval (keepalived has no limit; 64
/// is far beyond any VRRP group and keeps the list a fixed 256 bytes).
pub const MAX_PEERS: usize = 64;
/// Virtual addresses, at most: the advert's count field is 8 bits (RFC 5798 5.2.5), and
/// keepalived's `VRRP_MAX_ADDR` is the same 255. Whether they fit the link's MTU is checked
/// by the daemon, which knows the link ([`max_vips_for_mtu`]).
pub const MAX_VIPS: usize = 255;
/// `track_interface` entries, at most.
pub const MAX_TRACK_IF: usize = 32;

/// The two states a node can be in, as written in the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Passive,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Passive => "passive",
        }
    }
}

/// How a VRRPv3 IPv4 checksum is computed (see shared/vrrp-interop.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V3Checksum {
    /// Pseudo-header with the packet's actual destination: keepalived >= 1.3.7.
    PseudoHeader,
    /// Pseudo-header with 224.0.0.18 as destination: FRR, old keepalived.
    PseudoMulticast,
    /// No pseudo-header (RFC 9568, keepalived `v3_checksum_as_v2`).
    NoPseudoHeader,
}

/// The run ledger's UDP port unless `ledger_port` says otherwise: a privileged port (below
/// 1024), so that a local user of a peer cannot bind it while rcrond is not running and forge
/// records; 412 (VRRP is IP protocol 112) is in no /etc/services of Debian 12.
pub const DEFAULT_LEDGER_PORT: u16 = 412;

/// Who elects the active node (`election`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// The nodes among themselves, VRRP v2/v3 (`vrrp/`).
    Vrrp,
    /// An existing etcd cluster: the holder of the leader key (`etcd/`).
    Etcd,
}

/// etcd's default client port, for an endpoint written without one.
pub const ETCD_DEFAULT_PORT: u16 = 2379;

/// A validated configuration. Daemon-only keys are optional here; [`Config::daemon_errors`]
/// says what the daemon still needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cluster_name: String,
    pub state_file: PathBuf,
    pub default_state: State,
    /// syslog facility code (already shifted: LOG_CRON = 9 << 3).
    pub syslog_facility: u8,
    /// syslog severity 0..7 of the per-job lines.
    pub syslog_level: u8,
    pub nice_level: i32,
    pub interface: Option<String>,
    pub virtual_router_id: Option<u8>,
    pub priority: u8,
    /// Advert interval in centiseconds.
    pub advert_int_cs: u16,
    pub vrrp_version: u8,
    pub v3_checksum: V3Checksum,
    pub unicast_src_ip: Option<Ipv4Addr>,
    pub unicast_peers: heapless::Vec<Ipv4Addr, MAX_PEERS>,
    pub auth_pass: Option<[u8; 8]>,
    /// The addresses the adverts carry, in order (the addresses of [`Config::vips`]).
    pub virtual_ipaddress: heapless::Vec<Ipv4Addr, MAX_VIPS>,
    /// How the active node holds each of them (prefix, device, label).
    pub vips: Vec<Vip>,
    /// Seconds after taking over when a second batch of gratuitous ARPs goes out; 0: none
    /// (keepalived's `garp_master_delay`, default 5, 0..=3600).
    pub garp_master_delay_s: u32,
    /// Gratuitous ARPs per address in each batch (keepalived's `garp_master_repeat`,
    /// default 5, 1..=100).
    pub garp_master_repeat: u32,
    /// Seconds between refresh batches while master (one ARP per address); 0: none
    /// (keepalived's `garp_master_refresh`, default 0, 0..=86400).
    pub garp_master_refresh_s: u32,
    pub preempt: bool,
    /// Preempt delay in centiseconds.
    pub preempt_delay_cs: u32,
    pub track_interface: heapless::Vec<String, MAX_TRACK_IF>,
    pub track_script: Option<String>,
    pub track_interval_cs: u32,
    pub track_fall: u32,
    pub track_rise: u32,
    pub notify_active: Option<String>,
    pub notify_passive: Option<String>,
    pub notify_fault: Option<String>,
    pub control_socket: PathBuf,
    /// Group (gid) allowed on the control socket besides root; `None`: root only.
    pub control_group: Option<u32>,
    pub pid_file: PathBuf,
    /// The daemon's own niceness, -20..19 (`setpriority(2)`), so that a crowd of jobs cannot
    /// starve its adverts; its hooks and track script run at the niceness it was started with.
    /// keepalived's `vrrp_priority` does the same, off by default; rcron's default is -10.
    pub daemon_nice: i32,
    pub lock_dir: PathBuf,
    /// Record each slot among the peers before running it (`ledger`); `false`: the advert
    /// timing rule (`handoff`) decides, as with keepalived peers.
    pub run_ledger: bool,
    /// Seconds of wall-clock offset between nodes within which exactly-once is promised,
    /// 0..=3600.
    pub max_clock_offset_s: u32,
    /// The ledger's UDP port, the same on every node.
    pub ledger_port: u16,
    pub election: Election,
    /// etcd client URLs (`http://HOST:PORT` or `https://...`, no path, no trailing slash).
    pub etcd_endpoints: Vec<String>,
    /// Key prefix of this group in etcd, ending in `/`; `None`: `/rcron/<cluster_name>/`.
    pub etcd_prefix: Option<String>,
    /// Seconds, 2..=300 (etcd's minimum lease is about 2 s with its default timers).
    pub etcd_lease_ttl_s: u32,
    pub etcd_ca_file: Option<PathBuf>,
    pub etcd_cert_file: Option<PathBuf>,
    pub etcd_key_file: Option<PathBuf>,
    /// This node's name in etcd; `None`: the host name (see [`Config::node_name`]).
    pub node_name: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_name: "default_cluster".into(),
            state_file: "/var/run/rcron/state".into(),
            default_state: State::Passive,
            syslog_facility: 9 << 3,
            syslog_level: 6,
            nice_level: 19,
            interface: None,
            virtual_router_id: None,
            priority: 100,
            advert_int_cs: 100,
            vrrp_version: 2,
            v3_checksum: V3Checksum::PseudoHeader,
            unicast_src_ip: None,
            unicast_peers: heapless::Vec::new(),
            auth_pass: None,
            virtual_ipaddress: heapless::Vec::new(),
            vips: Vec::new(),
            garp_master_delay_s: 5,
            garp_master_repeat: 5,
            garp_master_refresh_s: 0,
            preempt: true,
            preempt_delay_cs: 0,
            track_interface: heapless::Vec::new(),
            track_script: None,
            track_interval_cs: 100,
            track_fall: 1,
            track_rise: 1,
            notify_active: None,
            notify_passive: None,
            notify_fault: None,
            control_socket: "/var/run/rcron/rcron.sock".into(),
            control_group: None,
            pid_file: "/var/run/rcron/rcrond.pid".into(),
            daemon_nice: -10,
            lock_dir: "/var/run/rcron".into(),
            run_ledger: true,
            max_clock_offset_s: 30,
            ledger_port: DEFAULT_LEDGER_PORT,
            election: Election::Vrrp,
            etcd_endpoints: Vec::new(),
            etcd_prefix: None,
            etcd_lease_ttl_s: 10,
            etcd_ca_file: None,
            etcd_cert_file: None,
            etcd_key_file: None,
            node_name: None,
        }
    }
}

impl Config {
    /// True when the config sets up an election, so an rcron daemon is expected on this node
    /// (shared/interface.md, "Handoff").
    pub fn expects_daemon(&self) -> bool {
        self.virtual_router_id.is_some() || self.election == Election::Etcd
    }

    /// The group's key prefix in etcd (`etcd_prefix`, or `/rcron/<cluster_name>/`).
    pub fn etcd_prefix(&self) -> String {
        match &self.etcd_prefix {
            Some(p) => p.clone(),
            None => format!("/rcron/{}/", self.cluster_name),
        }
    }

    /// This node's name (`node_name`, or the host name; `localhost` when it has none).
    pub fn node_name(&self) -> String {
        if let Some(n) = &self.node_name {
            return n.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| parse_node_name(h).is_ok())
            .unwrap_or_else(|| "localhost".into())
    }

    /// What the daemon needs beyond what the wrapper needs (line 0: not tied to a line).
    pub fn daemon_errors(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        if self.election == Election::Etcd {
            if self.etcd_endpoints.is_empty() {
                errs.push(ConfigError::new(0, "`etcd_endpoints` is required with election = etcd"));
            }
            if self.etcd_prefix.is_none()
                && let Err(e) = parse_prefix(&self.etcd_prefix())
            {
                let e = format!("the etcd prefix made from cluster_name: {e}; set etcd_prefix");
                errs.push(ConfigError::new(0, e));
            }
            return errs;
        }
        if self.interface.is_none() {
            errs.push(ConfigError::new(0, "`interface` is required for the daemon"));
        }
        if self.virtual_router_id.is_none() {
            errs.push(ConfigError::new(0, "`virtual_router_id` is required for the daemon"));
        }
        errs
    }
}

/// Everything the daemon needs beyond a file that parses, checked in one place (start,
/// reload, `--check`): the keys an election needs, and hooks that no non-root user can change
/// (`os::hooks::errors`). Err: the problems, one per line, as `FILE: problem`.
pub fn validate_daemon(cfg: &Config, path: &Path) -> Result<(), String> {
    let mut errs = cfg.daemon_errors();
    errs.extend(crate::os::hooks::errors(cfg).into_iter().map(ConfigError::whole_file));
    if errs.is_empty() { Ok(()) } else { Err(LoadError::Invalid(path.into(), errs).to_string()) }
}

/// One problem in a config file. `line` is 1-based; 0 means the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub msg: String,
}

impl ConfigError {
    fn new(line: usize, msg: impl Into<String>) -> Self {
        ConfigError { line, msg: msg.into() }
    }

    /// An error about the file as a whole (no line).
    pub fn whole_file(msg: String) -> Self {
        ConfigError { line: 0, msg }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "line {}: {}", self.line, self.msg)
        }
    }
}

/// Why a config could not be had.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable, too large, not a regular file).
    Io(PathBuf, String),
    /// The file was read and has these errors.
    Invalid(PathBuf, Vec<ConfigError>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "{}: {}", p.display(), e),
            LoadError::Invalid(p, errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    if e.line == 0 {
                        write!(f, "{}: {}", p.display(), e.msg)?;
                    } else {
                        write!(f, "{}:{}: {}", p.display(), e.line, e.msg)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A file that parsed: its configuration and the warnings it gave (in line order).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub config: Config,
    /// A single-valued key set again (the later line wins, as in the original rcron).
    pub warnings: Vec<ConfigError>,
}

/// Reads and parses `path`, refusing anything that is not a regular file of at most
/// [`MAX_FILE`] bytes (a FIFO or a device would otherwise hang or flood the reader).
pub fn load(path: &Path) -> Result<Parsed, LoadError> {
    let bytes = crate::os::sys::read_regular_file(path, MAX_FILE)
        .map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
    parse_with_warnings(&bytes).map_err(|errs| LoadError::Invalid(path.to_path_buf(), errs))
}

/// [`load`] that keeps going past errors: the config the valid lines make (defaults
/// elsewhere) and the errors, for `--status`, which must still find a running daemon's socket
/// when the file was broken after the daemon started. Err: the file cannot be read.
pub fn load_lenient(path: &Path) -> Result<(Config, Vec<ConfigError>), LoadError> {
    let bytes = crate::os::sys::read_regular_file(path, MAX_FILE)
        .map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
    let p = parser_over(&bytes);
    Ok((p.cfg, p.errs))
}

/// [`load`] then [`validate_daemon`]: the config a daemon (supervisor or worker) may take on
/// reload. Err: the load error, or the daemon's problems one per line.
pub fn load_daemon(path: &Path) -> Result<Parsed, String> {
    let parsed = load(path).map_err(|e| e.to_string())?;
    validate_daemon(&parsed.config, path)?;
    Ok(parsed)
}

/// Parses a whole file. Returns every error found, in line order.
pub fn parse(input: &[u8]) -> Result<Config, Vec<ConfigError>> {
    parse_with_warnings(input).map(|p| p.config)
}

/// [`parse`], keeping the warnings.
pub fn parse_with_warnings(input: &[u8]) -> Result<Parsed, Vec<ConfigError>> {
    let p = parser_over(input);
    if p.errs.is_empty() { Ok(Parsed { config: p.cfg, warnings: p.warnings }) } else { Err(p.errs) }
}

/// Every line of `input` parsed and the rules between keys checked.
fn parser_over(input: &[u8]) -> Parser {
    let mut p = Parser {
        cfg: Config::default(),
        errs: Vec::new(),
        warnings: Vec::new(),
        seen: [0; KEYS.len()],
        vip_lines: Vec::new(),
    };
    for (idx, raw) in input.split(|&b| b == b'\n').enumerate() {
        p.line(idx + 1, raw);
    }
    p.cross_check();
    // Rules between keys are found last; report every error in line order all the same.
    p.errs.sort_by_key(|e| e.line);
    p
}

/// How many IPv4 virtual addresses fit one advert on a link of `mtu` bytes: keepalived's
/// rule (`vrrp_complete_instance`: MTU less Ethernet, IPv4 and VRRP headers, and v2's 8
/// authentication bytes, over 4), capped at [`MAX_VIPS`]. keepalived moves the excess to
/// addresses it does not advertise; rcron refuses such a config instead, naming this limit.
pub fn max_vips_for_mtu(mtu: u32, version: u8) -> usize {
    let headers = 14 + 20 + 8 + if version == 2 { 8 } else { 0 };
    (mtu.saturating_sub(headers) / 4).min(MAX_VIPS as u32) as usize
}

/// One `virtual_ipaddress` entry as the active node holds it: keepalived's
/// `ADDR[/PREFIX] [dev IFACE] [label LABEL]` (keepalived.conf(5), "virtual_ipaddress").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32; 32 when not given, as keepalived does.
    pub prefix: u8,
    /// The interface that holds it; `None`: `interface`.
    pub dev: Option<String>,
    /// `ip addr`'s label: at most 15 bytes, starting with the interface's name.
    pub label: Option<String>,
}

/// Every key, whether it takes a list, and its index in `Parser::seen`.
const KEYS: [(&str, bool); 45] = [
    ("cluster_name", false),
    ("state_file", false),
    ("default_state", false),
    ("syslog_facility", false),
    ("syslog_level", false),
    ("nice_level", false),
    ("interface", false),
    ("virtual_router_id", false),
    ("priority", false),
    ("advert_int", false),
    ("vrrp_version", false),
    ("v3_checksum", false),
    ("unicast_src_ip", false),
    ("unicast_peer", true),
    ("auth_pass", false),
    ("virtual_ipaddress", true),
    ("garp_master_delay", false),
    ("garp_master_repeat", false),
    ("garp_master_refresh", false),
    ("preempt", false),
    ("preempt_delay", false),
    ("track_interface", true),
    ("track_script", false),
    ("track_interval", false),
    ("track_fall", false),
    ("track_rise", false),
    ("notify_active", false),
    ("notify_passive", false),
    ("notify_fault", false),
    ("control_socket", false),
    ("control_group", false),
    ("pid_file", false),
    ("daemon_nice", false),
    ("lock_dir", false),
    ("run_ledger", false),
    ("max_clock_offset", false),
    ("ledger_port", false),
    ("election", false),
    ("etcd_endpoints", true),
    ("etcd_prefix", false),
    ("etcd_lease_ttl", false),
    ("etcd_ca_file", false),
    ("etcd_cert_file", false),
    ("etcd_key_file", false),
    ("node_name", false),
];

/// Keys only the VRRP election reads (the run ledger is its own; etcd keeps the records).
const VRRP_ONLY: [&str; 17] = [
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "vrrp_version",
    "v3_checksum",
    "unicast_src_ip",
    "unicast_peer",
    "auth_pass",
    "virtual_ipaddress",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "preempt",
    "preempt_delay",
    "run_ledger",
    "ledger_port",
];

/// Keys only the etcd election reads.
const ETCD_ONLY: [&str; 7] = [
    "etcd_endpoints",
    "etcd_prefix",
    "etcd_lease_ttl",
    "etcd_ca_file",
    "etcd_cert_file",
    "etcd_key_file",
    "node_name",
];

struct Parser {
    cfg: Config,
    errs: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    /// Line where each key was last set (0 = not yet).
    seen: [usize; KEYS.len()],
    /// The line of each `cfg.vips` entry (its errors found later point there).
    vip_lines: Vec<usize>,
}

/// One line split: the key, its values (quotes removed), and the raw text of the values as
/// written (from the first to the end of the last, quotes kept).
struct Tokens<'a> {
    key: &'a str,
    values: Vec<&'a str>,
    raw: &'a str,
}

/// Splits one line; `Ok(None)` for blank and comment lines.
fn tokenize(line: &str) -> Result<Option<Tokens<'_>>, String> {
    let s = line.trim_start_matches([' ', '\t']);
    if s.is_empty() || s.starts_with('#') || s.starts_with(';') {
        return Ok(None);
    }
    let key_end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    if key_end == 0 {
        return Err(format!("expected a key, found {:?}", first_char(s)));
    }
    let key = &s[..key_end];
    let mut rest = &s[key_end..];
    let sep = rest.len() - rest.trim_start_matches([' ', '\t', '=']).len();
    rest = &rest[sep..];
    let body = rest;
    let mut raw_len = 0;
    let mut values = Vec::new();
    loop {
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
            break;
        }
        if sep == 0 && values.is_empty() {
            return Err(format!("unexpected {:?} after key `{key}`", first_char(rest)));
        }
        let (value, after) = if let Some(q) = rest.strip_prefix(['"', '\'']) {
            let quote = rest.as_bytes()[0] as char;
            match q.find(quote) {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => return Err(format!("unterminated {quote} quote")),
            }
        } else {
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            let v = &rest[..end];
            if let Some(pos) = v.find(['"', '\'']) {
                return Err(format!("unexpected quote in value {:?}", &v[..=pos]));
            }
            (v, &rest[end..])
        };
        values.push(value);
        raw_len = body.len() - after.len();
        let trimmed = after.trim_start_matches([' ', '\t']);
        if trimmed.len() == after.len() && !trimmed.is_empty() {
            return Err(format!("expected whitespace after value {value:?}"));
        }
        rest = trimmed;
    }
    if values.is_empty() {
        return Err(format!("key `{key}` has no value"));
    }
    Ok(Some(Tokens { key, values, raw: &body[..raw_len] }))
}

/// Keys whose value is a command line: several words are the command and its arguments, as
/// written (quotes kept for `hooks::split_words`), as keepalived's `notify_*` and `script`.
const COMMAND_KEYS: [&str; 4] = ["notify_active", "notify_passive", "notify_fault", "track_script"];

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or(' ')
}

impl Parser {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errs.push(ConfigError::new(line, msg));
    }

    fn line(&mut self, n: usize, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return self.err(n, format!("line is {} bytes long (at most {MAX_LINE})", raw.len()));
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return self.err(n, "line is not valid UTF-8 text");
        };
        if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
            return self.err(n, format!("control character {c:?} in line"));
        }
        match tokenize(text) {
            Ok(None) => {}
            Ok(Some(t)) if t.values.len() > 1 && COMMAND_KEYS.contains(&t.key) => {
                self.key(n, t.key, &[t.raw])
            }
            Ok(Some(t)) => self.key(n, t.key, &t.values),
            Err(e) => self.err(n, e),
        }
    }

    fn key(&mut self, n: usize, key: &str, values: &[&str]) {
        let Some(idx) = KEYS.iter().position(|(k, _)| *k == key) else {
            let hint = if key == "vrrp_unicast_bind" {
                " (keepalived-era guides: the key is `unicast_src_ip`)"
            } else if key == "vrrp_unicast_peer" {
                " (keepalived-era guides: the key is `unicast_peer`)"
            } else {
                ""
            };
            return self.err(n, format!("unknown key `{key}`{hint}"));
        };
        let list = KEYS[idx].1;
        if !list {
            if values.len() != 1 {
                return self.err(n, format!("key `{key}` takes one value, found {}", values.len()));
            }
            if self.seen[idx] != 0 {
                let before = self.seen[idx];
                self.warnings.push(ConfigError::new(
                    n,
                    format!("`{key}` is set again (also on line {before}): line {n} wins"),
                ));
            }
        }
        if !list || self.seen[idx] == 0 {
            self.seen[idx] = n;
        }
        let v = values[0];
        let r: Result<(), String> = match key {
            "cluster_name" => nonempty(v).map(|v| self.cfg.cluster_name = v.into()),
            "state_file" => path(v).map(|p| self.cfg.state_file = p),
            "default_state" => parse_state(v).map(|s| self.cfg.default_state = s),
            "syslog_facility" => parse_facility(v).map(|f| self.cfg.syslog_facility = f),
            "syslog_level" => parse_level(v).map(|l| self.cfg.syslog_level = l),
            "nice_level" => int_in(v, -20, 19).map(|x| self.cfg.nice_level = x as i32),
            "interface" => parse_ifname(v).map(|s| self.cfg.interface = Some(s)),
            "virtual_router_id" => {
                int_in(v, 1, 255).map(|x| self.cfg.virtual_router_id = Some(x as u8))
            }
            "priority" => int_in(v, 1, 255).map(|x| self.cfg.priority = x as u8),
            "advert_int" => parse_centis(v, 1, 25500).map(|x| self.cfg.advert_int_cs = x as u16),
            "vrrp_version" => int_in(v, 2, 3).map(|x| self.cfg.vrrp_version = x as u8),
            "v3_checksum" => parse_checksum(v).map(|c| self.cfg.v3_checksum = c),
            "unicast_src_ip" => parse_ip(v).map(|ip| self.cfg.unicast_src_ip = Some(ip)),
            "unicast_peer" => {
                self.list_ips(n, key, values, true);
                Ok(())
            }
            "virtual_ipaddress" => {
                self.vip_line(n, values);
                Ok(())
            }
            "garp_master_delay" => {
                int_in(v, 0, 3600).map(|x| self.cfg.garp_master_delay_s = x as u32)
            }
            "garp_master_repeat" => {
                int_in(v, 1, 100).map(|x| self.cfg.garp_master_repeat = x as u32)
            }
            "garp_master_refresh" => {
                int_in(v, 0, 86_400).map(|x| self.cfg.garp_master_refresh_s = x as u32)
            }
            "auth_pass" => parse_pass(v).map(|p| self.cfg.auth_pass = Some(p)),
            "preempt" => parse_bool(v).map(|b| self.cfg.preempt = b),
            "preempt_delay" => parse_centis(v, 0, 360_000).map(|x| self.cfg.preempt_delay_cs = x),
            "track_interface" => {
                for v in values {
                    let r = parse_ifname(v).and_then(|s| {
                        self.cfg.track_interface.push(s).map_err(|_| {
                            format!("more than {MAX_TRACK_IF} track_interface entries")
                        })
                    });
                    if let Err(e) = r {
                        self.err(n, format!("track_interface: {e}"));
                    }
                }
                Ok(())
            }
            "track_script" => nonempty(v).map(|v| self.cfg.track_script = Some(v.into())),
            "track_interval" => parse_centis(v, 1, 360_000).map(|x| self.cfg.track_interval_cs = x),
            "track_fall" => int_in(v, 1, 1000).map(|x| self.cfg.track_fall = x as u32),
            "track_rise" => int_in(v, 1, 1000).map(|x| self.cfg.track_rise = x as u32),
            "notify_active" => nonempty(v).map(|v| self.cfg.notify_active = Some(v.into())),
            "notify_passive" => nonempty(v).map(|v| self.cfg.notify_passive = Some(v.into())),
            "notify_fault" => nonempty(v).map(|v| self.cfg.notify_fault = Some(v.into())),
            "control_socket" => path(v).map(|p| self.cfg.control_socket = p),
            "control_group" => parse_group(v).map(|g| self.cfg.control_group = Some(g)),
            "pid_file" => path(v).map(|p| self.cfg.pid_file = p),
            "daemon_nice" => int_in(v, -20, 19).map(|x| self.cfg.daemon_nice = x as i32),
            "lock_dir" => path(v).map(|p| self.cfg.lock_dir = p),
            "run_ledger" => parse_bool(v).map(|b| self.cfg.run_ledger = b),
            "max_clock_offset" => {
                int_in(v, 0, 3600).map(|x| self.cfg.max_clock_offset_s = x as u32)
            }
            "ledger_port" => int_in(v, 1, 65535).map(|x| self.cfg.ledger_port = x as u16),
            "election" => parse_election(v).map(|e| self.cfg.election = e),
            "etcd_endpoints" => {
                for url in values.iter().flat_map(|v| v.split(',')).filter(|u| !u.is_empty()) {
                    match parse_endpoint(url) {
                        Ok(u) if self.cfg.etcd_endpoints.contains(&u) => {
                            self.err(n, format!("etcd_endpoints: {u} is listed twice"))
                        }
                        Ok(_) if self.cfg.etcd_endpoints.len() >= MAX_ETCD_ENDPOINTS => {
                            let e =
                                format!("etcd_endpoints: more than {MAX_ETCD_ENDPOINTS} endpoints");
                            if !self.errs.iter().any(|x| x.msg == e) {
                                self.err(n, e);
                            }
                        }
                        Ok(u) => self.cfg.etcd_endpoints.push(u),
                        Err(e) => self.err(n, format!("etcd_endpoints: {e}")),
                    }
                }
                Ok(())
            }
            "etcd_prefix" => parse_prefix(v).map(|p| self.cfg.etcd_prefix = Some(p)),
            "etcd_lease_ttl" => int_in(v, 2, 300).map(|x| self.cfg.etcd_lease_ttl_s = x as u32),
            "etcd_ca_file" => path(v).map(|p| self.cfg.etcd_ca_file = Some(p)),
            "etcd_cert_file" => path(v).map(|p| self.cfg.etcd_cert_file = Some(p)),
            "etcd_key_file" => path(v).map(|p| self.cfg.etcd_key_file = Some(p)),
            "node_name" => parse_node_name(v).map(|x| self.cfg.node_name = Some(x.into())),
            _ => Err(format!("unknown key `{key}`")),
        };
        if let Err(e) = r {
            self.err(n, format!("{key}: {e}"));
        }
    }

    fn list_ips(&mut self, n: usize, key: &str, values: &[&str], peers: bool) {
        for v in values {
            let ip = if peers { parse_ip(v) } else { parse_vip(v).map(|(ip, _)| ip) };
            let list_full = match ip {
                Err(e) => {
                    self.err(n, format!("{key}: {e}"));
                    continue;
                }
                Ok(ip) => {
                    let list: &mut dyn ListPush = if peers {
                        &mut self.cfg.unicast_peers
                    } else {
                        &mut self.cfg.virtual_ipaddress
                    };
                    if list.contains_ip(ip) {
                        self.err(n, format!("{key}: {ip} is listed twice"));
                        continue;
                    }
                    list.push_ip(ip)
                }
            };
            if !list_full {
                let max = if peers { MAX_PEERS } else { MAX_VIPS };
                self.err(n, format!("{key}: more than {max} addresses"));
                return;
            }
        }
    }

    /// A `virtual_ipaddress` line: addresses, each optionally followed by `dev IFACE` and
    /// `label LABEL` (keepalived's words); keepalived's other address options are refused by
    /// name rather than ignored.
    fn vip_line(&mut self, n: usize, values: &[&str]) {
        let first = self.cfg.vips.len();
        let mut i = 0;
        while i < values.len() {
            let word = values[i];
            match word {
                "dev" | "label" => {
                    let Some(&arg) = values.get(i + 1) else {
                        self.err(n, format!("virtual_ipaddress: `{word}` needs a value"));
                        return;
                    };
                    // Options belong to an address of their own line.
                    let Some(last) = self.cfg.vips.get_mut(first..).and_then(|l| l.last_mut())
                    else {
                        self.err(n, format!("virtual_ipaddress: `{word}` before any address"));
                        return;
                    };
                    let slot = if word == "dev" { &mut last.dev } else { &mut last.label };
                    let parsed = if word == "dev" { parse_ifname(arg) } else { parse_label(arg) };
                    let problem = match (slot.is_some(), parsed) {
                        (true, _) => Some(format!("{}: `{word}` given twice", last.addr)),
                        (false, Ok(name)) => {
                            *slot = Some(name);
                            None
                        }
                        (false, Err(e)) => Some(format!("{word}: {e}")),
                    };
                    if let Some(p) = problem {
                        self.err(n, format!("virtual_ipaddress {p}"));
                        return;
                    }
                    i += 2;
                }
                "brd" | "broadcast" | "scope" | "metric" | "preferred_lft" | "valid_lft"
                | "home" | "no_track" | "noprefixroute" | "peer" | "track_group" => {
                    self.err(
                        n,
                        format!(
                            "virtual_ipaddress: `{word}` is not supported (ADDR[/PREFIX] \
                             [dev IFACE] [label LABEL])"
                        ),
                    );
                    return;
                }
                _ => {
                    if self.cfg.virtual_ipaddress.is_full() {
                        self.err(n, format!("virtual_ipaddress: more than {MAX_VIPS} addresses"));
                        return;
                    }
                    let before = self.cfg.virtual_ipaddress.len();
                    self.list_ips(n, "virtual_ipaddress", &[word], false);
                    if self.cfg.virtual_ipaddress.len() > before
                        && let Ok((addr, prefix)) = parse_vip(word)
                    {
                        self.cfg.vips.push(Vip { addr, prefix, dev: None, label: None });
                        self.vip_lines.push(n);
                    }
                    i += 1;
                }
            }
        }
    }

    /// Rules that involve several keys; reported on the line of the later key.
    fn cross_check(&mut self) {
        let seen = self.seen;
        let line_of =
            |k: &str| KEYS.iter().position(|(key, _)| *key == k).map(|i| seen[i]).unwrap_or(0);
        // The other election's keys stay valid (a config may switch back), but are said.
        let (election, unused) = match self.cfg.election {
            Election::Etcd => ("etcd", &VRRP_ONLY[..]),
            Election::Vrrp => ("vrrp", &ETCD_ONLY[..]),
        };
        for k in unused.iter().filter(|k| line_of(k) > 0) {
            let w = format!("{k} has no effect with election = {election}");
            self.warnings.push(ConfigError::new(line_of(k), w));
        }
        let vrrp = self.cfg.election == Election::Vrrp;
        if vrrp && self.cfg.interface.as_deref() == Some("lo") {
            self.err(line_of("interface"), "VRRP needs a real link, not the loopback interface");
        }
        let port = self.cfg.ledger_port;
        if vrrp && port >= 1024 {
            let w = format!(
                "ledger_port {port} is not privileged: a local user of a peer can bind it while \
                 rcrond is not running and forge run records"
            );
            self.warnings.push(ConfigError::new(line_of("ledger_port"), w));
        }
        self.warnings.sort_by_key(|w| w.line);
        if !cfg!(feature = "tls") {
            // Each key that asks for TLS is said at its own line.
            let c = &self.cfg;
            let asking = [
                ("etcd_endpoints", c.etcd_endpoints.iter().any(|u| u.starts_with("https:"))),
                ("etcd_ca_file", c.etcd_ca_file.is_some()),
                ("etcd_cert_file", c.etcd_cert_file.is_some()),
                ("etcd_key_file", c.etcd_key_file.is_some()),
            ];
            for (key, _) in asking.into_iter().filter(|&(_, asked)| asked) {
                self.err(
                    line_of(key),
                    format!(
                        "{key}: TLS to etcd needs a build with the `tls` feature (README, \
                         \"Building the binaries\"); use http:// endpoints or a TLS build"
                    ),
                );
            }
        }
        let c = &self.cfg;
        if c.etcd_cert_file.is_some() != c.etcd_key_file.is_some() {
            let l = line_of("etcd_cert_file").max(line_of("etcd_key_file"));
            self.err(l, "etcd_cert_file and etcd_key_file go together (a client certificate)");
        }
        let iface = self.cfg.interface.clone().unwrap_or_default();
        let mut bad_labels = Vec::new();
        for (v, &line) in self.cfg.vips.iter().zip(&self.vip_lines) {
            let dev = v.dev.as_deref().unwrap_or(&iface);
            let fits =
                |l: &str| l.strip_prefix(dev).is_some_and(|r| r.is_empty() || r.starts_with(':'));
            if let Some(l) = &v.label
                && !dev.is_empty()
                && !fits(l)
            {
                // ip-address(8): "each label must start with the device name followed by a
                // colon"; that is also how getifaddrs(3) shows it.
                bad_labels.push((
                    line,
                    format!(
                        "virtual_ipaddress {}: label {l} must start with its interface's name and \
                         a colon ({dev}:...)",
                        v.addr
                    ),
                ));
            }
            if self.cfg.unicast_peers.contains(&v.addr) {
                // The peer would answer for it too, and our adverts to it would come back here.
                bad_labels.push((
                    line,
                    format!("virtual_ipaddress {}: a unicast_peer's own address", v.addr),
                ));
            }
            if Some(v.addr) == self.cfg.unicast_src_ip {
                // rcron adds and removes these: the node's own address cannot be one.
                bad_labels.push((
                    line,
                    format!(
                        "virtual_ipaddress {}: this node's own unicast_src_ip; rcron would remove \
                         it when passive (keepalived's address owner keeps it out of the list)",
                        v.addr
                    ),
                ));
            }
        }
        for (line, e) in bad_labels {
            self.err(line, e);
        }
        let v3 = self.cfg.vrrp_version == 3;
        let adv_line = line_of("advert_int");
        if !v3 && !self.cfg.advert_int_cs.is_multiple_of(100) {
            let l = adv_line;
            self.err(l, "advert_int: VRRPv2 needs whole seconds (fractions need vrrp_version 3)");
        }
        if v3 && self.cfg.advert_int_cs > 4095 {
            self.err(adv_line, "advert_int: VRRPv3 allows at most 40.95 seconds");
        }
        if v3 && self.cfg.auth_pass.is_some() {
            let l = line_of("auth_pass");
            self.err(l, "auth_pass: VRRPv3 has no authentication; remove it or use vrrp_version 2");
        }
        if let Some(src) = self.cfg.unicast_src_ip
            && self.cfg.unicast_peers.contains(&src)
        {
            let l = line_of("unicast_peer");
            self.err(l, format!("unicast_peer: {src} is this node's own unicast_src_ip"));
        }
    }
}

/// A fixed-capacity list of addresses (peers or virtual addresses).
trait ListPush {
    fn contains_ip(&self, ip: Ipv4Addr) -> bool;
    /// False when the list is full.
    fn push_ip(&mut self, ip: Ipv4Addr) -> bool;
}

impl<const N: usize> ListPush for heapless::Vec<Ipv4Addr, N> {
    fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        self.contains(&ip)
    }
    fn push_ip(&mut self, ip: Ipv4Addr) -> bool {
        self.push(ip).is_ok()
    }
}

fn parse_election(v: &str) -> Result<Election, String> {
    match v.to_ascii_lowercase().as_str() {
        "vrrp" => Ok(Election::Vrrp),
        "etcd" if cfg!(feature = "etcd") => Ok(Election::Etcd),
        "etcd" => {
            Err("this rcron was built without the etcd backend (README, \"Building the binaries\")"
                .into())
        }
        _ => Err(format!("`{v}`: expected vrrp or etcd")),
    }
}

/// `etcd_endpoints` holds at most this many URLs (etcd clusters have 3, 5 or 7 members).
pub const MAX_ETCD_ENDPOINTS: usize = 16;

/// An etcd client URL: `http://HOST[:PORT]` or `https://HOST[:PORT]` (a trailing `/` is
/// dropped, a port added when missing); HOST a name, an IPv4 address or `[IPv6]`.
fn parse_endpoint(v: &str) -> Result<String, String> {
    // Scheme and host are case-insensitive (RFC 3986 3.1, 3.2.2): one spelling, so that a
    // duplicate is found.
    let lower = v.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .filter(|(s, _)| matches!(*s, "http" | "https"))
        .ok_or_else(|| format!("`{v}`: expected http://HOST:PORT or https://HOST:PORT"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(format!("`{v}`: an endpoint is HOST:PORT, without a path or user"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && if let Some(h) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            h.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
    let dotted_quad = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !host_ok || (dotted_quad && host.parse::<Ipv4Addr>().is_err()) {
        return Err(format!("`{v}`: bad host `{host}`"));
    }
    let port = match port {
        None => ETCD_DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0') => n,
            _ => return Err(format!("`{v}`: bad port `{p}`")),
        },
    };
    Ok(format!("{scheme}://{host}:{port}"))
}

/// `etcd_prefix`: a key prefix of printable ASCII without spaces, starting with `/` and ending
/// in one (added), at most 128 bytes, not `/` alone (the group's keys need a place of their
/// own).
fn parse_prefix(v: &str) -> Result<String, String> {
    if v.len() < 2 || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("`{v}`: 2 to 128 printable ASCII characters, no spaces"));
    }
    if !v.starts_with('/') || v.contains("//") {
        return Err(format!("`{v}`: a key prefix like /rcron/billing/ (from /, no empty part)"));
    }
    Ok(if v.ends_with('/') { v.to_string() } else { format!("{v}/") })
}

/// `node_name`: 1 to 64 bytes of letters, digits, `.`, `-`, `_` (it goes into logs, the
/// state file's `master=` and etcd values).
pub fn parse_node_name(v: &str) -> Result<&str, String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
    let first_ok = v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_ok || v.len() > 64 || !v.bytes().all(ok) {
        return Err(format!(
            "`{v}`: 1 to 64 letters, digits, `.`, `-` or `_`, from a letter or digit"
        ));
    }
    Ok(v)
}

fn nonempty(v: &str) -> Result<&str, String> {
    if v.is_empty() { Err("empty value".into()) } else { Ok(v) }
}

fn path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        Err("empty path".into())
    } else if v.contains('\0') {
        Err("path contains a NUL byte".into())
    } else {
        Ok(PathBuf::from(v))
    }
}

fn parse_state(v: &str) -> Result<State, String> {
    match v.to_ascii_lowercase().as_str() {
        "active" => Ok(State::Active),
        "passive" => Ok(State::Passive),
        _ => Err(format!("expected `active` or `passive`, found {v:?}")),
    }
}

/// Facility names with or without `LOG_`, any case; returns the code shifted by 3.
pub fn parse_facility(v: &str) -> Result<u8, String> {
    let up = v.to_ascii_uppercase();
    let name = up.strip_prefix("LOG_").unwrap_or(&up);
    let code = match name {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        _ => match name.strip_prefix("LOCAL").and_then(|d| d.parse::<u8>().ok()) {
            Some(d) if d <= 7 && name.len() == 6 => 16 + d,
            _ => return Err(format!("unknown syslog facility {v:?}")),
        },
    };
    Ok(code << 3)
}

/// Severity names with or without `LOG_`, any case.
pub fn parse_level(v: &str) -> Result<u8, String> {
    let up = v.to_ascii_uppercase();
    let name = up.strip_prefix("LOG_").unwrap_or(&up);
    Ok(match name {
        "EMERG" => 0,
        "ALERT" => 1,
        "CRIT" => 2,
        "ERR" | "ERROR" => 3,
        "WARNING" | "WARN" => 4,
        "NOTICE" => 5,
        "INFO" => 6,
        "DEBUG" => 7,
        _ => return Err(format!("unknown syslog level {v:?}")),
    })
}

fn int_in(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let x: i64 = v.parse().map_err(|_| format!("expected an integer, found {v:?}"))?;
    if x < min || x > max {
        return Err(format!("{x} is out of range {min}..{max}"));
    }
    Ok(x)
}

/// A decimal number of seconds with at most two decimals, as centiseconds in `min..=max`.
pub fn parse_centis(v: &str, min: u32, max: u32) -> Result<u32, String> {
    let bad = || format!("expected seconds like `1` or `0.05`, found {v:?}");
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || int.len() > 7 {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return Err(format!("{v:?} is finer than 0.01 s"));
    }
    let whole: u32 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let mut cs: u32 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
    if frac.len() == 1 {
        cs *= 10;
    }
    let total = whole * 100 + cs;
    if total < min || total > max {
        return Err(format!("{v} s is out of range {}..{} s", Centis(min), Centis(max)));
    }
    Ok(total)
}

/// Displays centiseconds as seconds (`150` -> `1.5`).
pub struct Centis(pub u32);

impl fmt::Display for Centis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, c) = (self.0 / 100, self.0 % 100);
        match c {
            0 => write!(f, "{s}"),
            c if c % 10 == 0 => write!(f, "{s}.{}", c / 10),
            c => write!(f, "{s}.{c:02}"),
        }
    }
}

fn parse_ifname(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 {
        return Err(format!("interface name {v:?} must be 1..15 bytes"));
    }
    if v.contains(['/', ':']) || v == "." || v == ".." {
        return Err(format!("{v:?} is not a valid interface name"));
    }
    Ok(v.into())
}

fn parse_ip(v: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = v.parse().map_err(|_| format!("{v:?} is not an IPv4 address"))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(format!("{ip} cannot be a node address"));
    }
    Ok(ip)
}

/// An address label (`eth0:vip`): 1..15 bytes (IFNAMSIZ less its NUL), no blank or `/`.
fn parse_label(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 || v.contains('/') || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{v:?} is not a label of 1..15 printable bytes"));
    }
    Ok(v.into())
}

/// `ADDR[/PREFIX]` (keepalived's form): the address and its prefix length, 1..32 (32 when not
/// given); not a loopback address.
fn parse_vip(v: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, len) = v.split_once('/').unwrap_or((v, "32"));
    let ip = parse_ip(addr)?;
    if ip.is_loopback() {
        return Err(format!("{ip} is a loopback address"));
    }
    match len.parse::<u8>() {
        Ok(l) if (1..=32).contains(&l) => Ok((ip, l)),
        _ => Err(format!("bad prefix length in {v:?} (1..32)")),
    }
}

fn parse_pass(v: &str) -> Result<[u8; 8], String> {
    if v.is_empty() || v.len() > 8 {
        return Err("the VRRPv2 password is 1..8 bytes".into());
    }
    let mut out = [0u8; 8];
    out[..v.len()].copy_from_slice(v.as_bytes());
    Ok(out)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("expected yes or no, found {v:?}")),
    }
}

/// A group name (looked up in the group database) or a numeric gid.
fn parse_group(v: &str) -> Result<u32, String> {
    if let Ok(gid) = v.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(v) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(format!("no group named {v:?}")),
    }
}

fn parse_checksum(v: &str) -> Result<V3Checksum, String> {
    match v {
        "keepalived" | "pseudo" => Ok(V3Checksum::PseudoHeader),
        "multicast" | "frr" => Ok(V3Checksum::PseudoMulticast),
        "none" | "rfc9568" | "as_v2" => Ok(V3Checksum::NoPseudoHeader),
        _ => Err(format!("expected keepalived, frr or rfc9568, found {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Config {
        match parse(s.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{s:?} should parse, got {e:?}"),
        }
    }

    fn errs(s: &str) -> Vec<(usize, String)> {
        match parse(s.as_bytes()) {
            Ok(c) => panic!("{s:?} should fail, parsed to {c:?}"),
            Err(e) => e.into_iter().map(|e| (e.line, e.msg)).collect(),
        }
    }

    /// Configs the original C rcron accepts, with the values it gave them.
    #[test]
    fn original_syntax_parses_to_the_same_meaning() {
        let table: &[(&str, &str, &str, State, u8, u8, i32)] = &[
            // (config, cluster, state_file, default_state, facility, level, nice)
            ("", "default_cluster", "/var/run/rcron/state", State::Passive, 9 << 3, 6, 19),
            (
                "cluster_name = web\nstate_file = /tmp/st\ndefault_state = active\n\
                 syslog_facility = LOG_DAEMON\nsyslog_level = LOG_NOTICE\nnice_level = 5\n",
                "web",
                "/tmp/st",
                State::Active,
                3 << 3,
                5,
                5,
            ),
            (
                "# comment\n;another\ncluster_name\tdb\nstate_file   \"/var/lib/my state\"\n",
                "db",
                "/var/lib/my state",
                State::Passive,
                9 << 3,
                6,
                19,
            ),
            (
                "cluster_name==x\ndefault_state PASSIVE\nsyslog_facility LOG_LOCAL3\n",
                "x",
                "/var/run/rcron/state",
                State::Passive,
                19 << 3,
                6,
                19,
            ),
            (
                "cluster_name 'a#b'\nnice_level -20\nsyslog_level LOG_DEBUG\n",
                "a#b",
                "/var/run/rcron/state",
                State::Passive,
                9 << 3,
                7,
                -20,
            ),
            // A bare value keeps `#` and `=` that are not at a token start, as the original did.
            ("cluster_name a#b=c\n", "a#b=c", "/var/run/rcron/state", State::Passive, 72, 6, 19),
        ];
        for (src, cluster, state, def, fac, lvl, nice) in table {
            let c = ok(src);
            assert_eq!(c.cluster_name, *cluster, "{src:?}");
            assert_eq!(c.state_file, PathBuf::from(state), "{src:?}");
            assert_eq!(c.default_state, *def, "{src:?}");
            assert_eq!(c.syslog_facility, *fac, "{src:?}");
            assert_eq!(c.syslog_level, *lvl, "{src:?}");
            assert_eq!(c.nice_level, *nice, "{src:?}");
        }
    }

    #[test]
    fn additions_kv_without_blank_trailing_comments_crlf_and_lower_case_names() {
        let c = ok("cluster_name=web # the web pair\r\nsyslog_facility=cron\r\n\
                    syslog_level = warning ; quiet\r\n   # indented comment\r\n");
        assert_eq!(c.cluster_name, "web");
        assert_eq!(c.syslog_facility, 9 << 3);
        assert_eq!(c.syslog_level, 4);
    }

    #[test]
    fn daemon_keys_parse() {
        let c = ok("interface eth0\nvirtual_router_id 51\npriority 150\nvrrp_version 3\n\
                    advert_int 0.05\nunicast_src_ip 192.0.2.1\nunicast_peer 192.0.2.2 192.0.2.3\n\
                    unicast_peer 192.0.2.4\nvirtual_ipaddress 192.0.2.100/24\npreempt no\n\
                    preempt_delay 2.5\ntrack_interface eth1 eth2\ntrack_script \"/bin/check x\"\n\
                    track_interval 3\ntrack_fall 2\ntrack_rise 4\nnotify_active /bin/a\n\
                    v3_checksum frr\n");
        assert_eq!(c.interface.as_deref(), Some("eth0"));
        assert_eq!(c.virtual_router_id, Some(51));
        assert_eq!(c.priority, 150);
        assert_eq!(c.vrrp_version, 3);
        assert_eq!(c.advert_int_cs, 5);
        assert_eq!(c.unicast_src_ip, Some(Ipv4Addr::new(192, 0, 2, 1)));
        let peers: Vec<_> = c.unicast_peers.iter().map(|p| p.octets()[3]).collect();
        assert_eq!(peers, [2, 3, 4]);
        assert_eq!(c.virtual_ipaddress.as_slice(), &[Ipv4Addr::new(192, 0, 2, 100)]);
        assert!(!c.preempt);
        assert_eq!(c.preempt_delay_cs, 250);
        assert_eq!(c.track_interface.len(), 2);
        assert_eq!(c.track_script.as_deref(), Some("/bin/check x"));
        assert_eq!((c.track_interval_cs, c.track_fall, c.track_rise), (300, 2, 4));
        assert_eq!(c.notify_active.as_deref(), Some("/bin/a"));
        assert_eq!(c.v3_checksum, V3Checksum::PseudoMulticast);
        assert!(c.expects_daemon());
        assert!(c.daemon_errors().is_empty());
    }

    #[test]
    fn v2_password_is_zero_padded_to_8_bytes() {
        let c = ok("auth_pass 1111\n");
        assert_eq!(c.auth_pass, Some(*b"1111\0\0\0\0"));
    }

    /// Broken configs, with the exact line each error is reported on.
    #[test]
    fn etcd_keys_parse_and_the_daemon_needs_endpoints() {
        let c = ok("election etcd\netcd_endpoints http://10.0.0.1:2379, HTTP://Node-2\n\
                    etcd_endpoints http://[::1]:2380/\netcd_lease_ttl 4\netcd_prefix /x/y\n\
                    node_name a-1.b_c\n");
        assert_eq!(c.election, Election::Etcd);
        assert!(c.expects_daemon());
        let urls = ["http://10.0.0.1:2379", "http://node-2:2379", "http://[::1]:2380"];
        assert_eq!(c.etcd_endpoints, urls);
        assert_eq!(
            (c.etcd_lease_ttl_s, c.etcd_prefix(), c.node_name()),
            (4, "/x/y/".into(), "a-1.b_c".into())
        );
        assert!(c.daemon_errors().is_empty());
        let bare = ok("election etcd\n");
        assert!(bare.daemon_errors()[0].msg.contains("etcd_endpoints` is required"));
        assert_eq!(bare.etcd_prefix(), "/rcron/default_cluster/");
        let spaced = ok("election etcd\netcd_endpoints http://a\ncluster_name \"a b\"\n");
        assert!(spaced.daemon_errors()[0].msg.contains("set etcd_prefix"));
        if !cfg!(feature = "tls") {
            assert!(errs("etcd_endpoints https://a\n")[0].1.contains("the `tls` feature"));
            let e = errs("etcd_endpoints http://a\netcd_cert_file /c\netcd_key_file /k\n");
            let lines: Vec<_> = e.iter().map(|e| e.0).collect();
            assert_eq!(lines, [2, 3], "{e:?}");
            assert!(e[0].1.starts_with("etcd_cert_file: "), "{e:?}");
        }
        let e = errs("etcd_key_file /k.pem\n");
        assert!(e.iter().any(|(l, m)| *l == 1 && m.contains("go together")), "{e:?}");
    }

    #[test]
    fn virtual_addresses_keep_prefix_device_and_label() {
        let c =
            ok("interface eth0\nvirtual_ipaddress 192.0.2.9/24 dev eth1 label eth1:v 192.0.2.8\n\
                    virtual_ipaddress 192.0.2.7\ngarp_master_delay 0\ngarp_master_refresh 60\n");
        let ips =
            [Ipv4Addr::new(192, 0, 2, 9), Ipv4Addr::new(192, 0, 2, 8), Ipv4Addr::new(192, 0, 2, 7)];
        assert_eq!(c.virtual_ipaddress.as_slice(), &ips);
        let v = &c.vips;
        assert_eq!(
            (v[0].prefix, v[0].dev.as_deref(), v[0].label.as_deref()),
            (24, Some("eth1"), Some("eth1:v"))
        );
        assert_eq!((v[1].prefix, v[1].dev.as_deref(), v[1].label.as_deref()), (32, None, None));
        assert_eq!(v.len(), 3);
        assert_eq!(
            (c.garp_master_delay_s, c.garp_master_repeat, c.garp_master_refresh_s),
            (0, 5, 60)
        );
    }

    #[test]
    fn broken_configs_report_every_error_with_its_line() {
        let table: &[(&str, &[usize], &str)] = &[
            ("bogus_key 1\n", &[1], "unknown key `bogus_key`"),
            ("\n\nnice_level 20\n", &[3], "out of range"),
            ("daemon_nice -21\n", &[1], "out of range"),
            ("nice_level abc\n", &[1], "expected an integer"),
            ("default_state inactive\n", &[1], "expected `active` or `passive`"),
            ("cluster_name\n", &[1], "has no value"),
            ("cluster_name \"abc\n", &[1], "unterminated"),
            ("cluster_name a b\n", &[1], "takes one value"),
            ("syslog_facility LOG_BOGUS\n", &[1], "unknown syslog facility"),
            ("syslog_level LOG_LOUD\n", &[1], "unknown syslog level"),
            ("= value\n", &[1], "expected a key"),
            ("priority 0\n", &[1], "out of range"),
            ("virtual_router_id 256\n", &[1], "out of range"),
            ("advert_int 0.5\n", &[1], "whole seconds"),
            ("vrrp_version 3\nadvert_int 41\n", &[2], "at most 40.95"),
            ("advert_int 256\n", &[1], "out of range"),
            ("run_ledger maybe\n", &[1], "expected yes or no"),
            ("max_clock_offset 3601\n", &[1], "out of range"),
            ("ledger_port 0\n", &[1], "out of range"),
            ("vrrp_version 3\nauth_pass x\nnice_level 99\n", &[2, 3], "no authentication"),
            ("vrrp_version 3\nadvert_int 0.001\n", &[2], "finer than 0.01"),
            ("vrrp_version 3\nauth_pass x\n", &[2], "no authentication"),
            ("auth_pass 123456789\n", &[1], "1..8 bytes"),
            ("unicast_peer 192.0.2.300\n", &[1], "not an IPv4 address"),
            ("unicast_peer 192.0.2.2 192.0.2.2\n", &[1], "listed twice"),
            ("unicast_src_ip 192.0.2.1\nunicast_peer 192.0.2.1\n", &[2], "own unicast_src_ip"),
            ("vrrp_unicast_bind 192.0.2.1\n", &[1], "the key is `unicast_src_ip`"),
            ("interface averyveryverylongname\n", &[1], "1..15 bytes"),
            ("preempt maybe\n", &[1], "expected yes or no"),
            ("cluster_name a\"b\n", &[1], "unexpected quote"),
            ("cluster_name 'a'b\n", &[1], "expected whitespace"),
            ("cluster_name x\0y\n", &[1], "control character"),
            ("election raft\n", &[1], "expected vrrp or etcd"),
            ("etcd_endpoints ftp://a:1\n", &[1], "expected http://HOST:PORT"),
            ("etcd_endpoints http://a:1/v3\n", &[1], "without a path"),
            ("etcd_endpoints http://a:0\n", &[1], "bad port"),
            ("etcd_endpoints http://a:02379\n", &[1], "bad port"),
            ("etcd_endpoints http://a:99999\n", &[1], "bad port"),
            ("etcd_endpoints http://256.1.1.1\n", &[1], "bad host"),
            ("etcd_endpoints http://a_b:1\n", &[1], "bad host"),
            ("etcd_endpoints http://[::1:1\n", &[1], "bad host"),
            ("etcd_endpoints http://A:1 http://a:1\n", &[1], "listed twice"),
            ("etcd_lease_ttl 1\n", &[1], "out of range"),
            ("etcd_lease_ttl 301\n", &[1], "out of range"),
            ("etcd_prefix /\n", &[1], "2 to 128"),
            ("etcd_prefix rcron/x\n", &[1], "a key prefix like"),
            ("etcd_prefix /a//b\n", &[1], "a key prefix like"),
            ("node_name .\n", &[1], "from a letter or digit"),
            ("node_name -x\n", &[1], "from a letter or digit"),
            ("node_name a:b\n", &[1], "letters, digits"),
            ("virtual_ipaddress dev eth0\n", &[1], "before any address"),
            ("virtual_ipaddress 192.0.2.9 scope global\n", &[1], "`scope` is not supported"),
            ("virtual_ipaddress 192.0.2.9 label\n", &[1], "needs a value"),
            ("interface eth0\nvirtual_ipaddress 192.0.2.9 label eth1:x\n", &[2], "must start with"),
            ("garp_master_repeat 0\n", &[1], "out of range"),
            ("virtual_ipaddress 192.0.2.9\nvirtual_ipaddress dev eth1\n", &[2], "before any"),
            ("virtual_ipaddress 192.0.2.9 label eth0:a label eth0:b\n", &[1], "given twice"),
            ("virtual_ipaddress 127.0.0.5\n", &[1], "loopback"),
            ("virtual_ipaddress 192.0.2.9/0\n", &[1], "prefix length"),
            ("virtual_ipaddress 2001:db8::1/64\n", &[1], "not an IPv4 address"),
            (
                "unicast_src_ip 192.0.2.1\nvirtual_ipaddress 192.0.2.1/24\n",
                &[2],
                "own unicast_src_ip",
            ),
            (
                "unicast_peer 192.0.2.2\nvirtual_ipaddress 192.0.2.2/24\n",
                &[2],
                "unicast_peer's own",
            ),
            (
                "interface eth0\nvirtual_ipaddress 192.0.2.8\n\nvirtual_ipaddress 192.0.2.9 label x:y\n",
                &[4],
                "must start with",
            ),
            // Every error at once, not only the first.
            ("nice_level 99\nok_not 1\n\npriority 300\n", &[1, 2, 4], "out of range"),
        ];
        for (src, lines, needle) in table {
            let e = errs(src);
            let got: Vec<usize> = e.iter().map(|(l, _)| *l).collect();
            assert_eq!(&got, lines, "{src:?}: {e:?}");
            assert!(e[0].1.contains(needle), "{src:?}: {:?} lacks {needle:?}", e[0].1);
        }
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let mut long = b"cluster_name ".to_vec();
        long.resize(1_000_000, b'a');
        let e = parse(&long).unwrap_err();
        assert!(e[0].msg.contains("bytes long"));
        assert!(parse(&[0xff, 0xfe, b'\n', 0x80]).is_err());
        // A pseudo-random byte soup never panics.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let buf: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse(&buf);
        }
    }

    /// The original rcron let the last of two lines win; refusing the file would stop every
    /// job on every node after an upgrade (shared/interface.md, rcron.conf).
    #[test]
    fn a_key_set_twice_is_a_warning_naming_both_lines_and_the_last_wins() {
        let p = parse_with_warnings(b"state_file /a\nstate_file /b\n\nstate_file /c\n").unwrap();
        assert_eq!(p.config.state_file, PathBuf::from("/c"));
        let w: Vec<(usize, &str)> = p.warnings.iter().map(|w| (w.line, w.msg.as_str())).collect();
        assert_eq!(
            w,
            [
                (2, "`state_file` is set again (also on line 1): line 2 wins"),
                (4, "`state_file` is set again (also on line 2): line 4 wins"),
            ]
        );
        // List keys add up, without a warning.
        let p = parse_with_warnings(b"unicast_peer 192.0.2.2\nunicast_peer 192.0.2.3\n").unwrap();
        assert!(p.warnings.is_empty());
        assert_eq!(p.config.unicast_peers.len(), 2);
        // A bad value on the later line is still an error.
        assert_eq!(errs("priority 100\npriority 300\n")[0].0, 2);
    }

    /// The run ledger's keys: defaults, values, and the warning for a port any local user
    /// could bind.
    #[test]
    fn run_ledger_keys() {
        let d = Config::default();
        assert_eq!((d.run_ledger, d.max_clock_offset_s, d.ledger_port), (true, 30, 412));
        let p =
            parse_with_warnings(b"run_ledger no\nmax_clock_offset 0\nledger_port 999\n").unwrap();
        assert_eq!((p.config.run_ledger, p.config.max_clock_offset_s), (false, 0));
        assert_eq!(p.config.ledger_port, 999);
        assert!(p.warnings.is_empty());
        let p = parse_with_warnings(b"ledger_port 4112\n").unwrap();
        assert_eq!(p.config.ledger_port, 4112);
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].msg.contains("not privileged"), "{:?}", p.warnings);
    }

    /// The other election's keys parse (a config may switch back) and each gives a warning on
    /// its line; the loopback interface and an unprivileged ledger port matter to VRRP only.
    #[test]
    fn the_other_elections_keys_are_warned_not_refused() {
        let etcd = "election etcd\netcd_endpoints http://192.0.2.1\n";
        let p = parse_with_warnings(
            format!("interface lo\nvirtual_router_id 5\n{etcd}ledger_port 4112\n").as_bytes(),
        )
        .unwrap();
        let w: Vec<(usize, &str)> = p.warnings.iter().map(|w| (w.line, w.msg.as_str())).collect();
        assert_eq!(
            w,
            [
                (1, "interface has no effect with election = etcd"),
                (2, "virtual_router_id has no effect with election = etcd"),
                (5, "ledger_port has no effect with election = etcd"),
            ]
        );
        let p =
            parse_with_warnings(b"virtual_router_id 5\nnode_name a\netcd_lease_ttl 4\n").unwrap();
        let w: Vec<(usize, &str)> = p.warnings.iter().map(|w| (w.line, w.msg.as_str())).collect();
        assert_eq!(
            w,
            [
                (2, "node_name has no effect with election = vrrp"),
                (3, "etcd_lease_ttl has no effect with election = vrrp"),
            ]
        );
        let e = parse(b"interface lo\nvirtual_router_id 5\n").unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(e[0].msg.contains("not the loopback"), "{e:?}");
    }

    /// A hook or track script written as several words is a command line, as in keepalived:
    /// `notify_active = /etc/rcron/notify active` (the example config's line) works.
    #[test]
    fn command_keys_take_the_rest_of_the_line() {
        let c = ok("notify_active = /etc/rcron/notify active # comment\n");
        assert_eq!(c.notify_active.as_deref(), Some("/etc/rcron/notify active"));
        let c = ok("track_script sh -c 'test -e /x'\n");
        assert_eq!(c.track_script.as_deref(), Some("sh -c 'test -e /x'"));
        let c = ok("notify_fault \"sh -c 'echo hi'\"\n");
        assert_eq!(c.notify_fault.as_deref(), Some("sh -c 'echo hi'"), "one quoted value");
        assert!(errs("cluster_name a b\n")[0].1.contains("takes one value"));
    }

    /// Addresses `n` distinct documentation addresses (198.51.100.0/24, then 203.0.113.0/24).
    fn vips(n: usize) -> String {
        let a: Vec<String> = (0..n)
            .map(|i| format!("{}.{}", ["198.51.100", "203.0.113"][i / 250], i % 250 + 1))
            .collect();
        a.join(" ")
    }

    #[test]
    fn list_limits_are_errors_at_load() {
        let peers: Vec<String> = (1..=65).map(|i| format!("192.0.2.{i}")).collect();
        let e = errs(&format!("unicast_peer {}\n", peers.join(" ")));
        assert!(e[0].1.contains("more than 64 addresses"), "{e:?}");
        // keepalived allows 255 virtual addresses (the 8-bit count field): so does rcron.
        assert_eq!(ok(&format!("virtual_ipaddress {}\n", vips(255))).virtual_ipaddress.len(), 255);
        let e = errs(&format!("virtual_ipaddress {}\n", vips(256)));
        assert!(e[0].1.contains("more than 255 addresses"), "{e:?}");
        let ifs: Vec<String> = (0..33).map(|i| format!("eth{i}")).collect();
        let e = errs(&format!("track_interface {}\n", ifs.join(" ")));
        assert!(e[0].1.contains("more than 32"), "{e:?}");
        let c = ok("control_group 0\n");
        assert_eq!(c.control_group, Some(0));
        assert!(errs("control_group no-such-group-here\n")[0].1.contains("no group"));
        assert_eq!((ok("\n").daemon_nice, ok("daemon_nice 0\n").daemon_nice), (-10, 0));
    }

    /// keepalived's vrrp_complete_instance: (MTU - 14 - 20 - 8 [- 8 for v2]) / 4, at most 255.
    #[test]
    fn virtual_addresses_that_fit_one_advert_follow_keepalived() {
        assert_eq!(max_vips_for_mtu(1500, 2), 255);
        assert_eq!(max_vips_for_mtu(1500, 3), 255);
        assert_eq!(max_vips_for_mtu(576, 2), 131);
        assert_eq!(max_vips_for_mtu(576, 3), 133);
        assert_eq!(max_vips_for_mtu(68, 3), 6);
        assert_eq!(max_vips_for_mtu(0, 2), 0);
    }

    #[test]
    fn centiseconds_parse_and_display() {
        assert_eq!(parse_centis("1", 1, 4095), Ok(100));
        assert_eq!(parse_centis("0.1", 1, 4095), Ok(10));
        assert_eq!(parse_centis("0.01", 1, 4095), Ok(1));
        assert_eq!(parse_centis("40.95", 1, 4095), Ok(4095));
        assert_eq!(parse_centis(".5", 1, 4095), Ok(50));
        assert!(parse_centis("41", 1, 4095).is_err());
        assert!(parse_centis("0", 1, 4095).is_err());
        assert!(parse_centis("1e3", 1, 4095).is_err());
        assert!(parse_centis("99999999999", 1, 4095).is_err());
        assert_eq!(Centis(150).to_string(), "1.5");
        assert_eq!(Centis(5).to_string(), "0.05");
        assert_eq!(Centis(300).to_string(), "3");
    }
}
