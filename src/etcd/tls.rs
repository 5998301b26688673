//! TLS to etcd (`https://` endpoints with `etcd_ca_file`, and a client certificate with
//! `etcd_cert_file` / `etcd_key_file`): rustls with the ring provider, in builds with the
//! `tls` cargo feature only (README, "Building the binaries": it does not fit the appliance
//! budget). Without the feature `config` refuses TLS keys, and [`Config`] only ever makes
//! plain streams.
//!
//! Owns: the connection's stream, plain or TLS. Errors: a file that cannot be read or holds
//! no certificate or key; a handshake that fails (returned as an I/O error).

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// A connection to one etcd member.
pub enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath (for its timeouts).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How connections are made: plain, or TLS with the configured CA and client certificate.
pub struct Config {
    #[cfg(feature = "tls")]
    client: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Config {
    /// Plain connections only.
    pub fn none() -> Config {
        Config {
            #[cfg(feature = "tls")]
            client: None,
        }
    }

    /// The TLS settings of `cfg` (none without `etcd_ca_file`). Errors name the file.
    #[cfg(not(feature = "tls"))]
    pub fn new(_cfg: &crate::config::Config) -> Result<Config, String> {
        Ok(Config::none())
    }

    #[cfg(feature = "tls")]
    pub fn new(cfg: &crate::config::Config) -> Result<Config, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let Some(ca) = &cfg.etcd_ca_file else { return Ok(Config::none()) };
        let named =
            |p: &std::path::Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| named(ca, &e))? {
            roots.add(c.map_err(|e| named(ca, &e))?).map_err(|e| named(ca, &e))?;
        }
        if roots.is_empty() {
            return Err(named(ca, &"no certificate"));
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let client = match (&cfg.etcd_cert_file, &cfg.etcd_key_file) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| named(cert, &e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| named(cert, &e))?;
                let k = PrivateKeyDer::from_pem_file(key).map_err(|e| named(key, &e))?;
                b.with_client_auth_cert(chain, k).map_err(|e| named(cert, &e))?
            }
            _ => b.with_no_client_auth(),
        };
        Ok(Config { client: Some(std::sync::Arc::new(client)) })
    }

    /// The stream for a new connection to `ep`.
    pub fn wrap(&self, tcp: TcpStream, ep: &super::http::Endpoint) -> io::Result<Stream> {
        if !ep.tls {
            return Ok(Stream::Plain(tcp));
        }
        #[cfg(feature = "tls")]
        if let Some(c) = &self.client {
            let host = ep.host.trim_start_matches('[').trim_end_matches(']').to_string();
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let conn = rustls::ClientConnection::new(c.clone(), name).map_err(io::Error::other)?;
            return Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))));
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "https needs etcd_ca_file and a build with TLS",
        ))
    }
}
