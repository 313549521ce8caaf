//! Lifecycle hooks against a real PostgreSQL (feature `postgres`): `after_connect`
//! names each session, and `after_release` runs `DISCARD ALL` so the next borrower
//! never sees the previous one's temp tables or settings.
//!
//! The server's URL comes from `POOLSIDE_PG_URL` (`cargo xtask test` sets it); without
//! it the tests fail under CI (`CI=true`) and print a notice and pass elsewhere.
#![cfg(feature = "postgres")]

use crate::common::server;
use poolside_connpool::{Builder, WaitPolicy, postgres::PgManager};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;

/// A name unique to this test run.
fn tag() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("poolside-hooks-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_connect_names_the_session_in_pg_stat_activity() {
    let Some(config) = server() else { return };
    let tag = tag();
    let prefix = tag.clone();
    let pool = Builder::new()
        .max_size(2)
        .manager(PgManager::new(config.clone()))
        .after_connect(move |conn, meta| {
            let sql = format!("SET application_name = '{prefix}-{}'", meta.id);
            Box::pin(async move {
                conn.batch_execute(&sql).await?;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let (admin, connection) = config.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = admin
        .query(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 \
             ORDER BY application_name",
            &[&format!("{tag}-%")],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, [format!("{tag}-1"), format!("{tag}-2")]);
    let own: String = a.query_one("SHOW application_name", &[]).await.unwrap().get(0);
    assert_eq!(own, format!("{tag}-{}", a.meta().id));
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_release_discard_all_clears_the_previous_borrowers_state() {
    let Some(config) = server() else { return };
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(Duration::from_secs(10)))
        .manager(PgManager::new(config))
        .after_release(|conn, _meta| {
            Box::pin(async move {
                conn.batch_execute("DISCARD ALL").await?;
                Ok(true)
            })
        })
        .build()
        .unwrap();
    let first = pool.get().await.unwrap();
    let id = first.meta().id;
    let default: String = first.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    first
        .batch_execute(
            "CREATE TEMP TABLE poolside_scratch (x int); \
             INSERT INTO poolside_scratch VALUES (1); \
             SET statement_timeout = '4321ms'",
        )
        .await
        .unwrap();
    let set: String = first.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    assert_eq!(set, "4321ms");
    assert_ne!(default, set);
    drop(first);
    // The same session (max_size 1), handed over only after DISCARD ALL ran.
    let second = pool.get().await.unwrap();
    assert_eq!(second.meta().id, id);
    assert_eq!(second.meta().checkouts, 2);
    let timeout: String = second.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, default);
    let temp: Option<String> = second
        .query_one("SELECT to_regclass('pg_temp.poolside_scratch')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(temp, None, "the temp table is gone");
}
