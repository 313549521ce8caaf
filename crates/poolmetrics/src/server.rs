//! The built-in scrape endpoint (feature `server`): `/metrics` (Prometheus text) and
//! `/debug/vars` (JSON).
//!
//! One accept thread hands every connection to a thread of its own, so clients are
//! served independently: a client that sends nothing, or a byte a second, delays no
//! one else. Each connection has one deadline for the whole exchange (reading the
//! request and writing the answer), after which it is closed whatever the client
//! does; and at most `max_connections` are served at once — a connection beyond that
//! is answered `503` at once and closed. Request heads are parsed by `httparse`.
//! Every answer closes its connection (`Connection: close`), as Prometheus expects.

use crate::{MetricsError, PoolMetrics};
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default bound on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// The largest accepted [`ServerBuilder::max_connections`].
pub const MAX_CONNECTIONS_LIMIT: usize = 4096;
/// Default deadline for one whole request: reading it and writing the answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest accepted [`ServerBuilder::request_timeout`].
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The largest request head accepted; scrapers send a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The most request headers parsed.
const MAX_HEADERS: usize = 64;

/// Settings of the built-in endpoint, from [`PoolMetrics::server`]; validated by
/// [`serve`](Self::serve).
///
/// ```
/// use std::time::Duration;
///
/// let metrics = poolside_metrics::PoolMetrics::new();
/// let server = metrics
///     .server()
///     .max_connections(16)
///     .request_timeout(Duration::from_secs(2))
///     .serve("127.0.0.1:0")?;
/// # drop(server);
/// assert!(metrics.server().max_connections(0).serve("127.0.0.1:0").is_err());
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    metrics: PoolMetrics,
    max_connections: usize,
    request_timeout: Duration,
}

impl ServerBuilder {
    /// The most connections served at once (default [`DEFAULT_MAX_CONNECTIONS`], 1 to
    /// [`MAX_CONNECTIONS_LIMIT`]); one beyond it is answered `503 Service
    /// Unavailable` and closed.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// assert!(metrics.server().max_connections(usize::MAX).serve("127.0.0.1:0").is_err());
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The deadline of one whole request, from accepting the connection to the last
    /// byte of the answer (default [`DEFAULT_REQUEST_TIMEOUT`], above zero and at most
    /// [`MAX_REQUEST_TIMEOUT`]). A connection still open then is closed.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let too_long = metrics.server().request_timeout(std::time::Duration::MAX);
    /// assert!(too_long.serve("127.0.0.1:0").is_err());
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Validates the settings, binds `addr` and starts serving `GET /metrics`
    /// (Prometheus text exposition, read from the pools on each scrape) and
    /// `GET /debug/vars` (a JSON snapshot of every pool).
    ///
    /// Fails with [`MetricsError::InvalidConfig`] for settings out of range,
    /// [`MetricsError::InvalidAddress`] when `addr` does not parse or resolve and
    /// [`MetricsError::Bind`] when it cannot be bound.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let err = metrics.server().serve("no such address").unwrap_err();
    /// assert!(matches!(err, poolside_metrics::MetricsError::InvalidAddress { .. }));
    /// ```
    pub fn serve(self, addr: &str) -> Result<MetricsServer, MetricsError> {
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(MetricsError::InvalidConfig("max_connections must be between 1 and 4096"));
        }
        if self.request_timeout.is_zero() || self.request_timeout > MAX_REQUEST_TIMEOUT {
            return Err(MetricsError::InvalidConfig(
                "request_timeout must be above zero and at most one hour",
            ));
        }
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
        let acceptor = Acceptor {
            metrics: self.metrics,
            stop: stop.clone(),
            active: Arc::new(AtomicUsize::new(0)),
            max_connections: self.max_connections,
            request_timeout: self.request_timeout,
        };
        let thread = std::thread::Builder::new()
            .name("poolside-metrics-http".into())
            .spawn(move || acceptor.run(&listener))
            .map_err(|source| MetricsError::Spawn { source })?;
        tracing::info!(%local_addr, "serving /metrics and /debug/vars");
        Ok(MetricsServer { local_addr, stop, thread: Some(thread) })
    }
}

