//! A service with one pool of every kind, all registered with one `PoolMetrics`:
//! object, buffer and `BytesMut` pools, a worker pool, a connection pool, a sharded
//! connection pool and a failover pair. Shared by the `metrics_endpoint` example and
//! by the test that checks docs/grafana-dashboard.json against its scrape.

use poolside_bufpool::{BufPool, BytesPool, Pool};
use poolside_connpool::{
    Builder, Manager, WaitPolicy, failover::FailoverBuilder, failover::FailoverPool,
    sharded::ShardedPool,
};
use poolside_metrics::{PoolMetrics, Registration};
use poolside_workerpool::WorkerPool;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A stand-in backend: "connections" are numbers.
pub(crate) struct Backend {
    opened: AtomicU64,
}

impl Backend {
    fn new() -> Self {
        Backend { opened: AtomicU64::new(0) }
    }
}

impl Manager for Backend {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(self.opened.fetch_add(1, Ordering::Relaxed))
    }

    async fn check(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Every pool of the service, and the registrations that keep them exported.
pub(crate) struct Service {
    pub(crate) objects: Arc<Pool<Vec<u8>>>,
    pub(crate) buffers: Arc<BufPool>,
    pub(crate) bytes: Arc<BytesPool>,
    pub(crate) jobs: Arc<WorkerPool>,
    pub(crate) db: Arc<poolside_connpool::Pool<Backend>>,
    pub(crate) sessions: Arc<ShardedPool<str, Backend>>,
    pub(crate) ledger: Arc<FailoverPool<Backend>>,
    /// Dropping these would remove the pools' series.
    #[allow(dead_code)]
    pub(crate) registrations: Vec<Registration>,
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

impl Service {
    /// Builds every pool (inside a tokio runtime) and registers it with `metrics`;
    /// pools that record timings get a hook from `metrics.timing_hook`.
    pub(crate) async fn start(metrics: &PoolMetrics) -> Result<Service, AnyError> {
        let objects = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(256)));
        let buffers = Arc::new(BufPool::new());
        let bytes = Arc::new(BytesPool::new(4096)?);
        let jobs = Arc::new(
            WorkerPool::builder().workers(2).events(metrics.timing_hook("jobs")?).build()?,
        );
        let db = Arc::new(
            Builder::new()
                .max_size(8)
                .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
                .events(metrics.timing_hook("orders-db")?)
                .build(Backend::new())?,
        );
        let session_events = metrics.timing_hook("sessions")?;
        let shards = (0..2)
            .map(|_| {
                Builder::new().max_size(4).events(session_events.clone()).build(Backend::new())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sessions = Arc::new(ShardedPool::new(shards)?);
        let primary = Builder::new().max_size(4).build(Backend::new())?;
        let spare = Builder::new().max_size(4).min_idle(1).build(Backend::new())?;
        let ledger = Arc::new(FailoverBuilder::new().build(primary, spare)?);

        let registrations = vec![
            metrics.register("objects", &objects)?,
            metrics.register("buffers", &buffers)?,
            metrics.register("bytes", &bytes)?,
            metrics.register("jobs", &jobs)?,
            metrics.register("orders-db", &db)?,
            metrics.register("sessions", &sessions)?,
            metrics.register("ledger", &ledger)?,
        ];
        Ok(Service { objects, buffers, bytes, jobs, db, sessions, ledger, registrations })
    }

    /// One round of work on every pool.
    pub(crate) async fn exercise(&self) -> Result<(), AnyError> {
        drop(self.objects.get());
        for size in [100, 5_000, 70_000] {
            let mut buf = self.buffers.get(size);
            buf.extend_from_slice(b"payload");
        }
        drop(self.bytes.get());
        self.jobs.spawn(|_| 2 + 2)?.join()?;
        drop(self.db.get().await?);
        drop(self.sessions.get("customer:17").await?);
        drop(self.ledger.get().await?);
        Ok(())
    }
}
