//! The binary as an operator or a Kubernetes pod runs it.

use std::process::{Command, Output};

fn migrator(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postgres-migrator"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MIGRATOR_CONFIG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run postgres-migrator")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_every_subcommand() {
    let out = migrator(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in [
        "run",
        "demo",
        "config",
        "check",
        "status",
        "instructions",
        "resync",
        "complete",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from --help:\n{help}"
        );
    }
}

#[test]
fn config_prints_the_effective_configuration_without_secrets() {
    let out = migrator(
        &["config", "--config", "config/default.toml"],
        &[
            (
                "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
                "postgres://app:pa55word@old:5432/postgres",
            ),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST", "new"),
            ("MIGRATOR__MAPPINGS__PROD__DESTINATION__PASSWORD", "0123,x"),
            ("MIGRATOR__SERVER__ADMIN_TOKEN", "t0ken"),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("[mappings.prod.source]"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:***@old:5432/postgres"),
        "{stdout}"
    );
    assert!(stdout.contains("poll_interval = \"5s\""), "{stdout}");
    for secret in ["pa55word", "0123,x", "t0ken"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
}

#[test]
fn an_invalid_configuration_exits_2_listing_every_problem() {
    let out = migrator(
        &["config"],
        &[
            ("MIGRATOR__MAPPINGS__PROD__SOURCE__HOTS", "x"),
            ("MIGRATOR__MIGRATION__POLL_INTERVAL", "0s"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("mappings.prod.source.hots: unknown key; did you mean `host`?"),
        "{stderr}"
    );
    assert!(stderr.contains("migration.poll_interval"), "{stderr}");
}

#[test]
fn an_invalid_log_level_is_a_configuration_error() {
    let out = migrator(&["config"], &[("MIGRATOR__LOG__LEVEL", "info,=[")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("log.level"));
}

#[test]
fn check_exits_3_naming_a_table_without_primary_key() {
    use migrator_core::testkit::Cluster;
    let (source, destination) = Cluster::start_pair().expect("start clusters");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, connection) = source
            .pg_config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE events_raw (payload text)")
            .await
            .unwrap();
    });
    let env = [
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__HOST",
            "127.0.0.1".to_owned(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__PORT",
            source.port().to_string(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__PASSWORD",
            source.password().to_owned(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST",
            "127.0.0.1".to_owned(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__PORT",
            destination.port().to_string(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__PASSWORD",
            destination.password().to_owned(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = migrator(&["check"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("[no_primary_key]") && stdout.contains("public.events_raw"),
        "{stdout}"
    );
    assert!(!stdout.contains(source.password()), "{stdout}");

    let out = migrator(&["complete", "prod"], &env);
    assert_eq!(
        out.status.code(),
        Some(3),
        "complete before cutover ready is refused"
    );
    assert!(
        text(&out.stderr).contains("refusing to complete mapping prod"),
        "{}",
        text(&out.stderr)
    );
}
