//! Backups around a migration: a way back and a way to start over. `create` runs one
//! `pg_dump --format=directory --jobs N` per database of a mapping's side (and
//! `pg_dumpall --roles-only` where the role can read them) into `backup.dir/<key>/`, then writes
//! the manifest (see [`manifest`]) last; `list` shows finished backups and, apart, unfinished
//! ones; `restore` checks every file's checksum, then runs `pg_restore --jobs N` into a database
//! it creates; `delete` removes a backup.
//!
//! Passwords reach the child processes through their environment (`PGPASSWORD`), never their
//! arguments, which other users of the machine can read. Progress comes from the programs'
//! `--verbose` output ("table N of M"). Cancelling (the token) kills the child and removes the
//! unfinished backup.

pub mod manifest;
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::config::{BackupSettings, ConnectionSettings, ResolvedConnection};
use crate::ddl::quote::ident;
use crate::pg::{self, PgError, Session, q};
use crate::phases::MappingContext;
use manifest::{DumpedDatabase, Manifest, io};

/// Why a backup command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "backup.dir is not set: set it (MIGRATOR__BACKUP__DIR) to a directory with room for the dumps, a mounted volume in Kubernetes"
    )]
    NotConfigured,
    #[error("no backup {0:?} in backup.dir (`postgres-migrator backup list` shows the keys)")]
    UnknownKey(String),
    #[error("{0}")]
    Tool(String),
    #[error("{0}")]
    Refused(String),
    #[error("the backup is damaged: {0}; it cannot be restored")]
    Damaged(String),
    #[error("{what}: {error}")]
    Io { what: String, error: String },
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("cancelled: the unfinished backup was removed")]
    Cancelled,
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// Which server of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }

    fn of(self, ctx: &MappingContext) -> &ResolvedConnection {
        match self {
            Side::Source => &ctx.source,
            Side::Destination => &ctx.destination,
        }
    }
}

pub use crate::status::BackupProgress as Progress;

/// A backup as `list` finds it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub key: String,
    /// `None`: unfinished (killed, failed or still running); never restorable.
    pub manifest: Option<Manifest>,
    pub bytes: u64,
}

/// Where a restore goes.
pub enum Target<'a> {
    Side(Side),
    /// Another server, by URL.
    Url(&'a str),
}

/// What `restore` is asked.
pub struct RestoreRequest<'a> {
    pub key: &'a str,
    pub to: Target<'a>,
    /// One database of the backup; default all.
    pub database: Option<&'a str>,
    /// Its name on the target (one database only).
    pub as_name: Option<&'a str>,
    /// Drop a database of that name first, ending its sessions.
    pub clean: bool,
    /// Leave out ownership and privileges (for a server without the backup's roles).
    pub no_owner: bool,
}

fn backup_dir(settings: &BackupSettings) -> Result<&Path, BackupError> {
    settings.dir.as_deref().ok_or(BackupError::NotConfigured)
}

/// A key names a directory: only the characters keys are made of, so that no key reaches
/// outside `backup.dir`.
fn checked_key(settings: &BackupSettings, key: &str) -> Result<PathBuf, BackupError> {
    let dir = backup_dir(settings)?;
    let sane = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !key.starts_with('-');
    let path = dir.join(key);
    if !sane || !path.is_dir() {
        return Err(BackupError::UnknownKey(key.to_owned()));
    }
    Ok(path)
}

/// `20261204T191600Z-prod-source` for a backup started at `at`.
pub fn key_for(at: SystemTime, mapping: &str, side: Side) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{stamp}-{mapping}-{}", side.as_str())
}

