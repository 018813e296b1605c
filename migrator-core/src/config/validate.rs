//! Semantic checks of typed [`Settings`]: everything serde cannot know. Every problem is
//! collected; none stops the others from being found.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::{
    MappingSettings, MigrationSettings, Problem, ServerSettings, Settings,
    connection::read_secret_file,
};

/// Longest mapping name: object names built from it must stay within PostgreSQL's 63 bytes.
pub const MAX_MAPPING_NAME_LEN: usize = 32;

/// Every semantic problem in `settings`.
pub fn validate(settings: &Settings) -> Vec<Problem> {
    let mut problems = server_problems(&settings.server);
    problems.extend(migration_problems(&settings.migration));
    // Destination endpoint -> the mappings that migrate onto it.
    let mut destinations: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, mapping) in &settings.mappings {
        problems.extend(mapping_problems(name, mapping, &mut destinations));
    }
    problems.extend(shared_destinations(&destinations));
    problems
}

/// The problems of `[server]`: its address, admin token, refresh interval and rate limit.
fn server_problems(server: &ServerSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    if server.listen.parse::<SocketAddr>().is_err() {
        problems.push(Problem::new(
            "server.listen",
            format!(
                "`{}` is not an address and port; write e.g. 0.0.0.0:8080",
                server.listen
            ),
        ));
    }
    problems.extend(admin_token_problem(server));
    if server.refresh_interval < Duration::from_secs(1) {
        problems.push(Problem::new(
            "server.refresh_interval",
            "must be at least one second, e.g. \"5s\"",
        ));
    }
    if server.rate_limit_burst == 0 {
        problems.push(Problem::new(
            "server.rate_limit_burst",
            "must be at least 1, e.g. 20",
        ));
    }
    if server.rate_limit_refill.is_zero() {
        problems.push(Problem::new(
            "server.rate_limit_refill",
            "must be longer than zero, e.g. \"200ms\"",
        ));
    }
    problems
}

/// The problems of `[migration]`: its poll interval, verification sizes and fallback password.
fn migration_problems(m: &MigrationSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    if m.poll_interval.is_zero() {
        problems.push(Problem::new(
            "migration.poll_interval",
            "must be longer than zero, e.g. \"5s\"",
        ));
    }
    if m.verify_parallel == 0 {
        problems.push(Problem::new(
            "migration.verify_parallel",
            "must be at least 1, e.g. 2",
        ));
    }
    if m.verify_chunk_mb == 0 {
        problems.push(Problem::new(
            "migration.verify_chunk_mb",
            "must be at least 1, e.g. 32",
        ));
    }
    match (&m.fallback_password, &m.fallback_password_file) {
        (Some(_), Some(_)) => problems.push(Problem::new(
            "migration.fallback_password",
            "set either fallback_password or fallback_password_file, not both",
        )),
        (None, Some(path)) => {
            if let Err(reason) = read_secret_file(path) {
                problems.push(Problem::new("migration.fallback_password_file", reason));
            }
        }
        _ => {}
    }
    problems
}

/// The problems of mapping `name`: its name, its two connections and its database filter.
/// Records the destination's endpoints in `destinations`, for [`shared_destinations`].
fn mapping_problems<'a>(
    name: &'a str,
    mapping: &MappingSettings,
    destinations: &mut BTreeMap<String, Vec<&'a str>>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let key = format!("mappings.{name}");
    if let Some(reason) = mapping_name_problem(name) {
        problems.push(Problem::new(&key, reason));
    }
    if let Err(found) = mapping.source.resolve(&format!("{key}.source")) {
        problems.extend(found);
    }
    if let Some(Err(found)) = mapping
        .pooler
        .as_ref()
        .map(|p| p.resolve_console(&format!("{key}.pooler")))
    {
        problems.extend(found);
    }
    match mapping.destination.resolve(&format!("{key}.destination")) {
        Ok(destination) => {
            for endpoint in destination.endpoints() {
                let sharing = destinations.entry(endpoint).or_default();
                if !sharing.contains(&name) {
                    sharing.push(name);
                }
            }
        }
        Err(found) => problems.extend(found),
    }
    for entry in &mapping.schema_exclude {
        match super::schema_exclusion(entry) {
            None => problems.push(Problem::new(
                format!("{key}.schema_exclude"),
                format!(
                    "`{entry}` is not `<database>: <object>`: write it as the finding names it, \
                     e.g. \"shop: VIEW public.v\""
                ),
            )),
            Some((db, object)) if object.starts_with("TABLE ") => problems.push(Problem::new(
                format!("{key}.schema_exclude"),
                format!(
                    "`{entry}`: a table cannot be left out of database {db:?}, since its rows \
                     are replicated; fix what stops its creation on the destination (the \
                     finding's error says what), or exclude the whole database"
                ),
            )),
            Some(_) => {}
        }
    }
    for db in &mapping.databases.include {
        if mapping.databases.exclude.contains(db) {
            problems.push(Problem::new(
                format!("{key}.databases"),
                format!("`{db}` is both included and excluded: remove it from one list"),
            ));
        }
    }
    problems
}

