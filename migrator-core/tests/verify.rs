//! `verify`, PostgreSQL 15 -> 18: equal data verifies equal online under a write load and
//! exactly after it; rows changed, deleted or added on the destination behind the
//! subscription's back are found with their range and key; values that print differently per
//! session (time zones, float digits, date and interval styles) or by type (floats, numeric,
//! jsonb key order, arrays of enums, composites, domains) compare equal when equal.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator::{self, commands};
use migrator_core::phase::Phase;
use migrator_core::phases::MappingContext;
use migrator_core::status::{VerifyMode, VerifyOutcome, VerifyStatus};
use migrator_core::testkit::{Cluster, sample};
use migrator_core::verify::{Request, report};
use tokio_util::sync::CancellationToken;

const DB: &str = "typed ün'db";

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (label text, amount numeric);
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE kinds (
    id integer PRIMARY KEY,
    r real, d double precision, n numeric, n2 numeric(12, 4),
    ts timestamptz, t timestamp, day date, tz timetz, span interval,
    doc jsonb, js json, moods mood[], p pair, pos positive,
    b bytea, cash money, addr inet, ints int4range, words text[], u uuid, bits varbit
);
INSERT INTO kinds VALUES
 (1, 'NaN', '-0', 'NaN', 1.5, '2026-03-01 12:00:00.123456+05:30', '2026-03-01 12:00', '2026-03-01',
  '12:00+02', '1 year 2 mons 3 days 04:05:06.7', '{"b": 1, "a": [1, 2, {"z": null, "y": "é"}]}',
  '{"b": 1,  "a": 2}', '{happy,sad}', '("x, ""y""", 3.14)', 7, '\x00ff10', 12.34, '10.1.2.3/16',
  '[1,10)', '{"a b","c\"d",NULL}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', B'10101'),
 (2, 'Infinity', 1e-300, '123456789012345678901234567890.000000000000000000001', -0.0001,
  '-infinity', 'infinity', '4713-01-01 BC', '00:00:00-14', '-1 days +02:00', '[]', 'null',
  '{}', '(,)', 1, '', -0.5, '::1', 'empty', '{}', NULL, B''),
 (3, 0.1, 0.1, 0.1, 0, '1999-12-31 23:59:59.999999-08', '1999-12-31 23:59:59.999999', 'epoch',
  '23:59:59.999999+14', '0', '{"a": 1, "b": 2}', '{}', '{ok,NULL}', NULL, 2, NULL, 0, '2001:db8::/32',
  '(,5]', '{"Ünïcödé 日本", "line\nbreak"}', NULL, NULL);
CREATE TABLE "Big Ränge ""t""" (
    "Région" text, n integer, filler text, PRIMARY KEY ("Région", n)
);
INSERT INTO "Big Ränge ""t""" SELECT (ARRAY['Île-de-France', 'Ñuñoa', 'Zürich', 'a''b', '日本'])[1 + g % 5],
    g, repeat(md5(g::text), 3) FROM generate_series(1, 30000) g;
CREATE TABLE loose (a integer, b text);
ALTER TABLE loose REPLICA IDENTITY FULL;
INSERT INTO loose SELECT g, 'x' || g FROM generate_series(1, 500) g;
ANALYZE;
"#;

async fn verify(ctx: &MappingContext, dbs: &[String], request: Request) -> VerifyStatus {
    orchestrator::verify::run(ctx, dbs, request, &|_| {}).await
}

fn request(mode: VerifyMode, database: Option<&str>, table: Option<&str>) -> Request {
    Request {
        mode,
        database: database.map(str::to_owned),
        table: table.map(str::to_owned),
    }
}