/// Backs up `side` of `ctx`'s mapping: every database it migrates there, or `only`.
pub async fn create(
    ctx: &MappingContext,
    settings: &BackupSettings,
    side: Side,
    only: Option<&str>,
    progress: &(dyn Fn(&Progress) + Sync),
    cancel: &CancellationToken,
) -> Result<Manifest, BackupError> {
    let root = backup_dir(settings)?;
    let conn = side.of(ctx);
    let admin = pg::session(conn, conn.maintenance_db()).await?;
    let (server_version, major) = server_version(&admin).await?;
    let dump = tools::find("pg_dump", major, &settings.pg_bin_dir)?;
    let mut databases = databases_of(ctx, &admin).await?;
    if let Some(only) = only {
        if !databases.iter().any(|d| d == only) {
            return Err(BackupError::Refused(format!(
                "mapping {} has no database {only:?} on its {} (it has: {})",
                ctx.name,
                side.as_str(),
                databases.join(", ")
            )));
        }
        databases = vec![only.to_owned()];
    }
    let started = SystemTime::now();
    let key = key_for(started, &ctx.name, side);
    let dir = root.join(&key);
    std::fs::create_dir_all(&dir).map_err(io("creating the backup directory", &dir))?;
    let made = async {
        let mut dumped = Vec::new();
        for (i, db) in databases.iter().enumerate() {
            let session = pg::session(conn, db).await?;
            let total = data_tables(&session).await?;
            drop(session);
            let out = dir.join(format!("db{i}"));
            let mut command = dump.command();
            command
                .args(["--format=directory", "--verbose", "--no-password"])
                .arg(format!("--jobs={}", settings.jobs.max(1)))
                .arg("--file")
                .arg(&out);
            libpq_env(&mut command, conn, db);
            run(
                command,
                &format!("pg_dump of {db:?}"),
                &Counter::new(db, total, "dumping contents of table"),
                progress,
                cancel,
            )
            .await?;
            dumped.push(DumpedDatabase {
                name: db.clone(),
                dir: format!("db{i}"),
                bytes: manifest::sums(&out)?.iter().map(|f| f.bytes).sum(),
                tables: total,
            });
        }
        let (roles, roles_note) = dump_roles(conn, settings, major, &dir, cancel).await?;
        Ok::<_, BackupError>((dumped, roles, roles_note))
    };
    let (dumped, roles, roles_note) = match made.await {
        Ok(made) => made,
        Err(e) => {
            // An unfinished backup has no manifest; remove what it wrote.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let manifest = Manifest {
        key,
        mapping: ctx.name.clone(),
        side: side.as_str().to_owned(),
        server: server_of(conn),
        server_version,
        dump_tool: dump.version.clone(),
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        databases: dumped,
        roles,
        roles_note,
        files: manifest::sums(&dir)?,
    };
    manifest.write(&dir)?;
    tracing::info!(mapping = %ctx.name, key = %manifest.key, bytes = manifest.bytes(), "backup written");
    Ok(manifest)
}

/// Every backup in `backup.dir`, newest first; unfinished ones have no manifest.
pub fn list(settings: &BackupSettings) -> Result<Vec<Listed>, BackupError> {
    let root = backup_dir(settings)?;
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io("reading backup.dir", root)(e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let manifest = Manifest::read(&path);
        let bytes = match &manifest {
            Some(m) => m.bytes(),
            None => manifest::sums(&path)
                .map(|s| s.iter().map(|f| f.bytes).sum())
                .unwrap_or(0),
        };
        found.push(Listed {
            key: entry.file_name().to_string_lossy().into_owned(),
            manifest,
            bytes,
        });
    }
    found.sort_by(|a, b| b.key.cmp(&a.key));
    Ok(found)
}

/// Removes backup `key` and every file in it.
pub fn delete(settings: &BackupSettings, key: &str) -> Result<(), BackupError> {
    let path = checked_key(settings, key)?;
    std::fs::remove_dir_all(&path).map_err(io("deleting the backup", &path))?;
    tracing::info!(key, "backup deleted");
    Ok(())
}

/// The manifest of finished backup `key`.
pub fn manifest_of(settings: &BackupSettings, key: &str) -> Result<Manifest, BackupError> {
    let path = checked_key(settings, key)?;
    Manifest::read(&path).ok_or_else(|| {
        BackupError::Refused(format!(
            "backup {key} is unfinished (it has no manifest: killed, failed or still running) and cannot be restored; delete it"
        ))
    })
}

/// Restores backup `request.key` (see [`RestoreRequest`]); returns one line per thing done.
/// `ctx`: the backup's mapping, for `--to source|destination`.
pub async fn restore(
    ctx: Option<&MappingContext>,
    settings: &BackupSettings,
    request: &RestoreRequest<'_>,
    progress: &(dyn Fn(&Progress) + Sync),
    cancel: &CancellationToken,
) -> Result<Vec<String>, BackupError> {
    let path = checked_key(settings, request.key)?;
    let manifest = manifest_of(settings, request.key)?;
    manifest.verify(&path)?;
    let chosen: Vec<&DumpedDatabase> = match request.database {
        Some(name) => vec![
            manifest
                .databases
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| {
                    BackupError::Refused(format!(
                        "backup {} has no database {name:?} (it has: {})",
                        request.key,
                        names(&manifest)
                    ))
                })?,
        ],
        None => manifest.databases.iter().collect(),
    };
    if request.as_name.is_some() && chosen.len() != 1 {
        return Err(BackupError::Refused(format!(
            "--as names one database, and backup {} holds {} ({}): add --database",
            request.key,
            chosen.len(),
            names(&manifest)
        )));
    }
    let resolved;
    let conn = match request.to {
        Target::Side(side) => side.of(ctx.ok_or_else(|| {
            BackupError::Refused(format!(
                "backup {} is of mapping {:?}, which is not configured: give --to a connection URL",
                request.key, manifest.mapping
            ))
        })?),
        Target::Url(url) => {
            resolved = ConnectionSettings {
                url: Some(url.to_owned().into()),
                ..ConnectionSettings::default()
            }
            .resolve("--to")
            .map_err(|problems| {
                BackupError::Refused(
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            &resolved
        }
    };
    let admin = pg::session(conn, conn.maintenance_db()).await?;
    let (_, major) = server_version(&admin).await?;
    let archive_major = tools::major_of(&manifest.dump_tool).unwrap_or(0);
    let restore_tool = tools::find("pg_restore", major.max(archive_major), &settings.pg_bin_dir)?;
    let mut done = Vec::new();
    for db in chosen {
        let name = request.as_name.unwrap_or(&db.name);
        done.extend(prepare_target(&admin, conn, name, request.clean).await?);
        let mut command = restore_tool.command();
        command
            .args(["--verbose", "--no-password", "--exit-on-error"])
            .arg(format!("--jobs={}", settings.jobs.max(1)));
        if request.no_owner {
            command.args(["--no-owner", "--no-privileges"]);
        }
        command.arg(path.join(&db.dir));
        libpq_env(&mut command, conn, name);
        // pg_restore takes the database from --dbname (PGDATABASE alone is not enough), which
        // libpq reads as a connection string when it holds `=`: give it one, the name quoted.
        command.arg(format!("--dbname={}", conninfo_dbname(name)));
        run(
            command,
            &format!("pg_restore of {:?} into {name:?}", db.name),
            &Counter::new(name, db.tables, "processing data for table"),
            progress,
            cancel,
        )
        .await?;
        done.push(format!(
            "restored {:?} from backup {} into database {name:?} on {}",
            db.name,
            request.key,
            server_of(conn)
        ));
    }
    Ok(done)
}

fn names(manifest: &Manifest) -> String {
    manifest
        .databases
        .iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates database `name` for the restore. One that exists is refused unless `clean`, which
/// ends its sessions and drops it first (and says how many sessions it ended).
async fn prepare_target(
    admin: &Session,
    conn: &ResolvedConnection,
    name: &str,
    clean: bool,
) -> Result<Vec<String>, BackupError> {
    let mut done = Vec::new();
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(q(admin.target(), "looking for the target database"))?
        .is_some();
    if exists {
        let sessions: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .map_err(q(admin.target(), "counting the target database's sessions"))?
            .get(0);
        if !clean {
            return Err(BackupError::Refused(format!(
                "database {name:?} exists on {} ({sessions} session(s) connected): restore writes only into a database it creates. Restore under another name (--as NEWNAME), or add --clean to end its sessions, drop it and create it again",
                server_of(conn)
            )));
        }
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", ident(name)))
            .await
            .map_err(q(admin.target(), "dropping the target database (--clean)"))?;
        done.push(format!(
            "--clean: ended {sessions} session(s) of database {name:?} and dropped it"
        ));
    }
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            ident(name)
        ))
        .await
        .map_err(q(admin.target(), "creating the target database"))?;
    done.push(format!("created database {name:?} on {}", server_of(conn)));
    Ok(done)
}

/// The roles, where the role can read them: with their passwords, else without (as on managed
/// services, where pg_authid is not readable), else none, with the reason in the manifest.
async fn dump_roles(
    conn: &ResolvedConnection,
    settings: &BackupSettings,
    major: u32,
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<(Option<String>, Option<String>), BackupError> {
    let dumpall = match tools::find("pg_dumpall", major, &settings.pg_bin_dir) {
        Ok(tool) => tool,
        Err(e) => return Ok((None, Some(format!("roles not saved: {e}")))),
    };
    let mut last = String::new();
    for (extra, note) in [
        (None, None),
        (
            Some("--no-role-passwords"),
            Some("roles saved without their passwords (the role cannot read pg_authid)"),
        ),
    ] {
        let mut command = dumpall.command();
        command
            .args(["--roles-only", "--no-password", "--file"])
            .arg(dir.join("roles.sql"));
        if let Some(extra) = extra {
            command.arg(extra);
        }
        libpq_env(&mut command, conn, conn.maintenance_db());
        match run(
            command,
            "pg_dumpall --roles-only",
            &Counter::none(),
            &|_| {},
            cancel,
        )
        .await
        {
            Ok(()) => return Ok((Some("roles.sql".to_owned()), note.map(str::to_owned))),
            Err(BackupError::Cancelled) => return Err(BackupError::Cancelled),
            Err(e) => last = e.to_string(),
        }
    }
    let _ = std::fs::remove_file(dir.join("roles.sql"));
    Ok((None, Some(format!("roles not saved: {last}"))))
}

/// `server_version` and its major version.
async fn server_version(admin: &Session) -> Result<(String, u32), PgError> {
    let row = admin
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int",
            &[],
        )
        .await
        .map_err(q(admin.target(), "reading the server's version"))?;
    Ok((row.get(0), (row.get::<_, i32>(1) / 10_000) as u32))
}

/// The databases of the mapping on this server (its filter, templates and unconnectable ones
/// left out).
async fn databases_of(ctx: &MappingContext, admin: &Session) -> Result<Vec<String>, PgError> {
    let rows = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            &[],
        )
        .await
        .map_err(q(admin.target(), "listing the databases"))?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|d| ctx.databases.admits(d))
        .collect())
}

