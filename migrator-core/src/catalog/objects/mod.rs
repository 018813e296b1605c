//! Reads what a database holds besides tables and their data: collations, text search
//! configurations, functions and procedures, views and materialized views, triggers, rules,
//! row-level security, comments, owners, privileges and default privileges.
//!
//! Read only by the schema phase (once per database), never per tick. As in
//! [`super::schema`], `search_path` is emptied first, so the server's deparse functions
//! (`pg_get_functiondef`, `pg_get_viewdef`, `pg_get_triggerdef`, `pg_get_ruledef`,
//! `pg_get_expr`, `regprocedure` output) qualify every name. Object references come from the
//! server's own quoting (`format('%I.%I')`, `regprocedure`), so they are safe SQL.

use tokio_postgres::Client;

use super::model::QualifiedName;
use crate::pg::PgError;

/// Not in a system schema, and not part of an extension (the extension brings it).
const USER_OBJECT: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.objid = {oid} AND x.deptype = 'e' \
                     AND x.classid = '{class}'::regclass)";

fn user_object(class: &str, oid: &str) -> String {
    USER_OBJECT.replace("{oid}", oid).replace("{class}", class)
}

/// A full `CREATE ...` statement as the server printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: QualifiedName,
    pub sql: String,
}

/// A view or materialized view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: QualifiedName,
    pub materialized: bool,
    /// `pg_get_viewdef`.
    pub query: String,
    /// `reloptions` (`security_barrier=true`, `check_option=local`, ...).
    pub options: Vec<String>,
    /// Indexes of a materialized view (`pg_get_indexdef`).
    pub indexes: Vec<String>,
    /// Other views and materialized views it reads, which must exist first.
    pub depends_on: Vec<QualifiedName>,
}

/// A trigger and whether it fires (`pg_trigger.tgenabled`: O origin/local, D disabled,
/// R replica, A always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub table: QualifiedName,
    pub name: String,
    pub sql: String,
    pub enabled: char,
}

/// A row-level security policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub table: QualifiedName,
    pub name: String,
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// Role names; `None` is PUBLIC.
    pub roles: Vec<Option<String>>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// Row-level security switched on for a table (and forced on its owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSecurity {
    pub table: QualifiedName,
    pub forced: bool,
}

/// `COMMENT ON <target> IS <text>`; `target` is SQL (`TABLE "s"."t"`, `COLUMN "s"."t"."c"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub target: String,
    pub text: String,
}

/// One privilege entry: `grantee` (`None` = PUBLIC) holds `privilege`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub grantee: Option<String>,
    pub privilege: String,
    pub grantable: bool,
}

/// Owner and privileges of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    /// `ALTER <owner_kind> <reference> OWNER TO`; `None` when the object follows another's owner
    /// (a sequence owned by a column).
    pub owner_kind: Option<String>,
    /// `GRANT ... ON <grant_kind> <reference>`.
    pub grant_kind: String,
    /// SQL reference (quoted, qualified).
    pub reference: String,
    pub owner: String,
    /// Only for column privileges.
    pub column: Option<String>,
    /// `None`: the object's ACL is the default (nothing to grant or revoke).
    pub acl: Option<Vec<Grant>>,
}

/// `ALTER DEFAULT PRIVILEGES FOR ROLE role [IN SCHEMA schema] ...` on `kind` (TABLES, SEQUENCES,
/// FUNCTIONS, TYPES, SCHEMAS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPrivileges {
    pub role: String,
    pub schema: Option<String>,
    pub kind: String,
    pub acl: Vec<Grant>,
}

/// A user-defined collation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collation {
    pub name: QualifiedName,
    /// `libc`, `icu` or `builtin`.
    pub provider: String,
    pub collate: Option<String>,
    pub ctype: Option<String>,
    pub locale: Option<String>,
    pub deterministic: bool,
}

/// A text search configuration and its token mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSearchConfig {
    pub name: QualifiedName,
    /// Quoted, qualified parser name.
    pub parser: String,
    /// Token type alias -> quoted, qualified dictionaries in order.
    pub mappings: Vec<(String, Vec<String>)>,
}

