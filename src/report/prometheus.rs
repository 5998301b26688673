//! `--status --prometheus`: the status fields as Prometheus text exposition format 0.0.4,
//! the format node_exporter's textfile collector reads (`*.prom` files).
//!
//! Owns: the metric names (`rcron_*`, stable: dashboards use them), their types and help.
//! Guarantees: every sample has a `cluster` label; times in seconds (Prometheus' base unit,
//! the `_ms` fields divided by 1000); a field with no value now (empty) gives no sample;
//! text fields that are not listed here give none either. Label values are escaped as the
//! format says (`\\`, `\"`, `\n`).

use super::Value;
use std::fmt::Write as _;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// A numeric field, its metric name (after `rcron_`), type, help, and whether it is in ms.
struct Metric {
    field: &'static str,
    name: &'static str,
    kind: Kind,
    help: &'static str,
    ms: bool,
}

const fn m(field: &'static str, name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { field, name, kind, help, ms: false }
}

/// [`m`] for a field in milliseconds, exposed in seconds.
const fn ms(field: &'static str, name: &'static str, help: &'static str) -> Metric {
    Metric { field, name, kind: Kind::Gauge, help, ms: true }
}

use Kind::{Counter, Gauge};

const METRICS: &[Metric] = &[
    m("priority", "priority", Gauge, "This node's priority (1..255)."),
    m("master_priority", "master_priority", Gauge, "Priority in the master's last advert."),
    m("transitions", "transitions_total", Counter, "Role changes since the worker started."),
    m("since", "last_transition_timestamp_seconds", Gauge, "Unix time of the last role change."),
    m("rx_adverts", "adverts_received_total", Counter, "VRRP adverts received and accepted."),
    m(
        "rx_deferred",
        "adverts_deferred_total",
        Counter,
        "Of those, the master's repeats a backup read at a later wake-up, at their arrival times.",
    ),
    m("tx_adverts", "adverts_sent_total", Counter, "VRRP adverts sent."),
    m("tx_errors", "advert_send_errors_total", Counter, "VRRP adverts the kernel refused."),
    m(
        "rx_addr_mismatch",
        "adverts_address_mismatch_total",
        Counter,
        "Accepted adverts whose virtual address list differs from this node's.",
    ),
    ms("last_advert_age_ms", "last_advert_age_seconds", "Time since the master's last advert."),
    ms("advert_int_ms", "advert_interval_seconds", "This node's advert interval."),
    ms("master_adver_int_ms", "master_advert_interval_seconds", "The master's advert interval."),
    ms("master_down_ms", "master_down_interval_seconds", "RFC 5798 Master_Down_Interval."),
    m("handoff_waiting", "handoff_waiting", Gauge, "Wrappers waiting for a run/skip decision."),
    m("control_bad_requests", "control_bad_requests_total", Counter, "Malformed control requests."),
    m(
        "control_clients_dropped",
        "control_clients_dropped_total",
        Counter,
        "Control clients dropped before they sent a request.",
    ),
    m("garp_sent", "garp_sent_total", Counter, "Gratuitous ARPs sent for virtual addresses."),
    m(
        "vip_errors",
        "vip_errors_total",
        Counter,
        "Virtual address adds, removes, ARPs that failed.",
    ),
    m("ledger_records", "ledger_records", Gauge, "Slot records the run ledger holds."),
    m("ledger_retention_s", "ledger_retention_seconds", Gauge, "How long a record is kept."),
    m("ledger_claims", "ledger_claims_total", Counter, "Slots this node claimed."),
    m("ledger_claims_lost", "ledger_claims_lost_total", Counter, "Claims another node won."),
    m(
        "ledger_peers_timed_out",
        "ledger_peers_timed_out_total",
        Counter,
        "Peers taken as down after three unanswered tries.",
    ),
    m(
        "ledger_evicted_early",
        "ledger_evicted_early_total",
        Counter,
        "Records dropped inside retention because the table was full.",
    ),
    m("ledger_rx", "ledger_datagrams_received_total", Counter, "Ledger datagrams received."),
    m("ledger_rx_dropped", "ledger_datagrams_dropped_total", Counter, "Ledger datagrams dropped."),
    m("ledger_tx_errors", "ledger_send_errors_total", Counter, "Ledger datagrams not sent."),
    ms("etcd_lease_ttl_ms", "etcd_lease_ttl_seconds", "The lease TTL etcd granted."),
    ms("etcd_lease_left_ms", "etcd_lease_left_seconds", "This node's estimate of its lease left."),
    ms("etcd_renewal_age_ms", "etcd_renewal_age_seconds", "Time since the last answered renewal."),
    ms("etcd_active_left_ms", "etcd_active_left_seconds", "Time the leader may still act."),
    m("fencing_token", "fencing_token", Gauge, "The leader key's create revision."),
    m("etcd_watch_restarts", "etcd_watch_restarts_total", Counter, "Watch streams lost."),
    m("etcd_requests", "etcd_requests_total", Counter, "Requests sent to etcd."),
    m("etcd_failures", "etcd_failures_total", Counter, "Requests to etcd that failed."),
    ms("etcd_last_error_age_ms", "etcd_last_error_age_seconds", "Time since the last failure."),
    m(
        "etcd_foreign_keys",
        "etcd_foreign_keys",
        Gauge,
        "Keys under the prefix that are not rcron's.",
    ),
];

