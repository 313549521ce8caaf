//! One reading of a connection pool's metrics in catalogue order, shared by the
//! async and the blocking pool's `Instrumented` impls, so both report the same
//! names, kinds and order from whatever counters each keeps.
#![cfg_attr(not(feature = "blocking"), allow(dead_code))]

use crate::Status;
use crate::stats::{
    ACQUIRES, CLOSED_BROKEN, CLOSED_IDLE, CLOSED_LIFETIME, DIAL_ERRORS, DIALS, EXHAUSTIONS,
    HEALTH_CHECKS, HEALTH_FAILS, IDLE, IN_USE, OPEN, RELEASES, TIMEOUTS, WAITING,
};
use poolside_core::{MetricDesc, MetricVisitor};

/// The counters' values at one moment (the levels come from [`Status`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) dials: u64,
    pub(crate) dial_errors: u64,
    pub(crate) acquires: u64,
    pub(crate) releases: u64,
    pub(crate) exhaustions: u64,
    pub(crate) timeouts: u64,
    pub(crate) health_checks: u64,
    pub(crate) health_fails: u64,
    pub(crate) closed_lifetime: u64,
    pub(crate) closed_idle: u64,
    pub(crate) closed_broken: u64,
}

/// Hands the levels and counts to `visitor`, in the catalogue's order.
pub(crate) fn visit(status: &Status, c: &Counts, visitor: &mut dyn MetricVisitor) {
    let values: [(&'static MetricDesc, u64); 15] = [
        (&OPEN, status.open as u64),
        (&IDLE, status.idle as u64),
        (&IN_USE, status.in_use as u64),
        (&WAITING, status.waiting as u64),
        (&DIALS, c.dials),
        (&DIAL_ERRORS, c.dial_errors),
        (&ACQUIRES, c.acquires),
        (&RELEASES, c.releases),
        (&EXHAUSTIONS, c.exhaustions),
        (&TIMEOUTS, c.timeouts),
        (&HEALTH_CHECKS, c.health_checks),
        (&HEALTH_FAILS, c.health_fails),
        (&CLOSED_LIFETIME, c.closed_lifetime),
        (&CLOSED_IDLE, c.closed_idle),
        (&CLOSED_BROKEN, c.closed_broken),
    ];
    visitor.visit_all(&[], &values);
}
