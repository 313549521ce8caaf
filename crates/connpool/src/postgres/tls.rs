//! rustls for the PostgreSQL manager (feature `postgres-rustls`), through
//! tokio-postgres-rustls.

use super::PgManager;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

impl PgManager<MakeRustlsConnect> {
    /// Connects with `config` over TLS with rustls: the server's certificate is
    /// verified against `tls`'s roots and its name against the host connected to.
    /// `sslmode` from the URL or config applies (`prefer` by default: use
    /// `sslmode=require` so that a server without TLS is refused).
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgManager, postgres::PgTlsConfig};
    ///
    /// let tls = PgTlsConfig::new().webpki_roots().build().unwrap();
    /// let config = "postgres://app@db.example/app?sslmode=require".parse().unwrap();
    /// let manager = PgManager::with_rustls(config, tls);
    /// assert_eq!(manager.config().get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    /// ```
    pub fn with_rustls(config: Config, tls: rustls::ClientConfig) -> Self {
        PgManager::with_tls(config, MakeRustlsConnect::new(tls))
    }
}

/// Why a TLS client config could not be built.
///
/// ```
/// use poolside_connpool::{postgres::PgTlsConfig, postgres::TlsConfigError};
///
/// assert!(matches!(PgTlsConfig::new().build(), Err(TlsConfigError::NoRoots)));
/// assert!(matches!(PgTlsConfig::new().ca_pem(b"not a certificate"), Err(TlsConfigError::NoCertificate)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A CA file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What reading it failed with.
        source: std::io::Error,
    },
    /// PEM input held no `CERTIFICATE` block.
    NoCertificate,
    /// A PEM block could not be decoded.
    Pem(rustls::pki_types::pem::Error),
    /// A certificate was rejected as a trust anchor.
    BadCertificate(rustls::Error),
    /// The operating system's certificate store could not be read, or was empty.
    SystemRoots(String),
    /// No root certificate was added: nothing could be trusted.
    NoRoots,
    /// rustls refused the protocol versions of its crypto provider.
    Protocol(rustls::Error),
}

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsConfigError::Io { path, .. } => write!(f, "reading CA file {}", path.display()),
            TlsConfigError::NoCertificate => f.write_str("no PEM CERTIFICATE block found"),
            TlsConfigError::Pem(e) => write!(f, "decoding PEM: {e}"),
            TlsConfigError::BadCertificate(e) => write!(f, "unusable root certificate: {e}"),
            TlsConfigError::SystemRoots(e) => {
                write!(f, "loading the system's root certificates: {e}")
            }
            TlsConfigError::NoRoots => {
                f.write_str("no root certificates: add webpki, system or CA roots")
            }
            TlsConfigError::Protocol(e) => write!(f, "rustls protocol versions: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Io { source, .. } => Some(source),
            TlsConfigError::Pem(e) => Some(e),
            TlsConfigError::BadCertificate(e) | TlsConfigError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// Builds the rustls `ClientConfig` for [`PgManager::with_rustls`]: which roots to
/// trust (the webpki set, the system's store, your own CA), with rustls' `ring`
/// provider and its safe default protocol versions.
///
/// ```
/// use poolside_connpool::postgres::PgTlsConfig;
///
/// let tls = PgTlsConfig::new().webpki_roots().build()?;
/// assert!(tls.alpn_protocols.is_empty());
/// # Ok::<(), poolside_connpool::postgres::TlsConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PgTlsConfig {
    roots: RootCertStore,
}

impl Default for PgTlsConfig {
    fn default() -> Self {
        PgTlsConfig::new()
    }
}

impl PgTlsConfig {
    /// No roots yet.
    ///
    /// ```
    /// assert_eq!(poolside_connpool::postgres::PgTlsConfig::new().root_count(), 0);
    /// ```
    pub fn new() -> Self {
        PgTlsConfig { roots: RootCertStore::empty() }
    }

    /// Trusts the Mozilla root set compiled in by `webpki-roots`.
    ///
    /// ```
    /// assert!(poolside_connpool::postgres::PgTlsConfig::new().webpki_roots().root_count() > 100);
    /// ```
    pub fn webpki_roots(mut self) -> Self {
        self.roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        self
    }

    /// Trusts the operating system's certificate store. Certificates the store holds
    /// but rustls cannot use are skipped; an unreadable or empty store is an error.
    ///
    /// ```
    /// use poolside_connpool::postgres::PgTlsConfig;
    ///
    /// match PgTlsConfig::new().system_roots() {
    ///     Ok(tls) => assert!(tls.root_count() > 0),
    ///     Err(e) => eprintln!("no system roots here: {e}"),
    /// }
    /// ```
    pub fn system_roots(mut self) -> Result<Self, TlsConfigError> {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = self.roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = match found.errors.first() {
                Some(e) => e.to_string(),
                None => "no usable certificate in the system store".to_owned(),
            };
            return Err(TlsConfigError::SystemRoots(why));
        }
        Ok(self)
    }

    /// Trusts every certificate in `pem` (one or more `CERTIFICATE` blocks), e.g. a
    /// private CA's.
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgTlsConfig, postgres::TlsConfigError};
    ///
    /// let err = PgTlsConfig::new().ca_pem(b"").unwrap_err();
    /// assert!(matches!(err, TlsConfigError::NoCertificate));
    /// ```
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, TlsConfigError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(TlsConfigError::Pem)?;
            self.roots.add(cert).map_err(TlsConfigError::BadCertificate)?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::NoCertificate);
        }
        Ok(self)
    }

    /// Trusts every certificate in the PEM file at `path`.
    ///
    /// ```
    /// use poolside_connpool::{postgres::PgTlsConfig, postgres::TlsConfigError};
    ///
    /// let err = PgTlsConfig::new().ca_file("/nonexistent/ca.pem").unwrap_err();
    /// assert!(matches!(err, TlsConfigError::Io { .. }));
    /// ```
    pub fn ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|source| TlsConfigError::Io { path: path.to_owned(), source })?;
        self.ca_pem(&pem)
    }

    /// How many roots are trusted so far.
    ///
    /// ```
    /// assert_eq!(poolside_connpool::postgres::PgTlsConfig::default().root_count(), 0);
    /// ```
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// The rustls client config (no client certificate).
    ///
    /// ```
    /// let tls = poolside_connpool::postgres::PgTlsConfig::new().webpki_roots().build().unwrap();
    /// # let _ = tls;
    /// ```
    pub fn build(self) -> Result<rustls::ClientConfig, TlsConfigError> {
        if self.roots.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Protocol)?
            .with_root_certificates(self.roots)
            .with_no_client_auth())
    }
}
