//! Roles, permissions and the rest of the schema, PostgreSQL 15 -> 18: after the migration the
//! application's roles log in to the destination with their source passwords and can do exactly
//! what they could on the source.

mod common;

use std::time::Duration;

use common::*;
use migrator_core::config::Settings;
use migrator_core::orchestrator;
use migrator_core::phase::Phase;
use migrator_core::status::{MappingStatus, RoleAction, Snapshot};
use migrator_core::testkit::Cluster;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

const DB: &str = "app db";

/// Roles of the application, created on the source as a superuser.
const ROLES: &str = r#"
    CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw' CONNECTION LIMIT 20;
    CREATE ROLE readonly LOGIN PASSWORD 'ro-pw';
    CREATE ROLE "Audit ""Team""" NOLOGIN;
    GRANT "Audit ""Team""" TO readonly;
    ALTER ROLE app_owner SET statement_timeout = '5s';
    ALTER ROLE readonly SET search_path = app, public;
"#;

/// The application's schema, objects owned by app_owner.
const SCHEMA: &str = r#"
    CREATE SCHEMA app AUTHORIZATION app_owner;
    SET ROLE app_owner;
    ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO readonly;
    GRANT USAGE ON SCHEMA app TO readonly;
    CREATE TABLE app.accounts (
        id bigserial PRIMARY KEY,
        email text NOT NULL,
        balance numeric NOT NULL DEFAULT 0,
        updated_at timestamptz
    );
    REVOKE SELECT ON app.accounts FROM readonly;
    GRANT SELECT (id, email) ON app.accounts TO readonly;
    CREATE TABLE app.audit (id bigserial PRIMARY KEY, note text NOT NULL);
    ALTER TABLE app.audit ENABLE ROW LEVEL SECURITY;
    CREATE POLICY no_secrets ON app.audit FOR SELECT TO readonly USING (note NOT LIKE 'secret%');
    CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN NEW.updated_at := '2000-01-01'; RETURN NEW; END $$;
    CREATE TRIGGER accounts_touch BEFORE UPDATE ON app.accounts
        FOR EACH ROW EXECUTE FUNCTION app.touch();
    CREATE FUNCTION app.log_insert() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO app.audit (note) VALUES ('inserted ' || NEW.email); RETURN NEW; END $$;
    CREATE TRIGGER accounts_log AFTER INSERT ON app.accounts
        FOR EACH ROW EXECUTE FUNCTION app.log_insert();
    ALTER TABLE app.accounts ENABLE ALWAYS TRIGGER accounts_log;
    CREATE VIEW app.rich AS SELECT id, email FROM app.accounts WHERE balance > 100;
    CREATE MATERIALIZED VIEW app.totals AS SELECT count(*) AS n, sum(balance) AS total FROM app.accounts;
    COMMENT ON TABLE app.accounts IS 'customer accounts';
    COMMENT ON COLUMN app.accounts.email IS 'where invoices go';
    COMMENT ON FUNCTION app.touch() IS 'stamps updates';
    RESET ROLE;
    CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
    CREATE COLLATION app."C posix" (provider = libc, locale = 'C');
    CREATE TEXT SEARCH DICTIONARY app.simple_dict (TEMPLATE = pg_catalog.simple, STOPWORDS = english);
    CREATE TEXT SEARCH CONFIGURATION app.docs (COPY = pg_catalog.english);
    ALTER TEXT SEARCH CONFIGURATION app.docs ALTER MAPPING FOR asciiword WITH app.simple_dict, english_stem;
    ALTER TEXT SEARCH CONFIGURATION app.docs OWNER TO app_owner;
    SET ROLE app_owner;
    CREATE DOMAIN app.positive AS numeric CHECK (VALUE > 0);
    CREATE TABLE app.notes (
        id bigserial PRIMARY KEY,
        title text COLLATE app.nocase NOT NULL,
        body text NOT NULL DEFAULT '',
        amount app.positive,
        search tsvector GENERATED ALWAYS AS (to_tsvector('app.docs'::regconfig, body)) STORED
    );
    CREATE PROCEDURE app.add_note(t text, b text) LANGUAGE sql
        BEGIN ATOMIC INSERT INTO app.notes (title, body) VALUES (t, b); END;
    CREATE FUNCTION app.note_count() RETURNS bigint LANGUAGE sql STABLE
        RETURN (SELECT count(*) FROM app.notes);
    CREATE VIEW app.note_titles WITH (security_barrier = true) AS SELECT id, title FROM app.notes;
    CREATE VIEW app.first_titles AS SELECT title FROM app.note_titles WHERE id < 10;
    CREATE RULE no_delete AS ON DELETE TO app.note_titles DO INSTEAD NOTHING;
    CREATE UNIQUE INDEX totals_one ON app.totals (n);
    CALL app.add_note('Hello', 'the quick brown foxes');
    CALL app.add_note('hello again', 'jumped over lazy dogs');
    INSERT INTO app.accounts (email, balance) VALUES ('a@x', 50), ('b@x', 500), ('c@x', 1000);
    INSERT INTO app.audit (note) VALUES ('hello'), ('secret plan');
    REFRESH MATERIALIZED VIEW app.totals;
    RESET ROLE;
