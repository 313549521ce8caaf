//! Outcomes per time bucket per series (say, successes per 100 ms per backend), with
//! labelled moments, printed as a table or drawn as an SVG chart: the evidence of a
//! failover test or demo.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Counts events per fixed-width time bucket for a few named series, and remembers
/// labelled moments ("outage starts", "breaker tripped"). Uses tokio's clock, so it
/// also works under paused time.
///
/// ```
/// use poolside_faultproxy::Timeline;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let timeline = Timeline::new(&["primary", "spare"], Duration::from_millis(100));
/// timeline.record(0);
/// tokio::time::advance(Duration::from_millis(150)).await;
/// timeline.mark("switch");
/// timeline.record(1);
/// timeline.record(1);
/// assert_eq!(timeline.counts(), vec![vec![1, 0], vec![0, 2]]);
/// assert_eq!(timeline.marks()[0].1, "switch");
/// assert!(timeline.render_text().contains("switch"));
/// assert!(timeline.render_svg("demo").starts_with("<svg"));
/// # }
/// ```
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    bucket: Duration,
    series: Vec<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `counts[bucket][series]`.
    counts: Vec<Vec<u64>>,
    marks: Vec<(Duration, String)>,
}

impl Timeline {
    /// A timeline starting now, with one column per series name.
    ///
    /// # Panics
    ///
    /// When `bucket` is zero or there is no series: both are programming errors in a
    /// test.
    pub fn new(series: &[&str], bucket: Duration) -> Self {
        assert!(!bucket.is_zero() && !series.is_empty(), "a timeline needs buckets and series");
        Timeline {
            start: Instant::now(),
            bucket,
            series: series.iter().map(|s| (*s).to_owned()).collect(),
            state: Mutex::new(State::default()),
        }
    }

    /// Time since the timeline started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The bucket width.
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    /// Counts one event of series `series` (an index into the names) now.
    ///
    /// # Panics
    ///
    /// When `series` is out of range.
    pub fn record(&self, series: usize) {
        assert!(series < self.series.len(), "series {series} does not exist");
        let index = (self.elapsed().as_nanos() / self.bucket.as_nanos()) as usize;
        let mut state = self.lock();
        let width = self.series.len();
        if state.counts.len() <= index {
            state.counts.resize(index + 1, vec![0; width]);
        }
        state.counts[index][series] += 1;
    }

    /// Remembers a labelled moment, now.
    pub fn mark(&self, label: impl Into<String>) {
        let at = self.elapsed();
        self.lock().marks.push((at, label.into()));
    }

    /// Counts per bucket (outer) per series (inner), up to the last bucket with data.
    pub fn counts(&self) -> Vec<Vec<u64>> {
        self.lock().counts.clone()
    }

    /// The labelled moments, in the order they were marked.
    pub fn marks(&self) -> Vec<(Duration, String)> {
        self.lock().marks.clone()
    }

    /// When the first mark with this label was made.
    pub fn mark_at(&self, label: &str) -> Option<Duration> {
        self.lock().marks.iter().find(|(_, l)| l == label).map(|(at, _)| *at)
    }

    /// The start of the first bucket at or after `from` in which `series` holds at
    /// least `share` (0..=1) of all events (and at least one event).
    pub fn first_bucket_dominated_by(
        &self,
        series: usize,
        share: f64,
        from: Duration,
    ) -> Option<Duration> {
        let first = (from.as_nanos() / self.bucket.as_nanos()) as usize;
        let state = self.lock();
        state.counts.iter().enumerate().skip(first).find_map(|(index, row)| {
            let total: u64 = row.iter().sum();
            (row[series] > 0 && row[series] as f64 >= share * total as f64)
                .then(|| self.bucket * index as u32)
        })
    }

    /// One line per bucket: its start in ms, each series' count, and the marks that
    /// fall in it.
    pub fn render_text(&self) -> String {
        let state = self.lock();
        let mut out = format!("{:>8}", "t (ms)");
        for name in &self.series {
            let _ = write!(out, " {name:>9}");
        }
        out.push('\n');
        for (index, row) in state.counts.iter().enumerate() {
            let (from, to) = (self.bucket * index as u32, self.bucket * (index as u32 + 1));
            let _ = write!(out, "{:>8}", from.as_millis());
            for count in row {
                let _ = write!(out, " {count:>9}");
            }
            for (_, label) in state.marks.iter().filter(|(at, _)| (from..to).contains(at)) {
                let _ = write!(out, "  <- {label}");
            }
            out.push('\n');
        }
        out
    }