/// Text fields with a fixed set of values: one sample per value, 1 for the current one.
const ENUMS: &[(&str, &str, &str, &[&str], &str)] = &[
    ("role", "role", "role", &["master", "backup", "fault"], "The daemon's role."),
    ("ledger", "ledger", "mode", &["on", "fallback", "off", "etcd"], "How slots are recorded."),
    ("etcd_watch", "etcd_watch", "state", &["on", "unconfirmed", "off"], "The etcd watch."),
];

/// `yes`/`no` text fields, as 1/0.
const FLAGS: &[(&str, &str, &str)] = &[
    ("fault", "fault", "The node is in fault (a link down, a failing check)."),
    ("ledger_synced", "ledger_synced", "The run ledger has synced its records with a peer."),
    ("vips_held", "vips_held", "This node holds its virtual addresses."),
];

/// Peers' run-ledger states (`peer_IP_ledger`), one sample per state, 1 for the current one.
const PEER_LEDGER_STATES: [&str; 4] = ["up", "down", "unknown", "silent"];

/// Dynamic fields `PREFIX<label>SUFFIX`: (prefix, suffix, metric, label, kind, help, ms).
type Family = (&'static str, &'static str, &'static str, &'static str, Kind, &'static str, bool);
const FAMILIES: &[Family] = &[
    ("drop_", "", "drops_total", "reason", Counter, "Adverts dropped, by reason.", false),
    ("decisions_", "", "decisions_total", "decision", Counter, "Answers to wrappers.", false),
    ("jobs_", "", "jobs_total", "outcome", Counter, "Jobs ended, by outcome.", false),
    (
        "peer_",
        "_clock_offset_ms",
        "peer_clock_offset_seconds",
        "peer",
        Gauge,
        "A peer's wall clock minus this node's.",
        true,
    ),
];

/// One metric's lines: `# HELP`, `# TYPE` and its samples.
struct Out {
    text: String,
    /// The names already given a header.
    named: Vec<&'static str>,
    cluster: String,
}

impl Out {
    fn sample(&mut self, name: &'static str, kind: Kind, help: &str, labels: &str, value: &str) {
        // Samples of one metric stay together: each family is written in one go below.
        if !self.named.contains(&name) {
            self.named.push(name);
            let t = if kind == Kind::Counter { "counter" } else { "gauge" };
            let _ = writeln!(self.text, "# HELP rcron_{name} {help}\n# TYPE rcron_{name} {t}");
        }
        let cluster = escape(&self.cluster);
        let _ = writeln!(self.text, "rcron_{name}{{cluster=\"{cluster}\"{labels}}} {value}");
    }
}

/// A label value as the format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// An integer field as a sample value; `ms`: milliseconds shown as seconds.
fn number(n: i128, ms: bool) -> String {
    if !ms {
        return n.to_string();
    }
    let sign = if n < 0 { "-" } else { "" };
    let a = n.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// The fields as Prometheus text.
pub fn render(fields: &[(String, Value)]) -> String {
    let text_of = |key: &str| {
        fields.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
            Value::Text(t) => Some(t.as_str()),
            Value::Int(_) => None,
        })
    };
    let cluster = text_of("cluster").unwrap_or("").to_string();
    let mut out = Out { text: String::new(), named: Vec::new(), cluster };
    // With an election the daemon answers: up 1 unless the client said why it could not.
    if text_of("role").is_some() || text_of("daemon").is_some() {
        let up = if text_of("daemon").is_some() { "0" } else { "1" };
        out.sample("up", Gauge, "The daemon answered.", "", up);
    }
    let active = if text_of("state") == Some("active") { "1" } else { "0" };
    out.sample("active", Gauge, "This node runs the jobs (1) or not (0).", "", active);
    for &(field, name, help) in FLAGS {
        if let Some(f) = text_of(field) {
            out.sample(name, Gauge, help, "", if f == "yes" { "1" } else { "0" });
        }
    }
    for &(field, name, label, values, help) in ENUMS {
        if let Some(now) = text_of(field) {
            for v in values {
                let one = if *v == now { "1" } else { "0" };
                out.sample(name, Gauge, help, &format!(",{label}=\"{v}\""), one);
            }
        }
    }
    for m in METRICS {
        if let Some((_, Value::Int(n))) = fields.iter().find(|(k, _)| k == m.field) {
            out.sample(m.name, m.kind, m.help, "", &number(*n, m.ms));
        }
    }
    for &(prefix, suffix, name, label, kind, help, ms) in FAMILIES {
        for (k, v) in fields {
            let Value::Int(n) = v else { continue };
            let Some(l) = k.strip_prefix(prefix).and_then(|r| r.strip_suffix(suffix)) else {
                continue;
            };
            if l.is_empty() {
                continue;
            }
            out.sample(name, kind, help, &format!(",{label}=\"{}\"", escape(l)), &number(*n, ms));
        }
    }
    for (k, v) in fields {
        let Value::Text(now) = v else { continue };
        let Some(peer) = k.strip_prefix("peer_").and_then(|r| r.strip_suffix("_ledger")) else {
            continue;
        };
        for state in PEER_LEDGER_STATES {
            let labels = format!(",peer=\"{}\",state=\"{state}\"", escape(peer));
            let one = if state == now { "1" } else { "0" };
            out.sample("peer_ledger", Gauge, "A peer's run ledger, by state.", &labels, one);
        }
    }
    out.text
}

