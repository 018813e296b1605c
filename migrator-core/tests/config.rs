//! Configuration: layering, both connection forms, secrets, and error reporting.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use migrator_core::config::{
    ConfigError, ConfigSource, LogFormat, RoleConflictStrategy, Settings, load,
};
use migrator_core::phases::MappingContext;
use migrator_core::phases::replication::subscription_conninfo;
use secrecy::ExposeSecret;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn load_with(file: Option<PathBuf>, pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    load(&ConfigSource {
        file,
        env: env(pairs),
    })
}

fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(list) => list.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation problems, got: {other}"),
    }
}

/// Asserts `found` holds one problem starting with each of `expect`, and nothing else.
fn assert_exactly(found: &[String], expect: &[&str]) {
    for e in expect {
        assert!(
            found.iter().any(|p| p.starts_with(e)),
            "missing `{e}` in {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

const TWO_FORMS: &str = r#"
[migration]
poll_interval = "2s"

[mappings.prod.source]
url = "postgres://app:url-secret@old-db:6543/maint?sslmode=disable"

[mappings.prod.destination]
host = "new-db"
port = 5433
user = "admin"
password = "file-secret"
dbname = "postgres"
sslmode = "prefer"
connect_timeout = "3s"
application_name = "migrator-test"
replication_user = "replicator"
replication_password = "repl-secret"
"#;

#[test]
fn the_embedded_defaults_alone_are_a_valid_configuration() {
    let settings = load_with(None, &[]).unwrap();
    assert_eq!(settings.server.listen, "0.0.0.0:8080");
    assert_eq!(settings.migration.poll_interval.as_secs(), 5);
    assert_eq!(
        settings.migration.role_conflict_strategy,
        RoleConflictStrategy::Fail
    );
    assert!(settings.mappings.is_empty());
}

#[test]
fn the_shipped_default_file_loads_through_the_file_layer() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/default.toml");
    let settings = load_with(Some(path), &[]).unwrap();
    assert_eq!(settings.log.format, LogFormat::Pretty);
}

#[test]
fn environment_wins_over_file_which_wins_over_defaults() {
    let f = file(TWO_FORMS);
    let settings = load_with(
        Some(f.path().to_owned()),
        &[
            ("MIGRATOR__MIGRATION__POLL_INTERVAL", "7s"),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__PORT", "6000"),
            ("MIGRATOR__LOG__FORMAT", "json"),
            ("MIGRATOR__MIGRATION__LAG_THRESHOLD_MB", "32"),
        ],
    )
    .unwrap();
    assert_eq!(
        settings.migration.poll_interval.as_secs(),
        7,
        "env beats file"
    );
    assert_eq!(settings.log.format, LogFormat::Json, "env beats default");
    assert_eq!(settings.migration.lag_threshold_mb, 32);
    assert_eq!(settings.migration.stable_for.as_secs(), 30, "default kept");
    let dest = settings.mappings["prod"].destination.resolve("d").unwrap();
    assert_eq!(dest.pg.get_ports(), &[6000]);
    assert_eq!(
        dest.pg.get_user(),
        Some("admin"),
        "file kept where env is silent"
    );
}

#[test]
fn a_mapping_can_be_configured_from_the_environment_alone() {
    let settings = load_with(
        None,
        &[
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
                "postgres://u:p@a:5432/postgres",
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "b"),
            (
                "MIGRATOR__MAPPINGS__PROD__DATABASES__EXCLUDE",
                "scratch, tmp",
            ),
            ("MIGRATOR__MAPPINGS__PROD__RATE_LIMIT_MB_PER_S", "25"),
        ],
    )
    .unwrap();
    let prod = &settings.mappings["prod"];
    assert_eq!(prod.databases.exclude, vec!["scratch", "tmp"]);
    assert!(prod.databases.admits("app"));
    assert!(!prod.databases.admits("tmp"));
    assert_eq!(prod.rate_limit_mb_per_s(&settings.migration), 25);
    assert_eq!(
        prod.destination.resolve("d").unwrap().pg.get_ports(),
        &[5432]
    );
}

#[test]
fn url_and_discrete_forms_resolve_to_the_same_kind_of_settings() {
    let f = file(TWO_FORMS);
    let settings = load_with(Some(f.path().to_owned()), &[]).unwrap();
    let source = settings.mappings["prod"].source.resolve("s").unwrap();
    assert_eq!(source.describe(), "app@old-db:6543/maint");
    assert_eq!(source.pg.get_password(), Some(&b"url-secret"[..]));
    assert_eq!(
        source.replication_user, "app",
        "replication user defaults to user"
    );

    let dest = settings.mappings["prod"].destination.resolve("d").unwrap();
    assert_eq!(dest.describe(), "admin@new-db:5433/postgres");
    assert_eq!(dest.pg.get_connect_timeout().unwrap().as_secs(), 3);
    assert_eq!(dest.pg.get_application_name(), Some("migrator-test"));
    assert_eq!(dest.replication_user, "replicator");
    assert_eq!(
        dest.replication_password.as_ref().unwrap().expose_secret(),
        "repl-secret"
    );
}

#[test]
fn password_file_is_read_and_one_trailing_newline_dropped() {
    let secret = file("from-a-secret\n");
    let settings = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__M1__SOURCE__HOST", "a"),
            (
                "MIGRATOR__MAPPINGS__M1__SOURCE__PASSWORD_FILE",
                secret.path().to_str().unwrap(),
            ),
            ("MIGRATOR__MAPPINGS__M1__DESTINATION__HOST", "b"),
        ],
    )
    .unwrap();
    let source = settings.mappings["m1"].source.resolve("s").unwrap();
    assert_eq!(source.pg.get_password(), Some(&b"from-a-secret"[..]));
}

