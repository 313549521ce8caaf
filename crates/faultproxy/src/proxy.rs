//! The proxy: its listener, its control handle and its lifecycle.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::background::Background;
use crate::connection;
use crate::{FaultMode, ProxyError, ProxyStats};

/// How many times leaving [`FaultMode::Refuse`] tries to bind the port again, and how
/// long it waits between tries: a port just released can be briefly unavailable.
const REBIND_ATTEMPTS: u32 = 50;
const REBIND_BACKOFF: Duration = Duration::from_millis(20);
/// Pause after an `accept` error (such as running out of file descriptors), so the
/// accept loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);
const LISTEN_BACKLOG: u32 = 1024;

/// A mode together with the number of the switch that set it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModeRequest {
    pub(crate) mode: FaultMode,
    serial: u64,
}

/// What the accept loop reports after applying a [`ModeRequest`] to its listener.
#[derive(Debug, Clone)]
struct Applied {
    serial: u64,
    rebind_error: Option<ProxyError>,
}

/// How the connections of a retired [`Cohort`] end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Both sockets dropped ([`FaultHandle::kill_all`]).
    Kill,
    /// The client aborted with RST ([`FaultMode::Reset`]).
    Reset,
}

/// The connections accepted since the last [`FaultHandle::kill_all`] or switch to
/// [`FaultMode::Reset`]: cancelling a token ends them, and the drain channel closes
/// once every one of them is gone.
#[derive(Debug)]
struct Cohort {
    /// A child of the shutdown token, so shutting down ends every cohort.
    kill: CancellationToken,
    reset: CancellationToken,
    drain_tx: mpsc::Sender<()>,
    drain_rx: mpsc::Receiver<()>,
}

impl Cohort {
    fn new(shutdown: &CancellationToken) -> Self {
        let (drain_tx, drain_rx) = mpsc::channel(1);
        Self { kill: shutdown.child_token(), reset: CancellationToken::new(), drain_tx, drain_rx }
    }

    /// Replaces `current` with a fresh cohort, tells the old one how to end, and
    /// returns what resolves once it is gone: its drain channel, whose every sender is
    /// held by one of its connections, so `recv` yields `None` when the last one ends.
    fn retire(
        current: &mut Self,
        ending: Ending,
        shutdown: &CancellationToken,
    ) -> mpsc::Receiver<()> {
        let retired = std::mem::replace(current, Self::new(shutdown));
        match ending {
            Ending::Kill => retired.kill.cancel(),
            Ending::Reset => retired.reset.cancel(),
        }
        retired.drain_rx
    }
}

/// The tokens a connection task watches, taken from its cohort when it is admitted.
#[derive(Debug)]
pub(crate) struct Endings {
    pub(crate) kill: CancellationToken,
    pub(crate) reset: CancellationToken,
}

/// State shared by the handle, the accept loop and the connection tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) upstream: SocketAddr,
    local_addr: SocketAddr,
    pub(crate) mode: watch::Sender<ModeRequest>,
    applied: watch::Receiver<Applied>,
    pub(crate) stats: watch::Sender<ProxyStats>,
    /// Also held while a mode is published, so admission sees mode and cohort agree.
    cohort: Mutex<Cohort>,
    shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn current_mode(&self) -> FaultMode {
        self.mode.borrow().mode
    }

    pub(crate) fn count(&self, update: impl FnOnce(&mut ProxyStats)) {
        self.stats.send_modify(update);
    }

    fn cohort(&self) -> MutexGuard<'_, Cohort> {
        // The lock guards plain data and no code panics while holding it.
        self.cohort.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps [`ProxyStats::open`] exact and tells [`FaultHandle::kill_all`] when its
/// connection is gone.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    shared: Arc<Shared>,
    _cohort: mpsc::Sender<()>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        // Runs before `_cohort` is dropped, so `open` is already decremented when
        // `kill_all` sees the connection drained.
        self.shared.count(|stats| stats.open -= 1);
    }
}

