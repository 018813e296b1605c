//! Purge: start a database of a mapping over, on real servers. From a running instance
//! (`Command::Purge`, what the API and the dashboard send) in the middle of catch-up under a
//! write load, and from the command line (`--drop`); each time the database reaches cutover
//! ready again with the same rows on both sides. And every refusal: a database the mapping
//! does not migrate, one the tool did not create, a table that does not exist, another session
//! on the destination database, and a completed database.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::config::Settings;
use migrator_core::orchestrator::{self, Handle, commands};
use migrator_core::phase::Phase;
use migrator_core::phases::purge::Request;
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

async fn wait_ready(handle: &Handle, db: &str) {
    let mut status = handle.status.clone();
    wait_until(
        &format!("{db} cutover ready"),
        Duration::from_secs(120),
        || {
            let snapshot = status.borrow_and_update().clone();
            let db = db.to_owned();
            async move {
                let found = snapshot
                    .mapping("p")
                    .and_then(|m| m.databases.iter().find(|d| d.name == db).cloned());
                match found {
                    Some(d) if d.phase == Phase::CutoverReady => Ok(()),
                    other => Err(format!("{other:#?}")),
                }
            }
        },
    )
    .await;
}

fn refused(result: Result<Vec<String>, commands::CommandError>) -> String {
    match result {
        Err(e @ commands::CommandError::Refused(_)) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn run(settings: &Settings) -> (Handle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(settings, shutdown.clone()).unwrap();
    (handle, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purged_database_is_copied_again_and_every_refusal_says_why() {
    let (source, destination) = Cluster::start_pair().unwrap();
    let admin = connect(&source, "postgres").await;
    for db in ["shop", "theirs"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }
    connect(&source, "shop")
        .await
        .batch_execute(
            "CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL); \
             CREATE TABLE lines (id bigserial PRIMARY KEY, order_id bigint REFERENCES orders, n int); \
             INSERT INTO orders (item) SELECT 'seed ' || g FROM generate_series(1, 20000) g; \
             INSERT INTO lines (order_id, n) SELECT g, 1 FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
    // `theirs` exists on the destination with data the tool did not create.
    connect(&destination, "postgres")
        .await
        .batch_execute("CREATE DATABASE theirs")
        .await
        .unwrap();
    connect(&destination, "theirs")
        .await
        .batch_execute("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)")
        .await
        .unwrap();
    let settings = settings(
        &[("p", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__P__DATABASES__INCLUDE", "shop,theirs")],
    );

    // A writer that never stops (bigserial inserts).
    let writer = Writer::start(
        connect(&source, "shop").await,
        "INSERT INTO orders (item) VALUES ('load')",
        Duration::from_millis(20),
    );

    // 1. From the running instance, in the middle of catch-up.
    let (handle, shutdown) = run(&settings).await;
    wait_ready(&handle, "shop").await;
    let done = orchestrator::request_purge(&handle.commands, "p", "shop", Request::default())
        .await
        .unwrap();
    let text = done.join("\n");
    for says in [
        "dropped the subscription",
        "the replication slot",
        "emptied 2 table(s)",
        "starts over",
    ] {
        assert!(text.contains(says), "{says} not in:\n{text}");
    }
    // Refusals from the running instance: a database it does not migrate, one it did not
    // create, a table that does not exist.
    let said = refused(
        orchestrator::request_purge(&handle.commands, "p", "elsewhere", Request::default()).await,
    );
    assert!(said.contains("does not migrate"), "{said}");
    let said = refused(
        orchestrator::request_purge(&handle.commands, "p", "theirs", Request::default()).await,
    );
    assert!(said.contains("someone else's data"), "{said}");
    wait_ready(&handle, "shop").await;
    let said = refused(
        orchestrator::request_purge(
            &handle.commands,
            "p",
            "shop",
            Request {
                tables: vec!["public.nosuch".into()],
                drop: false,
            },
        )
        .await,
    );
    assert!(said.contains("no table public.nosuch"), "{said}");
    // Another session on the destination database: writes may be pointed at it.
    let mut app = destination.pg_config("shop");
    app.application_name("the-application");
    let (app, connection) = app.connect(tokio_postgres::NoTls).await.unwrap();
    let app_task = tokio::spawn(connection);
    let said = refused(
        orchestrator::request_purge(&handle.commands, "p", "shop", Request::default()).await,
    );
    assert!(said.contains("other session(s)"), "{said}");
    assert!(said.contains("the-application"), "{said}");
    drop(app);
    let _ = app_task.await;
    shutdown.cancel();
    handle.join.await.unwrap();

    // 2. From the command line (no instance running): drop the database; the next run creates
    //    and copies it again.
    let request = Request {
        tables: Vec::new(),
        drop: true,
    };
    let done = commands::purge(&settings, "p", "shop", &request)
        .await
        .unwrap();
    assert!(done.join("\n").contains("dropped database"), "{done:?}");
    let (handle, shutdown) = run(&settings).await;
    wait_ready(&handle, "shop").await;
    shutdown.cancel();
    handle.join.await.unwrap();

    // Nothing was lost: writes stop, the lag drains, both sides hold the same rows.
    let inserted = writer.stop().await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    let rows = assert_same_contents(&source, &destination, "shop").await;
    assert_eq!(rows as u64, 40_000 + inserted);
    // The database that was not ours is untouched.
    let precious: i64 = connect(&destination, "theirs")
        .await
        .query_one("SELECT count(*) FROM precious", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(precious, 1);

    // 3. Once completed, a database is production data: refused.
    let only_shop = settings_with_shop_only(&source, &destination);
    commands::complete(&only_shop, "p", false).await.unwrap();
    let said = refused(commands::purge(&only_shop, "p", "shop", &Request::default()).await);
    assert!(said.contains("is completed"), "{said}");
}

fn settings_with_shop_only(source: &Cluster, destination: &Cluster) -> Settings {
    settings(
        &[("p", source, destination)],
        &[("MIGRATOR__MAPPINGS__P__DATABASES__INCLUDE", "shop")],
    )
}