/// A text search dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSearchDictionary {
    pub name: QualifiedName,
    /// Quoted, qualified template.
    pub template: String,
    /// `dictinitoption` as the server stores it (`stopwords = 'english'`).
    pub options: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectCatalog {
    pub collations: Vec<Collation>,
    pub ts_dictionaries: Vec<TextSearchDictionary>,
    pub ts_configs: Vec<TextSearchConfig>,
    /// Functions and procedures whose signature names no table or view row type and whose body
    /// is not parsed at creation: created before the tables (defaults and checks may call them).
    pub early_functions: Vec<Definition>,
    /// The others: created after the tables.
    pub late_functions: Vec<Definition>,
    /// Views and materialized views, each after those it reads.
    pub views: Vec<View>,
    pub triggers: Vec<Trigger>,
    pub rules: Vec<Definition>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<Policy>,
    pub comments: Vec<Comment>,
    pub privileges: Vec<Privileges>,
    pub default_privileges: Vec<DefaultPrivileges>,
}

/// `[[grantee, privilege, grantable], ...]` as built by [`ACL_JSON`].
fn grants(json: Option<serde_json::Value>) -> Option<Vec<Grant>> {
    let items = json?.as_array()?.clone();
    let mut grants: Vec<Grant> = items
        .iter()
        .filter_map(|item| {
            let item = item.as_array()?;
            Some(Grant {
                grantee: item.first()?.as_str().map(str::to_owned),
                privilege: item.get(1)?.as_str()?.to_owned(),
                grantable: item.get(2)?.as_bool()?,
            })
        })
        .collect();
    grants.sort();
    Some(grants)
}

/// An ACL column as JSON entries `[grantee or null for PUBLIC, privilege, grantable]`; NULL
/// when the ACL is NULL (the default).
fn acl_json(column: &str) -> String {
    format!(
        "CASE WHEN {column} IS NOT NULL THEN coalesce((SELECT json_agg(json_build_array( \
           CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, \
           a.privilege_type, a.is_grantable)) FROM aclexplode({column}) a), '[]'::json) END"
    )
}

/// Topological order: every view after the views it depends on (stable otherwise; a cycle,
/// which PostgreSQL cannot have, keeps the remaining order).
pub fn dependencies_first(views: &mut Vec<View>) {
    let names: std::collections::HashSet<QualifiedName> =
        views.iter().map(|v| v.name.clone()).collect();
    let mut placed = std::collections::HashSet::new();
    let mut rest = std::mem::take(views);
    let mut ordered = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let (ready, waiting): (Vec<View>, Vec<View>) = rest.into_iter().partition(|v| {
            v.depends_on
                .iter()
                .all(|d| placed.contains(d) || !names.contains(d) || *d == v.name)
        });
        if ready.is_empty() {
            ordered.extend(waiting);
            break;
        }
        placed.extend(ready.iter().map(|v| v.name.clone()));
        ordered.extend(ready);
        rest = waiting;
    }
    *views = ordered;
}

