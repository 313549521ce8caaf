//! The PostgreSQL adapter tests of the two pools our users come from, translated to
//! our API: deadpool-postgres (`postgres/tests/postgres.rs` and `async_trait.rs`,
//! bikeshedder/deadpool @ 375ffee) and bb8-postgres (which has no tests: its examples
//! `static_select`, `txn` and `custom_state`, and its manager's `is_valid` /
//! `has_broken`, djc/bb8 @ 15a6c5a). Each test names, in a one-line comment, the peer
//! test or behaviour it mirrors; none of the peers' code is copied. Every test runs
//! against the real server `cargo xtask services` starts (`POOLSIDE_PG_URL`).
//!
//! How the peers' vocabulary maps onto ours: deadpool's `Object` / bb8's
//! `PooledConnection` is our `PgClient` behind a `PooledConn`; deadpool's
//! `client.statement_cache.size()` / `.clear()` are `statement_cache_stats().len` /
//! `clear_statement_cache()`, and `pool.manager().statement_caches.clear()` is
//! `PgManager::clear_statement_caches`; `prepare_cached` and `prepare_typed_cached`
//! keep their names; `RecyclingMethod` keeps its variants; deadpool's `recycle` and
//! bb8's `is_valid` are `Manager::check` (run when a connection sat unused for
//! `health_check_after`; zero here where the peers check every checkout); bb8's
//! `has_broken` is `Manager::is_broken`; bb8's `CustomizeConnection::on_acquire` is
//! `after_connect`.
//!
//! Design differences, documented in the crate, that the translations assert:
//!
//! - `PgClient::transaction` returns tokio-postgres' own `Transaction`, which has no
//!   `prepare_cached`: a cached statement is prepared before the transaction begins
//!   and runs inside it (deadpool's `Transaction` wraps the client's cache).
//! - `RecyclingMethod::Clean` does what `DISCARD ALL` does, prepared statements
//!   included, so it also empties the statement cache; deadpool's `Clean` leaves
//!   prepared statements and cached plans alone and keeps its cache.
//! - A transaction the last user left open with SQL text (`BEGIN`, `START
//!   TRANSACTION`) through `PgClient`'s methods is rolled back before the next user's
//!   first statement with every recycling method; deadpool and bb8 hand the
//!   connection on inside it unless the method resets the session.
//! - A cached statement the server has forgotten (SQLSTATE `26000`, e.g. after a
//!   `DISCARD ALL`) or whose result type changed (`0A000`, e.g. after `ALTER TABLE`)
//!   and that a caller ran through `PgClient` is dropped from the cache, so the next
//!   `prepare_cached` prepares it again (the failing call still fails: the caller
//!   holds the stale statement). SQL text run through `PgClient` that contains
//!   `DISCARD` or `DEALLOCATE` empties the cache at once. deadpool keeps handing out
//!   the stale statement.
//! - `Fast` and `Verified` keep the session otherwise (settings, temporary tables,
//!   `LISTEN`, prepared statements), as in deadpool; `Clean` resets all of it.
//! - Connections are judged at checkout only when they sat unused for
//!   `health_check_after` (500 ms by default); deadpool recycles and bb8 validates at
//!   every checkout. A backend the server ended is still never handed out once its
//!   I/O task has seen the close (`is_broken` on return, `is_closed` in every check).
//!
//! Peer tests not translated:
//!
//! - deadpool-postgres `transaction_1`: `prepare_cached` on a transaction (see the
//!   first design difference; `transaction_2` is the translated form).
//! - deadpool-postgres `config_from_env` and `config_url`: the manager takes a
//!   `tokio_postgres::Config` (parse one from a URL); there is no deadpool-style
//!   config struct whose fields override the URL's. The pool's own settings from the
//!   environment are `config::Config::from_env`, tested in `tests/config_env.rs`.
//! - deadpool-postgres `async_trait.rs`: a compile-only check of `GenericClient` in a
//!   trait; `generic_client` below runs queries through `GenericClient` instead.
//! - Server restarts: `tests/postgres/outage.rs` and `tests/postgres_restart.rs`.
#![cfg(feature = "postgres")]

