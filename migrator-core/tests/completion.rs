//! Mark complete that is interrupted at every step is finished by the tool, and only counts as
//! completed once neither slot nor publication is left on the source.
//!
//! A killed process leaves nothing but what it did to the databases, so "killed after step k" is
//! the state left by running the first k steps of the completion (the library's own
//! `complete::run_steps`); the reconcile loop started afterwards must finish each of them, and two
//! `complete` commands at once must be harmless. (tests/restart.rs SIGKILLs the binary in the
//! middle of a real `complete` as well.)

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator::{self, commands};
use migrator_core::pg::Session;
use migrator_core::phase::Phase;
use migrator_core::phases::MappingContext;
use migrator_core::phases::complete::{self, Step};
use migrator_core::testkit::Cluster;
use tokio_util::sync::CancellationToken;

const MAPPING: &str = "done";

/// One database per way of being interrupted, plus one left alone.
const DATABASES: [&str; 6] = [
    "after_sequences",
    "after_mark",
    "after_disable",
    "after_slot_drop",
    "after_publication_drop",
    "untouched",
];

/// Databases whose completion had not begun: replication goes on.
fn not_begun(db: &str) -> bool {
    matches!(db, "after_sequences" | "untouched")
}

async fn create_databases(source: &Cluster) {
    let admin = connect(source, "postgres").await;
    for db in DATABASES {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let c = connect(source, db).await;
        c.batch_execute(
            "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL); \
             CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text); \
             INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g; \
             INSERT INTO audit (what) SELECT 'created ' || g FROM generate_series(1, 200) g;",
        )
        .await
        .unwrap();
    }
}

async fn wait_for_phase(
    handle: &orchestrator::Handle,
    what: &str,
    want: impl Fn(&str, Phase) -> bool,
) -> String {
    let mut status = handle.status.clone();
    wait_until(what, Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        let ok = snapshot.mapping(MAPPING).is_some_and(|m| {
            m.databases.len() == DATABASES.len()
                && m.databases.iter().all(|d| want(&d.name, d.phase))
        });
        async move {
            if ok {
                Ok(String::new())
            } else {
                Err(serde_json::to_string_pretty(&*snapshot).unwrap())
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completion_interrupted_at_every_step_is_finished_and_leaves_nothing_on_the_source() {
    let (source, destination) = Cluster::start_pair().unwrap();
    create_databases(&source).await;
    let settings = settings(
        &[(MAPPING, &source, &destination)],
        &[(
            "MIGRATOR__MAPPINGS__DONE__DATABASES__INCLUDE",
            &DATABASES.join(","),
        )],
    );
    let ctx =
        MappingContext::new(MAPPING, &settings.mappings[MAPPING], &settings.migration).unwrap();

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    wait_for_phase(&handle, "every database cutover ready", |_, p| {
        p == Phase::CutoverReady
    })
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();

    // Writes after the last look, which the completion must carry over (sequences included).
    for db in DATABASES {
        connect(&source, db)
            .await
            .batch_execute(
                "INSERT INTO items (name) SELECT 'late ' || g FROM generate_series(1, 50) g; \
                 INSERT INTO audit (what) VALUES ('late');",
            )
            .await
            .unwrap();
    }
    wait_until_replicated(&source, Duration::from_secs(60)).await;

    // "Killed" after each step: the first k steps of the completion, k = 1..=5.
    for (k, db) in DATABASES[..5].iter().enumerate() {
        let names = ctx.names(db);
        let src = Session::new(connect(&source, db).await, format!("source {db}"));
        let dst = Session::new(connect(&destination, db).await, format!("destination {db}"));
        complete::run_steps(&ctx, db, &names, &src, &dst, &Step::ALL[..=k])
            .await
            .unwrap();
    }

    // One look: each database whose completion had begun (the marker is the first change) is
    // Completing: not "disabled by hand", not completed while its slot or publication is still
    // on the source. Killed after the sequence sync alone, nothing has begun: still replicating.
    let look = commands::status(&settings, Some(MAPPING)).await.unwrap();
    let mapping = look.mapping(MAPPING).unwrap();
    for db in &mapping.databases {
        let want = if not_begun(&db.name) {
            Phase::CatchUp // one look cannot know for how long the conditions have held
        } else {
            Phase::Completing
        };
        assert_eq!(db.phase, want, "{}: {:#?}", db.name, db.findings);
        assert!(
            db.findings
                .iter()
                .all(|f| f.code != "subscription_disabled" && f.code != "slot_missing"),
            "{}: {:?}",
            db.name,
            db.findings
        );
    }

    // The reconcile loop finishes every interrupted completion by itself.
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    wait_for_phase(
        &handle,
        "the begun completions finished, the others ready",
        |db, p| {
            if not_begun(db) {
                p == Phase::CutoverReady
            } else {
                p == Phase::Completed
            }
        },
    )
    .await;
    shutdown.cancel();
    handle.join.await.unwrap();
    let begun: Vec<&str> = DATABASES.into_iter().filter(|db| !not_begun(db)).collect();
    assert_eq!(
        source_leftovers(&source, &begun).await,
        (2, 0),
        "only the slots of the two databases whose completion had not begun are left"
    );

    // Two completes at once: one takes the mapping's lease and completes; the other either
    // finds it held and is refused naming the holder, or comes after and finds it all done.
    let (a, b) = tokio::join!(
        commands::complete(&settings, MAPPING, false),
        commands::complete(&settings, MAPPING, false)
    );
    let mut done = 0;
    for outcome in [a, b] {
        match outcome {
            Ok(lines) => {
                assert_eq!(lines.len(), 6, "{lines:?}");
                done += 1;
            }
            Err(e @ commands::CommandError::Held { .. }) => {
                assert!(e.to_string().contains("held by another instance"), "{e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(done >= 1);
    let mut dbs: Vec<&str> = DATABASES.to_vec();
    dbs.push("postgres");
    assert_eq!(source_leftovers(&source, &dbs).await, (0, 0));
    let after = commands::status(&settings, Some(MAPPING)).await.unwrap();
    let mapping = after.mapping(MAPPING).unwrap();
    assert_eq!(mapping.phase, Phase::Completed, "{mapping:#?}");

    for db in DATABASES {
        let rows = assert_same_contents(&source, &destination, db).await;
        assert_eq!(rows, 500 + 50 + 200 + 1, "{db}");
        // The destination's sequences are ahead of every value the source handed out: the
        // application's next inserts there succeed.
        assert_sequences_ahead(&source, &destination, db).await;
        connect(&destination, db)
            .await
            .batch_execute(
                "INSERT INTO items (name) VALUES ('after cutover'); \
                 INSERT INTO audit (what) VALUES ('after cutover');",
            )
            .await
            .unwrap_or_else(|e| panic!("{db}: insert after cutover: {e}"));
    }
}
