//! Statements on a source database that more than one phase runs: dropping a replication slot
//! once its reader has let go of it (mark complete, after disabling the subscription; purge,
//! after dropping it).

use std::time::Duration;

use crate::pg::{PgError, Session, q};

/// How long a slot may stay in use after its subscription was disabled or dropped.
pub const SLOT_RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Drops slot `slot` once no WAL sender holds it, waiting up to [`SLOT_RELEASE_TIMEOUT`].
/// Returns whether this call dropped it (`false`: there was none, or a concurrent run dropped
/// it first).
pub async fn drop_slot(src: &Session, slot: &str) -> Result<bool, PgError> {
    let deadline = tokio::time::Instant::now() + SLOT_RELEASE_TIMEOUT;
    loop {
        let active: Option<bool> = src
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(q(src.target(), "looking for the replication slot"))?
            .map(|r| r.get(0));
        match active {
            None => return Ok(false),
            Some(false) => match src
                .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                .await
            {
                Ok(_) => return Ok(true),
                // 42704: dropped meanwhile by a concurrent run; 55006: taken again, wait.
                Err(e) if e.code().is_some_and(|c| c.code() == "42704") => return Ok(false),
                Err(e) if e.code().is_some_and(|c| c.code() == "55006") => {}
                Err(e) => {
                    return Err(PgError::query(
                        src.target(),
                        "dropping the replication slot",
                        e,
                    ));
                }
            },
            Some(true) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PgError::Query {
                target: src.target().to_owned(),
                context: format!("dropping the replication slot {slot}"),
                message: format!(
                    "the slot is still in use a minute after its subscription let go of it; find \
                     who reads it on the source (SELECT active_pid FROM pg_replication_slots WHERE \
                     slot_name = '{slot}'), then try again"
                ),
                transient: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
