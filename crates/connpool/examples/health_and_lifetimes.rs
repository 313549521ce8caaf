//! Health checks before handing out, max lifetime and max idle time: a backend whose
//! connections go bad is detected and the connection replaced; old and idle
//! connections are recycled by the janitor.
//!
//! `cargo run -p poolside-connpool --example health_and_lifetimes`

use poolside_connpool::{Builder, Manager};
use poolside_core::Snapshot;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Connections are numbers; connection #1 goes stale and fails its health check.
struct Flaky {
    opened: AtomicU32,
}

impl Manager for Flaky {
    type Connection = u32;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<u32, Self::Error> {
        Ok(self.opened.fetch_add(1, Ordering::Relaxed))
    }
    async fn check(&self, conn: &mut u32) -> Result<(), Self::Error> {
        if *conn == 1 { Err(std::io::Error::other("connection went stale")) } else { Ok(()) }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Builder::new()
        .max_size(2)
        .min_idle(1)
        .health_check_after(Duration::ZERO) // check on every checkout, for the demo
        .max_lifetime(Duration::from_millis(300))
        .max_idle_time(Duration::from_millis(150))
        .build(Flaky { opened: AtomicU32::new(0) })?;
    for _ in 0..6 {
        let conn = pool.get().await?;
        println!("got connection #{}", *conn);
        drop(conn);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await; // let the janitor sweep
    let stats = Snapshot::of(&pool);
    for name in [
        "dials",
        "health_checks",
        "health_fails",
        "closed_broken",
        "closed_lifetime",
        "closed_idle",
        "open",
    ] {
        println!("{name:>16}: {:?}", stats.value(name).unwrap_or_default());
    }
    println!("min_idle keeps {} connection(s) warm", pool.status().idle);
    Ok(())
}