use crate::common::{admin, server, unique_ident};
use poolside_connpool::postgres::RecyclingMethod;
use poolside_connpool::{Builder, Pool, postgres::PgClient, postgres::PgManager};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Config, GenericClient, IsolationLevel, SimpleQueryMessage, Statement};

/// One connection, judged at every checkout (as the peers do).
fn pool_of_one(config: &Config, method: RecyclingMethod) -> Pool<PgManager> {
    Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .build(PgManager::new(config.clone()).recycling(method))
        .unwrap()
}

/// Every recycling method, `Custom` as deadpool's test spells it.
fn all_methods() -> [RecyclingMethod; 4] {
    [
        RecyclingMethod::Fast,
        RecyclingMethod::Verified,
        RecyclingMethod::Clean,
        RecyclingMethod::Custom("DISCARD ALL;".into()),
    ]
}

/// Whether two statements that return rows are one prepared statement (clones share
/// their column list).
fn same(a: &Statement, b: &Statement) -> bool {
    assert!(!a.columns().is_empty() && !b.columns().is_empty());
    std::ptr::eq(a.columns().as_ptr(), b.columns().as_ptr())
}

async fn backend_pid(conn: &PgClient) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

/// The server's count of this session's prepared statements, asked with the simple
/// query protocol so that asking prepares none.
async fn server_statements(conn: &PgClient) -> i64 {
    let messages = conn.simple_query("SELECT count(*) FROM pg_prepared_statements").await.unwrap();
    let count = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(|v| v.parse::<i64>().unwrap()),
        _ => None,
    });
    count.expect("one row")
}

/// Polls every future of `futures` together (so tokio-postgres pipelines their
/// requests on one connection) and returns their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    *output = Some(value);
                }
            }
        }
        if outputs.iter().all(Option::is_some) { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// Polls until `pred` holds (a backend's exit reaches the client asynchronously),
/// for at most 10 s.
async fn eventually(mut pred: impl FnMut() -> bool) -> bool {
    for _ in 0..400 {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

// ---------------------------------------------------------------------------
// deadpool-postgres
// ---------------------------------------------------------------------------

// deadpool-postgres: basic
#[tokio::test]
async fn a_cached_statement_runs_and_stays_in_the_connections_cache() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    let statement = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    let rows = conn.query(&statement, &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 3);
    assert_eq!(conn.statement_cache_stats().len, 1);
    let again = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    assert!(same(&again, &statement), "the second prepare is a cache hit");
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (1, 1, 1));
}

// deadpool-postgres: prepare_typed_cached
#[tokio::test]
async fn a_typed_cached_statement_takes_the_given_parameter_types() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    let statement = conn.prepare_typed_cached("SELECT 1 + $1", &[Type::INT2]).await.unwrap();
    assert_eq!(statement.params(), &[Type::INT2]);
    let rows = conn.query(&statement, &[&42i16]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 43);
    // The same text with other types is another statement; with the same types, a hit.
    let wide = conn.prepare_typed_cached("SELECT 1 + $1", &[Type::INT8]).await.unwrap();
    assert_eq!(wide.params(), &[Type::INT8]);
    let untyped = conn.prepare_cached("SELECT 1 + $1").await.unwrap();
    assert_eq!(untyped.params(), &[Type::INT4], "the server's own choice");
    let again = conn.prepare_typed_cached("SELECT 1 + $1", &[Type::INT2]).await.unwrap();
    assert!(same(&again, &statement));
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (3, 1, 3));
}

// deadpool-postgres: prepare_typed_error
#[tokio::test]
async fn a_parameter_of_another_type_than_the_typed_statement_is_refused() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    let statement = conn.prepare_typed_cached("SELECT 1 + $1", &[Type::INT2]).await.unwrap();
    let err = conn.query(&statement, &[&42i32]).await.unwrap_err();
    assert!(err.to_string().contains("error serializing parameter 0"), "{err}");
    // A client-side refusal: nothing was sent, the connection stays in service.
    assert_eq!(conn.query(&statement, &[&1i16]).await.unwrap()[0].get::<_, i32>(0), 2);
}

