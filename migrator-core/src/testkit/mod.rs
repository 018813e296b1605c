//! Throw-away PostgreSQL clusters for tests and for the `demo` command.
//!
//! [`Cluster::start`] runs `initdb` and `pg_ctl start` in a fresh temporary directory on a free
//! loopback port; dropping the [`Cluster`] stops the server and deletes the directory, also when
//! a test panics. Each cluster has its own directory, port and random superuser password, so
//! tests run in parallel without clashes.
//!
//! PostgreSQL refuses to run as root, so when this process is root the server processes run as
//! the unprivileged OS user `postgres` (created when missing) and the data directory is theirs.
//!
//! Binaries are found through `MIGRATOR_PG{major}_BIN` (a directory holding `initdb`, `pg_ctl`
//! and `postgres`), then `.tools/postgresql-{major}/bin` in this workspace (where
//! `scripts/install-postgres.sh` puts them), then `/opt/postgres-migrator/postgresql-{major}/bin`
//! and `/usr/lib/postgresql/{major}/bin`. A missing binary is an error that names the install
//! command: tests fail loudly, they never skip.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::config::ConnectionSettings;

pub mod pooler;
pub mod sample;
pub mod tls;

/// Major version of the source clusters tests use.
pub const SOURCE_MAJOR: u32 = 15;
/// Major version of the destination clusters tests use.
pub const DESTINATION_MAJOR: u32 = 18;

/// The OS user server processes run as when this process is root.
const SERVER_OS_USER: &str = "postgres";
/// The superuser `initdb` creates.
pub const SUPERUSER: &str = "postgres";

/// Why a test cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The server binaries are not installed where we look.
    #[error(
        "PostgreSQL {major} server binaries (initdb, pg_ctl, postgres) not found; looked in: {looked}. Install them with `bash scripts/install-postgres.sh` (as root), or set MIGRATOR_PG{major}_BIN to a directory that holds them"
    )]
    MissingBinaries { major: u32, looked: String },
    /// A command failed.
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    /// Anything else on the file system or with users.
    #[error("{0}")]
    Setup(String),
}