#[test]
fn a_password_like_0123_comma_x_survives_intact() {
    let f = file(
        "[mappings.m.source]\nhost = \"a\"\npassword = \"0123,x\"\n[mappings.m.destination]\nhost = \"b\"\n",
    );
    let from_file = load_with(Some(f.path().to_owned()), &[]).unwrap();
    let from_env = load_with(
        Some(f.path().to_owned()),
        &[("MIGRATOR__MAPPINGS__M__DESTINATION__PASSWORD", "0123,x")],
    )
    .unwrap();
    for settings in [&from_file, &from_env] {
        let m = &settings.mappings["m"];
        let side = if std::ptr::eq(settings, &from_file) {
            &m.source
        } else {
            &m.destination
        };
        assert_eq!(side.password.as_ref().unwrap().expose_secret(), "0123,x");
    }
}

#[test]
fn secrets_appear_neither_in_printed_config_nor_in_debug_output() {
    let f = file(TWO_FORMS);
    let secret_file = file("mounted-secret");
    let settings = load_with(
        Some(f.path().to_owned()),
        &[
            ("MIGRATOR__SERVER__ADMIN_TOKEN", "token-secret"),
            (
                "MIGRATOR__MIGRATION__FALLBACK_PASSWORD_FILE",
                secret_file.path().to_str().unwrap(),
            ),
        ],
    )
    .unwrap();
    let printed = settings.to_redacted_toml();
    let debug = format!("{settings:?}");
    let resolved = format!(
        "{:?}",
        settings.mappings["prod"].destination.resolve("d").unwrap()
    );
    for text in [&printed, &debug, &resolved] {
        for secret in [
            "url-secret",
            "file-secret",
            "repl-secret",
            "token-secret",
            "mounted-secret",
        ] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }
    assert!(
        printed.contains("url = \"postgres://app:***@old-db:6543/maint?sslmode=disable\""),
        "{printed}"
    );
    assert!(printed.contains("admin_token = \"***\""), "{printed}");
    assert!(printed.contains("password = \"***\""), "{printed}");
    // What is printed is itself a valid configuration file (secrets aside).
    toml::from_str::<toml::Table>(&printed).unwrap();
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let f = file(
        r#"
[server]
listen = "nowhere"
[migration]
poll_interval = "0s"
[mappings.prod.source]
[mappings.prod.destination]
url = "postgres://a/b"
host = "also-set"
[mappings.Bad-Name.source]
host = "a"
password = "x"
password_file = "/nonexistent/secret"
[mappings.Bad-Name.destination]
url = "postgres://b/postgres"
port = 5
"#,
    );
    let found = problems(load_with(Some(f.path().to_owned()), &[]).unwrap_err());
    let expect = [
        "server.listen: `nowhere` is not an address and port",
        "migration.poll_interval: must be longer than zero",
        "mappings.prod.source: set either url or host (",
        "mappings.prod.destination: set either url or host, not both",
        "mappings.Bad-Name: mapping name `Bad-Name` must start with a lowercase letter",
        "mappings.Bad-Name.source.password: set either",
        "mappings.Bad-Name.destination.port: port cannot be combined with url",
    ];
    assert_exactly(&found, &expect);
}