/// Every metric name (after `rcron_`), for the documentation's test.
#[cfg(test)]
fn names() -> Vec<&'static str> {
    let mut n = vec!["up", "active", "peer_ledger"];
    n.extend(FLAGS.iter().map(|f| f.1));
    n.extend(ENUMS.iter().map(|e| e.1));
    n.extend(METRICS.iter().map(|m| m.name));
    n.extend(FAMILIES.iter().map(|f| f.2));
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_in_the_man_page() {
        let man = include_str!("../../man/rcron.8");
        for n in names() {
            assert!(man.contains(&format!("rcron_{n}")), "rcron_{n} missing from man/rcron.8");
        }
    }

    #[test]
    fn samples_are_labelled_and_in_seconds() {
        let f = |k: &str, v: Value| (k.to_string(), v);
        let fields = [
            f("state", Value::Text("active".into())),
            f("cluster", Value::Text("a\"b".into())),
            f("last_advert_age_ms", Value::Int(1234)),
            f("peer_10.0.0.2_clock_offset_ms", Value::Int(-5)),
            f("peer_10.0.0.2_ledger", Value::Text("up".into())),
            f("etcd_lease_left_ms", Value::Text(String::new())),
        ];
        let text = render(&fields);
        let c = "cluster=\"a\\\"b\"";
        for line in [
            format!("rcron_active{{{c}}} 1"),
            format!("rcron_last_advert_age_seconds{{{c}}} 1.234"),
            format!("rcron_peer_clock_offset_seconds{{{c},peer=\"10.0.0.2\"}} -0.005"),
            format!("rcron_peer_ledger{{{c},peer=\"10.0.0.2\",state=\"up\"}} 1"),
            format!("rcron_peer_ledger{{{c},peer=\"10.0.0.2\",state=\"down\"}} 0"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("etcd_lease_left"), "no value, no sample:\n{text}");
    }
}