/// A fault-injecting TCP proxy on `127.0.0.1`, forwarding to one upstream address.
///
/// It starts in [`FaultMode::Pass`]. Its background tasks run on the tokio runtime it
/// was started on, which may be current-thread or multi-thread. [`shutdown`] stops
/// them and waits. Dropping the proxy stops them without waiting: the accept loop is
/// aborted, which aborts every connection task, and the runtime drops them (closing
/// their sockets) on its next turn.
///
/// [`shutdown`]: FaultProxy::shutdown
///
/// ```
/// use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = EchoServer::start()?;
/// let proxy = FaultProxy::start(echo.local_addr())?;
///
/// let mut client = TcpStream::connect(proxy.local_addr()).await?;
/// client.write_all(b"hi").await?;
/// let mut reply = [0; 2];
/// client.read_exact(&mut reply).await?;
/// assert_eq!(&reply, b"hi");
///
/// proxy.handle().set_mode(FaultMode::Refuse).await?;
/// assert!(TcpStream::connect(proxy.local_addr()).await.is_err());
///
/// proxy.shutdown().await;
/// echo.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    handle: FaultHandle,
    acceptor: Background,
}

impl FaultProxy {
    /// Binds `127.0.0.1:0` and starts forwarding to `upstream` in [`FaultMode::Pass`].
    ///
    /// The proxy only ever listens on loopback. The upstream is dialled once per
    /// accepted connection.
    ///
    /// # Errors
    ///
    /// [`ProxyError::Bind`] if no loopback port can be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (like `tokio::spawn`).
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// assert!(proxy.local_addr().ip().is_loopback());
    /// assert_eq!(proxy.handle().upstream(), echo.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(upstream: SocketAddr) -> Result<Self, ProxyError> {
        let bind_error = |source| ProxyError::Bind { source: Arc::new(source) };
        let listener =
            bind_loopback(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let initial = ModeRequest { mode: FaultMode::Pass, serial: 0 };
        let (applied_tx, applied_rx) = watch::channel(Applied { serial: 0, rebind_error: None });
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            upstream,
            local_addr,
            mode: watch::Sender::new(initial),
            applied: applied_rx,
            stats: watch::Sender::new(ProxyStats::default()),
            cohort: Mutex::new(Cohort::new(&shutdown)),
            shutdown,
        });
        let shutdown = shared.shutdown.clone();
        let acceptor =
            Background::spawn(shutdown, accept_loop(Arc::clone(&shared), listener, applied_tx));
        Ok(Self { handle: FaultHandle { shared }, acceptor })
    }

    /// The control handle: switch modes, read counters, kill connections.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// let handle = proxy.handle().clone(); // cheap, e.g. to move into a task
    /// assert_eq!(handle.mode(), FaultMode::Pass);
    /// # Ok(())
    /// # }
    /// ```
    pub fn handle(&self) -> &FaultHandle {
        &self.handle
    }

    /// The proxy's address (`127.0.0.1:<port>`); clients connect here. It stays the
    /// same across [`FaultMode::Refuse`].
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// assert_ne!(proxy.local_addr().port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Stops the proxy and waits until it is stopped: the listener is closed (the
    /// port refuses connections), every connection is closed and every task has
    /// ended, so [`ProxyStats::open`] is 0 when this returns. Handles stay usable for
    /// reading counters; switching modes then fails with [`ProxyError::ShutDown`].
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// let (addr, handle) = (proxy.local_addr(), proxy.handle().clone());
    /// proxy.shutdown().await;
    /// assert_eq!(handle.stats().open, 0);
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.acceptor.stop().await;
    }
}

/// A cheap, cloneable control handle of a [`FaultProxy`].
///
/// ```
/// use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = EchoServer::start()?;
/// let proxy = FaultProxy::start(echo.local_addr())?;
/// let handle = proxy.handle().clone();
/// let chaos = tokio::spawn(async move {
///     handle.set_mode(FaultMode::Latency(Duration::from_millis(5))).await
/// });
/// chaos.await??;
/// assert_eq!(proxy.handle().mode(), FaultMode::Latency(Duration::from_millis(5)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

impl FaultHandle {
    /// The proxy's address (`127.0.0.1:<port>`).
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// assert_eq!(proxy.handle().local_addr(), proxy.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address the proxy forwards to.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// assert_eq!(proxy.handle().upstream(), echo.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// The current mode (the last one requested).
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// proxy.handle().set_mode(FaultMode::Blackhole).await?;
    /// assert_eq!(proxy.handle().mode(), FaultMode::Blackhole);
    /// # Ok(())
    /// # }
    /// ```
    pub fn mode(&self) -> FaultMode {
        self.shared.current_mode()
    }

