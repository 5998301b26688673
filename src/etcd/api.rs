//! etcd's v3 HTTP/JSON gateway: the requests the election needs, blocking, each bounded by a
//! timeout, over the configured endpoints in turn.
//!
//! Source: etcd's API reference (`rpc.proto`, served by grpc-gateway at `/v3/...` on the client
//! port since 3.4; 3.3 used `/v3beta`): keys and values are base64, 64-bit integers are JSON
//! strings, fields with their zero value are left out, a stream (watch, keepalive) is one JSON
//! object per line, an error is `{"error":...,"code":N}` with an HTTP error status.
//!
//! Owns: the HTTP client (ureq, README "Dependencies") and which endpoint is in use.
//! Guarantees: no request takes longer than the timeout given to [`Gateway::new`]; an answer
//! that does not parse is an [`Error::Answer`], never a panic; a transport error moves to
//! the next endpoint, so a dead member costs one timeout at most.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::json;
use std::io::BufRead;
use std::time::{Duration, Instant};

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No endpoint answered within the timeout (connection refused, reset, timed out).
    Unreachable(String),
    /// An endpoint answered with an error or with something that is not etcd's JSON.
    Answer(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(e) => write!(f, "unreachable: {e}"),
            Error::Answer(e) => write!(f, "bad answer: {e}"),
        }
    }
}

/// One key as etcd returns it (`mvccpb.KeyValue`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The revision of the key's creation: the leader key's is the fencing token.
    pub create_revision: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// What a campaign (create the leader key if absent) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Campaign {
    /// The key is ours; its create revision.
    Won { token: i64 },
    /// Another holds it (or an older lease of ours): its value and create revision.
    Held { holder: Vec<u8>, token: i64 },
}

/// What recording a slot found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Written while the leader key was still ours.
    Written,
    /// Someone recorded it before: the recorder's name.
    Held { runner: Vec<u8> },
    /// The leader key is no longer ours (the lease expired, another node leads).
    NotLeader,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Put(KeyValue),
    Delete { key: Vec<u8> },
}

/// One message of a watch stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchBatch {
    /// The store's revision when the message was sent.
    pub revision: i64,
    pub events: Vec<Event>,
    /// The watch ended (canceled, or its start revision was compacted): start anew.
    pub ended: bool,
}

/// An open watch: blocking reads of its stream.
pub struct Watch {
    lines: std::io::BufReader<ureq::BodyReader<'static>>,
}

/// Longest line of a watch stream or body taken (a batch of 512 records is ~100 KiB).
const MAX_BODY: u64 = 4 << 20;

impl Watch {
    /// The next message; an error ends the watch.
    pub fn next(&mut self) -> Result<WatchBatch, Error> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::Read::take(&mut self.lines, MAX_BODY)
                .read_line(&mut line)
                .map_err(|e| Error::Unreachable(e.to_string()))?;
            if n == 0 {
                return Err(Error::Unreachable("watch stream closed".into()));
            }
            if !line.trim().is_empty() {
                return parse_watch(&line);
            }
        }
    }
}

/// The gateway of one etcd cluster.
pub struct Gateway {
    endpoints: Vec<String>,
    current: usize,
    agent: ureq::Agent,
    timeout: Duration,
}

