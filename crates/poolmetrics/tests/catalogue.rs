//! docs/metrics.md lists every metric every pool kind reports, with its type and help:
//! the catalogue cannot rot silently.

use poolside_bufpool::{BufPool, Pool};
use poolside_connpool::Manager;
use poolside_core::{Instrumented, MetricKind};
use poolside_workerpool::WorkerPool;
use std::convert::Infallible;

struct Noop;

impl Manager for Noop {
    type Connection = ();
    type Error = Infallible;
    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }
    async fn check(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }
}

fn documented_rows() -> Vec<String> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md"))
            .expect("docs/metrics.md exists");
    doc.lines().filter(|l| l.starts_with("| `poolside_")).map(str::to_owned).collect()
}

fn check(pool: &dyn Instrumented, rows: &[String]) {
    for desc in pool.catalogue() {
        let series = format!("`poolside_{}_{}`", pool.kind(), desc.name);
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {series} |")))
            .unwrap_or_else(|| panic!("docs/metrics.md does not list {series}"));
        let kind = match desc.kind {
            MetricKind::Gauge => "| gauge |",
            MetricKind::Counter => "| counter |",
        };
        assert!(row.contains(kind), "{series}: wrong type in {row}");
        assert!(row.contains(desc.help), "{series}: help text differs in {row}");
    }
}

#[test]
fn every_reported_metric_is_documented() {
    let rows = documented_rows();
    check(&BufPool::new(), &rows);
    check(&Pool::new(Vec::<u8>::new), &rows);
    check(&WorkerPool::new(1).unwrap(), &rows);
    check(&poolside_connpool::Pool::new(Noop), &rows);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let spare = poolside_connpool::Builder::new().min_idle(1).build(Noop).unwrap();
        let failover = poolside_connpool::FailoverBuilder::new()
            .build(poolside_connpool::Pool::new(Noop), spare)
            .unwrap();
        check(&failover, &rows);
    });
    for timing in poolside_core::Timing::ALL {
        let series = format!("`poolside_<kind>_{}_seconds`", timing.name());
        assert!(rows.iter().any(|r| r.contains(&series) && r.contains(timing.help())), "{series}");
    }
}
