//! A Redis connection owned by whoever holds it: the task that sends a command writes it
//! to the socket and reads the reply itself, with no background task in between.
//!
//! A pooled connection serves one task at a time, so the multiplexing of
//! `redis::aio::MultiplexedConnection` (a driver task, a channel and a one-shot per
//! command, two task wake-ups per reply) buys nothing on it. Commands are packed by the
//! `redis` crate and replies are parsed by its own incremental parser.
//!
//! Invariants:
//! * `writing` is true only while a request's bytes are being written. A request
//!   dropped there (cancelled, timed out) may have left part of a command on the wire,
//!   so the link refuses every later request and reports itself broken.
//! * `unread` counts the replies still owed to the last request. A request dropped
//!   while reading leaves them owed; the next request on the same checkout reads and
//!   discards them first (the parser keeps any half-read reply), and a link that comes
//!   back to the pool still owing replies is reported broken (the server may be busy
//!   with a slow command).
//! * Any I/O or protocol error marks the link failed for good.

use combine::parser::combinator::AnySendSyncPartialState;
use combine::stream::{Decoder, PointerOffset};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, ProtocolVersion, RedisError,
    RedisResult, Value,
};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

pub(super) struct DirectLink {
    io: Box<dyn Io>,
    decoder: Decoder<AnySendSyncPartialState, PointerOffset<[u8]>>,
    /// Reused buffer for packing single commands.
    packed: Vec<u8>,
    db: i64,
    writing: bool,
    unread: usize,
    failed: bool,
}

impl DirectLink {
    /// Whether a direct link can serve `info`: plain TCP or a Unix socket speaking
    /// RESP2. TLS and RESP3 (push messages) stay on the multiplexed connection.
    pub(super) fn serves(info: &ConnectionInfo) -> bool {
        let plain = match info.addr() {
            ConnectionAddr::Tcp(..) => true,
            #[cfg(unix)]
            ConnectionAddr::Unix(_) => true,
            _ => false,
        };
        plain && info.redis_settings().protocol() == ProtocolVersion::RESP2
    }

    /// Opens the socket within `connect_timeout`, then authenticates and selects the
    /// database within `response_timeout` per command (or, with neither to do, sends
    /// `PING`), so a connection is handed out only once the server has answered.
    pub(super) async fn connect(
        info: &ConnectionInfo,
        connect_timeout: Option<Duration>,
        response_timeout: Option<Duration>,
    ) -> RedisResult<Self> {
        let io = within(connect_timeout, "connecting", open(info)).await??;
        let settings = info.redis_settings();
        let mut link = DirectLink {
            io,
            decoder: Decoder::new(),
            packed: Vec::new(),
            db: settings.db(),
            writing: false,
            unread: 0,
            failed: false,
        };
        if let Some(password) = settings.password() {
            let mut authenticate = async |user: Option<&str>| {
                let mut auth = redis::cmd("AUTH");
                if let Some(user) = user {
                    auth.arg(user);
                }
                auth.arg(password);
                within(response_timeout, "AUTH", link.command(&auth)).await?
            };
            let mut reply = authenticate(settings.username()).await?;
            // Servers before ACLs (Redis 5) take no user name.
            if settings.username().is_some() && refused_user_name(&reply) {
                reply = authenticate(None).await?;
            }
            accepted(reply, ErrorKind::AuthenticationFailed, "authentication failed")?;
        }
        if settings.db() != 0 {
            let mut select = redis::cmd("SELECT");
            select.arg(settings.db());
            let reply = within(response_timeout, "SELECT", link.command(&select)).await??;
            let refused = "the server refused to select the database";
            accepted(reply, ErrorKind::InvalidClientConfig, refused)?;
        }
        if settings.password().is_none() && settings.db() == 0 {
            // Nothing was exchanged yet: a port that accepted is not yet a Redis that
            // answers (nor one that has taken the client in; `CLIENT LIST` counts it
            // only then). One `PING` settles both.
            let ping =
                within(response_timeout, "PING", link.command(&redis::cmd("PING"))).await??;
            if ping != Value::SimpleString("PONG".into()) {
                let words = format!("{ping:?}");
                return Err((ErrorKind::Client, "the server did not answer PING", words).into());
            }
        }
        Ok(link)
    }

    /// The database the link selected when it connected.
    pub(super) fn db(&self) -> i64 {
        self.db
    }