// deadpool-postgres: transaction_2
#[tokio::test]
async fn a_statement_cached_before_a_transaction_runs_inside_it() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let mut conn = pool.get().await.unwrap();
    let statement = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    {
        let tx = conn.transaction().await.unwrap();
        let rows = tx.query(&statement, &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 3);
        tx.commit().await.unwrap();
    }
    assert_eq!(conn.statement_cache_stats().len, 1);
}

// deadpool-postgres: transaction_pipeline
#[tokio::test]
async fn a_hundred_queries_pipelined_in_one_transaction_each_get_their_own_row() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let mut conn = pool.get().await.unwrap();
    let statement = conn.prepare_cached("SELECT 1 + $1").await.unwrap();
    let tx = conn.transaction().await.unwrap();
    let queries: Vec<_> = (0..100i32)
        .map(|i| {
            let (tx, statement) = (&tx, &statement);
            async move { tx.query_one(statement, &[&i]).await.unwrap().get::<_, i32>(0) }
        })
        .collect();
    let results = join_all(queries).await;
    assert_eq!(results, (1..=100).collect::<Vec<i32>>());
    tx.commit().await.unwrap();
}

// deadpool-postgres: transaction_builder
#[tokio::test]
async fn a_transaction_built_with_options_gets_them() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let mut conn = pool.get().await.unwrap();
    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::ReadUncommitted)
        .read_only(true)
        .deferrable(true)
        .start()
        .await
        .unwrap();
    assert_eq!(tx.query("SELECT 1 + 2", &[]).await.unwrap()[0].get::<_, i32>(0), 3);
    let level: String = tx.query_one("SHOW transaction_isolation", &[]).await.unwrap().get(0);
    assert_eq!(level, "read uncommitted");
    let read_only: String = tx.query_one("SHOW transaction_read_only", &[]).await.unwrap().get(0);
    assert_eq!(read_only, "on");
    tx.commit().await.unwrap();
}

/// Runs a query through any tokio-postgres `GenericClient`.
async fn add_through<C: GenericClient>(client: &C, a: i32) -> i32 {
    client.query_one("SELECT $1::int + 2", &[&a]).await.unwrap().get(0)
}

// deadpool-postgres: generic_client
#[tokio::test]
async fn the_pooled_client_and_its_transactions_are_generic_clients() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let mut conn = pool.get().await.unwrap();
    assert_eq!(add_through(&**conn, 1).await, 3);
    let tx = conn.transaction().await.unwrap();
    assert_eq!(add_through(&tx, 2).await, 4);
    tx.rollback().await.unwrap();
}

// deadpool-postgres: recycling_methods
#[tokio::test]
async fn every_recycling_method_hands_out_a_working_connection_twenty_times() {
    let Some(config) = server() else { return };
    for method in all_methods() {
        let pool = pool_of_one(&config, method.clone());
        let mut pids = Vec::new();
        for _ in 0..20 {
            let conn = pool.get().await.unwrap();
            let rows = conn.query("SELECT 1 + 2", &[]).await.unwrap();
            assert_eq!(rows[0].get::<_, i32>(0), 3, "{method:?}");
            pids.push(backend_pid(&conn).await);
        }
        pids.dedup();
        assert_eq!(pids.len(), 1, "{method:?}: one backend, recycled 19 times");
    }
}

// deadpool-postgres: statement_cache_clear
#[tokio::test]
async fn clearing_a_connections_cache_empties_it() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.statement_cache_stats().len, 0);
    conn.prepare_cached("SELECT 1;").await.unwrap();
    assert_eq!(conn.statement_cache_stats().len, 1);
    conn.clear_statement_cache();
    assert_eq!(conn.statement_cache_stats().len, 0);
    assert_eq!(server_statements(&conn).await, 0, "the server's statement was closed with it");
}