#[test]
fn unknown_keys_and_bad_values_are_all_rejected_with_the_nearest_valid_key() {
    let f = file(
        r#"
[sever]
listen = "0.0.0.0:1"
[migration]
pol_interval = "5s"
role_conflict_strategy = "overwrite"
lag_threshold_mb = "lots"
[mappings.prod.source]
host = "a"
pasword = "x"
port = 70000
[mappings.prod.destination]
host = "b"
"#,
    );
    let found = problems(load_with(Some(f.path().to_owned()), &[]).unwrap_err());
    let expect = [
        "sever: unknown key; did you mean `server`?",
        "migration.pol_interval: unknown key; did you mean `poll_interval`?",
        "migration.role_conflict_strategy: `overwrite` is not allowed; use one of: fail, skip, merge",
        "migration.lag_threshold_mb: `lots` is not a whole number",
        "mappings.prod.source.pasword: unknown key; did you mean `password`?",
        "mappings.prod.source.port: 70000 is out of range",
    ];
    assert_exactly(&found, &expect);
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let err = load_with(Some("/nonexistent/migrator.toml".into()), &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/nonexistent/migrator.toml"), "{text}");
    assert!(text.contains("--config"), "{text}");
}

#[test]
fn tcp_keepalives_give_up_within_a_minute_unless_fields_or_the_url_say_otherwise() {
    let settings = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "old-db"),
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__KEEPALIVES", "false"),
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__KEEPALIVES_IDLE", "20s"),
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__KEEPALIVES_COUNT", "2"),
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__TCP_USER_TIMEOUT", "0s"),
            (
                "MIGRATOR__MAPPINGS__PROD__DESTINATION__URL",
                "postgres://u:p@new-db/postgres?keepalives_idle=45&keepalives_interval=5\
                 &keepalives_count=4&tcp_user_timeout=1500&application_name=x",
            ),
            (
                "MIGRATOR__MAPPINGS__PROD__DESTINATION__KEEPALIVES_INTERVAL",
                "6s",
            ),
        ],
    )
    .unwrap();
    let prod = &settings.mappings["prod"];
    let source = prod.source.resolve("s").unwrap().pg;
    assert!(!source.get_keepalives());
    assert_eq!(source.get_keepalives_idle(), Duration::from_secs(20));
    assert_eq!(
        source.get_keepalives_interval(),
        Some(Duration::from_secs(10)),
        "default"
    );
    assert_eq!(source.get_keepalives_retries(), Some(2));
    assert_eq!(source.get_tcp_user_timeout(), Some(&Duration::ZERO));

    // libpq's names and units in the url (tcp_user_timeout in milliseconds); a field wins.
    let destination = prod.destination.resolve("d").unwrap().pg;
    assert!(destination.get_keepalives());
    assert_eq!(destination.get_keepalives_idle(), Duration::from_secs(45));
    assert_eq!(
        destination.get_keepalives_interval(),
        Some(Duration::from_secs(6))
    );
    assert_eq!(destination.get_keepalives_retries(), Some(4));
    assert_eq!(
        destination.get_tcp_user_timeout(),
        Some(&Duration::from_millis(1500))
    );
    assert_eq!(
        destination.get_application_name(),
        Some("x"),
        "other url parameters are kept"
    );

    let defaults = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__M__SOURCE__HOST", "a"),
            ("MIGRATOR__MAPPINGS__M__DESTINATION__HOST", "b"),
        ],
    )
    .unwrap();
    let pg = defaults.mappings["m"].source.resolve("s").unwrap().pg;
    assert!(pg.get_keepalives());
    assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(10)));
    assert_eq!(pg.get_keepalives_retries(), Some(3));
    assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
}

