//! Shutdown and drop leave no task, listener or connection behind.

use std::io::ErrorKind;
use std::time::Duration;

use poolside_faultproxy::{EchoServer, FaultMode, FaultProxy, LineServer, ProxyError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::time::timeout;

const PROMPTLY: Duration = Duration::from_secs(2);

fn alive_tasks() -> usize {
    Handle::current().metrics().num_alive_tasks()
}

async fn assert_refused(addr: std::net::SocketAddr) {
    let error = TcpStream::connect(addr).await.expect_err("the port must refuse");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
}

/// Opens connections in every state a connection can be in: forwarding, blackholed
/// before dialling, and with a close held back by a blackhole.
async fn busy_proxy(proxy: &FaultProxy) -> Vec<TcpStream> {
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        client.write_all(b"x").await.unwrap();
        client.read_exact(&mut [0; 1]).await.unwrap();
        clients.push(client);
    }
    proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    clients[0].shutdown().await.unwrap();
    clients.push(TcpStream::connect(proxy.local_addr()).await.unwrap());
    timeout(PROMPTLY, proxy.handle().wait_for_stats(|s| s.open == 4)).await.unwrap();
    clients
}

async fn assert_closed(clients: &mut [TcpStream]) {
    for client in clients {
        let read = timeout(PROMPTLY, client.read(&mut [0; 8])).await.expect("closed in time");
        assert!(matches!(read, Ok(0)) || read.is_err(), "expected a close, got {read:?}");
    }
}

#[tokio::test]
async fn shutdown_stops_every_task_and_closes_every_socket() {
    let baseline = alive_tasks();
    let echo = EchoServer::start().unwrap();
    let proxy = FaultProxy::start(echo.local_addr()).unwrap();
    let (addr, handle) = (proxy.local_addr(), proxy.handle().clone());
    let mut clients = busy_proxy(&proxy).await;
    assert!(alive_tasks() > baseline);

    timeout(PROMPTLY, proxy.shutdown()).await.expect("shutdown in time");
    assert_eq!(handle.stats().open, 0);
    assert_refused(addr).await;
    assert_closed(&mut clients).await;
    assert!(matches!(handle.set_mode(FaultMode::Pass).await, Err(ProxyError::ShutDown)));

    let echo_addr = echo.local_addr();
    timeout(PROMPTLY, echo.shutdown()).await.expect("echo shutdown in time");
    assert_refused(echo_addr).await;
    assert_eq!(alive_tasks(), baseline, "a task outlived shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_multi_thread_runtime_returns_with_every_connection_closed() {
    let echo = EchoServer::start().unwrap();
    let proxy = FaultProxy::start(echo.local_addr()).unwrap();
    let (addr, handle) = (proxy.local_addr(), proxy.handle().clone());
    let mut clients = Vec::new();
    for _ in 0..12 {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        client.read_exact(&mut [0; 1]).await.unwrap();
        clients.push(client);
    }
    proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    for _ in 0..4 {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    timeout(PROMPTLY, handle.wait_for_stats(|s| s.open == 16)).await.unwrap();

    timeout(PROMPTLY, proxy.shutdown()).await.expect("shutdown in time");
    // No waiting here: `shutdown` itself must have waited for every connection task.
    assert_eq!(handle.stats().open, 0);
    assert_refused(addr).await;
    assert_closed(&mut clients).await;
    echo.shutdown().await;
}

#[tokio::test]
async fn shutdown_while_refusing_leaves_the_port_closed() {
    let baseline = alive_tasks();
    let echo = EchoServer::start().unwrap();
    let proxy = FaultProxy::start(echo.local_addr()).unwrap();
    let addr = proxy.local_addr();
    proxy.handle().set_mode(FaultMode::Refuse).await.unwrap();
    proxy.shutdown().await;
    echo.shutdown().await;
    assert_refused(addr).await;
    assert_eq!(alive_tasks(), baseline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_stops_every_task_and_closes_every_socket() {
    let baseline = alive_tasks();
    let echo = EchoServer::start().unwrap();
    let proxy = FaultProxy::start(echo.local_addr()).unwrap();
    let (addr, handle) = (proxy.local_addr(), proxy.handle().clone());
    let mut clients = busy_proxy(&proxy).await;

    drop(proxy);
    // Dropping does not wait; the counters tell when the runtime has dropped the
    // aborted tasks (the accept loop, and with it the listener, goes first).
    timeout(PROMPTLY, handle.wait_for_stats(|s| s.open == 0)).await.expect("drained in time");
    assert_closed(&mut clients).await;
    assert_refused(addr).await;
    echo.shutdown().await;
    // An aborted task leaves the runtime's task list just after its future is
    // dropped, possibly on another worker, and nothing signals that moment: yield
    // until it happens, bounded so a real leak fails the test.
    let all_gone = async {
        while alive_tasks() > baseline {
            tokio::task::yield_now().await;
        }
    };
    timeout(PROMPTLY, all_gone).await.expect("a task outlived drop");
}

#[tokio::test]
async fn line_server_answers_ping_and_closes_on_quit() {
    let server = LineServer::ping_pong().unwrap();
    let mut client = BufReader::new(TcpStream::connect(server.local_addr()).await.unwrap());
    let mut reply = String::new();
    for (request, expected) in [("PING\n", "PONG\n"), ("HELLO\n", "ERR unknown command\n")] {
        reply.clear();
        client.get_mut().write_all(request.as_bytes()).await.unwrap();
        client.read_line(&mut reply).await.unwrap();
        assert_eq!(reply, expected);
    }
    client.get_mut().write_all(b"QUIT\n").await.unwrap();
    reply.clear();
    assert_eq!(client.read_line(&mut reply).await.unwrap(), 0);
    assert_eq!(server.accepted(), 1);
    server.shutdown().await;
}
