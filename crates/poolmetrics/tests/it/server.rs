//! The built-in endpoint cannot be stalled: idle and trickling clients delay no other
//! client, every connection is closed at its deadline, and connections are bounded.

use crate::support::{ScriptedPool, http_get, sample, scripted_workload};
use poolside_metrics::{MetricsError, PoolMetrics};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Reads until the server closes the connection; returns when that happened.
fn wait_closed(mut conn: TcpStream, limit: Duration) -> Instant {
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut sink = [0u8; 1024];
    loop {
        match conn.read(&mut sink) {
            Ok(0) => return Instant::now(),
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return Instant::now(),
            Err(err) => panic!("the server did not close the connection within {limit:?}: {err}"),
        }
    }
}

fn raw_get(addr: SocketAddr, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn idle_and_trickling_clients_stall_no_scrape_and_are_closed_at_the_deadline() {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("stall", &pool).unwrap();
    scripted_workload(&pool);
    let timeout = Duration::from_secs(1);
    let server =
        metrics.server().max_connections(64).request_timeout(timeout).serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();

    let opened = Instant::now();
    let idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let trickling = Arc::new(AtomicBool::new(true));
    let trickler = {
        let trickling = trickling.clone();
        std::thread::spawn(move || {
            let mut conn = TcpStream::connect(addr).unwrap();
            let started = Instant::now();
            let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".iter();
            // A byte, then a second of waiting for the server, which is also how the
            // close is noticed the moment it happens.
            conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut sink = [0u8; 1024];
            while trickling.load(Ordering::Relaxed) {
                if let Some(byte) = request.next() {
                    let _ = conn.write_all(&[*byte]);
                }
                match conn.read(&mut sink) {
                    Ok(0) => return (started, Instant::now()),
                    Err(err) if err.kind() == ErrorKind::ConnectionReset => {
                        return (started, Instant::now());
                    }
                    Ok(_) => {}
                    Err(_) => {} // a second without news: the next byte
                }
            }
            panic!("the trickler was never closed");
        })
    };
    std::thread::sleep(Duration::from_millis(50)); // every stalling client is connected

    for _ in 0..10 {
        let started = Instant::now();
        let (status, _, text) = http_get(&format!("http://{addr}/metrics"));
        let took = started.elapsed();
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(100), "a scrape took {took:?} behind stalled clients");
        let labels = [("pool", "stall"), ("kind", "scripted")];
        assert_eq!(sample(&text, "poolside_scripted_acquires_total", &labels), Some(10.0));
    }

    for conn in idle {
        let closed = wait_closed(conn, Duration::from_secs(3));
        let open_for = closed.duration_since(opened);
        assert!(open_for >= timeout - Duration::from_millis(100), "closed early: {open_for:?}");
        assert!(open_for < timeout + Duration::from_millis(900), "closed late: {open_for:?}");
    }
    std::thread::sleep(Duration::from_millis(500));
    trickling.store(false, Ordering::Relaxed);
    let (started, closed) = trickler.join().unwrap();
    let held = closed.duration_since(started);
    assert!(
        held < timeout + Duration::from_millis(900),
        "the trickler held its connection {held:?}"
    );
    // And the server still answers after all that.
    assert!(raw_get(addr, "/metrics").starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn connections_beyond_the_bound_are_refused_at_once() {
    let metrics = PoolMetrics::new();
    let server = metrics
        .server()
        .max_connections(2)
        .request_timeout(Duration::from_millis(500))
        .serve("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let holders: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    // Refused before the request is read: the answer is there without sending one.
    let mut refused = TcpStream::connect(addr).unwrap();
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(200));
    // Once the holders reach their deadline, their slots are free again.
    for conn in holders {
        wait_closed(conn, Duration::from_secs(3));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(raw_get(addr, "/metrics").starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn malformed_and_oversized_requests_get_clear_statuses() {
    let metrics = PoolMetrics::new();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"\x00\x01 not http\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");

    let mut conn = TcpStream::connect(addr).unwrap();
    let huge = format!("GET /metrics HTTP/1.1\r\nX-Fill: {}\r\n", "a".repeat(9000));
    let _ = conn.write_all(huge.as_bytes());
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let head = {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn server_options_out_of_range_are_typed_errors() {
    let metrics = PoolMetrics::new();
    let cases: [(&str, poolside_metrics::ServerBuilder); 6] = [
        ("max_connections 0", metrics.server().max_connections(0)),
        ("max_connections usize::MAX", metrics.server().max_connections(usize::MAX)),
        ("max_connections 4097", metrics.server().max_connections(4097)),
        ("request_timeout 0", metrics.server().request_timeout(Duration::ZERO)),
        ("request_timeout MAX", metrics.server().request_timeout(Duration::MAX)),
        ("request_timeout 2 h", metrics.server().request_timeout(Duration::from_secs(7200))),
    ];
    for (what, builder) in cases {
        let err = builder.serve("127.0.0.1:0").unwrap_err();
        assert!(matches!(err, MetricsError::InvalidConfig(_)), "{what}: {err}");
    }
    for edge in [
        metrics.server().max_connections(1),
        metrics.server().max_connections(4096),
        metrics.server().request_timeout(Duration::from_nanos(1)),
        metrics.server().request_timeout(Duration::from_secs(3600)),
    ] {
        edge.serve("127.0.0.1:0").expect("the bounds themselves are accepted");
    }
}

#[test]
fn metrics_and_debug_vars_are_served_with_their_content_types() {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("orders", &pool).unwrap();
    scripted_workload(&pool);
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let (status, content_type, text) = http_get(&format!("http://{}/metrics", server.local_addr()));
    assert_eq!(status, 200);
    assert_eq!(content_type, poolside_metrics::CONTENT_TYPE);
    assert_eq!(text, metrics.render_prometheus(), "the endpoint serves render_prometheus");
    let (status, content_type, body) =
        http_get(&format!("http://{}/debug/vars?pretty=0", server.local_addr()));
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(body, metrics.snapshot_json());
}

#[test]
fn unknown_paths_and_methods_get_clear_statuses() {
    let metrics = PoolMetrics::new();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let (status, _, _) = http_get(&format!("http://{}/nope", server.local_addr()));
    assert_eq!(status, 404);
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response =
        agent.post(&format!("http://{}/metrics", server.local_addr())).send("x").unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers().get("allow").unwrap(), "GET, HEAD");
    let (status, _, body) = http_get(&format!("http://{}/", server.local_addr()));
    assert_eq!(status, 200);
    assert!(body.contains("/metrics"));
}

#[test]
fn bad_listen_addresses_give_clear_errors() {
    let metrics = PoolMetrics::new();
    let err = metrics.serve("not an address").unwrap_err();
    assert!(matches!(err, MetricsError::InvalidAddress { .. }), "{err}");
    assert!(err.to_string().starts_with(r#"invalid listen address "not an address""#), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = metrics.serve(&addr).unwrap_err();
    assert!(matches!(err, MetricsError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn the_server_stops_when_dropped() {
    let metrics = PoolMetrics::new();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    drop(server);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    std::net::TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn shutdown_is_prompt_while_idle_clients_hold_every_slot() {
    let metrics = PoolMetrics::new();
    let server = metrics
        .server()
        .max_connections(2)
        .request_timeout(Duration::from_secs(30))
        .serve("0.0.0.0:0")
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let holders: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.shutdown(); // a wildcard listener is woken through loopback
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    drop(holders);
}
