//! The tokio-postgres manager against a real server (feature `postgres`).
//!
//! The server's URL comes from `POOLSIDE_PG_URL`, which `cargo xtask test` sets after
//! starting a throwaway PostgreSQL. Without it these tests fail under CI
//! (`CI=true`) and print a notice and pass elsewhere.
#![cfg(feature = "postgres")]

use crate::common::server;
use poolside_connpool::{Builder, Pool, postgres::PgManager};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// A config whose connections carry a name unique to this test, so
/// `pg_stat_activity` can be filtered to them.
fn tagged(config: &Config) -> (Config, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tag = format!("poolside-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut config = config.clone();
    config.application_name(&tag);
    (config, tag)
}

async fn admin(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client
}

async fn backends(admin: &Client, tag: &str) -> Vec<i32> {
    let rows = admin
        .query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", &[&tag])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn backend_pid(pool: &Pool<PgManager>) -> i32 {
    pool.get().await.unwrap().query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

/// Polls until `pred` holds (backends exit asynchronously), for at most 5 s.
async fn eventually(mut pred: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if pred().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn server_side_connection_count_matches_open() {
    let Some(config) = server() else { return };
    let (tagged_config, tag) = tagged(&config);
    let admin = admin(&config).await;
    let pool = Builder::new().max_size(6).build(PgManager::new(tagged_config)).unwrap();
    pool.warm(3).await.unwrap();
    let held = [pool.get().await.unwrap(), pool.get().await.unwrap()];
    let extra = pool.get().await.unwrap();
    assert_eq!(pool.status().open, 3);
    assert_eq!(backends(&admin, &tag).await.len(), 3);
    let more = pool.get().await.unwrap();
    assert_eq!(pool.status().open, 4);
    assert_eq!(backends(&admin, &tag).await.len(), 4);
    drop((held, extra, more));
    pool.close();
    assert!(eventually(async || backends(&admin, &tag).await.is_empty()).await);
}

#[tokio::test]
async fn terminated_backends_are_detected_and_replaced() {
    let Some(config) = server() else { return };
    let (tagged_config, tag) = tagged(&config);
    let admin = admin(&config).await;
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .build(PgManager::new(tagged_config))
        .unwrap();
    let victim = backend_pid(&pool).await;
    admin.query_one("SELECT pg_terminate_backend($1)", &[&victim]).await.unwrap();
    assert!(eventually(async || !backends(&admin, &tag).await.contains(&victim)).await);
    let replacement = backend_pid(&pool).await;
    assert_ne!(replacement, victim, "the dead connection was not handed out");
    assert_eq!(backends(&admin, &tag).await, vec![replacement]);
    assert_eq!(pool.status().open, 1);

    // Killed while checked out: `is_broken` closes it on return.
    let conn = pool.get().await.unwrap();
    admin.query_one("SELECT pg_terminate_backend($1)", &[&replacement]).await.unwrap();
    assert!(conn.query_one("SELECT 1", &[]).await.is_err());
    // The client notices once its connection task has seen the server hang up.
    assert!(eventually(async || conn.is_closed()).await);
    drop(conn);
    assert!(eventually(async || pool.status().open == 0).await);
    assert_ne!(backend_pid(&pool).await, replacement);
}

#[tokio::test]
async fn max_lifetime_recycles_backends() {
    let Some(config) = server() else { return };
    let (tagged_config, tag) = tagged(&config);
    let admin = admin(&config).await;
    let pool = Builder::new()
        .max_size(2)
        .max_lifetime(Duration::from_millis(400))
        .build(PgManager::new(tagged_config))
        .unwrap();
    let first = backend_pid(&pool).await;
    assert_eq!(backend_pid(&pool).await, first, "reused within its lifetime");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = backend_pid(&pool).await;
    assert_ne!(second, first, "recycled after max_lifetime");
    assert!(eventually(async || backends(&admin, &tag).await == vec![second]).await);
}
