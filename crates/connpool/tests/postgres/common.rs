//! What every PostgreSQL test module shares.
#![cfg(feature = "postgres")]

use tokio_postgres::Config;

/// The server's config, or `None` (after a notice) when no server is available.
pub(crate) fn server() -> Option<Config> {
    match std::env::var("POOLSIDE_PG_URL") {
        Ok(url) => Some(url.parse().expect("POOLSIDE_PG_URL is a PostgreSQL URL")),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("POOLSIDE_PG_URL is not set under CI: run the tests with `cargo xtask test`")
        }
        Err(_) => {
            eprintln!(
                "NOTICE: POOLSIDE_PG_URL is not set; skipping the PostgreSQL test \
                 (`cargo xtask test` starts a server and sets it)"
            );
            None
        }
    }
}
