//! The set of exported pools, their pending timing hooks, and the builder.

use crate::MetricsError;
use crate::hook::{DEFAULT_BUCKETS, TimingHistograms};
use crate::naming::{family_name, histogram_name, validate_catalogue, validate_pool_name};
use poolside_core::{Events, Instrumented, MetricKind};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// A pool as the registry holds it: weakly, so registering never keeps a pool alive.
pub(crate) type DynPool = dyn Instrumented + Send + Sync;

/// The largest accepted [`PoolMetricsBuilder::max_pools`].
pub const MAX_POOLS_LIMIT: usize = 4096;
/// The most histogram buckets accepted by [`PoolMetricsBuilder::histogram_buckets`].
pub const MAX_BUCKETS: usize = 64;
/// The largest accepted histogram bucket bound.
pub const MAX_BUCKET_BOUND: Duration = Duration::from_secs(24 * 60 * 60);

/// Collects every registered pool's statistics at scrape time and renders them as
/// one Prometheus text exposition. One per process is typical; clones share it.
///
/// Nothing is recorded between scrapes: [`render_prometheus`](Self::render_prometheus)
/// visits each live pool's [`Instrumented`] report once and writes its values, so a
/// registered pool runs exactly the same hot path as an unregistered one. Timings
/// (acquire wait, dial, queue wait, job run) arrive through the [`Events`] hook from
/// [`timing_hook`](Self::timing_hook) and become `_seconds` histograms.
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
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_pools: usize,
    /// Histogram upper bounds in nanoseconds, strictly increasing.
    pub(crate) bounds: Box<[u64]>,
    #[cfg(feature = "facade")]
    pub(crate) forward_to_global: bool,
}

#[derive(Default)]
struct State {
    /// Registered pools, in registration order.
    entries: Vec<Arc<Entry>>,
    /// Timing hooks whose pool has not registered yet: held weakly, so a hook whose
    /// pool is dropped without registering disappears with it.
    pending: Vec<(String, Weak<TimingHistograms>)>,
}

impl State {
    /// Forgets dropped pools and hooks nobody holds any more.
    fn prune(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|e| e.pool.strong_count() > 0);
        if self.entries.len() != before {
            tracing::debug!(
                removed = before - self.entries.len(),
                "dropped pools removed from metrics export"
            );
        }
        self.pending.retain(|(_, hook)| hook.strong_count() > 0);
    }
}

/// One exported pool.
pub(crate) struct Entry {
    id: u64,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pool: Weak<DynPool>,
    pub(crate) timings: Option<Arc<TimingHistograms>>,
    /// Every family the pool declared, with its type (`None`: a histogram).
    families: Vec<(String, Option<MetricKind>)>,
}