"#;

/// What each role tries; run on both sides, every statement rolled back.
const ATTEMPTS: &[(&str, &str)] = &[
    ("app_owner", "SELECT count(*) FROM app.accounts"),
    ("app_owner", "INSERT INTO app.audit (note) VALUES ('x')"),
    ("app_owner", "UPDATE app.accounts SET balance = balance + 1"),
    ("app_owner", "SELECT * FROM app.totals"),
    ("app_owner", "CREATE TABLE app.scratch (x int)"),
    ("readonly", "SELECT id, email FROM accounts"),
    ("readonly", "SELECT balance FROM app.accounts"),
    ("readonly", "SELECT note FROM app.audit ORDER BY id"),
    ("readonly", "INSERT INTO app.audit (note) VALUES ('x')"),
    ("readonly", "SELECT * FROM app.rich"),
    ("readonly", "UPDATE app.accounts SET email = 'z'"),
    ("readonly", "CREATE TABLE app.scratch (x int)"),
    (
        "readonly",
        "SELECT pg_has_role('readonly', 'Audit \"Team\"', 'MEMBER')",
    ),
    ("readonly", "SHOW search_path"),
    (
        "readonly",
        "SELECT title FROM app.notes WHERE title = 'HELLO' COLLATE app.nocase",
    ),
    (
        "readonly",
        "SELECT count(*) FROM app.notes WHERE search @@ to_tsquery('app.docs', 'fox')",
    ),
    ("app_owner", "CALL app.add_note('x', 'y')"),
    ("app_owner", "SELECT app.note_count()"),
    ("app_owner", "DELETE FROM app.note_titles"),
    ("app_owner", "SELECT count(*) FROM app.first_titles"),
    ("app_owner", "SHOW statement_timeout"),
];

