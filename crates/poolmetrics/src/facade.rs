//! Forwarding to the application's global `metrics` recorder (feature `facade`).
//!
//! The `metrics` crate's rule is that libraries emit and the application installs the
//! recorder. With [`forward_to_global`](crate::PoolMetricsBuilder::forward_to_global),
//! every registered pool's values are pushed to whatever recorder the application
//! installed (metrics-exporter-prometheus, statsd, OpenTelemetry bridges) under the
//! same family names and labels as [`render_prometheus`](PoolMetrics::render_prometheus)
//! writes: gauges set, counters set to their absolute value, timings recorded into
//! `metrics` histograms in seconds as they happen.

use crate::naming::{exported_labels, family_name, histogram_name};
use crate::registry::{DynPool, Entry};
use crate::{MetricsError, PoolMetrics};
use metrics::{Histogram, Key, Label, Metadata, Unit};
use poolside_core::{Metric, MetricKind, Timing};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

/// The longest accepted collection interval.
pub const MAX_COLLECT_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One pool's histograms in the global recorder, resolved on first use so the
/// application may install its recorder after registering the pool.
pub(crate) struct GlobalTimings {
    keys: Vec<Key>,
    handles: Vec<OnceLock<Histogram>>,
}

impl GlobalTimings {
    #[inline]
    pub(crate) fn record(&self, index: usize, elapsed: Duration) {
        let (Some(key), Some(handle)) = (self.keys.get(index), self.handles.get(index)) else {
            return;
        };
        handle
            .get_or_init(|| metrics::with_recorder(|r| r.register_histogram(key, &METADATA)))
            .record(elapsed.as_secs_f64());
    }
}

fn base_labels(entry: &Entry) -> Vec<Label> {
    vec![Label::new("pool", entry.name.clone()), Label::new("kind", entry.kind)]
}

/// Binds the pool's timing hook to the global recorder, describes the pool's families
/// and pushes its values. The recorder is the application's code: a panic in it is
/// logged and the pool stays registered (with its [`Registration`](crate::Registration)
/// returned), so it can still be scraped and deregistered.
pub(crate) fn on_register(metrics: &PoolMetrics, entry: &Entry, pool: &DynPool) {
    if !metrics.shared.config.forward_to_global {
        return;
    }
    if let Some(hook) = &entry.timings {
        let keys = Timing::ALL
            .iter()
            .map(|&t| Key::from_parts(histogram_name(entry.kind, t), base_labels(entry)))
            .collect();
        let handles = Timing::ALL.iter().map(|_| OnceLock::new()).collect();
        // A hook is bound to one registration only: the first binding stays.
        let _ = hook.global.set(GlobalTimings { keys, handles });
    }
    guarded(entry, "describing its families", || describe(entry, pool));
    guarded(entry, "forwarding its values", || push_values(entry, pool));
}

/// Describes every family of the pool to the global recorder.
fn describe(entry: &Entry, pool: &DynPool) {
    for desc in pool.catalogue() {
        let name = family_name(entry.kind, desc);
        match desc.kind {
            MetricKind::Gauge => metrics::describe_gauge!(name, desc.help),
            MetricKind::Counter => metrics::describe_counter!(name, desc.help),
        }
    }
    if entry.timings.is_some() {
        for &t in Timing::ALL.iter() {
            metrics::describe_histogram!(histogram_name(entry.kind, t), Unit::Seconds, t.help());
        }
    }
}

/// Runs `f`, which calls the pool's report or the recorder; a panic in it is logged,
/// and its payload dropped under a guard too (its `Drop` is user code).
fn guarded(entry: &Entry, what: &str, f: impl FnOnce()) {
    let Err(panic) = catch_unwind(AssertUnwindSafe(f)) else { return };
    tracing::error!(
        pool = %entry.name,
        kind = entry.kind,
        panic = crate::render::panic_message(&*panic),
        "a panic while {what} to the global metrics recorder: left out"
    );
    let _ = catch_unwind(AssertUnwindSafe(move || drop(panic)));
}

/// Pushes one pool's current values to the global recorder, under the family names
/// and labels of the exposition (undeclared metrics and repeated labels left out).
fn push_values(entry: &Entry, pool: &DynPool) {
    pool.visit_metrics(&mut |m: Metric<'_>| {
        let name = family_name(entry.kind, m.desc);
        if !entry.declares(&name, m.desc.kind) {
            return;
        }
        let mut labels = base_labels(entry);
        labels.extend(exported_labels(m.labels).map(|&(k, v)| Label::new(k, v.to_owned())));
        match m.desc.kind {
            MetricKind::Gauge => metrics::gauge!(name, labels).set(m.value as f64),
            MetricKind::Counter => metrics::counter!(name, labels).absolute(m.value),
        }
    });
}

impl PoolMetrics {
    /// Pushes every live pool's gauges and counters to the global `metrics` recorder
    /// (feature `facade`; does nothing unless built with
    /// [`forward_to_global`](crate::PoolMetricsBuilder::forward_to_global)). Call it
    /// before your recorder renders, or let [`spawn_collector`](Self::spawn_collector)
    /// call it on an interval.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::builder().forward_to_global(true).build()?;
    /// metrics.collect(); // nothing registered: nothing pushed
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn collect(&self) {
        if !self.shared.config.forward_to_global {
            return;
        }
        for (entry, pool) in self.live_entries() {
            guarded(&entry, "forwarding its values", || push_values(&entry, &*pool));
        }
    }

    /// Calls [`collect`](Self::collect) on a background thread every `interval`
    /// (more than zero, at most [`MAX_COLLECT_INTERVAL`]) until the returned
    /// [`Collector`] is dropped.
    ///
    /// ```
    /// let metrics = poolside_metrics::PoolMetrics::builder().forward_to_global(true).build()?;
    /// let collector = metrics.spawn_collector(std::time::Duration::from_secs(5))?;
    /// drop(collector); // stops and joins the thread
    /// assert!(metrics.spawn_collector(std::time::Duration::ZERO).is_err());
    /// # Ok::<(), poolside_metrics::MetricsError>(())
    /// ```
    pub fn spawn_collector(&self, interval: Duration) -> Result<Collector, MetricsError> {
        if interval.is_zero() || interval > MAX_COLLECT_INTERVAL {
            return Err(MetricsError::InvalidConfig(
                "the collection interval must be above zero and at most 24 hours",
            ));
        }
        Collector::spawn(self.clone(), interval)
    }
}

/// A background thread collecting on an interval; dropping it stops and joins the
/// thread.
///
/// ```
/// let metrics = poolside_metrics::PoolMetrics::builder().forward_to_global(true).build()?;
/// let collector: poolside_metrics::Collector =
///     metrics.spawn_collector(std::time::Duration::from_millis(100))?;
/// drop(collector);
/// # Ok::<(), poolside_metrics::MetricsError>(())
/// ```
#[derive(Debug)]
pub struct Collector {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn spawn(metrics: PoolMetrics, interval: Duration) -> Result<Collector, MetricsError> {
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
            .map_err(|source| MetricsError::Spawn { source })?;
        Ok(Collector { stop: Some(stop), thread: Some(thread) })
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