// deadpool-postgres: statement_caches_clear
#[tokio::test]
async fn clearing_the_managers_caches_empties_every_connections_cache() {
    let Some(config) = server() else { return };
    let manager = PgManager::new(config);
    let pool = Builder::new().max_size(2).build(manager.clone()).unwrap();
    let first = pool.get().await.unwrap();
    first.prepare_cached("SELECT 1;").await.unwrap();
    assert_eq!(first.statement_cache_stats().len, 1);
    let second = pool.get().await.unwrap();
    assert_eq!(second.statement_cache_stats().len, 0);
    second.prepare_cached("SELECT 1;").await.unwrap();
    assert_eq!(second.statement_cache_stats().len, 1);
    assert_eq!(manager.statement_cache_stats().len, 2);
    manager.clear_statement_caches();
    assert_eq!(first.statement_cache_stats().len, 0);
    assert_eq!(second.statement_cache_stats().len, 0);
    assert_eq!(manager.statement_cache_stats().len, 0);
    // Each cache prepares anew on its next use.
    first.prepare_cached("SELECT 1;").await.unwrap();
    assert_eq!(first.statement_cache_stats().misses, 2);
    assert_eq!(manager.statement_cache_stats().len, 1);
}

// deadpool-postgres: RecyclingMethod (a connection returned inside a transaction)
#[tokio::test]
async fn a_transaction_left_open_never_reaches_the_next_user() {
    let Some(config) = server() else { return };
    let table = unique_ident("poolside_peers_tx");
    let admin = admin(&config).await;
    admin.batch_execute(&format!("CREATE TABLE {table} (a int)")).await.unwrap();
    for method in all_methods() {
        for (opening, aborted) in [("BEGIN", false), ("start transaction", false), ("BEGIN", true)]
        {
            // Checked at every checkout, and not at all: the rollback does not hang
            // on the health check.
            for window in [Duration::ZERO, Duration::from_secs(3600)] {
                let pool = Builder::new()
                    .max_size(1)
                    .health_check_after(window)
                    .build(PgManager::new(config.clone()).recycling(method.clone()))
                    .unwrap();
                let case = format!("{method:?} {opening} aborted: {aborted} window: {window:?}");
                let pid = {
                    let conn = pool.get().await.unwrap();
                    let pid = backend_pid(&conn).await;
                    conn.batch_execute(opening).await.unwrap();
                    conn.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]).await.unwrap();
                    if aborted {
                        assert!(conn.batch_execute("SELECT 1/0").await.is_err());
                    }
                    pid
                };
                let conn = pool.get().await.unwrap();
                assert_eq!(backend_pid(&conn).await, pid, "{case}: rolled back, not replaced");
                let outside: bool = conn
                    .query_one("SELECT txid_current_if_assigned() IS NULL", &[])
                    .await
                    .unwrap()
                    .get(0);
                assert!(outside, "{case}: the next user is outside any transaction");
                drop(conn);
                let rows: i64 = admin
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(rows, 0, "{case}: the abandoned insert was rolled back");
            }
        }
    }
    admin.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

// deadpool-postgres: RecyclingMethod (a typed transaction dropped uncommitted)
#[tokio::test]
async fn a_transaction_dropped_uncommitted_is_rolled_back_before_the_next_user() {
    let Some(config) = server() else { return };
    let table = unique_ident("poolside_peers_txdrop");
    let admin = admin(&config).await;
    admin.batch_execute(&format!("CREATE TABLE {table} (a int)")).await.unwrap();
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::from_secs(3600))
        .build(PgManager::new(config.clone()).recycling(RecyclingMethod::Fast))
        .unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]).await.unwrap();
    }
    let conn = pool.get().await.unwrap();
    let outside: bool =
        conn.query_one("SELECT txid_current_if_assigned() IS NULL", &[]).await.unwrap().get(0);
    assert!(outside, "the next user is outside any transaction");
    let rows: i64 =
        conn.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(rows, 0);
    drop(conn);
    admin.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