impl Entry {
    /// Whether the pool declared `family` with this type when it registered: a value it
    /// reports under any other family (a metric missing from its catalogue, whose name
    /// was never checked) is not exported.
    pub(crate) fn declares(&self, family: &str, kind: MetricKind) -> bool {
        self.families.iter().any(|(f, t)| f == family && *t == Some(kind))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a push, a retain or a clone of plain data, and no user
    // code runs under the lock: a poisoned lock still holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`PoolMetrics`] with non-default settings; every setting is validated by
/// [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
///
/// let metrics = poolside_metrics::PoolMetrics::builder()
///     .max_pools(16)
///     .histogram_buckets([Duration::from_millis(1), Duration::from_millis(10), Duration::from_secs(1)])
///     .build()?;
/// # drop(metrics);
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolMetricsBuilder {
    max_pools: usize,
    buckets: Vec<Duration>,
    #[cfg(feature = "facade")]
    forward_to_global: bool,
}

impl PoolMetricsBuilder {
    /// The most pools that may be registered at once, and separately the most timing
    /// hooks waiting for their pool to register (default 64, at most
    /// [`MAX_POOLS_LIMIT`]): a bound on label cardinality, so a pool created per
    /// request cannot flood the metrics backend.
    ///
    /// ```
    /// let err = poolside_metrics::PoolMetrics::builder().max_pools(usize::MAX).build();
    /// assert!(err.is_err());
    /// ```
    pub fn max_pools(mut self, max: usize) -> Self {
        self.max_pools = max;
        self
    }

    /// Upper bounds of the timing histograms' buckets (default [`DEFAULT_BUCKETS`],
    /// 1 µs to 30 s): 1 to [`MAX_BUCKETS`] positive bounds, strictly increasing, none
    /// above [`MAX_BUCKET_BOUND`]. A `+Inf` bucket is always added.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = poolside_metrics::PoolMetrics::builder()
    ///     .histogram_buckets([Duration::from_secs(1), Duration::from_millis(1)])
    ///     .build();
    /// assert!(err.is_err(), "bounds must increase");
    /// ```
    pub fn histogram_buckets(mut self, bounds: impl IntoIterator<Item = Duration>) -> Self {
        self.buckets = bounds.into_iter().take(MAX_BUCKETS + 1).collect();
        self
    }

    /// Validates the settings.
    ///
    /// ```
    /// assert!(poolside_metrics::PoolMetrics::builder().max_pools(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<PoolMetrics, MetricsError> {
        if self.max_pools == 0 || self.max_pools > MAX_POOLS_LIMIT {
            return Err(MetricsError::InvalidConfig("max_pools must be between 1 and 4096"));
        }
        let bounds = validate_buckets(&self.buckets)?;
        Ok(PoolMetrics {
            shared: Arc::new(Shared {
                config: Config {
                    max_pools: self.max_pools,
                    bounds,
                    #[cfg(feature = "facade")]
                    forward_to_global: self.forward_to_global,
                },
                next_id: AtomicU64::new(1),
                state: Mutex::new(State::default()),
            }),
        })
    }
}

#[cfg(feature = "facade")]
impl PoolMetricsBuilder {
    /// Also send every value and timing to the application's global `metrics`
    /// recorder (default off; feature `facade`), for applications that export
    /// through their own recorder (metrics-exporter-prometheus, statsd, OpenTelemetry
    /// bridges...). Values reach it on [`PoolMetrics::collect`], which
    /// [`PoolMetrics::spawn_collector`] calls on an interval; timings as they happen.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::builder().forward_to_global(true).build()?;
    /// metrics.collect();
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn forward_to_global(mut self, forward: bool) -> Self {
        self.forward_to_global = forward;
        self
    }
}

fn validate_buckets(buckets: &[Duration]) -> Result<Box<[u64]>, MetricsError> {
    if buckets.is_empty() || buckets.len() > MAX_BUCKETS {
        return Err(MetricsError::InvalidConfig(
            "histogram_buckets must hold between 1 and 64 bounds",
        ));
    }
    if buckets.iter().any(|b| b.is_zero() || *b > MAX_BUCKET_BOUND) {
        return Err(MetricsError::InvalidConfig(
            "histogram_buckets bounds must be above zero and at most 24 hours",
        ));
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(MetricsError::InvalidConfig("histogram_buckets bounds must strictly increase"));
    }
    // At most 24 h: every bound fits in u64 nanoseconds.
    Ok(buckets.iter().map(|b| b.as_nanos() as u64).collect())
}

impl Default for PoolMetrics {
    fn default() -> Self {
        PoolMetrics::new()
    }
}

impl PoolMetrics {
    /// Default settings: at most 64 pools, [`DEFAULT_BUCKETS`], nothing forwarded.
    ///
    /// ```
    /// assert!(poolside_metrics::PoolMetrics::new().is_empty());
    /// ```
    pub fn new() -> Self {
        PoolMetrics::builder().build().expect("the default configuration is valid")
    }

    /// Starts a [`PoolMetricsBuilder`].
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::builder().max_pools(8).build()?;
    /// # drop(metrics);
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn builder() -> PoolMetricsBuilder {
        PoolMetricsBuilder {
            max_pools: 64,
            buckets: DEFAULT_BUCKETS.to_vec(),
            #[cfg(feature = "facade")]
            forward_to_global: false,
        }
    }

