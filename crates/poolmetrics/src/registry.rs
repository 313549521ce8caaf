//! The set of exported pools and the collector that keeps their series current.

use crate::exposition;
use crate::naming::{series_name, validate_pool_name};
use crate::{MetricsError, hook::TimingHistograms};
use metrics::{Key, Label};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use poolside_core::{Events, Instrumented, Metric, MetricKind, Snapshot};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// A pool as the registry holds it: weakly, so registering never keeps a pool alive.
type WeakPool = Weak<dyn Instrumented + Send + Sync>;

/// Exports poolside pools through the `metrics` facade: one [`PoolMetrics`] per
/// process is typical.
///
/// Each registered pool gets its own `metrics` recorder (a Prometheus recorder from
/// `metrics-exporter-prometheus`), which is what makes deregistration exact: dropping a
/// [`Registration`] (or the pool) removes every series of that pool, histograms
/// included, instead of leaving stale values behind. Gauges and counters are read from
/// the pool's [`Instrumented`] report when collected — on every scrape, or on an
/// interval with [`PoolMetrics::spawn_collector`] — so the pools' hot paths pay nothing
/// for them. Timings arrive through the [`Events`] hook from
/// [`PoolMetrics::timing_hook`].
///
/// ```
/// use poolside_metrics::{PoolMetrics, Instrumented};
/// # use poolside_core::{MetricDesc, MetricVisitor, Metric};
/// # use std::sync::Arc;
/// # static IDLE: MetricDesc = MetricDesc::gauge("idle", "Idle objects.");
/// # static CATALOGUE: [&MetricDesc; 1] = [&IDLE];
/// # struct MyPool;
/// # impl Instrumented for MyPool {
/// #     fn kind(&self) -> &'static str { "demo" }
/// #     fn catalogue(&self) -> &'static [&'static MetricDesc] { &CATALOGUE }
/// #     fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
/// #         v.visit(Metric { desc: &IDLE, labels: &[], value: 2 });
/// #     }
/// # }
///
/// let metrics = PoolMetrics::new();
/// let pool = Arc::new(MyPool);
/// let registration = metrics.register("scratch", &pool)?;
///
/// let text = metrics.render_prometheus();
/// assert!(text.contains(r#"poolside_demo_idle{pool="scratch",kind="demo"} 2"#));
///
/// drop(registration); // the series go with it
/// assert!(!metrics.render_prometheus().contains("poolside_demo_idle"));
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[derive(Clone)]
pub struct PoolMetrics {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: Config,
    next_id: AtomicU64,
    entries: Mutex<Vec<Arc<Entry>>>,
}

#[derive(Debug, Clone)]
struct Config {
    max_pools: usize,
    forward_to_global: bool,
}

/// One exported pool: its identity, its private recorder and its timing histograms.
pub(crate) struct Entry {
    id: u64,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pool: Mutex<Option<WeakPool>>,
    pub(crate) recorder: PrometheusRecorder,
    timings: Arc<TimingHistograms>,
}

impl Entry {
    fn live_pool(&self) -> Option<Arc<dyn Instrumented + Send + Sync>> {
        lock(&self.pool).as_ref().and_then(Weak::upgrade)
    }

