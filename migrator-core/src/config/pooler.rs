//! Connection URLs from pooled environments.
//!
//! Platform teams hand the tool the URLs their applications use, which often go through a
//! transaction pooler (PgBouncer) and carry parameters meant for other clients
//! (`postgresql://app:pw@bouncer:6432/app?pgbouncer=true&connection_limit=5`). Three things follow:
//!
//! - Parameters of other clients (Prisma's `pgbouncer`, `schema`, `connection_limit`,
//!   `pool_timeout`, ...) are taken out of the url and named in a note, instead of failing the
//!   parse; `connect_timeout`, `application_name` and `sslmode` are honoured as everywhere.
//! - A transaction pooler cannot carry a replication connection, the exported snapshot the copy
//!   imports, or a session's settings. `direct_url` (beside `url`) is the server's own address:
//!   when it is set, every session of the tool uses it, and `url` stays the pooled address the
//!   applications use (named in the cutover instructions). `pgbouncer=true` in `url` without a
//!   `direct_url` is refused when the configuration loads; a pooler found later by its answer
//!   (PgBouncer refuses the startup parameters `options` and `replication`) gets the same
//!   advice in the connection error (`pg::refusal_hint`).
//! - A mapping may name its PgBouncer admin console (`pooler`): the cutover instructions then
//!   give the exact `PAUSE`/`RESUME` steps and the dashboard shows the pooler's client
//!   connections per database (`phases::pooler`).

use super::Problem;

/// URL parameters that other clients (ORMs, Prisma) read and PostgreSQL does not know: taken out
/// of the url with a note.
pub const OTHER_CLIENTS_PARAMETERS: &[&str] = &[
    "pgbouncer",
    "schema",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "statement_cache_size",
];

/// What a url's query said for other clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherClients {
    /// `name=value` of each parameter taken out, in the url's order.
    pub ignored: Vec<String>,
    /// `pgbouncer=true` (or `1`): the url says it goes through PgBouncer.
    pub says_pgbouncer: bool,
}

impl OtherClients {
    /// Takes one `name=value` of a url's query if it is meant for another client; returns false
    /// for any other name.
    pub fn take_url_parameter(&mut self, name: &str, value: &str) -> bool {
        if !OTHER_CLIENTS_PARAMETERS.contains(&name) {
            return false;
        }
        if name == "pgbouncer" && matches!(value.to_ascii_lowercase().as_str(), "true" | "1") {
            self.says_pgbouncer = true;
        }
        self.ignored.push(format!("{name}={value}"));
        true
    }

    /// The note for the parameters taken out, if any.
    pub fn note(&self, key: &str) -> Option<String> {
        (!self.ignored.is_empty()).then(|| {
            format!(
                "{key}: ignored the url parameter(s) {} (meant for other clients; PostgreSQL does not know them)",
                self.ignored.join(", ")
            )
        })
    }
}

/// The environment variable that sets `key`'s `field` (`mappings.prod.source` ->
/// `MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL`).
pub fn env_name(key: &str, field: &str) -> String {
    format!(
        "MIGRATOR__{}__{}",
        key.replace('.', "__").to_uppercase(),
        field.to_uppercase()
    )
}

/// The refusal of a `url` that says `pgbouncer=true` without a `direct_url` beside it.
pub fn needs_direct_url(key: &str) -> Problem {
    Problem::new(
        format!("{key}.url"),
        format!(
            "the url says pgbouncer=true: a transaction pooler cannot carry the replication connection, the copy's exported snapshot or a session's settings. Set {key}.direct_url (or {}) to the server's own address, e.g. postgresql://user@db-primary:5432/postgres; url may stay the pooled one",
            env_name(key, "direct_url")
        ),
    )
}

/// The refusal of a `direct_url` that says it is pooled itself.
pub fn direct_url_is_pooled(key: &str) -> Problem {
    Problem::new(
        format!("{key}.direct_url"),
        "says pgbouncer=true: direct_url must be the server's own address, not the pooler's",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_clients_parameters_are_taken_with_a_note_and_pgbouncer_is_a_hint() {
        let mut others = OtherClients::default();
        for (name, value, taken) in [
            ("pgbouncer", "true", true),
            ("schema", "app", true),
            ("connection_limit", "5", true),
            ("pool_timeout", "10", true),
            ("application_name", "x", false),
            ("connect_timeout", "15", false),
        ] {
            assert_eq!(others.take_url_parameter(name, value), taken, "{name}");
        }
        assert!(others.says_pgbouncer);
        let note = others.note("mappings.prod.source").unwrap();
        assert!(
            note.contains("pgbouncer=true, schema=app, connection_limit=5, pool_timeout=10"),
            "{note}"
        );
        let mut off = OtherClients::default();
        assert!(off.take_url_parameter("pgbouncer", "false"));
        assert!(!off.says_pgbouncer);
        assert_eq!(OtherClients::default().note("k"), None);
    }

    #[test]
    fn the_refusal_names_the_setting_and_its_environment_variable() {
        let text = needs_direct_url("mappings.prod.source").to_string();
        assert!(text.contains("mappings.prod.source.url"), "{text}");
        assert!(
            text.contains("MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL"),
            "{text}"
        );
    }
}