/// An empty admin token (any request would match it), or none while `require_admin_token` asks
/// for one because `listen` can be reached from the network. An unparsable `listen` is reported
/// on its own.
fn admin_token_problem(server: &ServerSettings) -> Option<Problem> {
    if let Some(token) = &server.admin_token {
        return token.expose_secret().trim().is_empty().then(|| {
            Problem::new(
                "server.admin_token",
                "is empty, which every request would match: set a long random value (e.g. the \
                 output of `openssl rand -hex 32`), or remove the key to run without a token",
            )
        });
    }
    let listen_valid = server.listen.parse::<SocketAddr>().is_ok();
    (server.require_admin_token && listen_valid && server.commands_open_to_network()).then(|| {
        Problem::new(
            "server.admin_token",
            format!(
                "server.require_admin_token is true and server.listen {} can be reached from the \
                 network, so an admin token is required: set server.admin_token (or \
                 MIGRATOR__SERVER__ADMIN_TOKEN, e.g. from a Secret) to a long random value, or \
                 listen on 127.0.0.1",
                server.listen
            ),
        )
    })
}

/// One problem for each group of mappings that migrate onto one destination instance: their
/// databases, roles and subscriptions would meet there, and each would take the other's
/// objects for someone else's (or for its own).
fn shared_destinations(destinations: &BTreeMap<String, Vec<&str>>) -> Vec<Problem> {
    let mut groups: BTreeMap<&[&str], Vec<&str>> = BTreeMap::new();
    for (endpoint, mappings) in destinations {
        if mappings.len() > 1 {
            groups.entry(mappings).or_default().push(endpoint);
        }
    }
    groups
        .into_iter()
        .map(|(mappings, endpoints)| {
            let (last, others) = mappings.split_last().expect("two or more");
            Problem::new(
                format!("mappings.{last}.destination"),
                format!(
                    "mappings {} and {last} migrate onto the same destination instance ({}); one destination instance takes one mapping: give each mapping its own destination instance, or migrate them one after the other (remove a mapping once it is complete, then add the next)",
                    others.join(", "),
                    endpoints.join(", ")
                ),
            )
        })
        .collect()
}

