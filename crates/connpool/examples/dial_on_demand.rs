//! A TCP connection pool that dials on demand: no connection exists until the first
//! `get`, and at most `max_size` ever do. Talks to an echo server it starts on loopback.
//!
//! `cargo run -p poolside-connpool --example dial_on_demand`

use poolside_connpool::{Builder, tcp::TcpManager};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TcpListener::bind("127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = server.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });

    let pool = Builder::new().max_size(4).build(TcpManager::new(addr.to_string()))?;
    println!("before the first get: {:?}", pool.status());
    for round in 0..10 {
        let mut conn = pool.get().await?;
        conn.write_all(format!("ping {round}").as_bytes()).await?;
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await?;
        assert_eq!(&buf[..n], format!("ping {round}").as_bytes());
    }
    println!("after 10 sequential round trips: {:?} (one connection, reused)", pool.status());
    let conns = futures_like_join(&pool).await?;
    println!("4 held at once: {:?}", pool.status());
    drop(conns);
    pool.close();
    Ok(())
}

/// Holds every connection of the pool at the same time.
async fn futures_like_join(
    pool: &poolside_connpool::Pool<TcpManager>,
) -> Result<Vec<poolside_connpool::PooledConn<'_, TcpManager>>, Box<dyn std::error::Error>> {
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await?);
    }
    Ok(held)
}