/// The session state a user can leave behind: a setting, a temporary table, a
/// listener and an SQL-level prepared statement.
async fn leave_session_state(conn: &PgClient, table: &str) {
    conn.batch_execute(&format!(
        "SET application_name = 'left behind'; CREATE TEMPORARY TABLE {table} (a int); \
         LISTEN poolside_peers; PREPARE poolside_peers_left AS SELECT 1"
    ))
    .await
    .unwrap();
}

/// Which of the state `leave_session_state` leaves is still there.
async fn session_state(conn: &PgClient, table: &str) -> [bool; 4] {
    let row = conn
        .query_one(
            "SELECT current_setting('application_name') = 'left behind', \
             to_regclass($1) IS NOT NULL, \
             EXISTS (SELECT 1 FROM pg_listening_channels() c WHERE c = 'poolside_peers'), \
             EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'poolside_peers_left')",
            &[&format!("pg_temp.{table}")],
        )
        .await
        .unwrap();
    [row.get(0), row.get(1), row.get(2), row.get(3)]
}

// deadpool-postgres: RecyclingMethod::Clean (what each method keeps of the session)
#[tokio::test]
async fn clean_resets_the_session_and_fast_and_verified_keep_it() {
    let Some(config) = server() else { return };
    for (method, kept) in [
        (RecyclingMethod::Fast, true),
        (RecyclingMethod::Verified, true),
        (RecyclingMethod::Clean, false),
        (RecyclingMethod::Custom("DISCARD ALL".into()), false),
    ] {
        let table = unique_ident("poolside_peers_temp");
        let pool = pool_of_one(&config, method.clone());
        let pid = {
            let conn = pool.get().await.unwrap();
            leave_session_state(&conn, &table).await;
            conn.prepare_cached("SELECT 42").await.unwrap();
            backend_pid(&conn).await
        };
        let conn = pool.get().await.unwrap();
        assert_eq!(backend_pid(&conn).await, pid, "{method:?}: the same backend");
        assert_eq!(session_state(&conn, &table).await, [kept; 4], "{method:?}");
        let cached = conn.statement_cache_stats().len;
        assert_eq!(cached, usize::from(kept), "{method:?}: the cache follows the server");
        let answer: i32 = conn
            .query_one(&conn.prepare_cached("SELECT 42").await.unwrap(), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(answer, 42, "{method:?}");
    }
}

// deadpool-postgres: prepare_cached (after the server forgot the statement)
#[tokio::test]
async fn the_cache_recovers_from_discard_all_behind_its_back() {
    let Some(config) = server() else { return };
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    let statement = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    assert_eq!(conn.query_one(&statement, &[]).await.unwrap().get::<_, i32>(0), 3);

    // Through the raw client: the cache cannot see it. The first run of the
    // forgotten statement fails; the cache drops it, so the next prepare_cached
    // prepares it again.
    conn.client().batch_execute("DISCARD ALL").await.unwrap();
    let err = conn.query_one(&statement, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME), "{err}");
    let fresh = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    assert!(!same(&fresh, &statement), "prepared again");
    assert_eq!(conn.query_one(&fresh, &[]).await.unwrap().get::<_, i32>(0), 3);

    // Through PgClient: the cache empties at once, nothing fails.
    conn.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(conn.statement_cache_stats().len, 0);
    let third = conn.prepare_cached("SELECT 1 + 2").await.unwrap();
    assert_eq!(conn.query_one(&third, &[]).await.unwrap().get::<_, i32>(0), 3);
}