    /// Whether the link must not go back into service: it failed, a request was cut
    /// off while writing, or replies are still owed.
    pub(super) fn is_broken(&self) -> bool {
        self.failed || self.writing || self.unread > 0
    }

    /// Sends one command and returns its reply (a server error reply is an
    /// `Ok(Value::ServerError)`, as from the multiplexed connection). The command is
    /// packed into a buffer the link keeps, so a command allocates nothing here.
    pub(super) async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        cmd.write_packed_command(&mut packed);
        let sent = self.send(&packed, 1).await;
        self.packed = packed;
        sent?;
        self.reply().await
    }

    /// Sends a packed pipeline of `skip + keep` commands and returns the last `keep`
    /// replies. In a transaction (`MULTI` ... `EXEC`) the skipped replies are the
    /// `MULTI` and `QUEUED` acknowledgements; a server error among them aborts the
    /// transaction and is returned as the error.
    pub(super) async fn pipeline(
        &mut self,
        pipeline: &Pipeline,
        skip: usize,
        keep: usize,
    ) -> RedisResult<Vec<Value>> {
        let transaction = pipeline.is_transaction();
        self.send(&pipeline.get_packed_pipeline(), skip.saturating_add(keep)).await?;
        let mut aborted = None;
        for _ in 0..skip {
            if let Value::ServerError(error) = self.reply().await? {
                if transaction && aborted.is_none() {
                    aborted = Some(error);
                }
            }
        }
        let mut replies = Vec::with_capacity(keep);
        for _ in 0..keep {
            replies.push(self.reply().await?);
        }
        match aborted {
            Some(error) => Err(error.into()),
            None => Ok(replies),
        }
    }

    async fn send(&mut self, packed: &[u8], replies: usize) -> RedisResult<()> {
        if self.failed || self.writing {
            return Err(unusable());
        }
        while self.unread > 0 {
            self.reply().await?;
        }
        self.writing = true;
        if let Err(error) = self.io.write_all(packed).await {
            self.failed = true;
            return Err(error.into());
        }
        self.writing = false;
        self.unread = replies;
        Ok(())
    }

    async fn reply(&mut self) -> RedisResult<Value> {
        match redis::parse_redis_value_async(&mut self.decoder, &mut self.io).await {
            Ok(value) => {
                self.unread -= 1;
                Ok(value)
            }
            Err(error) => {
                self.failed = true;
                Err(error)
            }
        }
    }
}

async fn open(info: &ConnectionInfo) -> RedisResult<Box<dyn Io>> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            // One write per command or pipeline, each waiting for its reply: Nagle's
            // algorithm could only delay it. The other TCP settings are the user's.
            stream.set_nodelay(true)?;
            let settings = info.tcp_settings();
            let socket = redis::io::tcp::socket2::SockRef::from(&stream);
            if let Some(keepalive) = settings.keepalive() {
                socket.set_tcp_keepalive(keepalive)?;
            }
            #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
            socket.set_tcp_user_timeout(settings.user_timeout())?;
            Ok(Box::new(stream))
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        other => Err(RedisError::from(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("a direct Redis link cannot open {other}"),
        ))),
    }
}

/// Runs `work` within `limit` (no limit when `None`); an elapsed limit is an I/O
/// timeout error naming `what`.
pub(super) async fn within<T>(
    limit: Option<Duration>,
    what: &str,
    work: impl Future<Output = T>,
) -> RedisResult<T> {
    match limit {
        None => Ok(work.await),
        Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| {
            RedisError::from(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("Redis {what} took longer than {limit:?}"),
            ))
        }),
    }
}

/// Whether the server accepted a handshake command: a refusal is an error of `kind`
/// carrying the server's words.
fn accepted(reply: Value, kind: ErrorKind, what: &'static str) -> RedisResult<()> {
    match reply {
        Value::ServerError(refusal) => {
            let words = refusal.details().unwrap_or(refusal.code()).to_string();
            Err((kind, what, words).into())
        }
        _ => Ok(()),
    }
}

/// Whether an `AUTH` reply says the server takes no user name.
fn refused_user_name(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(e)
        if e.details().is_some_and(|d| d.contains("wrong number of arguments for 'auth'")))
}

fn unusable() -> RedisError {
    RedisError::from(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "this Redis connection was cut off in the middle of writing a command (a cancelled \
         or timed-out request) or failed earlier; the pool closes it on return",
    ))
}