#[test]
fn bad_tcp_settings_are_reported_with_their_keys_and_no_password() {
    let f = file(
        r#"
[mappings.prod.source]
host = "a"
keepalives_idle = "500ms"
keepalives_count = 0
[mappings.prod.destination]
url = "postgres://u:s3cret@b/postgres?keepalives_interval=ten&tcp_user_timeout=1m"
"#,
    );
    let found = problems(load_with(Some(f.path().to_owned()), &[]).unwrap_err());
    assert_exactly(
        &found,
        &[
            "mappings.prod.source.keepalives_idle: must be whole seconds from 1s",
            "mappings.prod.source.keepalives_count: must be from 1 to 127",
            "mappings.prod.destination.url: the url's keepalives_interval=ten is not a whole number of seconds",
            "mappings.prod.destination.url: the url's tcp_user_timeout=1m is not a whole number of milliseconds",
        ],
    );
    assert!(!found.iter().any(|p| p.contains("s3cret")), "{found:#?}");
}

fn context(settings: &Settings, name: &str) -> MappingContext {
    MappingContext::new(name, &settings.mappings[name], &settings.migration).unwrap()
}

#[test]
fn the_password_inside_the_source_url_reaches_the_subscription() {
    let settings = load_with(
        None,
        &[
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
                "postgres://app:p%40ss%20w'rd@old-db:5432/postgres",
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
        ],
    )
    .unwrap();
    let ctx = context(&settings, "prod");
    assert_eq!(ctx.source.replication_user, "app");
    assert_eq!(
        ctx.source
            .replication_password
            .as_ref()
            .map(|p| p.expose_secret()),
        Some("p@ss w'rd")
    );
    let conninfo = subscription_conninfo(&ctx, "shop", "pgmig_prod_shop");
    assert!(
        conninfo.contains("user='app'") && conninfo.contains(r"password='p@ss w\'rd'"),
        "the subscription's connection string lacks the url's password"
    );
}

#[test]
fn a_replication_user_without_its_own_password_is_refused_the_admins() {
    let base = [
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
            "postgres://admin:admin-secret@old-db/postgres",
        ),
        ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        load_with(None, &pairs)
    };

    let found = problems(
        with(&[(
            "MIGRATOR__MAPPINGS__PROD__SOURCE__REPLICATION_USER",
            "replicator",
        )])
        .unwrap_err(),
    );
    assert_exactly(
        &found,
        &[
            "mappings.prod.source.replication_user: replication_user \"replicator\" is not user \"admin\"",
        ],
    );
    assert!(
        found[0].contains("set replication_password or replication_password_file"),
        "{found:#?}"
    );
    assert!(!found[0].contains("admin-secret"));

    // Its own password is used ...
    let own = with(&[
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__REPLICATION_USER",
            "replicator",
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__REPLICATION_PASSWORD",
            "repl-secret",
        ),
    ])
    .unwrap();
    let ctx = context(&own, "prod");
    assert_eq!(
        ctx.source.replication_password.unwrap().expose_secret(),
        "repl-secret"
    );
    // ... and the admin's own role keeps the admin's password.
    let same = with(&[(
        "MIGRATOR__MAPPINGS__PROD__SOURCE__REPLICATION_USER",
        "admin",
    )])
    .unwrap();
    let ctx = context(&same, "prod");
    assert_eq!(
        ctx.source.replication_password.unwrap().expose_secret(),
        "admin-secret"
    );
}

#[test]
fn two_mappings_onto_one_destination_instance_are_refused_naming_both() {
    let f = file(
        r#"
[mappings.alpha.source]
host = "old-a"
[mappings.alpha.destination]
host = "New-DB"
[mappings.beta.source]
host = "old-b"
[mappings.beta.destination]
url = "postgres://u@new-db.:5432/postgres"
[mappings.gamma.source]
host = "old-c"
[mappings.gamma.destination]
host = "new-db"
port = 5433
[mappings.delta.source]
host = "old-d"
[mappings.delta.destination]
host = "127.0.0.1"
port = 5433
[mappings.epsilon.source]
host = "old-e"
[mappings.epsilon.destination]
host = "localhost"
port = 5433
"#,
    );
    let found = problems(load_with(Some(f.path().to_owned()), &[]).unwrap_err());
    assert_exactly(
        &found,
        &[
            "mappings.beta.destination: mappings alpha and beta migrate onto the same destination instance (new-db:5432)",
        ],
    );
    assert!(
        found[0].contains("give each mapping its own destination instance"),
        "{found:#?}"
    );
}

