//! Reads what a database holds besides tables and their data: collations, text search
//! configurations, functions, procedures and aggregates, views and materialized views, triggers, rules,
//! row-level security, comments, owners, privileges and default privileges.
//!
//! Read only by the schema phase (once per database), never per tick. As in
//! [`super::schema`], `search_path` is emptied first, so the server's deparse functions
//! (`pg_get_functiondef`, `pg_get_viewdef`, `pg_get_triggerdef`, `pg_get_ruledef`,
//! `pg_get_expr`, `regprocedure` output) qualify every name. Object references come from the
//! server's own quoting (`format('%I.%I')`, `regprocedure`), so they are safe SQL.

mod definitions;
mod more;
pub mod security;
mod support;

use crate::pg::{PgError, Session, q};

use super::model::QualifiedName;

pub use definitions::dependencies_first;

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
    /// The object as findings and `schema_exclude` name it (`ROUTINE public.f(integer)`,
    /// `RULE r ON public.t`).
    pub object: String,
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
    /// A materialized view's table access method when not `heap`.
    pub access_method: Option<String>,
    /// Other views and materialized views it reads, which must exist first.
    pub depends_on: Vec<QualifiedName>,
    /// Its columns as `NULL::type [COLLATE c] AS name`: the select list of a placeholder view
    /// that breaks a dependency cycle (see `phases::schema`).
    pub placeholder_columns: Vec<String>,
}

/// A trigger and whether it fires (`pg_trigger.tgenabled`: O origin/local, D disabled,
/// R replica, A always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub table: QualifiedName,
    pub name: String,
    /// `pg_get_triggerdef`; empty for a partition's clone (its parent's trigger makes it).
    pub sql: String,
    pub enabled: char,
    /// A partition's clone of its parent's trigger, read only when enabled otherwise than
    /// the parent's: the parent's state.
    pub parent_enabled: Option<char>,
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
    /// The object it belongs to, named as in [`Definition::object`] (a column's comment belongs
    /// to its table).
    pub object: String,
}

/// One privilege entry: `grantee` (`None` = PUBLIC) holds `privilege`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub grantee: Option<String>,
    pub privilege: String,
    pub grantable: bool,
}

/// A privilege on a system object (a function, table or column in `pg_catalog`) granted or
/// revoked on the source since the database was made (`pg_init_privs` holds the first ones),
/// as pg_dump carries it: a monitoring role's `GRANT EXECUTE ON FUNCTION pg_catalog....`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemGrant {
    /// `FUNCTION pg_catalog.pg_ls_dir(text)`, `TABLE pg_catalog.pg_authid`.
    pub on: String,
    /// The column, for a column's privilege.
    pub column: Option<String>,
    pub grant: Grant,
    /// Taken away from the first privileges rather than given.
    pub revoked: bool,
}

impl SystemGrant {
    /// How findings and `schema_exclude` name it: `PRIVILEGES ON FUNCTION
    /// pg_catalog.pg_ls_dir(text)`, `PRIVILEGES ON TABLE pg_catalog.pg_authid (rolname)`.
    pub fn object(&self) -> String {
        match &self.column {
            Some(c) => format!("PRIVILEGES ON {} ({c})", self.on),
            None => format!("PRIVILEGES ON {}", self.on),
        }
    }
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
    /// The object, named as in [`Definition::object`] (a column belongs to its table).
    pub object: String,
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
    /// Aggregates: created after every function (their support functions).
    pub aggregates: Vec<Definition>,
    /// Base types: created as shells with the other types, then in full after the functions
    /// (their input and output functions).
    pub base_types: Vec<Definition>,
    /// Range types (with their multirange types): after the other types.
    pub range_types: Vec<Definition>,
    /// Procedural languages: after the functions (their handlers), before the functions in them
    /// (those are created again in a later pass).
    pub languages: Vec<Definition>,
    /// Operators, then casts: after the functions they call, before the tables.
    pub operators_and_casts: Vec<Definition>,
    /// Access methods, operator families and classes, conversions, text search parsers and
    /// templates, transforms: after the operators and functions they name, before the tables
    /// (a table's access method, an index's operator class).
    pub support: Vec<Definition>,
    /// Extended statistics: after the tables, so the ANALYZE after the copy fills them.
    pub statistics: Vec<Definition>,
    /// Event triggers: last, so they do not fire on the schema's own statements.
    pub event_triggers: Vec<Definition>,
    /// The source's own publications (not the tool's): after the tables they list.
    pub publications: Vec<Definition>,
    /// Foreign-data wrappers, servers and user mappings, then foreign tables: after the tables,
    /// before what may read them.
    pub foreign_servers: Vec<Definition>,
    pub foreign_tables: Vec<Definition>,
    /// Views and materialized views, each after those it reads.
    pub views: Vec<View>,
    pub triggers: Vec<Trigger>,
    pub rules: Vec<Definition>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<Policy>,
    pub comments: Vec<Comment>,
    pub privileges: Vec<Privileges>,
    pub default_privileges: Vec<DefaultPrivileges>,
    pub system_grants: Vec<SystemGrant>,
}

