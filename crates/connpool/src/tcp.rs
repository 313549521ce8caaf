//! A TCP adapter: pooled tokio `TcpStream`s with a pluggable health check.

use crate::manager::Manager;
use std::future::{Future, poll_fn};
use std::io;
use std::task::Poll;
use tokio::net::TcpStream;

/// How a [`TcpManager`] checks a stream before handing it out.
pub trait HealthCheck: Send + Sync + 'static {
    /// Returns an error if the stream should not be used.
    fn check(&self, stream: &mut TcpStream) -> impl Future<Output = io::Result<()>> + Send;
}

/// The default check: peeks without blocking; a stream the peer has closed (EOF) or
/// that reports an error is unhealthy, an open quiet stream is healthy.
///
/// ```
/// let _check = poolside_connpool::tcp::PeekCheck;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PeekCheck;

impl HealthCheck for PeekCheck {
    async fn check(&self, stream: &mut TcpStream) -> io::Result<()> {
        let mut byte = [0u8; 1];
        poll_fn(|cx| match stream.poll_peek(cx, &mut tokio::io::ReadBuf::new(&mut byte)) {
            Poll::Pending => Poll::Ready(Ok(())),
            Poll::Ready(Ok(0)) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed")))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        })
        .await
    }
}

/// Opens TCP connections to one address.
///
/// ```
/// use poolside_connpool::{Pool, tcp::TcpManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let pool = Pool::new(TcpManager::new(listener.local_addr()?.to_string()));
/// let stream = pool.get().await.unwrap();
/// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TcpManager<H = PeekCheck> {
    addr: String,
    check: H,
    nodelay: bool,
}

impl TcpManager<PeekCheck> {
    /// Connects to `addr` (`host:port`), checking streams with [`PeekCheck`].
    pub fn new(addr: impl Into<String>) -> Self {
        TcpManager { addr: addr.into(), check: PeekCheck, nodelay: true }
    }
}

impl<H: HealthCheck> TcpManager<H> {
    /// Uses another health check (e.g. a protocol-level ping).
    pub fn with_check<H2: HealthCheck>(self, check: H2) -> TcpManager<H2> {
        TcpManager { addr: self.addr, check, nodelay: self.nodelay }
    }

    /// Sets `TCP_NODELAY` on new streams (on by default).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }
}

impl<H: HealthCheck> Manager for TcpManager<H> {
    type Connection = TcpStream;
    type Error = io::Error;

    async fn connect(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(self.nodelay)?;
        Ok(stream)
    }

    async fn check(&self, conn: &mut TcpStream) -> io::Result<()> {
        self.check.check(conn).await
    }
}
