//! A Redis adapter (feature `redis`) on the `redis` crate (tokio): commands are packed
//! and replies parsed by that crate, over a socket the pooled connection owns outright
//! (plain TCP or Unix, RESP2) or over its multiplexed connection (TLS, RESP3, or on
//! request).

mod direct;
mod session;

use crate::manager::Manager;
use direct::{DirectLink, within};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, RedisError,
    RedisFuture, Value,
};
use session::Session;
use std::fmt;
use std::time::Duration;

/// How long opening a connection may take unless set otherwise (the `redis` crate's
/// default for its async connections).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its reply unless set otherwise (the `redis` crate's
/// default for its async connections).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens Redis connections from a URL: `redis://[:password@]host[:port][/db]`,
/// `redis://user:password@host/db` (ACL), `redis+unix:///path`, and `rediss://` (TLS)
/// when the `redis-rustls` feature is on. The health check sends `PING`; a connection
/// that saw an I/O error, a dropped connection or an unrecoverable error, or whose
/// request was cut off (cancelled or timed out) before its reply was read, is closed
/// when it comes back to the pool instead of being reused.
///
/// **Links.** A pooled connection serves one task at a time, so over plain TCP or a
/// Unix socket with RESP2 (the default protocol) it owns its socket: the task that
/// sends a command writes it and reads the reply, with no background task between
/// them. `rediss://` (TLS) and `protocol=resp3` URLs use the `redis` crate's
/// `MultiplexedConnection`, as does every connection after
/// [`multiplexed`](RedisManager::multiplexed). Either way the connection implements
/// `redis::aio::ConnectionLike`, and commands, pipelines and transactions behave alike.
/// An owned socket takes the TCP keepalive and user timeout of the connection info's
/// `TcpSettings`, with `TCP_NODELAY` always on (one write per command, each waiting
/// for its reply).
///
/// **Session rules.** A pooled connection outlives its checkout, so nothing one caller
/// sets may reach the next. Refused with an `ErrorKind::Client` error before anything
/// is sent, because replies would stop matching their commands: `SUBSCRIBE`,
/// `PSUBSCRIBE`, `SSUBSCRIBE` and `MONITOR` over RESP2 (use
/// `redis::Client::get_async_pubsub`), `CLIENT REPLY`, and `HELLO` (set the protocol
/// in the URL). Closed on return instead of reused: a connection inside a `MULTI` or a
/// `WATCH` that no `EXEC`, `DISCARD` or `UNWATCH` ended, or after `SELECT` of another
/// database, `AUTH`, `RESET`, `READONLY` / `READWRITE`, a `CLIENT` setting
/// (`SETNAME`, `SETINFO`, `TRACKING`, `CACHING`, `NO-EVICT`, `NO-TOUCH`), or over
/// RESP3 a `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` or `MONITOR` (the server keeps
/// pushing to that connection). Unlike deadpool-redis, which sends `UNWATCH` at the
/// next checkout and keeps the connection, a connection left in such a state is
/// never reset and handed on: the next caller gets a fresh one.
///
/// **Timeouts.** Opening a connection may take 1 s and each command may wait 500 ms
/// for its reply (the `redis` crate's defaults); change them with
/// [`connect_timeout`](RedisManager::connect_timeout) and
/// [`response_timeout`](RedisManager::response_timeout).
///
/// ```no_run
/// use poolside_connpool::{Builder, redis::RedisManager};
/// use redis::AsyncCommands;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = RedisManager::new("redis://:secret@127.0.0.1:6379/2")?;
/// let pool = Builder::new().max_size(16).build(manager)?;
/// let mut conn = pool.get().await?;
/// let () = conn.set("greeting", "hello").await?;
/// let value: String = conn.get("greeting").await?;
/// assert_eq!(value, "hello");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisManager {
    client: Client,
    connect_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    multiplexed: bool,
}

impl fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.client.get_connection_info();
        // The password stays out of logs.
        f.debug_struct("RedisManager")
            .field("addr", &info.addr().to_string())
            .field("db", &info.redis_settings().db())
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("multiplexed", &self.uses_multiplexed())
            .finish()
    }
}

/// A Redis URL or connection info the `redis` crate refused (bad scheme, port or
/// database number, or `rediss://` without TLS support compiled in).
///
/// ```
/// use poolside_connpool::redis::RedisManager;
///
/// let err = RedisManager::new("http://127.0.0.1:6379").unwrap_err();
/// assert!(err.to_string().contains("invalid Redis connection settings"));
/// ```
#[derive(Debug)]
pub struct RedisConfigError(RedisError);

impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Redis connection settings: {}", self.0)
    }
}