/// Tables with rows to dump (what "table N of M" counts).
async fn data_tables(session: &Session) -> Result<u64, PgError> {
    let count: i64 = session
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND c.relpersistence <> 't'",
            &[],
        )
        .await
        .map_err(q(session.target(), "counting the tables"))?
        .get(0);
    Ok(count.max(0) as u64)
}

/// `dbname='...'`: a libpq connection string naming database `name`, so that no name is read
/// as a connection string of its own.
fn conninfo_dbname(name: &str) -> String {
    format!("dbname={}", crate::ddl::quote::conninfo_value(name))
}

/// `user@host:port`, never a password.
fn server_of(conn: &ResolvedConnection) -> String {
    let target = conn.describe();
    target
        .rsplit_once('/')
        .map_or(target.clone(), |(server, _)| server.to_owned())
}

/// libpq's environment for database `db` of `conn`: host, port, user, TLS, application name,
/// connect timeout and the password, which never goes on a command line.
fn libpq_env(command: &mut tokio::process::Command, conn: &ResolvedConnection, db: &str) {
    let pg = &conn.pg;
    for name in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGDATABASE",
        "PGSERVICE",
        "PGOPTIONS",
    ] {
        command.env_remove(name);
    }
    if let Some(host) = pg.get_hosts().first() {
        let host = match host {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        command.env("PGHOST", host);
    }
    command.env(
        "PGPORT",
        pg.get_ports().first().copied().unwrap_or(5432).to_string(),
    );
    if let Some(user) = pg.get_user() {
        command.env("PGUSER", user);
    }
    if let Some(password) = pg.get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    command.env("PGDATABASE", db);
    command.env("PGSSLMODE", conn.sslmode.as_str());
    for (name, value) in &conn.client_ssl_files {
        command.env(name, value);
    }
    if let Some(name) = pg.get_application_name() {
        command.env("PGAPPNAME", name);
    }
    if let Some(timeout) = pg.get_connect_timeout() {
        command.env("PGCONNECT_TIMEOUT", timeout.as_secs().max(1).to_string());
    }
}

