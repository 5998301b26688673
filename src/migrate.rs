//! Migration from keepalived: `rcron --from-keepalived FILE [--instance NAME]` reads a
//! keepalived.conf and prints the rcron.conf of one `vrrp_instance`.
//!
//! Owns: reading keepalived's syntax (keepalived's `parser.c`: words split on blanks, `"..."`
//! one word, `#` and `!` start a comment, `{ }` open and close a block, `include GLOB` anywhere)
//! and the mapping of its keywords to rcron's keys. Guarantees: what is printed is checked by
//! rcron's own config parser before it is printed; every keyword that is not mapped is said,
//! as a comment in the output and as a line on stderr, with its file and line.

use crate::config;
use crate::exit::Failure;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `include` inside included files goes at most this deep (keepalived: no limit; a file that
/// includes itself would loop).
const MAX_INCLUDE_DEPTH: usize = 8;
/// A configuration larger than this (all files together, bytes) is refused.
const MAX_INPUT: usize = 4 << 20;

/// One statement: its words, where it was written, and its block when `{` followed.
#[derive(Debug)]
struct Item {
    words: Vec<String>,
    at: String,
    block: Option<Vec<Item>>,
}

/// What [`convert`] made: the rcron.conf text, and the keywords it could not map
/// (`FILE:LINE: text (why)`), already written into the text as comments.
#[derive(Debug)]
pub struct Converted {
    pub text: String,
    pub unmapped: Vec<String>,
}

/// Reads `path` (and its includes) and converts `instance`, or the only `vrrp_instance`.
/// Errors: [`Failure::NoInput`] for a file that cannot be read; [`Failure::Data`] when
/// several instances are there and none was named, or nothing is usable.
pub fn from_file(path: &Path, instance: Option<&str>) -> Result<Converted, Failure> {
    let mut budget = MAX_INPUT;
    let items = read_file(path, 0, &mut budget)?;
    convert(&items, instance, &path.display().to_string())
}

fn read_file(path: &Path, depth: usize, budget: &mut usize) -> Result<Vec<Item>, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure::NoInput(format!("{}: {e}", path.display())))?;
    if bytes.len() > *budget {
        return Err(Failure::Data(format!("{}: over {MAX_INPUT} bytes in all", path.display())));
    }
    *budget -= bytes.len();
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words = split(line);
        if !words.is_empty() {
            lines.push((format!("{}:{}", path.display(), n + 1), words));
        }
    }
    let mut pos = 0;
    nest(&lines, &mut pos, path, depth, budget, None)
}

/// Splits one line as keepalived does: blanks separate, `"..."` is one word, `#` or `!`
/// outside quotes ends the line, `{` and `}` are words of their own.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    let flush = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '"' => {
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    cur.push(q);
                }
                words.push(std::mem::take(&mut cur));
            }
            '{' | '}' => {
                flush(&mut cur, &mut words);
                words.push(c.to_string());
            }
            c if c.is_whitespace() => flush(&mut cur, &mut words),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut words);
    words
}

