//! The scrape endpoint: `/metrics` (Prometheus text) and `/debug/vars` (JSON).
//!
//! A small blocking HTTP/1.1 responder on its own thread, so the endpoint works in
//! synchronous and asynchronous programs alike and needs no runtime. Requests are
//! handled one at a time with short timeouts: a scrape endpoint serves a handful of
//! collectors, and a slow or hostile client cannot hold it longer than the timeout.

use crate::{MetricsError, PoolMetrics};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head accepted; scrapers send a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// A running metrics endpoint; dropping it (or [`MetricsServer::shutdown`]) stops the
/// listener and joins its thread.
///
/// ```
/// use std::io::{Read, Write};
///
/// let metrics = poolside_metrics::PoolMetrics::new();
/// let server = metrics.serve("127.0.0.1:0")?; // port 0: any free port
/// let mut conn = std::net::TcpStream::connect(server.local_addr())?;
/// conn.write_all(b"GET /debug/vars HTTP/1.1\r\nHost: x\r\n\r\n")?;
/// let mut answer = String::new();
/// conn.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK"));
/// assert!(answer.ends_with(r#"{"pools":[]}"#));
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PoolMetrics {
    /// Serves `GET /metrics` (Prometheus text exposition, collected on each scrape) and
    /// `GET /debug/vars` (a JSON snapshot of every pool) on `addr`.
    ///
    /// Fails with [`MetricsError::InvalidAddress`] when `addr` does not parse or
    /// resolve and [`MetricsError::Bind`] when it cannot be bound.
    pub fn serve(&self, addr: &str) -> Result<MetricsServer, MetricsError> {
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| MetricsError::InvalidAddress { addr: addr.to_owned(), source })?
            .collect();
        if resolved.is_empty() {
            return Err(MetricsError::InvalidAddress {
                addr: addr.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "resolves to no address"),
            });
        }
        let listener = TcpListener::bind(&resolved[..])
            .map_err(|source| MetricsError::Bind { addr: addr.to_owned(), source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr: addr.to_owned(), source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let metrics = self.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("poolside-metrics-http".into())
                .spawn(move || accept_loop(&listener, &metrics, &stop))
                .map_err(|source| MetricsError::Bind { addr: addr.to_owned(), source })?
        };
        tracing::info!(%local_addr, "serving /metrics and /debug/vars");
        Ok(MetricsServer { local_addr, stop, thread: Some(thread) })
    }
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the listener and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), Duration::from_secs(1));
        let _ = thread.join();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard address is
/// reached through loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(listener: &TcpListener, metrics: &PoolMetrics, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                if let Err(err) = handle(stream, metrics) {
                    tracing::debug!(%err, "metrics request failed");
                }
            }
            Err(err) => {
                tracing::warn!(%err, "accepting a metrics connection failed");
                // Out of file descriptors and similar: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn handle(mut stream: TcpStream, metrics: &PoolMetrics) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_request_head(&mut stream)?;
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render_prometheus())
        }
        ("GET" | "HEAD", "/debug/vars") => ("200 OK", "application/json", metrics.snapshot_json()),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "poolside metrics: /metrics (Prometheus), /debug/vars (JSON)\n".to_owned(),
        ),
        ("GET" | "HEAD", _) => {
            ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_owned())
        }
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Reads up to the blank line ending the request head (bodies are not used).
fn read_request_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
