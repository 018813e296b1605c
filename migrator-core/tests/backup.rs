//! Backups on real servers: a source database backed up while an application keeps inserting,
//! restored under a new name on the destination, holding exactly the rows of the dump's
//! snapshot; progress counted table by table; a cancelled backup leaves nothing, a killed one
//! (no manifest) is listed as unfinished and refused by restore, a damaged one is refused; a
//! database that exists is refused unless --clean; delete removes every file; an unknown key is
//! its own error.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use migrator_core::backup::{self, BackupError, Progress, RestoreRequest, Side, Target};
use migrator_core::config::BackupSettings;
use migrator_core::orchestrator::commands;
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

fn pg18_client_bin() -> String {
    std::env::var("MIGRATOR_PG18_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/pg18-client"))
        .join("bin")
        .display()
        .to_string()
}

async fn digest_up_to(client: &tokio_postgres::Client, max_id: i64) -> (i64, String) {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') \
             FROM orders t WHERE t.id <= $1",
            &[&max_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_writes_restores_to_its_snapshot_and_the_store_stays_honest() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE shop")
        .await
        .unwrap();
    connect(&source, "shop")
        .await
        .batch_execute(
            "CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL); \
             CREATE TABLE customers (id int PRIMARY KEY, name text); \
             CREATE TABLE \"Ordér \"\"x\"\"\" (id int PRIMARY KEY); \
             INSERT INTO orders (item) SELECT repeat('x', 200) FROM generate_series(1, 200000); \
             INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 1000) g; \
             INSERT INTO \"Ordér \"\"x\"\"\" VALUES (1);",
        )
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut settings = settings(
        &[("p", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__P__DATABASES__INCLUDE", "shop")],
    );
    settings.backup = BackupSettings {
        dir: Some(store.path().to_owned()),
        jobs: 2,
        pg_bin_dir: vec![pg18_client_bin()],
    };
    let ctx = commands::find(&settings, "p").unwrap();

    // An application inserts the whole time.
    let writer = Writer::start(
        connect(&source, "shop").await,
        "INSERT INTO orders (item) VALUES ('during the backup')",
        Duration::from_millis(5),
    );

    // 1. The backup, with its progress.
    let seen: Mutex<Vec<Progress>> = Mutex::new(Vec::new());
    let record = |p: &Progress| seen.lock().unwrap().push(p.clone());
    let manifest = backup::create(
        &ctx,
        &settings.backup,
        Side::Source,
        None,
        &record,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let during = writer.count();
    assert!(during > 0, "the writer did not run during the backup");
    assert_eq!(manifest.databases.len(), 1);
    assert_eq!(manifest.databases[0].name, "shop");
    assert_eq!(manifest.databases[0].tables, 3);
    assert!(manifest.dump_tool.contains("15."), "{}", manifest.dump_tool);
    assert!(manifest.server_version.starts_with("15"));
    assert_eq!(manifest.roles.as_deref(), Some("roles.sql"));
    assert!(!manifest.files.is_empty());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.last(),
        Some(&Progress {
            database: "shop".into(),
            done: 3,
            total: 3
        }),
        "{seen:?}"
    );
    // The password never reached the files (it goes through the environment).
    let listed = backup::list(&settings.backup).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, manifest.key);
    assert_eq!(listed[0].manifest.as_ref(), Some(&manifest));

    // 2. Restored under a new name on the destination: exactly the snapshot's rows.
    let done = backup::restore(
        Some(&ctx),
        &settings.backup,
        &RestoreRequest {
            key: &manifest.key,
            to: Target::Side(Side::Destination),
            database: Some("shop"),
            as_name: Some("shop=restored 'x'"),
            clean: false,
            no_owner: false,
        },
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        done.join("\n")
            .contains("into database \"shop=restored 'x'\""),
        "{done:?}"
    );
    writer.stop().await;
    let restored = connect(&destination, "shop=restored 'x'").await;
    let original = connect(&source, "shop").await;
    let max_id: i64 = restored
        .query_one("SELECT max(id) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(max_id >= 200_000, "{max_id}");
    assert_eq!(
        digest_up_to(&restored, max_id).await,
        digest_up_to(&original, max_id).await
    );
    for table in ["customers", "Ordér \"x\""] {
        assert_eq!(
            table_digest(&restored, "public", table).await,
            table_digest(&original, "public", table).await,
            "{table}"
        );
    }
    // Later inserts are not in it: the dump is one snapshot.
    let source_rows: i64 = original
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        source_rows > max_id,
        "{source_rows} rows, restored up to {max_id}"
    );

    // 3. A database that exists is refused unless --clean, which says what it ended.
    let again = RestoreRequest {
        key: &manifest.key,
        to: Target::Side(Side::Destination),
        database: Some("shop"),
        as_name: Some("shop=restored 'x'"),
        clean: false,
        no_owner: false,
    };
    let refused = backup::restore(
        Some(&ctx),
        &settings.backup,
        &again,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, BackupError::Refused(_)), "{refused}");
    assert!(refused.to_string().contains("--clean"), "{refused}");
    let done = backup::restore(
        Some(&ctx),
        &settings.backup,
        &RestoreRequest {
            clean: true,
            ..again
        },
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        done.join("\n").contains("--clean: ended 1 session(s)"),
        "{done:?}"
    );

    // 4. Cancelled: nothing is left behind.
    let cancel = CancellationToken::new();
    let cancel_at_first_table = |_: &Progress| cancel.cancel();
    let cancelled = backup::create(
        &ctx,
        &settings.backup,
        Side::Source,
        None,
        &cancel_at_first_table,
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(cancelled, BackupError::Cancelled), "{cancelled}");
    assert_eq!(backup::list(&settings.backup).unwrap().len(), 1);

    // 5. Killed (its process gone before the manifest): listed as unfinished, never restored.
    let killed = store.path().join("20261204T000000Z-p-source");
    std::fs::create_dir_all(killed.join("db0")).unwrap();
    std::fs::write(killed.join("db0/toc.dat"), b"half").unwrap();
    let listed = backup::list(&settings.backup).unwrap();
    let unfinished = listed
        .iter()
        .find(|l| l.key == "20261204T000000Z-p-source")
        .unwrap();
    assert!(unfinished.manifest.is_none());
    let refused = backup::restore(
        Some(&ctx),
        &settings.backup,
        &RestoreRequest {
            key: "20261204T000000Z-p-source",
            to: Target::Side(Side::Destination),
            database: None,
            as_name: None,
            clean: false,
            no_owner: false,
        },
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("unfinished"), "{refused}");

    // 6. Damaged: one byte changed in a dump file, refused before anything is created.
    let data_file = manifest
        .files
        .iter()
        .find(|f| f.path.ends_with(".dat.gz") || f.path.ends_with(".dat"))
        .unwrap();
    let path = store.path().join(&manifest.key).join(&data_file.path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let refused = backup::restore(
        Some(&ctx),
        &settings.backup,
        &RestoreRequest {
            key: &manifest.key,
            to: Target::Side(Side::Destination),
            database: Some("shop"),
            as_name: Some("never_created"),
            clean: false,
            no_owner: false,
        },
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, BackupError::Damaged(_)), "{refused}");
    let created: i64 = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = 'never_created'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0);

    // 7. Delete removes every file; an unknown key is its own error.
    backup::delete(&settings.backup, &manifest.key).unwrap();
    assert!(!store.path().join(&manifest.key).exists());
    for key in ["nosuch", "../etc", ""] {
        let e = backup::delete(&settings.backup, key).unwrap_err();
        assert!(matches!(e, BackupError::UnknownKey(_)), "{key}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_is_dumped_with_a_new_enough_pg_dump_or_not_at_all() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut settings = settings(&[("p", &source, &destination)], &[]);
    // Only the standard locations: PostgreSQL 15's pg_dump, too old for the 18 destination
    // (unless this machine has an 18 there, which must then be the one taken).
    settings.backup = BackupSettings {
        dir: Some(store.path().to_owned()),
        jobs: 1,
        pg_bin_dir: Vec::new(),
    };
    let ctx = commands::find(&settings, "p").unwrap();
    let outcome = backup::create(
        &ctx,
        &settings.backup,
        Side::Destination,
        Some("postgres"),
        &|_| {},
        &CancellationToken::new(),
    )
    .await;
    match outcome {
        Err(BackupError::Tool(message)) => {
            assert!(message.contains("pg_dump 18 or newer"), "{message}");
            assert!(message.contains("backup.pg_bin_dir"), "{message}");
            assert!(backup::list(&settings.backup).unwrap().is_empty());
        }
        Ok(manifest) => assert!(
            manifest.dump_tool.contains(" 18."),
            "{}",
            manifest.dump_tool
        ),
        Err(other) => panic!("{other}"),
    }
    // With PostgreSQL 18's client tools named, it works.
    settings.backup.pg_bin_dir = vec![pg18_client_bin()];
    let manifest = backup::create(
        &ctx,
        &settings.backup,
        Side::Destination,
        Some("postgres"),
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        manifest.dump_tool.contains(" 18."),
        "{}",
        manifest.dump_tool
    );
    assert_eq!(manifest.side, "destination");
}

/// From a running instance (what the Backups tab's buttons and the API send): the backup runs
/// in the background, its progress and key reach the snapshot, and delete removes it; a key of
/// another mapping is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_instance_backs_up_in_the_background_and_deletes() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE shop")
        .await
        .unwrap();
    connect(&source, "shop")
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)",
        )
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().display().to_string();
    let settings = settings(
        &[("p", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__P__DATABASES__INCLUDE", "shop"),
            ("MIGRATOR__BACKUP__DIR", dir.as_str()),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = migrator_core::orchestrator::start(&settings, shutdown.clone()).unwrap();
    let started = migrator_core::orchestrator::request_backup(&handle.commands, "p", Side::Source)
        .await
        .unwrap();
    assert!(started[0].contains("started"), "{started:?}");
    let mut status = handle.status.clone();
    let run = wait_until("the backup to finish", Duration::from_secs(60), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            match snapshot.mapping("p").and_then(|m| m.backup.clone()) {
                Some(run) if run.finished_at.is_some() => Ok(run),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert_eq!(run.error, None);
    let key = run.key.unwrap();
    assert_eq!(
        run.progress,
        Some(Progress {
            database: "shop".into(),
            done: 1,
            total: 1
        })
    );
    assert!(
        backup::list(&settings.backup).unwrap()[0]
            .manifest
            .is_some()
    );
    let refused = migrator_core::orchestrator::request_backup_delete(
        &handle.commands,
        "p",
        "20261204T000000Z-other-source",
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("no backup"), "{refused}");
    migrator_core::orchestrator::request_backup_delete(&handle.commands, "p", &key)
        .await
        .unwrap();
    assert!(backup::list(&settings.backup).unwrap().is_empty());
    shutdown.cancel();
    handle.join.await.unwrap();
}