/// Builds the items of one block from `lines[*pos..]` up to its closing `}` (`opened`: where
/// the block began; `None`: the file's top level, which ends at the end of the file);
/// `include` statements are replaced by the items of the files they name.
fn nest(
    lines: &[(String, Vec<String>)],
    pos: &mut usize,
    file: &Path,
    depth: usize,
    budget: &mut usize,
    opened: Option<&str>,
) -> Result<Vec<Item>, Failure> {
    let mut items: Vec<Item> = Vec::new();
    while *pos < lines.len() {
        let (at, words) = &lines[*pos];
        *pos += 1;
        let mut words = words.as_slice();
        while !words.is_empty() {
            if words[0] == "}" {
                if opened.is_none() {
                    return Err(Failure::Data(format!("{at}: `}}` closes no block")));
                }
                if words.len() > 1 {
                    // `} more`: rare; what follows the brace starts a statement of the outer block.
                    return Err(Failure::Data(format!("{at}: text after `}}` is not supported")));
                }
                return Ok(items);
            }
            let open = words.iter().position(|w| w == "{");
            let (head, rest) = match open {
                Some(i) => (&words[..i], &words[i + 1..]),
                None => (words, &[][..]),
            };
            if head.first().map(String::as_str) == Some("include") && open.is_none() {
                for p in head.iter().skip(1) {
                    for f in glob(file, p) {
                        if depth >= MAX_INCLUDE_DEPTH {
                            return Err(Failure::Data(format!("{at}: includes nest too deep")));
                        }
                        let included = read_file(&f, depth + 1, budget).map_err(|e| match e {
                            Failure::NoInput(m) => Failure::NoInput(format!("{at}: include: {m}")),
                            other => other,
                        })?;
                        items.extend(included);
                    }
                }
                break;
            }
            let mut item = Item { words: head.to_vec(), at: at.clone(), block: None };
            if open.is_some() {
                if rest.iter().any(|w| w == "}") {
                    // A one-line block: `authentication { auth_type PASS }` is not keepalived
                    // style, but `unicast_peer { 10.0.0.2 }` appears in guides.
                    let close = rest.iter().position(|w| w == "}").unwrap_or(rest.len());
                    let inner = &rest[..close];
                    let block = if inner.is_empty() {
                        Vec::new()
                    } else {
                        vec![Item { words: inner.to_vec(), at: at.clone(), block: None }]
                    };
                    item.block = Some(block);
                    items.push(item);
                    words = &rest[(close + 1).min(rest.len())..];
                    continue;
                }
                if !rest.is_empty() {
                    return Err(Failure::Data(format!("{at}: text after `{{` is not supported")));
                }
                item.block = Some(nest(lines, pos, file, depth, budget, Some(at))?);
            }
            items.push(item);
            break;
        }
    }
    match opened {
        Some(at) => Err(Failure::Data(format!("{at}: the block opened here is not closed"))),
        None => Ok(items),
    }
}

/// The files `pattern` names, relative to the directory of `file` when not absolute;
/// `*` and `?` are understood in the last component (keepalived uses glob(3)).
fn glob(file: &Path, pattern: &str) -> Vec<PathBuf> {
    let base = file.parent().unwrap_or(Path::new("."));
    let full =
        if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
    let name = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![full];
    }
    let dir = full.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Shell-style match of `*` and `?`; a leading `.` is matched only by a `.` (glob(3)).
fn wildcard(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The output being written: rcron lines, and comments for what is not mapped.
struct Out {
    text: String,
    unmapped: Vec<String>,
    /// A key rcron cannot do without, missing: nothing usable.
    missing: Option<String>,
}

impl Out {
    fn key(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.text, "{key} {value}");
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.text, "# {text}");
    }

    fn unmapped(&mut self, it: &Item, why: &str) {
        let said = format!("{}: {} ({why})", it.at, it.words.join(" "));
        let _ = writeln!(self.text, "# not mapped: {} ({why})", it.words.join(" "));
        self.unmapped.push(said);
    }
}

/// A `notify_*` command that only writes rcron's state file (the classic recipe:
/// `/bin/echo active > /var/run/rcron/state`): rcron keeps that file itself.
/// Also as keepalived 2.x scripts write it, through a shell (`/bin/sh -c 'echo active >
/// FILE'`), and for every state word the recipes use.
fn writes_state_file(cmd: &str) -> bool {
    let mut w: Vec<&str> = cmd.split_whitespace().collect();
    let shell = matches!(w.first().copied(), Some("sh" | "/bin/sh" | "/usr/bin/sh" | "bash"));
    let inner;
    if shell && w.get(1) == Some(&"-c") {
        inner = w[2..].join(" ");
        w = inner.trim_matches(['"', '\'']).split_whitespace().collect();
    }
    let echo = matches!(w.first().copied(), Some("echo" | "/bin/echo" | "/usr/bin/echo"));
    let word = w.get(1).map(|s| s.trim_matches(['"', '\'']));
    let state = matches!(word, Some("active" | "passive" | "master" | "backup" | "fault"));
    echo && state && w.len() == 4 && matches!(w[2], ">" | ">>")
}

/// keepalived's gratuitous-ARP keys, which rcron has under the same names.
const GARP_KEYS: [&str; 3] = ["garp_master_delay", "garp_master_repeat", "garp_master_refresh"];