    /// Exports `pool` under `name`; its kind (the family prefix and the `kind` label)
    /// is the pool's own [`Instrumented::kind`]. The registry keeps only a weak
    /// reference: when the pool is dropped its series disappear at the next scrape;
    /// dropping the returned [`Registration`] removes them at once. A timing hook made
    /// with [`timing_hook`](Self::timing_hook) under the same name is attached to the
    /// pool now.
    ///
    /// Fails when the name is not a valid label value, when a live pool of the same
    /// kind already uses the name, when `max_pools` pools are registered, when the
    /// pool declares a metric that breaks the naming conventions, or when one of its
    /// families is already exported with another type.
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
    /// let pool = Arc::new(P);
    /// let registration = metrics.register("a", &pool)?;
    /// assert_eq!(registration.kind(), "demo");
    /// assert!(metrics.register("a", &pool).is_err(), "one live pool per kind and name");
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn register<P>(&self, name: &str, pool: &Arc<P>) -> Result<Registration, MetricsError>
    where
        P: Instrumented + Send + Sync + 'static,
    {
        validate_pool_name(name)?;
        let kind = pool.kind();
        validate_catalogue(kind, pool.catalogue())?;
        let dyn_pool: Arc<DynPool> = pool.clone();
        let families = families_of(kind, &*dyn_pool);
        let entry = {
            let mut state = lock(&self.shared.state);
            state.prune();
            if state.entries.iter().any(|e| e.kind == kind && e.name == name) {
                return Err(MetricsError::DuplicatePool { kind, name: name.to_owned() });
            }
            let limit = self.shared.config.max_pools;
            if state.entries.len() >= limit {
                return Err(MetricsError::TooManyPools { limit });
            }
            // Compared with the families each pool declared when it registered: no
            // user code runs under the lock.
            for entry in &state.entries {
                if let Some((family, _)) = families
                    .iter()
                    .find(|(f, t)| entry.families.iter().any(|(g, u)| f == g && t != u))
                {
                    return Err(MetricsError::FamilyConflict { family: family.clone() });
                }
            }
            let timings = state
                .pending
                .iter()
                .position(|(pending, _)| pending == name)
                .and_then(|i| state.pending.swap_remove(i).1.upgrade());
            let entry = Arc::new(Entry {
                id: self.shared.next_id.fetch_add(1, Ordering::Relaxed),
                name: name.to_owned(),
                kind,
                pool: Arc::downgrade(&dyn_pool),
                timings,
                families,
            });
            state.entries.push(entry.clone());
            entry
        };
        #[cfg(feature = "facade")]
        crate::facade::on_register(self, &entry, &*dyn_pool);
        tracing::debug!(pool = name, kind, "registered pool for metrics export");
        Ok(Registration {
            shared: Arc::downgrade(&self.shared),
            id: entry.id,
            name: entry.name.clone(),
            kind,
        })
    }

    /// An [`Events`] hook that records a pool's timings (acquire wait, dial, queue
    /// wait, job run) into histograms `poolside_<kind>_<timing>_seconds`.
    ///
    /// Give it to the pool's builder, then [`register`](Self::register) the pool
    /// under the same `name`: the kind comes from the pool, and the histograms join
    /// its other series (events recorded before registration included). Until then
    /// the hook exports nothing and holds no cardinality slot; if the pool is dropped
    /// without registering, the hook is forgotten with it. At most `max_pools` hooks
    /// may wait at once; asking again for a name that is still waiting returns the
    /// same histograms.
    ///
    /// Recording costs one bucket increment (and one for the sum when the time is not
    /// zero) per event, in counters only the calling thread writes, and nothing at all
    /// for pools built without a hook. A hook holds its counters: a block per timing
    /// and per thread shard (33 shards), about 34 KiB with the default buckets.
    ///
    /// ```
    /// use poolside_core::Timing;
    /// use std::time::Duration;
    ///
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let events = metrics.timing_hook("orders-db")?;
    /// events.record(Timing::AcquireWait, Duration::from_micros(40));
    /// assert_eq!(metrics.pending_hooks(), 1);
    /// assert!(!metrics.render_prometheus().contains("orders-db"), "not exported before register");
    /// drop(events); // the pool it was made for never registered
    /// assert_eq!(metrics.pending_hooks(), 0);
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn timing_hook(&self, name: &str) -> Result<Events, MetricsError> {
        validate_pool_name(name)?;
        let mut state = lock(&self.shared.state);
        state.prune();
        if let Some(existing) =
            state.pending.iter().find(|(pending, _)| pending == name).and_then(|(_, h)| h.upgrade())
        {
            return Ok(Events::from_arc(existing));
        }
        let limit = self.shared.config.max_pools;
        if state.pending.len() >= limit {
            return Err(MetricsError::TooManyPools { limit });
        }
        let hook = Arc::new(TimingHistograms::new(&self.shared.config.bounds));
        state.pending.push((name.to_owned(), Arc::downgrade(&hook)));
        Ok(Events::from_arc(hook))
    }

