//! Stress: clients hammer the proxy while a chaos task cycles through every mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::time::{Instant, timeout};

const CLIENTS: usize = 8;
const CHAOS_FOR: Duration = Duration::from_millis(800);
/// How long each mode lasts: pacing for the chaos, not synchronisation.
const MODE_DWELL: Duration = Duration::from_millis(15);
const IO_TIMEOUT: Duration = Duration::from_millis(100);

const MODES: [FaultMode; 7] = [
    FaultMode::Pass,
    FaultMode::Latency(Duration::from_millis(2)),
    FaultMode::Blackhole,
    FaultMode::Reset,
    FaultMode::Refuse,
    FaultMode::SlowClose(Duration::from_millis(2)),
    FaultMode::Pass,
];

#[derive(Default)]
struct Tally {
    /// Connection attempts. A connect can fail after the proxy accepted it (an RST
    /// that beats the client's connect completion), so only attempts bound `accepted`.
    attempts: AtomicU64,
    echoed: AtomicU64,
}

/// One client: connect, send a tagged payload, expect exactly it back or a failure.
/// Whatever comes back must never be someone else's bytes or a corrupted echo.
async fn client_loop(addr: std::net::SocketAddr, id: u8, stop: Instant, tally: Arc<Tally>) {
    let mut round = 0u8;
    while Instant::now() < stop {
        round = round.wrapping_add(1);
        tally.attempts.fetch_add(1, Ordering::Relaxed);
        let Ok(Ok(mut stream)) = timeout(IO_TIMEOUT, TcpStream::connect(addr)).await else {
            // Refused, or a connect caught in the backlog of a closing listener.
            tokio::task::yield_now().await;
            continue;
        };
        let payload = [id, round, id ^ round, 0xA5];
        if stream.write_all(&payload).await.is_err() {
            continue;
        }
        let mut reply = [0; 4];
        let mut filled = 0;
        while filled < reply.len() {
            match timeout(IO_TIMEOUT, stream.read(&mut reply[filled..])).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => filled += n,
            }
        }
        // A blackhole may drop a prefix of the bytes, never reorder or invent them.
        assert!(payload.ends_with(&reply[..filled]) || payload.starts_with(&reply[..filled]));
        if filled == reply.len() {
            assert_eq!(reply, payload);
            tally.echoed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_under_load_keep_counts_consistent_and_leave_nothing_open() {
    let baseline = Handle::current().metrics().num_alive_tasks();
    let echo = EchoServer::start().unwrap();
    let proxy = FaultProxy::start(echo.local_addr()).unwrap();
    let handle = proxy.handle().clone();
    let tally = Arc::new(Tally::default());
    let stop = Instant::now() + CHAOS_FOR;

    let clients: Vec<_> = (0..CLIENTS as u8)
        .map(|id| tokio::spawn(client_loop(proxy.local_addr(), id, stop, Arc::clone(&tally))))
        .collect();
    let mut switches = 0;
    while Instant::now() < stop {
        let mode = MODES[switches % MODES.len()];
        timeout(Duration::from_secs(2), handle.set_mode(mode)).await.unwrap().unwrap();
        switches += 1;
        tokio::time::sleep(MODE_DWELL).await;
    }
    for client in clients {
        timeout(Duration::from_secs(2), client).await.expect("client finished in time").unwrap();
    }
    handle.set_mode(FaultMode::Pass).await.unwrap();

    let stats = handle.stats();
    let attempts = tally.attempts.load(Ordering::Relaxed);
    assert!(switches >= MODES.len(), "only {switches} switches");
    assert!(tally.echoed.load(Ordering::Relaxed) > 0, "no request ever got through");
    assert!(stats.accepted <= attempts, "{stats:?} vs {attempts} attempts");
    assert!(stats.resets > 0 && stats.bytes_blackholed > 0, "{stats:?}");
    // The echo server never sends more than it received through the proxy.
    assert!(stats.bytes_to_client <= stats.bytes_to_upstream, "{stats:?}");

    timeout(Duration::from_secs(2), handle.kill_all()).await.unwrap();
    assert_eq!(handle.stats().open, 0);
    timeout(Duration::from_secs(2), proxy.shutdown()).await.unwrap();
    echo.shutdown().await;
    let all_gone = async {
        // No event marks a task leaving the runtime's list on another worker.
        while Handle::current().metrics().num_alive_tasks() > baseline {
            tokio::task::yield_now().await;
        }
    };
    timeout(Duration::from_secs(2), all_gone).await.expect("a task outlived shutdown");
}