// deadpool-postgres: prepare_cached (cached plan must not change result type)
#[tokio::test]
async fn the_cache_recovers_from_a_schema_change() {
    let Some(config) = server() else { return };
    let table = unique_ident("poolside_peers_alter");
    let admin = admin(&config).await;
    admin
        .batch_execute(&format!("CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let pool = pool_of_one(&config, RecyclingMethod::Verified);
    let conn = pool.get().await.unwrap();
    let select = format!("SELECT * FROM {table}");
    let statement = conn.prepare_cached(&select).await.unwrap();
    assert_eq!(conn.query_one(&statement, &[]).await.unwrap().len(), 1);
    admin.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN b int DEFAULT 2")).await.unwrap();
    let err = conn.query_one(&statement, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{err}");
    let message = err.as_db_error().expect("a server error").message();
    assert_eq!(message, "cached plan must not change result type");
    let fresh = conn.prepare_cached(&select).await.unwrap();
    let row = conn.query_one(&fresh, &[]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (1, 2));
    assert_eq!(conn.statement_cache_stats().invalidations, 1);
    drop(conn);
    admin.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

// ---------------------------------------------------------------------------
// bb8-postgres
// ---------------------------------------------------------------------------

// bb8-postgres: examples/static_select.rs
#[tokio::test]
async fn a_prepared_select_returns_its_row() {
    let Some(config) = server() else { return };
    let pool = Builder::new().build(PgManager::new(config)).unwrap();
    let conn = pool.get().await.unwrap();
    let select = conn.prepare("SELECT 1").await.unwrap();
    assert_eq!(conn.query_one(&select, &[]).await.unwrap().get::<_, i32>(0), 1);
    assert_eq!(conn.statement_cache_stats().len, 0, "prepare does not cache");
}

// bb8-postgres: examples/txn.rs
#[tokio::test]
async fn a_statement_prepared_in_a_transaction_runs_and_commits() {
    let Some(config) = server() else { return };
    let table = unique_ident("poolside_peers_txn");
    let pool = Builder::new().build(PgManager::new(config.clone())).unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!("CREATE TEMPORARY TABLE {table} (a int)")).await.unwrap();
    let tx = conn.transaction().await.unwrap();
    let insert = tx.prepare(&format!("INSERT INTO {table} VALUES (1) RETURNING a")).await.unwrap();
    assert_eq!(tx.query_one(&insert, &[]).await.unwrap().get::<_, i32>(0), 1);
    tx.commit().await.unwrap();
    let rows: i64 =
        conn.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

// bb8-postgres: examples/custom_state.rs
#[tokio::test]
async fn statements_prepared_when_a_connection_opens_are_cache_hits_later() {
    let Some(config) = server() else { return };
    let pool = Builder::new()
        .max_size(1)
        .manager(PgManager::new(config))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.prepare_cached("SELECT 1").await?;
                conn.prepare_cached("SELECT 1 + 1 + 1").await?;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    let addition = conn.prepare_cached("SELECT 1 + 1 + 1").await.unwrap();
    assert_eq!(conn.query_one(&addition, &[]).await.unwrap().get::<_, i32>(0), 3);
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (2, 1, 2));
}

// bb8-postgres: is_valid / has_broken (a backend the server ended)
#[tokio::test]
async fn a_backend_the_server_ended_is_detected_and_replaced() {
    let Some(config) = server() else { return };
    let admin = admin(&config).await;
    for method in all_methods() {
        let pool = pool_of_one(&config, method.clone());
        // Idle when ended: the checkout's round trip finds it failing. `Fast` makes no
        // round trip, so it notices only once the I/O task has seen the close (the
        // held case below); until then the first query fails instead, as in deadpool.
        if method != RecyclingMethod::Fast {
            let pid = backend_pid(&pool.get().await.unwrap()).await;
            admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
            let conn = pool.get().await.unwrap();
            assert_ne!(backend_pid(&conn).await, pid, "{method:?}: replaced");
            drop(conn);
        }

        // Held when ended: the holder's query fails, and the pool closes the
        // connection on return instead of keeping it.
        let conn = pool.get().await.unwrap();
        let pid = backend_pid(&conn).await;
        admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
        assert!(eventually(|| conn.is_closed()).await, "{method:?}: the client saw the close");
        assert!(conn.query_one("SELECT 1", &[]).await.is_err());
        drop(conn);
        assert_eq!(pool.status().open, 0, "{method:?}: closed on return");
        let conn = pool.get().await.unwrap();
        assert_ne!(backend_pid(&conn).await, pid, "{method:?}: a fresh backend");
    }
}