/// Why `name` cannot name a mapping, if it cannot.
pub fn mapping_name_problem(name: &str) -> Option<String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !valid_chars || !starts_with_letter || name.contains("__") || name.ends_with('_') {
        Some(format!(
            "mapping name `{name}` must start with a lowercase letter and hold only lowercase letters, digits and single underscores (environment variables address it as MIGRATOR__MAPPINGS__{}__...)",
            name.to_uppercase()
        ))
    } else if name.len() > MAX_MAPPING_NAME_LEN {
        Some(format!(
            "mapping name `{name}` is {} bytes long; use at most {MAX_MAPPING_NAME_LEN}",
            name.len()
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{ConfigError, ConfigSource, Settings, load};

    fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(&ConfigSource {
            file: None,
            env: Some(env),
        })
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        match load_env(pairs) {
            Err(ConfigError::Invalid(list)) => list.iter().map(ToString::to_string).collect(),
            Err(other) => panic!("expected validation problems, got: {other}"),
            Ok(_) => Vec::new(),
        }
    }

    const MAPPING: [(&str, &str); 4] = [
        ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "old"),
        ("MIGRATOR__MAPPINGS__PROD__SOURCE__USER", "m"),
        ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new"),
        ("MIGRATOR__MAPPINGS__PROD__DESTINATION__USER", "m"),
    ];

    #[test]
    fn schema_exclude_takes_semicolons_from_the_environment_and_refuses_tables() {
        let mut pairs = MAPPING.to_vec();
        pairs.push((
            "MIGRATOR__MAPPINGS__PROD__SCHEMA_EXCLUDE",
            "shop: ROUTINE public.f(integer, text); shop: VIEW public.v ;",
        ));
        let settings = load_env(&pairs).unwrap();
        assert_eq!(
            settings.mappings["prod"].schema_exclude,
            [
                "shop: ROUTINE public.f(integer, text)",
                "shop: VIEW public.v"
            ]
        );
        for (entry, says) in [
            ("VIEW public.v", "is not `<database>: <object>`"),
            ("shop: TABLE public.orders", "a table cannot be left out"),
        ] {
            let mut pairs = MAPPING.to_vec();
            pairs.push(("MIGRATOR__MAPPINGS__PROD__SCHEMA_EXCLUDE", entry));
            let found = problems(&pairs);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(
                found[0].contains("mappings.prod.schema_exclude"),
                "{found:?}"
            );
            assert!(found[0].contains(says), "{found:?}");
        }
    }

    #[test]
    fn every_session_turns_jit_off_and_keeps_the_urls_own_options() {
        let settings = load_env(&MAPPING).unwrap();
        let source = settings.mappings["prod"].source.resolve("source").unwrap();
        assert_eq!(source.pg.get_options(), Some("-c jit=off"));
        let settings = load_env(&[
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
                "postgres://m@old/app?options=-c%20search_path%3Dshop",
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new"),
        ])
        .unwrap();
        let source = settings.mappings["prod"].source.resolve("source").unwrap();
        assert_eq!(
            source.for_database("other").get_options(),
            Some("-c search_path=shop -c jit=off")
        );
    }

    #[test]
    fn require_admin_token_refuses_a_network_listen_without_a_token() {
        let found = problems(&[
            ("MIGRATOR__SERVER__REQUIRE_ADMIN_TOKEN", "true"),
            ("MIGRATOR__SERVER__LISTEN", "0.0.0.0:8080"),
        ]);
        assert_eq!(found.len(), 1, "{found:#?}");
        let problem = &found[0];
        assert!(problem.starts_with("server.admin_token: "), "{problem}");
        for hint in [
            "0.0.0.0:8080",
            "set server.admin_token",
            "MIGRATOR__SERVER__ADMIN_TOKEN",
            "listen on 127.0.0.1",
        ] {
            assert!(problem.contains(hint), "missing `{hint}` in {problem}");
        }
    }

    #[test]
    fn require_admin_token_accepts_a_token_or_a_loopback_listen() {
        for pairs in [
            &[
                ("MIGRATOR__SERVER__REQUIRE_ADMIN_TOKEN", "true"),
                ("MIGRATOR__SERVER__ADMIN_TOKEN", "s3cret-token"),
            ][..],
            &[
                ("MIGRATOR__SERVER__REQUIRE_ADMIN_TOKEN", "true"),
                ("MIGRATOR__SERVER__LISTEN", "127.0.0.1:8080"),
            ],
            &[
                ("MIGRATOR__SERVER__REQUIRE_ADMIN_TOKEN", "true"),
                ("MIGRATOR__SERVER__LISTEN", "[::1]:8080"),
            ],
            // Off (the default): only a warning at start.
            &[("MIGRATOR__SERVER__LISTEN", "0.0.0.0:8080")],
        ] {
            let settings = load_env(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
            assert_eq!(
                settings.server.open_commands_warning().is_some(),
                pairs.len() == 1,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn an_empty_admin_token_is_refused_without_showing_it() {
        for token in ["", "   "] {
            let found = problems(&[("MIGRATOR__SERVER__ADMIN_TOKEN", token)]);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert!(
                found[0].starts_with("server.admin_token: is empty"),
                "{found:?}"
            );
        }
    }

    #[test]
    fn the_warning_names_the_address_and_the_fixes_but_no_secret() {
        let settings = load_env(&[]).unwrap();
        let warning = settings.server.open_commands_warning().unwrap();
        for hint in [
            "0.0.0.0:8080",
            "server.admin_token",
            "127.0.0.1",
            "require_admin_token",
        ] {
            assert!(warning.contains(hint), "missing `{hint}` in {warning}");
        }
        let settings = load_env(&[("MIGRATOR__SERVER__ADMIN_TOKEN", "s3cret-token")]).unwrap();
        assert_eq!(settings.server.open_commands_warning(), None);
    }
}