/// Every object of schema `app` with its definition, owner and privileges, as text (MAINTAIN,
/// which PostgreSQL 17+ adds to ALL on a table, left out of table ACLs). Views by
/// their columns (pg_get_viewdef prints differently from 16 on; the attempts below run them).
const FINGERPRINT: &str = r#"
    SELECT 'function ' || pg_get_functiondef(p.oid) || pg_get_userbyid(p.proowner) || coalesce(p.proacl::text, '')
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'app'
    UNION ALL SELECT 'relation ' || c.relkind::text || ' ' || c.relname || ' ' || pg_get_userbyid(c.relowner)
        || coalesce(regexp_replace(c.relacl::text, '=([a-zA-Z*]*)m([a-zA-Z*]*)/', '=\1\2/', 'g'), '') || coalesce(array_to_string(c.reloptions, ','), '')
        || (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
        || c.relrowsecurity || c.relforcerowsecurity
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind <> 'i'
    UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i
      JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app'
    UNION ALL SELECT 'column acl ' || c.relname || '.' || a.attname || a.attacl::text FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'app' AND a.attacl IS NOT NULL
    UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'app' AND NOT t.tgisinternal
    UNION ALL SELECT 'rule ' || pg_get_ruledef(r.oid) FROM pg_rewrite r
      JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'app' AND r.rulename <> '_RETURN'
    UNION ALL SELECT 'policy ' || p.polname || p.polcmd::text || p.polroles::regrole[]::text || pg_get_expr(p.polqual, p.polrelid)
      FROM pg_policy p
    UNION ALL SELECT 'collation ' || c.collname || ' ' || c.collprovider::text || ' ' || c.collisdeterministic
      FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE n.nspname = 'app'
    UNION ALL SELECT 'text search ' || c.cfgname || ' ' || pg_get_userbyid(c.cfgowner) || ' '
        || string_agg(m.maptokentype || ':' || m.mapdict::regdictionary::text, ',' ORDER BY m.maptokentype, m.mapseqno)
      FROM pg_ts_config c JOIN pg_ts_config_map m ON m.mapcfg = c.oid
      JOIN pg_namespace n ON n.oid = c.cfgnamespace WHERE n.nspname = 'app' GROUP BY c.cfgname, c.cfgowner
    UNION ALL SELECT 'type ' || t.typname || ' ' || pg_get_userbyid(t.typowner) FROM pg_type t
      JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'app' AND t.typtype = 'd'
    UNION ALL SELECT 'comment ' || d.description FROM pg_description d
      WHERE d.objoid >= 16384 AND d.description NOT LIKE 'postgres-migrator%'
    UNION ALL SELECT 'default acl ' || pg_get_userbyid(d.defaclrole) || d.defaclobjtype::text || d.defaclacl::text
      FROM pg_default_acl d
    UNION ALL SELECT 'schema ' || n.nspname || pg_get_userbyid(n.nspowner) || coalesce(n.nspacl::text, '')
      FROM pg_namespace n WHERE n.nspname = 'app'
    ORDER BY 1
"#;

async fn fingerprint(cluster: &Cluster) -> Vec<String> {
    let client = connect(cluster, DB).await;
    client.batch_execute("SET search_path = ''").await.unwrap();
    client
        .query(FINGERPRINT, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn password(role: &str) -> &'static str {
    match role {
        "app_owner" => "owner-pw",
        _ => "ro-pw",
    }
}

/// Connects as `role` with `password` over TCP (SCRAM, as the clusters' pg_hba wants).
async fn login(
    cluster: &Cluster,
    role: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = cluster.pg_config(DB);
    config.user(role).password(password);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The outcome of every attempt: the rows as text, or the SQLSTATE of the refusal.
async fn abilities(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for (role, sql) in ATTEMPTS {
        let client = login(cluster, role, password(role))
            .await
            .unwrap_or_else(|e| panic!("{role} cannot log in on port {}: {e}", cluster.port()));
        client.batch_execute("BEGIN").await.unwrap();
        let outcome = match client.simple_query(sql).await {
            Ok(messages) => {
                let rows: Vec<String> = messages
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                            (0..r.len())
                                .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                                .collect::<Vec<_>>()
                                .join("|"),
                        ),
                        _ => None,
                    })
                    .collect();
                format!("ok [{}]", rows.join(", "))
            }
            Err(e) => format!("refused {}", e.code().map(|c| c.code()).unwrap_or("?")),
        };
        let _ = client.batch_execute("ROLLBACK").await;
        out.push(format!("{role}: {sql} -> {outcome}"));
    }
    out
}

async fn wait_for_phase(
    handle: &orchestrator::Handle,
    name: &str,
    phase: Phase,
    secs: u64,
) -> MappingStatus {
    let mut status = handle.status.clone();
    wait_until(
        &format!("{name} {phase}"),
        Duration::from_secs(secs),
        || {
            let snapshot: std::sync::Arc<Snapshot> = status.borrow_and_update().clone();
            let name = name.to_owned();
            async move {
                let m = snapshot.mapping(&name).ok_or("no mapping yet")?;
                if m.phase == phase && !m.databases.is_empty() {
                    Ok(m.clone())
                } else {
                    Err(serde_json::to_string_pretty(m).unwrap())
                }
            }
        },
    )
    .await
}

