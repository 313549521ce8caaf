//! Lifecycle hooks: prepare every new connection, vet it before each checkout, reset
//! it after each return, and watch every close, with per-connection metadata.
//!
//! The "connection" here is an in-memory session (a list of settings and temporary
//! tables) so the example runs anywhere; with `PgManager` the hooks would run
//! `SET application_name`, `SELECT 1` and `DISCARD ALL` instead.
//!
//! Run: `cargo run -p poolside-connpool --example lifecycle_hooks`

use poolside_connpool::{CloseReason, Manager, Pool, WaitPolicy};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stand-in for a database session: settings and temporary tables that the
/// previous borrower may have left behind.
#[derive(Debug, Default)]
struct Session {
    settings: Vec<String>,
    temp_tables: Vec<String>,
    poisoned: bool,
}

struct Sessions;

impl Manager for Sessions {
    type Connection = Session;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<Session, Self::Error> {
        Ok(Session::default())
    }
    async fn check(&self, _: &mut Session) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let closes: Arc<Mutex<Vec<(u64, CloseReason)>>> = Arc::default();
    let log = closes.clone();
    let pool: Pool<Sessions> = Pool::builder()
        .max_size(4)
        .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
        // Once per new connection, before anyone sees it.
        .manager(Sessions)
        .after_connect(|conn, meta| {
            Box::pin(async move {
                conn.settings.push(format!("application_name=worker-{}", meta.id));
                Ok(())
            })
        })
        // Before every checkout of an idle connection: retire it after 3 uses.
        .before_acquire(|_conn, meta| Box::pin(async move { Ok(meta.checkouts < 3) }))
        // After every return, in a task (the dropping caller is never slowed): reset
        // the session, or close it when it cannot be reset.
        .after_release(|conn, _meta| {
            Box::pin(async move {
                if conn.poisoned {
                    return Ok(false);
                }
                conn.temp_tables.clear(); // DISCARD ALL
                conn.settings.truncate(1); // keep what after_connect set
                Ok(true)
            })
        })
        .on_close(move |meta, reason| log.lock().unwrap().push((meta.id, reason)))
        .build()
        .expect("valid settings");

    // A borrower leaves state behind; the next one finds a clean session.
    {
        let mut conn = pool.get().await.unwrap();
        conn.settings.push("search_path=tenant_7".into());
        conn.temp_tables.push("scratch".into());
        println!("first borrower: {:?} (meta {:?})", *conn, conn.meta());
    }
    tokio::task::yield_now().await; // let the after_release task run
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.settings, ["application_name=worker-1"]);
        assert!(conn.temp_tables.is_empty());
        println!("second borrower: {:?}, checkout #{}", *conn, conn.meta().checkouts);
    }
    tokio::task::yield_now().await;

    // A borrower poisons its session: after_release closes it.
    pool.get().await.unwrap().poisoned = true;
    tokio::task::yield_now().await;
    assert_eq!(closes.lock().unwrap().last(), Some(&(1, CloseReason::Hook)));

    // A connection made elsewhere joins the pool (and is handed back when full).
    let adopted = pool.add(Session::default()).expect("room for it");
    println!("adopted connection {}", adopted.id);

    // retain sees the metadata too.
    let dropped = pool.retain(|_, meta| meta.id != adopted.id).unwrap();
    assert_eq!(dropped, 1);

    pool.close();
    println!("closes (id, reason): {:?}", closes.lock().unwrap());
    println!("final status: {:?}", pool.status());
}
