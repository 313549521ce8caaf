//! A throwaway PostgreSQL cluster on loopback for the tests that need a real server.
//!
//! `initdb` into a fresh temporary folder, a free port on 127.0.0.1, trust
//! authentication for the `postgres` superuser; run as the `postgres` user through
//! `runuser` when we are root (PostgreSQL refuses to run as root). Dropping the handle
//! stops the server and removes the folder, so it goes away even when tests fail.
//!
//! The server speaks TLS too (`ssl=on`, plain connections stay allowed): a throwaway
//! CA signs a server certificate for `localhost` and `127.0.0.1`, and tests receive
//! the CA's PEM file in `POOLSIDE_PG_CA_FILE` (and the certificate and key in
//! `POOLSIDE_TLS_CERT_FILE` / `POOLSIDE_TLS_KEY_FILE`, for TLS servers of their own).

use crate::cmd;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable through which tests receive the server's URL.
pub(crate) const URL_VAR: &str = "POOLSIDE_PG_URL";

/// The environment variable through which tests receive the CA certificate (PEM) that
/// signed the server's TLS certificate.
pub(crate) const CA_VAR: &str = "POOLSIDE_PG_CA_FILE";

/// A running throwaway cluster; stopped and deleted on drop.
pub(crate) struct Postgres {
    bin_dir: PathBuf,
    dir: PathBuf,
    as_postgres_user: bool,
    url: String,
}

impl Postgres {
    /// Starts a cluster, or explains why it could not.
    pub(crate) fn start() -> Result<Postgres, String> {
        let bin_dir = find_bin_dir().ok_or(
            "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin, pg_config \
             --bindir and PATH); install it, e.g. `apt-get install postgresql`",
        )?;
        let as_postgres_user = is_root();
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("poolside-pg-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut pg = Postgres { bin_dir, dir, as_postgres_user, url: String::new() };
        if as_postgres_user {
            cmd::run(Command::new("chown").arg("postgres:postgres").arg(&pg.dir))?;
        }
        let data = pg.dir.join("data");
        pg.run_tool(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let (cert, key) = pg.write_tls_files()?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c ssl=on \
             -c ssl_cert_file={} -c ssl_key_file={}",
            pg.dir.display(),
            cert.display(),
            key.display()
        );
        let log = pg.dir.join("server.log");
        pg.run_tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        )?;
        pg.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        wait_until_accepting(port, Duration::from_secs(30))?;
        eprintln!("PostgreSQL is up: {}={}", URL_VAR, pg.url);
        Ok(pg)
    }

    /// The connection URL (`postgres://postgres@127.0.0.1:PORT/postgres`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's certificate (for `localhost` and `127.0.0.1`), which tests may
    /// also give to TLS servers of their own (a `redis-server --tls-port`, say).
    pub(crate) fn cert_file(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server certificate's private key.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// Makes the throwaway CA (`ca.pem`) and the server's certificate and key, owned
    /// by the server's user with the key private to it (PostgreSQL insists).
    fn write_tls_files(&self) -> Result<(PathBuf, PathBuf), String> {
        let tls = |e: rcgen::Error| format!("making the test TLS certificates: {e}");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "poolside throwaway test CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(tls)?;
        let mut server =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(tls)?;
        server.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let server_key = rcgen::KeyPair::generate().map_err(tls)?;
        let server_cert = server.signed_by(&server_key, &ca).map_err(tls)?;

        let write = |name: &str, contents: String| -> Result<PathBuf, String> {
            let path = self.dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(path)
        };
        write("ca.pem", ca.pem())?;
        let cert = write("server.crt", server_cert.pem())?;
        let key = write("server.key", server_key.serialize_pem())?;
        cmd::run(Command::new("chmod").arg("600").arg(&key))?;
        if self.as_postgres_user {
            cmd::run(Command::new("chown").arg("postgres:postgres").arg(&cert).arg(&key))?;
        }
        Ok((cert, key))
    }

    /// The `pg_ctl`/`initdb`/... binaries' folder, for tests that restart the server.
    pub(crate) fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The cluster's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Whether the server runs as the `postgres` user (through `runuser`).
    pub(crate) fn runs_as_postgres_user(&self) -> bool {
        self.as_postgres_user
    }

    fn run_tool(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let program = self.bin_dir.join(tool);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(&self.dir);
        cmd::run(&mut command)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        if let Err(e) = self.run_tool(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        ) {
            eprintln!("warning: stopping PostgreSQL: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: removing {}: {e}", self.dir.display());
        } else {
            eprintln!("PostgreSQL stopped and {} removed", self.dir.display());
        }
    }
}

fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    if let Some(dir) = cmd::output(Command::new("pg_config").arg("--bindir")) {
        let dir = PathBuf::from(dir.trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("finding a free port: {e}"))
}

fn wait_until_accepting(port: u16, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("PostgreSQL did not accept connections on port {port} within {limit:?}"))
}
