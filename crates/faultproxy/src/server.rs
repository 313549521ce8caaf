//! Tiny loopback servers to put behind a proxy in tests.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::background::Background;

/// A tiny loopback test server speaking `Protocol`: [`EchoServer`] or [`LineServer`].
///
/// Every connection is served by its own task. [`shutdown`](Self::shutdown) stops
/// accepting, closes every connection and waits for every task; dropping the server
/// does the same without waiting.
///
/// ```
/// use poolside_faultproxy::{EchoServer, LineServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let echo: EchoServer = EchoServer::start()?;
/// let health: LineServer = LineServer::ping_pong()?;
/// assert_ne!(echo.local_addr(), health.local_addr());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer<Protocol> {
    local_addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    acceptor: Background,
    protocol: PhantomData<fn() -> Protocol>,
}

/// Marks a [`TestServer`] that echoes bytes; see [`EchoServer`].
///
/// ```
/// use poolside_faultproxy::{Echo, EchoServer, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let echo: TestServer<Echo> = EchoServer::start()?;
/// # drop(echo);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum Echo {}

/// Marks a [`TestServer`] that answers lines; see [`LineServer`].
///
/// ```
/// use poolside_faultproxy::{LineServer, Lines, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let health: TestServer<Lines> = LineServer::ping_pong()?;
/// # drop(health);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum Lines {}

impl<Protocol> TestServer<Protocol> {
    fn spawn<F>(serve: impl Fn(TcpStream) -> F + Send + 'static) -> io::Result<Self>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let local_addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let shutdown = CancellationToken::new();
        let accept = accept_loop(listener, serve, Arc::clone(&accepted), shutdown.clone());
        let acceptor = Background::spawn(shutdown, accept);
        Ok(Self { local_addr, accepted, acceptor, protocol: PhantomData })
    }

    /// The server's address (`127.0.0.1:<port>`).
    ///
    /// ```
    /// use poolside_faultproxy::EchoServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let echo = EchoServer::start()?;
    /// tokio::net::TcpStream::connect(echo.local_addr()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections the server has accepted.
    ///
    /// ```
    /// use poolside_faultproxy::LineServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = LineServer::ping_pong()?;
    /// assert_eq!(server.accepted(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops accepting, closes every connection and waits for every task to end;
    /// afterwards the port refuses connections.
    ///
    /// ```
    /// use poolside_faultproxy::EchoServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let echo = EchoServer::start()?;
    /// let addr = echo.local_addr();
    /// echo.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.acceptor.stop().await;
    }
}

async fn accept_loop<F>(
    listener: TcpListener,
    serve: impl Fn(TcpStream) -> F,
    accepted: Arc<AtomicU64>,
    shutdown: CancellationToken,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    // Declared after `connections`, so that an aborted loop (its future dropped)
    // closes the port before its connections: whoever sees the connections gone may
    // rely on the port refusing. Locals drop in reverse order, parameters last.
    let listener = listener;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            incoming = listener.accept() => match incoming {
                Ok((stream, _peer)) => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve(stream));
                }
                Err(error) => tracing::warn!(%error, "test server accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// A loopback TCP server that echoes every byte back, and half-closes when the client
/// does.
///
/// ```
/// use poolside_faultproxy::EchoServer;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = EchoServer::start()?;
/// let mut client = TcpStream::connect(echo.local_addr()).await?;
/// client.write_all(b"ping").await?;
/// client.shutdown().await?;
/// let mut reply = Vec::new();
/// client.read_to_end(&mut reply).await?;
/// assert_eq!(reply, b"ping");
/// echo.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub type EchoServer = TestServer<Echo>;

impl TestServer<Echo> {
    /// Binds `127.0.0.1:0` and starts echoing.
    ///
    /// # Errors
    ///
    /// The OS error if no loopback port can be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use poolside_faultproxy::EchoServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let echo = EchoServer::start()?;
    /// assert!(echo.local_addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start() -> io::Result<Self> {
        Self::spawn(echo)
    }
}

async fn echo(mut stream: TcpStream) {
    let (mut read, mut write) = stream.split();
    if tokio::io::copy(&mut read, &mut write).await.is_ok() {
        let _ = write.shutdown().await;
    }
}

/// A loopback server for a line protocol: every line received (without its `\n`) is
/// passed to a responder, whose answer is sent back followed by `\n`; a responder
/// answering `None` makes the server close the connection.
///
/// [`LineServer::ping_pong`] answers `PING` with `PONG`, the health check of a test
/// connection pool.
///
/// ```
/// use poolside_faultproxy::LineServer;
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// use tokio::net::TcpStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = LineServer::start(|line| Some(line.to_uppercase()))?;
/// let mut client = BufReader::new(TcpStream::connect(server.local_addr()).await?);
/// client.get_mut().write_all(b"hello\n").await?;
/// let mut reply = String::new();
/// client.read_line(&mut reply).await?;
/// assert_eq!(reply, "HELLO\n");
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub type LineServer = TestServer<Lines>;

impl TestServer<Lines> {
    /// Binds `127.0.0.1:0` and answers every line with `respond(line)`.
    ///
    /// # Errors
    ///
    /// The OS error if no loopback port can be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use poolside_faultproxy::LineServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = LineServer::start(|line| (line != "BYE").then(|| format!("got {line}")))?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(
        respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let respond = Arc::new(respond);
        Self::spawn(move |stream| answer_lines(stream, Arc::clone(&respond)))
    }

    /// A server answering `PING` with `PONG`, closing the connection on `QUIT`, and
    /// answering anything else with `ERR unknown command`.
    ///
    /// # Errors
    ///
    /// The OS error if no loopback port can be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use poolside_faultproxy::LineServer;
    /// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    /// use tokio::net::TcpStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = LineServer::ping_pong()?;
    /// let mut client = BufReader::new(TcpStream::connect(server.local_addr()).await?);
    /// client.get_mut().write_all(b"PING\n").await?;
    /// let mut reply = String::new();
    /// client.read_line(&mut reply).await?;
    /// assert_eq!(reply, "PONG\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn ping_pong() -> io::Result<Self> {
        Self::start(|line| match line {
            "PING" => Some("PONG".to_owned()),
            "QUIT" => None,
            _ => Some("ERR unknown command".to_owned()),
        })
    }
}

/// The client side of [`LineServer::ping_pong`]: sends `PING`, expects `PONG`. A
/// protocol-level health check and the smallest possible request, for pool tests.
///
/// # Errors
///
/// The I/O error, or `InvalidData` when the answer is not `PONG`.
///
/// ```
/// use poolside_faultproxy::{LineServer, ping_pong};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = LineServer::ping_pong()?;
/// let mut stream = tokio::net::TcpStream::connect(server.local_addr()).await?;
/// ping_pong(&mut stream).await?;
/// ping_pong(&mut stream).await?;
/// # Ok(())
/// # }
/// ```
pub async fn ping_pong(stream: &mut TcpStream) -> io::Result<()> {
    stream.write_all(b"PING\n").await?;
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).await?;
    if &answer == b"PONG\n" {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, "expected PONG"))
    }
}

async fn answer_lines<R>(stream: TcpStream, respond: Arc<R>)
where
    R: Fn(&str) -> Option<String> + ?Sized,
{
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(mut reply) = respond(line.trim_end_matches(['\r', '\n'])) else { return };
        reply.push('\n');
        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
