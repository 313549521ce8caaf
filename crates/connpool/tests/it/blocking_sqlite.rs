//! The rusqlite adapter on bundled SQLite: concurrent writers on one WAL file,
//! shared-cache memory databases, busy timeouts, PRAGMA setup, transactions left
//! open.
#![cfg(feature = "sqlite")]

use poolside_connpool::WaitPolicy;
use poolside_connpool::blocking::sqlite::SqliteManager;
use poolside_connpool::blocking::{Builder, Pool};
use poolside_core::Snapshot;
use rusqlite::{ErrorCode, TransactionBehavior};
use std::path::PathBuf;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// A fresh directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir()
            .join(format!("poolside-blocking-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wal_pool(dir: &TempDir, max_size: usize) -> Pool<SqliteManager> {
    let manager = SqliteManager::file(dir.0.join("shared.db"))
        .busy_timeout(Duration::from_secs(10))
        .wal(true);
    Builder::new()
        .max_size(max_size)
        .wait(WaitPolicy::Timeout(Duration::from_secs(30)))
        .after_connect(|conn: &mut rusqlite::Connection| {
            conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        })
        .build(manager)
        .unwrap()
}

#[test]
fn sixteen_threads_write_one_wal_file_without_busy_errors_and_exact_counts() {
    const THREADS: usize = 16;
    const ROWS: usize = 150;
    let dir = TempDir::new("wal");
    let pool = wal_pool(&dir, THREADS);
    pool.get()
        .unwrap()
        .execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, thread INTEGER NOT NULL, n INTEGER NOT NULL)",
        )
        .unwrap();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, barrier) = (&pool, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mut n = 0;
                while n < ROWS {
                    let mut conn = pool.get().expect("a connection within the wait");
                    if n % 3 == 0 {
                        // A small batch in one immediate transaction.
                        let tx = conn
                            .transaction_with_behavior(TransactionBehavior::Immediate)
                            .expect("BEGIN IMMEDIATE waits out the busy timeout");
                        for _ in 0..3.min(ROWS - n) {
                            tx.execute(
                                "INSERT INTO events (thread, n) VALUES (?1, ?2)",
                                (t as i64, n as i64),
                            )
                            .expect("insert");
                            n += 1;
                        }
                        tx.commit().expect("commit");
                    } else {
                        conn.execute(
                            "INSERT INTO events (thread, n) VALUES (?1, ?2)",
                            (t as i64, n as i64),
                        )
                        .expect("a single insert waits out the busy timeout");
                        n += 1;
                    }
                    // Readers alongside the writers (WAL lets them through).
                    let _: i64 = conn
                        .query_row(
                            "SELECT count(*) FROM events WHERE thread = ?1",
                            [t as i64],
                            |r| r.get(0),
                        )
                        .expect("read");
                }
            });
        }
    });
    let conn = pool.get().unwrap();
    let total: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(total as usize, THREADS * ROWS);
    let mut per_thread = conn
        .prepare("SELECT thread, count(*), count(DISTINCT n) FROM events GROUP BY thread")
        .unwrap();
    let rows: Vec<(i64, i64, i64)> = per_thread
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), THREADS);
    for (t, count, distinct) in rows {
        assert_eq!((count as usize, distinct as usize), (ROWS, ROWS), "thread {t}");
    }
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    drop(per_thread);
    drop(conn);
    let s = pool.status();
    assert_eq!(s.idle, s.open);
    assert!(s.open <= THREADS);
}

#[test]
fn the_after_connect_hook_sets_pragmas_on_every_connection() {
    let dir = TempDir::new("pragma");
    let pool = wal_pool(&dir, 4);
    let conns: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    for conn in &conns {
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }
    assert_eq!(Snapshot::of(&pool).value("dials"), Some(4));
}

#[test]
fn the_busy_timeout_decides_whether_a_writer_waits_or_fails() {
    let dir = TempDir::new("busy");
    let path = dir.0.join("busy.db");
    let impatient = Builder::new()
        .build(SqliteManager::file(&path).busy_timeout(Duration::from_millis(30)).wal(true))
        .unwrap();
    let patient = Builder::new()
        .build(SqliteManager::file(&path).busy_timeout(Duration::from_secs(5)).wal(true))
        .unwrap();
    impatient.get().unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let mut holder = patient.get().unwrap();
    let tx = holder.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
    // Within 30 ms the lock is not released: the impatient writer gets SQLITE_BUSY.
    let started = Instant::now();
    let err = impatient.get().unwrap().execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(25));
    // The patient writer waits for the commit instead.
    thread::scope(|s| {
        let writer = s.spawn(|| patient.get().unwrap().execute("INSERT INTO t VALUES (3)", []));
        thread::sleep(Duration::from_millis(50));
        tx.commit().unwrap();
        assert_eq!(writer.join().unwrap().unwrap(), 1);
    });
    drop(holder);
    let n: i64 =
        patient.get().unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn shared_cache_memory_databases_are_shared_by_the_pool_only() {
    let name = format!("poolside-mem-{}", std::process::id());
    let pool = Builder::new().max_size(3).build(SqliteManager::memory(&name)).unwrap();
    let keeper = pool.get().unwrap();
    keeper.execute_batch("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)").unwrap();
    keeper.execute("INSERT INTO kv VALUES ('a', 'b')", []).unwrap();
    let other = pool.get().unwrap();
    let v: String = other.query_row("SELECT v FROM kv WHERE k = 'a'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "b");
    // Another name is another database.
    let elsewhere = Builder::new().build(SqliteManager::memory(&format!("{name}-x"))).unwrap();
    assert!(
        elsewhere
            .get()
            .unwrap()
            .query_row("SELECT v FROM kv", [], |r| r.get::<_, String>(0))
            .is_err()
    );
}

#[test]
fn a_connection_returned_inside_a_transaction_is_closed_not_reused() {
    let dir = TempDir::new("tx");
    let pool = wal_pool(&dir, 2);
    pool.get().unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let conn = pool.get().unwrap();
    conn.execute_batch("BEGIN; INSERT INTO t VALUES (1);").unwrap();
    drop(conn); // still inside the transaction
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(1));
    let conn = pool.get().unwrap();
    assert!(conn.is_autocommit());
    let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "the abandoned transaction was rolled back");
}
