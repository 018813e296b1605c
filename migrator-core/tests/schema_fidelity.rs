//! Schema fidelity, PostgreSQL 15 -> 18: kinds of objects beyond tables and plain functions
//! arrive on the destination as they are on the source, while the source takes writes.
//!
//! Aggregates: a view over a user-defined aggregate (as in public sample databases:
//! `group_concat`) used to stop the migration at the schema step for good, since aggregates were
//! never read.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::testkit::{Cluster, ClusterOptions};
use tokio_util::sync::CancellationToken;

const DB: &str = "sample ü";

const SCHEMA: &str = r#"
    CREATE ROLE "report ""owner""" NOLOGIN;
    CREATE ROLE reader NOLOGIN;
    CREATE SCHEMA "Stats";
    CREATE TABLE public.films (id serial PRIMARY KEY, title text NOT NULL, rating float8, genre text);
    INSERT INTO public.films (title, rating, genre)
        SELECT 'film ' || g, (g % 10) / 2.0, CASE WHEN g % 3 = 0 THEN 'drama' ELSE 'comedy' END
        FROM generate_series(1, 200) g;

    -- group_concat, as the public sample databases have it: a state function in SQL.
    CREATE FUNCTION public._group_concat(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN $2 IS NULL THEN $1 WHEN $1 IS NULL THEN $2 ELSE $1 || ', ' || $2 END $$;
    CREATE AGGREGATE public.group_concat(text) (SFUNC = public._group_concat, STYPE = text);

    -- An initial condition, a final function, a combine function and PARALLEL SAFE.
    CREATE FUNCTION "Stats".acc(float8[], float8) RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
        $$ SELECT ARRAY[$1[1] + coalesce($2, 0), $1[2] + CASE WHEN $2 IS NULL THEN 0 ELSE 1 END] $$;
    CREATE FUNCTION "Stats".merge(float8[], float8[]) RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
        $$ SELECT ARRAY[$1[1] + $2[1], $1[2] + $2[2]] $$;
    CREATE FUNCTION "Stats".fin(float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
        $$ SELECT CASE WHEN $1[2] = 0 THEN NULL ELSE $1[1] / $1[2] END $$;
    CREATE AGGREGATE "Stats"."mean ü"(float8) (
        SFUNC = "Stats".acc, STYPE = float8[], INITCOND = '{0,0}',
        FINALFUNC = "Stats".fin, COMBINEFUNC = "Stats".merge, PARALLEL = SAFE);

    -- Moving-aggregate mode (window frames that shrink).
    CREATE FUNCTION "Stats".dec(float8[], float8) RETURNS float8[] LANGUAGE sql IMMUTABLE AS
        $$ SELECT ARRAY[$1[1] - coalesce($2, 0), $1[2] - CASE WHEN $2 IS NULL THEN 0 ELSE 1 END] $$;
    CREATE AGGREGATE "Stats".moving_mean(float8) (
        SFUNC = "Stats".acc, STYPE = float8[], INITCOND = '{0,0}', FINALFUNC = "Stats".fin,
        MSFUNC = "Stats".acc, MINVFUNC = "Stats".dec, MSTYPE = float8[], MINITCOND = '{0,0}',
        MFINALFUNC = "Stats".fin);

    -- An ordered-set aggregate on the built-in support functions, and one without arguments.
    CREATE AGGREGATE "Stats".median_disc(float8 ORDER BY anyelement) (
        SFUNC = ordered_set_transition, STYPE = internal,
        FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA);
    CREATE AGGREGATE "Stats".rows_seen(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
    -- A sort operator: min/max-like aggregates can use an index.
    CREATE AGGREGATE "Stats".last_title(text) (SFUNC = text_larger, STYPE = text, SORTOP = >);

    ALTER AGGREGATE public.group_concat(text) OWNER TO "report ""owner""";
    REVOKE ALL ON FUNCTION "Stats"."mean ü"(float8) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION "Stats"."mean ü"(float8) TO reader;
    COMMENT ON AGGREGATE public.group_concat(text) IS 'joins with commas';

    -- Views that use them: created after the aggregates, or the schema step fails.
    CREATE VIEW public.genres AS
        SELECT genre, public.group_concat(title ORDER BY id) AS titles,
               "Stats"."mean ü"(rating) AS mean, "Stats".median_disc(0.5) WITHIN GROUP (ORDER BY rating) AS median,
               "Stats".rows_seen(*) AS n, "Stats".last_title(title) AS latest
        FROM public.films GROUP BY genre;
    CREATE VIEW "Stats".trend AS
        SELECT id, "Stats".moving_mean(rating) OVER (ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS m
        FROM public.films;
"#;

/// Every aggregate of the database: its definition as pg_aggregate holds it (support functions
/// and types by name), owner, privileges and comment.
const AGGREGATES: &str = r#"
    SELECT format('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s',
             p.oid::regprocedure, a.aggkind, a.aggnumdirectargs, a.aggtransfn::regproc,
             format_type(a.aggtranstype, NULL), a.aggfinalfn::regproc, a.aggfinalextra,
             a.aggcombinefn::regproc, a.agginitval, a.aggmtransfn::regproc, a.aggminvtransfn::regproc,
             a.aggminitval, a.aggsortop::regoperator, p.proparallel, pg_get_userbyid(p.proowner), p.proacl,
             obj_description(p.oid, 'pg_proc'))
      FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('public', 'Stats') ORDER BY 1
"#;

async fn rows(cluster: &Cluster, sql: &str) -> Vec<String> {
    rows_in(cluster, DB, sql).await
}

async fn rows_in(cluster: &Cluster, db: &str, sql: &str) -> Vec<String> {
    connect(cluster, db)
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregates_and_the_views_over_them_arrive_as_they_are() {
    let (source, destination) = Cluster::start_pair().unwrap();
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

    // Writes that never stop while the migration runs: inserts on the serial key.
    let writer = {
        let client = connect(&source, DB).await;
        tokio::spawn(async move {
            loop {
                client
                    .execute(
                        "INSERT INTO public.films (title, rating, genre) \
                         VALUES ('late ' || clock_timestamp(), random() * 5, 'drama')",
                        &[],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let settings = settings(&[("fidelity", &source, &destination)], &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("fidelity").ok_or("no mapping yet")?;
            let db = m.databases.iter().find(|d| d.name == DB);
            match db {
                Some(db) if db.phase == Phase::CutoverReady => Ok(()),
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;

    let on_source = rows(&source, AGGREGATES).await;
    assert_eq!(on_source.len(), 6, "{on_source:#?}");
    assert_eq!(rows(&destination, AGGREGATES).await, on_source);

    // The views give the same answers once the last writes have arrived.
    writer.abort();
    let _ = writer.await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    for view in [
        "SELECT format('%s %s %s %s %s %s', genre, titles, round(mean::numeric, 9), median, n, latest) \
         FROM public.genres ORDER BY genre",
        "SELECT format('%s %s', id, round(m::numeric, 9)) FROM \"Stats\".trend ORDER BY id",
    ] {
        let expected = rows(&source, view).await;
        assert!(expected.len() >= 2, "{view}: {expected:?}");
        assert_eq!(rows(&destination, view).await, expected, "{view}");
    }
    assert_same_contents(&source, &destination, DB).await;
    assert_dumps_equal(&source, &destination, DB).await;

    shutdown.cancel();
    let _ = handle.join.await;
}

const REFUSING_DB: &str = "refusals";

/// Objects PostgreSQL 15 accepts and 18 refuses (`pg_stat_bgwriter.buffers_backend` and the
/// `force_parallel_mode` setting are gone since 17 and 16), among objects 18 accepts.
const REFUSED_ON_18: &str = r#"
    CREATE ROLE viewer NOLOGIN;
    CREATE TABLE public.orders (id serial PRIMARY KEY, amount numeric NOT NULL);
    INSERT INTO public.orders (amount) SELECT g FROM generate_series(1, 500) g;
    CREATE FUNCTION public.doubled(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT $1 * 2 $$;
    CREATE VIEW public.big_orders AS SELECT id, public.doubled(amount) AS twice FROM public.orders WHERE amount > 100;

    CREATE VIEW public.backend_writes AS SELECT buffers_backend FROM pg_stat_bgwriter;
    COMMENT ON VIEW public.backend_writes IS 'gone in 17';
    GRANT SELECT ON public.backend_writes TO viewer;
    CREATE VIEW public.backend_writes_twice AS SELECT buffers_backend * 2 AS twice FROM public.backend_writes;
    ALTER DATABASE refusals SET force_parallel_mode = off;
    ALTER DATABASE refusals SET work_mem = '8MB';
"#;

/// The findings of database `db` of mapping `m` with `code`, from the latest snapshot.
fn findings_of(
    snapshot: &migrator_core::status::Snapshot,
    m: &str,
    db: &str,
    code: &str,
) -> Vec<migrator_core::findings::Finding> {
    snapshot
        .mapping(m)
        .and_then(|m| m.databases.iter().find(|d| d.name == db))
        .map(|d| {
            d.findings
                .iter()
                .filter(|f| f.code == code)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_the_destination_refuses_is_a_finding_and_the_rest_of_the_schema_arrives() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {REFUSING_DB}"))
        .await
        .unwrap();
    connect(&source, REFUSING_DB)
        .await
        .batch_execute(REFUSED_ON_18)
        .await
        .unwrap();
    let writer = {
        let client = connect(&source, REFUSING_DB).await;
        tokio::spawn(async move {
            loop {
                client
                    .execute(
                        "INSERT INTO public.orders (amount) VALUES (random() * 1000)",
                        &[],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // First run: the refused objects are findings, with the server's error and the way out; the
    // database waits in the schema phase with everything else created.
    let settings1 = settings(&[("refusing", &source, &destination)], &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings1, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let refused = wait_until("the refusals reported", Duration::from_secs(60), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let found = findings_of(&snapshot, "refusing", REFUSING_DB, "schema_object_failed");
            if found.len() == 3 {
                Ok((snapshot, found))
            } else {
                Err(serde_json::to_string_pretty(&*snapshot).unwrap())
            }
        }
    })
    .await;
    let (snapshot, found) = refused;
    let db = snapshot
        .mapping("refusing")
        .unwrap()
        .databases
        .iter()
        .find(|d| d.name == REFUSING_DB)
        .unwrap()
        .clone();
    assert_eq!(db.phase, Phase::Schema, "{db:#?}");
    assert_eq!(
        db.last_error, None,
        "a refusal is a finding, not a failed step"
    );
    let text: Vec<String> = found.iter().map(|f| f.message.clone()).collect();
    for (object, error) in [
        ("VIEW public.backend_writes ", "buffers_backend"),
        ("VIEW public.backend_writes_twice ", "backend_writes"),
        ("SETTING force_parallel_mode ", "force_parallel_mode"),
    ] {
        let f = found
            .iter()
            .find(|f| f.message.starts_with(object))
            .unwrap_or_else(|| panic!("{object}: {text:#?}"));
        assert!(f.message.contains(error), "{f:?}");
        assert!(!f.message.contains("CREATE VIEW"), "no DDL text: {f:?}");
        assert!(!f.is_blocking(), "retried with a backoff first: {f:?}");
        assert!(
            f.fix
                .contains(&format!("\"{REFUSING_DB}: {}\"", object.trim_end())),
            "{f:?}"
        );
    }
    // Everything else is there: tables, functions, views, the other setting, grants.
    let dst = connect(&destination, REFUSING_DB).await;
    let present: i64 = dst
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname IN ('orders', 'big_orders', 'backend_writes') \
             AND relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(present, 2, "orders and big_orders, not the refused view");
    let settings_row: Vec<String> = dst
        .query_one(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE d.datname = current_database() AND s.setrole = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(settings_row, ["work_mem=8MB"]);
    // It does not retry at every tick: a second look a few ticks later still shows attempt 1.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = findings_of(
        &status.borrow(),
        "refusing",
        REFUSING_DB,
        "schema_object_failed",
    );
    assert!(
        again.iter().all(|f| f.message.contains("attempt 1;")),
        "{again:#?}"
    );
    shutdown.cancel();
    let _ = handle.join.await;

    // Second run: the operator leaves them out; the rest of the migration goes on.
    let exclude = format!(
        "{db}: VIEW public.backend_writes; {db}: VIEW public.backend_writes_twice; {db}: SETTING force_parallel_mode",
        db = REFUSING_DB
    );
    let settings2 = settings(
        &[("refusing", &source, &destination)],
        &[("MIGRATOR__MAPPINGS__REFUSING__SCHEMA_EXCLUDE", &exclude)],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings2, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("refusing").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == REFUSING_DB) {
                Some(db) if db.phase == Phase::CutoverReady => Ok(()),
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;
    let snapshot = status.borrow().clone();
    let excluded = findings_of(
        &snapshot,
        "refusing",
        REFUSING_DB,
        "schema_objects_excluded",
    );
    assert_eq!(excluded.len(), 1, "{snapshot:#?}");
    assert!(
        excluded[0]
            .message
            .contains("VIEW public.backend_writes_twice")
    );
    assert!(findings_of(&snapshot, "refusing", REFUSING_DB, "schema_drift").is_empty());
    assert!(findings_of(&snapshot, "refusing", REFUSING_DB, "schema_object_failed").is_empty());
    let marker: String = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&REFUSING_DB],
        )
        .await
        .unwrap()
        .get(0);
    assert!(marker.ends_with("schema applied"), "{marker}");

    writer.abort();
    let _ = writer.await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    assert!(assert_same_contents(&source, &destination, REFUSING_DB).await > 500);
    shutdown.cancel();
    let _ = handle.join.await;
}

const SHAPES_DB: &str = "shapes";

/// Table shapes and constraint states pg_dump keeps: INHERITS, NOT VALID checks and foreign keys
/// (with rows that violate them), DEFERRABLE constraints, storage parameters, statistics
/// targets, column storage and compression.
const SHAPES: &str = r#"
    CREATE TABLE public.vehicles (id serial PRIMARY KEY, name text NOT NULL CHECK (length(name) > 0));
    CREATE TABLE public.cars (doors int NOT NULL DEFAULT 4) INHERITS (public.vehicles);
    ALTER TABLE public.cars ADD PRIMARY KEY (id);
    CREATE TABLE "Fleet"."electric ⚡" (range_km int) INHERITS (public.cars);
    INSERT INTO public.vehicles (name) SELECT 'v' || g FROM generate_series(1, 100) g;
    INSERT INTO public.cars (name, doors) SELECT 'c' || g, 2 + g % 3 FROM generate_series(1, 100) g;
    INSERT INTO "Fleet"."electric ⚡" (name, doors, range_km) SELECT 'e' || g, 4, 300 + g FROM generate_series(1, 20) g;
    ALTER TABLE "Fleet"."electric ⚡" ADD PRIMARY KEY (id);

    CREATE TABLE public.readings (id serial PRIMARY KEY, value int NOT NULL, note text)
        WITH (fillfactor = 70, autovacuum_enabled = false, toast.autovacuum_vacuum_scale_factor = 0.05);
    ALTER TABLE public.readings ALTER COLUMN value SET STATISTICS 500,
        ALTER COLUMN note SET STORAGE EXTERNAL, ALTER COLUMN note SET COMPRESSION pglz;
    INSERT INTO public.readings (value, note) SELECT -g, 'old' FROM generate_series(1, 50) g;
    ALTER TABLE public.readings ADD CONSTRAINT value_positive CHECK (value > 0) NOT VALID;

    CREATE TABLE public.sensors (id int PRIMARY KEY);
    INSERT INTO public.sensors VALUES (1);
    CREATE TABLE public.sensor_readings (id serial PRIMARY KEY, sensor int);
    INSERT INTO public.sensor_readings (sensor) VALUES (1), (999);
    ALTER TABLE public.sensor_readings ADD CONSTRAINT sensor_fk FOREIGN KEY (sensor)
        REFERENCES public.sensors (id) NOT VALID;

    CREATE TABLE public.seats (id serial PRIMARY KEY,
        place int CONSTRAINT place_unique UNIQUE DEFERRABLE INITIALLY DEFERRED,
        row_no int CONSTRAINT row_fk REFERENCES public.sensors (id) DEFERRABLE);
    INSERT INTO public.seats (place, row_no) SELECT g, 1 FROM generate_series(1, 20) g;

    ALTER TABLE public.readings CLUSTER ON readings_pkey;
    CREATE INDEX seats_row ON public.seats (row_no);
    ALTER TABLE public.seats CLUSTER ON seats_row;

    -- Need their primary keys before the copy (the fast copy builds the others after it): a
    -- view that selects a column by the key's functional dependency, and an unlogged table's
    -- foreign key (unlogged tables get everything with the table).
    CREATE VIEW public.vehicle_cars AS SELECT v.id, v.name, count(c.id) AS cars
        FROM public.vehicles v LEFT JOIN public.cars c ON c.id = v.id GROUP BY v.id;
    CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY, sensor int REFERENCES public.sensors (id));
"#;

/// What must be equal on both sides, one line per object.
const SHAPE_FACTS: [&str; 3] = [
    "SELECT format('%s %s %s %s %s %s %s', conrelid::regclass, conname, contype, convalidated, condeferrable, condeferred, conislocal) \
     FROM pg_constraint WHERE conrelid <> 0 AND contype <> 'n' \
       AND connamespace IN ('public'::regnamespace, '\"Fleet\"'::regnamespace) ORDER BY 1",
    "SELECT format('%s %s %s', c.oid::regclass, c.reloptions, \
       (SELECT array_agg(i.inhparent::regclass::text ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid)) \
       || coalesce(' toast ' || (SELECT t.reloptions::text FROM pg_class t WHERE t.oid = c.reltoastrelid), '') \
       || coalesce(' clustered on ' || (SELECT i.indexrelid::regclass::text FROM pg_index i \
            WHERE i.indrelid = c.oid AND i.indisclustered), '') \
     FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace IN ('public'::regnamespace, '\"Fleet\"'::regnamespace) ORDER BY 1",
    "SELECT format('%s %s %s %s %s %s %s', a.attrelid::regclass, a.attname, nullif(a.attstattarget, -1), a.attstorage, \
       a.attcompression, a.attislocal, a.attinhcount) \
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
     WHERE c.relkind = 'r' AND c.relnamespace IN ('public'::regnamespace, '\"Fleet\"'::regnamespace) \
       AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_shapes_and_constraint_states_arrive_as_they_are() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {SHAPES_DB}"))
        .await
        .unwrap();
    let src = connect(&source, SHAPES_DB).await;
    src.batch_execute("CREATE SCHEMA \"Fleet\"").await.unwrap();
    src.batch_execute(SHAPES).await.unwrap();
    let writer = {
        let client = connect(&source, SHAPES_DB).await;
        tokio::spawn(async move {
            for n in 0.. {
                client
                    .batch_execute(&format!(
                        "INSERT INTO public.readings (value, note) VALUES ({n} + 1, repeat('x', 3000)); \
                         INSERT INTO public.cars (name, doors) VALUES ('late {n}', 5); \
                         INSERT INTO \"Fleet\".\"electric ⚡\" (name, doors, range_km) VALUES ('late {n}', 4, {n}); \
                         BEGIN; UPDATE public.seats SET place = place + 1000 WHERE id = 1 + {n} % 20; \
                         UPDATE public.seats SET place = place - 1000 WHERE id = 1 + {n} % 20; COMMIT;"
                    ))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let settings = settings(&[("shapes", &source, &destination)], &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("shapes").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == SHAPES_DB) {
                Some(db) if db.phase == Phase::CutoverReady => Ok(()),
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;
    for sql in SHAPE_FACTS {
        let expected = rows_in(&source, SHAPES_DB, sql).await;
        assert!(expected.len() >= 5, "{sql}: {expected:#?}");
        assert_eq!(
            rows_in(&destination, SHAPES_DB, sql).await,
            expected,
            "{sql}"
        );
    }
    // The rows that break the NOT VALID constraints arrived with the others.
    let dst = connect(&destination, SHAPES_DB).await;
    let violating: i64 = dst
        .query_one(
            "SELECT (SELECT count(*) FROM public.readings WHERE value <= 0) \
                  + (SELECT count(*) FROM public.sensor_readings WHERE sensor = 999)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(violating, 51);
    // Every table has planner statistics before the cutover (ANALYZE after the copy), the
    // partitioned-free, little-changing ones too, which autovacuum would leave alone.
    let (unanalyzed, analyzed): (i64, i64) = {
        let r = dst
            .query_one(
                "SELECT count(*) FILTER (WHERE last_analyze IS NULL AND last_autoanalyze IS NULL), \
                        count(*) FILTER (WHERE last_analyze IS NOT NULL) FROM pg_stat_user_tables",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(unanalyzed, 0);
    assert!(analyzed >= 7, "{analyzed}");

    writer.abort();
    let _ = writer.await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    assert_same_contents(&source, &destination, SHAPES_DB).await;
    assert_dumps_equal(&source, &destination, SHAPES_DB).await;
    // A parent's rows and its children's, ONLY each table: equal per table too.
    for table in [
        "public.vehicles",
        "public.cars",
        "\"Fleet\".\"electric ⚡\"",
    ] {
        let sql = format!("SELECT count(*)::text FROM ONLY {table}");
        assert_eq!(
            rows_in(&destination, SHAPES_DB, &sql).await,
            rows_in(&source, SHAPES_DB, &sql).await,
            "{table}"
        );
    }
    shutdown.cancel();
    let _ = handle.join.await;
}

const ORDER_DB: &str = "order ⇄ cycles";

/// Objects that need one of a later creation group, and a view -> function -> view cycle (the
/// function's SQL-standard body reads the view, the view calls the function), which only a
/// placeholder view breaks.
const OUT_OF_ORDER: &str = r#"
    CREATE FUNCTION public.is_even(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 % 2 = 0 $$;
    CREATE DOMAIN public.even_int AS int CHECK (public.is_even(VALUE));
    CREATE TABLE public.numbers (id serial PRIMARY KEY, n public.even_int NOT NULL);
    INSERT INTO public.numbers (n) SELECT g * 2 FROM generate_series(1, 100) g;
    CREATE VIEW public.big_numbers AS SELECT id, n FROM public.numbers WHERE n > 100;
    CREATE FUNCTION public.describe(r public.big_numbers) RETURNS text LANGUAGE sql AS $$ SELECT r.id || ':' || r.n $$;
    CREATE FUNCTION public.count_big() RETURNS bigint LANGUAGE sql STABLE
        BEGIN ATOMIC SELECT count(*) FROM public.big_numbers; END;
    CREATE VIEW public.described AS SELECT public.describe(b) AS d FROM public.big_numbers b;

    CREATE VIEW public."cycle ü" AS SELECT 1 AS n, 'x'::text COLLATE "C" AS label;
    CREATE FUNCTION public.cycle_size() RETURNS bigint LANGUAGE sql STABLE
        BEGIN ATOMIC SELECT count(*) FROM public."cycle ü"; END;
    CREATE OR REPLACE VIEW public."cycle ü" AS
        SELECT 1 AS n, 'x'::text COLLATE "C" AS label, CASE WHEN false THEN public.cycle_size() END AS size;
"#;

/// Routines, views and domains with what defines them, as both versions print them.
const DEFINITIONS: [&str; 3] = [
    "SELECT p.oid::regprocedure::text || ' ' || md5(coalesce(p.prosrc, '')) || ' ' \
       || (pg_get_function_sqlbody(p.oid) IS NOT NULL)::text \
     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1",
    "SELECT c.oid::regclass::text || ' ' || string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) \
       || ' ' || a.attcollation::regcollation::text, ', ' ORDER BY a.attnum) \
     FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
     WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace GROUP BY c.oid ORDER BY 1",
    "SELECT t.typname || ' ' || pg_get_constraintdef(c.oid) FROM pg_type t \
     JOIN pg_constraint c ON c.contypid = t.oid WHERE t.typnamespace = 'public'::regnamespace ORDER BY 1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_out_of_creation_order_and_a_view_function_cycle_are_created() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!(
            "CREATE DATABASE {}",
            migrator_core::ddl::quote::ident(ORDER_DB)
        ))
        .await
        .unwrap();
    connect(&source, ORDER_DB)
        .await
        .batch_execute(OUT_OF_ORDER)
        .await
        .unwrap();
    let writer = {
        let client = connect(&source, ORDER_DB).await;
        tokio::spawn(async move {
            loop {
                client
                    .execute(
                        "INSERT INTO public.numbers (n) VALUES ((random() * 1000)::int * 2)",
                        &[],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let settings = settings(&[("ordering", &source, &destination)], &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("ordering").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == ORDER_DB) {
                Some(db) if db.phase == Phase::CutoverReady && db.findings.is_empty() => Ok(()),
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;
    for sql in DEFINITIONS {
        let expected = rows_in(&source, ORDER_DB, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(
            rows_in(&destination, ORDER_DB, sql).await,
            expected,
            "{sql}"
        );
    }
    // The creation order comes from the source's pg_depend, named as the statements name their
    // objects: each of these is created after what it needs, on the first pass.
    let src = migrator_core::pg::Session::new(connect(&source, ORDER_DB).await, "source".into());
    let dependencies = migrator_core::catalog::objects::dependencies(&src)
        .await
        .unwrap();
    for (dependent, referenced) in [
        ("DOMAIN public.even_int", "ROUTINE public.is_even(integer)"),
        ("TABLE public.numbers", "DOMAIN public.even_int"),
        ("VIEW public.big_numbers", "TABLE public.numbers"),
        (
            "ROUTINE public.describe(public.big_numbers)",
            "VIEW public.big_numbers",
        ),
        ("ROUTINE public.count_big()", "VIEW public.big_numbers"),
        (
            "VIEW public.described",
            "ROUTINE public.describe(public.big_numbers)",
        ),
        ("VIEW public.cycle ü", "ROUTINE public.cycle_size()"),
        ("ROUTINE public.cycle_size()", "VIEW public.cycle ü"),
    ] {
        assert!(
            dependencies.contains(&(dependent.to_owned(), referenced.to_owned())),
            "{dependent} -> {referenced}: {dependencies:#?}"
        );
    }
    writer.abort();
    let _ = writer.await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    for sql in [
        "SELECT public.count_big()::text",
        "SELECT d FROM public.described ORDER BY d",
        "SELECT format('%s %s %s', n, label, size) FROM public.\"cycle ü\"",
    ] {
        let expected = rows_in(&source, ORDER_DB, sql).await;
        assert_eq!(
            rows_in(&destination, ORDER_DB, sql).await,
            expected,
            "{sql}"
        );
    }
    assert_same_contents(&source, &destination, ORDER_DB).await;
    assert_dumps_equal(&source, &destination, ORDER_DB).await;
    shutdown.cancel();
    let _ = handle.join.await;
}

const KINDS_DB: &str = "kinds";

/// Range and multirange types, extended statistics, an event trigger, the source's own
/// publications, and an unlogged table (reported, not carried).
const MORE_KINDS: &str = r#"
    CREATE SCHEMA audit;
    CREATE TABLE audit.log (id serial PRIMARY KEY, line text);
    CREATE FUNCTION public.time_diff(a time, b time) RETURNS float8 LANGUAGE sql IMMUTABLE
        AS $$ SELECT EXTRACT(EPOCH FROM (a - b))::float8 $$;
    CREATE TYPE public."time range" AS RANGE (SUBTYPE = time, SUBTYPE_DIFF = public.time_diff,
        MULTIRANGE_TYPE_NAME = public."time ranges");
    COMMENT ON TYPE public."time range" IS 'shifts';
    CREATE TABLE public.shifts (id serial PRIMARY KEY, during public."time range", days public."time ranges");
    INSERT INTO public.shifts (during, days)
        SELECT public."time range"('08:00', '16:00'), public."time ranges"(public."time range"('09:00', '10:00'))
        FROM generate_series(1, 50);

    CREATE TABLE public.pairs (id serial PRIMARY KEY, a int, b int);
    INSERT INTO public.pairs (a, b) SELECT g % 10, g % 10 * 2 FROM generate_series(1, 1000) g;
    CREATE STATISTICS public."pairs ab" (dependencies, ndistinct) ON a, b FROM public.pairs;
    CREATE FUNCTION public.approx_eq(float8, float8) RETURNS boolean LANGUAGE sql IMMUTABLE
        AS $$ SELECT abs($1 - $2) < 0.001 $$;
    CREATE FUNCTION public.approx_ne(float8, float8) RETURNS boolean LANGUAGE sql IMMUTABLE
        AS $$ SELECT abs($1 - $2) >= 0.001 $$;
    CREATE OPERATOR public.~= (FUNCTION = public.approx_eq, LEFTARG = float8, RIGHTARG = float8,
        COMMUTATOR = OPERATOR(public.~=), NEGATOR = OPERATOR(public.~<>));
    CREATE OPERATOR public.~<> (FUNCTION = public.approx_ne, LEFTARG = float8, RIGHTARG = float8);
    CREATE TYPE public.money_code AS (amount numeric, currency text);
    CREATE FUNCTION public.code_text(public.money_code) RETURNS text LANGUAGE sql IMMUTABLE
        AS $$ SELECT $1.amount || ' ' || $1.currency $$;
    CREATE CAST (public.money_code AS text) WITH FUNCTION public.code_text(public.money_code) AS ASSIGNMENT;
    CREATE VIEW public.close_pairs AS SELECT id FROM public.pairs WHERE a::float8 OPERATOR(public.~=) b::float8;
    ALTER STATISTICS public."pairs ab" SET STATISTICS 200;

    CREATE FUNCTION public.note_ddl() RETURNS event_trigger LANGUAGE plpgsql
        AS $$ BEGIN RAISE NOTICE 'ddl %', tg_tag; END $$;
    CREATE EVENT TRIGGER "note ddl" ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
        EXECUTE FUNCTION public.note_ddl();
    ALTER EVENT TRIGGER "note ddl" ENABLE ALWAYS;

    CREATE PUBLICATION "cdc feed" FOR TABLE public.pairs (id, a) WHERE (a > 0) WITH (publish = 'insert');
    CREATE PUBLICATION audit_all FOR TABLES IN SCHEMA audit;

    CREATE UNLOGGED TABLE public.cache (k text PRIMARY KEY, v text);

    CREATE ROLE "fdw user" NOLOGIN;
    CREATE FOREIGN DATA WRAPPER "plain wrapper" OPTIONS (debug 'true');
    CREATE SERVER "old ledger" TYPE 'ledger' VERSION '2' FOREIGN DATA WRAPPER "plain wrapper"
        OPTIONS (host 'ledger.internal', port '5433');
    CREATE USER MAPPING FOR "fdw user" SERVER "old ledger" OPTIONS (user 'reader', password 's3cr''et');
    CREATE USER MAPPING FOR PUBLIC SERVER "old ledger";
    GRANT USAGE ON FOREIGN SERVER "old ledger" TO "fdw user";
    CREATE FOREIGN TABLE public."ledger entries" (
        id int OPTIONS (column_name 'ID') NOT NULL, note text COLLATE "C" DEFAULT 'none')
        SERVER "old ledger" OPTIONS (table_name 'entries');
    COMMENT ON FOREIGN TABLE public."ledger entries" IS 'lives elsewhere';
    GRANT SELECT ON public."ledger entries" TO "fdw user";
    CREATE VIEW public.ledger_ids AS SELECT id FROM public."ledger entries";

    -- What extends the server: a language on a C handler, access methods, an operator family
    -- with a class and loose members, a conversion, a text search parser and template, a
    -- transform; a table on its own access method and an index on the class; comments on all.
    CREATE FUNCTION public.my_handler() RETURNS language_handler
        AS '$libdir/plpgsql', 'plpgsql_call_handler' LANGUAGE c;
    CREATE TRUSTED LANGUAGE "plMine" HANDLER public.my_handler;
    GRANT USAGE ON LANGUAGE "plMine" TO "fdw user";
    CREATE ACCESS METHOD "heap two" TYPE TABLE HANDLER heap_tableam_handler;
    CREATE ACCESS METHOD btree2 TYPE INDEX HANDLER bthandler;
    CREATE FUNCTION public.rev_cmp(int4, int4) RETURNS int4 LANGUAGE sql IMMUTABLE AS 'SELECT btint4cmp($2, $1)';
    CREATE FUNCTION public.rev_cmp8(int4, int8) RETURNS int4 LANGUAGE sql IMMUTABLE AS 'SELECT btint48cmp($1, $2) * -1';
    CREATE OPERATOR FAMILY public."reverse ü" USING btree;
    CREATE OPERATOR CLASS public.int4_rev_ops FOR TYPE int4 USING btree FAMILY public."reverse ü" AS
        OPERATOR 1 >, OPERATOR 2 >=, OPERATOR 3 =, OPERATOR 4 <=, OPERATOR 5 <, FUNCTION 1 public.rev_cmp(int4, int4);
    ALTER OPERATOR FAMILY public."reverse ü" USING btree
        ADD OPERATOR 1 > (int4, int8), FUNCTION 1 (int4, int8) public.rev_cmp8(int4, int8);
    CREATE OPERATOR CLASS public.int4_ops2 DEFAULT FOR TYPE int4 USING btree2 AS
        OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 btint4cmp(int4, int4);
    CREATE ROLE "class owner" NOLOGIN;
    ALTER OPERATOR CLASS public.int4_rev_ops USING btree OWNER TO "class owner";
    CREATE CONVERSION public."my conv" FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
    CREATE TEXT SEARCH PARSER public.my_parser (START = prsd_start, GETTOKEN = prsd_nexttoken,
        END = prsd_end, LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
    CREATE TEXT SEARCH TEMPLATE public.my_template (INIT = dsimple_init, LEXIZE = dsimple_lexize);
    CREATE TEXT SEARCH DICTIONARY public.my_dict (TEMPLATE = public.my_template, STOPWORDS = english);
    CREATE TEXT SEARCH CONFIGURATION public.my_config (PARSER = public.my_parser);
    ALTER TEXT SEARCH CONFIGURATION public.my_config ADD MAPPING FOR word WITH public.my_dict;
    CREATE TYPE public.tt AS (a int);
    CREATE FUNCTION public.tt_from(internal) RETURNS internal LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';
    CREATE FUNCTION public.tt_to(internal) RETURNS public.tt LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';
    CREATE TRANSFORM FOR public.tt LANGUAGE plpgsql (FROM SQL WITH FUNCTION public.tt_from(internal),
        TO SQL WITH FUNCTION public.tt_to(internal));
    CREATE TABLE public.readings (id serial PRIMARY KEY, v int CONSTRAINT "v positive" CHECK (v > 0))
        USING "heap two";
    INSERT INTO public.readings (v) SELECT g FROM generate_series(1, 100) g;
    CREATE INDEX readings_rev ON public.readings (v public.int4_rev_ops);
    CREATE DOMAIN public.pos AS int CONSTRAINT "pos on x" CHECK (VALUE > 0);
    COMMENT ON LANGUAGE "plMine" IS 'mine';
    COMMENT ON ACCESS METHOD "heap two" IS 'heap, again';
    COMMENT ON OPERATOR FAMILY public."reverse ü" USING btree IS 'backwards';
    COMMENT ON OPERATOR CLASS public.int4_rev_ops USING btree IS 'backwards ints';
    COMMENT ON CONVERSION public."my conv" IS 'latin';
    COMMENT ON TEXT SEARCH PARSER public.my_parser IS 'parser';
    COMMENT ON TEXT SEARCH TEMPLATE public.my_template IS 'template';
    COMMENT ON TEXT SEARCH DICTIONARY public.my_dict IS 'dictionary';
    COMMENT ON TEXT SEARCH CONFIGURATION public.my_config IS 'configuration';
    COMMENT ON TRANSFORM FOR public.tt LANGUAGE plpgsql IS 'transform';
    COMMENT ON CONSTRAINT "pos on x" ON DOMAIN public.pos IS 'domain check';
    COMMENT ON CONSTRAINT "v positive" ON public.readings IS 'table check';
    COMMENT ON CONSTRAINT readings_pkey ON public.readings IS 'the key';
    COMMENT ON INDEX public.readings_rev IS 'reverse index';
    COMMENT ON OPERATOR public.~= (float8, float8) IS 'about equal';
    COMMENT ON CAST (public.money_code AS text) IS 'cast';
    COMMENT ON EVENT TRIGGER "note ddl" IS 'notes';
    COMMENT ON SERVER "old ledger" IS 'ledger';
    COMMENT ON FOREIGN DATA WRAPPER "plain wrapper" IS 'wrapper';
    COMMENT ON PUBLICATION "cdc feed" IS 'feed';
    COMMENT ON STATISTICS public."pairs ab" IS 'stats';

    -- A base type on internal functions (a shell, its functions, then the type), a SQL
    -- function over it, a table of it; an operator class without members; a CHECK calling a
    -- function over its own table's row type (a cycle pg_dump breaks by adding the check
    -- later); two procedures whose argument types print the same (one has an OUT argument).
    CREATE TYPE public."my text";
    CREATE FUNCTION public.my_text_in(cstring) RETURNS public."my text" LANGUAGE internal IMMUTABLE STRICT AS 'textin';
    CREATE FUNCTION public.my_text_out(public."my text") RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
    CREATE TYPE public."my text" (INPUT = public.my_text_in, OUTPUT = public.my_text_out, LIKE = text,
        CATEGORY = 'S', COLLATABLE = true);
    CREATE FUNCTION public.my_text_one(public."my text") RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
    CREATE TABLE public.labels (id serial PRIMARY KEY, l public."my text");
    INSERT INTO public.labels (l) SELECT ('label ' || g)::text::cstring::public."my text" FROM generate_series(1, 20) g;
    CREATE OPERATOR CLASS public.empty_ops FOR TYPE int4 USING btree AS STORAGE int4;
    CREATE TABLE public.checked (a int PRIMARY KEY);
    CREATE FUNCTION public.check_row(public.checked) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1.a > 0';
    ALTER TABLE public.checked ADD CONSTRAINT row_ok CHECK (public.check_row(checked));
    INSERT INTO public.checked SELECT g FROM generate_series(1, 10) g;
    CREATE PROCEDURE public.twin(OUT a int, IN b int, IN c int) LANGUAGE sql AS 'SELECT b';
    CREATE PROCEDURE public.twin(IN a int, IN b int, IN c int) LANGUAGE sql AS 'SELECT';
    REVOKE ALL ON PROCEDURE public.twin(OUT a int, IN b int, IN c int) FROM PUBLIC;
    GRANT EXECUTE ON PROCEDURE public.twin(OUT a int, IN b int, IN c int) TO "fdw user";
    COMMENT ON PROCEDURE public.twin(IN a int, IN b int, IN c int) IS 'the other twin';
    ALTER PROCEDURE public.twin(IN a int, IN b int, IN c int) OWNER TO "class owner";
    -- A column of a built-in type without a binary form (copied as text, not binary).
    CREATE TABLE public.grants (id serial PRIMARY KEY, acl aclitem[], one aclitem);
    INSERT INTO public.grants (acl, one) SELECT relacl, relacl[1] FROM pg_class WHERE relacl IS NOT NULL LIMIT 5;
    -- Sequences whose persistence is not their table's (PostgreSQL 15+): a logged identity
    -- sequence of an unlogged table, an unlogged sequence on its own.
    CREATE UNLOGGED TABLE public.counter (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
    ALTER SEQUENCE public.counter_id_seq SET LOGGED;
    CREATE SEQUENCE public.scratch_seq;
    ALTER SEQUENCE public.scratch_seq SET UNLOGGED;
    -- A partitioned table without partitions (nothing to analyze: not waited for).
    CREATE TABLE public.no_parts (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
    -- A table without columns (its rows are copied with no column list).
    CREATE TABLE public.nothing ();
    ALTER TABLE public.nothing REPLICA IDENTITY FULL;
    INSERT INTO public.nothing DEFAULT VALUES;
    INSERT INTO public.nothing DEFAULT VALUES;
    -- Partitions as pg_dump leaves them: one in a column order of its own (created, then
    -- attached), a partitioned partition; the partitioned table's indexes, one partition's under
    -- a name of its own, with a comment.
    CREATE TABLE public."measures ü" (id int, at date, v text, CHECK (id > 0), PRIMARY KEY (id, at))
        PARTITION BY RANGE (at);
    CREATE TABLE public.measures_2025 (v text, at date NOT NULL, id int NOT NULL,
        CONSTRAINT "measures ü_id_check" CHECK (id > 0));
    ALTER TABLE public."measures ü" ATTACH PARTITION public.measures_2025
        FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.measures_2026 PARTITION OF public."measures ü"
        FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (id);
    CREATE TABLE public.measures_2026_a PARTITION OF public.measures_2026 FOR VALUES IN (1, 2, 3);
    CREATE TABLE public.measures_2026_b PARTITION OF public.measures_2026 DEFAULT;
    CREATE INDEX "own name" ON public.measures_2025 (v);
    COMMENT ON INDEX public."own name" IS 'kept';
    CREATE INDEX measures_v ON public."measures ü" (v);
    CREATE UNIQUE INDEX measures_key ON public."measures ü" (at, id);
    INSERT INTO public."measures ü" SELECT g, '2025-01-01'::date + (g % 700), 'v' || g
        FROM generate_series(1, 500) g;
    -- A typed table with options of its columns, a shell type, a comment on a key's index.
    CREATE TYPE public.person AS (id int, name text);
    CREATE TABLE public.people OF public.person
        (id WITH OPTIONS PRIMARY KEY, name WITH OPTIONS DEFAULT 'x' NOT NULL);
    INSERT INTO public.people VALUES (1, 'a'), (2, 'b');
    COMMENT ON INDEX public.people_pkey IS 'the key''s index';
    CREATE TYPE public.just_a_shell;
    -- A default calling a function whose SQL-standard body reads the default's own table: a
    -- cycle pg_dump breaks by setting the default after the function.
    CREATE TABLE public.tickets (id int PRIMARY KEY, n int);
    CREATE FUNCTION public.next_ticket() RETURNS int LANGUAGE sql
        BEGIN ATOMIC SELECT coalesce(max(n), 0) + 1 FROM public.tickets; END;
    ALTER TABLE public.tickets ALTER COLUMN n SET DEFAULT public.next_ticket();
    INSERT INTO public.tickets (id) SELECT g FROM generate_series(1, 5) g;
    -- Privileges on system objects given or taken away since the database was made.
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO "fdw user";
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_sleep(double precision) FROM PUBLIC;
    GRANT SELECT (rolname) ON pg_catalog.pg_authid TO "fdw user" WITH GRANT OPTION;
"#;

const KIND_FACTS: [&str; 7] = [
    "SELECT format('%s %s %s %s %s %s', r.rngtypid::regtype, r.rngsubtype::regtype, r.rngmultitypid::regtype, \
       r.rngsubdiff::regproc, pg_get_userbyid(t.typowner), obj_description(t.oid, 'pg_type')) \
     FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid ORDER BY 1",
    "SELECT pg_get_statisticsobjdef(oid) || ' ' || coalesce(stxstattarget, -1) FROM pg_statistic_ext ORDER BY 1",
    "SELECT format('%s %s %s %s %s', evtname, evtevent, evtenabled, evttags, evtfoid::regproc) \
     FROM pg_event_trigger ORDER BY 1",
    "SELECT format('%s %s %s %s %s %s', p.pubname, p.puballtables, p.pubinsert, p.pubupdate, \
       (SELECT string_agg(format('%s.%s %s %s', schemaname, tablename, attnames, rowfilter), '; ' ORDER BY 1) \
        FROM pg_publication_tables pt WHERE pt.pubname = p.pubname), \
       (SELECT string_agg(pnnspid::regnamespace::text, ',') FROM pg_publication_namespace WHERE pnpubid = p.oid)) \
     FROM pg_publication p WHERE p.pubname !~ '^pgmig_' ORDER BY 1",
    "SELECT format('%s %s %s %s', w.fdwname, w.fdwoptions, pg_get_userbyid(w.fdwowner), \
       (SELECT string_agg(format('%s %s %s %s %s', s.srvname, s.srvtype, s.srvversion, s.srvoptions, \
          (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(s.srvacl) x)), '; ') \
        FROM pg_foreign_server s WHERE s.srvfdw = w.oid)) FROM pg_foreign_data_wrapper w ORDER BY 1",
    "SELECT format('%s %s %s', srvname, usename, umoptions) FROM pg_user_mappings ORDER BY 1",
    "SELECT format('%s %s %s %s %s', c.oid::regclass, f.ftoptions, \
       (SELECT array_agg(regexp_replace(x::text, '=([a-zA-Z*]*)m([a-zA-Z*]*)/', '=\\1\\2/') ORDER BY x::text) FROM unnest(c.relacl) x), obj_description(c.oid, 'pg_class'), \
       (SELECT string_agg(format('%s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
          a.attfdwoptions, a.attcollation::regcollation), ', ' ORDER BY a.attnum) \
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)) \
     FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid ORDER BY 1",
];

/// Found on PostgreSQL's regression database: a statement the server cannot parse (a whole batch
/// refused before anything in it runs) used to roll back to the savepoint an earlier refusal
/// left standing, undoing every object created in between while counting them as created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_undo_only_their_own_object_whatever_came_before() {
    use migrator_core::ddl::Statement;
    let cluster = Cluster::start(&ClusterOptions::destination()).unwrap();
    let mut client = connect(&cluster, "postgres").await;
    let statements = [
        Statement::new("TABLE public.a", "CREATE TABLE public.a ()"),
        Statement::new(
            "VIEW public.refused",
            "CREATE VIEW public.refused AS SELECT nothing FROM pg_class",
        ),
        Statement::new("TABLE public.b", "CREATE TABLE public.b ()"),
        Statement::new(
            "TABLE public.unparsable",
            "CREATE TABLE public.unparsable (;",
        ),
        Statement::new("TABLE public.c", "CREATE TABLE public.c ()"),
    ];
    let tx = client.transaction().await.unwrap();
    let migrator_core::destination::Created {
        applied, failed, ..
    } = migrator_core::destination::create(&tx, "test", statements.iter().collect(), false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let refused: Vec<&str> = failed.iter().map(|f| f.object.as_str()).collect();
    assert_eq!(
        refused,
        ["VIEW public.refused", "TABLE public.unparsable"],
        "{failed:#?}"
    );
    assert_eq!(applied, 3);
    assert_eq!(
        rows_in(
            &cluster,
            "postgres",
            "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace"
        )
        .await,
        ["a b c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ranges_statistics_event_triggers_publications_and_foreign_tables_arrive() {
    let (source, destination) = Cluster::start_pair().unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {KINDS_DB}"))
        .await
        .unwrap();
    connect(&source, KINDS_DB)
        .await
        .batch_execute(MORE_KINDS)
        .await
        .unwrap();
    let writer = {
        let client = connect(&source, KINDS_DB).await;
        tokio::spawn(async move {
            loop {
                client
                    .batch_execute(
                        "INSERT INTO public.pairs (a, b) VALUES (3, 6); \
                         INSERT INTO public.shifts (during) VALUES (public.\"time range\"('10:00', '11:00')); \
                         INSERT INTO audit.log (line) VALUES ('tick')",
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let settings = settings(&[("kinds", &source, &destination)], &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let db = wait_until("cutover ready", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("kinds").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == KINDS_DB) {
                Some(db) if db.phase == Phase::CutoverReady => Ok(db.clone()),
                _ => Err(serde_json::to_string_pretty(m).unwrap()),
            }
        }
    })
    .await;
    let codes: Vec<&str> = db.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["replica_identity_full", "unlogged_tables"],
        "{:#?}",
        db.findings
    );
    assert!(db.findings[0].message.contains("public.nothing"));
    assert!(db.findings[1].message.contains("public.cache"));
    for sql in KIND_FACTS {
        let expected = rows_in(&source, KINDS_DB, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(
            rows_in(&destination, KINDS_DB, sql).await,
            expected,
            "{sql}"
        );
    }
    // The schema proof compares every object on both sides: equal.
    let proofs = orchestrator::commands::schema_proof(&settings, Some("kinds"))
        .await
        .unwrap();
    let proof = proofs
        .iter()
        .find(|p| p.database == KINDS_DB)
        .and_then(|p| p.proof.clone())
        .unwrap();
    assert!(proof.compared >= 40, "{proof:?}");
    assert!(proof.differences.is_empty(), "{proof:#?}");
    // Every partition's index is built and attached: the partitioned indexes are valid.
    let invalid = "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1";
    assert_eq!(
        rows_in(&destination, KINDS_DB, invalid).await,
        Vec::<String>::new()
    );
    // Objects of these kinds created on the source from now on are drift.
    connect(&source, KINDS_DB)
        .await
        .batch_execute(
            "CREATE STATISTICS public.late_stats ON a, id FROM public.pairs; \
             CREATE PUBLICATION late_feed FOR TABLE public.shifts; \
             CREATE TYPE public.late_range AS RANGE (SUBTYPE = int8); \
             CREATE TEXT SEARCH TEMPLATE public.late_template (LEXIZE = dsimple_lexize); \
             CREATE ACCESS METHOD late_am TYPE TABLE HANDLER heap_tableam_handler; \
             GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_waldir() TO \"fdw user\"",
        )
        .await
        .unwrap();
    let drift = wait_until("the new objects reported", Duration::from_secs(30), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let found = findings_of(&snapshot, "kinds", KINDS_DB, "schema_drift");
            match found.first() {
                Some(f)
                    if [
                        "late_stats",
                        "late_feed",
                        "late_range",
                        "late_template",
                        "late_am",
                        "pg_ls_waldir",
                    ]
                    .iter()
                    .all(|n| f.message.contains(n)) =>
                {
                    Ok(f.clone())
                }
                _ => Err(format!("{found:#?}")),
            }
        }
    })
    .await;
    assert!(drift.is_blocking(), "{drift:?}");
    let proofs = orchestrator::commands::schema_proof(&settings, Some("kinds"))
        .await
        .unwrap();
    let listed: Vec<String> = proofs
        .iter()
        .find(|p| p.database == KINDS_DB)
        .and_then(|p| p.proof.clone())
        .unwrap()
        .differences
        .iter()
        .map(|d| d.describe())
        .collect();
    for name in [
        "late_stats",
        "late_feed",
        "late_range",
        "late_template",
        "late_am",
        "pg_ls_waldir",
    ] {
        assert!(
            listed.iter().any(|d| d.contains(name)),
            "{name}: {listed:#?}"
        );
    }
    assert!(drift.resolvable_by_resync, "{drift:?}");
    // Resync creates them on the destination, as the schema step would have.
    let done = orchestrator::request_resync(&handle.commands, "kinds")
        .await
        .unwrap();
    for name in [
        "late_stats",
        "late_feed",
        "late_range",
        "late_template",
        "late_am",
        "pg_ls_waldir",
    ] {
        assert!(
            done.iter()
                .any(|l| l.contains(name) && l.contains("created on the destination")),
            "{name}: {done:#?}"
        );
    }
    wait_until("the drift resolved", Duration::from_secs(30), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let found = findings_of(&snapshot, "kinds", KINDS_DB, "schema_drift");
            if found.is_empty() {
                Ok(())
            } else {
                Err(format!("{found:#?}"))
            }
        }
    })
    .await;
    // The extended statistics were built by the ANALYZE after the copy.
    assert_eq!(
        rows_in(
            &destination,
            KINDS_DB,
            "SELECT count(*)::text FROM pg_statistic_ext_data"
        )
        .await,
        ["1"]
    );
    writer.abort();
    let _ = writer.await;
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    // The unlogged table is there, unlogged, with its primary key (its rows would not be).
    assert_eq!(
        rows_in(
            &destination,
            KINDS_DB,
            "SELECT format('%s %s', c.relpersistence, (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)) \
             FROM pg_class c WHERE c.oid = 'public.cache'::regclass"
        )
        .await,
        ["u 1"]
    );
    assert_same_contents(&source, &destination, KINDS_DB).await;
    assert_dumps_equal(&source, &destination, KINDS_DB).await;
    // A partitioned index that cannot become valid on the destination (a partition only the
    // destination has, without the index) is named in a finding, not waited for in silence.
    connect(&destination, KINDS_DB)
        .await
        .batch_execute(
            r#"DROP INDEX public.measures_v;
               CREATE TABLE public.measures_2030 PARTITION OF public."measures ü"
                   FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
               CREATE INDEX measures_v ON ONLY public."measures ü" (v);"#,
        )
        .await
        .unwrap();
    let unbuilt = wait_until("deferred_not_built", Duration::from_secs(60), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            match findings_of(&snapshot, "kinds", KINDS_DB, "deferred_not_built").pop() {
                Some(f) => Ok(f),
                None => Err("no finding yet".to_owned()),
            }
        }
    })
    .await;
    assert!(
        unbuilt.message.contains("measures_v on public.measures ü"),
        "{unbuilt:?}"
    );
    // A changed definition of these kinds is drift too (here the owner of an operator class).
    connect(&source, KINDS_DB)
        .await
        .batch_execute(r#"ALTER OPERATOR CLASS public.empty_ops USING btree OWNER TO "fdw user""#)
        .await
        .unwrap();
    wait_until(
        "the changed operator class",
        Duration::from_secs(60),
        || {
            let snapshot = status.borrow_and_update().clone();
            async move {
                let found = findings_of(&snapshot, "kinds", KINDS_DB, "schema_drift");
                if found.iter().any(|f| f.message.contains("empty_ops")) {
                    Ok(())
                } else {
                    Err(format!("{found:#?}"))
                }
            }
        },
    )
    .await;
    shutdown.cancel();
    let _ = handle.join.await;
}

/// The yardstick of pg_upgrade's own test: the destination dumps the same schema as the source's
/// own dump gives once loaded into PostgreSQL 18 (a scratch database beside it), so that both
/// texts come from the same server version's deparser.
async fn assert_dumps_equal(source: &Cluster, destination: &Cluster, db: &str) {
    let reference = format!("reference {db}");
    let script: String = dump_entries(source, db)
        .iter()
        .map(|entry| {
            // The entry's header line (name, type, schema, owner) is the rest of a comment.
            format!("-- {entry}\n")
        })
        .collect();
    connect(destination, "postgres")
        .await
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            migrator_core::ddl::quote::ident(&reference)
        ))
        .await
        .unwrap();
    connect(destination, &reference)
        .await
        .batch_execute(&script)
        .await
        .unwrap_or_else(|e| {
            panic!("loading the source's dump of {db:?} into PostgreSQL 18: {e:?}")
        });
    let (theirs, ours) = (
        dump_entries(destination, &reference),
        dump_entries(destination, db),
    );
    assert!(theirs.len() >= 5, "{db}: {theirs:#?}");
    let diff = DumpDiff::new(&theirs, &ours);
    assert!(
        diff.missing.is_empty() && diff.extra.is_empty(),
        "{db}: the dumps differ (the source's loaded into 18).\n{}",
        diff.render(|_| true)
    );
    assert_eq!(theirs, ours, "{db}: the same entries in another order");
}