    /// A self-contained SVG line chart: one line per series, a dashed vertical line
    /// per mark.
    pub fn render_svg(&self, title: &str) -> String {
        const COLOURS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
        let (width, height, left, right, top, bottom) = (900.0, 360.0, 60.0, 20.0, 40.0, 50.0);
        let state = self.lock();
        let buckets = state.counts.len().max(1);
        let peak = state.counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        let plot_w = width - left - right;
        let plot_h = height - top - bottom;
        let x = |index: f64| left + plot_w * index / buckets as f64;
        let y = |value: f64| top + plot_h * (1.0 - value / peak);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{left}\" y=\"22\" font-size=\"15\">{}</text>\n",
            escape(title)
        );
        // Axes, with the peak and the time span as the only tick labels.
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
             <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{peak}</text>\n\
             <text x=\"{lx}\" y=\"{b}\" text-anchor=\"end\">0</text>\n\
             <text x=\"{r}\" y=\"{tx}\" text-anchor=\"end\">{span:.1} s</text>\n\
             <text x=\"{left}\" y=\"{tx}\">0 s</text>\n\
             <text x=\"14\" y=\"{mid}\" transform=\"rotate(-90 14 {mid})\" text-anchor=\"middle\">\
             successes per {bucket} ms</text>\n",
            b = top + plot_h,
            r = left + plot_w,
            lx = left - 6.0,
            ty = top + 4.0,
            tx = top + plot_h + 18.0,
            span = (self.bucket * buckets as u32).as_secs_f64(),
            mid = top + plot_h / 2.0,
            bucket = self.bucket.as_millis(),
        );
        for (at, label) in &state.marks {
            let px = x(at.as_secs_f64() / self.bucket.as_secs_f64());
            let _ = write!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{b}\" stroke=\"grey\" \
                 stroke-dasharray=\"4 3\"/>\n\
                 <text x=\"{tx:.1}\" y=\"{ty}\" transform=\"rotate(-90 {tx:.1} {ty})\" \
                 text-anchor=\"end\" fill=\"dimgrey\">{}</text>\n",
                escape(label),
                b = top + plot_h,
                tx = px - 3.0,
                ty = top + 4.0,
            );
        }
        for (series, name) in self.series.iter().enumerate() {
            let colour = COLOURS[series % COLOURS.len()];
            let points: Vec<String> = state
                .counts
                .iter()
                .enumerate()
                .map(|(i, row)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y(row[series] as f64)))
                .collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n\
                 <rect x=\"{lx}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\n\
                 <text x=\"{tx}\" y=\"{ty}\">{}</text>\n",
                points.join(" "),
                escape(name),
                lx = width - right - 120.0,
                ly = 12.0 + 16.0 * series as f64,
                tx = width - right - 102.0,
                ty = 22.0 + 16.0 * series as f64,
            );
        }
        svg.push_str("</svg>\n");
        svg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking recorder cannot leave the counts half-written: keep going.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_marks_and_dominance() {
        let t = Timeline::new(&["a", "b"], Duration::from_millis(100));
        for _ in 0..3 {
            t.record(0);
        }
        tokio::time::advance(Duration::from_millis(250)).await;
        t.mark("flip <now>");
        t.record(1);
        t.record(1);
        t.record(0);
        assert_eq!(t.counts(), vec![vec![3, 0], vec![0, 0], vec![1, 2]]);
        assert_eq!(t.mark_at("flip <now>"), Some(Duration::from_millis(250)));
        assert_eq!(t.mark_at("missing"), None);
        let from = Duration::ZERO;
        assert_eq!(t.first_bucket_dominated_by(1, 0.6, from), Some(Duration::from_millis(200)));
        assert_eq!(t.first_bucket_dominated_by(1, 0.9, from), None);
        assert_eq!(t.first_bucket_dominated_by(0, 0.9, Duration::from_millis(100)), None);
        let text = t.render_text();
        assert!(text.lines().nth(3).unwrap().ends_with("<- flip <now>"), "{text}");
        let svg = t.render_svg("a & b");
        assert!(svg.contains("a &amp; b") && svg.contains("flip &lt;now&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
