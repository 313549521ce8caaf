//! Every fault mode against real loopback sockets, new and open connections alike.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy, LineServer, ProxyError, ProxyStats};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

const DELAY: Duration = Duration::from_millis(50);
/// How long a read must stay unanswered to count as "never answered".
const SILENCE: Duration = Duration::from_millis(200);
/// Bound on anything that should happen promptly, so a broken proxy fails the test
/// instead of hanging it.
const PROMPTLY: Duration = Duration::from_secs(2);

async fn echo_proxy() -> (EchoServer, FaultProxy) {
    let echo = EchoServer::start().expect("bind echo server");
    let proxy = FaultProxy::start(echo.local_addr()).expect("bind proxy");
    (echo, proxy)
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    timeout(PROMPTLY, TcpStream::connect(proxy.local_addr())).await.unwrap().expect("connect")
}

/// Sends `payload` and reads the same number of bytes back.
async fn round_trip(client: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    client.write_all(payload).await.expect("write");
    let mut reply = vec![0; payload.len()];
    timeout(PROMPTLY, client.read_exact(&mut reply)).await.expect("reply in time").expect("read");
    reply
}

async fn wait_for(proxy: &FaultProxy, condition: impl FnMut(&ProxyStats) -> bool) -> ProxyStats {
    timeout(PROMPTLY, proxy.handle().wait_for_stats(condition)).await.expect("stats in time")
}

async fn assert_silent(client: &mut TcpStream) {
    let read = timeout(SILENCE, client.read(&mut [0; 64])).await;
    assert!(read.is_err(), "expected no answer, got {read:?}");
}

async fn assert_reset(client: &mut TcpStream) {
    let read = timeout(PROMPTLY, client.read(&mut [0; 64])).await.expect("reset in time");
    let error = read.expect_err("expected a reset, got data or EOF");
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
}