fn shown(status: &VerifyStatus) -> String {
    report::lines("v", status).join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_proves_equal_data_and_finds_rows_changed_behind_the_subscriptions_back() {
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 20_000).await.unwrap();
    let admin = connect(&source, "postgres").await;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {}",
            migrator_core::ddl::quote::ident(DB)
        ))
        .await
        .unwrap();
    connect(&source, DB)
        .await
        .batch_execute(SCHEMA)
        .await
        .unwrap();
    // Every session default that changes how values print differs between the two sides.
    let set = |zone: &str, style: &str, interval: &str, digits: i32| {
        format!(
            "ALTER DATABASE {} SET TimeZone = '{zone}'; ALTER DATABASE {0} SET DateStyle = '{style}'; \
             ALTER DATABASE {0} SET IntervalStyle = '{interval}'; ALTER DATABASE {0} SET extra_float_digits = {digits}",
            migrator_core::ddl::quote::ident(DB)
        )
    };
    admin
        .batch_execute(&set("America/New_York", "SQL, DMY", "postgres_verbose", 0))
        .await
        .unwrap();
    let load = sample::WriteLoad::start(&source).await.unwrap();
    let settings = settings(&[("v", &source, &destination)], &[]);
    let mut ctx = MappingContext::new("v", &settings.mappings["v"], &settings.migration).unwrap();
    // Small ranges, so that the sample tables are cut into many.
    ctx.verify.chunk_bytes = 128 * 1024;

    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let databases: Vec<String> = wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("v").ok_or("no mapping yet")?;
            if m.phase == Phase::CutoverReady && m.databases.len() == 5 {
                Ok(m.databases.iter().map(|d| d.name.clone()).collect())
            } else {
                Err(serde_json::to_string_pretty(&*snapshot).unwrap())
            }
        }
    })
    .await;
    connect(&destination, "postgres")
        .await
        .batch_execute(&set("Asia/Kolkata", "German", "sql_standard", 3))
        .await
        .unwrap();

    // Online, the write load running: no difference, and most of it proven.
    let online = verify(&ctx, &databases, request(VerifyMode::Online, None, None)).await;
    let text = shown(&online);
    println!("{text}");
    let totals = online.totals();
    assert_eq!(totals.differing, 0, "{text}");
    assert!(
        matches!(
            online.outcome(),
            VerifyOutcome::Equal | VerifyOutcome::Unsettled
        ),
        "{text}"
    );
    assert_eq!(totals.checked, totals.ranges, "{text}");
    assert!(totals.ranges > 30, "{text}");
    assert!(totals.unsettled * 10 <= totals.ranges, "{text}");
    assert!(totals.rows > 60_000, "{text}");
    let big = online
        .tables()
        .find(|t| t.table.starts_with("public.Big"))
        .expect("the big table");
    assert!(big.ranges >= 8, "{text}");
    assert_eq!(big.key, ["Région", "n"]);
    assert!(big.first_lsn.is_some() && big.last_lsn.is_some());
    let loose = online.tables().find(|t| t.table == "public.loose").unwrap();
    assert!(loose.key.is_empty() && loose.note.is_some(), "{text}");
    assert_eq!(loose.rows, 500);

    // The destination restarts in the middle of a (rate-limited, so slow) verification: the
    // ranges it broke are read again on new sessions, and it ends equal, not with a difference.
    ctx.limiter.set_limit_mb(4);
    let during = {
        let ctx = ctx.clone();
        let databases = databases.clone();
        tokio::spawn(async move {
            verify(
                &ctx,
                &databases,
                request(VerifyMode::Online, Some(sample::SHOP), None),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !during.is_finished(),
        "the verification outlasts the restart"
    );
    tokio::task::block_in_place(|| {
        destination.stop().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        destination.restart().unwrap();
    });
    let during = during.await.unwrap();
    ctx.limiter.set_limit_mb(0);
    let text = shown(&during);
    assert_eq!(during.totals().differing, 0, "{text}");
    assert!(during.tables().all(|t| t.error.is_none()), "{text}");
    assert_eq!(during.totals().checked, during.totals().ranges, "{text}");

    // Behind the subscription's back: one row changed, one deleted, one added.
    let dst = connect(&destination, DB).await;
    dst.batch_execute(
        "UPDATE \"Big Ränge \"\"t\"\"\" SET filler = 'tampered' WHERE \"Région\" = 'Zürich' AND n = 2002; \
         DELETE FROM \"Big Ränge \"\"t\"\"\" WHERE \"Région\" = 'a''b' AND n = 15003; \
         INSERT INTO \"Big Ränge \"\"t\"\"\" VALUES ('Ñuñoa', 999999, 'extra'); \
         UPDATE kinds SET n2 = n2 + 1 WHERE id = 3",
    )
    .await
    .unwrap();
    let found = verify(
        &ctx,
        &databases,
        request(VerifyMode::Online, Some(DB), Some("public.Big Ränge \"t\"")),
    )
    .await;
    let text = shown(&found);
    assert_eq!(found.outcome(), VerifyOutcome::Differences, "{text}");
    assert_eq!(found.tables().count(), 1, "{text}");
    let rows: Vec<&String> = found
        .tables()
        .flat_map(|t| t.differing.iter().flat_map(|r| r.rows.iter()))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for expected in [
        "(Région, n)=(Zürich, 2002): changed",
        "(Région, n)=(a'b, 15003): missing on the destination",
        "(Région, n)=(Ñuñoa, 999999): only on the destination",
    ] {
        assert!(rows.iter().any(|r| *r == expected), "{expected} in\n{text}");
    }
    for r in found.tables().flat_map(|t| t.differing.iter()) {
        assert!(
            r.condition.is_some(),
            "a range, not the whole table: {text}"
        );
        assert!(
            r.inspect
                .starts_with("SELECT * FROM ONLY \"public\".\"Big Ränge \"\"t\"\"\" WHERE")
        );
    }

    shutdown.cancel();
    handle.join.await.unwrap();
    load.stop().await.unwrap();
    wait_until_replicated(&source, Duration::from_secs(60)).await;

    // Exact, writes stopped: every sample table equal, the two tampered tables differ.
    let exact = verify(&ctx, &databases, request(VerifyMode::Exact, None, None)).await;
    let text = shown(&exact);
    println!("{text}");
    assert_eq!(exact.outcome(), VerifyOutcome::Differences, "{text}");
    assert_eq!(exact.totals().unsettled, 0, "{text}");
    let differing: Vec<&str> = exact
        .tables()
        .filter(|t| !t.differing.is_empty())
        .map(|t| t.table.as_str())
        .collect();
    assert_eq!(
        differing,
        ["public.Big Ränge \"t\"", "public.kinds"],
        "{text}"
    );
    let kinds = exact.tables().find(|t| t.table == "public.kinds").unwrap();
    assert_eq!(kinds.differing[0].rows, ["(id)=(3): changed"], "{text}");
    assert!(exact.tables().all(|t| t.error.is_none()), "{text}");
    assert_eq!(exact.databases.len(), 5);

    // verify_before_complete = "require": mark complete refuses, shows why, drops nothing.
    let require = common::settings(
        &[("v", &source, &destination)],
        &[("MIGRATOR__MIGRATION__VERIFY_BEFORE_COMPLETE", "require")],
    );
    let refused = commands::complete(&require, "v", false).await;
    let Err(commands::CommandError::Refused(why)) = refused else {
        panic!("complete must be refused: {refused:?}");
    };
    assert!(
        why.contains("verify_before_complete") && why.contains("(id)=(3): changed"),
        "{why}"
    );
    let slots = connect(&source, "postgres")
        .await
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(slots, 5, "nothing was dropped");

    // Put the rows back: the typed database verifies equal, every type included ...
    dst.batch_execute(
        "UPDATE kinds SET n2 = n2 - 1 WHERE id = 3; \
         UPDATE \"Big Ränge \"\"t\"\"\" SET filler = repeat(md5(n::text), 3) WHERE \"Région\" = 'Zürich' AND n = 2002; \
         INSERT INTO \"Big Ränge \"\"t\"\"\" VALUES ('a''b', 15003, repeat(md5('15003'), 3)); \
         DELETE FROM \"Big Ränge \"\"t\"\"\" WHERE n = 999999",
    )
    .await
    .unwrap();
    let kinds = verify(
        &ctx,
        &databases,
        request(VerifyMode::Exact, Some(DB), Some("kinds")),
    )
    .await;
    assert_eq!(kinds.outcome(), VerifyOutcome::Equal, "{}", shown(&kinds));
    assert_eq!(kinds.totals().rows, 3);

    // ... and mark complete verifies every table first, then completes.
    let done = commands::complete(&require, "v", false).await.unwrap();
    assert!(
        done[0].starts_with("verify (exact) of mapping v: every table equal: 5 database(s)"),
        "{done:?}"
    );

    // An unknown table or database is an error that names it.
    let unknown = verify(
        &ctx,
        &databases,
        request(VerifyMode::Exact, Some(DB), Some("nope")),
    )
    .await;
    assert_eq!(unknown.outcome(), VerifyOutcome::Failed);
    assert!(
        shown(&unknown).contains("no table named \"nope\""),
        "{}",
        shown(&unknown)
    );
    let unknown = verify(
        &ctx,
        &databases,
        request(VerifyMode::Exact, Some("nope"), None),
    )
    .await;
    assert!(
        unknown
            .error
            .unwrap()
            .contains("no database named \"nope\"")
    );
}
