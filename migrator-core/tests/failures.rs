//! Every way replication dies shows as a finding on the status, the light is not green while it
//! stands, and it clears once the cause is fixed; a copy that fails every time backs off instead
//! of reading the whole source again in a loop.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::findings::Finding;
use migrator_core::orchestrator::{self, request_retry};
use migrator_core::phase::Phase;
use migrator_core::status::{DatabaseStatus, Snapshot};
use migrator_core::testkit::{Cluster, ClusterOptions};
use tokio_util::sync::CancellationToken;

fn database<'a>(snapshot: &'a Snapshot, mapping: &str, db: &str) -> Option<&'a DatabaseStatus> {
    snapshot
        .mapping(mapping)?
        .databases
        .iter()
        .find(|d| d.name == db)
}

fn finding<'a>(db: &'a DatabaseStatus, code: &str) -> Option<&'a Finding> {
    db.findings.iter().find(|f| f.code == code)
}

/// Waits until `check` holds for database `db` of `mapping` in the live snapshot.
async fn wait_db(
    handle: &orchestrator::Handle,
    mapping: &str,
    db: &str,
    what: &str,
    deadline: Duration,
    check: impl Fn(&DatabaseStatus) -> bool,
) -> DatabaseStatus {
    let mut status = handle.status.clone();
    wait_until(what, deadline, || {
        let snapshot = status.borrow_and_update().clone();
        let found = database(&snapshot, mapping, db)
            .filter(|d| check(d))
            .cloned();
        async move { found.ok_or_else(|| serde_json::to_string_pretty(&*snapshot).unwrap()) }
    })
    .await
}

