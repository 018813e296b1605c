//! Connections to PostgreSQL: the one `connect` function every part of the tool uses, and pools.
//!
//! Every connection is opened from the instance's resolved `tokio_postgres::Config`, which
//! carries the TCP keepalives and `TCP_USER_TIMEOUT` of the configuration (see
//! [`crate::config::tcp`]), so a server that vanishes is noticed within a minute by default.
//!
//! A client's connection runs on a task of its own. When the client is dropped, that task reads
//! what the server still sends, says Terminate and closes the socket; a process that ends before
//! the tasks have done so closes sockets with unread replies in them, which the server logs as
//! "could not receive data from client: Connection reset by peer". So the tasks are tracked, and
//! a command that is about to end waits for them ([`wait_until_closed`]).
//!
//! Errors say which server (`user@host:port/db`, never a password) and whether trying again can
//! help ([`PgError::is_transient`]): a server that is restarting or unreachable is transient, a
//! refused password is not.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, error::SqlState};
use tokio_util::task::TaskTracker;

/// The connection task of every client [`connect`] handed out, until it ends.
static CONNECTIONS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

use crate::config::{ResolvedConnection, connection_target};

/// Failure to reach or use a PostgreSQL server.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {target}: {message}{hint}")]
    Connect {
        target: String,
        message: String,
        hint: &'static str,
        transient: bool,
    },
    /// A statement failed.
    #[error("{context} on {target}: {message}")]
    Query {
        target: String,
        context: String,
        message: String,
        transient: bool,
    },
    /// A pool could not be built.
    #[error("cannot build a connection pool for {target}: {message}")]
    Pool { target: String, message: String },
}

impl PgError {
    /// Whether trying again later may succeed (the server is restarting, unreachable, ...).
    pub fn is_transient(&self) -> bool {
        match self {
            PgError::Connect { transient, .. } | PgError::Query { transient, .. } => *transient,
            PgError::Pool { .. } => false,
        }
    }

    /// Wraps a failed statement with what was being done.
    pub fn query(target: &str, context: impl Into<String>, error: tokio_postgres::Error) -> Self {
        PgError::Query {
            target: target.to_owned(),
            context: context.into(),
            message: error_text(&error),
            transient: is_transient(&error),
        }
    }
}

/// Opens a connection to database `dbname` of the instance described by `conn` and drives it on
/// a background task.
pub async fn connect(conn: &ResolvedConnection, dbname: &str) -> Result<Client, PgError> {
    let pg = conn.for_database(dbname);
    let target = connection_target(&pg);
    let (client, connection) = pg
        .connect(conn.tls.connector())
        .await
        .map_err(|e| connect_error(&target, &e))?;
    CONNECTIONS.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%target, error = %error_text(&e), "connection closed with an error");
        }
    });
    Ok(client)
}

/// A connected client and what it is connected to: the target every error of its statements
/// names. Derefs to the client.
pub struct Session {
    client: Client,
    target: String,
}

impl Session {
    /// `client`, connected to `target` (`user@host:port/dbname`).
    pub fn new(client: Client, target: String) -> Self {
        Session { client, target }
    }