/// Turns the `--verbose` lines of a run into progress: each line holding `marker` is one table
/// done.
struct Counter {
    database: String,
    total: u64,
    marker: &'static str,
}

impl Counter {
    fn new(database: &str, total: u64, marker: &'static str) -> Self {
        Counter {
            database: database.to_owned(),
            total,
            marker,
        }
    }

    fn none() -> Self {
        Counter::new("", 0, "\u{0}")
    }
}

/// Runs `command` to its end: its `--verbose` output counted into `progress`, the end of its
/// error output kept for the message if it fails. Cancelling kills it.
async fn run(
    mut command: tokio::process::Command,
    what: &str,
    counter: &Counter,
    progress: &(dyn Fn(&Progress) + Sync),
    cancel: &CancellationToken,
) -> Result<(), BackupError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| BackupError::Io {
        what: format!("starting {what}"),
        error: e.to_string(),
    })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut tail: Vec<String> = Vec::new();
    let mut done = 0u64;
    let reading = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(counter.marker) {
                done += 1;
                progress(&Progress {
                    database: counter.database.clone(),
                    done,
                    total: counter.total.max(done),
                });
            }
            if !line.contains(": dumping contents") && !line.contains(": processing") {
                tail.push(line);
                if tail.len() > 12 {
                    tail.remove(0);
                }
            }
        }
    };
    tokio::select! {
        _ = reading => {}
        _ = cancel.cancelled() => {
            let _ = child.kill().await;
            return Err(BackupError::Cancelled);
        }
    }
    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| BackupError::Io { what: format!("waiting for {what}"), error: e.to_string() })?,
        _ = cancel.cancelled() => {
            let _ = child.kill().await;
            return Err(BackupError::Cancelled);
        }
    };
    if status.success() {
        return Ok(());
    }
    let errors: Vec<&String> = tail
        .iter()
        .filter(|l| l.contains("error") || l.contains("FATAL") || l.contains("ERROR"))
        .collect();
    let shown = if errors.is_empty() {
        tail.join(" | ")
    } else {
        errors
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    Err(BackupError::Failed {
        what: what.to_owned(),
        status: status.to_string(),
        stderr: shown,
    })
}

#[cfg(test)]
mod tests {
    use super::conninfo_dbname;

    #[test]
    fn a_database_name_reaches_pg_restore_as_one_quoted_dbname() {
        assert_eq!(conninfo_dbname("shop"), "dbname='shop'");
        assert_eq!(conninfo_dbname(r"a=b 'c'\d"), r"dbname='a=b \'c\'\\d'");
    }
}