/// `k` as rcron's key, when it is one of [`GARP_KEYS`].
fn garp_key(k: &str) -> Option<&'static str> {
    GARP_KEYS.into_iter().find(|g| *g == k)
}

/// The rcron key of a `global_defs` keyword that sets a default rcron has as a key:
/// `vrrp_garp_*` (an instance's own `garp_*` wins) and `vrrp_priority`, the VRRP process's
/// niceness (only when given: keepalived's default 0 is not rcron's `daemon_nice` -10).
fn global_key(k: &str) -> Option<&'static str> {
    match k {
        "vrrp_priority" => Some("daemon_nice"),
        _ => k.strip_prefix("vrrp_").and_then(garp_key),
    }
}

/// A value as rcron's parser reads it back: quoted when it holds blanks.
fn value(v: &str) -> String {
    if v.contains(char::is_whitespace) { format!("\"{v}\"") } else { v.to_string() }
}

/// Converts the chosen `vrrp_instance` of `items` (see [`from_file`]); `source` names the
/// file in the header.
fn convert(items: &[Item], instance: Option<&str>, source: &str) -> Result<Converted, Failure> {
    let named = |it: &&Item| it.words.first().map(String::as_str) == Some("vrrp_instance");
    let instances: Vec<&Item> = items.iter().filter(named).collect();
    let name_of = |it: &Item| it.words.get(1).cloned().unwrap_or_default();
    let names: Vec<String> = instances.iter().map(|i| name_of(i)).collect();
    let chosen = match (instance, instances.len()) {
        (_, 0) => return Err(Failure::Data(format!("{source}: no vrrp_instance block"))),
        (None, 1) => instances[0],
        (None, _) => {
            return Err(Failure::Data(format!(
                "{source}: {} vrrp_instance blocks ({}); name one with --instance",
                names.len(),
                names.join(", ")
            )));
        }
        (Some(n), _) => match instances.iter().find(|i| name_of(i) == n) {
            Some(i) => i,
            None => {
                return Err(Failure::Data(format!(
                    "{source}: no vrrp_instance {n} (there are: {})",
                    names.join(", ")
                )));
            }
        },
    };
    let mut out = Out { text: String::new(), unmapped: Vec::new(), missing: None };
    out.note(&format!(
        "rcron.conf from {source}, vrrp_instance {} (rcron --from-keepalived)",
        name_of(chosen)
    ));
    // Top level: global_defs' vrrp_version, vrrp_garp_* and vrrp_priority; the chosen
    // instance's vrrp_scripts; the rest said.
    let mut version = None;
    let mut globals: Vec<(&'static str, String)> = Vec::new();
    let scripts: Vec<&Item> = items
        .iter()
        .filter(|i| i.words.first().map(String::as_str) == Some("vrrp_script"))
        .collect();
    for it in items {
        match it.words.first().map(String::as_str) {
            Some("global_defs") => {
                for g in it.block.iter().flatten() {
                    let kw = g.words.first().map(String::as_str);
                    match (kw, kw.and_then(global_key)) {
                        (Some("vrrp_version"), _) => version = g.words.get(1).cloned(),
                        (_, Some(key)) => {
                            globals.push((key, g.words.get(1).cloned().unwrap_or_default()))
                        }
                        _ => out.unmapped(g, "a global setting rcron does not have"),
                    }
                }
            }
            Some("vrrp_instance") if std::ptr::eq(it, chosen) => {}
            Some("vrrp_instance") => out.note(&format!("another instance: {}", name_of(it))),
            Some("vrrp_script") => {}
            Some("virtual_server" | "virtual_server_group") => out.unmapped(it, "LVS"),
            _ => out.unmapped(it, "not an election setting"),
        }
    }
    instance_body(chosen, &scripts, version, &globals, &mut out);
    if let Some(m) = out.missing {
        return Err(Failure::Data(m));
    }
    // What was written must be a config rcron takes: checked by rcron's own parser.
    if let Err(errs) = config::parse(out.text.as_bytes()) {
        let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(Failure::Data(format!(
            "the converted config is not valid for rcron:\n{}\n{}",
            list.join("\n"),
            out.text
        )));
    }
    Ok(Converted { text: out.text, unmapped: out.unmapped })
}

/// The keywords of one `vrrp_instance` block.
fn instance_body(
    inst: &Item,
    scripts: &[&Item],
    mut version: Option<String>,
    globals: &[(&'static str, String)],
    out: &mut Out,
) {
    let body = inst.block.as_deref().unwrap_or(&[]);
    let first = |it: &Item| it.words.get(1).cloned().unwrap_or_default();
    // A keyword that takes one value: what follows it is said, not dropped.
    let one = |it: &Item, out: &mut Out| {
        if it.words.len() > 2 {
            out.unmapped(it, "one value taken; the words after it are not");
        }
        first(it)
    };
    let mut lines: Vec<(&'static str, String)> = Vec::new();
    let mut auth: Option<(String, &Item)> = None;
    let mut peers = Vec::new();
    let mut vips = Vec::new();
    let mut old_unicast = false;
    let mut state_file_hooks = false;
    for it in body {
        let kw = it.words.first().map(String::as_str).unwrap_or("");
        let block = it.block.as_deref().unwrap_or(&[]);
        match kw {
            "interface" => lines.push(("interface", one(it, out))),
            "virtual_router_id" => lines.push(("virtual_router_id", one(it, out))),
            "priority" => lines.push(("priority", one(it, out))),
            "advert_int" => lines.push(("advert_int", one(it, out))),
            "version" => version = Some(one(it, out)),
            "unicast_src_ip" => lines.push(("unicast_src_ip", one(it, out))),
            "vrrp_unicast_bind" => {
                old_unicast = true;
                lines.push(("unicast_src_ip", one(it, out)));
            }
            "vrrp_unicast_peer" => {
                old_unicast = true;
                peers.extend(it.words.iter().skip(1).cloned());
            }
            "unicast_peer" => {
                for p in block {
                    // One per line, or several on one line (`unicast_peer { a b }`); a peer's
                    // options (`min_ttl`, `max_ttl`) are keepalived's own.
                    let ips =
                        p.words.iter().take_while(|w| w.parse::<std::net::Ipv4Addr>().is_ok());
                    let n = ips.clone().count().max(1);
                    peers.extend(p.words.iter().take(n).cloned());
                    if p.words.len() > n {
                        out.unmapped(p, "peer options are keepalived's own");
                    }
                }
            }
            "authentication" => {
                let get =
                    |k: &str| block.iter().find(|a| a.words.first().map(String::as_str) == Some(k));
                let kind = get("auth_type").map(first).unwrap_or_default();
                match (kind.as_str(), get("auth_pass")) {
                    ("PASS", Some(p)) => auth = Some((first(p), p)),
                    _ => out.unmapped(it, "only auth_type PASS is supported (AH is not)"),
                }
            }
            "virtual_ipaddress" => {
                for v in block {
                    let addr = v.words.first().cloned().unwrap_or_default();
                    if addr.contains(':') {
                        out.unmapped(v, "rcron carries IPv4 addresses only");
                        continue;
                    }
                    // dev and label are rcron's too; keepalived's other options are not.
                    let mut entry = addr;
                    let mut rest = v.words[1..].iter();
                    let mut other = false;
                    while let Some(w) = rest.next() {
                        match (w.as_str(), rest.clone().next()) {
                            ("dev" | "label", Some(arg)) => {
                                entry = format!("{entry} {w} {arg}");
                                rest.next();
                            }
                            _ => other = true,
                        }
                    }
                    vips.push(entry);
                    if other {
                        out.unmapped(v, "the address is kept with its dev and label, not the rest");
                    }
                }
            }
            _ if garp_key(kw).is_some() => {
                lines.push((garp_key(kw).unwrap_or_default(), one(it, out)))
            }
            "nopreempt" => lines.push(("preempt", "no".into())),
            "preempt_delay" => lines.push(("preempt_delay", one(it, out))),
            "track_interface" => {
                for t in block {
                    lines.push(("track_interface", t.words.first().cloned().unwrap_or_default()));
                    if t.words.len() > 1 {
                        out.unmapped(t, "a weight: in rcron any tracked interface down is a fault");
                    }
                }
            }
            "track_script" => {
                for (i, t) in block.iter().enumerate() {
                    let name = t.words.first().cloned().unwrap_or_default();
                    let def = scripts.iter().find(|s| s.words.get(1) == Some(&name));
                    match def {
                        Some(s) if i == 0 => script(s, t, &mut lines, out),
                        Some(_) => out.unmapped(t, "rcron tracks one script; combine them"),
                        None => out.unmapped(t, "no vrrp_script of that name"),
                    }
                }
            }
            "notify_master" | "notify_backup" | "notify_fault" => {
                let cmd = it.words[1..].join(" ");
                if writes_state_file(&cmd) {
                    state_file_hooks = true;
                    continue;
                }
                let key = match kw {
                    "notify_master" => "notify_active",
                    "notify_backup" => "notify_passive",
                    _ => "notify_fault",
                };
                lines.push((key, cmd));
            }
            "notify" => out.unmapped(it, "rcron's hooks get RCRON_* variables, not arguments"),
            "notify_stop" => out.unmapped(it, "rcron has no hook for its own stop"),
            "state" => out.note(&format!(
                "state {}: rcron elects by priority alone (keepalived's initial state)",
                first(it)
            )),
            "lvs_sync_daemon_interface" | "lvs_sync_daemon_inteface" => out.unmapped(it, "LVS"),
            _ => out.unmapped(it, "no rcron equivalent"),
        }
    }
    if !lines.iter().any(|(k, _)| *k == "virtual_router_id") {
        // keepalived refuses such an instance too; without it rcron would elect nothing.
        out.missing = Some(format!("{}: no virtual_router_id in this vrrp_instance", inst.at));
    }
    let v3 = version.as_deref() == Some("3");
    if let Some((pass, at)) = auth {
        if v3 {
            out.unmapped(at, "VRRPv3 has no authentication; keepalived ignores it too");
        } else if pass.len() > 8 {
            // keepalived uses the first 8 bytes (the v2 field's size).
            out.unmapped(at, "keepalived uses its first 8 characters; so does this file");
            let cut = (0..=8).rev().find(|&i| pass.is_char_boundary(i)).unwrap_or(0);
            lines.push(("auth_pass", value(&pass[..cut])));
        } else {
            lines.push(("auth_pass", value(&pass)));
        }
    }
    if !v3 && let Some(i) = lines.iter().position(|(k, _)| *k == "advert_int") {
        // VRRPv2 counts whole seconds; keepalived rounds a fraction.
        if let Ok(x) = lines[i].1.parse::<f64>()
            && x.fract() != 0.0
        {
            let whole = (x.round() as u64).max(1);
            out.note(&format!("advert_int {}: VRRPv2 counts whole seconds: {whole}", lines[i].1));
            lines[i].1 = whole.to_string();
        }
    }
    for (key, v) in globals {
        if !lines.iter().any(|(l, _)| l == key) {
            lines.push((key, v.clone()));
        }
    }
    if let Some(v) = version {
        lines.push(("vrrp_version", v));
    }
    if !peers.is_empty() {
        lines.push(("unicast_peer", peers.join(" ")));
    }
    if !vips.is_empty() {
        // One line per address with options, the plain ones together.
        let (plain, with): (Vec<String>, Vec<String>) =
            vips.into_iter().partition(|v| !v.contains(' '));
        if !plain.is_empty() {
            lines.push(("virtual_ipaddress", plain.join(" ")));
        }
        lines.extend(with.into_iter().map(|v| ("virtual_ipaddress", v)));
    }
    if old_unicast {
        out.note(
            "vrrp_unicast_bind / vrrp_unicast_peer (an old unicast patch) mapped to unicast: \
             keepalived 2.x does not know them and silently uses multicast; a keepalived peer \
             needs them renamed unicast_src_ip / unicast_peer { ... }",
        );
    }
    if state_file_hooks {
        out.note("notify lines that only wrote the state file dropped: rcron keeps it itself");
    }
    for (k, v) in lines {
        out.key(k, &v);
    }
}

/// A `vrrp_script` block as rcron's track_script keys.
fn script(def: &Item, used: &Item, lines: &mut Vec<(&'static str, String)>, out: &mut Out) {
    for s in def.block.as_deref().unwrap_or(&[]) {
        let v = s.words.get(1).cloned().unwrap_or_default();
        match s.words.first().map(String::as_str) {
            Some("script") => lines.push(("track_script", s.words[1..].join(" "))),
            Some("interval") => lines.push(("track_interval", v)),
            Some("fall") => lines.push(("track_fall", v)),
            Some("rise") => lines.push(("track_rise", v)),
            Some("weight") => out.unmapped(s, "a weight: in rcron a failing script is a fault"),
            _ => out.unmapped(s, "no rcron equivalent"),
        }
    }
    if used.words.len() > 1 {
        out.unmapped(used, "a weight: in rcron a failing script is a fault");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str, instance: Option<&str>) -> Result<Converted, Failure> {
        let lines: Vec<(String, Vec<String>)> = text
            .lines()
            .enumerate()
            .map(|(n, l)| (format!("k.conf:{}", n + 1), split(l)))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        let mut pos = 0;
        let mut budget = MAX_INPUT;
        let items = nest(&lines, &mut pos, Path::new("k.conf"), 0, &mut budget, None)?;
        convert(&items, instance, "k.conf")
    }

    /// The rcron lines of the output (comments left out).
    fn keys(c: &Converted) -> Vec<&str> {
        c.text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn words_split_as_keepalived_splits_them() {
        assert_eq!(split("  a \"b c\" d # e"), ["a", "b c", "d"]);
        assert_eq!(split("x{ y }z ! c"), ["x", "{", "y", "}", "z"]);
        assert!(split("# only").is_empty());
        assert!(wildcard("*.conf", "a.conf") && !wildcard("*.conf", ".a.conf"));
        assert!(wildcard("v?.c*", "v1.conf") && !wildcard("v?.c", "v12.c"));
    }

    /// keepalived snippets and the rcron lines they give; `None`: refused (exit 65).
    #[test]
    fn snippets_map_to_rcron_keys_or_are_said() {
        // (keepalived.conf, the rcron lines or None when refused, what is said as not mapped)
        type Case<'a> = (&'a str, Option<&'a [&'a str]>, &'a [&'a str]);
        let table: &[Case] = &[
            (
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n priority 150\n \
                 advert_int 0.5\n version 3\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "priority 150",
                    "advert_int 0.5",
                    "vrrp_version 3",
                ]),
                &[],
            ),
            (
                "global_defs {\n router_id x\n vrrp_version 3\n}\nvrrp_instance A {\n \
                 interface eth0\n virtual_router_id 7\n}",
                Some(&["interface eth0", "virtual_router_id 7", "vrrp_version 3"]),
                &["router_id x"],
            ),
            (
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n unicast_src_ip \
                 10.0.0.1\n unicast_peer {\n  10.0.0.2\n  10.0.0.3\n }\n nopreempt\n \
                 preempt_delay 5\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "unicast_src_ip 10.0.0.1",
                    "preempt no",
                    "preempt_delay 5",
                    "unicast_peer 10.0.0.2 10.0.0.3",
                ]),
                &[],
            ),
            (
                "vrrp_script chk {\n script \"/usr/bin/pgrep haproxy\"\n interval 2\n fall 3\n \
                 rise 2\n weight -20\n}\nvrrp_instance A {\n interface eth0\n \
                 virtual_router_id 7\n track_script {\n  chk\n }\n track_interface {\n  eth1\n \
                 }\n virtual_ipaddress {\n  10.0.0.100/24 dev eth0 label eth0:1\n }\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "track_script /usr/bin/pgrep haproxy",
                    "track_interval 2",
                    "track_fall 3",
                    "track_rise 2",
                    "track_interface eth1",
                    "virtual_ipaddress 10.0.0.100/24 dev eth0 label eth0:1",
                ]),
                &["weight -20"],
            ),
            (
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n notify_master \
                 \"/etc/ha/up.sh x\"\n notify_backup \"/bin/echo passive > /run/s\"\n \
                 notify /etc/ha/any.sh\n smtp_alert\n}\nvirtual_server 10.0.0.1 80 {\n \
                 lb_algo rr\n}",
                Some(&["interface eth0", "virtual_router_id 7", "notify_active /etc/ha/up.sh x"]),
                &["notify /etc/ha/any.sh", "smtp_alert", "virtual_server 10.0.0.1 80"],
            ),
            (
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n authentication {\n  \
                 auth_type AH\n  auth_pass x\n }\n}",
                Some(&["interface eth0", "virtual_router_id 7"]),
                &["authentication"],
            ),
            (
                // What keepalived takes and rcron words differently: an 8-byte cut of a long
                // password, a fractional v2 interval rounded, peers on one line, a peer's
                // options, an IPv6 address, extra words on a one-value line.
                "vrrp_instance A {\n interface eth0 extra\n virtual_router_id 7\n advert_int 0.5\n \
                 authentication {\n  auth_type PASS\n  auth_pass 1234567890\n }\n unicast_peer \
                 { 10.0.0.2 10.0.0.3 }\n unicast_peer {\n  10.0.0.4 min_ttl 1\n }\n \
                 virtual_ipaddress {\n  fe80::1/64\n }\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "advert_int 1",
                    "auth_pass 12345678",
                    "unicast_peer 10.0.0.2 10.0.0.3 10.0.0.4",
                ]),
                &["interface eth0 extra", "auth_pass 1234567890", "10.0.0.4 min_ttl", "fe80::1/64"],
            ),
            (
                "global_defs {\n vrrp_garp_master_repeat 3\n vrrp_garp_master_delay 2\n \
                 vrrp_priority -5\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 7\n \
                 garp_master_delay 10\n garp_master_refresh 60\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "garp_master_delay 10",
                    "garp_master_refresh 60",
                    "garp_master_repeat 3",
                    "daemon_nice -5",
                ]),
                &[],
            ),
            (
                // A password with a blank stays one value; v3 drops authentication as
                // keepalived does; a state-file hook through a shell is dropped.
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n authentication {\n  \
                 auth_type PASS\n  auth_pass \"se cret\"\n }\n notify_master \"/bin/sh -c 'echo \
                 master > /var/run/rcron/state'\"\n notify_backup \"/etc/ha/down.sh now\"\n}",
                Some(&[
                    "interface eth0",
                    "virtual_router_id 7",
                    "notify_passive /etc/ha/down.sh now",
                    "auth_pass \"se cret\"",
                ]),
                &[],
            ),
            (
                "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n version 3\n \
                 authentication {\n  auth_type PASS\n  auth_pass x\n }\n}",
                Some(&["interface eth0", "virtual_router_id 7", "vrrp_version 3"]),
                &["auth_pass x"],
            ),
            // Refused: nothing to convert, a value rcron does not take, braces that do not pair,
            // an instance without virtual_router_id (keepalived refuses it too).
            ("global_defs {\n router_id x\n}", None, &[]),
            ("vrrp_instance A {\n interface eth0\n", None, &[]),
            ("vrrp_instance A {\n interface eth0\n}\n}", None, &[]),
            ("vrrp_instance A {\n interface eth0\n virtual_router_id 300\n}", None, &[]),
            ("vrrp_instance A {\n interface eth0\n advert_int 0.5\n}", None, &[]),
            ("vrrp_instance A {\n interface eth0 virtual_router_id 3\n}", None, &[]),
        ];
        for (snippet, want, said) in table {
            match (conv(snippet, None), want) {
                (Ok(c), Some(w)) => {
                    assert_eq!(keys(&c), *w, "{snippet}\n{}", c.text);
                    for s in *said {
                        assert!(c.unmapped.iter().any(|u| u.contains(s)), "{s}: {:?}", c.unmapped);
                        assert!(c.text.contains(&format!("# not mapped: {s}")), "{}", c.text);
                    }
                    assert_eq!(c.unmapped.len(), said.len(), "{:?}", c.unmapped);
                }
                (Err(Failure::Data(_)), None) => {}
                (got, _) => panic!("{snippet}: {got:?}"),
            }
        }
    }

    #[test]
    fn several_instances_need_a_name() {
        let two = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\n\
                   vrrp_instance B {\n interface eth1\n virtual_router_id 2\n}\n";
        let e = conv(two, None).unwrap_err();
        assert!(e.to_string().contains("A, B"), "{e}");
        let b = conv(two, Some("B")).unwrap();
        assert_eq!(keys(&b), ["interface eth1", "virtual_router_id 2"]);
        assert!(b.text.contains("# another instance: A"));
        assert!(conv(two, Some("C")).unwrap_err().to_string().contains("no vrrp_instance C"));
    }
}
