//! The TCP manager against a loopback echo server.

use poolside_connpool::{Builder, Instrumented, PoolError, tcp::HealthCheck, tcp::TcpManager};
use poolside_core::Snapshot;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Echoes every connection; a message on `hang_up` closes the oldest open one.
async fn echo_server() -> (String, mpsc::UnboundedSender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (hang_up, mut hang_ups) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            tokio::select! {
                // Accept first, so a hang-up never overtakes the connection it targets.
                biased;
                accepted = listener.accept() => {
                    let (stream, _) = accepted.unwrap();
                    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
                    open.push(stop);
                    tokio::spawn(async move {
                        let (mut r, mut w) = stream.into_split();
                        let mut buf = [0u8; 64];
                        loop {
                            tokio::select! {
                                _ = &mut stopped => return,
                                n = r.read(&mut buf) => match n {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => w.write_all(&buf[..n]).await.unwrap(),
                                },
                            }
                        }
                    });
                }
                msg = hang_ups.recv() => match msg {
                    Some(()) if !open.is_empty() => drop(open.remove(0)),
                    Some(()) => {}
                    None => return,
                },
            }
        }
    });
    (addr, hang_up)
}

#[tokio::test]
async fn pooled_streams_echo_and_are_reused() {
    let (addr, _hang_up) = echo_server().await;
    let pool = Builder::new().max_size(2).build(TcpManager::new(addr)).unwrap();
    for round in 0..3u8 {
        let mut stream = pool.get().await.unwrap();
        stream.write_all(&[round]).await.unwrap();
        let mut back = [0u8; 1];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [round]);
    }
    assert_eq!(Snapshot::of(&pool).value("dials"), Some(1));
}

#[tokio::test]
async fn a_stream_the_server_closed_is_detected_and_replaced() {
    let (addr, hang_up) = echo_server().await;
    let pool = Builder::new()
        .max_size(1)
        .health_check_after(Duration::ZERO)
        .build(TcpManager::new(addr))
        .unwrap();
    let first_port = pool.get().await.unwrap().local_addr().unwrap().port();
    hang_up.send(()).unwrap();
    // Give the server a moment to close its end (real sockets, real time).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut stream = pool.get().await.unwrap();
    assert_ne!(stream.local_addr().unwrap().port(), first_port, "a new stream was dialled");
    stream.write_all(b"x").await.unwrap();
    let snap = Snapshot::of(&pool);
    assert_eq!((snap.value("health_fails"), snap.value("dials")), (Some(1), Some(2)));
    assert_eq!(pool.catalogue().len(), 15);
}

/// A protocol-level check: write a byte and expect it echoed.
#[derive(Clone)]
struct EchoPing(Arc<AtomicUsize>);

impl HealthCheck for EchoPing {
    async fn check(&self, stream: &mut TcpStream) -> io::Result<()> {
        self.0.fetch_add(1, SeqCst);
        stream.write_all(b"?").await?;
        let mut back = [0u8; 1];
        stream.read_exact(&mut back).await?;
        if back == *b"?" { Ok(()) } else { Err(io::Error::other("bad echo")) }
    }
}

#[tokio::test]
async fn custom_health_checks_are_used() {
    let (addr, _hang_up) = echo_server().await;
    let pings = Arc::new(AtomicUsize::new(0));
    let manager = TcpManager::new(addr).with_check(EchoPing(pings.clone())).nodelay(false);
    let pool = Builder::new().health_check_after(Duration::ZERO).build(manager).unwrap();
    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    assert_eq!(pings.load(SeqCst), 1, "fresh dials are not pinged, reused ones are");
}

#[tokio::test]
async fn refused_connections_surface_as_connect_errors() {
    // A socket bound but never listening: its port refuses connections, and stays
    // ours while the test runs (a port freed by dropping a listener could be taken
    // by another test and then accept).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = reserved.local_addr().unwrap();
    // Refused dials are retried until the connect timeout (30 s by default).
    let pool = Builder::new()
        .connect_timeout(Duration::from_millis(300))
        .build(TcpManager::new(addr.to_string()))
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(err.to_string().starts_with("opening a connection failed"), "{err}");
    assert_eq!(err.pool_error(), None::<PoolError>);
    assert_eq!(pool.status().open, 0);
}
