//! Forwarding to the application's global `metrics` recorder (feature `facade`).
//!
//! The `metrics` crate's rule is that libraries emit and the application installs the
//! recorder. With [`forward_to_global`](crate::PoolMetricsBuilder::forward_to_global),
//! every registered pool's values are pushed to whatever recorder the application
//! installed (metrics-exporter-prometheus, statsd, OpenTelemetry bridges) under the
//! same family names and labels as [`render_prometheus`](PoolMetrics::render_prometheus)
//! writes: gauges set, counters set to their absolute value, timings recorded into
//! `metrics` histograms in seconds as they happen.

use crate::naming::{family_name, histogram_name, is_exported_label};
use crate::registry::{DynPool, Entry};
use crate::{MetricsError, PoolMetrics};
use metrics::{Histogram, Key, Label, Metadata, Unit};
use poolside_core::{Metric, MetricKind, Timing};
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

/// Describes the pool's families and binds its timing hook to the global recorder.
pub(crate) fn on_register(metrics: &PoolMetrics, entry: &Entry, pool: &DynPool) {
    if !metrics.shared.config.forward_to_global {
        return;
    }
    for desc in pool.catalogue() {
        let name = family_name(entry.kind, desc);
        match desc.kind {
            MetricKind::Gauge => metrics::describe_gauge!(name, desc.help),
            MetricKind::Counter => metrics::describe_counter!(name, desc.help),
        }
    }
    if let Some(hook) = &entry.timings {
        let keys = Timing::ALL
            .iter()
            .map(|&t| {
                let name = histogram_name(entry.kind, t);
                metrics::describe_histogram!(name.clone(), Unit::Seconds, t.help());
                Key::from_parts(name, base_labels(entry))
            })
            .collect();
        let handles = Timing::ALL.iter().map(|_| OnceLock::new()).collect();
        // A hook is bound to one registration only: the first binding stays.
        let _ = hook.global.set(GlobalTimings { keys, handles });
    }
    push(entry, pool);
}

/// Pushes one pool's current values to the global recorder; a report that panics is
/// logged and the other pools are still pushed.
fn push(entry: &Entry, pool: &DynPool) {
    let pushed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| push_values(entry, pool)));
    if let Err(panic) = pushed {
        tracing::error!(
            pool = %entry.name,
            kind = entry.kind,
            panic = crate::render::panic_message(&*panic),
            "a pool's metrics report panicked while forwarding"
        );
    }
}

fn push_values(entry: &Entry, pool: &DynPool) {
    pool.visit_metrics(&mut |m: Metric<'_>| {
        let mut labels = base_labels(entry);
        labels.extend(
            m.labels
                .iter()
                .filter(|(k, _)| is_exported_label(k))
                .map(|&(k, v)| Label::new(k, v.to_owned())),
        );
        let name = family_name(entry.kind, m.desc);
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
            push(&entry, &*pool);
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