    /// Every exported series in the Prometheus text exposition format (version
    /// 0.0.4), read from the pools at this moment: families sorted by name, each with
    /// one `# HELP` and one `# TYPE` line, pools in registration order within a
    /// family. Serve it from your own HTTP router (with content type
    /// [`CONTENT_TYPE`](crate::CONTENT_TYPE)); the built-in server (feature `server`)
    /// serves exactly this at `/metrics`.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// // e.g. in an axum handler:
    /// // async fn scrape(State(m): State<PoolMetrics>) -> impl IntoResponse {
    /// //     ([(CONTENT_TYPE, poolside_metrics::CONTENT_TYPE)], m.render_prometheus())
    /// // }
    /// assert_eq!(metrics.render_prometheus(), "");
    /// ```
    pub fn render_prometheus(&self) -> String {
        crate::render::prometheus(&self.live_entries())
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
        crate::json::render(&self.live_entries())
    }

    /// The live entries with their pools (in registration order), after forgetting
    /// dropped pools.
    pub(crate) fn live_entries(&self) -> Vec<(Arc<Entry>, Arc<DynPool>)> {
        let mut state = lock(&self.shared.state);
        state.prune();
        state.entries.iter().filter_map(|e| Some((e.clone(), e.pool.upgrade()?))).collect()
    }

    /// The number of pools currently registered and alive.
    ///
    /// ```
    /// assert_eq!(poolside_metrics::PoolMetrics::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        let mut state = lock(&self.shared.state);
        state.prune();
        state.entries.len()
    }

    /// Whether no pool is registered.
    ///
    /// ```
    /// assert!(poolside_metrics::PoolMetrics::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of timing hooks still waiting for their pool to register (hooks
    /// whose pool was dropped are not counted).
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let _events = metrics.timing_hook("later")?;
    /// assert_eq!(metrics.pending_hooks(), 1);
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn pending_hooks(&self) -> usize {
        let mut state = lock(&self.shared.state);
        state.prune();
        state.pending.len()
    }

    /// Removes a registration. A timing hook whose pool is still alive goes back to
    /// waiting under the pool's name, so registering the pool again exports its
    /// histograms again, counts included.
    fn remove(shared: &Shared, id: u64) {
        let mut state = lock(&shared.state);
        let Some(at) = state.entries.iter().position(|e| e.id == id) else { return };
        let entry = state.entries.remove(at);
        if let Some(hook) = &entry.timings {
            if entry.pool.strong_count() > 0 && !state.pending.iter().any(|(n, _)| *n == entry.name)
            {
                state.pending.push((entry.name.clone(), Arc::downgrade(hook)));
            }
        }
    }
}

/// Every family a pool of `kind` exports, with its type.
fn families_of(kind: &str, pool: &DynPool) -> Vec<(String, Option<MetricKind>)> {
    let plain = pool.catalogue().iter().map(|d| (family_name(kind, d), Some(d.kind)));
    // `None`: a histogram.
    let histograms = pool.timings().iter().map(|&t| (histogram_name(kind, t), None));
    plain.chain(histograms).collect()
}

impl fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        let names: Vec<String> =
            state.entries.iter().map(|e| format!("{}/{}", e.kind, e.name)).collect();
        f.debug_struct("PoolMetrics")
            .field("pools", &names)
            .field("pending_hooks", &state.pending.len())
            .field("max_pools", &self.shared.config.max_pools)
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
    ///
    /// ```
    /// # use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
    /// # struct P;
    /// # impl Instrumented for P {
    /// #     fn kind(&self) -> &'static str { "demo" }
    /// #     fn catalogue(&self) -> &'static [&'static MetricDesc] { &[] }
    /// #     fn visit_metrics(&self, _: &mut dyn MetricVisitor) {}
    /// # }
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let registration = metrics.register("b", &std::sync::Arc::new(P))?;
    /// assert_eq!(registration.name(), "b");
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool kind, as the pool's [`Instrumented::kind`] reported it.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let pool = std::sync::Arc::new(poolside_bufpool::BufPool::new());
    /// assert_eq!(metrics.register("buffers", &pool)?.kind(), "bufpool");
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Removes the pool's series now (the same as dropping the registration).
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::new();
    /// let pool = std::sync::Arc::new(poolside_bufpool::BufPool::new());
    /// metrics.register("buffers", &pool)?.deregister();
    /// assert_eq!(metrics.render_prometheus(), "");
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
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
