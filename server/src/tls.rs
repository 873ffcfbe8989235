//! TLS (rustls) for the API and the syslog TLS listener: certificates from
//! PEM files, reloaded on SIGHUP. A reload changes what new connections get;
//! established connections keep theirs, and a reload that fails (a missing
//! or broken file) keeps the certificate in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::RwLock;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<TlsAcceptor>,
}

impl Tls {
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Tls>> {
        Ok(Arc::new(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(acceptor(cert, key)?),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }

    /// Reads the files again; on error the old certificate stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let a = acceptor(&self.cert, &self.key)?;
        *self.current.write() = a;
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading tls_cert_file {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading tls_key_file {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls_cert_file and tls_key_file do not make a certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads the certificate on every SIGHUP, until the task is aborted.
pub async fn reload_on_sighup(tls: Arc<Tls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: certificates will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("tls certificate reloaded"),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "tls reload failed; keeping the old certificate"
            ),
        }
    }
}
