//! A connection pool under load, observable at /metrics and /debug/vars.
//!
//! Runs 64 tasks against a 8-connection pool for two seconds, scrapes its own
//! endpoint like Prometheus would, and prints the pool's series.
//!
//! `cargo run -p poolside-metrics --example metrics_endpoint`

use poolside_connpool::{Builder, Manager, WaitPolicy};
use poolside_metrics::PoolMetrics;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A stand-in backend: "connections" are numbers, connecting takes a millisecond.
struct Backend {
    opened: AtomicU64,
}

impl Manager for Backend {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(self.opened.fetch_add(1, Ordering::Relaxed))
    }

    async fn check(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(
        Builder::new()
            .max_size(8)
            .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
            .events(metrics.timing_hook("connpool", "demo-db")?)
            .build(Backend { opened: AtomicU64::new(0) })?,
    );
    let _registration = metrics.register("demo-db", &pool)?;
    let server = metrics.serve("127.0.0.1:0")?;
    println!("serving http://{}/metrics and /debug/vars", server.local_addr());

    let deadline = Instant::now() + Duration::from_secs(2);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut served = 0u64;
                while Instant::now() < deadline {
                    let conn = pool.get().await.expect("the pool serves within a second");
                    tokio::time::sleep(Duration::from_micros(200)).await; // "a query"
                    drop(conn);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    println!("{total} gets served by 64 tasks on 8 connections");

    let addr = server.local_addr();
    let text =
        tokio::task::spawn_blocking(move || scrape(&format!("http://{addr}/metrics"))).await??;
    for line in text.lines().filter(|l| {
        l.starts_with("poolside_connpool_acquires")
            || l.starts_with("poolside_connpool_open")
            || l.starts_with("poolside_connpool_dials")
            || l.starts_with("poolside_connpool_acquire_wait_seconds_count")
            || l.starts_with("poolside_connpool_acquire_wait_seconds_sum")
    }) {
        println!("{line}");
    }
    assert!(text.contains(r#"poolside_connpool_acquires{pool="demo-db",kind="connpool"}"#));
    Ok(())
}

/// GETs `url` over loopback with a plain HTTP/1.1 request.
fn scrape(url: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut conn = std::net::TcpStream::connect(host)?;
    write!(conn, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}