impl Gateway {
    /// A client of `endpoints` (validated URLs, `config::parse_endpoint`) whose requests each
    /// take at most `timeout`. Errors: a TLS file that cannot be read or parsed.
    pub fn new(cfg: &crate::config::Config, timeout: Duration) -> Result<Gateway, String> {
        let builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections_per_host(2)
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout));
        let builder = tls::configure(builder, cfg)?;
        Ok(Gateway {
            endpoints: cfg.etcd_endpoints.clone(),
            current: 0,
            agent: builder.build().into(),
            timeout,
        })
    }

    /// The endpoint requests go to first.
    pub fn endpoint(&self) -> &str {
        self.endpoints.get(self.current).map_or("", String::as_str)
    }

    /// POSTs `body` to `path`, on the endpoint in use, then the others in turn while
    /// `timeout` (the whole exchange, body included) has time left.
    fn post(&mut self, path: &str, body: &serde_json::Value, timeout: Duration) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let start = Instant::now();
        let text = body.to_string();
        let mut last = Error::Unreachable("no endpoint".into());
        for _ in 0..self.endpoints.len() {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            let url = format!("{}{path}", self.endpoints[self.current]);
            let req = self.agent.post(&url).config().timeout_global(Some(left)).build();
            match req.header("content-type", "application/json").send(&text) {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    log::debug!("etcd {url}: {e}");
                    last = Error::Unreachable(format!("{}: {e}", self.endpoints[self.current]));
                    self.current = (self.current + 1) % self.endpoints.len();
                }
            }
        }
        Err(last)
    }

    /// A whole answer as JSON of type `T`, or the etcd error it carries.
    fn call<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, Error> {
        let mut resp = self.post(path, &body, self.timeout)?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        parse_answer(&text)
    }

    /// `LeaseGrant`: a lease of `ttl_s` seconds; (ID, the TTL etcd granted, seconds).
    pub fn grant(&mut self, ttl_s: u32) -> Result<(i64, i64), Error> {
        let a: Grant = self.call("/v3/lease/grant", json!({ "TTL": ttl_s }))?;
        if a.id == 0 || a.ttl <= 0 {
            return Err(Error::Answer(a.error.unwrap_or_else(|| "no lease granted".into())));
        }
        Ok((a.id, a.ttl))
    }

    /// `LeaseKeepAlive` (one round of the stream): the TTL left, 0 when the lease is gone.
    pub fn keepalive(&mut self, id: i64) -> Result<i64, Error> {
        let mut resp = self.post("/v3/lease/keepalive", &json!({ "ID": id.to_string() }), self.timeout)?;
        // The gateway streams: the first line is this round's answer.
        let mut lines = std::io::BufReader::new(resp.body_mut().with_config().limit(MAX_BODY).reader());
        let mut line = String::new();
        lines.read_line(&mut line).map_err(|e| Error::Unreachable(e.to_string()))?;
        let a: Streamed<Grant> = parse_answer(&line)?;
        match a.result {
            Some(g) => Ok(g.ttl.max(0)),
            None => Err(Error::Answer(a.error.map_or_else(|| "empty".into(), |e| e.to_string()))),
        }
    }

    /// `LeaseRevoke`: the lease and every key attached to it go at once.
    pub fn revoke(&mut self, id: i64) -> Result<(), Error> {
        self.call::<Answer>("/v3/lease/revoke", json!({ "ID": id.to_string() })).map(drop)
    }

    /// A `Txn` that creates `key` = `value` on `lease` if the key does not exist (its create
    /// revision is 0), else reads it.
    pub fn campaign(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<Campaign, Error> {
        let k = B64.encode(key);
        let t: Txn = self.call(
            "/v3/kv/txn",
            json!({
                "compare": [created(&k, 0)],
                "success": [{"request_put": {"key": k, "value": B64.encode(value), "lease": lease.to_string()}}],
                "failure": [{"request_range": {"key": k}}],
            }),
        )?;
        if t.succeeded {
            return Ok(Campaign::Won { token: t.header.revision });
        }
        match t.first_kv(0)? {
            Some(kv) => Ok(Campaign::Held { holder: kv.value, token: kv.create_revision }),
            // Gone between the compare and the read: try again.
            None => Err(Error::Answer("leader key vanished during the campaign".into())),
        }
    }

    /// A `Txn` that creates `key` = `value` only while `leader_key`'s create revision is
    /// `token` and `key` does not exist; else reads both.
    pub fn record(&mut self, leader_key: &[u8], token: i64, key: &[u8], value: &[u8]) -> Result<Record, Error> {
        let (l, k) = (B64.encode(leader_key), B64.encode(key));
        let t: Txn = self.call(
            "/v3/kv/txn",
            json!({
                "compare": [created(&l, token), created(&k, 0)],
                "success": [{"request_put": {"key": k, "value": B64.encode(value)}}],
                "failure": [{"request_range": {"key": l}}, {"request_range": {"key": k}}],
            }),
        )?;
        if t.succeeded {
            return Ok(Record::Written);
        }
        if let Some(kv) = t.first_kv(1)? {
            return Ok(Record::Held { runner: kv.value });
        }
        Ok(Record::NotLeader)
    }

    /// A `Txn` that deletes `leader_key` if its create revision is still `token`.
    pub fn resign(&mut self, leader_key: &[u8], token: i64) -> Result<(), Error> {
        let l = B64.encode(leader_key);
        let body = json!({
            "compare": [created(&l, token)],
            "success": [{"request_delete_range": {"key": l}}],
        });
        self.call::<Txn>("/v3/kv/txn", body).map(drop)
    }

    /// `Range` of every key from `key` up to `range_end` (exclusive; `None`: `key` alone):
    /// (the store's revision, the keys).
    pub fn range(&mut self, key: &[u8], range_end: Option<&[u8]>) -> Result<(i64, Vec<KeyValue>), Error> {
        let mut body = json!({ "key": B64.encode(key) });
        if let Some(end) = range_end {
            body["range_end"] = B64.encode(end).into();
        }
        let r: RangeAnswer = self.call("/v3/kv/range", body)?;
        let kvs = r.kvs.into_iter().map(KeyValue::try_from).collect::<Result<_, _>>()?;
        Ok((r.header.revision, kvs))
    }

    /// `DeleteRange` of `key` up to `range_end` (exclusive).
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) -> Result<(), Error> {
        let body = json!({ "key": B64.encode(key), "range_end": B64.encode(range_end) });
        self.call::<Answer>("/v3/kv/deleterange", body).map(drop)
    }

    /// `Watch` of `key` up to `range_end` from `start_revision`, open for `lifetime` at most
    /// (a silent stream on a dead connection would otherwise block for ever).
    pub fn watch(&mut self, key: &[u8], range_end: &[u8], start_revision: i64, lifetime: Duration) -> Result<Watch, Error> {
        let body = json!({"create_request": {
            "key": B64.encode(key),
            "range_end": B64.encode(range_end),
            "start_revision": start_revision.to_string(),
        }});
        let resp = self.post("/v3/watch", &body, lifetime)?;
        let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut w = Watch { lines: std::io::BufReader::new(reader) };
        let first = w.next()?;
        if first.ended {
            return Err(Error::Answer("watch refused".into()));
        }
        Ok(w)
    }
}

