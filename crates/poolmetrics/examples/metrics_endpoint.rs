//! A service with one pool of every kind, observable at /metrics and /debug/vars.
//!
//! Runs 64 tasks against the service's connection pool for two seconds while the
//! other pools do some work, scrapes its own endpoint like Prometheus would, and
//! prints a few of the series.
//!
//! `cargo run -p poolside-metrics --features server --example metrics_endpoint`

mod service;

use poolside_metrics::PoolMetrics;
use service::Service;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let metrics = PoolMetrics::new();
    let service = std::sync::Arc::new(Service::start(&metrics).await?);
    let server = metrics.serve("127.0.0.1:0")?;
    println!("serving http://{}/metrics and /debug/vars", server.local_addr());

    let deadline = Instant::now() + Duration::from_secs(2);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let db = service.db.clone();
            tokio::spawn(async move {
                let mut served = 0u64;
                while Instant::now() < deadline {
                    let conn = db.get().await.expect("the pool serves within a second");
                    tokio::time::sleep(Duration::from_micros(200)).await; // "a query"
                    drop(conn);
                    served += 1;
                }
                served
            })
        })
        .collect();
    for _ in 0..10 {
        service.exercise().await?;
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    println!("{total} gets served by 64 tasks on 8 connections");

    let addr = server.local_addr();
    let text =
        tokio::task::spawn_blocking(move || scrape(&format!("http://{addr}/metrics"))).await??;
    if std::env::var_os("DUMP").is_some() {
        println!("{text}");
    }
    for line in text.lines().filter(|l| {
        l.starts_with("poolside_connpool_acquires_total")
            || l.starts_with("poolside_connpool_open")
            || l.starts_with("poolside_connpool_acquire_wait_seconds_count")
            || l.starts_with("poolside_connpool_failover_state")
            || l.starts_with("poolside_workerpool_completed_total")
    }) {
        println!("{line}");
    }
    assert!(text.contains(r#"poolside_connpool_acquires_total{pool="orders-db",kind="connpool"}"#));
    assert!(text.contains(r#"poolside_connpool_open{pool="sessions",kind="connpool",shard="1"}"#));
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