    /// Whether a pool was attached and has since been dropped.
    fn pool_is_gone(&self) -> bool {
        lock(&self.pool).as_ref().is_some_and(|weak| weak.strong_count() == 0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (every critical
    // section is a single push, remove or assignment), so poisoning is ignored.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`PoolMetrics`] with non-default settings.
///
/// ```
/// let metrics = poolside_metrics::PoolMetrics::builder()
///     .max_pools(16)
///     .forward_to_global(true)
///     .build()?;
/// # drop(metrics);
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolMetricsBuilder {
    config: Config,
}

impl PoolMetricsBuilder {
    /// The most pools that may be registered at once (default 64): a bound on label
    /// cardinality, so a pool created per request cannot flood the metrics backend.
    pub fn max_pools(mut self, max: usize) -> Self {
        self.config.max_pools = max;
        self
    }

    /// Also send every value to the process-wide `metrics` recorder (default off),
    /// for applications that export through their own recorder (statsd, Datadog,
    /// OpenTelemetry...). Series removal is then up to that recorder.
    pub fn forward_to_global(mut self, forward: bool) -> Self {
        self.config.forward_to_global = forward;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<PoolMetrics, MetricsError> {
        if self.config.max_pools == 0 {
            return Err(MetricsError::InvalidConfig("max_pools must be at least 1"));
        }
        Ok(PoolMetrics {
            shared: Arc::new(Shared {
                config: self.config,
                next_id: AtomicU64::new(1),
                entries: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics::new()
    }
}

impl PoolMetrics {
    /// Default settings: at most 64 pools, nothing forwarded to the global recorder.
    pub fn new() -> Self {
        PoolMetrics::builder().build().expect("the default configuration is valid")
    }

    /// Starts a [`PoolMetricsBuilder`].
    pub fn builder() -> PoolMetricsBuilder {
        PoolMetricsBuilder { config: Config { max_pools: 64, forward_to_global: false } }
    }

    /// Exports `pool` under `name`. The registry keeps only a weak reference: when the
    /// pool is dropped its series disappear at the next collection; dropping the
    /// returned [`Registration`] removes them at once.
    ///
    /// Fails when the name is not a valid label value, when a live pool of the same
    /// kind already uses the name, or when `max_pools` pools are registered.
    pub fn register<P>(&self, name: &str, pool: &Arc<P>) -> Result<Registration, MetricsError>
    where
        P: Instrumented + Send + Sync + 'static,
    {
        validate_pool_name(name)?;
        let kind = pool.kind();
        let dyn_pool: Arc<dyn Instrumented + Send + Sync> = pool.clone();
        let weak: WeakPool = Arc::downgrade(&dyn_pool);
        let entry = {
            let mut entries = lock(&self.shared.entries);
            entries.retain(|e| !e.pool_is_gone());
            match entries.iter().find(|e| e.kind == kind && e.name == name) {
                Some(existing) => {
                    let mut slot = lock(&existing.pool);
                    if slot.as_ref().is_some_and(|w| w.strong_count() > 0) {
                        return Err(MetricsError::DuplicatePool { kind, name: name.to_owned() });
                    }
                    *slot = Some(weak);
                    existing.clone()
                }
                None => {
                    let entry = self.new_entry(&entries, kind, name, Some(weak))?;
                    entries.push(entry.clone());
                    entry
                }
            }
        };
        self.describe(&entry, &*dyn_pool);
        self.push_values(&entry, &*dyn_pool);
        tracing::debug!(pool = name, kind, "registered pool for metrics export");
        Ok(Registration {
            shared: Arc::downgrade(&self.shared),
            id: entry.id,
            name: entry.name.clone(),
            kind,
        })
    }

    /// An [`Events`] hook that records the pool's timings (acquire wait, dial, queue
    /// wait, job run) as histograms `poolside_<kind>_<timing>_seconds{pool, kind}`.
    ///
    /// Give it to the pool's builder, then [`register`](Self::register) the pool under
    /// the same `kind` and `name`; the histograms join the pool's other series and are
    /// removed with them. Recording costs one histogram update per event, and nothing
    /// at all for pools built without a hook.
    ///
    /// ```
    /// use poolside_core::Timing;
    /// use std::time::Duration;
    ///
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let events = metrics.timing_hook("connpool", "orders-db")?;
    /// events.record(Timing::AcquireWait, Duration::from_micros(40));
    /// assert!(metrics
    ///     .render_prometheus()
    ///     .contains(r#"poolside_connpool_acquire_wait_seconds_count{pool="orders-db",kind="connpool"} 1"#));
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn timing_hook(&self, kind: &'static str, name: &str) -> Result<Events, MetricsError> {
        validate_pool_name(name)?;
        let mut entries = lock(&self.shared.entries);
        entries.retain(|e| !e.pool_is_gone());
        let entry = match entries.iter().find(|e| e.kind == kind && e.name == name) {
            Some(existing) => existing.clone(),
            None => {
                let entry = self.new_entry(&entries, kind, name, None)?;
                entries.push(entry.clone());
                entry
            }
        };
        Ok(Events::from_arc(entry.timings.clone()))
    }

    fn new_entry(
        &self,
        entries: &[Arc<Entry>],
        kind: &'static str,
        name: &str,
        pool: Option<WeakPool>,
    ) -> Result<Arc<Entry>, MetricsError> {
        let limit = self.shared.config.max_pools;
        if entries.len() >= limit {
            return Err(MetricsError::TooManyPools { limit });
        }
        let recorder = PrometheusBuilder::new().build_recorder();
        let timings =
            Arc::new(TimingHistograms::new(kind, name, self.shared.config.forward_to_global));
        Ok(Arc::new(Entry {
            id: self.shared.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            kind,
            pool: Mutex::new(pool),
            recorder,
            timings,
        }))
    }

    fn describe(&self, entry: &Entry, pool: &dyn Instrumented) {
        let describe = || {
            for desc in pool.catalogue() {
                let name = series_name(entry.kind, desc.name);
                match desc.kind {
                    MetricKind::Gauge => metrics::describe_gauge!(name, desc.help),
                    MetricKind::Counter => metrics::describe_counter!(name, desc.help),
                }
            }
        };
        self.in_recorders(entry, describe);
    }

    /// Reads the pool's current values into its recorder (and the global one when
    /// forwarding).
    fn push_values(&self, entry: &Entry, pool: &dyn Instrumented) {
        let push = || {
            pool.visit_metrics(&mut |m: Metric<'_>| {
                let mut labels = Vec::with_capacity(2 + m.labels.len());
                labels.push(Label::new("pool", entry.name.clone()));
                labels.push(Label::new("kind", entry.kind));
                labels.extend(m.labels.iter().map(|&(k, v)| Label::new(k, v.to_owned())));
                let name = series_name(entry.kind, m.desc.name);
                match m.desc.kind {
                    MetricKind::Gauge => metrics::gauge!(name, labels).set(m.value as f64),
                    MetricKind::Counter => metrics::counter!(name, labels).absolute(m.value),
                }
            })
        };
        self.in_recorders(entry, push);
    }

    /// Runs `record` against the pool's own recorder, then the global one when
    /// forwarding.
    fn in_recorders(&self, entry: &Entry, record: impl Fn()) {
        metrics::with_local_recorder(&entry.recorder, &record);
        if self.shared.config.forward_to_global {
            record();
        }
    }

    /// Reads every live pool's gauges and counters into the metrics recorders and
    /// forgets pools that were dropped. Called on every scrape and by the interval
    /// collector; call it yourself before reading the global recorder.
    pub fn collect(&self) {
        for (entry, pool) in self.live_entries() {
            self.push_values(&entry, &*pool);
        }
    }

    /// The live entries with their pools, after dropping the entries of dead pools.
    fn live_entries(&self) -> Vec<(Arc<Entry>, Arc<dyn Instrumented + Send + Sync>)> {
        let mut entries = lock(&self.shared.entries);
        let before = entries.len();
        entries.retain(|e| !e.pool_is_gone());
        if entries.len() != before {
            tracing::debug!(
                removed = before - entries.len(),
                "dropped pools removed from metrics export"
            );
        }
        entries.iter().filter_map(|e| Some((e.clone(), e.live_pool()?))).collect()
    }

    /// Every exported series in the Prometheus text exposition format, freshly
    /// collected. This is what the `/metrics` endpoint serves.
    pub fn render_prometheus(&self) -> String {
        self.collect();
        let entries: Vec<Arc<Entry>> = lock(&self.shared.entries).clone();
        let renders: Vec<String> = entries
            .iter()
            .flat_map(|e| {
                let handle = e.recorder.handle();
                handle.run_upkeep();
                [handle.render(), e.timings.render(e.kind, &e.name)]
            })
            .collect();
        exposition::merge(&renders)
    }

    /// A JSON document with every registered pool's current values, in the spirit of
    /// Go's `/debug/vars`. This is what the `/debug/vars` endpoint serves.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let json: serde_json::Value = serde_json::from_str(&metrics.snapshot_json()).unwrap();
    /// assert_eq!(json["pools"].as_array().unwrap().len(), 0);
    /// ```
    pub fn snapshot_json(&self) -> String {
        let pools: Vec<(String, Snapshot)> = self
            .live_entries()
            .into_iter()
            .map(|(entry, pool)| (entry.name.clone(), Snapshot::of(&*pool)))
            .collect();
        crate::json::render(&pools)
    }

    /// The number of pools currently exported (live pools and pending timing hooks).
    pub fn len(&self) -> usize {
        let mut entries = lock(&self.shared.entries);
        entries.retain(|e| !e.pool_is_gone());
        entries.len()
    }

    /// Whether no pool is exported.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Collects on a background thread every `interval` until the returned
    /// [`Collector`] is dropped. Only needed with
    /// [`forward_to_global`](PoolMetricsBuilder::forward_to_global): the Prometheus
    /// endpoint collects on every scrape by itself.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let collector = metrics.spawn_collector(std::time::Duration::from_secs(5))?;
    /// drop(collector); // stops and joins the thread
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn spawn_collector(&self, interval: Duration) -> Result<Collector, MetricsError> {
        if interval.is_zero() {
            return Err(MetricsError::InvalidConfig("the collection interval must be positive"));
        }
        Ok(Collector::spawn(self.clone(), interval))
    }

    pub(crate) fn remove(shared: &Shared, id: u64) {
        lock(&shared.entries).retain(|e| e.id != id);
    }
}

impl fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = lock(&self.shared.entries);
        let names: Vec<String> = entries.iter().map(|e| format!("{}/{}", e.kind, e.name)).collect();
        f.debug_struct("PoolMetrics")
            .field("pools", &names)
            .field("max_pools", &self.shared.config.max_pools)
            .field("forward_to_global", &self.shared.config.forward_to_global)
            .finish()
    }
}

/// Keeps a pool exported; dropping it removes every series of the pool.
///
/// ```
/// # use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
/// # use std::sync::Arc;
/// # struct P;
/// # impl Instrumented for P {
/// #     fn kind(&self) -> &'static str { "demo" }
/// #     fn catalogue(&self) -> &'static [&'static MetricDesc] { &[] }
/// #     fn visit_metrics(&self, _: &mut dyn MetricVisitor) {}
/// # }
/// let metrics = poolside_metrics::PoolMetrics::new();
/// let registration = metrics.register("a", &Arc::new(P))?;
/// assert_eq!(registration.name(), "a");
/// registration.deregister();
/// assert!(metrics.is_empty());
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[must_use = "dropping the registration removes the pool's series at once"]
pub struct Registration {
    shared: Weak<Shared>,
    id: u64,
    name: String,
    kind: &'static str,
}

impl Registration {
    /// The name the pool is exported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Removes the pool's series now (the same as dropping the registration).
    pub fn deregister(self) {
        drop(self);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            PoolMetrics::remove(&shared, self.id);
            tracing::debug!(pool = %self.name, kind = self.kind, "deregistered pool from metrics export");
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("name", &self.name).field("kind", &self.kind).finish()
    }
}

/// A background thread collecting on an interval; dropping it stops and joins the
/// thread.
#[derive(Debug)]
pub struct Collector {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn spawn(metrics: PoolMetrics, interval: Duration) -> Collector {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("poolside-metrics-collector".into())
            .spawn(move || {
                // A message or a disconnect both mean stop; a timeout means collect.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    metrics.collect();
                }
            })
            .expect("spawning the collector thread");
        Collector { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The key of a pool-labelled series in a given recorder.
pub(crate) fn pool_key(name: String, pool: &str, kind: &'static str) -> Key {
    Key::from_parts(name, vec![Label::new("pool", pool.to_owned()), Label::new("kind", kind)])
}