/// What each object of the database `client` is connected to depends on (see
/// [`crate::ddl::dependency_order`]).
pub async fn dependencies(client: &Session) -> Result<Vec<(String, String)>, PgError> {
    client
        .batch_execute("SET search_path = ''")
        .await
        .map_err(q(client.target(), "emptying search_path"))?;
    let dependencies = definitions::dependencies(client).await?;
    client
        .batch_execute("RESET search_path")
        .await
        .map_err(q(client.target(), "resetting search_path"))?;
    Ok(dependencies)
}

/// Reads every object of the database `client` is connected to.
pub async fn read(client: &Session) -> Result<ObjectCatalog, PgError> {
    client
        .batch_execute("SET search_path = ''")
        .await
        .map_err(q(client.target(), "emptying search_path"))?;
    let collations = definitions::collations(client).await?;
    let ts_dictionaries = definitions::text_search_dictionaries(client).await?;
    let ts_configs = definitions::text_search_configs(client).await?;
    let (early_functions, late_functions) = definitions::functions(client).await?;
    let aggregates = definitions::aggregates(client).await?;
    let base_types = support::base_types(client).await?;
    let range_types = more::range_types(client).await?;
    let languages = support::languages(client).await?;
    let operators_and_casts = more::operators_and_casts(client).await?;
    let support = support::support(client).await?;
    let statistics = more::statistics(client).await?;
    let event_triggers = more::event_triggers(client).await?;
    let publications = more::publications(client).await?;
    let foreign_servers = more::foreign_servers(client).await?;
    let foreign_tables = more::foreign_tables(client).await?;
    let views = definitions::views(client).await?;
    let triggers = definitions::triggers(client).await?;
    let rules = definitions::rules(client).await?;
    let row_security = security::row_security(client).await?;
    let policies = security::policies(client).await?;
    let comments = definitions::comments(client).await?;
    let privileges = security::privileges(client).await?;
    let default_privileges = security::default_privileges(client).await?;
    let system_grants = security::system_grants(client).await?;
    client
        .batch_execute("RESET search_path")
        .await
        .map_err(q(client.target(), "resetting search_path"))?;
    Ok(ObjectCatalog {
        collations,
        ts_dictionaries,
        ts_configs,
        early_functions,
        late_functions,
        aggregates,
        base_types,
        range_types,
        languages,
        operators_and_casts,
        support,
        statistics,
        event_triggers,
        publications,
        foreign_servers,
        foreign_tables,
        views,
        triggers,
        rules,
        row_security,
        policies,
        comments,
        privileges,
        default_privileges,
        system_grants,
    })
}

/// Runs `sql` (`what` names it in an error) and reads each row as a [`Definition`]: schema and
/// name in columns 0 and 1, the statement in 2, the object's name in 3.
async fn definitions(
    client: &Session,
    what: &'static str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Definition>, PgError> {
    Ok(client
        .query(sql, params)
        .await
        .map_err(q(client.target(), what))?
        .iter()
        .map(|r| Definition {
            name: name(r, 0),
            sql: r.get(2),
            object: r.get(3),
        })
        .collect())
}

/// The schema-qualified name in columns `i` and `i + 1` of a row.
fn name(r: &tokio_postgres::Row, i: usize) -> QualifiedName {
    QualifiedName::new(r.get::<_, String>(i), r.get::<_, String>(i + 1))
}