/// Reads every object of the database `client` is connected to.
pub async fn read(client: &Client, target: &str) -> Result<ObjectCatalog, PgError> {
    let q = |context: &'static str| move |e| PgError::query(target, context, e);
    client
        .batch_execute("SET search_path = ''")
        .await
        .map_err(q("emptying search_path"))?;
    let name = |r: &tokio_postgres::Row, i: usize| {
        QualifiedName::new(r.get::<_, String>(i), r.get::<_, String>(i + 1))
    };

    let collations = client
        .query(
            &format!(
                "SELECT n.nspname, c.collname, to_jsonb(c) FROM pg_collation c \
                 JOIN pg_namespace n ON n.oid = c.collnamespace WHERE {} ORDER BY c.oid",
                user_object("pg_collation", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing collations"))?
        .iter()
        .map(|r| {
            let json: serde_json::Value = r.get(2);
            let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            Collation {
                name: name(r, 0),
                provider: match text("collprovider").as_deref() {
                    Some("i") => "icu",
                    Some("b") => "builtin",
                    _ => "libc",
                }
                .to_owned(),
                collate: text("collcollate"),
                ctype: text("collctype"),
                locale: text("colllocale").or_else(|| text("colliculocale")),
                deterministic: json
                    .get("collisdeterministic")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(true),
            }
        })
        .collect();

    let ts_dictionaries = client
        .query(
            &format!(
                "SELECT n.nspname, d.dictname, format('%I.%I', tn.nspname, t.tmplname), d.dictinitoption \
                 FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace \
                 JOIN pg_ts_template t ON t.oid = d.dicttemplate JOIN pg_namespace tn ON tn.oid = t.tmplnamespace \
                 WHERE {} ORDER BY d.oid",
                user_object("pg_ts_dict", "d.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing text search dictionaries"))?
        .iter()
        .map(|r| TextSearchDictionary {
            name: name(r, 0),
            template: r.get(2),
            options: r.get(3),
        })
        .collect();

    let config_rows = client
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.cfgname, format('%I.%I', pn.nspname, p.prsname) \
                 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace \
                 JOIN pg_ts_parser p ON p.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = p.prsnamespace \
                 WHERE {} ORDER BY c.oid",
                user_object("pg_ts_config", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing text search configurations"))?;
    let mut ts_configs = Vec::new();
    for r in &config_rows {
        let oid: u32 = r.get(0);
        let mappings = client
            .query(
                "SELECT t.alias, array_agg(format('%I.%I', dn.nspname, d.dictname) ORDER BY m.mapseqno) \
                 FROM pg_ts_config_map m JOIN pg_ts_config c ON c.oid = m.mapcfg \
                 JOIN ts_token_type(c.cfgparser) t ON t.tokid = m.maptokentype \
                 JOIN pg_ts_dict d ON d.oid = m.mapdict JOIN pg_namespace dn ON dn.oid = d.dictnamespace \
                 WHERE m.mapcfg = $1 GROUP BY t.alias, m.maptokentype ORDER BY m.maptokentype",
                &[&oid],
            )
            .await
            .map_err(q("reading text search mappings"))?
            .iter()
            .map(|m| (m.get::<_, String>(0), m.get::<_, Vec<String>>(1)))
            .collect();
        ts_configs.push(TextSearchConfig {
            name: name(r, 1),
            parser: r.get(3),
            mappings,
        });
    }

    let mut early_functions = Vec::new();
    let mut late_functions = Vec::new();
    for r in client
        .query(
            &format!(
                "SELECT n.nspname, p.proname, pg_get_functiondef(p.oid), \
                   (to_jsonb(p) ->> 'prosqlbody') IS NOT NULL OR EXISTS ( \
                     SELECT 1 FROM pg_depend d JOIN pg_type t ON t.oid = d.refobjid \
                     JOIN pg_class c ON c.oid = t.typrelid \
                     WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid \
                       AND d.refclassid = 'pg_type'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE p.prokind IN ('f', 'p', 'w') AND {} ORDER BY p.oid",
                user_object("pg_proc", "p.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing functions"))?
    {
        let def = Definition {
            name: name(&r, 0),
            sql: r.get(2),
        };
        if r.get::<_, bool>(3) {
            late_functions.push(def);
        } else {
            early_functions.push(def);
        }
    }

    let view_rows = client
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_get_viewdef(c.oid), \
                   coalesce(c.reloptions, '{{}}'), \
                   coalesce((SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid) \
                             FROM pg_index i WHERE i.indrelid = c.oid), '{{}}') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('v', 'm') AND {} ORDER BY c.oid",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing views"))?;
    let mut views: Vec<View> = Vec::new();
    for r in &view_rows {
        let depends_on = dependency_names(client, r.get::<_, u32>(0))
            .await
            .map_err(q("reading view dependencies"))?;
        views.push(View {
            name: name(r, 1),
            materialized: r.get(3),
            query: r.get(4),
            options: r.get(5),
            indexes: r.get(6),
            depends_on,
        });
    }
    dependencies_first(&mut views);

    let triggers = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text \
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {} ORDER BY c.oid, t.tgname",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing triggers"))?
        .iter()
        .map(|r| Trigger {
            table: name(r, 0),
            name: r.get(2),
            sql: r.get(3),
            enabled: r.get::<_, String>(4).chars().next().unwrap_or('O'),
        })
        .collect();

    let rules = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, pg_get_ruledef(rw.oid) FROM pg_rewrite rw \
                 JOIN pg_class c ON c.oid = rw.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE rw.rulename <> '_RETURN' AND {} ORDER BY rw.oid",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing rules"))?
        .iter()
        .map(|r| Definition {
            name: name(r, 0),
            sql: r.get(2),
        })
        .collect();

    let row_security = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, c.relforcerowsecurity FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND {} ORDER BY c.oid",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing tables with row-level security"))?
        .iter()
        .map(|r| RowSecurity {
            table: name(r, 0),
            forced: r.get(2),
        })
        .collect();

    let policies = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, p.polname, p.polpermissive, \
                   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
                   (SELECT array_agg(CASE WHEN r = 0 THEN NULL ELSE pg_get_userbyid(r) END) FROM unnest(p.polroles) r), \
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
                 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {} ORDER BY c.oid, p.polname",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q("listing row-level security policies"))?
        .iter()
        .map(|r| Policy {
            table: name(r, 0),
            name: r.get(2),
            permissive: r.get(3),
            command: r.get(4),
            roles: r.get::<_, Option<Vec<Option<String>>>>(5).unwrap_or_default(),
            using: r.get(6),
            with_check: r.get(7),
        })
        .collect();

    let comments = client
        .query(
            &format!(
                "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
                          WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END || ' ' || format('%I.%I', n.nspname, c.relname), d.description \
                 FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'COLUMN ' || format('%I.%I.%I', n.nspname, c.relname, a.attname), d.description \
                 FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE d.objsubid > 0 AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'SCHEMA ' || format('%I', n.nspname), d.description \
                 FROM pg_description d JOIN pg_namespace n ON n.oid = d.objoid AND d.classoid = 'pg_namespace'::regclass \
                 WHERE {nsp} \
                 UNION ALL \
                 SELECT 'ROUTINE ' || p.oid::regprocedure::text, d.description \
                 FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid AND d.classoid = 'pg_proc'::regclass \
                 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p', 'w') AND {proc} \
                 UNION ALL \
                 SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || format('%I.%I', n.nspname, t.typname), d.description \
                 FROM pg_description d JOIN pg_type t ON t.oid = d.objoid AND d.classoid = 'pg_type'::regclass \
                 JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {typ} \
                 UNION ALL \
                 SELECT 'TRIGGER ' || format('%I ON %I.%I', t.tgname, n.nspname, c.relname), d.description \
                 FROM pg_description d JOIN pg_trigger t ON t.oid = d.objoid AND d.classoid = 'pg_trigger'::regclass \
                 JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel} \
                 UNION ALL \
                 SELECT 'POLICY ' || format('%I ON %I.%I', p.polname, n.nspname, c.relname), d.description \
                 FROM pg_description d JOIN pg_policy p ON p.oid = d.objoid AND d.classoid = 'pg_policy'::regclass \
                 JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel}",
                rel = user_object("pg_class", "c.oid"),
                nsp = user_object("pg_namespace", "n.oid"),
                proc = user_object("pg_proc", "p.oid"),
                typ = user_object("pg_type", "t.oid"),
            ),
            &[],
        )
        .await
        .map_err(q("listing comments"))?
        .iter()
        .map(|r| Comment {
            target: r.get(0),
            text: r.get(1),
        })
        .collect();

    let privileges = client
        .query(
            &format!(
                "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
                          WHEN 'S' THEN CASE WHEN EXISTS (SELECT 1 FROM pg_depend dp WHERE dp.classid = 'pg_class'::regclass \
                                         AND dp.objid = c.oid AND dp.deptype IN ('a', 'i')) THEN NULL ELSE 'SEQUENCE' END \
                          ELSE 'TABLE' END, \
                   CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, \
                   format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner), NULL::text, {relacl}, c.oid::bigint \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT NULL, 'TABLE', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner), \
                   a.attname::text, {attacl}, c.oid::bigint \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped \
                   AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'SCHEMA', 'SCHEMA', format('%I', n.nspname), pg_get_userbyid(n.nspowner), NULL, {nspacl}, n.oid::bigint \
                 FROM pg_namespace n WHERE {nsp} \
                 UNION ALL \
                 SELECT 'ROUTINE', 'ROUTINE', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), NULL, {proacl}, p.oid::bigint \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p', 'w') AND {proc} \
                 UNION ALL \
                 SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, 'TYPE', format('%I.%I', n.nspname, t.typname), \
                   pg_get_userbyid(t.typowner), NULL, {typacl}, t.oid::bigint \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 LEFT JOIN pg_class tc ON tc.oid = t.typrelid \
                 WHERE t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR tc.relkind = 'c') AND {typ} \
                 UNION ALL \
                 SELECT 'COLLATION', 'COLLATION', format('%I.%I', n.nspname, co.collname), \
                   pg_get_userbyid(co.collowner), NULL, NULL, co.oid::bigint \
                 FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE {coll} \
                 UNION ALL \
                 SELECT 'TEXT SEARCH DICTIONARY', 'TEXT SEARCH DICTIONARY', format('%I.%I', n.nspname, td.dictname), \
                   pg_get_userbyid(td.dictowner), NULL, NULL, td.oid::bigint \
                 FROM pg_ts_dict td JOIN pg_namespace n ON n.oid = td.dictnamespace WHERE {dict} \
                 UNION ALL \
                 SELECT 'TEXT SEARCH CONFIGURATION', 'TEXT SEARCH CONFIGURATION', format('%I.%I', n.nspname, tc.cfgname), \
                   pg_get_userbyid(tc.cfgowner), NULL, NULL, tc.oid::bigint \
                 FROM pg_ts_config tc JOIN pg_namespace n ON n.oid = tc.cfgnamespace WHERE {cfg} \
                 UNION ALL \
                 SELECT 'DATABASE', 'DATABASE', format('%I', d.datname), pg_get_userbyid(d.datdba), NULL, {datacl}, 0 \
                 FROM pg_database d WHERE d.datname = current_database() \
                 ORDER BY 7, 5 NULLS FIRST",
                relacl = acl_json("c.relacl"),
                attacl = acl_json("a.attacl"),
                nspacl = acl_json("n.nspacl"),
                proacl = acl_json("p.proacl"),
                typacl = acl_json("t.typacl"),
                datacl = acl_json("d.datacl"),
                rel = user_object("pg_class", "c.oid"),
                nsp = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
                proc = user_object("pg_proc", "p.oid"),
                typ = user_object("pg_type", "t.oid"),
                coll = user_object("pg_collation", "co.oid"),
                dict = user_object("pg_ts_dict", "td.oid"),
                cfg = user_object("pg_ts_config", "tc.oid"),
            ),
            &[],
        )
        .await
        .map_err(q("listing owners and privileges"))?
        .iter()
        .map(|r| Privileges {
            owner_kind: r.get(0),
            grant_kind: r.get(1),
            reference: r.get(2),
            owner: r.get(3),
            column: r.get(4),
            acl: grants(r.get(5)),
        })
        .collect();

    let default_privileges = client
        .query(
            &format!(
                "SELECT pg_get_userbyid(d.defaclrole), n.nspname, \
                   CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' \
                                        WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' ELSE 'LARGE OBJECTS' END, {} \
                 FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace \
                 WHERE d.defaclobjtype IN ('r', 'S', 'f', 'T', 'n') ORDER BY d.oid",
                acl_json("d.defaclacl")
            ),
            &[],
        )
        .await
        .map_err(q("listing default privileges"))?
        .iter()
        .map(|r| DefaultPrivileges {
            role: r.get(0),
            schema: r.get(1),
            kind: r.get(2),
            acl: grants(r.get(3)).unwrap_or_default(),
        })
        .collect();

    client
        .batch_execute("RESET search_path")
        .await
        .map_err(q("resetting search_path"))?;
    Ok(ObjectCatalog {
        collations,
        ts_dictionaries,
        ts_configs,
        early_functions,
        late_functions,
        views,
        triggers,
        rules,
        row_security,
        policies,
        comments,
        privileges,
        default_privileges,
    })
}

/// Views and materialized views the view `oid` reads.
async fn dependency_names(
    client: &Client,
    oid: u32,
) -> Result<Vec<QualifiedName>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT dn.nspname, dc.relname FROM pg_rewrite rw \
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid \
               AND d.refclassid = 'pg_class'::regclass \
             JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace \
             WHERE rw.ev_class = $1 AND dc.oid <> $1 AND dc.relkind IN ('v', 'm')",
            &[&oid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}
