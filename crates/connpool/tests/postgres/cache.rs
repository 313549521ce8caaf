//! The PostgreSQL adapter's statement cache and recycling methods against a real
//! server (feature `postgres`).
//!
//! The server's URL comes from `POOLSIDE_PG_URL`, which `cargo xtask test` sets after
//! starting a throwaway PostgreSQL. Without it these tests fail under CI
//! (`CI=true`) and print a notice and pass elsewhere. Each test works in tables and
//! connections of its own, so they may share the server with anyone.
#![cfg(feature = "postgres")]

use crate::common::server;
use poolside_connpool::{
    Builder, Pool, postgres::PgClient, postgres::PgManager, postgres::RecyclingMethod,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

/// A name unique to this test run, for tables and application names.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{prefix}_{}_{stamp}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn admin(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("admin connection");
    tokio::spawn(connection);
    client
}

/// A number from a one-value simple query, so counting statements adds none.
async fn simple_count(conn: &PgClient, sql: &str) -> i64 {
    let messages = conn.client().simple_query(sql).await.unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(|v| v.parse::<i64>().unwrap()),
            _ => None,
        })
        .expect("one row")
}

/// The server's count of this session's prepared statements.
async fn server_statements(conn: &PgClient) -> i64 {
    simple_count(conn, "SELECT count(*) FROM pg_prepared_statements").await
}

fn one_connection(manager: PgManager) -> Pool<PgManager> {
    Builder::new().max_size(1).build(manager).unwrap()
}

#[tokio::test]
async fn automatic_mode_counts_hits_and_misses() {
    let Some(config) = server() else { return };
    let manager = PgManager::new(config).automatic_statement_cache(true);
    let pool = one_connection(manager.clone());
    let conn = pool.get().await.unwrap();
    for n in 0..5i32 {
        let row = conn.query_one("SELECT $1::int", &[&n]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), n);
    }
    let rows = conn.query("SELECT generate_series(1, $1)", &[&3i32]).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(conn.query_opt("SELECT 1 WHERE $1", &[&false]).await.unwrap().is_none());
    assert_eq!(conn.execute("SELECT $1::int", &[&1i32]).await.unwrap(), 1);

    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (3, 5, 3), "{stats:?}");
    assert_eq!(server_statements(&conn).await, 3, "one server-side statement per SQL text");
    let total = manager.statement_cache_stats();
    assert_eq!((total.misses, total.hits, total.len), (3, 5, 3), "{total:?}");
    assert_eq!(total.hit_ratio(), Some(5.0 / 8.0));
    drop(conn);
    drop(pool);
    assert_eq!(
        manager.statement_cache_stats().len,
        0,
        "a closed connection's statements leave the total"
    );
}

#[tokio::test]
async fn without_automatic_mode_sql_text_bypasses_the_cache() {
    let Some(config) = server() else { return };
    let manager = PgManager::new(config);
    let pool = one_connection(manager.clone());
    let conn = pool.get().await.unwrap();
    for n in 0..3i32 {
        assert_eq!(conn.query_one("SELECT $1::int", &[&n]).await.unwrap().get::<_, i32>(0), n);
    }
    assert_eq!(conn.statement_cache_stats().misses + conn.statement_cache_stats().hits, 0);
    assert_eq!(server_statements(&conn).await, 0, "plain queries close their statements");
    // prepare_cached still caches.
    let a = conn.prepare_cached("SELECT $1::int + 1").await.unwrap();
    let b = conn.prepare_cached("SELECT $1::int + 1").await.unwrap();
    assert_eq!(conn.query_one(&b, &[&1i32]).await.unwrap().get::<_, i32>(0), 2);
    assert_eq!(a.columns().len(), 1);
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (1, 1, 1));
    assert_eq!(server_statements(&conn).await, 1);
}