#[test]
fn ip_addresses_are_compared_in_their_canonical_form() {
    let found = problems(
        load_with(
            None,
            &[
                ("MIGRATOR__MAPPINGS__ONE__SOURCE__HOST", "a"),
                ("MIGRATOR__MAPPINGS__ONE__DESTINATION__HOST", "::1"),
                ("MIGRATOR__MAPPINGS__TWO__SOURCE__HOST", "b"),
                (
                    "MIGRATOR__MAPPINGS__TWO__DESTINATION__URL",
                    "postgres://u@[0:0:0:0:0:0:0:1]:5432/postgres",
                ),
            ],
        )
        .unwrap_err(),
    );
    assert_exactly(
        &found,
        &[
            "mappings.two.destination: mappings one and two migrate onto the same destination instance ([::1]:5432)",
        ],
    );
}

#[test]
fn port_zero_is_refused_in_a_field_and_in_a_url() {
    let found = problems(
        load_with(
            None,
            &[
                ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "a"),
                ("MIGRATOR__MAPPINGS__PROD__SOURCE__PORT", "0"),
                (
                    "MIGRATOR__MAPPINGS__PROD__DESTINATION__URL",
                    "postgres://u@b:0/postgres",
                ),
            ],
        )
        .unwrap_err(),
    );
    assert_exactly(
        &found,
        &[
            "mappings.prod.source.port: port 0 is not a port a server listens on",
            "mappings.prod.destination.url: port 0 is not a port a server listens on",
        ],
    );
}

/// The URL a platform team hands over: pooled, with parameters for other clients.
const POOLED_URL: &str = "postgresql://app:pw%21@bouncer:6432/app?pgbouncer=true&connect_timeout=15\
     &application_name=shop-migration&sslmode=require&schema=public&connection_limit=5&pool_timeout=10";

#[test]
fn a_pooled_url_loads_with_direct_url_beside_it_and_the_other_clients_parameters_noted() {
    let settings = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__URL", POOLED_URL),
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL",
                "postgresql://app@db-primary:5432/app",
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
        ],
    )
    .unwrap();
    let ctx = context(&settings, "prod");
    // Every session of the tool goes to the server itself ...
    assert_eq!(ctx.source.describe(), "app@db-primary:5432/app");
    // ... and the pooled address is kept for the instructions.
    assert_eq!(ctx.source.pooled.as_deref(), Some("app@bouncer:6432/app"));
    // What the direct url does not say, the pooled url does.
    assert_eq!(ctx.source.sslmode, migrator_core::config::SslMode::Require);
    assert_eq!(ctx.source.pg.get_application_name(), Some("shop-migration"));
    assert_eq!(
        ctx.source.pg.get_connect_timeout(),
        Some(&Duration::from_secs(15))
    );
    // The direct url has no password: it takes the pooled url's, also for the subscription.
    assert_eq!(ctx.source.pg.get_password(), Some(&b"pw!"[..]));
    assert_eq!(
        ctx.source
            .replication_password
            .as_ref()
            .map(|p| p.expose_secret()),
        Some("pw!")
    );
    let notes = ctx.source.notes.join("\n");
    for ignored in [
        "pgbouncer=true",
        "schema=public",
        "connection_limit=5",
        "pool_timeout=10",
    ] {
        assert!(notes.contains(ignored), "{ignored} not in {notes}");
    }
    assert!(notes.contains("mappings.prod.source.url"), "{notes}");
    assert!(!notes.contains("pw"), "a note shows the password: {notes}");
    // The same notes, for the log at start and `postgres-migrator config`.
    assert_eq!(settings.notes(), ctx.source.notes);

    // Without direct_url, the honoured parameters of the same url reach tokio-postgres.
    let settings = load_with(
        None,
        &[
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
                &POOLED_URL.replace("pgbouncer=true&", ""),
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
        ],
    )
    .unwrap();
    let ctx = context(&settings, "prod");
    assert_eq!(
        ctx.source.pg.get_connect_timeout(),
        Some(&Duration::from_secs(15))
    );
    assert_eq!(ctx.source.pg.get_application_name(), Some("shop-migration"));
    assert_eq!(ctx.source.sslmode, migrator_core::config::SslMode::Require);
    assert_eq!(ctx.source.pooled, None);
}

