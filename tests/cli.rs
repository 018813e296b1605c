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
