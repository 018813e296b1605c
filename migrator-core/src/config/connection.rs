//! How to reach one PostgreSQL instance: a `url`, or discrete libpq-style fields, plus the
//! optional role the destination's subscription uses to connect back to the source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::pooler::{self, OtherClients};
use super::tcp::{self, TcpLayer};
pub use super::tls::SslMode;
use super::tls::{ChannelBinding, Tls, TlsLayer};
use super::{Problem, redact};

/// Server settings every session of the tool starts with (the startup packet's `options`).
pub const SESSION_OPTIONS: &str = "-c jit=off";

/// How to reach one PostgreSQL instance. Either `url`, or `host` with the other discrete fields.
/// A `url` without a password may be completed by `password` or `password_file`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// `postgres://user:password@host:port/dbname?sslmode=...`. Default: unset.
    #[serde(default, serialize_with = "redact::url")]
    #[schemars(with = "Option<String>")]
    pub url: Option<SecretString>,
    /// The server's own address when `url` goes through a transaction pooler (PgBouncer):
    /// every session of the tool (checks, copy, replication, the subscription) uses it, and
    /// `url` stays the pooled address the applications use. Same form as `url`; what it does
    /// not say (password, sslmode and the other TLS and TCP parameters, application_name,
    /// connect_timeout) it takes from `url`. Default: unset.
    #[serde(default, serialize_with = "redact::url")]
    #[schemars(with = "Option<String>")]
    pub direct_url: Option<SecretString>,
    /// Host name or IP address. Default: unset.
    #[serde(default)]
    pub host: Option<String>,
    /// TCP port. Default `5432`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Role to log in as. Default `postgres`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password of `user`. Default: unset.
    #[serde(default, serialize_with = "redact::option")]
    #[schemars(with = "Option<String>")]
    pub password: Option<SecretString>,
    /// File holding the password (a mounted Kubernetes Secret); one trailing newline is ignored.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Maintenance database used to list the instance's databases. Default `postgres`.
    #[serde(default)]
    pub dbname: Option<String>,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`, as in libpq. Default
    /// `prefer`.
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// CA certificate file (PEM) the server's certificate is checked against, or `system` for
    /// the operating system's roots (only with `verify-full`). With `require`, giving it makes
    /// the check happen, as in libpq. Default: unset.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate file (PEM), for `cert` authentication. Default: unset.
    #[serde(default)]
    pub sslcert: Option<PathBuf>,
    /// Private key file (PEM) of `sslcert`. Default: unset.
    #[serde(default)]
    pub sslkey: Option<PathBuf>,
    /// `disable`, `prefer` or `require`: bind SCRAM authentication to the TLS channel, so that
    /// a man in the middle cannot log in even with a certificate the tool accepts. `require`
    /// refuses servers that do not use SCRAM over TLS. Default `prefer`.
    #[serde(default)]
    pub channel_binding: Option<ChannelBinding>,
    /// `sslmode` of the subscription's connection (the destination server connecting to the
    /// source; set on the source). Default: `sslmode`.
    #[serde(default)]
    pub subscription_sslmode: Option<SslMode>,
    /// `sslrootcert` of the subscription's connection: a path **on the destination server**
    /// (or `system`, PostgreSQL 16+). Default: unset (libpq's `~/.postgresql/root.crt` of the
    /// destination's server user).
    #[serde(default)]
    pub subscription_sslrootcert: Option<String>,
    /// `sslcert` of the subscription's connection: a path on the destination server. Default:
    /// unset.
    #[serde(default)]
    pub subscription_sslcert: Option<String>,
    /// `sslkey` of the subscription's connection: a path on the destination server. Default:
    /// unset.
    #[serde(default)]
    pub subscription_sslkey: Option<String>,
    /// Give up connecting after this long. Default `10s`.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Duration>,
    /// Shown in pg_stat_activity. Default `postgres-migrator`.
    #[serde(default)]
    pub application_name: Option<String>,
    /// Send TCP keepalive probes on idle connections, so that a server which vanished without
    /// closing them (host down, network cut) is noticed. Default `true`.
    #[serde(default)]
    pub keepalives: Option<bool>,
    /// Idle time before the first keepalive probe, whole seconds. Default `30s`.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub keepalives_idle: Option<Duration>,
    /// Time between unanswered keepalive probes, whole seconds. Default `10s`.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub keepalives_interval: Option<Duration>,
    /// Unanswered keepalive probes after which the connection is dropped, 1 to 127. Default `3`
    /// (an idle connection to a dead server is given up after 30 s + 3 × 10 s = 60 s).
    #[serde(default)]
    pub keepalives_count: Option<u32>,
    /// Drop the connection when data sent to the server stays unacknowledged this long (Linux
    /// `TCP_USER_TIMEOUT`); `0s` = the system's default (about 15 minutes). Default `60s`.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub tcp_user_timeout: Option<Duration>,
    /// Role the destination's subscription logs in to the source as (its connection string is
    /// stored in the destination's catalog, so use a dedicated replication role). Default: `user`.
    #[serde(default)]
    pub replication_user: Option<String>,
    /// Password of `replication_user`. Default: the connection's password when
    /// `replication_user` is `user`; required when it is another role and the connection has
    /// a password (the admin's password is never handed to another role).
    #[serde(default, serialize_with = "redact::option")]
    #[schemars(with = "Option<String>")]
    pub replication_password: Option<SecretString>,
    /// File holding `replication_password`. Default: unset.
    #[serde(default)]
    pub replication_password_file: Option<PathBuf>,
}

/// A connection whose files have been read and whose form has been checked: ready to connect.
#[derive(Clone)]
pub struct ResolvedConnection {
    /// Everything tokio-postgres needs, for the maintenance database.
    pub pg: tokio_postgres::Config,
    /// `sslmode` as configured (tokio-postgres knows only disable/prefer/require).
    pub sslmode: SslMode,
    /// The TLS every connection to this instance uses.
    pub tls: Tls,
    /// The ssl keywords of the subscription's connection string (destination -> source):
    /// `sslmode` and, when configured, `sslrootcert`/`sslcert`/`sslkey` naming files on the
    /// destination server.
    pub subscription_ssl: Vec<(&'static str, String)>,
    /// Role and password for the subscription's connection back to the source.
    pub replication_user: String,
    pub replication_password: Option<SecretString>,
    /// libpq's environment variables for the TLS files configured (`PGSSLROOTCERT`,
    /// `PGSSLCERT`, `PGSSLKEY`), for the client programs the tool runs (pg_dump, pg_restore).
    pub client_ssl_files: Vec<(&'static str, String)>,
    /// `user@host:port/dbname` of `url` when `direct_url` carries the tool's sessions: the
    /// pooled address the applications use.
    pub pooled: Option<String>,
    /// What the settings' reader noticed and left alone (url parameters meant for other
    /// clients), said at start and by `check`.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for ResolvedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedConnection")
            .field("target", &self.describe())
            .field("sslmode", &self.sslmode)
            .field("replication_user", &self.replication_user)
            .finish_non_exhaustive()
    }
}

impl ResolvedConnection {
    /// `user@host:port/dbname`, for messages; never holds a secret.
    pub fn describe(&self) -> String {
        describe(&self.pg)
    }

    /// The database named in the settings (`postgres` when none is): where instance-level
    /// queries run.
    pub fn maintenance_db(&self) -> &str {
        self.pg.get_dbname().unwrap_or("postgres")
    }

    /// `user@host:port/dbname` of database `dbname` of this instance, for messages.
    pub fn target(&self, dbname: &str) -> String {
        describe(&self.for_database(dbname))
    }

    /// Every `host:port` this connection may reach, written so that two spellings of one
    /// address compare equal: host names in lower case without a trailing dot, IP addresses in
    /// their canonical form. Names are not resolved (`localhost` and `127.0.0.1` differ).
    pub fn endpoints(&self) -> Vec<String> {
        let hosts = self.pg.get_hosts();
        let ports = self.pg.get_ports();
        hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                let host = match host {
                    tokio_postgres::config::Host::Tcp(name) => {
                        let bare = name.trim_start_matches('[').trim_end_matches(']');
                        match bare.parse::<std::net::IpAddr>() {
                            Ok(ip) if ip.is_ipv6() => format!("[{ip}]"),
                            Ok(ip) => ip.to_string(),
                            Err(_) => name.trim_end_matches('.').to_lowercase(),
                        }
                    }
                    tokio_postgres::config::Host::Unix(dir) => dir.display().to_string(),
                };
                format!("{host}:{port}")
            })
            .collect()
    }

    /// A copy of the connection settings aimed at another database of the same instance.
    pub fn for_database(&self, dbname: &str) -> tokio_postgres::Config {
        let mut pg = self.pg.clone();
        pg.dbname(dbname);
        pg
    }
}

/// What a connection is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A PostgreSQL server: the tool's sessions.
    Server,
    /// A PgBouncer admin console.
    PoolerConsole,
}

/// What `url`/`direct_url` or `host` gave, before the fields are laid over it.
#[derive(Default)]
struct Base {
    pg: tokio_postgres::Config,
    tcp: TcpLayer,
    tls: TlsLayer,
    pooled: Option<String>,
    notes: Vec<String>,
}

/// `user@host:port/dbname` of a tokio-postgres config; never holds a secret.
pub fn describe(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{}/{}",
        pg.get_user().unwrap_or("postgres"),
        host,
        port,
        pg.get_dbname().unwrap_or("postgres")
    )
}

impl ConnectionSettings {
    /// Checks the form, reads password files and builds the tokio-postgres settings. Every
    /// problem is reported under `key` (e.g. `mappings.prod.source`).
    pub fn resolve(&self, key: &str) -> Result<ResolvedConnection, Vec<Problem>> {
        self.resolve_for(key, Purpose::Server)
    }

    /// [`resolve`](Self::resolve) for a PgBouncer admin console (`pooler`): its database is
    /// `pgbouncer` unless named, and no startup `options` are sent (PgBouncer refuses them).
    pub fn resolve_console(&self, key: &str) -> Result<ResolvedConnection, Vec<Problem>> {
        self.resolve_for(key, Purpose::PoolerConsole)
    }

    fn resolve_for(&self, key: &str, purpose: Purpose) -> Result<ResolvedConnection, Vec<Problem>> {
        let mut problems = Vec::new();
        let Base {
            mut pg,
            tcp: url_tcp,
            tls: url_tls,
            pooled,
            notes,
        } = self.base(key, purpose, &mut problems);
        if purpose == Purpose::PoolerConsole && pg.get_dbname().is_none() && self.dbname.is_none() {
            pg.dbname("pgbouncer");
        }
        self.fill_defaults(&mut pg, purpose);
        self.check_port(&pg, key, &mut problems);
        self.tcp_layer()
            .or(url_tcp)
            .apply(&mut pg, key, &mut problems);
        self.set_password(&mut pg, key, &mut problems);
        let replication_password = secret_from(
            &self.replication_password,
            &self.replication_password_file,
            &format!("{key}.replication_password"),
            &mut problems,
        );
        let client_ssl_files = [
            (
                "PGSSLROOTCERT",
                self.sslrootcert.as_ref().or(url_tls.sslrootcert.as_ref()),
            ),
            (
                "PGSSLCERT",
                self.sslcert.as_ref().or(url_tls.sslcert.as_ref()),
            ),
            ("PGSSLKEY", self.sslkey.as_ref().or(url_tls.sslkey.as_ref())),
        ]
        .into_iter()
        .filter_map(|(name, path)| path.map(|p| (name, p.display().to_string())))
        .collect();
        let tls = self.set_tls(&mut pg, url_tls, key, &mut problems);
        let sslmode = tls.as_ref().map_or(SslMode::Prefer, |t| t.mode);
        let subscription_ssl = self.subscription_ssl(sslmode, tls.as_ref());
        let password = own_password(&pg, key, &mut problems);
        let (replication_user, replication_password) =
            self.replication_login(&pg, password, replication_password, key, &mut problems);

        let Some(tls) = tls.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        Ok(ResolvedConnection {
            pg,
            sslmode,
            tls,
            subscription_ssl,
            replication_user,
            replication_password,
            client_ssl_files,
            pooled,
            notes,
        })
    }

    /// The settings `url` (or `direct_url` beside it) or `host` gives (exactly one of `url` and
    /// `host` must be set), with the TCP and TLS settings taken out of the url's query.
    fn base(&self, key: &str, purpose: Purpose, problems: &mut Vec<Problem>) -> Base {
        let mut pg = tokio_postgres::Config::new();
        match (&self.url, &self.host) {
            (Some(_), Some(_)) => problems.push(Problem::new(
                key,
                "set either url or host, not both (remove one of them)",
            )),
            (None, None) => problems.push(Problem::new(
                key,
                "set either url or host (for example url = \"postgres://user@db.example:5432/postgres\")",
            )),
            (Some(url), None) => return self.url_base(url, key, purpose, problems),
            (None, Some(host)) => {
                if host.trim().is_empty() {
                    problems.push(Problem::new(format!("{key}.host"), "must not be empty"));
                }
                pg.host(host);
            }
        }
        if self.direct_url.is_some() {
            problems.push(Problem::new(
                format!("{key}.direct_url"),
                "goes with url (the pooled address the applications use); with host, give the server's own address as host and drop direct_url",
            ));
        }
        Base {
            pg,
            ..Base::default()
        }
    }

    /// The settings of `url`, or of `direct_url` when it is set (then `url` is the pooled
    /// address: described, its password lent to a `direct_url` without one).
    fn url_base(
        &self,
        url: &SecretString,
        key: &str,
        purpose: Purpose,
        problems: &mut Vec<Problem>,
    ) -> Base {
        let (pg, tcp, tls, others) = self.url_settings(url, key, "url", problems);
        let mut notes: Vec<String> = others.note(&format!("{key}.url")).into_iter().collect();
        let Some(direct) = &self.direct_url else {
            if others.says_pgbouncer && purpose == Purpose::Server {
                problems.push(pooler::needs_direct_url(key));
            }
            return Base {
                pg,
                tcp,
                tls,
                pooled: None,
                notes,
            };
        };
        let (mut direct_pg, direct_tcp, direct_tls, direct_others) =
            self.url_settings(direct, key, "direct_url", problems);
        // What direct_url does not say, url does: its TLS and TCP settings, application name
        // and connect timeout (and its password, below).
        let (tcp, tls) = (direct_tcp.or(tcp), direct_tls.or(tls));
        if let (None, Some(name)) = (direct_pg.get_application_name(), pg.get_application_name()) {
            let name = name.to_owned();
            direct_pg.application_name(name);
        }
        if let (None, Some(timeout)) = (direct_pg.get_connect_timeout(), pg.get_connect_timeout()) {
            let timeout = *timeout;
            direct_pg.connect_timeout(timeout);
        }
        if direct_others.says_pgbouncer {
            problems.push(pooler::direct_url_is_pooled(key));
        }
        notes.extend(direct_others.note(&format!("{key}.direct_url")));
        let own_password = self.password.is_some() || self.password_file.is_some();
        if let (None, Some(password), false) =
            (direct_pg.get_password(), pg.get_password(), own_password)
        {
            let password = password.to_vec();
            direct_pg.password(password);
        }
        let mut pooled = pg.clone();
        if pooled.get_ports().is_empty() {
            pooled.port(5432);
        }
        Base {
            pg: direct_pg,
            tcp,
            tls,
            pooled: Some(describe(&pooled)),
            notes,
        }
    }

    /// The settings of `url`: its TCP and TLS parameters split off, the rest parsed by
    /// tokio-postgres. The fields that only go with `host` are refused beside it.
    fn url_settings(
        &self,
        url: &SecretString,
        key: &str,
        url_field: &str,
        problems: &mut Vec<Problem>,
    ) -> (tokio_postgres::Config, TcpLayer, TlsLayer, OtherClients) {
        for (field, set) in [
            ("port", self.port.is_some()),
            ("user", self.user.is_some()),
            ("dbname", self.dbname.is_some()),
        ] {
            if set && url_field == "url" {
                problems.push(Problem::new(
                    format!("{key}.{field}"),
                    format!("{field} cannot be combined with url: put it into the url, or use host instead of url"),
                ));
            }
        }
        let mut url_tls = TlsLayer::default();
        let mut others = OtherClients::default();
        let (rest, mut url_tcp) = tcp::split_url(
            url.expose_secret(),
            &format!("{key}.{url_field}"),
            &mut url_tls,
            &mut others,
            problems,
        );
        let pg = match SecretString::from(rest)
            .expose_secret()
            .parse::<tokio_postgres::Config>()
        {
            Ok(pg) => {
                url_tcp = url_tcp.or(TcpLayer::parsed_by(&pg));
                pg
            }
            Err(e) => {
                problems.push(Problem::new(
                    format!("{key}.{url_field}"),
                    format!("not a valid PostgreSQL connection URL ({e}); expected postgres://user:password@host:port/dbname"),
                ));
                tokio_postgres::Config::new()
            }
        };
        (pg, url_tcp, url_tls, others)
    }

    /// Port, user, database, application name and connect timeout: a field wins over the url,
    /// and what neither says gets its default.
    fn fill_defaults(&self, pg: &mut tokio_postgres::Config, purpose: Purpose) {
        if self.url.is_none() || self.port.is_some() {
            pg.port(self.port.unwrap_or(5432));
        }
        if pg.get_user().is_none() || self.user.is_some() {
            pg.user(self.user.as_deref().unwrap_or("postgres"));
        }
        if pg.get_dbname().is_none() || self.dbname.is_some() {
            pg.dbname(self.dbname.as_deref().unwrap_or("postgres"));
        }
        if pg.get_application_name().is_none() || self.application_name.is_some() {
            pg.application_name(
                self.application_name
                    .as_deref()
                    .unwrap_or("postgres-migrator"),
            );
        }
        if pg.get_connect_timeout().is_none() || self.connect_timeout.is_some() {
            pg.connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)));
        }
        // The tool's statements are catalog reads, COPY and DDL: JIT compilation never pays
        // off for them, and the planner's estimates for catalog functions (the partition tree
        // under pg_publication_tables) crossed jit_above_cost, so that listing 8 tables
        // compiled for half a second. A URL's own `options` are kept (ours come last).
        if purpose == Purpose::PoolerConsole {
            return;
        }
        let options = match pg.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{own} {SESSION_OPTIONS}"),
            _ => SESSION_OPTIONS.to_owned(),
        };
        pg.options(&options);
    }

    /// Refuses port 0, under the field (`port` or `url`) that gave it.
    fn check_port(&self, pg: &tokio_postgres::Config, key: &str, problems: &mut Vec<Problem>) {
        if pg.get_ports().contains(&0) {
            let field = if self.url.is_some() && self.port.is_none() {
                "url"
            } else {
                "port"
            };
            problems.push(Problem::new(
                format!("{key}.{field}"),
                "port 0 is not a port a server listens on: set the server's port (PostgreSQL's default is 5432)",
            ));
        }
    }

    /// The TCP settings the fields give.
    fn tcp_layer(&self) -> TcpLayer {
        TcpLayer {
            keepalives: self.keepalives,
            keepalives_idle: self.keepalives_idle,
            keepalives_interval: self.keepalives_interval,
            keepalives_count: self.keepalives_count,
            tcp_user_timeout: self.tcp_user_timeout,
        }
    }

    /// Sets the password of `password` or `password_file` on `pg`; refused when the url holds
    /// one already.
    fn set_password(
        &self,
        pg: &mut tokio_postgres::Config,
        key: &str,
        problems: &mut Vec<Problem>,
    ) {
        let configured = secret_from(
            &self.password,
            &self.password_file,
            &format!("{key}.password"),
            problems,
        );
        if let Some(password) = &configured {
            if pg.get_password().is_some() {
                problems.push(Problem::new(
                    format!("{key}.password"),
                    "the url already holds a password: remove it from the url or drop password/password_file",
                ));
            }
            pg.password(password.expose_secret());
        }
    }

    /// Resolves the TLS of the fields over that of the url, and sets its mode and channel
    /// binding on `pg`.
    fn set_tls(
        &self,
        pg: &mut tokio_postgres::Config,
        url_tls: TlsLayer,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Tls> {
        let tls = TlsLayer {
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
            sslcert: self.sslcert.clone(),
            sslkey: self.sslkey.clone(),
            channel_binding: self.channel_binding,
        }
        .or(url_tls)
        .resolve(key, problems);
        if let Some(tls) = &tls {
            pg.ssl_mode(tls.tokio_postgres_mode());
            pg.channel_binding(tls.tokio_postgres_channel_binding());
        }
        tls
    }

    /// The ssl keywords of the subscription's connection string: its `sslmode` (the
    /// connection's `sslmode` unless set), the files configured for it, and `channel_binding`
    /// when it is not libpq's default.
    fn subscription_ssl(&self, sslmode: SslMode, tls: Option<&Tls>) -> Vec<(&'static str, String)> {
        let mut subscription_ssl = vec![(
            "sslmode",
            self.subscription_sslmode
                .unwrap_or(sslmode)
                .as_str()
                .to_owned(),
        )];
        for (name, value) in [
            ("sslrootcert", &self.subscription_sslrootcert),
            ("sslcert", &self.subscription_sslcert),
            ("sslkey", &self.subscription_sslkey),
        ] {
            if let Some(value) = value {
                subscription_ssl.push((name, value.clone()));
            }
        }
        if let Some(tls) = tls
            && tls.channel_binding != ChannelBinding::Prefer
        {
            subscription_ssl.push(("channel_binding", tls.channel_binding.as_str().to_owned()));
        }
        subscription_ssl
    }

    /// The role and password of the subscription's connection: `replication_user` (default
    /// `user`) with its own password, or with the connection's `password` only when it is
    /// `user` itself.
    fn replication_login(
        &self,
        pg: &tokio_postgres::Config,
        password: Option<SecretString>,
        replication_password: Option<SecretString>,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> (String, Option<SecretString>) {
        let user = pg.get_user().unwrap_or("postgres").to_owned();
        let replication_user = self
            .replication_user
            .clone()
            .unwrap_or_else(|| user.clone());
        let replication_password = match replication_password {
            Some(own) => Some(own),
            None if replication_user == user => password,
            // Another role, and the connection has a password: never hand it over.
            None if password.is_some() => {
                problems.push(Problem::new(
                    format!("{key}.replication_user"),
                    format!(
                        "replication_user {replication_user:?} is not user {user:?} and has no password of its own: set replication_password or replication_password_file (the password of {user:?} is not given to another role)"
                    ),
                ));
                None
            }
            None => None,
        };
        (replication_user, replication_password)
    }
}

/// The connection's own password, from password/password_file or from inside the url.
fn own_password(
    pg: &tokio_postgres::Config,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<SecretString> {
    match pg.get_password().map(std::str::from_utf8) {
        None => None,
        Some(Ok(text)) => Some(SecretString::from(text.to_owned())),
        Some(Err(_)) => {
            problems.push(Problem::new(
                format!("{key}.url"),
                "the url's password is not valid UTF-8 once percent-decoded: fix its encoding, or use password_file",
            ));
            None
        }
    }
}

/// A secret given inline or through a file, but not both.
fn secret_from(
    inline: &Option<SecretString>,
    file: &Option<PathBuf>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<SecretString> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                key,
                format!("set either {key} or {key}_file, not both"),
            ));
            None
        }
        (Some(secret), None) => Some(secret.clone()),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(secret) => Some(secret),
            Err(reason) => {
                problems.push(Problem::new(format!("{key}_file"), reason));
                None
            }
        },
        (None, None) => None,
    }
}

/// Reads a secret from a file, dropping one trailing newline (as `echo` writes).
pub(crate) fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let mut text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; mount the secret there or fix the path",
            path.display()
        )
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretString::from(text))
}
