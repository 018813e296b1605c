//! A source behind PgBouncer in transaction pooling mode, as platform teams run it (Debian's
//! `pgbouncer`, started by the test harness): the applications' pooled URL alone is detected
//! and refused with the fix; with `direct_url` beside it the database migrates while an
//! application keeps writing through the pooler, the dashboard's snapshot shows the pooler's
//! client connections, and the cutover the instructions give (PAUSE on the console, zero lag,
//! mark complete) loses nothing.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use migrator_core::config::{ConfigSource, Settings, load};
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::testkit::Cluster;
use migrator_core::testkit::pooler::Pooler;
use tokio_util::sync::CancellationToken;

fn settings_from(env: HashMap<String, String>) -> Settings {
    load(&ConfigSource {
        file: None,
        env: Some(env),
    })
    .expect("valid settings")
}

/// The mapping `pool`: the destination as usual, the source given by `source`.
fn env_with(destination: &Cluster, source: &[(&str, String)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = destination
        .mapping_env("pool", "destination")
        .into_iter()
        .collect();
    env.insert("MIGRATOR__MIGRATION__POLL_INTERVAL".into(), "500ms".into());
    env.insert("MIGRATOR__MIGRATION__STABLE_FOR".into(), "2s".into());
    env.insert(
        "MIGRATOR__MAPPINGS__POOL__DATABASES__INCLUDE".into(),
        "shop".into(),
    );
    for (k, v) in source {
        env.insert((*k).into(), v.clone());
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_behind_pgbouncer_is_refused_then_migrates_through_direct_url() {
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
             INSERT INTO orders (item) SELECT 'seed ' || g FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    let pooler = Pooler::start(&source, &["postgres", "shop"]).unwrap();

    // 1. Only the applications' pooled URL, without a hint: PgBouncer's answer gives it away.
    let pooled_only = settings_from(env_with(
        &destination,
        &[(
            "MIGRATOR__MAPPINGS__POOL__SOURCE__URL",
            pooler.url("postgres"),
        )],
    ));
    let said = match commands::status(&pooled_only, None).await {
        Err(e) => e.to_string(),
        Ok(snapshot) => {
            let m = snapshot.mapping("pool").unwrap();
            format!("{:?} {:?}", m.findings, m.last_error)
        }
    };
    for says in ["unsupported startup parameter", "pooler", "direct_url"] {
        assert!(said.contains(says), "{says} not in: {said}");
    }
    assert!(!said.contains(source.password()), "a password in: {said}");

    // 2. The pooled URL as handed over, the direct address beside it, the pooler's console.
    let url = format!(
        "{}?pgbouncer=true&connection_limit=5&pool_timeout=10&schema=public\
         &connect_timeout=15&application_name=pgmig-pooled",
        pooler.url("postgres")
    );
    let direct = format!("postgresql://postgres@127.0.0.1:{}/postgres", source.port());
    let settings = settings_from(env_with(
        &destination,
        &[
            ("MIGRATOR__MAPPINGS__POOL__SOURCE__URL", url),
            ("MIGRATOR__MAPPINGS__POOL__SOURCE__DIRECT_URL", direct),
            (
                "MIGRATOR__MAPPINGS__POOL__POOLER__URL",
                pooler.url("pgbouncer"),
            ),
        ],
    ));

    // An application writes through the pooler the whole time.
    let (client, connection) = pooler
        .pg_config("shop")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let writer = Writer::start(
        client,
        "INSERT INTO orders (item) VALUES ('through the pooler')",
        Duration::from_millis(20),
    );

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let mapping = wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("pool").cloned();
            match m {
                Some(m) if m.phase == Phase::CutoverReady && !m.pooler.is_empty() => Ok(m),
                other => Err(format!("{other:#?}")),
            }
        }
    })
    .await;
    // The tool's sessions went to the server directly, with the url's application_name.
    let tools: i64 = connect(&source, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgmig-pooled'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        tools > 0,
        "no session of the tool with the url's application_name"
    );
    // The snapshot shows the pooler's entry of the database and the application's connection.
    let entry = mapping
        .pooler
        .iter()
        .find(|e| e.alias == "shop")
        .unwrap_or_else(|| panic!("{:?}", mapping.pooler));
    assert_eq!(entry.database, "shop");
    assert!(entry.clients >= 1, "{entry:?}");
    assert!(!entry.paused);
    let text = &mapping.instructions;
    for says in ["PAUSE \"shop\";", "RESUME \"shop\";", "RELOAD;"] {
        assert!(text.contains(says), "{says} not in:\n{text}");
    }
    assert!(!text.contains(source.password()), "{text}");
    assert!(
        mapping.findings.iter().all(|f| !f.is_blocking()),
        "{:?}",
        mapping.findings
    );

    // The cutover as the instructions give it: PAUSE holds the application's next insert in
    // PgBouncer; the lag drains; mark complete; nothing is lost.
    let console = pooler.pg_config("pgbouncer");
    let (admin, connection) = console.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.simple_query("PAUSE \"shop\"").await.unwrap();
    // PAUSE returns once the insert in flight has finished; its reply may reach the writer a
    // moment later. Counted after that, nothing more may get through.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held_at = writer.count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        writer.count(),
        held_at,
        "an insert got through a paused pooler"
    );
    shutdown.cancel();
    handle.join.await.unwrap();
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    commands::complete(&settings, "pool", false).await.unwrap();
    let rows = assert_same_contents(&source, &destination, "shop").await;
    assert_eq!(rows as u64, 5000 + held_at);
    admin.simple_query("RESUME \"shop\"").await.unwrap();
    writer.stop().await;
}

/// A pooler set to ignore `options` (a common setting) lets the tool's ordinary sessions through
/// without them: what gives it away is the replication connection, which it refuses. The
/// database then shows the refusal with the fix, and nothing is created on the destination
/// beyond the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pooler_that_ignores_options_is_found_by_the_replication_connection() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE shop")
        .await
        .unwrap();
    connect(&source, "shop")
        .await
        .batch_execute("CREATE TABLE orders (id bigserial PRIMARY KEY, item text)")
        .await
        .unwrap();
    let pooler = Pooler::start_ignoring(
        &source,
        &["postgres", "shop"],
        &["extra_float_digits", "options"],
    )
    .unwrap();
    let settings = settings_from(env_with(
        &destination,
        &[(
            "MIGRATOR__MAPPINGS__POOL__SOURCE__URL",
            pooler.url("postgres"),
        )],
    ));
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let said = wait_until("the pooler to be named", Duration::from_secs(90), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let Some(m) = snapshot.mapping("pool") else {
                return Err("no mapping yet".to_owned());
            };
            let mut texts: Vec<String> = m.findings.iter().map(ToString::to_string).collect();
            texts.extend(m.last_error.clone());
            for d in &m.databases {
                texts.extend(d.findings.iter().map(ToString::to_string));
                texts.extend(d.last_error.clone());
            }
            let all = texts.join("\n");
            if all.contains("direct_url") {
                Ok(all)
            } else {
                Err(all)
            }
        }
    })
    .await;
    eprintln!("what the tool said:\n{said}");
    assert!(
        said.contains("unsupported startup parameter: replication")
            || said.contains("transaction pooler"),
        "{said}"
    );
    assert!(!said.contains(source.password()), "{said}");
    shutdown.cancel();
    handle.join.await.unwrap();
    // No slot was left behind on the source.
    let slots: i64 = connect(&source, "postgres")
        .await
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0);
}