#[test]
fn a_url_that_says_pgbouncer_needs_a_direct_url_and_the_direct_url_must_be_direct() {
    let pooled_only = problems(
        load_with(
            None,
            &[
                ("MIGRATOR__MAPPINGS__PROD__SOURCE__URL", POOLED_URL),
                ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
            ],
        )
        .unwrap_err(),
    );
    assert_eq!(pooled_only.len(), 1, "{pooled_only:?}");
    for says in [
        "mappings.prod.source.url",
        "pgbouncer=true",
        "MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL",
        "replication",
    ] {
        assert!(pooled_only[0].contains(says), "{says}: {pooled_only:?}");
    }
    assert!(!pooled_only[0].contains("pw!"), "{pooled_only:?}");

    let direct_pooled = problems(
        load_with(
            None,
            &[
                ("MIGRATOR__MAPPINGS__PROD__SOURCE__URL", POOLED_URL),
                (
                    "MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL",
                    "postgresql://app@bouncer:6432/app?pgbouncer=true",
                ),
                ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
            ],
        )
        .unwrap_err(),
    );
    assert!(
        direct_pooled
            .iter()
            .any(|p| p.contains("mappings.prod.source.direct_url") && p.contains("own address")),
        "{direct_pooled:?}"
    );

    let with_host = problems(
        load_with(
            None,
            &[
                ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "old-db"),
                (
                    "MIGRATOR__MAPPINGS__PROD__SOURCE__DIRECT_URL",
                    "postgresql://app@db-primary/app",
                ),
                ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
            ],
        )
        .unwrap_err(),
    );
    assert!(
        with_host
            .iter()
            .any(|p| p.contains("direct_url") && p.contains("goes with url")),
        "{with_host:?}"
    );
}

#[test]
fn the_instructions_pause_and_resume_the_poolers_entries_of_each_database() {
    use migrator_core::catalog::pooler::PoolerDatabase;
    use migrator_core::phases::cutover;
    let settings = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "old-db"),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__PORT", "5433"),
            (
                "MIGRATOR__MAPPINGS__PROD__POOLER__URL",
                "postgresql://admin:console-secret@bouncer:6432",
            ),
        ],
    )
    .unwrap();
    let ctx = context(&settings, "prod");
    let pooler = ctx.pooler.as_ref().unwrap();
    assert_eq!(pooler.describe(), "admin@bouncer:6432/pgbouncer");
    assert_eq!(pooler.pg.get_options(), None, "PgBouncer refuses options");
    let entries = [
        PoolerDatabase {
            alias: "shop_rw".into(),
            database: "shop".into(),
            server: "old-db:5432".into(),
            paused: false,
            clients: 7,
        },
        PoolerDatabase {
            alias: "other".into(),
            database: "other".into(),
            server: "old-db:5432".into(),
            paused: false,
            clients: 3,
        },
    ];
    let databases = ["shop".to_owned(), "Ordér \"x\"".to_owned()];
    let text = cutover::instructions(&ctx, &databases, Some(&entries));
    for says in [
        "PAUSE \"shop_rw\";",
        "RESUME \"shop_rw\";",
        "RELOAD;",
        "host=new-db port=5433",
        "It holds 7 client connection(s)",
        "admin@bouncer:6432/pgbouncer",
    ] {
        assert!(text.contains(says), "{says} not in:\n{text}");
    }
    assert!(!text.contains("\"other\""), "{text}");
    assert!(!text.contains("console-secret"), "{text}");
    // Not read just now: the entries are taken to be named as the databases, quoted.
    let text = cutover::instructions(&ctx, &databases, None);
    assert!(text.contains("PAUSE \"Ordér \"\"x\"\"\";"), "{text}");
    assert!(text.contains("could not be read"), "{text}");
    // Without a pooler, nothing of it.
    let plain = load_with(
        None,
        &[
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOST", "old-db"),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new-db"),
        ],
    )
    .unwrap();
    let text = cutover::instructions(&context(&plain, "prod"), &databases, None);
    assert!(!text.contains("PAUSE"), "{text}");
}