/// Waits until a database of mapping `name` reports a `schema_drift` finding mentioning `needle`
/// (an earlier, unrelated Problematic state does not count); returns its message and fix.
async fn wait_for_drift(handle: &orchestrator::Handle, name: &str, needle: &str) -> String {
    let mut status = handle.status.clone();
    wait_until(
        &format!("drift about {needle}"),
        Duration::from_secs(30),
        || {
            let snapshot: std::sync::Arc<Snapshot> = status.borrow_and_update().clone();
            let (name, needle) = (name.to_owned(), needle.to_owned());
            async move {
                let m = snapshot.mapping(&name).ok_or("no mapping yet")?;
                m.databases
                    .iter()
                    .flat_map(|d| &d.findings)
                    .find(|f| f.code == "schema_drift" && f.message.contains(&needle))
                    .map(|f| format!("{}\nFix: {}", f.message, f.fix))
                    .ok_or_else(|| serde_json::to_string_pretty(m).unwrap())
            }
        },
    )
    .await
}

fn with_app_db(extra: &[(&str, &str)], mapping: &str) -> Vec<(String, String)> {
    let mut env = vec![(
        format!(
            "MIGRATOR__MAPPINGS__{}__DATABASES__INCLUDE",
            mapping.to_uppercase()
        ),
        DB.to_owned(),
    )];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn settings_for(
    source: &Cluster,
    destination: &Cluster,
    mapping: &str,
    extra: &[(&str, &str)],
) -> Settings {
    let env = with_app_db(extra, mapping);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    settings(&[(mapping, source, destination)], &env)
}

async fn set_up_source(source: &Cluster) {
    let admin = connect(source, "postgres").await;
    admin.batch_execute(ROLES).await.unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{DB}\" OWNER app_owner"))
        .await
        .unwrap();
    connect(source, DB)
        .await
        .batch_execute(SCHEMA)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn application_roles_log_in_with_their_passwords_and_can_do_exactly_what_they_could() {
    let (source, destination) = Cluster::start_pair().unwrap();
    set_up_source(&source).await;
    let before = abilities(&source).await;

    let settings = settings_for(&source, &destination, "app", &[]);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let ready = wait_for_phase(&handle, "app", Phase::CutoverReady, 90).await;

    // Roles: created, passwords copied (SCRAM), nothing to report but the held-back trigger.
    for role in ["app_owner", "readonly", "Audit \"Team\""] {
        let r = ready
            .roles
            .iter()
            .find(|r| r.name == role)
            .unwrap_or_else(|| panic!("{role}: {:?}", ready.roles));
        assert!(
            matches!(r.action, RoleAction::Create | RoleAction::Copied),
            "{r:?}"
        );
    }
    assert!(ready.findings.is_empty(), "{:?}", ready.findings);
    let db = &ready.databases[0];
    let held: Vec<_> = db
        .findings
        .iter()
        .filter(|f| f.code == "triggers_held_back")
        .collect();
    assert_eq!(held.len(), 1, "{:?}", db.findings);
    assert!(
        held[0]
            .fix
            .contains("ENABLE ALWAYS TRIGGER \"accounts_log\""),
        "{}",
        held[0].fix
    );

    // The contents are equal: the ENABLE ALWAYS trigger did not fire a second time on the
    // destination (the audit rows it wrote on the source arrived once, by replication).
    assert_same_contents(&source, &destination, DB).await;

    // Every object is there with the same definition, owner and privileges.
    let (on_source, on_destination) = (fingerprint(&source).await, fingerprint(&destination).await);
    assert!(on_source.len() > 25, "{on_source:#?}");
    for (a, b) in on_source.iter().zip(&on_destination) {
        assert_eq!(a, b);
    }
    assert_eq!(on_source.len(), on_destination.len(), "{on_destination:#?}");

    // Each role can do exactly what it could on the source, and no more.
    let after = abilities(&destination).await;
    assert_eq!(before, after);
    assert!(
        before
            .iter()
            .any(|a| a.contains("SELECT balance") && a.contains("refused 42501")),
        "{before:#?}"
    );
    let notes = before.iter().find(|a| a.contains("SELECT note")).unwrap();
    assert!(
        notes.contains("hello") && !notes.contains("secret"),
        "the policy hides secrets: {notes}"
    );
    assert!(
        before
            .iter()
            .any(|a| a.contains("app.totals") && a.contains("ok [3|1550]")),
        "{before:#?}"
    );
    assert!(
        before
            .iter()
            .any(|a| a.contains("SHOW search_path") && a.contains("ok [app, public]")),
        "{before:#?}"
    );

    // Owners, comments, the view's definition, the trigger's state.
    let dst = connect(&destination, DB).await;
    let row = dst
        .query_one(
            "SELECT pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class'), \
               (SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'accounts_log'), \
               (SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'accounts_touch'), \
               (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app') \
             FROM pg_class c WHERE c.oid = 'app.accounts'::regclass",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app_owner");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("customer accounts")
    );
    assert_eq!(row.get::<_, String>(2), "D", "held back until cutover");
    assert_eq!(row.get::<_, String>(3), "O");
    assert_eq!(row.get::<_, String>(4), "app_owner");

    // Default privileges: a table app_owner creates on the destination is readable by readonly.
    let owner = login(&destination, "app_owner", "owner-pw").await.unwrap();
    owner
        .batch_execute("CREATE TABLE app.later (x int); INSERT INTO app.later VALUES (7)")
        .await
        .unwrap();
    let reader = login(&destination, "readonly", "ro-pw").await.unwrap();
    let x: i32 = reader
        .query_one("SELECT x FROM app.later", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 7);
    owner.batch_execute("DROP TABLE app.later").await.unwrap();
    // A wrong password is refused: the hash, not trust, let them in.
    assert!(login(&destination, "readonly", "wrong").await.is_err());

    // Drift: a column and a table added on the source during catch-up block Cutover ready.
    let src = connect(&source, DB).await;
    src.batch_execute(
        "SET ROLE app_owner; ALTER TABLE app.accounts ADD COLUMN nickname text DEFAULT 'none'; \
         UPDATE app.accounts SET nickname = 'big' WHERE balance > 600; \
         CREATE TABLE app.invoices (id serial PRIMARY KEY, account_id bigint, total numeric); \
         INSERT INTO app.invoices (account_id, total) SELECT id, balance FROM app.accounts;",
    )
    .await
    .unwrap();
    let drift = wait_for_drift(&handle, "app", "table app.invoices was created").await;
    assert!(
        drift.contains("column nickname (text) was added to app.accounts")
            && drift.contains("table app.invoices was created on the source"),
        "{drift}"
    );
    assert!(
        drift.contains(
            "ALTER TABLE \"app\".\"accounts\" ADD COLUMN \"nickname\" text DEFAULT 'none'::text"
        ),
        "{drift}"
    );
    // The tool applies the safe changes itself when asked, and the mapping goes on by itself.
    let done = orchestrator::request_resync(&handle.commands, "app")
        .await
        .unwrap();
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(
        done.iter().all(|line| !line.contains("left for you")),
        "{done:#?}"
    );
    src.batch_execute("INSERT INTO app.invoices (account_id, total) VALUES (1, 1); UPDATE app.accounts SET nickname = 'late'")
        .await
        .unwrap();
    wait_for_phase(&handle, "app", Phase::CutoverReady, 60).await;
    wait_until_replicated(&source, Duration::from_secs(30)).await;
    assert_same_contents(&source, &destination, DB).await;
    let row = dst
        .query_one(
            "SELECT pg_get_userbyid(relowner), relacl::text FROM pg_class WHERE oid = 'app.invoices'::regclass",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app_owner");
    let acl: Option<String> = row.get(1);
    assert!(
        acl.as_deref()
            .unwrap_or_default()
            .contains("readonly=r/app_owner"),
        "the default privileges gave readonly SELECT on the source: {acl:?}"
    );

    // Other DDL (a function's body, a grant) is drift too, with nothing the tool applies itself.
    const OTHER_DDL: &str = "SET ROLE app_owner; \
        CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS \
            $$ BEGIN NEW.updated_at := '2001-01-01'; RETURN NEW; END $$; \
        GRANT SELECT ON app.audit TO \"Audit \"\"Team\"\"\"; RESET ROLE";
    src.batch_execute(OTHER_DDL).await.unwrap();
    let drift = wait_for_drift(&handle, "app", "function app.touch() differs").await;
    assert!(drift.contains("table app.audit differs"), "{drift}");
    let done = orchestrator::request_resync(&handle.commands, "app")
        .await
        .unwrap();
    assert!(
        !done.is_empty() && done.iter().all(|line| line.contains("left for you")),
        "{done:#?}"
    );
    dst.batch_execute(OTHER_DDL).await.unwrap();
    wait_for_phase(&handle, "app", Phase::CutoverReady, 60).await;

    shutdown.cancel();
    handle.join.await.unwrap();
}

/// Source role `app` (LOGIN, member of `readers`); the destination has its own `app` already.
async fn conflict(strategy: &str) -> (Cluster, Cluster, MappingStatus) {
    let (source, destination) = Cluster::start_pair().unwrap();
    let admin = connect(&source, "postgres").await;
    admin
        .batch_execute(
            "CREATE ROLE readers NOLOGIN; CREATE ROLE app LOGIN PASSWORD 'src-pw' IN ROLE readers",
        )
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{DB}\""))
        .await
        .unwrap();
    connect(&destination, "postgres")
        .await
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'dst-pw' CONNECTION LIMIT 3")
        .await
        .unwrap();
    let settings = settings_for(
        &source,
        &destination,
        "c",
        &[("MIGRATOR__MIGRATION__ROLE_CONFLICT_STRATEGY", strategy)],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let phase = if strategy == "fail" {
        Phase::Problematic
    } else {
        Phase::CutoverReady
    };
    let status = wait_for_phase(&handle, "c", phase, 60).await;
    shutdown.cancel();
    handle.join.await.unwrap();
    (source, destination, status)
}