/// `subbinary` and `substream` of the one subscription of the connected database.
async fn subscription_options(dst: &tokio_postgres::Client) -> (bool, String) {
    let row = dst
        .query_one(
            "SELECT subbinary, substream::text FROM pg_subscription",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn create_app(source: &Cluster) {
    connect(source, "postgres")
        .await
        .batch_execute("CREATE DATABASE app")
        .await
        .unwrap();
    connect(source, "app")
        .await
        .batch_execute(
            "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL); \
             INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 1000) g;",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_error_and_a_lost_slot_are_findings_that_clear_when_fixed() {
    let (source, destination) = Cluster::start_pair().unwrap();
    create_app(&source).await;
    let settings = settings(
        &[("m", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app")],
    );
    let names = migrator_core::naming::ReplicationNames::new("m", "app");
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let ready = Duration::from_secs(90);
    wait_db(&handle, "m", "app", "cutover ready", ready, |d| {
        d.phase == Phase::CutoverReady
    })
    .await;

    // 1. A row on the destination that the source then inserts too: apply fails in a loop.
    let dst = connect(&destination, "app").await;
    let src = connect(&source, "app").await;
    dst.batch_execute("INSERT INTO items (id, name) VALUES (5000000, 'only on the destination')")
        .await
        .unwrap();
    src.batch_execute("INSERT INTO items (id, name) VALUES (5000000, 'from the source')")
        .await
        .unwrap();
    // Two ticks (0.5 s each) after the first error is counted, plus PostgreSQL's first attempt.
    let failing = wait_db(
        &handle,
        "m",
        "app",
        "apply_failing",
        Duration::from_secs(10),
        |d| finding(d, "apply_failing").is_some(),
    )
    .await;
    assert_eq!(failing.phase, Phase::Problematic);
    assert!(!failing.cutover_conditions_met);
    let f = finding(&failing, "apply_failing").unwrap();
    assert!(f.is_blocking() && f.fix.contains("duplicate key"), "{f:?}");
    assert_ne!(
        handle.status.borrow().mapping("m").unwrap().phase,
        Phase::CutoverReady
    );

    dst.batch_execute("DELETE FROM items WHERE id = 5000000")
        .await
        .unwrap();
    let fixed = wait_db(
        &handle,
        "m",
        "app",
        "the apply finding to clear",
        ready,
        |d| d.phase == Phase::CutoverReady,
    )
    .await;
    assert!(fixed.findings.is_empty(), "{:?}", fixed.findings);
    wait_until_replicated(&source, Duration::from_secs(30)).await;
    assert_same_contents(&source, &destination, "app").await;

    // 2. A slot the source invalidates: small max_slot_wal_keep_size, the subscription disabled
    //    by hand, and WAL written meanwhile.
    let admin = connect(&source, "postgres").await;
    for sql in [
        "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'",
        "SELECT pg_reload_conf()",
        "CREATE TABLE filler (id int, pad text)",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    dst.batch_execute(&format!(
        "ALTER SUBSCRIPTION {} DISABLE",
        names.subscription
    ))
    .await
    .unwrap();
    wait_for("the slot to be invalidated", Duration::from_secs(60), || {
        let admin = &admin;
        let slot = names.slot.clone();
        async move {
            admin
                .batch_execute(
                    "INSERT INTO filler SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g; \
                     SELECT pg_switch_wal(); CHECKPOINT;",
                )
                .await
                .unwrap();
            let status: Option<String> = admin
                .query_one(
                    "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await
                .unwrap()
                .get(0);
            (status.as_deref() == Some("lost")).then_some(())
        }
    })
    .await;
    let lost = wait_db(
        &handle,
        "m",
        "app",
        "slot_lost",
        Duration::from_secs(5),
        |d| finding(d, "slot_lost").is_some(),
    )
    .await;
    assert_eq!(lost.phase, Phase::Problematic);
    let fix = finding(&lost, "slot_lost").unwrap().fix.clone();
    assert!(
        fix.contains("DROP SUBSCRIPTION") && fix.contains(&names.slot),
        "{fix}"
    );

    // The fix the finding gives: raise the limit, drop the subscription, the destination
    // database and the slot; the tool copies the database again.
    for sql in [
        "ALTER SYSTEM RESET max_slot_wal_keep_size",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let sub = &names.subscription;
    dst.batch_execute(&format!(
        "ALTER SUBSCRIPTION {sub} SET (slot_name = NONE); DROP SUBSCRIPTION {sub};"
    ))
    .await
    .unwrap();
    drop(dst);
    connect(&destination, "postgres")
        .await
        .batch_execute("DROP DATABASE app WITH (FORCE)")
        .await
        .unwrap();
    admin
        .execute("SELECT pg_drop_replication_slot($1)", &[&names.slot])
        .await
        .unwrap();
    src.batch_execute("INSERT INTO items (name) VALUES ('written while it was lost')")
        .await
        .unwrap();
    let again = wait_db(&handle, "m", "app", "copied again and ready", ready, |d| {
        d.phase == Phase::CutoverReady
    })
    .await;
    assert!(again.findings.is_empty(), "{:?}", again.findings);
    shutdown.cancel();
    handle.join.await.unwrap();
    wait_until_replicated(&source, Duration::from_secs(30)).await;
    assert_same_contents(&source, &destination, "app").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_that_fails_every_time_backs_off_and_resumes_when_asked() {
    // Every replication command is logged, so the source's log counts the copy attempts.
    let source =
        Cluster::start(&ClusterOptions::source().with("log_replication_commands", "on")).unwrap();
    let destination = Cluster::start(&ClusterOptions::destination()).unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE bad")
        .await
        .unwrap();
    // A domain constraint added NOT VALID over rows that violate it: the destination's copy of
    // the domain refuses them, every time.
    let src = connect(&source, "bad").await;
    src.batch_execute(
        "CREATE DOMAIN positive AS int; \
         CREATE TABLE readings (id int PRIMARY KEY, value positive); \
         INSERT INTO readings SELECT g, CASE WHEN g = 7 THEN -1 ELSE g END FROM generate_series(1, 100) g; \
         ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0) NOT VALID;",
    )
    .await
    .unwrap();
    let settings = settings(
        &[("m", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "bad")],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let failed = wait_db(
        &handle,
        "m",
        "bad",
        "copy_failed",
        Duration::from_secs(60),
        |d| finding(d, "copy_failed").is_some(),
    )
    .await;
    let f = finding(&failed, "copy_failed").unwrap();
    assert!(f.message.contains("positive_check"), "{f:?}");

    // Two minutes of a copy that cannot succeed.
    let mut status = handle.status.clone();
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < end {
        let snapshot = status.borrow_and_update().clone();
        let db = database(&snapshot, "m", "bad").unwrap();
        assert_ne!(db.phase, Phase::CutoverReady);
        assert!(
            finding(db, "copy_failed").is_some() || finding(db, "copy_failing").is_some(),
            "{:?}",
            db.findings
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let attempts = source
        .server_log()
        .matches("received replication command: CREATE_REPLICATION_SLOT")
        .count();
    eprintln!("copy attempts in two minutes: {attempts}");
    assert!(
        (2..=5).contains(&attempts),
        "{attempts} copy attempts in two minutes"
    );
    // No slot holds WAL for the failed copy while it waits.
    let slots: i64 = connect(&source, "postgres")
        .await
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0);

    // The operator fixes the data and asks for a retry: the copy starts at once and succeeds.
    src.batch_execute("UPDATE readings SET value = 7 WHERE id = 7")
        .await
        .unwrap();
    let answer = request_retry(&handle.commands, "m").await.unwrap();
    assert!(answer[0].contains("starts again"), "{answer:?}");
    let ready = wait_db(
        &handle,
        "m",
        "bad",
        "cutover ready after the retry",
        Duration::from_secs(30),
        |d| d.phase == Phase::CutoverReady,
    )
    .await;
    assert!(ready.findings.is_empty(), "{:?}", ready.findings);
    shutdown.cancel();
    handle.join.await.unwrap();
    assert_same_contents(&source, &destination, "bad").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_waiting_for_an_open_transaction_names_it_and_gives_up_after_the_timeout() {
    let (source, destination) = Cluster::start_pair().unwrap();
    create_app(&source).await;
    // A transaction that holds an xid on the source and stays open.
    let holder = connect(&source, "postgres").await;
    holder
        .batch_execute("CREATE TABLE note (n int); BEGIN; INSERT INTO note VALUES (1);")
        .await
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let settings = settings(
        &[("m", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app"),
            ("MIGRATOR__MIGRATION__SLOT_CREATE_TIMEOUT", "6s"),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let waiting = wait_db(
        &handle,
        "m",
        "app",
        "slot_waiting",
        Duration::from_secs(30),
        |d| finding(d, "slot_waiting").is_some(),
    )
    .await;
    let f = finding(&waiting, "slot_waiting").unwrap();
    assert!(f.message.contains(&format!("pid {pid} ")), "{f:?}");
    // pg_stat_activity shows the session's last statement.
    assert!(f.message.contains("SELECT pg_backend_pid()"), "{f:?}");

    let failed = wait_db(
        &handle,
        "m",
        "app",
        "copy_failed",
        Duration::from_secs(30),
        |d| finding(d, "copy_failed").is_some(),
    )
    .await;
    let f = finding(&failed, "copy_failed").unwrap();
    assert!(f.message.contains("slot_create_timeout"), "{f:?}");
    // The waiting walsender was stopped and no slot is left behind.
    let admin = connect(&source, "postgres").await;
    wait_for("no slot on the source", Duration::from_secs(10), || {
        let admin = &admin;
        async move {
            let n: i64 = admin
                .query_one("SELECT count(*) FROM pg_replication_slots", &[])
                .await
                .unwrap()
                .get(0);
            (n == 0).then_some(())
        }
    })
    .await;

    holder.batch_execute("COMMIT").await.unwrap();
    request_retry(&handle.commands, "m").await.unwrap();
    let ready = wait_db(
        &handle,
        "m",
        "app",
        "cutover ready",
        Duration::from_secs(60),
        |d| d.phase == Phase::CutoverReady,
    )
    .await;
    assert!(ready.findings.is_empty(), "{:?}", ready.findings);
    shutdown.cancel();
    handle.join.await.unwrap();
    assert_same_contents(&source, &destination, "app").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_of_a_database_no_longer_migrated_blocks_until_dropped() {
    let (source, destination) = Cluster::start_pair().unwrap();
    create_app(&source).await;
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE DATABASE old")
        .await
        .unwrap();
    // What an earlier run that still migrated "old" would have left behind.
    let slot = migrator_core::naming::object_name("m", "old");
    connect(&source, "old")
        .await
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .unwrap();
    let settings = settings(
        &[("m", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app")],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let orphan = wait_until("orphan_slot", Duration::from_secs(30), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("m").ok_or("no mapping")?;
            m.findings
                .iter()
                .find(|f| f.code == "orphan_slot")
                .cloned()
                .ok_or_else(|| serde_json::to_string_pretty(&*snapshot).unwrap())
        }
    })
    .await;
    assert!(orphan.is_blocking());
    assert!(
        orphan
            .fix
            .contains(&format!("pg_drop_replication_slot('{slot}')")),
        "{orphan:?}"
    );
    // Nothing is created while it stands (it stood from the first instance check on).
    assert_ne!(
        handle.status.borrow().mapping("m").unwrap().phase,
        Phase::CutoverReady
    );
    let created: i64 = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = 'app'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0);

    connect(&source, "postgres")
        .await
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .unwrap();
    wait_db(
        &handle,
        "m",
        "app",
        "cutover ready",
        Duration::from_secs(90),
        |d| d.phase == Phase::CutoverReady,
    )
    .await;
    assert!(
        handle
            .status
            .borrow()
            .mapping("m")
            .unwrap()
            .findings
            .is_empty(),
        "the orphan finding cleared"
    );
    shutdown.cancel();
    handle.join.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_that_falls_behind_a_writing_source_is_reported_with_its_rates() {
    let (source, destination) = Cluster::start_pair().unwrap();
    create_app(&source).await;
    // A short window, so the test does not wait the default three minutes.
    let first = settings(
        &[("m", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app"),
            ("MIGRATOR__MIGRATION__APPLY_BEHIND_AFTER", "8s"),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&first, shutdown.clone()).unwrap();
    let ready = Duration::from_secs(90);
    wait_db(&handle, "m", "app", "cutover ready", ready, |d| {
        d.phase == Phase::CutoverReady
    })
    .await;

    // A session on the destination holds the table: the apply worker waits on its lock while
    // the source writes about 4 MB of WAL a second.
    let holder = connect(&destination, "app").await;
    holder
        .batch_execute("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let src = connect(&source, "app").await;
    let writer = Writer::start(
        connect(&source, "app").await,
        "INSERT INTO items (name) SELECT repeat(md5(g::text), 30) FROM generate_series(1, 200) g",
        Duration::from_millis(50),
    );
    let behind = wait_db(
        &handle,
        "m",
        "app",
        "apply_behind",
        Duration::from_secs(60),
        |d| finding(d, "apply_behind").is_some(),
    )
    .await;
    let f = finding(&behind, "apply_behind").unwrap();
    assert!(!f.is_blocking(), "a warning: nothing is lost");
    // The rates it names: the source writes, the stalled destination applies next to nothing.
    let rate = |after: &str| -> f64 {
        let rest = &f.message[f.message.find(after).expect(after) + after.len()..];
        rest[..rest.find(" MB/min").unwrap()].parse().unwrap()
    };
    let (wrote, applied) = (rate("the source wrote "), rate(" applied "));
    assert!(wrote > 60.0 && applied < wrote / 10.0, "{f:?}");
    assert!(f.fix.contains("pg_stat_activity"), "{f:?}");
    assert_ne!(behind.phase, Phase::CutoverReady);

    // The lock goes, the writes stop: the lag drains and the warning clears by itself.
    let written = writer.stop().await;
    assert!(written > 100, "{written} inserts");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let caught_up = wait_db(&handle, "m", "app", "caught up again", ready, |d| {
        d.phase == Phase::CutoverReady
    })
    .await;
    assert!(caught_up.findings.is_empty(), "{:?}", caught_up.findings);
    shutdown.cancel();
    handle.join.await.unwrap();

    // Other subscription options in the configuration: the restarted tool gives them to the
    // running subscription, and rows written meanwhile still arrive.
    let dst = connect(&destination, "app").await;
    assert_eq!(subscription_options(&dst).await, (false, "p".to_owned()));
    let changed = settings(
        &[("m", &source, &destination)],
        &[
            ("MIGRATOR__MAPPINGS__M__DATABASES__INCLUDE", "app"),
            ("MIGRATOR__MIGRATION__SUBSCRIPTION_BINARY", "true"),
            ("MIGRATOR__MIGRATION__SUBSCRIPTION_STREAMING", "off"),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&changed, shutdown.clone()).unwrap();
    wait_for("the new options", Duration::from_secs(30), || {
        let dst = &dst;
        async move { (subscription_options(dst).await == (true, "f".to_owned())).then_some(()) }
    })
    .await;
    src.batch_execute(
        "INSERT INTO items (name) SELECT 'after the options' FROM generate_series(1, 100)",
    )
    .await
    .unwrap();
    wait_db(&handle, "m", "app", "cutover ready with them", ready, |d| {
        d.phase == Phase::CutoverReady
    })
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();
    wait_until_replicated(&source, Duration::from_secs(30)).await;
    assert_same_contents(&source, &destination, "app").await;
}
