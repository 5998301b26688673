//! TLS to etcd (a build with the `tls` feature: `tests/all.sh` runs this file with
//! `cargo test --features tls`): a real etcd member serving https only and requiring client
//! certificates, made with openssl here; an rcron node with `etcd_ca_file`, `etcd_cert_file`
//! and `etcd_key_file` leads through it, and a node that trusts another CA never does.
#![cfg(feature = "tls")]

mod common;
use common::net::*;
use common::*;
use std::time::Duration;

/// A CA, and a certificate signed by it for `name` (with `san`), in `dir`.
fn pki(dir: &std::path::Path, ca: &str, certs: &[(&str, &str)]) {
    let d = dir.display();
    sh(&format!(
        "cd {d} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN={ca} 2>/dev/null"
    ));
    for (name, san) in certs {
        sh(&format!(
            "cd {d} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
             -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null && \
             printf 'subjectAltName={san}\\nextendedKeyUsage=serverAuth,clientAuth\\n' > {name}.ext && \
             openssl x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
             -days 2 -out {name}.pem -extfile {name}.ext 2>/dev/null"
        ));
    }
}

#[test]
fn a_node_leads_through_an_etcd_that_requires_tls_and_client_certificates() {
    let lab = Lab::new("et", 3);
    let dir = lab.hosts[0].dir.clone();
    let etcd_ip = lab.hosts[0].ip;
    pki(&dir, "ca", &[("server", &format!("IP:{etcd_ip}")), ("client", "DNS:client")]);
    pki(&dir, "other", &[]);
    let url = format!("https://{etcd_ip}:2379");
    let f = |n: &str| dir.join(n).display().to_string();
    let peer = format!("http://{etcd_ip}:2380");
    let args = [
        "etcd",
        "--name",
        "e0",
        "--data-dir",
        &f("data"),
        "--listen-client-urls",
        &url,
        "--advertise-client-urls",
        &url,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("e0={peer}"),
        "--cert-file",
        &f("server.pem"),
        "--key-file",
        &f("server.key"),
        "--trusted-ca-file",
        &f("ca.pem"),
        "--client-cert-auth",
        "--log-level",
        "warn",
    ];
    lab.hosts[0].spawn(&args, "etcd.log");
    let tls = format!(
        "etcd_lease_ttl 4\netcd_cert_file {}\netcd_key_file {}\nsyslog_facility LOG_LOCAL7\n",
        f("client.pem"),
        f("client.key")
    );
    let good =
        lab.rcron_etcd_conf(1, &[url.clone()], &format!("{tls}etcd_ca_file {}", f("ca.pem")));
    let bad =
        lab.rcron_etcd_conf(2, &[url.clone()], &format!("{tls}etcd_ca_file {}", f("other.pem")));
    lab.hosts[1].start_rcron(&good);
    lab.hosts[2].start_rcron(&bad);
    let led = until(Duration::from_secs(20), || lab.hosts[1].state() == "active");
    assert!(led, "{}\n{}", lab.hosts[1].status(), lab.hosts[0].log("etcd.log"));
    let st = lab.hosts[1].status_map();
    assert_eq!(st["etcd_endpoint"], url);
    assert_eq!(st["leader"], "n1");
    assert!(st["fencing_token"].parse::<i64>().unwrap() > 0);
    // The node that trusts another CA never reaches etcd, and says why.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lab.hosts[2].state(), "passive");
    let err = lab.hosts[2].status_field("etcd_last_error").unwrap_or_default();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
