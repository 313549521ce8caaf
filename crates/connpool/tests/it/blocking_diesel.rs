//! The diesel manager on diesel's bundled SQLite backend (feature `diesel`).
#![cfg(feature = "diesel")]

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;
use poolside_connpool::blocking::Builder;
use poolside_connpool::blocking::diesel::DieselManager;
use poolside_core::Snapshot;
use std::thread;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[test]
fn threads_share_a_diesel_sqlite_database_through_the_pool() {
    let dir = std::env::temp_dir().join(format!("poolside-diesel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = dir.join("diesel.db").to_string_lossy().into_owned();
    let pool = Builder::new()
        .max_size(4)
        .after_connect(|conn: &mut SqliteConnection| {
            conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")?;
            Ok(())
        })
        .build(DieselManager::<SqliteConnection>::new(url))
        .unwrap();
    pool.get()
        .unwrap()
        .batch_execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, t INTEGER)")
        .unwrap();
    thread::scope(|s| {
        for t in 0..8i32 {
            let pool = &pool;
            s.spawn(move || {
                for _ in 0..25 {
                    let mut conn = pool.get().unwrap();
                    diesel::sql_query("INSERT INTO hits (t) VALUES (?)")
                        .bind::<diesel::sql_types::Integer, _>(t)
                        .execute(&mut *conn)
                        .unwrap();
                }
            });
        }
    });
    let mut conn = pool.get().unwrap();
    let count: Count =
        diesel::sql_query("SELECT count(*) AS n FROM hits").get_result(&mut *conn).unwrap();
    assert_eq!(count.n, 200);
    drop(conn);
    assert!(pool.status().open <= 4);
    assert_eq!(Snapshot::of(&pool).value("closed_broken"), Some(0));
    drop(pool);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_url_is_a_connect_error_and_leaks_no_slot() {
    let pool = Builder::new()
        .max_size(1)
        .connect_retries(0)
        .build(DieselManager::<SqliteConnection>::new("/nonexistent-dir/poolside/x.db"))
        .unwrap();
    match pool.get() {
        Err(poolside_connpool::GetError::Connect(_)) => {}
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("connected to a path that cannot exist"),
    }
    assert_eq!(pool.status().open, 0);
}
