//! `cargo xtask`: poolside's task runner. The tasks and their options are listed once, in
//! [`USAGE`] (what `cargo xtask help` prints).

mod bench_report;
mod cmd;
mod postgres;
mod redis;
mod tasks;

use std::process::ExitCode;

/// The usage text: every task with its options.
const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  lint                     cargo fmt --check, clippy -D warnings (all targets, all features),
                           rustdoc -D warnings, cargo-deny (licenses, bans, sources), MSRV check
  test [--no-postgres]     every test and doc test, loom models, Miri on crates with unsafe code;
                           starts a throwaway PostgreSQL on loopback unless --no-postgres
  bench [--quick] [FILTER] criterion benches against the peer crates, then a ratio table,
                           markdown and SVG charts under target/bench-report/
  report CRITERION_DIR [OUT_DIR]
                           rebuilds the ratio table and charts from criterion results copied from
                           another machine (e.g. a 16-core run), into OUT_DIR (default
                           target/bench-report-imported)
  examples                 runs every example (with a throwaway PostgreSQL and redis-server)
  services -- COMMAND...   runs one command with the throwaway PostgreSQL (TLS on) and
                           redis-server up and POOLSIDE_PG_*/POOLSIDE_REDIS_* set
  package [--allow-dirty]  cargo package --workspace
  ci                       lint, test, examples, package
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let result = match task.as_str() {
        "lint" => no_options(rest).and_then(|()| tasks::lint()),
        "test" => tasks::TestOptions::parse(rest).and_then(|o| tasks::test(&o)),
        "bench" => tasks::BenchOptions::parse(rest).and_then(|o| tasks::bench(&o)),
        "report" => tasks::report(rest),
        "examples" => no_options(rest).and_then(|()| tasks::examples()),
        "package" => tasks::PackageOptions::parse(rest).and_then(|o| tasks::package(&o)),
        "ci" => no_options(rest).and_then(|()| tasks::ci()),
        "services" => tasks::services(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn no_options(rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(format!("unexpected argument `{arg}`\n\n{USAGE}")),
    }
}
