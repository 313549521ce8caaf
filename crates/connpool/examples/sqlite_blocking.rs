//! The blocking pool with SQLite (bundled, no server): a WAL database file shared by
//! eight writer threads, PRAGMAs set on every new connection, and the pool's
//! metrics at the end.
//!
//! Run with `cargo run -p poolside-connpool --features sqlite --example sqlite_blocking`.

use poolside_connpool::WaitPolicy;
use poolside_connpool::blocking::Builder;
use poolside_connpool::blocking::sqlite::{SqliteManager, rusqlite};
use poolside_core::Snapshot;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("poolside-sqlite-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let manager = SqliteManager::file(dir.join("orders.db"))
        .busy_timeout(Duration::from_secs(5)) // writers wait for each other
        .wal(true); // readers never block the writer
    let pool = Builder::new()
        .max_size(8)
        .min_idle(1)
        .max_lifetime(Duration::from_secs(30 * 60))
        .wait(WaitPolicy::Timeout(Duration::from_secs(2)))
        .after_connect(|conn: &mut rusqlite::Connection| {
            conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        })
        .build(manager)?;

    pool.get()?.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (
             id INTEGER PRIMARY KEY,
             worker INTEGER NOT NULL,
             amount INTEGER NOT NULL
         )",
    )?;

    std::thread::scope(|s| {
        for worker in 0..8i64 {
            let pool = &pool;
            s.spawn(move || {
                for amount in 1..=50i64 {
                    let conn = pool.get().expect("a connection within 2 s");
                    conn.execute(
                        "INSERT INTO orders (worker, amount) VALUES (?1, ?2)",
                        (worker, amount),
                    )
                    .expect("insert");
                }
            });
        }
    });

    let conn = pool.get()?;
    let (count, total): (i64, i64) =
        conn.query_row("SELECT count(*), sum(amount) FROM orders", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    println!("{count} orders, {total} in total");
    assert_eq!((count, total), (8 * 50, 8 * (50 * 51 / 2)));
    drop(conn);

    let status = pool.status();
    println!("pool: {status:?}");
    for entry in Snapshot::of(&pool).entries {
        println!("  {} = {}", entry.desc.name, entry.value);
    }
    pool.close();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