#[tokio::test]
async fn alter_table_between_two_cached_queries_is_survived() {
    let Some(config) = server() else { return };
    let table = unique("poolside_alter");
    let admin = admin(&config).await;
    admin
        .batch_execute(&format!("CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let pool = one_connection(PgManager::new(config).automatic_statement_cache(true));
    let conn = pool.get().await.unwrap();
    let select = format!("SELECT * FROM {table}");
    let before = conn.query_one(select.as_str(), &[]).await.unwrap();
    assert_eq!(before.columns().len(), 1);

    admin
        .batch_execute(&format!("ALTER TABLE {table} ADD COLUMN b text DEFAULT 'x'"))
        .await
        .unwrap();
    // The cached plan's result type changed: the server answers 0A000, the cache
    // drops the statement, prepares it again and retries once.
    let after = conn.query_one(select.as_str(), &[]).await.unwrap();
    assert_eq!(after.columns().len(), 2);
    assert_eq!(after.get::<_, &str>(1), "x");
    let stats = conn.statement_cache_stats();
    assert_eq!(stats.invalidations, 1, "{stats:?}");
    assert_eq!((stats.misses, stats.hits, stats.len), (2, 1, 1), "{stats:?}");

    // 26000: the server forgot the statement (DEALLOCATE behind the cache's back).
    conn.client().batch_execute("DEALLOCATE ALL").await.unwrap();
    let again = conn.query_one(select.as_str(), &[]).await.unwrap();
    assert_eq!(again.columns().len(), 2);
    assert_eq!(conn.statement_cache_stats().invalidations, 2);
    // execute goes through the same retry.
    let insert = format!("INSERT INTO {table} (a) VALUES ($1)");
    assert_eq!(conn.execute(insert.as_str(), &[&2i32]).await.unwrap(), 1);
    conn.client().batch_execute("DEALLOCATE ALL").await.unwrap();
    assert_eq!(conn.execute(insert.as_str(), &[&3i32]).await.unwrap(), 1);
    assert_eq!(conn.statement_cache_stats().invalidations, 3);
    drop(conn);
    admin.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn ten_thousand_distinct_statements_stay_within_the_lru_bound() {
    let Some(config) = server() else { return };
    const CAPACITY: usize = 64;
    let manager =
        PgManager::new(config).automatic_statement_cache(true).statement_cache_capacity(CAPACITY);
    let pool = one_connection(manager.clone());
    let conn = pool.get().await.unwrap();
    for n in 0..10_000i32 {
        let sql = format!("SELECT {n}::int + $1");
        assert_eq!(conn.query_one(sql.as_str(), &[&1i32]).await.unwrap().get::<_, i32>(0), n + 1);
        if n % 1000 == 999 {
            assert!(conn.statement_cache_stats().len <= CAPACITY);
            let on_server = server_statements(&conn).await;
            assert!(on_server <= CAPACITY as i64, "{on_server} prepared statements after {n}");
        }
    }
    let stats = conn.statement_cache_stats();
    assert_eq!(stats.len, CAPACITY);
    assert_eq!(stats.misses, 10_000);
    assert_eq!(stats.evictions, 10_000 - CAPACITY as u64);
    assert_eq!(server_statements(&conn).await, CAPACITY as i64);
    // The most recent statements are the ones kept.
    let last = "SELECT 9999::int + $1";
    conn.query_one(last, &[&0i32]).await.unwrap();
    assert_eq!(conn.statement_cache_stats().hits, 1);
}

#[tokio::test]
async fn capacity_zero_caches_nothing_and_leaks_no_statement() {
    let Some(config) = server() else { return };
    let pool = one_connection(
        PgManager::new(config).automatic_statement_cache(true).statement_cache_capacity(0),
    );
    let conn = pool.get().await.unwrap();
    for _ in 0..3 {
        assert_eq!(conn.query_one("SELECT $1::int", &[&7i32]).await.unwrap().get::<_, i32>(0), 7);
        let statement = conn.prepare_cached("SELECT 2").await.unwrap();
        conn.query_one(&statement, &[]).await.unwrap();
    }
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.len), (0, 6, 0));
    assert_eq!(server_statements(&conn).await, 0);
}

/// Session state a previous user can leave behind.
async fn dirty(conn: &PgClient, table: &str) {
    conn.prepare_cached("SELECT 1").await.unwrap();
    conn.prepare_cached("SELECT 2").await.unwrap();
    conn.batch_execute(&format!(
        "SET application_name = 'dirty'; CREATE TEMPORARY TABLE {table} (a int); \
         PREPARE user_statement AS SELECT 3; SELECT pg_advisory_lock(4242)"
    ))
    .await
    .unwrap();
    assert_eq!(server_statements(conn).await, 3);
}

async fn application_name(conn: &PgClient) -> String {
    let messages = conn.client().simple_query("SHOW application_name").await.unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn clean_recycling_discards_the_session_and_empties_the_cache() {
    let Some(config) = server() else { return };
    // Both paths: the reset in the checkout health check (window zero), and the
    // reset before the first statement of a connection handed out unchecked.
    for window in [Duration::ZERO, Duration::from_secs(3600)] {
        let manager = PgManager::new(config.clone()).recycling(RecyclingMethod::Clean);
        let pool =
            Builder::new().max_size(1).health_check_after(window).build(manager.clone()).unwrap();
        let table = unique("poolside_temp");
        let pid: i32;
        {
            let conn = pool.get().await.unwrap();
            pid = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
            dirty(&conn, &table).await;
            assert_eq!(conn.statement_cache_stats().len, 2);
        }
        assert_eq!(
            manager.statement_cache_stats().len,
            0,
            "returned: the cache is emptied at once"
        );
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.statement_cache_stats().len, 0);
        // A PgClient method runs the pending reset first.
        let same: i32 = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        assert_eq!(same, pid, "the same connection, reset ({window:?})");
        assert_eq!(server_statements(&conn).await, 0, "DISCARD ALL deallocated everything");
        assert_ne!(application_name(&conn).await, "dirty");
        let temp = format!(
            "SELECT count(*) FROM pg_class WHERE relname = '{table}' AND relpersistence = 't'"
        );
        assert_eq!(simple_count(&conn, &temp).await, 0, "the temporary table is gone");
        let locks =
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()";
        assert_eq!(simple_count(&conn, locks).await, 0, "advisory locks are released");
        // The cache works again after the reset.
        conn.prepare_cached("SELECT 1").await.unwrap();
        assert_eq!(server_statements(&conn).await, 1);
    }
}

#[tokio::test]
async fn clean_recycling_rolls_back_a_transaction_left_open() {
    let Some(config) = server() else { return };
    let table = unique("poolside_tx");
    let admin = admin(&config).await;
    admin.batch_execute(&format!("CREATE TABLE {table} (a int)")).await.unwrap();
    for aborted in [false, true] {
        let pool = Builder::new()
            .max_size(1)
            .health_check_after(Duration::ZERO)
            .build(PgManager::new(config.clone()).recycling(RecyclingMethod::Clean))
            .unwrap();
        let pid: i32;
        {
            let conn = pool.get().await.unwrap();
            pid = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
            conn.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)")).await.unwrap();
            if aborted {
                // A failed statement leaves the transaction aborted (25P02 afterwards).
                assert!(conn.batch_execute("SELECT 1/0").await.is_err());
            }
        }
        let conn = pool.get().await.unwrap();
        let same: i32 = conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        assert_eq!(same, pid, "the connection was reset, not replaced (aborted: {aborted})");
        // The abandoned transaction had an id (it inserted); a fresh read-only
        // statement outside any transaction has none.
        let outside: bool =
            conn.query_one("SELECT txid_current_if_assigned() IS NULL", &[]).await.unwrap().get(0);
        assert!(outside, "no transaction is open after Clean recycling (aborted: {aborted})");
        let rows = admin.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap();
        assert_eq!(rows.get::<_, i64>(0), 0, "the abandoned insert was rolled back");
    }
    admin.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn custom_recycling_runs_its_sql_and_keeps_the_cache() {
    let Some(config) = server() else { return };
    let pool = Builder::new()
        .max_size(1)
        .build(PgManager::new(config).recycling(RecyclingMethod::Custom("RESET ALL".into())))
        .unwrap();
    {
        let conn = pool.get().await.unwrap();
        conn.prepare_cached("SELECT 1").await.unwrap();
        conn.batch_execute("SET application_name = 'dirty'").await.unwrap();
    }
    let conn = pool.get().await.unwrap();
    conn.ready().await.unwrap();
    assert_ne!(application_name(&conn).await, "dirty");
    assert_eq!(conn.statement_cache_stats().len, 1, "RESET ALL keeps prepared statements");
    assert_eq!(server_statements(&conn).await, 1);
}

#[tokio::test]
async fn fast_and_verified_recycling_keep_the_session() {
    let Some(config) = server() else { return };
    for method in [RecyclingMethod::Fast, RecyclingMethod::Verified] {
        let pool = Builder::new()
            .max_size(1)
            .health_check_after(Duration::ZERO)
            .build(PgManager::new(config.clone()).recycling(method.clone()))
            .unwrap();
        {
            let conn = pool.get().await.unwrap();
            conn.prepare_cached("SELECT 1").await.unwrap();
            conn.batch_execute("SET application_name = 'kept'").await.unwrap();
        }
        let conn = pool.get().await.unwrap();
        assert_eq!(application_name(&conn).await, "kept", "{method:?}");
        assert_eq!(conn.statement_cache_stats().len, 1);
        assert_eq!(pool.status().open, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_automatic_queries_keep_counts_exact_and_within_bound() {
    let Some(config) = server() else { return };
    const POOL: usize = 4;
    const CAPACITY: usize = 8;
    const TASKS: usize = 32;
    const QUERIES: usize = 50;
    let manager =
        PgManager::new(config).automatic_statement_cache(true).statement_cache_capacity(CAPACITY);
    let pool = Builder::new().max_size(POOL).build(manager.clone()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Sampled all along: no connection ever holds more than CAPACITY statements.
    let sampler = {
        let (manager, done) = (manager.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                assert!(manager.statement_cache_stats().len <= POOL * CAPACITY);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for q in 0..QUERIES {
                let k = ((t * 7 + q) % 12) as i32;
                let sql = format!("SELECT {k}::int + $1");
                let conn = pool.get().await.unwrap();
                let got: i32 = conn.query_one(sql.as_str(), &[&1i32]).await.unwrap().get(0);
                assert_eq!(got, k + 1);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(sampler.await.unwrap() > 0);
    let stats = manager.statement_cache_stats();
    assert_eq!(stats.hits + stats.misses, (TASKS * QUERIES) as u64, "{stats:?}");
    assert!(stats.len <= POOL * CAPACITY);
    assert_eq!(stats.evictions, stats.misses - stats.len as u64, "every miss is cached or evicted");
}

#[tokio::test]
async fn queries_cancelled_at_any_point_leave_no_statement_behind() {
    let Some(config) = server() else { return };
    for window in [Duration::ZERO, Duration::from_secs(3600)] {
        let manager = PgManager::new(config.clone())
            .automatic_statement_cache(true)
            .statement_cache_capacity(4);
        let pool =
            Builder::new().max_size(1).health_check_after(window).build(manager.clone()).unwrap();
        // Deadlines from zero up cut the query at each await point in turn: before the
        // prepare, during it, between prepare and execute, during the execute.
        let mut completed = 0;
        for step in 0..300u64 {
            let k = (step % 7) as i32;
            let sql = format!("SELECT {k}::int + $1");
            {
                let conn = pool.get().await.unwrap();
                let cut = Duration::from_micros(step * 5);
                if let Ok(result) =
                    tokio::time::timeout(cut, conn.query_one(sql.as_str(), &[&1i32])).await
                {
                    assert_eq!(result.unwrap().get::<_, i32>(0), k + 1);
                    completed += 1;
                }
            }
            // At the next checkout, every statement the server holds for this session
            // is one the cache holds: a prepare cut after its Parse left an orphan,
            // which the checkout purged.
            let conn = pool.get().await.unwrap();
            conn.ready().await.unwrap();
            let stats = conn.statement_cache_stats();
            assert!(stats.len <= 4, "{stats:?}");
            assert_eq!(
                server_statements(&conn).await,
                stats.len as i64,
                "after step {step} ({window:?})"
            );
            // And the cache still answers.
            assert_eq!(
                conn.query_one(sql.as_str(), &[&1i32]).await.unwrap().get::<_, i32>(0),
                k + 1
            );
        }
        assert!(completed > 0, "some queries ran to the end");
        let stats = manager.statement_cache_stats();
        // A miss whose prepare was cut never reached the cache: every statement cached
        // now or evicted came from a miss.
        assert!(stats.misses >= stats.len as u64 + stats.evictions, "{stats:?}");
        assert_eq!(pool.status().open, 1, "cancellation never cost the connection");
    }
}

#[tokio::test]
async fn custom_types_resolve_after_clean_recycling() {
    let Some(config) = server() else { return };
    let (first, second) = (unique("poolside_enum_a"), unique("poolside_enum_b"));
    let admin = admin(&config).await;
    admin
        .batch_execute(&format!(
            "CREATE TYPE {first} AS ENUM ('x'); CREATE TYPE {second} AS ENUM ('y')"
        ))
        .await
        .unwrap();
    let pool = Builder::new()
        .max_size(1)
        .build(PgManager::new(config).recycling(RecyclingMethod::Clean))
        .unwrap();
    {
        // Resolving a custom type makes tokio-postgres prepare its type-lookup query.
        let conn = pool.get().await.unwrap();
        let statement = conn.prepare(&format!("SELECT 'x'::{first}")).await.unwrap();
        assert_eq!(statement.columns()[0].type_().name(), first);
    }
    // DISCARD ALL dropped that lookup statement on the server: the next lookup must
    // prepare it again rather than fail with "prepared statement does not exist".
    let conn = pool.get().await.unwrap();
    let statement = conn.prepare(&format!("SELECT 'y'::{second}")).await.unwrap();
    assert_eq!(statement.columns()[0].type_().name(), second);
    drop((statement, conn));
    admin.batch_execute(&format!("DROP TYPE {first}; DROP TYPE {second}")).await.unwrap();
}