    /// `user@host:port/dbname`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl std::ops::Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// [`connect`], as a [`Session`].
pub async fn session(conn: &ResolvedConnection, dbname: &str) -> Result<Session, PgError> {
    Ok(Session::new(
        connect(conn, dbname).await?,
        conn.target(dbname),
    ))
}

/// Waits, at most `timeout`, until the connection of every client [`connect`] handed out has
/// ended; each ends once its client is dropped (after saying Terminate to its server), or when
/// its server goes away. Call it after dropping every client, before the process exits. Returns
/// how many connections were still open at the deadline (clients still held somewhere).
pub async fn wait_until_closed(timeout: Duration) -> usize {
    CONNECTIONS.close();
    let _ = tokio::time::timeout(timeout, CONNECTIONS.wait()).await;
    CONNECTIONS.reopen();
    CONNECTIONS.len()
}

/// A pool of at most `max_size` connections to database `dbname` of `conn`'s instance. Its
/// connections have the same TCP settings as [`connect`]'s; deadpool ends a connection's task
/// when it drops the client, so they are not waited for by [`wait_until_closed`].
pub fn pool(conn: &ResolvedConnection, dbname: &str, max_size: usize) -> Result<Pool, PgError> {
    let pg = conn.for_database(dbname);
    let target = connection_target(&pg);
    let manager = Manager::from_config(
        pg,
        conn.tls.connector(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| PgError::Pool {
            target,
            message: e.to_string(),
        })
}

fn connect_error(target: &str, error: &tokio_postgres::Error) -> PgError {
    let hint = match error.as_db_error() {
        Some(db) => refusal_hint(db.code().code(), db.message(), Login::Sql).unwrap_or(""),
        None => tls_hint(error as &(dyn std::error::Error + 'static))
            .unwrap_or(" (is the server running, and are host and port right?)"),
    };
    PgError::Connect {
        target: target.to_owned(),
        message: error_text(error),
        hint,
        transient: is_transient(error),
    }
}

/// What to do when the address is a connection pooler.
pub(crate) const POOLER_HINT: &str = " (this address is a connection pooler such as PgBouncer, which cannot carry the tool's sessions, the replication connection or the copy's exported snapshot: set direct_url to the server's own address; url may stay the pooled one the applications use)";

/// Which kind of session a refused login was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    /// An ordinary SQL session.
    Sql,
    /// The replication client's, whose user also needs the REPLICATION attribute.
    Replication,
}

/// Which setting to change when the server refused a login with SQLSTATE `code` and `message`;
/// `None` when there is nothing to add.
pub(crate) fn refusal_hint(code: &str, message: &str, login: Login) -> Option<&'static str> {
    if message.contains("unsupported startup parameter") {
        // PgBouncer's answer to `options` (every session of the tool sends `-c jit=off`) and to
        // a replication connection.
        Some(POOLER_HINT)
    } else if message.contains("no encryption") {
        Some(" (pg_hba.conf allows this user only over TLS: set sslmode = \"require\" or stronger)")
    } else if message.contains("certificate") {
        Some(
            " (the server wants a client certificate: set sslcert and sslkey to a certificate signed by a CA in the server's ssl_ca_file, whose common name is the user name)",
        )
    } else if code == SqlState::INVALID_PASSWORD.code()
        || code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code()
    {
        Some(match login {
            Login::Sql => {
                " (check user and password or password_file; pg_hba.conf must allow this host)"
            }
            Login::Replication => {
                " (the tool's source user needs the REPLICATION attribute, a right password, and pg_hba.conf must allow it)"
            }
        })
    } else if code == SqlState::INVALID_CATALOG_NAME.code() {
        Some(" (check dbname)")
    } else {
        None
    }
}

/// What went wrong in the TLS handshake, in words that name the setting to change; `None` when
/// the failure was not TLS.
pub(crate) fn tls_hint(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError, Error as TlsError};
    let mut source = Some(error);
    while let Some(s) = source {
        if s.to_string().contains("server does not support TLS") {
            return Some(
                " (the server does not offer TLS: turn ssl on at the server, or set sslmode = \"prefer\" or \"disable\" if plaintext is acceptable on this network)",
            );
        }
        // An io::Error hides the rustls error it carries from source().
        let carried = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TlsError>());
        if let Some(tls) = carried.or_else(|| s.downcast_ref::<TlsError>()) {
            return Some(match tls {
                TlsError::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => {
                    " (the server's certificate is not signed by a CA in sslrootcert: set sslrootcert to the CA that signed it - your provider publishes it)"
                }
                TlsError::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => {
                    " (the server's certificate was not issued for the host connected to: connect by a name the certificate lists, or use sslmode = \"verify-ca\" to check the CA only)"
                }
                TlsError::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => " (the server's certificate has expired: renew it on the server)",
                TlsError::AlertReceived(
                    AlertDescription::CertificateRequired
                    | AlertDescription::BadCertificate
                    | AlertDescription::UnknownCA
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::AccessDenied,
                ) => {
                    " (the server refused the client certificate: set sslcert and sslkey to a certificate signed by a CA in the server's ssl_ca_file)"
                }
                _ => " (the TLS handshake failed: check sslmode, sslrootcert, sslcert and sslkey)",
            });
        }
        source = s.source();
    }
    None
}

/// Maps a failed statement to a [`PgError`] naming the target and what was being done.
pub fn q<'a>(
    target: &'a str,
    context: &'static str,
) -> impl Fn(tokio_postgres::Error) -> PgError + 'a {
    move |e| PgError::query(target, context, e)
}

/// The server's message (with detail and hint) or the client error, on one line.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!(" Hint: {hint}"));
            }
            text
        }
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// Whether an error may go away by itself: the connection broke, the server is starting or
/// shutting down, or too many clients are connected.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        // No SQLSTATE: the connection broke or could not be opened.
        None => {
            error.is_closed()
                || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
        }
        Some(code) => {
            let class = &code.code()[..2];
            class == "08" // connection exception
                // Of the insufficient resources, only "too many connections" passes by itself:
                // a full disk (53100) or exhausted memory does not.
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || class == "57" // operator intervention (admin shutdown, starting up)
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
    }
}