impl std::error::Error for RedisConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl RedisManager {
    /// Parses the URL (or takes any `redis::IntoConnectionInfo`); nothing is dialled
    /// until the pool opens its first connection.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    ///
    /// let manager = RedisManager::new("redis://:pw@127.0.0.1:6380/3").unwrap();
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 3);
    /// assert!(RedisManager::new("redis://127.0.0.1:6379/not-a-number").is_err());
    /// ```
    pub fn new(info: impl IntoConnectionInfo) -> Result<Self, RedisConfigError> {
        Client::open(info).map(RedisManager::from_client).map_err(RedisConfigError)
    }

    /// Uses an already configured `redis::Client`.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/").unwrap();
    /// let manager = RedisManager::from_client(client);
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 0);
    /// ```
    pub fn from_client(client: Client) -> Self {
        RedisManager {
            client,
            connect_timeout: Some(CONNECT_TIMEOUT),
            response_timeout: Some(RESPONSE_TIMEOUT),
            multiplexed: false,
        }
    }

    /// How long opening a connection (the socket, `AUTH` and `SELECT`) may take;
    /// `None` waits as long as the system does. Default 1 s.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    /// use std::time::Duration;
    ///
    /// let manager = RedisManager::new("redis://127.0.0.1/")
    ///     .unwrap()
    ///     .connect_timeout(Some(Duration::from_secs(3)));
    /// assert_eq!(manager.connect_timeout_value(), Some(Duration::from_secs(3)));
    /// ```
    pub fn connect_timeout(mut self, limit: Option<Duration>) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// How long a command (or a whole pipeline) may wait for its reply; `None` waits
    /// for ever. A command that runs out of time fails with an I/O timeout error and
    /// its connection is closed when it returns to the pool. Default 500 ms; raise it
    /// for slow commands such as large `KEYS` scans or blocking pops.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    /// use std::time::Duration;
    ///
    /// let manager = RedisManager::new("redis://127.0.0.1/").unwrap().response_timeout(None);
    /// assert_eq!(manager.response_timeout_value(), None);
    /// ```
    pub fn response_timeout(mut self, limit: Option<Duration>) -> Self {
        self.response_timeout = limit;
        self
    }

    /// Opens every connection as the `redis` crate's `MultiplexedConnection` (its
    /// driver task reads replies), also where a connection could own its socket. Use
    /// it to hand [`RedisConnection::multiplexed`] clones to other tasks.
    ///
    /// ```
    /// use poolside_connpool::redis::RedisManager;
    ///
    /// let manager = RedisManager::new("redis://127.0.0.1/").unwrap();
    /// assert!(!manager.uses_multiplexed());
    /// assert!(manager.multiplexed().uses_multiplexed());
    /// assert!(RedisManager::new("redis://127.0.0.1/?protocol=resp3").unwrap().uses_multiplexed());
    /// ```
    pub fn multiplexed(mut self) -> Self {
        self.multiplexed = true;
        self
    }

    /// Whether connections are opened as multiplexed connections: after
    /// [`multiplexed`](RedisManager::multiplexed), or for TLS and RESP3 settings.
    ///
    /// ```
    /// let manager = poolside_connpool::redis::RedisManager::new("redis://127.0.0.1/").unwrap();
    /// assert!(!manager.uses_multiplexed());
    /// ```
    pub fn uses_multiplexed(&self) -> bool {
        self.multiplexed || !DirectLink::serves(self.client.get_connection_info())
    }

    /// The limit set by [`connect_timeout`](RedisManager::connect_timeout).
    ///
    /// ```
    /// let manager = poolside_connpool::redis::RedisManager::new("redis://127.0.0.1/").unwrap();
    /// assert_eq!(manager.connect_timeout_value(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn connect_timeout_value(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The limit set by [`response_timeout`](RedisManager::response_timeout).
    ///
    /// ```
    /// let manager = poolside_connpool::redis::RedisManager::new("redis://127.0.0.1/").unwrap();
    /// assert_eq!(manager.response_timeout_value(), Some(std::time::Duration::from_millis(500)));
    /// ```
    pub fn response_timeout_value(&self) -> Option<Duration> {
        self.response_timeout
    }

    /// The `redis::Client` connections are opened from.
    ///
    /// ```
    /// let manager = poolside_connpool::redis::RedisManager::new("redis://127.0.0.1/1").unwrap();
    /// assert_eq!(manager.client().get_connection_info().redis_settings().db(), 1);
    /// ```
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Manager for RedisManager {
    type Connection = RedisConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConnection, RedisError> {
        let link = if self.uses_multiplexed() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(self.connect_timeout)
                .set_response_timeout(self.response_timeout);
            let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
            Link::Multiplexed { conn, broken: false }
        } else {
            let info = self.client.get_connection_info();
            Link::Direct(
                DirectLink::connect(info, self.connect_timeout, self.response_timeout).await?,
            )
        };
        let settings = self.client.get_connection_info().redis_settings();
        let session = Session::new(settings.db(), settings.protocol() == ProtocolVersion::RESP2);
        Ok(RedisConnection { link, response_timeout: self.response_timeout, session })
    }

    async fn check(&self, conn: &mut RedisConnection) -> Result<(), RedisError> {
        let pong: String = redis::cmd("PING").query_async(conn).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::from((redis::ErrorKind::Client, "unexpected PING reply", pong)))
        }
    }

    fn is_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.is_broken()
    }
}

