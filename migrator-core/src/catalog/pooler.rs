//! What a PgBouncer admin console says about the databases it pools (`SHOW DATABASES`,
//! `SHOW POOLS`): the aliases clients connect to, the server database behind each, whether it
//! is paused, and how many client connections it holds. The console speaks the simple query
//! protocol only, and answers in text.

use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

use crate::pg::{PgError, Session};

/// One database entry of the pooler.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolerDatabase {
    /// The name clients connect to (what `PAUSE` and `RESUME` take).
    pub alias: String,
    /// The server's database behind it.
    pub database: String,
    /// `host:port` of the server (empty for the console itself).
    pub server: String,
    /// `PAUSE` is in force.
    pub paused: bool,
    /// Client connections, active and waiting, over every user.
    pub clients: u64,
}

/// The pooler's databases (its own console left out), with their client connections.
pub async fn read(console: &Session) -> Result<Vec<PoolerDatabase>, PgError> {
    let databases = rows(console, "SHOW DATABASES").await?;
    let pools = rows(console, "SHOW POOLS").await?;
    let mut found: Vec<PoolerDatabase> = databases
        .iter()
        .filter_map(|row| {
            let alias = text(row, "name");
            let database = text(row, "database");
            (alias != "pgbouncer" && !alias.is_empty()).then(|| PoolerDatabase {
                server: match text(row, "host").as_str() {
                    "" => String::new(),
                    host => format!("{host}:{}", text(row, "port")),
                },
                paused: number(row, "paused") > 0,
                clients: 0,
                database: if database.is_empty() {
                    alias.clone()
                } else {
                    database
                },
                alias,
            })
        })
        .collect();
    for pool in &pools {
        let alias = text(pool, "database");
        if let Some(entry) = found.iter_mut().find(|d| d.alias == alias) {
            entry.clients += number(pool, "cl_active") + number(pool, "cl_waiting");
        }
    }
    Ok(found)
}

/// The entries that pool database `db` of the server.
pub fn aliases_of<'a>(entries: &'a [PoolerDatabase], db: &str) -> Vec<&'a PoolerDatabase> {
    entries.iter().filter(|e| e.database == db).collect()
}

async fn rows(console: &Session, command: &str) -> Result<Vec<SimpleQueryRow>, PgError> {
    let messages = console.simple_query(command).await.map_err(|e| {
        PgError::query(
            console.target(),
            format!("asking the pooler's console {command}"),
            e,
        )
    })?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .collect())
}

fn text(row: &SimpleQueryRow, column: &str) -> String {
    row.try_get(column)
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_owned()
}

fn number(row: &SimpleQueryRow, column: &str) -> u64 {
    text(row, column).parse().unwrap_or(0)
}