async fn assert_eof(client: &mut TcpStream) {
    let read = timeout(PROMPTLY, client.read(&mut [0; 64])).await.expect("EOF in time");
    assert_eq!(read.expect("clean EOF"), 0);
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts_exactly() {
    let (echo, proxy) = echo_proxy().await;
    let mut client = connect(&proxy).await;
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let reply = round_trip(&mut client, &payload).await;
    assert_eq!(reply, payload);

    let stats = wait_for(&proxy, |s| s.bytes_to_client == 100_000).await;
    assert_eq!(
        stats,
        ProxyStats {
            accepted: 1,
            open: 1,
            bytes_to_upstream: 100_000,
            bytes_to_client: 100_000,
            ..ProxyStats::default()
        }
    );
    assert_eq!(echo.accepted(), 1);

    // A half-close travels through: the echo server sees EOF and closes in turn.
    client.shutdown().await.unwrap();
    assert_eof(&mut client).await;
    wait_for(&proxy, |s| s.open == 0).await;
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_exact_across_concurrent_connections() {
    let (echo, proxy) = echo_proxy().await;
    let clients = (1..=8usize).map(|i| {
        let addr = proxy.local_addr();
        tokio::spawn(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let payload = vec![i as u8; i * 1000];
            assert_eq!(round_trip(&mut client, &payload).await, payload);
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
    let total: u64 = (1..=8).map(|i| i * 1000).sum();
    let stats = wait_for(&proxy, |s| s.open == 0).await;
    assert_eq!(
        stats,
        ProxyStats {
            accepted: 8,
            open: 0,
            bytes_to_upstream: total,
            bytes_to_client: total,
            ..ProxyStats::default()
        }
    );
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_chunk_of_new_and_open_connections() {
    let (echo, proxy) = echo_proxy().await;
    let mut open = connect(&proxy).await;
    round_trip(&mut open, b"warm").await;

    proxy.handle().set_mode(FaultMode::Latency(DELAY)).await.unwrap();
    let mut fresh = connect(&proxy).await;
    for client in [&mut open, &mut fresh] {
        let started = Instant::now();
        assert_eq!(round_trip(client, b"slow").await, b"slow");
        // One delay towards the echo server, one on the way back.
        assert!(started.elapsed() >= 2 * DELAY, "round trip took {:?}", started.elapsed());
    }
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn blackhole_swallows_new_connections_without_dialling_upstream() {
    let (echo, proxy) = echo_proxy().await;
    proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    let mut client = connect(&proxy).await;
    client.write_all(b"hello?").await.unwrap();
    wait_for(&proxy, |s| s.bytes_blackholed == 6).await;
    assert_silent(&mut client).await;
    assert_eq!(proxy.handle().stats().open, 1, "the connection stays open");
    assert_eq!(echo.accepted(), 0, "the upstream is never dialled while blackholed");

    // Lifting the blackhole dials the upstream; the swallowed bytes are gone for good.
    proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    assert_eq!(round_trip(&mut client, b"again").await, b"again");
    assert_eq!(echo.accepted(), 1);
    let stats = proxy.handle().stats();
    assert_eq!((stats.bytes_to_upstream, stats.bytes_blackholed), (5, 6));
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn blackhole_silences_open_connections_and_swallows_their_close() {
    let (echo, proxy) = echo_proxy().await;
    let mut client = connect(&proxy).await;
    round_trip(&mut client, b"before").await;

    proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    client.write_all(b"lost").await.unwrap();
    wait_for(&proxy, |s| s.bytes_blackholed == 4).await;
    assert_silent(&mut client).await;

    // The client's half-close is held back too: no EOF comes back while blackholed.
    client.shutdown().await.unwrap();
    assert_silent(&mut client).await;
    assert_eq!(proxy.handle().stats().open, 1);

    // Once lifted, the close propagates, the echo server closes and so does the proxy.
    proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    assert_eof(&mut client).await;
    let stats = wait_for(&proxy, |s| s.open == 0).await;
    assert_eq!((stats.bytes_to_upstream, stats.bytes_to_client, stats.bytes_blackholed), (6, 6, 4));
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn reset_aborts_new_connections_with_rst() {
    let (echo, proxy) = echo_proxy().await;
    proxy.handle().set_mode(FaultMode::Reset).await.unwrap();
    let mut client = connect(&proxy).await;
    assert_reset(&mut client).await;
    let stats = wait_for(&proxy, |s| s.resets == 1).await;
    assert_eq!((stats.accepted, stats.open), (1, 0));
    assert_eq!(echo.accepted(), 0);
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_aborts_open_connections_and_pass_recovers() {
    let (echo, proxy) = echo_proxy().await;
    let mut first = connect(&proxy).await;
    let mut second = connect(&proxy).await;
    round_trip(&mut first, b"1").await;
    round_trip(&mut second, b"2").await;

    proxy.handle().set_mode(FaultMode::Reset).await.unwrap();
    // No waiting: `set_mode(Reset)` returns once every open connection is reset.
    let stats = proxy.handle().stats();
    assert_eq!((stats.accepted, stats.open, stats.resets), (2, 0, 2));
    assert_reset(&mut first).await;
    assert_reset(&mut second).await;

    proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    let mut third = connect(&proxy).await;
    assert_eq!(round_trip(&mut third, b"3").await, b"3");
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn refuse_closes_the_port_and_pass_rebinds_the_same_port() {
    let (echo, proxy) = echo_proxy().await;
    let addr = proxy.local_addr();
    let mut survivor = connect(&proxy).await;
    round_trip(&mut survivor, b"up").await;

    for _ in 0..3 {
        proxy.handle().set_mode(FaultMode::Refuse).await.unwrap();
        let refused = TcpStream::connect(addr).await.expect_err("the port must refuse");
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        // Open connections are not touched by Refuse.
        assert_eq!(round_trip(&mut survivor, b"still").await, b"still");

        // The rebind succeeds although `survivor` still uses the port.
        proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
        assert_eq!(proxy.local_addr(), addr);
        let mut client = connect(&proxy).await;
        assert_eq!(round_trip(&mut client, b"back").await, b"back");
    }
    assert_eq!(proxy.handle().stats().accepted, 4);
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn slow_close_delays_a_client_close_in_each_direction() {
    let (echo, proxy) = echo_proxy().await;
    let mut open = connect(&proxy).await;
    round_trip(&mut open, b"x").await;
    proxy.handle().set_mode(FaultMode::SlowClose(DELAY)).await.unwrap();

    let started = Instant::now();
    open.shutdown().await.unwrap();
    assert_eof(&mut open).await;
    // Client FIN held DELAY before reaching the echo server, whose FIN is held DELAY.
    assert!(started.elapsed() >= 2 * DELAY, "close took {:?}", started.elapsed());
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn slow_close_delays_a_server_close() {
    let server = LineServer::ping_pong().unwrap();
    let proxy = FaultProxy::start(server.local_addr()).unwrap();
    proxy.handle().set_mode(FaultMode::SlowClose(DELAY)).await.unwrap();
    let mut client = BufReader::new(connect(&proxy).await);
    client.get_mut().write_all(b"PING\n").await.unwrap();
    let mut reply = String::new();
    timeout(PROMPTLY, client.read_line(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply, "PONG\n", "data is not delayed by SlowClose");

    let started = Instant::now();
    client.get_mut().write_all(b"QUIT\n").await.unwrap();
    let read = timeout(PROMPTLY, client.read_line(&mut reply)).await.unwrap().unwrap();
    assert_eq!(read, 0, "the server's close arrives as EOF");
    assert!(started.elapsed() >= DELAY, "close took {:?}", started.elapsed());
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_closes_every_open_connection_but_not_later_ones() {
    let (echo, proxy) = echo_proxy().await;
    let mut clients = Vec::new();
    for i in 0..5u8 {
        let mut client = connect(&proxy).await;
        round_trip(&mut client, &[i]).await;
        clients.push(client);
    }
    // Include a blackholed connection that never dialled the upstream.
    proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    clients.push(connect(&proxy).await);
    wait_for(&proxy, |s| s.open == 6).await;

    timeout(PROMPTLY, proxy.handle().kill_all()).await.expect("kill_all in time");
    assert_eq!(proxy.handle().stats().open, 0, "kill_all returns once all are gone");
    for client in &mut clients {
        assert_eof(client).await;
    }

    proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    let mut later = connect(&proxy).await;
    assert_eq!(round_trip(&mut later, b"alive").await, b"alive");
    assert_eq!(proxy.handle().stats().open, 1);
    proxy.shutdown().await;
    echo.shutdown().await;
}

#[tokio::test]
async fn upstream_down_closes_the_client_and_counts_the_failure() {
    let echo = EchoServer::start().unwrap();
    let upstream = echo.local_addr();
    echo.shutdown().await;
    let proxy = FaultProxy::start(upstream).unwrap();
    let mut client = connect(&proxy).await;
    assert_eof(&mut client).await;
    let stats = wait_for(&proxy, |s| s.open == 0).await;
    assert_eq!((stats.accepted, stats.upstream_connect_failures), (1, 1));
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_port_taken_while_refusing_is_reported_and_retried_on_the_next_switch() {
    let (echo, proxy) = echo_proxy().await;
    let addr = proxy.local_addr();
    proxy.handle().set_mode(FaultMode::Refuse).await.unwrap();
    let squatter = std::net::TcpListener::bind(addr).expect("the refused port is free");

    let error = proxy.handle().set_mode(FaultMode::Pass).await.expect_err("port is taken");
    assert!(matches!(error, ProxyError::Rebind { addr: taken, .. } if taken == addr), "{error}");
    assert_eq!(proxy.handle().mode(), FaultMode::Pass, "the switch itself happened");

    drop(squatter);
    proxy.handle().set_mode(FaultMode::Pass).await.expect("the port is free again");
    let mut client = connect(&proxy).await;
    assert_eq!(round_trip(&mut client, b"mine").await, b"mine");
    proxy.shutdown().await;
    echo.shutdown().await;
}
