//! The tasks themselves: one function per `cargo xtask` task, in the order of the
//! usage text (the helpers they share live in `cmd`, `postgres`, `redis`).

use crate::bench_report;
use crate::cmd::{self, cargo, in_ci, root, run};
use crate::postgres::{self, Postgres};
use crate::redis::{self, Redis};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

/// `cargo xtask lint`.
pub(crate) fn lint() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args(["doc", "--workspace", "--all-features", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    cargo_deny()?;
    msrv_check()
}

fn cargo_deny() -> Result<(), String> {
    if !cmd::succeeds("cargo", ["deny", "--version"]) {
        eprintln!(
            "cargo-deny is not installed: installing it with `cargo install --locked cargo-deny`"
        );
        run(cargo().args(["install", "--locked", "cargo-deny"]))?;
    }
    // cargo-deny reads the metadata of every package in the lock file, for every
    // platform, offline: fetch them first, or a fresh machine's empty registry cache
    // (no Windows-only crates, say) fails the check.
    run(cargo().args(["fetch", "--locked"]))?;
    run(cargo().args(["deny", "--offline", "check", "licenses", "bans", "sources"]))
}

/// The minimum supported Rust version: the workspace manifest's `rust-version`.
fn msrv() -> Result<String, String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))
        .map_err(|e| format!("reading the workspace Cargo.toml: {e}"))?;
    rust_version(&manifest).ok_or_else(|| "the workspace Cargo.toml names no rust-version".into())
}