/// The key just after every key that starts with `prefix` (etcd's `range_end` for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn created(key_b64: &str, revision: i64) -> serde_json::Value {
    json!({"key": key_b64, "result": "EQUAL", "target": "CREATE", "create_revision": revision.to_string()})
}

// ---- the answers' JSON ------------------------------------------------------------------

/// A 64-bit integer as the gateway writes it (a string), or as a plain number.
fn int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        S(String),
        N(i64),
    }
    match Int::deserialize(d)? {
        Int::N(n) => Ok(n),
        Int::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "int")]
    revision: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Grant {
    #[serde(rename = "ID", deserialize_with = "int")]
    id: i64,
    #[serde(rename = "TTL", deserialize_with = "int")]
    ttl: i64,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Streamed<T> {
    result: Option<T>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonKv {
    #[serde(deserialize_with = "bytes")]
    key: Vec<u8>,
    #[serde(deserialize_with = "bytes")]
    value: Vec<u8>,
    #[serde(deserialize_with = "int")]
    create_revision: i64,
    #[serde(deserialize_with = "int")]
    lease: i64,
}

impl TryFrom<JsonKv> for KeyValue {
    type Error = Error;
    fn try_from(j: JsonKv) -> Result<KeyValue, Error> {
        if j.create_revision <= 0 {
            return Err(Error::Answer("a key without a create revision".into()));
        }
        Ok(KeyValue { key: j.key, value: j.value, create_revision: j.create_revision, lease: j.lease })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RangeAnswer {
    header: Header,
    kvs: Vec<JsonKv>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseOp {
    response_range: Option<RangeAnswer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Txn {
    header: Header,
    succeeded: bool,
    responses: Vec<ResponseOp>,
}

impl Txn {
    /// The first key read by the `i`-th operation of the branch taken.
    fn first_kv(self, i: usize) -> Result<Option<KeyValue>, Error> {
        let op = self.responses.into_iter().nth(i);
        match op.and_then(|o| o.response_range) {
            Some(r) => r.kvs.into_iter().next().map(KeyValue::try_from).transpose(),
            None => Err(Error::Answer(format!("txn answer without read {i}"))),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    kv: JsonKv,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WatchResult {
    header: Header,
    canceled: bool,
    #[serde(deserialize_with = "int")]
    compact_revision: i64,
    events: Vec<JsonEvent>,
}

/// An answer of type `T`, or the error etcd put in it instead.
fn parse_answer<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, Error> {
    let short = |t: &str| t.chars().take(200).collect::<String>();
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::Answer(format!("{e}: {}", short(text))))?;
    if let Some(e) = v.get("error").or_else(|| v.get("message")).filter(|_| v.get("result").is_none()) {
        if v.get("code").is_some() {
            return Err(Error::Answer(short(&e.to_string())));
        }
    }
    T::deserialize(v).map_err(|e| Error::Answer(format!("{e}: {}", short(text))))
}

/// One line of a watch stream.
fn parse_watch(line: &str) -> Result<WatchBatch, Error> {
    let s: Streamed<WatchResult> = parse_answer(line)?;
    let Some(r) = s.result else {
        return Err(Error::Answer(s.error.map_or_else(|| "empty watch message".into(), |e| e.to_string())));
    };
    let mut events = Vec::with_capacity(r.events.len());
    for e in r.events {
        events.push(match e.kind.as_deref() {
            None | Some("PUT") => Event::Put(KeyValue::try_from(e.kv)?),
            Some("DELETE") => Event::Delete { key: e.kv.key },
            Some(k) => return Err(Error::Answer(format!("unknown event type {k}"))),
        });
    }
    Ok(WatchBatch { revision: r.header.revision, events, ended: r.canceled || r.compact_revision > 0 })
}

/// TLS for `https://` endpoints: etcd's CA and an optional client certificate (a build with
/// the `tls` feature only; `config` refuses the keys otherwise).
#[cfg(feature = "tls")]
mod tls {
    use ureq::config::ConfigBuilder;
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

    fn pem(path: &std::path::Path) -> Result<Vec<PemItem<'static>>, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ureq::tls::parse_pem(&data)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn configure(
        b: ConfigBuilder<ureq::typestate::AgentScope>,
        cfg: &crate::config::Config,
    ) -> Result<ConfigBuilder<ureq::typestate::AgentScope>, String> {
        let mut t = TlsConfig::builder();
        if let Some(ca) = &cfg.etcd_ca_file {
            let certs: Vec<Certificate<'static>> = pem(ca)?
                .into_iter()
                .filter_map(|i| if let PemItem::Certificate(c) = i { Some(c) } else { None })
                .collect();
            if certs.is_empty() {
                return Err(format!("{}: no certificate", ca.display()));
            }
            t = t.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let (Some(cert), Some(key)) = (&cfg.etcd_cert_file, &cfg.etcd_key_file) {
            let chain: Vec<Certificate<'static>> = pem(cert)?
                .into_iter()
                .filter_map(|i| if let PemItem::Certificate(c) = i { Some(c) } else { None })
                .collect();
            let key: PrivateKey<'static> = pem(key)?
                .into_iter()
                .find_map(|i| if let PemItem::PrivateKey(k) = i { Some(k) } else { None })
                .ok_or_else(|| format!("{}: no private key", key.display()))?;
            t = t.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        Ok(b.tls_config(t.build()))
    }
}

#[cfg(not(feature = "tls"))]
mod tls {
    pub fn configure<B>(b: B, _cfg: &crate::config::Config) -> Result<B, String> {
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers as etcd 3.4's gateway wrote them (captured with curl, see tests/etcd.rs).
    #[test]
    fn gateway_answers_parse() {
        let g: Grant = parse_answer(r#"{"header":{"revision":"1"},"ID":"2324035735210334469","TTL":"5"}"#).unwrap();
        assert_eq!((g.id, g.ttl), (2324035735210334469, 5));
        let k: Streamed<Grant> = parse_answer(r#"{"result":{"header":{"revision":"1"},"ID":"123"}}"#).unwrap();
        assert_eq!(k.result.unwrap().ttl, 0, "an unknown lease has no TTL: gone");
        let t: Txn = parse_answer(r#"{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"L3QvbGVhZGVy","create_revision":"2","mod_revision":"2","version":"1","value":"YQ=="}],"count":"1"}}]}"#).unwrap();
        assert!(!t.succeeded);
        let kv = t.first_kv(0).unwrap().unwrap();
        assert_eq!((kv.key.as_slice(), kv.value.as_slice(), kv.create_revision), (&b"/t/leader"[..], &b"a"[..], 2));
        let w = parse_watch(r#"{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"YQ==","create_revision":"5","mod_revision":"7","value":"Yg=="}},{"type":"DELETE","kv":{"key":"YQ==","mod_revision":"7"}}]}}"#).unwrap();
        assert_eq!(w.revision, 7);
        assert_eq!(w.events.len(), 2);
        assert_eq!(w.events[1], Event::Delete { key: b"a".to_vec() });
        assert!(parse_watch(r#"{"result":{"header":{"revision":"9"},"compact_revision":"3","canceled":true}}"#).unwrap().ended);
    }

    #[test]
    fn errors_and_garbage_are_errors_not_panics() {
        for bad in [
            r#"{"error":"etcdserver: requested lease not found","code":5,"message":"x"}"#,
            "",
            "nul\u{0}",
            r#"{"ID":"12x","TTL":"5"}"#,
            r#"{"ID":"99999999999999999999","TTL":"5"}"#,
            r#"{"header":{"revision":"2"},"responses":[{"response_range":{"kvs":[{"key":"!!","create_revision":"2"}]}}]}"#,
            "[1,2]",
        ] {
            let g: Result<Grant, _> = parse_answer(bad);
            let t: Result<Txn, _> = parse_answer(bad).and_then(|t: Txn| t.first_kv(0).map(|_| Txn::default()));
            assert!(g.is_err() || t.is_err(), "{bad:?}");
        }
        assert!(parse_watch(r#"{"result":{"events":[{"type":"BOGUS","kv":{}}]}}"#).is_err());
        assert!(parse_watch(r#"{"result":{"events":[{"kv":{"key":"YQ==","create_revision":"0"}}]}}"#).is_err());
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end(b"/rcron/a/"), b"/rcron/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