    /// Switches the mode and returns once the listener reflects it: after
    /// `set_mode(FaultMode::Refuse)` returns, connects are refused; after switching
    /// back, they are accepted on the same port. After `set_mode(FaultMode::Reset)`
    /// returns, every connection that was open has been reset. Otherwise open
    /// connections pick the new mode up as described on [`FaultMode`].
    ///
    /// # Errors
    ///
    /// * [`ProxyError::Rebind`] if leaving [`FaultMode::Refuse`] could not bind the
    ///   port again; the mode is still switched, and the proxy keeps refusing until a
    ///   later switch binds the port.
    /// * [`ProxyError::ShutDown`] if the proxy has stopped.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
    /// use std::io::ErrorKind;
    /// use tokio::net::TcpStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// proxy.handle().set_mode(FaultMode::Refuse).await?;
    /// let refused = TcpStream::connect(proxy.local_addr()).await.unwrap_err();
    /// assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    /// proxy.handle().set_mode(FaultMode::Pass).await?;
    /// TcpStream::connect(proxy.local_addr()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_mode(&self, mode: FaultMode) -> Result<(), ProxyError> {
        let mut applied = self.shared.applied.clone();
        let mut serial = 0;
        let reset_cohort = {
            let mut cohort = self.shared.cohort();
            self.shared.mode.send_modify(|request| {
                request.mode = mode;
                request.serial += 1;
                serial = request.serial;
            });
            (mode == FaultMode::Reset)
                .then(|| Cohort::retire(&mut cohort, Ending::Reset, &self.shared.shutdown))
        };
        if let Some(mut drained) = reset_cohort {
            while drained.recv().await.is_some() {}
        }
        loop {
            {
                let state = applied.borrow_and_update();
                if state.serial >= serial {
                    return state.rebind_error.clone().map_or(Ok(()), Err);
                }
            }
            if applied.changed().await.is_err() {
                return Err(ProxyError::ShutDown);
            }
        }
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// assert_eq!(proxy.handle().stats().accepted, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> ProxyStats {
        *self.shared.stats.borrow()
    }

    /// Waits until the counters satisfy `condition` and returns that snapshot: the
    /// way for a test to wait for an event ("the proxy has accepted 3 connections",
    /// "every connection is closed") instead of sleeping. Returns at once if the
    /// condition already holds. Wrap it in `tokio::time::timeout` to bound it.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    /// use tokio::net::TcpStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// let client = TcpStream::connect(proxy.local_addr()).await?;
    /// proxy.handle().wait_for_stats(|stats| stats.open == 1).await;
    /// drop(client);
    /// let stats = proxy.handle().wait_for_stats(|stats| stats.open == 0).await;
    /// assert_eq!(stats.accepted, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_stats(
        &self,
        mut condition: impl FnMut(&ProxyStats) -> bool,
    ) -> ProxyStats {
        let mut stats = self.shared.stats.subscribe();
        // The sender lives in `Shared`, which `self` keeps alive, so this cannot fail.
        let snapshot = stats.wait_for(|snapshot| condition(snapshot)).await;
        snapshot.map_or_else(|_| self.stats(), |snapshot| *snapshot)
    }

    /// Closes every connection that is open now (both sockets dropped: the client
    /// sees EOF, or a reset if it had unread data pending) and waits until they are
    /// all gone. Connections accepted afterwards are not affected, and the mode is
    /// unchanged.
    ///
    /// ```
    /// use poolside_faultproxy::{EchoServer, FaultProxy};
    /// use tokio::io::AsyncReadExt;
    /// use tokio::net::TcpStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = EchoServer::start()?;
    /// let proxy = FaultProxy::start(echo.local_addr())?;
    /// let mut client = TcpStream::connect(proxy.local_addr()).await?;
    /// proxy.handle().wait_for_stats(|stats| stats.open == 1).await;
    /// proxy.handle().kill_all().await;
    /// assert_eq!(proxy.handle().stats().open, 0);
    /// assert_eq!(client.read(&mut [0; 8]).await?, 0); // EOF
    /// # Ok(())
    /// # }
    /// ```
    pub async fn kill_all(&self) {
        let mut drained =
            Cohort::retire(&mut self.shared.cohort(), Ending::Kill, &self.shared.shutdown);
        while drained.recv().await.is_some() {}
    }
}