/// The connection a [`RedisManager`] pool hands out: a socket it owns outright, or a
/// `redis::aio::MultiplexedConnection` (see the manager's links), that remembers
/// whether it failed at the I/O level. It implements `redis::aio::ConnectionLike`, so
/// `redis::AsyncCommands`, `Cmd::query_async`, pipelines and transactions work on it
/// directly.
///
/// ```no_run
/// # use poolside_connpool::{Builder, redis::RedisManager};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pool = Builder::new().build(RedisManager::new("redis://127.0.0.1/")?)?;
/// let mut conn = pool.get().await?;
/// let (a, b): (i64, i64) = redis::pipe().incr("n", 1).incr("n", 1).query_async(&mut *conn).await?;
/// assert_eq!(b, a + 1);
/// assert!(!conn.is_broken());
/// # Ok(())
/// # }
/// ```
pub struct RedisConnection {
    link: Link,
    response_timeout: Option<Duration>,
    session: Session,
}

enum Link {
    Direct(DirectLink),
    Multiplexed { conn: MultiplexedConnection, broken: bool },
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("db", &self.get_db())
            .field("multiplexed", &self.multiplexed().is_some())
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl RedisConnection {
    /// Whether the pool will close this connection when it comes back: a command on
    /// it failed at the I/O level, a request was cut off (cancelled or timed out)
    /// before all of its reply was read, or a command left session state the next
    /// caller must not inherit (an open `MULTI` or `WATCH`, another database, `AUTH`,
    /// a `CLIENT` setting, a RESP3 subscription; see the manager's session rules).
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, redis::RedisManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = Builder::new().build(RedisManager::new("redis://127.0.0.1/")?)?;
    /// assert!(!pool.get().await?.is_broken());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_broken(&self) -> bool {
        self.session.is_dirty()
            || match &self.link {
                Link::Direct(link) => link.is_broken(),
                Link::Multiplexed { broken, .. } => *broken,
            }
    }

    /// The underlying multiplexed connection, when this connection is one (TLS, RESP3
    /// or [`RedisManager::multiplexed`]). A cheap clone shares its socket; a failure
    /// seen only through a clone does not mark this connection broken.
    ///
    /// ```no_run
    /// # use poolside_connpool::{Builder, redis::RedisManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = RedisManager::new("redis://127.0.0.1/")?.multiplexed();
    /// let pool = Builder::new().build(manager)?;
    /// let conn = pool.get().await?;
    /// let shared: redis::aio::MultiplexedConnection = conn.multiplexed().unwrap().clone();
    /// # let _ = shared;
    /// # Ok(())
    /// # }
    /// ```
    pub fn multiplexed(&self) -> Option<&MultiplexedConnection> {
        match &self.link {
            Link::Direct(_) => None,
            Link::Multiplexed { conn, .. } => Some(conn),
        }
    }

    fn observe<T>(broken: &mut bool, result: &Result<T, RedisError>) {
        if let Err(e) = result {
            if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                *broken = true;
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.session.admit([cmd])?;
            match &mut self.link {
                Link::Direct(link) => {
                    within(self.response_timeout, "command", link.command(cmd)).await?
                }
                Link::Multiplexed { conn, broken } => {
                    let result = conn.req_packed_command(cmd).await;
                    Self::observe(broken, &result);
                    result
                }
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if cmd.is_transaction() {
                self.session.admit_transaction(cmd.cmd_iter())?;
            } else {
                self.session.admit(cmd.cmd_iter())?;
            }
            match &mut self.link {
                Link::Direct(link) => {
                    let replies = link.pipeline(cmd, offset, count);
                    within(self.response_timeout, "pipeline", replies).await?
                }
                Link::Multiplexed { conn, broken } => {
                    let result = conn.req_packed_commands(cmd, offset, count).await;
                    Self::observe(broken, &result);
                    result
                }
            }
        })
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Direct(link) => link.db(),
            Link::Multiplexed { conn, .. } => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_keeps_the_password_out() {
        let manager = RedisManager::new("redis://user:hunter2@127.0.0.1:6390/4").unwrap();
        let shown = format!("{manager:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("6390") && shown.contains('4'), "{shown}");
    }
}
