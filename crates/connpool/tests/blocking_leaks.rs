//! Leak checks for the blocking pool: janitor threads end with their pool, and file
//! descriptors held by connections are all closed. Alone in its binary, so no other
//! test's threads or files disturb the counts.
#![cfg(feature = "blocking")]

use poolside_connpool::blocking::{Builder, Manager, Pool};
use std::fs::File;
use std::thread;
use std::time::{Duration, Instant};

/// Each connection is an open file: a leaked connection is a leaked descriptor.
struct Files;

impl Manager for Files {
    type Connection = File;
    type Error = std::io::Error;
    fn connect(&self) -> Result<File, std::io::Error> {
        File::open("/proc/self/stat").or_else(|_| File::open(std::env::current_exe()?))
    }
    fn check(&self, _conn: &mut File) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn count(dir: &str) -> Option<usize> {
    Some(std::fs::read_dir(dir).ok()?.count())
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn no_thread_or_descriptor_outlives_its_pool() {
    let (Some(threads0), Some(fds0)) = (count("/proc/self/task"), count("/proc/self/fd")) else {
        eprintln!("skipping: no /proc/self/task or /proc/self/fd on this system");
        return;
    };
    let threads = || count("/proc/self/task").unwrap();
    let fds = || count("/proc/self/fd").unwrap();

    // Pools with a janitor: one thread each, joined on drop.
    let pools: Vec<Pool<Files>> = (0..6)
        .map(|_| {
            Builder::new()
                .max_size(4)
                .min_idle(2)
                .max_idle_time(Duration::from_millis(50))
                .janitor_interval(Duration::from_millis(5))
                .build(Files)
                .unwrap()
        })
        .collect();
    // One janitor each (plus, briefly, the helper threads of their first dials).
    eventually("one janitor per pool", || threads() == threads0 + 6);
    for pool in &pools {
        pool.maintain();
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| drop(pool.get().unwrap()));
            }
        });
    }
    assert!(fds() > fds0);
    drop(pools);
    // Joined; the kernel may list an exited thread for a moment after the join.
    eventually("every janitor thread ended", || threads() == threads0);
    assert_eq!(fds(), fds0, "every connection's descriptor was closed");

    // close() ends the janitor without dropping the pool.
    let pool =
        Builder::new().max_lifetime(Duration::from_secs(60)).min_idle(1).build(Files).unwrap();
    assert_eq!(threads(), threads0 + 1);
    pool.maintain();
    pool.close();
    eventually("the janitor ended after close", || threads() == threads0);
    assert_eq!(fds(), fds0);

    // A pool that needs no maintenance starts no thread; panicking holders and
    // detached connections leak nothing either.
    let pool = Pool::new(Files);
    assert_eq!(threads(), threads0);
    let _ = thread::scope(|s| {
        s.spawn(|| {
            let _conn = pool.get().unwrap();
            panic!("holder panics");
        })
        .join()
    });
    drop(pool.get().unwrap().detach());
    drop(pool);
    eventually("helper threads ended", || threads() == threads0);
    assert_eq!(fds(), fds0);
}
