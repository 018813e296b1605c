//! Configuration: layering, both connection forms, secrets, and error reporting.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use migrator_core::config::{
    ConfigError, ConfigSource, LogFormat, RoleConflictStrategy, Settings, load,
};
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