/// The value of the first `rust-version = "..."` line of a manifest.
fn rust_version(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let value = line.trim().strip_prefix("rust-version")?.trim().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

/// Checks the published crates with every feature on the MSRV toolchain. Under CI the
/// toolchain is installed when missing; elsewhere a missing one skips the check.
fn msrv_check() -> Result<(), String> {
    let msrv = msrv()?;
    let toolchain = format!("+{msrv}");
    if !cmd::succeeds("cargo", [toolchain.as_str(), "--version"]) {
        if !in_ci() {
            eprintln!(
                "notice: MSRV check skipped: toolchain {msrv} (the workspace rust-version) is \
                 not installed; `rustup toolchain install {msrv} --profile minimal` enables it"
            );
            return Ok(());
        }
        run(Command::new("rustup").args(["toolchain", "install", &msrv, "--profile", "minimal"]))?;
    }
    // Through rustup: `cargo()` is the running toolchain's own cargo binary, which does
    // not understand `+toolchain`.
    run(Command::new("rustup")
        .args(["run", &msrv, "cargo", "check", "--workspace", "--exclude", "poolside-benches"])
        .args(["--exclude", "xtask", "--all-features", "--locked"])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", root().join("target/msrv")))
}

/// Options of `cargo xtask test`.
#[derive(Debug, Default)]
pub(crate) struct TestOptions {
    no_postgres: bool,
}

impl TestOptions {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = TestOptions::default();
        for arg in args {
            match arg.as_str() {
                "--no-postgres" => options.no_postgres = true,
                other => return Err(format!("`test` does not take `{other}`")),
            }
        }
        Ok(options)
    }
}

/// Starts the throwaway PostgreSQL unless told not to. Under CI a missing server is an
/// error, never a silent skip.
fn maybe_postgres(wanted: bool) -> Result<Option<Postgres>, String> {
    if !wanted {
        if in_ci() {
            return Err("--no-postgres is not allowed under CI=true".into());
        }
        eprintln!("notice: PostgreSQL not started (--no-postgres): tests that need it are skipped");
        return Ok(None);
    }
    match Postgres::start() {
        Ok(pg) => Ok(Some(pg)),
        Err(e) if !in_ci() => {
            eprintln!(
                "notice: PostgreSQL could not be started ({e}); tests that need it are skipped"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn with_postgres_env(command: &mut Command, pg: Option<&Postgres>) {
    if let Some(pg) = pg {
        command
            .env(postgres::URL_VAR, pg.url())
            .env("POOLSIDE_PG_BIN_DIR", pg.bin_dir())
            .env("POOLSIDE_PG_DATA_DIR", pg.data_dir())
            .env("POOLSIDE_PG_RUN_AS", if pg.runs_as_postgres_user() { "postgres" } else { "" })
            .env(postgres::CA_VAR, pg.ca_file())
            .env("POOLSIDE_TLS_CERT_FILE", pg.cert_file())
            .env("POOLSIDE_TLS_KEY_FILE", pg.key_file());
    }
}

/// Starts the throwaway redis-server; like PostgreSQL, under CI a missing server is an
/// error, never a silent skip.
fn maybe_redis() -> Result<Option<Redis>, String> {
    match Redis::start() {
        Ok(redis) => Ok(Some(redis)),
        Err(e) if !in_ci() => {
            eprintln!(
                "notice: redis-server could not be started ({e}); tests that need it are skipped"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn with_redis_env(command: &mut Command, redis: Option<&Redis>) {
    if let Some(redis) = redis {
        command.env(redis::URL_VAR, redis.url()).env(redis::SERVER_VAR, redis.binary());
    }
}

/// `cargo xtask services -- COMMAND...`: runs one command with the throwaway
/// PostgreSQL (TLS on) and redis-server up and their variables set, e.g. a single
/// test target while working on an adapter.
pub(crate) fn services(args: &[String]) -> Result<(), String> {
    let args = args.strip_prefix(&["--".to_owned()][..]).unwrap_or(args);
    let Some((program, rest)) = args.split_first() else {
        return Err("usage: cargo xtask services -- COMMAND [ARGS...]".into());
    };
    let pg = maybe_postgres(true)?;
    let redis = maybe_redis()?;
    let mut command = Command::new(program);
    command.args(rest);
    with_postgres_env(&mut command, pg.as_ref());
    with_redis_env(&mut command, redis.as_ref());
    run(&mut command)
}

/// `cargo xtask test`.
pub(crate) fn test(options: &TestOptions) -> Result<(), String> {
    let pg = maybe_postgres(!options.no_postgres)?;
    let pg = pg.as_ref();
    let redis = maybe_redis()?;
    let redis = redis.as_ref();
    let nextest = cmd::succeeds("cargo", ["nextest", "--version"]);
    let mut unit = cargo();
    if nextest {
        unit.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ]);
    } else {
        eprintln!("notice: cargo-nextest not found, using cargo test");
        unit.args(["test", "--workspace", "--all-features", "--locked", "--no-fail-fast"]);
    }
    with_postgres_env(&mut unit, pg);
    with_redis_env(&mut unit, redis);
    run(&mut unit)?;
    if nextest {
        // nextest does not run doc tests.
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--all-features", "--locked", "--doc"]);
        with_postgres_env(&mut doc, pg);
        with_redis_env(&mut doc, redis);
        run(&mut doc)?;
    }
    loom_models()?;
    miri()
}

/// Packages (by manifest) that have loom models in `tests/loom.rs`.
fn loom_packages() -> Vec<(String, PathBuf)> {
    member_crates().into_iter().filter(|(_, dir)| dir.join("tests/loom.rs").exists()).collect()
}

fn loom_models() -> Result<(), String> {
    let packages = loom_packages();
    if packages.is_empty() {
        eprintln!("notice: no loom models (crates/*/tests/loom.rs) yet");
    }
    for (package, dir) in packages {
        let cfg = model_cfg(&dir.join("tests/loom.rs"));
        run(cargo()
            .args(["test", "--release", "--locked", "-p", &package, "--test", "loom"])
            .env("RUSTFLAGS", format!("--cfg {cfg}"))
            .env("CARGO_TARGET_DIR", root().join("target/loom"))
            .env("LOOM_MAX_PREEMPTIONS", "3"))?;
    }
    Ok(())
}

/// The cfg a loom model file is gated on (its `#![cfg(NAME)]` line), `loom` by default.
/// A crate that depends on tokio cannot build under `--cfg loom` (tokio switches to its
/// own loom internals), so its model names another cfg.
fn model_cfg(model: &Path) -> String {
    std::fs::read_to_string(model)
        .ok()
        .and_then(|src| {
            src.lines().find_map(|line| {
                let name = line.trim().strip_prefix("#![cfg(")?.strip_suffix(")]")?;
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_').then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| "loom".to_owned())
}

/// Runs Miri over the library tests of every crate that does not forbid unsafe code,
/// when a nightly toolchain with Miri is installed.
fn miri() -> Result<(), String> {
    let unsafe_crates: Vec<String> = member_crates()
        .into_iter()
        .filter(|(_, dir)| {
            std::fs::read_to_string(dir.join("src/lib.rs"))
                .is_ok_and(|src| !src.contains("#![forbid(unsafe_code)]"))
        })
        .map(|(name, _)| name)
        .collect();
    if unsafe_crates.is_empty() {
        eprintln!("notice: Miri not needed: every published crate forbids unsafe code");
        return Ok(());
    }
    if !cmd::succeeds("cargo", ["+nightly", "miri", "--version"]) {
        // Installed like cargo-deny: the component first, then a minimal nightly with it.
        eprintln!("Miri is not installed: `rustup component add --toolchain nightly miri`");
        if !cmd::succeeds("rustup", ["component", "add", "--toolchain", "nightly", "miri"]) {
            eprintln!("no nightly toolchain: installing a minimal one with Miri");
            let _ = cmd::succeeds(
                "rustup",
                ["toolchain", "install", "nightly", "--profile", "minimal", "--component", "miri"],
            );
        }
    }
    if !cmd::succeeds("cargo", ["+nightly", "miri", "--version"]) {
        let why = format!(
            "Miri cannot run for {}: no nightly toolchain with Miri, and installing it failed \
             (`rustup toolchain install nightly --component miri`)",
            unsafe_crates.join(", ")
        );
        if cmd::in_ci() {
            return Err(why);
        }
        eprintln!("notice: Miri skipped: {why}");
        return Ok(());
    }
    for package in unsafe_crates {
        // Through rustup: `cargo()` is the running toolchain's own cargo binary, which
        // does not understand `+nightly`.
        run(Command::new("rustup")
            .args(["run", "nightly", "cargo", "miri", "test", "-p", &package, "--lib"])
            .current_dir(root())
            .env("MIRIFLAGS", "-Zmiri-strict-provenance")
            .env("CARGO_TARGET_DIR", root().join("target/miri"))
            .env("POOLSIDE_UNDER_MIRI", "1"))?;
    }
    Ok(())
}

/// The published crates under `crates/`, as (package name, folder).
fn member_crates() -> Vec<(String, PathBuf)> {
    let mut crates: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).ok()?;
            Some((package_name(&manifest)?, entry.path()))
        })
        .collect();
    crates.sort();
    crates
}

fn package_name(manifest: &str) -> Option<String> {
    first_name(manifest.split("[package]").nth(1)?)
}

/// The value of the first `name = "..."` line of a manifest section.
fn first_name(section: &str) -> Option<String> {
    section.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Options of `cargo xtask bench`.
#[derive(Debug, Default)]
pub(crate) struct BenchOptions {
    quick: bool,
    filter: Option<String>,
}

impl BenchOptions {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = BenchOptions::default();
        for arg in args {
            match arg.as_str() {
                "--quick" => options.quick = true,
                flag if flag.starts_with('-') => {
                    return Err(format!("`bench` does not take `{flag}`"));
                }
                filter if options.filter.is_none() => options.filter = Some(filter.to_owned()),
                extra => {
                    return Err(format!("`bench` takes one FILTER; `{extra}` is one too many"));
                }
            }
        }
        Ok(options)
    }
}

/// `cargo xtask bench`.
pub(crate) fn bench(options: &BenchOptions) -> Result<(), String> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let report_dir = root().join("target/bench-report");
    // Extra fragments belong to one run: start from an empty folder.
    let _ = std::fs::remove_dir_all(report_dir.join("extra"));
    let targets = bench_targets()?;
    eprintln!("building the benches (release)...");
    run(cargo().args(["bench", "-p", "poolside-benches", "--locked", "--no-run"]))?;
    let pg = maybe_postgres(true)?;
    let redis = maybe_redis()?;
    for (index, target) in targets.iter().enumerate() {
        eprintln!(
            "\n[{}/{}] bench `{target}` ({:.0?} elapsed){}",
            index + 1,
            targets.len(),
            clock.elapsed(),
            if options.quick { " --quick" } else { "" }
        );
        let mut command = cargo();
        command
            .args(["bench", "-p", "poolside-benches", "--locked", "--bench", target, "--"])
            .env("POOLSIDE_BENCH_REPORT_DIR", &report_dir)
            .env("POOLSIDE_BENCH_QUICK", if options.quick { "1" } else { "0" });
        if let Some(filter) = &options.filter {
            command.arg(filter);
        }
        if target == "bufpool" {
            // glibc then maps and unmaps every large buffer, as in many long-running
            // services; the 1 MiB scenario measures what pooling saves there.
            command.env("MALLOC_MMAP_THRESHOLD_", "131072");
        }
        with_postgres_env(&mut command, pg.as_ref());
        with_redis_env(&mut command, redis.as_ref());
        run(&mut command)?;
    }
    drop((pg, redis));
    let report = bench_report::collect(&root().join("target/criterion"), started)?;
    if report.is_empty() {
        return Err(match &options.filter {
            Some(filter) => format!("no benchmark matched the filter `{filter}`"),
            None => "the benches ran but criterion wrote no results".into(),
        });
    }
    let extra = read_extra_fragments(&report_dir.join("extra"));
    let origin = format!(
        "Produced by `cargo xtask bench{}{}` on {} cores",
        if options.quick { " --quick" } else { "" },
        options.filter.as_ref().map(|f| format!(" {f}")).unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let written = bench_report::write(&report, &extra, &report_dir, &origin)?;
    println!("\n{}", bench_report::terminal_table(&report));
    eprintln!(
        "report written to {} (and SVG charts beside it) in {:.0?}",
        written.display(),
        clock.elapsed()
    );
    Ok(())
}

/// `cargo xtask report CRITERION_DIR [OUT_DIR]`: the table and charts from results
/// measured elsewhere (every result in the folder counts, whatever its age).
pub(crate) fn report(args: &[String]) -> Result<(), String> {
    let (criterion_dir, out_dir) = match args {
        [dir] => (PathBuf::from(dir), root().join("target/bench-report-imported")),
        [dir, out] => (PathBuf::from(dir), PathBuf::from(out)),
        _ => return Err("usage: cargo xtask report CRITERION_DIR [OUT_DIR]".into()),
    };
    let report = bench_report::collect(&criterion_dir, SystemTime::UNIX_EPOCH)?;
    if report.is_empty() {
        return Err(format!("no criterion results under {}", criterion_dir.display()));
    }
    let extra = read_extra_fragments(&criterion_dir.join("../bench-report/extra"));
    let origin = format!("Imported from `{}` by `cargo xtask report`", criterion_dir.display());
    let written = bench_report::write(&report, &extra, &out_dir, &origin)?;
    println!("{}", bench_report::terminal_table(&report));
    eprintln!("report written to {}", written.display());
    Ok(())
}

/// The `[[bench]]` targets of benches/Cargo.toml, in file order.
fn bench_targets() -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(root().join("benches/Cargo.toml"))
        .map_err(|e| format!("reading benches/Cargo.toml: {e}"))?;
    let targets: Vec<String> = manifest.split("[[bench]]").skip(1).filter_map(first_name).collect();
    if targets.is_empty() {
        Err("benches/Cargo.toml declares no [[bench]] targets".into())
    } else {
        Ok(targets)
    }
}

fn read_extra_fragments(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
}

/// Example targets of every published crate: (package, example name).
fn example_targets() -> Vec<(String, String)> {
    let mut examples = Vec::new();
    for (package, dir) in member_crates() {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("examples"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "rs") {
                    Some(path.file_stem()?.to_string_lossy().into_owned())
                } else if path.join("main.rs").exists() {
                    Some(e.file_name().to_string_lossy().into_owned())
                } else {
                    None
                }
            })
            .collect();
        names.sort();
        examples.extend(names.into_iter().map(|n| (package.clone(), n)));
    }
    examples
}

/// `cargo xtask examples`.
pub(crate) fn examples() -> Result<(), String> {
    let examples = example_targets();
    if examples.is_empty() {
        eprintln!("notice: no examples yet (crates/*/examples/)");
        return Ok(());
    }
    let pg = maybe_postgres(true)?;
    let redis = maybe_redis()?;
    for (index, (package, example)) in examples.iter().enumerate() {
        eprintln!("\n[{}/{}] example {package}/{example}", index + 1, examples.len());
        let mut command = cargo();
        command.args(["run", "--locked", "--all-features", "-p", package, "--example", example]);
        if let Some(pg) = &pg {
            command.env("DATABASE_URL", pg.url());
        }
        with_postgres_env(&mut command, pg.as_ref());
        with_redis_env(&mut command, redis.as_ref());
        run(&mut command)?;
    }
    Ok(())
}

/// Options of `cargo xtask package`.
#[derive(Debug, Default)]
pub(crate) struct PackageOptions {
    allow_dirty: bool,
}

impl PackageOptions {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = PackageOptions::default();
        for arg in args {
            match arg.as_str() {
                "--allow-dirty" => options.allow_dirty = true,
                other => return Err(format!("`package` does not take `{other}`")),
            }
        }
        Ok(options)
    }
}

/// Workspace packages marked `publish = false` (benches, xtask, test support).
fn unpublished_packages() -> Vec<String> {
    let mut dirs: Vec<PathBuf> = member_crates().into_iter().map(|(_, dir)| dir).collect();
    dirs.extend([root().join("benches"), root().join("xtask")]);
    dirs.iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("Cargo.toml")).ok())
        .filter(|manifest| manifest.lines().any(|l| l.replace(' ', "") == "publish=false"))
        .filter_map(|manifest| package_name(&manifest))
        .collect()
}

/// `cargo xtask package`.
pub(crate) fn package(options: &PackageOptions) -> Result<(), String> {
    forget_stale_local_packages();
    let mut command = cargo();
    command.args(["package", "--workspace", "--locked"]);
    for excluded in unpublished_packages() {
        command.args(["--exclude", &excluded]);
    }
    if options.allow_dirty {
        command.arg("--allow-dirty");
    }
    run(&mut command)
}

/// `cargo package --workspace` verifies each crate against its siblings through a
/// temporary local registry, which cargo unpacks under `$CARGO_HOME/registry/src/-<hash>`
/// and does not unpack again while a folder of the same name and version exists. An
/// earlier run's copy of a workspace crate would then be compiled instead of today's
/// source, so those unpacked copies of our own crates are removed first (crates.io's
/// folders are never touched: they are not named `-<hash>`).
fn forget_stale_local_packages() {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let Some(registry_src) = cargo_home.map(|home| home.join("registry/src")) else { return };
    let ours: Vec<String> = member_crates().into_iter().map(|(name, _)| name).collect();
    let local_registries = std::fs::read_dir(&registry_src)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with('-'));
    for registry in local_registries {
        for unpacked in std::fs::read_dir(registry.path()).into_iter().flatten().flatten() {
            let folder = unpacked.file_name().to_string_lossy().into_owned();
            let is_ours = ours.iter().any(|name| {
                folder.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('-'))
            });
            if is_ours {
                if let Err(err) = std::fs::remove_dir_all(unpacked.path()) {
                    eprintln!("warning: removing {}: {err}", unpacked.path().display());
                }
            }
        }
    }
}

