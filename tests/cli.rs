//! The binary as an operator or a Kubernetes pod runs it.

mod common;

use std::process::{Command, Output};

use common::{execute, query_i64};
use migrator_core::testkit::Cluster;

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

/// The environment that makes `source` and `destination` the two sides of mapping `prod`.
fn prod_env(source: &Cluster, destination: &Cluster) -> Vec<(String, String)> {
    let mut env = source.mapping_env("prod", "source");
    env.extend(destination.mapping_env("prod", "destination"));
    env
}

/// `env` as [`migrator`] takes it.
fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
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
        "verify",
        "purge",
        "backup",
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
fn configuration_errors_never_repeat_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // An unterminated password string: the parser would print the line.
        (
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"Tok3n-s3cret\n",
            "Tok3n-s3cret",
            "line 3",
        ),
        // A url where a table is expected.
        (
            "[mappings.a]\nsource = \"postgres://app:Url-s3cret@db/postgres\"\n",
            "Url-s3cret",
            "mappings.a.source",
        ),
        // A password typed into an enum.
        (
            "[mappings.a.source]\nhost = \"db\"\nsslmode = \"Pw-s3cret!\"\n",
            "Pw-s3cret",
            "mappings.a.source.sslmode",
        ),
    ];
    for (i, (toml, secret, names)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("config-{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = migrator(&["config", "--config", path.to_str().unwrap()], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(names), "case {i}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "case {i} repeats the secret: {stderr}"
        );
        assert!(!text(&out.stdout).contains(secret), "case {i}");
    }
}

#[test]
fn an_invalid_log_level_is_a_configuration_error() {
    let out = migrator(&["config"], &[("MIGRATOR__LOG__LEVEL", "info,=[")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("log.level"));
}

#[test]
fn check_exits_3_naming_a_table_without_primary_key() {
    let (source, destination) = Cluster::start_pair().expect("start clusters");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(execute(
        &source,
        "postgres",
        "CREATE TABLE events_raw (payload text)",
    ));
    let env = prod_env(&source, &destination);
    let env = borrowed(&env);
    let out = migrator(&["check"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("[no_primary_key]") && stdout.contains("public.events_raw"),
        "{stdout}"
    );
    assert!(!stdout.contains(source.password()), "{stdout}");

    // Before any schema is on the destination there is nothing to compare, and it says so.
    let out = migrator(&["check", "--schema", "--mapping", "prod"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout
            .contains("prod \"postgres\": not compared: its schema is not on the destination yet"),
        "{stdout}"
    );
    let out = migrator(&["check", "--mapping", "prod"], &env);
    assert_eq!(out.status.code(), Some(2), "--mapping needs --schema");

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

/// Sessions of the tool (application_name `postgres-migrator`) still open on `cluster`.
async fn tool_sessions(cluster: &Cluster) -> i64 {
    query_i64(
        cluster,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'postgres-migrator'",
    )
    .await
}

#[test]
fn one_look_commands_end_their_sessions_cleanly() {
    use migrator_core::testkit::ClusterOptions;
    use std::time::{Duration, Instant};
    let options = |o: ClusterOptions| o.with("log_disconnections", "on");
    let source = std::thread::spawn(move || Cluster::start(&options(ClusterOptions::source())));
    let destination = Cluster::start(&options(ClusterOptions::destination())).unwrap();
    let source = source.join().unwrap().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(execute(&source, "postgres", "CREATE DATABASE shop"));
    let env = prod_env(&source, &destination);
    let env = borrowed(&env);
    let commands = [
        &["status"][..],
        &["status", "--json"],
        &["check"],
        &["instructions", "prod"],
    ];
    // Whether a command's last sockets are closed with a reply unread is a race, lost or won in
    // microseconds: run each command a few times.
    for args in commands.iter().cycle().take(12) {
        let out = migrator(args, &env);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    // A server logs a broken session when its backend sees the socket fail, which may come a
    // moment after our process ended: wait until every session of the tool is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    runtime.block_on(async {
        loop {
            let left = tool_sessions(&source).await + tool_sessions(&destination).await;
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} session(s) of the tool still open after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    for (side, cluster) in [("source", &source), ("destination", &destination)] {
        let log = cluster.server_log();
        let sessions = log.matches("disconnection: session time").count();
        assert!(
            sessions >= 12,
            "{side}: the commands' sessions should have ended ({sessions} logged):\n{log}"
        );
        for broken in [
            "Connection reset by peer",
            "unexpected EOF",
            "could not receive data",
        ] {
            assert!(
                !log.contains(broken),
                "{side} logged `{broken}`: a command left without ending its session:\n{log}"
            );
        }
    }
}

#[test]
fn backup_commands_without_a_store_or_with_an_unknown_key_exit_2_saying_what_to_do() {
    let out = migrator(&["backup", "list"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("MIGRATOR__BACKUP__DIR"),
        "{}",
        text(&out.stderr)
    );
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().display().to_string();
    let env = [("MIGRATOR__BACKUP__DIR", dir.as_str())];
    let out = migrator(&["backup", "list"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no backups"));
    for args in [
        vec!["backup", "delete", "20991231T000000Z-prod-source"],
        vec!["backup", "restore", "nosuch", "--to", "destination"],
    ] {
        let out = migrator(&args, &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("backup list"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// The tool killed (SIGKILL: nothing of it runs afterwards) in the middle of `backup create`:
/// the backup has no manifest, `backup list` shows it as unfinished and `backup restore`
/// refuses it (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_is_listed_unfinished_and_never_restored() {
    let (source, destination) = Cluster::start_pair().unwrap();
    execute(&source, "postgres", "CREATE DATABASE big").await;
    execute(
        &source,
        "big",
        "CREATE TABLE t (id int PRIMARY KEY, pad text); \
         INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g",
    )
    .await;
    let store = tempfile::tempdir().unwrap();
    let mut env = prod_env(&source, &destination);
    env.push((
        "MIGRATOR__BACKUP__DIR".into(),
        store.path().display().to_string(),
    ));
    env.push((
        "MIGRATOR__MAPPINGS__PROD__DATABASES__INCLUDE".into(),
        "big".into(),
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_postgres-migrator"));
    child
        .args(["backup", "create", "prod"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MIGRATOR_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = child.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let key = loop {
        let started = std::fs::read_dir(store.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().join("db0").exists());
        if let Some(entry) = started {
            break entry.file_name().to_string_lossy().into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!store.path().join(&key).join("manifest.json").exists());
    let out = migrator(&["backup", "list"], &borrowed(&env));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let line = listed
        .lines()
        .find(|l| l.contains(&key))
        .unwrap_or_default();
    assert!(line.contains("unfinished"), "{listed}");
    let out = migrator(
        &[
            "backup",
            "restore",
            &key,
            "--to",
            "destination",
            "--as",
            "big_back",
        ],
        &borrowed(&env),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unfinished"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        query_i64(
            &destination,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'big_back'"
        )
        .await,
        0
    );
}