/// A directory with `initdb`, `pg_ctl` and `postgres` of one major version.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub major: u32,
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Finds the binaries of `major` (see the module documentation for where it looks).
    pub fn find(major: u32) -> Result<Self, TestkitError> {
        let candidates = Self::candidates(major);
        candidates
            .iter()
            .find(|dir| {
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|b| dir.join(b).is_file())
            })
            .map(|dir| PgBinaries {
                major,
                bin_dir: dir.clone(),
            })
            .ok_or_else(|| TestkitError::MissingBinaries {
                major,
                looked: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn candidates(major: u32) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::var_os(format!("MIGRATOR_PG{major}_BIN")) {
            dirs.push(PathBuf::from(dir));
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        dirs.push(workspace.join(format!(".tools/postgresql-{major}/bin")));
        dirs.push(PathBuf::from(format!(
            "/opt/postgres-migrator/postgresql-{major}/bin"
        )));
        dirs.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
        dirs
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// What kind of cluster to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Major version.
    pub major: u32,
    /// Extra `postgresql.conf` settings, laid over the defaults (later entries win).
    pub settings: Vec<(String, String)>,
    /// `ssl = on` with this certificate, key and client CA.
    pub tls: Option<tls::ServerTls>,
    /// `pg_hba.conf` lines put before initdb's own (the first matching line decides).
    pub hba: Vec<String>,
}

impl ClusterOptions {
    /// A PostgreSQL 15 source: `wal_level = logical` with room for many slots and senders.
    pub fn source() -> Self {
        ClusterOptions {
            major: SOURCE_MAJOR,
            settings: settings(&[
                ("wal_level", "logical"),
                ("max_replication_slots", "40"),
                ("max_wal_senders", "40"),
            ]),
            tls: None,
            hba: Vec::new(),
        }
    }

    /// A PostgreSQL 18 destination with room for many subscriptions.
    pub fn destination() -> Self {
        ClusterOptions {
            major: DESTINATION_MAJOR,
            settings: settings(&[
                ("max_logical_replication_workers", "24"),
                ("max_worker_processes", "40"),
                ("max_replication_slots", "40"),
                ("max_active_replication_origins", "40"),
            ]),
            tls: None,
            hba: Vec::new(),
        }
    }

    /// Turns TLS on with `tls`'s certificate (`ssl_ca_file` trusts its client CA).
    pub fn with_tls(mut self, tls: tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Puts a `pg_hba.conf` line before initdb's own.
    pub fn with_hba(mut self, line: &str) -> Self {
        self.hba.push(line.to_owned());
        self
    }

    /// Adds or overrides a `postgresql.conf` setting.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A running throw-away cluster. Dropping it stops the server and deletes its files.
pub struct Cluster {
    binaries: PgBinaries,
    dir: tempfile::TempDir,
    os_user: Option<nix::unistd::User>,
    port: u16,
    password: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("major", &self.binaries.major)
            .field("port", &self.port)
            .field("data", &self.data_dir())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// `pg_dump --schema-only` (PostgreSQL 18's, from `.tools/pg18-client`, which
    /// `scripts/install-postgres.sh` installs; or `MIGRATOR_PG18_CLIENT`) of database `db`, with
    /// neither subscriptions nor statistics: the text pg_upgrade's own test compares.
    pub fn dump_schema(&self, db: &str) -> Result<String, TestkitError> {
        let output = self
            .client_tool("pg_dump")?
            .args([
                "--schema-only",
                "--no-subscriptions",
                "--no-statistics",
                "-d",
                db,
            ])
            .output()
            .map_err(|e| TestkitError::Setup(format!("running pg_dump: {e}")))?;
        if !output.status.success() {
            return Err(TestkitError::Command {
                what: format!("pg_dump of {db:?}"),
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs the SQL script `file` in database `db` with psql (PostgreSQL 18's), going on past
    /// errors; returns psql's error lines (`psql:FILE:LINE: ERROR: ...`).
    pub fn run_script(&self, db: &str, file: &Path) -> Result<Vec<String>, TestkitError> {
        let output = self
            .client_tool("psql")?
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", db, "-f"])
            .arg(file)
            .stdout(std::process::Stdio::null())
            .output()
            .map_err(|e| TestkitError::Setup(format!("running psql: {e}")))?;
        Ok(String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| l.contains("ERROR:"))
            .map(str::to_owned)
            .collect())
    }

    /// PostgreSQL 18's client tool `name` (pg_dump, psql), set to reach this cluster as the
    /// superuser.
    fn client_tool(&self, name: &str) -> Result<Command, TestkitError> {
        let client = std::env::var_os("MIGRATOR_PG18_CLIENT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/pg18-client"));
        let tool = client.join("bin").join(name);
        if !tool.is_file() {
            return Err(TestkitError::Setup(format!(
                "{} not found: install PostgreSQL 18's client tools with `bash scripts/install-postgres.sh`, or set MIGRATOR_PG18_CLIENT to a directory with bin/{name}",
                tool.display()
            )));
        }
        let mut command = Command::new(&tool);
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .env("PGPASSWORD", &self.password)
            .env("LD_LIBRARY_PATH", client.join("lib"));
        Ok(command)
    }

    /// Creates and starts a cluster.
    pub fn start(options: &ClusterOptions) -> Result<Cluster, TestkitError> {
        let binaries = PgBinaries::find(options.major)?;
        let os_user = server_os_user()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("pgmig-{}-", options.major))
            .tempdir()
            .map_err(|e| {
                TestkitError::Setup(format!("cannot create a temporary directory: {e}"))
            })?;
        let mut cluster = Cluster {
            binaries,
            dir,
            os_user,
            port: 0,
            password: random_password(),
        };
        cluster.init(options)?;
        cluster.start_server_on_free_port()?;
        Ok(cluster)
    }

    /// Starts a PostgreSQL 15 source and a PostgreSQL 18 destination side by side.
    pub fn start_pair() -> Result<(Cluster, Cluster), TestkitError> {
        let source = std::thread::spawn(|| Cluster::start(&ClusterOptions::source()));
        let destination = Cluster::start(&ClusterOptions::destination());
        let source = source
            .join()
            .map_err(|_| TestkitError::Setup("starting the source cluster panicked".into()))?;
        Ok((source?, destination?))
    }

    /// The major version running.
    pub fn major(&self) -> u32 {
        self.binaries.major
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far (`log_line_prefix` as initdb leaves it).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Connection settings for the superuser, as a mapping's `source` or `destination`.
    pub fn connection_settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            host: Some("127.0.0.1".into()),
            port: Some(self.port),
            user: Some(SUPERUSER.into()),
            password: Some(SecretString::from(self.password.clone())),
            ..ConnectionSettings::default()
        }
    }

    /// Environment variables (`MIGRATOR__MAPPINGS__<MAPPING>__<SIDE>__...`) that make this
    /// cluster the `side` ("source" or "destination") of mapping `mapping`, as the superuser.
    pub fn mapping_env(&self, mapping: &str, side: &str) -> Vec<(String, String)> {
        let prefix = format!(
            "MIGRATOR__MAPPINGS__{}__{}",
            mapping.to_uppercase(),
            side.to_uppercase()
        );
        vec![
            (format!("{prefix}__HOST"), "127.0.0.1".to_owned()),
            (format!("{prefix}__PORT"), self.port.to_string()),
            (format!("{prefix}__USER"), SUPERUSER.to_owned()),
            (format!("{prefix}__PASSWORD"), self.password.clone()),
        ]
    }

    /// tokio-postgres settings for database `dbname` as the superuser.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(dbname)
            .application_name("postgres-migrator-testkit");
        pg
    }

    /// Stops the server (fast shutdown), keeping its files: to test a server that goes away.
    pub fn stop(&self) -> Result<(), TestkitError> {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"], "pg_ctl stop")
            .map(|_| ())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> Result<(), TestkitError> {
        self.start_server()
    }

    fn init(&self, options: &ClusterOptions) -> Result<(), TestkitError> {
        let root = self.dir.path();
        if let Some(user) = &self.os_user {
            chown(root, user)?;
        }
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, &self.password)
            .map_err(|e| TestkitError::Setup(format!("cannot write {}: {e}", pwfile.display())))?;
        if let Some(user) = &self.os_user {
            chown(&pwfile, user)?;
        }
        let data = self.data_dir();
        let mut initdb = self.command(&self.binaries.tool("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(&mut initdb, "initdb")?;
        std::fs::remove_file(&pwfile).ok();

        let mut conf = String::from("\n# postgres-migrator testkit\n");
        let defaults = [
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", ""),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("shared_buffers", "64MB"),
            ("max_connections", "100"),
        ];
        for (name, value) in defaults.iter().map(|(k, v)| (*k, *v)).chain(
            options
                .settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ) {
            let _ = writeln!(conf, "{name} = '{}'", value.replace('\'', "''"));
        }
        if let Some(tls) = &options.tls {
            for (name, text, mode) in [
                ("server.crt", tls.server.cert_pem.as_str(), 0o644),
                ("server.key", tls.server.key_pem.as_str(), 0o600),
                ("client_ca.crt", tls.client_ca_pem.as_str(), 0o644),
            ] {
                let path = tls::write_file(&data, name, text, mode)?;
                if let Some(user) = &self.os_user {
                    chown(&path, user)?;
                }
            }
            for (name, value) in [
                ("ssl", "on"),
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
                ("ssl_ca_file", "client_ca.crt"),
            ] {
                let _ = writeln!(conf, "{name} = '{value}'");
            }
        }
        if !options.hba.is_empty() {
            let hba_path = data.join("pg_hba.conf");
            let initdb_lines = std::fs::read_to_string(&hba_path).map_err(|e| {
                TestkitError::Setup(format!("cannot read {}: {e}", hba_path.display()))
            })?;
            let text = format!("{}\n{initdb_lines}", options.hba.join("\n"));
            std::fs::write(&hba_path, text).map_err(|e| {
                TestkitError::Setup(format!("cannot write {}: {e}", hba_path.display()))
            })?;
        }
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).map_err(|e| {
            TestkitError::Setup(format!("cannot read {}: {e}", conf_path.display()))
        })?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text)
            .map_err(|e| TestkitError::Setup(format!("cannot write {}: {e}", conf_path.display())))
    }

    /// Picks a free port and starts; another process may take the port between the pick and the
    /// start, so a bind failure picks again.
    fn start_server_on_free_port(&mut self) -> Result<(), TestkitError> {
        let mut last = None;
        for _ in 0..8 {
            self.port = free_port()?;
            match self.start_server() {
                Ok(()) => return Ok(()),
                Err(e) if self.log_tail().contains("could not bind") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Setup("no free port found".into())))
    }

    fn start_server(&self) -> Result<(), TestkitError> {
        let log = self.log_path();
        let options = format!("-p {}", self.port);
        let result = self.pg_ctl(
            &[
                "start",
                "-w",
                "-t",
                "120",
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
            ],
            "pg_ctl start",
        );
        result.map(|_| ()).map_err(|e| match e {
            TestkitError::Command { what, detail } => TestkitError::Command {
                what,
                detail: format!("{detail}\nserver log:\n{}", self.log_tail()),
            },
            other => other,
        })
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<Output, TestkitError> {
        let mut cmd = self.command(&self.binaries.tool("pg_ctl"));
        cmd.arg("-D").arg(self.data_dir()).args(args);
        run(&mut cmd, what)
    }

    fn log_tail(&self) -> String {
        let text = self.server_log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A command that runs as the server's OS user.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LC_ALL", "C.UTF-8").current_dir(self.dir.path());
        if let Some(user) = &self.os_user {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("HOME", self.dir.path());
        }
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: the files are deleted next, nothing needs to be flushed.
        let _ = self.pg_ctl(
            &["stop", "-m", "immediate", "-w", "-t", "30"],
            "pg_ctl stop",
        );
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, TestkitError> {
    let output = cmd.output().map_err(|e| TestkitError::Command {
        what: what.to_owned(),
        detail: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(TestkitError::Command {
            what: what.to_owned(),
            detail: format!(
                "{}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

/// The OS user to run servers as: `None` when this process is not root.
fn server_os_user() -> Result<Option<nix::unistd::User>, TestkitError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let lookup = || {
        nix::unistd::User::from_name(SERVER_OS_USER).map_err(|e| {
            TestkitError::Setup(format!("cannot look up OS user {SERVER_OS_USER}: {e}"))
        })
    };
    if let Some(user) = lookup()? {
        return Ok(Some(user));
    }
    // Another test process may create it at the same moment: look again whatever useradd says.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg(SERVER_OS_USER)
        .output();
    lookup()?.map(Some).ok_or_else(|| {
        TestkitError::Setup(format!(
            "running as root, and the OS user {SERVER_OS_USER} that PostgreSQL must run as does not exist and could not be created: run `useradd --system {SERVER_OS_USER}`"
        ))
    })
}

fn chown(path: &Path, user: &nix::unistd::User) -> Result<(), TestkitError> {
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).map_err(|e| {
        TestkitError::Setup(format!(
            "cannot give {} to {}: {e}",
            path.display(),
            user.name
        ))
    })
}

fn free_port() -> Result<u16, TestkitError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TestkitError::Setup(format!("cannot find a free port: {e}")))
}

/// A password unique to this cluster (test clusters only: not for real secrets).
fn random_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("pw{:x}{:x}", nanos, std::process::id())
}
