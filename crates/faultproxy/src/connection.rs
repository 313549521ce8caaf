//! One proxied connection: dialling the upstream, relaying both directions, and
//! applying the current fault to each chunk and each close.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::{ConnectionGuard, Endings, Shared};
use crate::{FaultMode, ProxyStats};

/// The most bytes read, delayed and written as one chunk.
const CHUNK_SIZE: usize = 16 * 1024;

/// Aborts `client` with a TCP RST: with `SO_LINGER` set to zero, dropping the socket
/// discards its buffers and sends RST instead of FIN.
pub(crate) fn reset(client: TcpStream, shared: &Shared) {
    if let Err(error) = client.set_zero_linger() {
        // Without the option the drop below still closes the socket, with a FIN.
        tracing::warn!(%error, "fault proxy could not set SO_LINGER to zero");
    }
    drop(client);
    shared.count(|stats| stats.resets += 1);
}

/// Serves one accepted client until it is done, killed, or reset. Dropping `guard` at
/// the end tells the proxy the connection is gone.
pub(crate) async fn serve(
    mut client: TcpStream,
    shared: Arc<Shared>,
    endings: Endings,
    guard: ConnectionGuard,
) {
    let reset_requested = tokio::select! {
        () = endings.kill.cancelled() => false,
        () = endings.reset.cancelled() => true,
        () = relay(&mut client, &shared) => false,
    };
    if reset_requested {
        // `relay` has been dropped, closing the upstream socket normally.
        reset(client, &shared);
    }
    drop(guard);
}

/// Resolves when the mode is not [`FaultMode::Blackhole`].
async fn blackhole_lifted(shared: &Shared) {
    let mut requests = shared.mode.subscribe();
    let _ = requests.wait_for(|request| request.mode != FaultMode::Blackhole).await;
}

/// Relays between `client` and a fresh upstream connection until both directions have
/// closed or either fails.
async fn relay(client: &mut TcpStream, shared: &Shared) {
    if !discard_while_blackholed(client, shared).await {
        return;
    }
    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::debug!(%error, upstream = %shared.upstream, "fault proxy could not dial");
            shared.count(|stats| stats.upstream_connect_failures += 1);
            return;
        }
    };
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    // Either side failing ends the whole connection: both sockets are dropped.
    let _ = tokio::try_join!(
        pump(client_read, upstream_write, shared, |stats, n| stats.bytes_to_upstream += n),
        pump(upstream_read, client_write, shared, |stats, n| stats.bytes_to_client += n),
    );
}

/// Before the upstream is dialled: reads and discards the client's bytes while the
/// mode is [`FaultMode::Blackhole`]. Returns whether the connection should go on
/// (`false` when the client closed or failed meanwhile).
async fn discard_while_blackholed(client: &mut TcpStream, shared: &Shared) -> bool {
    let mut requests = shared.mode.subscribe();
    let mut scratch = vec![0; CHUNK_SIZE];
    while requests.borrow_and_update().mode == FaultMode::Blackhole {
        tokio::select! {
            read = client.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => shared.count(|stats| stats.bytes_blackholed += n as u64),
            },
            // `Shared` owns the sender, so this only ever reports a change.
            _ = requests.changed() => {}
        }
    }
    true
}

/// Copies one direction chunk by chunk, applying the mode to every chunk and to the
/// final close, and counting the bytes written with `forwarded`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    shared: &Shared,
    forwarded: impl Fn(&mut ProxyStats, u64),
) -> io::Result<()> {
    let mut chunk = vec![0; CHUNK_SIZE];
    loop {
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        match shared.current_mode() {
            FaultMode::Blackhole => {
                shared.count(|stats| stats.bytes_blackholed += n as u64);
                continue;
            }
            FaultMode::Latency(delay) => tokio::time::sleep(delay).await,
            FaultMode::Pass | FaultMode::Reset | FaultMode::Refuse | FaultMode::SlowClose(_) => {}
        }
        to.write_all(&chunk[..n]).await?;
        shared.count(|stats| forwarded(stats, n as u64));
    }
    // The sending side closed. A blackhole swallows the close as well, until lifted.
    blackhole_lifted(shared).await;
    if let FaultMode::SlowClose(delay) = shared.current_mode() {
        tokio::time::sleep(delay).await;
    }
    to.shutdown().await
}