/// One named step of `cargo xtask ci`.
type Step = dyn Fn() -> Result<(), String>;

/// `cargo xtask ci`.
pub(crate) fn ci() -> Result<(), String> {
    let clock = Instant::now();
    let steps: [(&str, &Step); 4] = [
        ("lint", &lint),
        ("test", &|| test(&TestOptions::default())),
        ("examples", &examples),
        ("package", &|| package(&PackageOptions::default())),
    ];
    for (name, step) in steps {
        eprintln!("\n==== ci: {name} ({:.0?} elapsed) ====", clock.elapsed());
        step().map_err(|e| format!("ci step `{name}` failed: {e}"))?;
    }
    eprintln!("\nci passed in {:.0?}", clock.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loom_model_runs_under_the_cfg_it_is_gated_on() {
        let root = root();
        assert_eq!(model_cfg(&root.join("crates/connpool/tests/loom.rs")), "poolside_loom");
        assert_eq!(model_cfg(&root.join("crates/workerpool/tests/loom.rs")), "loom");
        assert_eq!(model_cfg(&root.join("no/such/model.rs")), "loom");
    }

    #[test]
    fn the_msrv_is_read_from_the_workspace_manifest() {
        assert_eq!(rust_version("[package]\nrust-version = \"1.85\"\n").as_deref(), Some("1.85"));
        assert_eq!(rust_version("[package]\nname = \"x\"\n"), None);
        let msrv = msrv().expect("the workspace names its rust-version");
        assert!(msrv.split('.').all(|part| part.parse::<u32>().is_ok()), "{msrv}");
    }

    #[test]
    fn manifest_names_are_read_per_section() {
        let manifest = "[package]\nname = \"poolside-benches\"\npublish = false\n\n\
                        [[bench]]\nname = \"core\"\nharness = false\n\n[[bench]]\nname = \"bufpool\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("poolside-benches"));
        let benches: Vec<String> =
            manifest.split("[[bench]]").skip(1).filter_map(first_name).collect();
        assert_eq!(benches, ["core", "bufpool"]);
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }

    #[test]
    fn every_bench_target_of_the_workspace_is_found() {
        let targets = bench_targets().unwrap();
        for expected in ["core", "bufpool", "workerpool", "connpool", "metrics"] {
            assert!(targets.iter().any(|t| t == expected), "{expected} in {targets:?}");
        }
    }
}
