//! Timing events turned into histograms.

use crate::naming::histogram_name;
use crate::registry::pool_key;
use metrics::{Histogram, Key, Metadata, Recorder};
use poolside_core::{EventHook, Timing};
use std::sync::OnceLock;
use std::time::Duration;

/// The histograms of one pool, one per [`Timing`], resolved once so an event costs a
/// single histogram update.
pub(crate) struct TimingHistograms {
    own: [Histogram; Timing::ALL.len()],
    /// Keys for the global recorder, resolved on first use so the application may
    /// install its recorder after building the pool.
    global: Option<([Key; Timing::ALL.len()], [OnceLock<Histogram>; Timing::ALL.len()])>,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl TimingHistograms {
    pub(crate) fn new(
        kind: &'static str,
        pool: &str,
        recorder: &dyn Recorder,
        forward_to_global: bool,
    ) -> Self {
        let key = |t: Timing| pool_key(histogram_name(kind, t.name()), pool, kind);
        let own = Timing::ALL.map(|t| recorder.register_histogram(&key(t), &METADATA));
        let global = forward_to_global.then(|| (Timing::ALL.map(key), Default::default()));
        TimingHistograms { own, global }
    }
}

fn index(timing: Timing) -> usize {
    Timing::ALL.iter().position(|&t| t == timing).unwrap_or(0)
}

impl EventHook for TimingHistograms {
    fn on_timing(&self, timing: Timing, elapsed: Duration) {
        let i = index(timing);
        let seconds = elapsed.as_secs_f64();
        self.own[i].record(seconds);
        if let Some((keys, handles)) = &self.global {
            handles[i]
                .get_or_init(|| {
                    metrics::with_recorder(|r| r.register_histogram(&keys[i], &METADATA))
                })
                .record(seconds);
        }
    }
}
