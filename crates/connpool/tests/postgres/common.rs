//! What every PostgreSQL test module shares: where the server is (`cargo xtask test`
//! starts a throwaway one and sets `POOLSIDE_PG_URL`; without it a test fails under
//! `CI=true` and elsewhere prints a notice and skips).

/// The server's config, or `None` (after a notice) when no server is available.
#[cfg(feature = "postgres")]
pub(crate) fn server() -> Option<tokio_postgres::Config> {
    server_url().map(|url| url.parse().expect("POOLSIDE_PG_URL is a PostgreSQL URL"))
}

#[path = "../support/service_url.rs"]
mod service_url;

/// The server's URL, or `None` (after a notice) when no server is available.
pub(crate) fn server_url() -> Option<String> {
    service_url::service_url("POOLSIDE_PG_URL", "PostgreSQL")
}

/// A name unique to this process and call (`{prefix}-{pid}-{n}`), for
/// `application_name`, so `pg_stat_activity` can be filtered to one test's sessions.
pub(crate) fn unique_tag(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A plain identifier unique to this process and call (`{prefix}_{pid}_{n}`), for the
/// tables a test creates on the shared server.
pub(crate) fn unique_ident(prefix: &str) -> String {
    unique_tag(prefix).replace('-', "_")
}

/// A connection outside any pool, for looking at (and acting on) the server from the
/// side.
#[cfg(feature = "postgres")]
pub(crate) async fn admin(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) =
        config.connect(tokio_postgres::NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client
}
