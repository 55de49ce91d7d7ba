//! The TLS settings of the HTTP client: which certificate authorities it trusts, and the
//! certificate it shows when the server asks for one (mutual TLS).
//!
//! Trusted: the Mozilla roots built into the binary (a container often has no CA bundle), the
//! system's store when it can be read, and the PEM file of a private CA when one is named
//! (`otel.tls.ca_file`, `OTEL_EXPORTER_OTLP_CERTIFICATE`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::PostError;

/// PEM files of the client's TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate authorities to trust besides the built-in and system ones.
    pub ca_file: Option<PathBuf>,
    /// The client's certificate chain, for servers that require one.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<PathBuf>,
}

fn bad(path: &Path, what: &str, e: impl std::fmt::Display) -> PostError {
    PostError::Tls(format!("{what} '{}': {e}", path.display()))
}

/// The rustls client configuration for `files`.
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, PostError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = &files.ca_file {
        let certs = read_certs(path, "CA file")?;
        for cert in certs {
            roots.add(cert).map_err(|e| bad(path, "CA file", e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PostError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match (&files.client_cert, &files.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client certificate")?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, "client key", e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad(cert, "client certificate", e))
        }
        (Some(_), None) | (None, Some(_)) => Err(PostError::Tls(
            "a client certificate needs both its certificate and its key file".to_owned(),
        )),
    }
}

/// Every certificate of a PEM file; at least one.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, PostError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, what, e))?;
    if certs.is_empty() {
        return Err(bad(path, what, "no PEM certificate in it"));
    }
    Ok(certs)
}
