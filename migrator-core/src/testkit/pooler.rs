//! A throw-away PgBouncer in front of a test cluster, in transaction pooling mode as platform
//! teams run it, with its admin console: Debian's `pgbouncer` package
//! (`scripts/install-postgres.sh` installs it), or the binary `MIGRATOR_PGBOUNCER` names.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Cluster, SUPERUSER, TestkitError, chown, free_port, run, server_os_user};

/// A running PgBouncer; stopped and deleted when dropped.
pub struct Pooler {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl Pooler {
    /// Starts PgBouncer on a free port of 127.0.0.1 in front of `cluster`, with an entry for
    /// each of `databases` (same name on both sides) and its console (database `pgbouncer`,
    /// the cluster's superuser as its admin).
    pub fn start(cluster: &Cluster, databases: &[&str]) -> Result<Pooler, TestkitError> {
        Pooler::start_ignoring(cluster, databases, &[])
    }

    /// [`start`](Self::start), with PgBouncer's `ignore_startup_parameters` set to `ignored`
    /// (a common setting: `extra_float_digits, options`), which lets clients that send those
    /// parameters through, without them.
    pub fn start_ignoring(
        cluster: &Cluster,
        databases: &[&str],
        ignored: &[&str],
    ) -> Result<Pooler, TestkitError> {
        let binary = binary()?;
        let os_user = server_os_user()?;
        let dir = tempfile::Builder::new()
            .prefix("pgmig-bouncer-")
            .tempdir()
            .map_err(|e| TestkitError::Setup(format!("cannot create a directory: {e}")))?;
        let port = free_port()?;
        let entries: String = databases
            .iter()
            .map(|db| {
                format!(
                    "{db} = host=127.0.0.1 port={} dbname={db}\n",
                    cluster.port()
                )
            })
            .collect();
        let path = |name: &str| dir.path().join(name);
        let ini = format!(
            "[databases]\n{entries}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {users}\n\
             admin_users = {SUPERUSER}\npool_mode = transaction\nmax_client_conn = 200\n\
             default_pool_size = 10\nlogfile = {log}\npidfile = {pid}\n\
             ignore_startup_parameters = {ignored}\n",
            ignored = ignored.join(","),
            users = path("userlist.txt").display(),
            log = path("pgbouncer.log").display(),
            pid = path("pgbouncer.pid").display(),
        );
        let write = |name: &str, text: &str| {
            std::fs::write(path(name), text)
                .map_err(|e| TestkitError::Setup(format!("cannot write {name}: {e}")))
        };
        write("pgbouncer.ini", &ini)?;
        write(
            "userlist.txt",
            &format!("\"{SUPERUSER}\" \"{}\"\n", cluster.password()),
        )?;
        let mut cmd = Command::new(&binary);
        cmd.arg("-d").arg(path("pgbouncer.ini"));
        if let Some(user) = &os_user {
            // PgBouncer refuses to run as root.
            for entry in [
                dir.path().to_owned(),
                path("pgbouncer.ini"),
                path("userlist.txt"),
            ] {
                chown(&entry, user)?;
            }
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        run(&mut cmd, "starting pgbouncer")?;
        let pooler = Pooler {
            password: cluster.password().to_owned(),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(TestkitError::Setup(format!(
                    "pgbouncer did not listen on port {port} within 10 s; its log:\n{}",
                    pooler.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(pooler)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgresql://` URL of database `db` through the pooler, as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// tokio-postgres settings of database `db` through the pooler (an application's client:
    /// no startup options).
    pub fn pg_config(&self, db: &str) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.password)
            .dbname(db);
        pg
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            // SIGINT: PgBouncer's "safe shutdown" without waiting for clients.
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .output();
        }
    }
}

/// The pgbouncer binary: `MIGRATOR_PGBOUNCER`, Debian's, or one on PATH.
fn binary() -> Result<PathBuf, TestkitError> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("MIGRATOR_PGBOUNCER")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(PathBuf::from("/usr/sbin/pgbouncer"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("pgbouncer")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            TestkitError::Setup(
                "pgbouncer not found (looked at MIGRATOR_PGBOUNCER, /usr/sbin/pgbouncer and PATH): install it with `bash scripts/install-postgres.sh` (as root) or `apt-get install pgbouncer`".into(),
            )
        })
}
