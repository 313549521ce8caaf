//! A fault-injecting TCP proxy for testing connection pools against real sockets.
//!
//! [`FaultProxy`] listens on `127.0.0.1` (never any other address) and forwards every
//! connection to one upstream address. Its [`FaultMode`] is switched at runtime through
//! a cheap, cloneable [`FaultHandle`]:
//!
//! | mode | new connections | open connections |
//! | --- | --- | --- |
//! | [`Pass`](FaultMode::Pass) | forwarded | forwarded |
//! | [`Latency(d)`](FaultMode::Latency) | each chunk held `d` per direction | same, from the next chunk |
//! | [`Blackhole`](FaultMode::Blackhole) | accepted, never answered, upstream not dialled | bytes and closes swallowed |
//! | [`Reset`](FaultMode::Reset) | accepted, then RST | RST |
//! | [`Refuse`](FaultMode::Refuse) | `ECONNREFUSED` (listener closed) | forwarded |
//! | [`SlowClose(d)`](FaultMode::SlowClose) | closes delayed by `d` | same |
//!
//! [`ProxyStats`] counts connections and bytes exactly, and
//! [`FaultHandle::wait_for_stats`] awaits a condition on them, so tests synchronise on
//! events instead of sleeping. [`EchoServer`] and [`LineServer`] are tiny loopback
//! upstreams for tests. Everything shuts down cleanly: after `shutdown().await` the
//! port refuses connections and no task or socket is left.
//!
//! ```
//! use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::TcpStream;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = EchoServer::start()?;
//! let proxy = FaultProxy::start(echo.local_addr())?;
//! let mut client = TcpStream::connect(proxy.local_addr()).await?;
//!
//! proxy.handle().set_mode(FaultMode::Blackhole).await?;
//! client.write_all(b"anyone there?").await?;
//! let silence = tokio::time::timeout(Duration::from_millis(50), client.read(&mut [0; 16])).await;
//! assert!(silence.is_err(), "a blackhole never answers");
//!
//! proxy.shutdown().await;
//! echo.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod background;
mod connection;
mod error;
mod mode;
mod proxy;
mod server;
mod stats;
mod timeline;

pub use error::ProxyError;
pub use mode::FaultMode;
pub use proxy::{FaultHandle, FaultProxy};
pub use server::{Echo, EchoServer, LineServer, Lines, TestServer, ping_pong};
pub use stats::ProxyStats;
pub use timeline::Timeline;