/// A running metrics endpoint; dropping it (or [`MetricsServer::shutdown`]) stops the
/// listener and joins its accept thread. Connections already accepted finish (or
/// reach their deadline) on their own threads.
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
    /// Serves `GET /metrics` and `GET /debug/vars` on `addr` with default settings
    /// (feature `server`); the same as `self.server().serve(addr)`.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let server = metrics.serve("127.0.0.1:0")?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn serve(&self, addr: &str) -> Result<MetricsServer, MetricsError> {
        self.server().serve(addr)
    }

    /// Starts a [`ServerBuilder`] for the built-in endpoint (feature `server`).
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let server = metrics.server().max_connections(8).serve("127.0.0.1:0")?;
    /// # drop(server);
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn server(&self) -> ServerBuilder {
        ServerBuilder {
            metrics: self.clone(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    ///
    /// ```
    /// let server = poolside_metrics::PoolMetrics::new().serve("127.0.0.1:0")?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the listener and joins its accept thread.
    ///
    /// ```
    /// let server = poolside_metrics::PoolMetrics::new().serve("127.0.0.1:0")?;
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpListener::bind(addr).is_ok(), "the port is free again");
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
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

struct Acceptor {
    metrics: PoolMetrics,
    stop: Arc<AtomicBool>,
    /// Connections being served; a slot is taken before a connection's thread starts
    /// and given back when the thread ends, whatever the outcome.
    active: Arc<AtomicUsize>,
    max_connections: usize,
    request_timeout: Duration,
}

/// Gives back a connection slot when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Acceptor {
    fn run(self, listener: &TcpListener) {
        for conn in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            match conn {
                Ok(stream) => self.dispatch(stream),
                Err(err) => {
                    tracing::warn!(%err, "accepting a metrics connection failed");
                    // Out of file descriptors and similar: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn dispatch(&self, stream: TcpStream) {
        // The deadline starts at accept; the timeout is at most an hour, so the sum
        // cannot overflow, and if it did the connection would simply get no time.
        let now = Instant::now();
        let deadline = now.checked_add(self.request_timeout).unwrap_or(now);
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
            let _slot = Slot(self.active.clone());
            tracing::debug!(limit = self.max_connections, "metrics connection refused: too many");
            refuse(stream);
            return;
        }
        let slot = Slot(self.active.clone());
        let metrics = self.metrics.clone();
        let spawned =
            std::thread::Builder::new().name("poolside-metrics-conn".into()).spawn(move || {
                let _slot = slot;
                if let Err(err) = serve_connection(stream, &metrics, deadline) {
                    tracing::debug!(%err, "metrics request ended without an answer");
                }
            });
        if let Err(err) = spawned {
            // The closure (with the stream and the slot) was dropped: connection
            // closed, slot given back.
            tracing::warn!(%err, "cannot start a thread for a metrics connection");
        }
    }
}

/// Answers `503` without waiting for the request, and closes.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.shutdown(Shutdown::Both);
}

/// The time left before `deadline`, or a `TimedOut` error when none is.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "request deadline reached"))
    } else {
        Ok(left)
    }
}

/// A parsed request line: method and path (without the query).
struct Request {
    method: String,
    path: String,
}

enum Head {
    Complete(Request),
    /// The client closed before sending a whole head.
    Closed,
    /// Not HTTP, or too large: answered with this status.
    Bad(&'static str),
}

fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<Head> {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = match stream.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request deadline reached"));
            }
            Err(err) => return Err(err),
        };
        if n == 0 {
            return Ok(Head::Closed);
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or_default().to_owned();
                let target = request.path.unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default().to_owned();
                return Ok(Head::Complete(Request { method, path }));
            }
            Ok(httparse::Status::Partial) if len == buf.len() => {
                return Ok(Head::Bad("431 Request Header Fields Too Large"));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Ok(Head::Bad("431 Request Header Fields Too Large"));
            }
            Err(_) => return Ok(Head::Bad("400 Bad Request")),
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    metrics: &PoolMetrics,
    deadline: Instant,
) -> io::Result<()> {
    let head = read_head(&mut stream, deadline);
    let (status, content_type, body, method) = match head {
        Ok(Head::Complete(request)) => {
            let (status, content_type, body) = route(&request, metrics);
            (status, content_type, body, request.method)
        }
        Ok(Head::Closed) => return Ok(()),
        Ok(Head::Bad(status)) => {
            (status, "text/plain; charset=utf-8", format!("{status}\n"), String::new())
        }
        Err(err) if err.kind() == io::ErrorKind::TimedOut => {
            // Deadline reached while reading: close (an idle or trickling client
            // gets no more of this thread's time).
            let _ = stream.shutdown(Shutdown::Both);
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if method != "HEAD" {
        response.push_str(&body);
    }
    let written = write_all_by(&mut stream, response.as_bytes(), deadline);
    let _ = stream.shutdown(Shutdown::Write);
    written
}

fn route(request: &Request, metrics: &PoolMetrics) -> (&'static str, &'static str, String) {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", crate::CONTENT_TYPE, metrics.render_prometheus())
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
    }
}

/// Writes all of `data` before `deadline`, or fails with `TimedOut`: a client that
/// does not read cannot hold the connection past it.
fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(data) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "client closed")),
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request deadline reached"));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
