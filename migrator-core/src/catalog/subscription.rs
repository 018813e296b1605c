//! A subscription of the connected destination database, as `pg_subscription` has it.

use crate::pg::{PgError, Session, q};

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `subenabled`.
    pub enabled: bool,
    /// `subslotname IS NOT NULL`: it is attached to a slot on the source.
    pub has_slot: bool,
    /// `COMMENT ON SUBSCRIPTION` (the tool marks one it has begun to complete).
    pub comment: Option<String>,
    /// `subbinary`.
    pub binary: bool,
    /// `substream`: `f` (off), `t` (on) or `p` (parallel).
    pub streaming: String,
}

/// Subscription `name` of the connected database, if it exists.
pub async fn read(client: &Session, name: &str) -> Result<Option<Subscription>, PgError> {
    Ok(client
        .query_opt(
            "SELECT subenabled, subslotname IS NOT NULL, obj_description(oid, 'pg_subscription'), \
               subbinary, substream::text \
             FROM pg_subscription WHERE subname = $1 \
               AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&name],
        )
        .await
        .map_err(q(client.target(), "reading the subscription"))?
        .map(|r| Subscription {
            enabled: r.get(0),
            has_slot: r.get(1),
            comment: r.get(2),
            binary: r.get(3),
            streaming: r.get(4),
        }))
}