async fn destination_app(destination: &Cluster) -> (i32, bool, bool) {
    let row = connect(destination, "postgres")
        .await
        .query_one(
            "SELECT r.rolconnlimit, EXISTS (SELECT 1 FROM pg_auth_members am \
                 JOIN pg_roles g ON g.oid = am.roleid WHERE g.rolname = 'readers' AND am.member = r.oid), \
               EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) \
             FROM pg_roles r WHERE r.rolname = 'app'",
            &[&DB],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_conflict_fail_refuses_in_preflight_and_creates_nothing() {
    let (_source, destination, status) = conflict("fail").await;
    let finding = status
        .findings
        .iter()
        .find(|f| f.code == "role_conflict")
        .expect("refused");
    assert!(finding.is_blocking());
    assert!(finding.message.contains("\"app\""), "{}", finding.message);
    let readers: i64 = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'readers'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        readers, 0,
        "nothing is created while a role conflict stands"
    );
    let (limit, member, db_exists) = destination_app(&destination).await;
    assert_eq!((limit, member, db_exists), (3, false, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_conflict_skip_leaves_the_existing_role_untouched() {
    let (_source, destination, status) = conflict("skip").await;
    assert!(
        status
            .findings
            .iter()
            .any(|f| f.code == "role_skipped" && f.message.contains("\"app\"")),
        "{:?}",
        status.findings
    );
    let (limit, member, db_exists) = destination_app(&destination).await;
    assert_eq!((limit, member, db_exists), (3, false, true));
    // Its own password still works; the source's does not.
    assert!(login(&destination, "app", "dst-pw").await.is_ok());
    assert!(login(&destination, "app", "src-pw").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_conflict_merge_adds_memberships_and_weakens_nothing() {
    let (_source, destination, status) = conflict("merge").await;
    assert!(
        status.findings.iter().any(|f| f.code == "role_merged"),
        "{:?}",
        status.findings
    );
    let (limit, member, db_exists) = destination_app(&destination).await;
    assert_eq!((limit, member, db_exists), (3, true, true));
    assert!(login(&destination, "app", "dst-pw").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_role_that_cannot_read_pg_authid_gets_the_fallback_password() {
    let (source, destination) = Cluster::start_pair().unwrap();
    set_up_source(&source).await;
    // The tool connects as a non-superuser: REPLICATION, member of the tables' owner.
    connect(&source, "postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE migrator LOGIN REPLICATION PASSWORD 'm-pw' IN ROLE app_owner; \
             GRANT CREATE ON DATABASE \"{DB}\" TO migrator"
        ))
        .await
        .unwrap();
    // Every statement the destination runs is written to its log.
    let admin = connect(&destination, "postgres").await;
    for sql in [
        "ALTER SYSTEM SET log_statement = 'all'",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let fallback = "fallback-Secret-9";
    let settings = settings_for(
        &source,
        &destination,
        "fb",
        &[
            ("MIGRATOR__MAPPINGS__FB__SOURCE__USER", "migrator"),
            ("MIGRATOR__MAPPINGS__FB__SOURCE__PASSWORD", "m-pw"),
            ("MIGRATOR__MIGRATION__FALLBACK_PASSWORD", fallback),
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let ready = wait_for_phase(&handle, "fb", Phase::CutoverReady, 90).await;
    let json = serde_json::to_string(&*handle.status.borrow().clone()).unwrap();
    shutdown.cancel();
    handle.join.await.unwrap();

    let finding = ready
        .findings
        .iter()
        .find(|f| f.code == "role_fallback_password")
        .unwrap_or_else(|| panic!("{:?}", ready.findings));
    assert!(
        finding.message.contains("\"app_owner\"") && finding.message.contains("\"readonly\""),
        "{}",
        finding.message
    );
    assert!(
        !json.contains(fallback),
        "the fallback password leaked into the status"
    );
    assert!(
        ready
            .findings
            .iter()
            .any(|f| f.code == "source_not_superuser")
    );
    assert_same_contents(&source, &destination, DB).await;
    // The roles log in with the fallback password (their source hashes were unreadable).
    assert!(login(&destination, "app_owner", fallback).await.is_ok());
    assert!(login(&destination, "app_owner", "owner-pw").await.is_err());
    // The password was hashed before it was sent: the destination logged the statement, with a
    // SCRAM verifier and not the password.
    let log = destination.server_log();
    assert!(
        log.contains("PASSWORD 'SCRAM-SHA-256$4096:"),
        "the ALTER ROLE was logged"
    );
    assert!(
        !log.contains(fallback),
        "the fallback password reached the destination in plain text"
    );
}

/// The permission model of managed services (RDS, Cloud SQL, Azure): no superuser anywhere. The
/// source admin has REPLICATION, CREATEROLE, `pg_read_all_data` and membership in the
/// application's owner; the destination admin has CREATEDB, CREATEROLE and
/// `pg_create_subscription` (PostgreSQL 16+).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_migration_without_a_superuser_on_either_side_as_on_managed_services() {
    let (source, destination) = Cluster::start_pair().unwrap();
    set_up_source(&source).await;
    // On a managed service nothing belongs to a superuser: the application's roles own it all.
    connect(&source, DB)
        .await
        .batch_execute(
            "ALTER COLLATION app.nocase OWNER TO app_owner; \
             ALTER COLLATION app.\"C posix\" OWNER TO app_owner; \
             ALTER TEXT SEARCH DICTIONARY app.simple_dict OWNER TO app_owner; \
             CREATE UNLOGGED TABLE app.scratch (id int PRIMARY KEY); \
             ALTER TABLE app.scratch OWNER TO app_owner",
        )
        .await
        .unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE provider_admin LOGIN REPLICATION CREATEROLE PASSWORD 'src-admin-pw'; \
             GRANT pg_read_all_data TO provider_admin; \
             GRANT app_owner TO provider_admin; \
             GRANT CREATE ON DATABASE \"{DB}\" TO provider_admin"
        ))
        .await
        .unwrap();
    connect(&destination, "postgres")
        .await
        .batch_execute(
            "CREATE ROLE dest_admin LOGIN CREATEDB CREATEROLE PASSWORD 'dst-admin-pw'; \
             GRANT pg_create_subscription TO dest_admin",
        )
        .await
        .unwrap();
    let fallback = "managed-Fallback-1";
    let settings = settings_for(
        &source,
        &destination,
        "managed",
        &[
            (
                "MIGRATOR__MAPPINGS__MANAGED__SOURCE__USER",
                "provider_admin",
            ),
            (
                "MIGRATOR__MAPPINGS__MANAGED__SOURCE__PASSWORD",
                "src-admin-pw",
            ),
            (
                "MIGRATOR__MAPPINGS__MANAGED__DESTINATION__USER",
                "dest_admin",
            ),
            (
                "MIGRATOR__MAPPINGS__MANAGED__DESTINATION__PASSWORD",
                "dst-admin-pw",
            ),
            ("MIGRATOR__MIGRATION__FALLBACK_PASSWORD", fallback),
        ],
    );
    // Preflight names the grant the copy needs, and nothing is created meanwhile.
    let first = orchestrator::commands::status(&settings, Some("managed"))
        .await
        .unwrap();
    let refused = first.mapping("managed").unwrap();
    let finding = refused
        .findings
        .iter()
        .find(|f| f.code == "destination_session_replication_role")
        .unwrap_or_else(|| panic!("{:?}", refused.findings));
    assert!(
        finding
            .fix
            .contains("GRANT SET ON PARAMETER session_replication_role TO \"dest_admin\""),
        "{}",
        finding.fix
    );
    let created: i64 = connect(&destination, "postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&DB],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0, "preflight created the database");
    // Managed services give their admin role this parameter; here a superuser grants it.
    connect(&destination, "postgres")
        .await
        .batch_execute("GRANT SET ON PARAMETER session_replication_role TO dest_admin")
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let ready = wait_for_phase(&handle, "managed", Phase::CutoverReady, 120).await;
    // Writes now arrive through the subscription, applied as each table's owner (the admin is
    // not a superuser), into tables with row-level security among them.
    connect(&source, DB)
        .await
        .batch_execute(
            "INSERT INTO app.accounts (email, balance) VALUES ('late@x', 7); \
             INSERT INTO app.audit (note) VALUES ('secret late'); \
             UPDATE app.accounts SET balance = balance + 1 WHERE email = 'a@x'",
        )
        .await
        .unwrap();
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    shutdown.cancel();
    handle.join.await.unwrap();

    let codes: Vec<String> = ready
        .findings
        .iter()
        .chain(ready.databases.iter().flat_map(|d| &d.findings))
        .map(|f| f.code.to_string())
        .collect();
    eprintln!("findings: {codes:?}");
    // The publication lists the tables (no superuser for FOR ALL TABLES): not the unlogged one,
    // which is created on the destination all the same.
    for expected in [
        "source_not_superuser",
        "role_attributes_withheld",
        "unlogged_tables",
    ] {
        assert!(codes.iter().any(|c| c == expected), "{codes:?}");
    }
    let withheld = ready
        .findings
        .iter()
        .find(|f| f.code == "role_attributes_withheld")
        .unwrap();
    assert!(
        withheld
            .message
            .contains("\"provider_admin\" (REPLICATION)")
            && withheld
                .message
                .contains("\"provider_admin\" (member of \"pg_read_all_data\")"),
        "{}",
        withheld.message
    );
    assert_same_contents(&source, &destination, DB).await;
    // pg_read_all_data may read pg_authid on PostgreSQL itself, so the hashes were copied and
    // the fallback was not needed (a provider that hides pg_authid gets the fallback, as the
    // test above shows).
    assert!(login(&destination, "app_owner", "owner-pw").await.is_ok());
    assert!(login(&destination, "app_owner", fallback).await.is_err());
    // The application's tables belong to its roles, not to the admin that created them.
    let owner: String = connect(&destination, DB)
        .await
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'accounts'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "app_owner");
}
