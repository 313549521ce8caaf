//! The blocking pool's `postgres` (sync) manager against a real server (feature
//! `postgres-sync`).
//!
//! The server's URL comes from `POOLSIDE_PG_URL`, which `cargo xtask test` sets after
//! starting a throwaway PostgreSQL. Without it these tests fail under CI
//! (`CI=true`) and print a notice and pass elsewhere.
#![cfg(feature = "postgres-sync")]

use poolside_connpool::blocking::postgres_sync::PostgresManager;
use poolside_connpool::blocking::{Builder, Pool};
use poolside_core::Snapshot;
use postgres::{Client, Config, NoTls};
use std::thread;
use std::time::Duration;

use super::common as pg_env;

/// The server's config, or `None` (after a notice) when no server is available.
fn server() -> Option<Config> {
    pg_env::server_url().map(|url| url.parse().expect("POOLSIDE_PG_URL is a PostgreSQL URL"))
}

/// A config whose connections carry a name unique to this test, so
/// `pg_stat_activity` can be filtered to them.
fn tagged(config: &Config) -> (Config, String) {
    let tag = pg_env::unique_tag("poolside-blocking");
    let mut config = config.clone();
    config.application_name(&tag).connect_timeout(Duration::from_secs(5));
    (config, tag)
}

fn backends(admin: &mut Client, tag: &str) -> Vec<i32> {
    admin
        .query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", &[&tag])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Polls until `pred` holds (backends exit asynchronously), for at most 5 s.
fn eventually(mut pred: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if pred() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    pred()
}

fn backend_pid(pool: &Pool<PostgresManager<NoTls>>) -> i32 {
    pool.get().unwrap().query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0)
}

#[test]
fn pg_stat_activity_matches_open_under_load() {
    let Some(config) = server() else { return };
    let (tagged_config, tag) = tagged(&config);
    let mut admin = config.connect(NoTls).expect("admin connection");
    let pool = Builder::new()
        .max_size(6)
        .min_idle(2)
        .build(PostgresManager::new(tagged_config, NoTls))
        .unwrap();
    // The janitor warms the pool to min_idle by itself.
    assert!(eventually(|| pool.status().idle == 2));
    assert_eq!(backends(&mut admin, &tag).len(), 2);
    thread::scope(|s| {
        for t in 0..12i32 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..20i32 {
                    let mut client = pool.get().unwrap();
                    let row = client.query_one("SELECT $1::INT4 + $2::INT4", &[&t, &i]).unwrap();
                    assert_eq!(row.get::<_, i32>(0), t + i);
                }
            });
        }
    });
    let open = pool.status().open;
    assert!((2..=6).contains(&open));
    assert_eq!(backends(&mut admin, &tag).len(), open, "one backend per open connection");
    pool.close();
    assert!(eventually(|| backends(&mut admin, &tag).is_empty()), "closing ends every backend");
}

#[test]
fn a_terminated_backend_is_detected_and_replaced() {
    let Some(config) = server() else { return };
    let (tagged_config, tag) = tagged(&config);
    let mut admin = config.connect(NoTls).expect("admin connection");
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::ZERO)
        .build(PostgresManager::new(tagged_config, NoTls))
        .unwrap();
    let first = backend_pid(&pool);
    assert_eq!(backends(&mut admin, &tag), vec![first]);
    let killed: bool =
        admin.query_one("SELECT pg_terminate_backend($1)", &[&first]).unwrap().get(0);
    assert!(killed);
    assert!(eventually(|| backends(&mut admin, &tag).is_empty()));
    // The checkout health check finds the dead connection, closes it, dials anew.
    let second = backend_pid(&pool);
    assert_ne!(first, second);
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.value("health_fails"), Some(1));
    assert_eq!(snap.value("closed_broken"), Some(1));
    assert_eq!(pool.status().open, 1);
    assert_eq!(backends(&mut admin, &tag), vec![second]);

    // Killed while checked out: the failed query closes the socket, `is_broken`
    // sees it on return, and the connection is not reused.
    let mut client = pool.get().unwrap();
    let killed: bool =
        admin.query_one("SELECT pg_terminate_backend($1)", &[&second]).unwrap().get(0);
    assert!(killed);
    assert!(eventually(|| backends(&mut admin, &tag).is_empty()));
    assert!(client.query_one("SELECT 1", &[]).is_err());
    drop(client);
    assert_eq!(pool.status().open, 0);
    let third = backend_pid(&pool);
    assert!(third != second && third != first);
    assert_eq!(pool.status().open, 1);
}