/// Binds a listener with `SO_REUSEADDR`, so the port can be bound again while
/// connections accepted on it earlier are still open or in `TIME_WAIT`.
fn bind_loopback(addr: SocketAddr) -> io::Result<TcpListener> {
    debug_assert!(addr.ip().is_loopback(), "the proxy only listens on loopback");
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds `addr` again after [`FaultMode::Refuse`], retrying while the port is briefly
/// unavailable. Gives up early when the proxy is shut down.
async fn rebind(addr: SocketAddr, shutdown: &CancellationToken) -> io::Result<TcpListener> {
    let mut attempt = 1;
    loop {
        match bind_loopback(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) if attempt >= REBIND_ATTEMPTS || shutdown.is_cancelled() => {
                return Err(error);
            }
            Err(error) => {
                tracing::debug!(%addr, %error, attempt, "fault proxy rebind failed, retrying");
                attempt += 1;
                tokio::time::sleep(REBIND_BACKOFF).await;
            }
        }
    }
}

async fn accept_from(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _peer)| stream),
        None => std::future::pending().await,
    }
}

/// Owns the listener and every connection task. Applies each mode request to the
/// listener (closed while refusing), acknowledges it, and accepts connections.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, applied: watch::Sender<Applied>) {
    let mut connections = JoinSet::new();
    // Declared after `connections`, so that an aborted loop (the proxy dropped) closes
    // the port before its connection tasks are dropped: whoever sees `open` reach 0
    // may rely on the port refusing. Locals drop in reverse order.
    let mut listener = Some(listener);
    let mut requests = shared.mode.subscribe();
    loop {
        let request = *requests.borrow_and_update();
        let mut rebind_error = None;
        if request.mode == FaultMode::Refuse {
            listener = None;
        } else if listener.is_none() {
            match rebind(shared.local_addr, &shared.shutdown).await {
                Ok(bound) => listener = Some(bound),
                Err(source) => {
                    let addr = shared.local_addr;
                    rebind_error = Some(ProxyError::Rebind { addr, source: Arc::new(source) });
                }
            }
        }
        applied.send_replace(Applied { serial: request.serial, rebind_error });

        loop {
            tokio::select! {
                () = shared.shutdown.cancelled() => {
                    drop(listener);
                    connections.shutdown().await;
                    return;
                }
                // `Shared` owns the sender, so this only ever reports a change.
                _ = requests.changed() => break,
                accepted = accept_from(listener.as_ref()) => match accepted {
                    Ok(client) => admit(&shared, &mut connections, client),
                    Err(error) => {
                        tracing::warn!(%error, "fault proxy accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                },
                Some(finished) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(error) = finished {
                        if error.is_panic() {
                            tracing::error!(%error, "fault proxy connection task panicked");
                        }
                    }
                }
            }
        }
    }
}

/// Counts a freshly accepted client and either resets it at once or hands it to a
/// connection task.
fn admit(shared: &Arc<Shared>, connections: &mut JoinSet<()>, client: TcpStream) {
    let (endings, drain) = {
        // Under the cohort lock, the mode cannot switch to `Reset` between reading it
        // and joining the cohort that such a switch would reset.
        let cohort = shared.cohort();
        if shared.current_mode() == FaultMode::Reset {
            drop(cohort);
            shared.count(|stats| stats.accepted += 1);
            connection::reset(client, shared);
            return;
        }
        let endings = Endings { kill: cohort.kill.clone(), reset: cohort.reset.clone() };
        (endings, cohort.drain_tx.clone())
    };
    shared.count(|stats| {
        stats.accepted += 1;
        stats.open += 1;
    });
    let guard = ConnectionGuard { shared: Arc::clone(shared), _cohort: drain };
    connections.spawn(connection::serve(client, Arc::clone(shared), endings, guard));
}
