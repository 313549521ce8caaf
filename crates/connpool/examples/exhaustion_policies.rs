//! Choosing the exhaustion policy on purpose: queue (FIFO), fail fast, or wait with a
//! timeout — each an explicit `WaitPolicy`, each counted in the pool's stats.
//!
//! `cargo run -p poolside-connpool --example exhaustion_policies`

use poolside_connpool::{Builder, GetError, Manager, PoolError, WaitPolicy};
use poolside_core::Snapshot;
use std::convert::Infallible;
use std::time::Duration;

struct Numbers;

impl Manager for Numbers {
    type Connection = u32;
    type Error = Infallible;
    async fn connect(&self) -> Result<u32, Infallible> {
        Ok(7)
    }
    async fn check(&self, _: &mut u32) -> Result<(), Infallible> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Fail fast: a full pool answers at once.
    let pool = Builder::new().max_size(1).wait(WaitPolicy::FailFast).build(Numbers)?;
    let held = pool.get().await?;
    match pool.get().await {
        Err(GetError::Pool(PoolError::Exhausted)) => println!("FailFast: exhausted at once"),
        other => return Err(format!("unexpected {:?}", other.map(|_| ())).into()),
    }
    drop(held);

    // Timeout: wait a bounded time.
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(Duration::from_millis(50)))
        .build(Numbers)?;
    let held = pool.get().await?;
    let started = tokio::time::Instant::now();
    let result = pool.get().await;
    println!("Timeout(50ms): {:?} after {:?}", result.map(|_| ()).unwrap_err(), started.elapsed());
    drop(held);

    // Queue: wait in line; the connection goes to the oldest waiter.
    let pool =
        std::sync::Arc::new(Builder::new().max_size(1).wait(WaitPolicy::Queue).build(Numbers)?);
    let held = pool.get().await?;
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|c| *c) })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    println!("Queue: {} waiting", pool.status().waiting);
    drop(held);
    println!("Queue: the waiter got connection {}", waiter.await??);
    let stats = Snapshot::of(&*pool);
    println!(
        "acquires {:?}, exhaustions {:?}",
        stats.value("acquires"),
        stats.value("exhaustions")
    );
    Ok(())
}
