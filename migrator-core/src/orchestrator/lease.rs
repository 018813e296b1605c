//! One actor per mapping: a lease held in PostgreSQL.
//!
//! Before a process does anything for a mapping it takes a session-level advisory lock on one
//! dedicated, direct connection to the source instance's maintenance database, and it acts only
//! while that connection lives. The key is [`LOCK_CLASS`] and a hash of the mapping name. A
//! holder that is killed loses the lock with its connection at once (the kernel closes the
//! socket); one cut off from the network loses it when the server's side of the connection dies,
//! which TCP keepalives and `tcp_user_timeout` bound to about a minute. Another `run` waits,
//! showing who holds the mapping, and takes over by itself once the lock is free; a one-shot
//! command (`complete`, `resync`) takes the lock for its duration or refuses naming the holder.
//!
//! Session locks need a session: behind a transaction pooler (PgBouncer in transaction mode)
//! consecutive statements may run on different server connections, and a lock taken by one
//! protects nothing. [`Lease::acquire`] checks, in a separate statement, that the lock is held by
//! the backend it talks to, and refuses otherwise.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::ResolvedConnection;
use crate::pg::{self, PgError, Session};
use crate::status::LeaseHolder;

/// The advisory lock's first key: "pgmg" in ASCII, shared by every lease of the tool.
pub const LOCK_CLASS: i32 = 0x7067_6d67;

/// How often the lease connection is checked while held.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The advisory lock's second key for `mapping`.
pub fn lock_key(mapping: &str) -> i32 {
    let digest = Sha256::digest(mapping.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What trying to take a lease found.
pub enum Acquired {
    /// This process holds the lease now.
    Held(Lease),
    /// Another session holds it (`None` when it let go between the two looks).
    Busy(Option<LeaseHolder>),
}

/// A held lease. Its connection lives in a watcher task that checks it every second; dropping
/// the lease stops that task, which closes the connection and so releases the lock.
pub struct Lease {
    lost: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.watcher.abort();
        self.lost.cancel();
    }
}

impl Lease {
    /// Tries once to take the lease of `mapping` on the source instance `source` (its
    /// maintenance database). `application_name` tells other instances who holds it.
    pub async fn acquire(
        source: &ResolvedConnection,
        mapping: &str,
        application_name: &str,
    ) -> Result<Acquired, PgError> {
        let mut conn = source.clone();
        conn.pg.application_name(application_name);
        let client = pg::session(&conn, source.maintenance_db()).await?;
        let target = client.target().to_owned();
        // The server's side of this connection gets the same keepalives as ours, so that the
        // lock of a holder cut off from the network is released within the same bound.
        let seconds = |d: std::time::Duration| d.as_secs().max(1);
        let mut settings = vec![format!(
            "SET tcp_keepalives_idle = {}",
            seconds(conn.pg.get_keepalives_idle())
        )];
        if let Some(interval) = conn.pg.get_keepalives_interval() {
            settings.push(format!(
                "SET tcp_keepalives_interval = {}",
                seconds(interval)
            ));
        }
        if let Some(count) = conn.pg.get_keepalives_retries() {
            settings.push(format!("SET tcp_keepalives_count = {count}"));
        }
        if let Some(timeout) = conn.pg.get_tcp_user_timeout() {
            settings.push(format!("SET tcp_user_timeout = {}", timeout.as_millis()));
        }
        if conn.pg.get_keepalives() {
            client
                .batch_execute(&settings.join("; "))
                .await
                .map_err(|e| {
                    PgError::query(&target, "setting the lease connection's keepalives", e)
                })?;
        }
        let key = lock_key(mapping);
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_CLASS, &key])
            .await
            .map_err(|e| PgError::query(&target, "taking the mapping's lease", e))?
            .get(0);
        if !got {
            let holder = holder(&client, mapping).await?;
            return Ok(Acquired::Busy(holder));
        }
        // A separate statement: a transaction pooler would run it on another backend, which
        // does not hold the lock.
        let ours: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                   AND pid = pg_backend_pid() AND classid::int4 = $1 AND objid::int4 = $2 \
                   AND objsubid = 2)",
                &[&LOCK_CLASS, &key],
            )
            .await
            .map_err(|e| PgError::query(&target, "checking the mapping's lease", e))?
            .get(0);
        if !ours {
            return Err(PgError::Query {
                target,
                context: "taking the mapping's lease".into(),
                message: "the lock was taken on one server session and is not held by the next \
                          one: the connection goes through a transaction pooler (PgBouncer in \
                          transaction mode?), where a session lock protects nothing. Set the \
                          source's direct_url to the server's own address (url may stay the \
                          pooled one)"
                    .into(),
                transient: false,
            });
        }
        let lost = CancellationToken::new();
        let watcher = tokio::spawn(watch(client, lost.clone()));
        Ok(Acquired::Held(Lease { lost, watcher }))
    }

    /// Fires when the lease is lost (its connection dropped or stopped answering).
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
}

/// Checks the lease connection every second; cancels `lost` once it fails or stops answering.
async fn watch(client: Session, lost: CancellationToken) {
    loop {
        let alive = tokio::time::timeout(CHECK_EVERY * 10, client.simple_query("SELECT 1")).await;
        if !matches!(alive, Ok(Ok(_))) {
            tracing::warn!("the connection holding the mapping's lease was lost");
            lost.cancel();
            return;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Who holds the lease of `mapping`, seen from any session on the source instance.
pub async fn holder(client: &Session, mapping: &str) -> Result<Option<LeaseHolder>, PgError> {
    let row = client
        .query_opt(
            "SELECT coalesce(host(a.client_addr) || ':' || a.client_port, 'local'), \
               coalesce(nullif(a.application_name, ''), '(no application_name)'), \
               to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int4 = $1 \
               AND l.objid::int4 = $2 AND l.objsubid = 2",
            &[&LOCK_CLASS, &lock_key(mapping)],
        )
        .await
        .map_err(|e| {
            PgError::query(
                client.target(),
                "looking for the holder of the mapping's lease",
                e,
            )
        })?;
    Ok(row.map(|r| LeaseHolder {
        client: r.get(0),
        application_name: r.get(1),
        since: r.get(2),
    }))
}

/// The name a lease connection shows in `pg_stat_activity`: the tool, this host and process.
pub fn application_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown host".into());
    let name = format!("postgres-migrator on {host} pid {}", std::process::id());
    // application_name is cut at 63 bytes by the server; keep whole characters.
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_differ_between_mappings() {
        assert_eq!(lock_key("prod"), lock_key("prod"));
        assert_ne!(lock_key("prod"), lock_key("prod_eu"));
        assert_ne!(lock_key("a"), lock_key("b"));
    }

    #[test]
    fn the_application_name_fits_the_server_limit() {
        let name = application_name();
        assert!(
            name.starts_with("postgres-migrator on ") && name.len() <= 63,
            "{name}"
        );
        assert!(name.contains(&std::process::id().to_string()) || name.len() == 63);
    }
}
