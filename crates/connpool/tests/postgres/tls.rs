//! The PostgreSQL adapter over TLS with rustls (feature `postgres-rustls`).
//!
//! `cargo xtask test` starts its throwaway PostgreSQL with `ssl=on` and a certificate
//! signed by a throwaway CA, and passes the CA's PEM file in `POOLSIDE_PG_CA_FILE`
//! (and the URL in `POOLSIDE_PG_URL`). Without them these tests fail under CI
//! (`CI=true`) and print a notice and pass elsewhere (the shared development server
//! has no TLS: run them with `cargo xtask services -- cargo test ...`).
#![cfg(feature = "postgres-rustls")]

use poolside_connpool::{
    Builder, GetError, postgres::PgManager, postgres::PgTlsConfig, postgres::TlsConfigError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

/// The server's config and the CA file, or `None` (after a notice).
fn tls_server() -> Option<(Config, String)> {
    match (std::env::var("POOLSIDE_PG_URL"), std::env::var("POOLSIDE_PG_CA_FILE")) {
        (Ok(url), Ok(ca)) => Some((url.parse().expect("POOLSIDE_PG_URL is a PostgreSQL URL"), ca)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "POOLSIDE_PG_URL / POOLSIDE_PG_CA_FILE are not set under CI: run the tests with \
             `cargo xtask test`"
        ),
        _ => {
            eprintln!(
                "NOTICE: POOLSIDE_PG_URL or POOLSIDE_PG_CA_FILE is not set; skipping the \
                 PostgreSQL TLS test (`cargo xtask test` starts a TLS server and sets both)"
            );
            None
        }
    }
}

fn tagged(config: &Config, mode: SslMode) -> (Config, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tag =
        format!("poolside-tls-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut config = config.clone();
    config.application_name(&tag).ssl_mode(mode);
    (config, tag)
}

async fn admin(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client
}

/// `(pid, ssl)` of every backend carrying `tag`.
async fn backends_ssl(admin: &Client, tag: &str) -> Vec<(i32, bool)> {
    admin
        .query(
            "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = $1 ORDER BY a.pid",
            &[&tag],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn pool_backends_are_encrypted() {
    let Some((config, ca)) = tls_server() else { return };
    let tls = PgTlsConfig::new().ca_file(&ca).unwrap().build().unwrap();
    let (tls_config, tag) = tagged(&config, SslMode::Require);
    let pool = Builder::new()
        .max_size(4)
        .build(PgManager::with_rustls(tls_config, tls).automatic_statement_cache(true))
        .unwrap();
    pool.warm(3).await.unwrap();
    let held = [pool.get().await.unwrap(), pool.get().await.unwrap(), pool.get().await.unwrap()];
    for conn in &held {
        assert_eq!(conn.query_one("SELECT $1::int", &[&5i32]).await.unwrap().get::<_, i32>(0), 5);
    }
    let admin = admin(&config).await;
    let backends = backends_ssl(&admin, &tag).await;
    assert_eq!(backends.len(), 3, "{backends:?}");
    assert!(
        backends.iter().all(|&(_, ssl)| ssl),
        "every pooled backend is encrypted: {backends:?}"
    );
    assert_eq!(pool.status().open, 3);
}

#[tokio::test]
async fn sslmode_is_honoured() {
    let Some((config, ca)) = tls_server() else { return };
    let admin = admin(&config).await;
    for (mode, encrypted) in
        [(SslMode::Disable, false), (SslMode::Prefer, true), (SslMode::Require, true)]
    {
        let tls = PgTlsConfig::new().ca_file(&ca).unwrap().build().unwrap();
        let (tls_config, tag) = tagged(&config, mode);
        let pool =
            Builder::new().max_size(1).build(PgManager::with_rustls(tls_config, tls)).unwrap();
        let conn = pool.get().await.unwrap();
        let pid: i32 = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        assert_eq!(backends_ssl(&admin, &tag).await, vec![(pid, encrypted)], "{mode:?}");
    }
}

#[tokio::test]
async fn a_wrong_ca_fails_with_a_clear_error() {
    let Some((config, _ca)) = tls_server() else { return };
    // The public web roots did not sign the throwaway CA's server certificate. Even
    // with `prefer`, a failed handshake must not fall back to plain text.
    for mode in [SslMode::Require, SslMode::Prefer] {
        let tls = PgTlsConfig::new().webpki_roots().build().unwrap();
        let (tls_config, tag) = tagged(&config, mode);
        let pool = Builder::new()
            .max_size(1)
            .connect_timeout(Duration::from_secs(2))
            .build(PgManager::with_rustls(tls_config, tls))
            .unwrap();
        let err = pool.get().await.expect_err("an untrusted server certificate is refused");
        // Dials are retried with the backoff until the connect timeout; the error carries
        // the last one's cause.
        let (GetError::Connect(pg) | GetError::ConnectFailed { last: pg, .. }) = &err else {
            panic!("not a connect error: {err:?}")
        };
        let mut chain = pg.to_string();
        let mut source = std::error::Error::source(pg);
        while let Some(e) = source {
            chain.push_str(": ");
            chain.push_str(&e.to_string());
            source = e.source();
        }
        assert!(
            chain.contains("certificate") && chain.contains("UnknownIssuer"),
            "the error names the certificate problem: {chain}"
        );
        assert_eq!(pool.status().open, 0);
        let admin = admin(&config).await;
        assert!(backends_ssl(&admin, &tag).await.is_empty(), "no backend was left behind");
    }
}

#[test]
fn tls_config_errors_are_typed() {
    assert!(matches!(PgTlsConfig::new().build(), Err(TlsConfigError::NoRoots)));
    assert!(matches!(PgTlsConfig::new().ca_pem(b"junk"), Err(TlsConfigError::NoCertificate)));
    let bad_block = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(PgTlsConfig::new().ca_pem(bad_block), Err(TlsConfigError::BadCertificate(_))));
    let missing = PgTlsConfig::new().ca_file("/nonexistent/poolside/ca.pem").unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/poolside/ca.pem"));
    assert!(PgTlsConfig::new().webpki_roots().root_count() > 0);
}
