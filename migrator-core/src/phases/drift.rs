//! Schema drift: DDL run on the source after the schema phase. Logical replication carries no
//! DDL, so a column added on the source stops the apply worker ("logical replication target
//! relation is missing replicated columns") and a table created there never reaches the
//! destination. Every tick of a replicating database compares the source's tables and columns
//! with the destination's ([`compare`], pure); each difference is a blocking finding naming the
//! object, what changed and the statements that resolve it, so Cutover ready waits until the
//! operator has run them (the tool re-checks every tick and goes on by itself), or has let the
//! tool apply the safe part ([`resync`]: new tables, columns and other objects).

use std::collections::{BTreeMap, BTreeSet};

use crate::pg::{PgError, Session};

use super::{MappingContext, q};
use crate::catalog::model::{Column, QualifiedName, SchemaCatalog, Table};
use crate::catalog::objects::security::SYSTEM_GRANTS;
use crate::catalog::{objects, roles, schema as catalog};
use crate::ddl;
use crate::ddl::column_definition;
use crate::ddl::quote::{ident, qualified};
use crate::destination;
use crate::findings::{Code, Finding};

/// One difference between the source and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    TableAdded {
        table: QualifiedName,
    },
    TableDropped {
        table: QualifiedName,
    },
    ColumnAdded {
        table: QualifiedName,
        column: Box<Column>,
    },
    ColumnDropped {
        table: QualifiedName,
        column: String,
    },
    ColumnTypeChanged {
        table: QualifiedName,
        column: String,
        source: String,
        destination: String,
    },
    /// Another object (function, view, trigger, policy, schema) or the owner, privileges or
    /// row-level security of a table differs.
    ObjectChanged {
        kind: String,
        name: String,
        change: ObjectChange,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectChange {
    Added,
    Dropped,
    Changed,
}

/// One object as [`SIGNATURES`] describes it: kind, name, and what must be equal on both sides.
pub type Signature = (String, String, String);

/// Every object the schema phase copies besides columns, with what identifies its definition in
/// a form both versions print alike (function source and owner, view columns, trigger type and
/// function, policy command and roles, owners, ACLs with their entries sorted (the order of
/// entries depends on the order of the grants), row-level security flags). Deparsed view
/// text and trigger conditions are left out: PostgreSQL 16+ prints them differently.
pub const SIGNATURES: &str = "
    SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'function' END, format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
           md5(coalesce(p.prosrc, '')) || ' ' || pg_get_userbyid(p.proowner) || ' ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) x), ''),
           'ROUTINE ' || p.oid::regprocedure::text
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prokind IN ('f', 'p', 'w', 'a') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid AND x.deptype = 'e')
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
           format('%I.%I', n.nspname, c.relname),
           pg_get_userbyid(c.relowner) || ' ' || coalesce((SELECT string_agg(regexp_replace(x::text, '=([a-zA-Z*]*)m([a-zA-Z*]*)/', '=\\1\\2/'), ',' ORDER BY x::text) FROM unnest(c.relacl) x), '') || ' ' || c.relrowsecurity || c.relforcerowsecurity
           || CASE WHEN c.relkind IN ('v', 'm') THEN ' ' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ELSE '' END,
           CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END || ' ' || n.nspname || '.' || c.relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence = 'p'
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = c.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'trigger', format('%I on %I.%I', t.tgname, n.nspname, c.relname), t.tgtype || ' ' || t.tgfoid::regproc::text,
           'TRIGGER ' || t.tgname || ' ON ' || n.nspname || '.' || c.relname
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    UNION ALL
    SELECT 'policy', format('%I on %I.%I', p.polname, n.nspname, c.relname),
           p.polcmd::text || ' ' || p.polpermissive || ' ' || p.polroles::regrole[]::text,
           'POLICY ' || p.polname || ' ON ' || n.nspname || '.' || c.relname
      FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'schema', format('%I', n.nspname), pg_get_userbyid(n.nspowner) || ' ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) x), ''),
           'SCHEMA ' || n.nspname
      FROM pg_namespace n
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_namespace'::regclass AND x.objid = n.oid AND x.deptype = 'e')
    UNION ALL
    SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type' ELSE 'type' END,
           format('%I.%I', n.nspname, t.typname),
           pg_get_userbyid(t.typowner) || ' ' || CASE t.typtype
             WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
             WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull::text
             ELSE '' END,
           CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || n.nspname || '.' || t.typname
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_class tc ON tc.oid = t.typrelid
     WHERE t.typtype IN ('e', 'd', 'r', 'c') AND (t.typrelid = 0 OR tc.relkind = 'c')
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass AND x.objid = t.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'statistics', format('%I.%I', n.nspname, s.stxname),
           pg_get_userbyid(s.stxowner) || ' ' || s.stxrelid::regclass::text || ' ' || s.stxkind::text || ' '
           || coalesce((SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a
                         WHERE a.attrelid = s.stxrelid AND a.attnum = ANY (s.stxkeys)), ''),
           'STATISTICS ' || n.nspname || '.' || s.stxname
      FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_statistic_ext'::regclass AND x.objid = s.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'rule', format('%I on %I.%I', r.rulename, n.nspname, c.relname), r.ev_type::text || ' ' || r.is_instead::text,
           'RULE ' || r.rulename || ' ON ' || n.nspname || '.' || c.relname
      FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE r.rulename <> '_RETURN' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = c.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'event trigger', format('%I', e.evtname),
           e.evtevent || ' ' || e.evtenabled::text || ' ' || e.evtfoid::regproc::text || ' ' || coalesce(e.evttags::text, ''),
           'EVENT TRIGGER ' || e.evtname
      FROM pg_event_trigger e
     WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_event_trigger'::regclass AND x.objid = e.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'publication', format('%I', p.pubname),
           p.puballtables::text || ' ' || p.pubinsert::text || p.pubupdate::text || p.pubdelete::text || p.pubtruncate::text || ' ' || p.pubviaroot::text
           || ' ' || pg_get_userbyid(p.pubowner),
           'PUBLICATION ' || p.pubname
      FROM pg_publication p
    UNION ALL
    SELECT 'server', format('%I', s.srvname), coalesce(s.srvoptions::text, '') || ' ' || pg_get_userbyid(s.srvowner),
           'SERVER ' || s.srvname
      FROM pg_foreign_server s
     WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_foreign_server'::regclass AND x.objid = s.oid AND x.deptype = 'e')
    UNION ALL
    SELECT o.type, o.identity, k.def, upper(o.type) || ' ' || o.identity
      FROM (SELECT 'pg_language'::regclass AS class, l.oid,
                   concat_ws(' ', l.lanpltrusted, l.lanplcallfoid::regproc, l.laninline::regproc,
                             l.lanvalidator::regproc, pg_get_userbyid(l.lanowner)) AS def
              FROM pg_language l WHERE l.lanispl
            UNION ALL SELECT 'pg_am'::regclass, a.oid, concat_ws(' ', a.amtype, a.amhandler::regproc) FROM pg_am a
            UNION ALL SELECT 'pg_opfamily'::regclass, f.oid,
                   concat_ws(' ', pg_get_userbyid(f.opfowner),
                     (SELECT string_agg(concat_ws(' ', m.amopstrategy, m.amopopr::regoperator, m.amoppurpose), ','
                                        ORDER BY m.amopstrategy, m.amopopr::regoperator::text)
                        FROM pg_amop m WHERE m.amopfamily = f.oid),
                     (SELECT string_agg(concat_ws(' ', m.amprocnum, m.amproc::regprocedure), ','
                                        ORDER BY m.amprocnum, m.amproc::regprocedure::text)
                        FROM pg_amproc m WHERE m.amprocfamily = f.oid))
              FROM pg_opfamily f
            UNION ALL SELECT 'pg_opclass'::regclass, c.oid,
                   concat_ws(' ', pg_get_userbyid(c.opcowner), c.opcintype::regtype, c.opcdefault, c.opckeytype::regtype)
              FROM pg_opclass c
            UNION ALL SELECT 'pg_conversion'::regclass, c.oid,
                   concat_ws(' ', pg_get_userbyid(c.conowner), pg_encoding_to_char(c.conforencoding),
                             pg_encoding_to_char(c.contoencoding), c.conproc::regproc, c.condefault)
              FROM pg_conversion c
            UNION ALL SELECT 'pg_ts_parser'::regclass, p.oid,
                   concat_ws(' ', p.prsstart::regproc, p.prstoken::regproc, p.prsend::regproc,
                             p.prsheadline::regproc, p.prslextype::regproc)
              FROM pg_ts_parser p
            UNION ALL SELECT 'pg_ts_template'::regclass, t.oid, concat_ws(' ', t.tmplinit::regproc, t.tmpllexize::regproc)
              FROM pg_ts_template t) k,
           LATERAL pg_identify_object(k.class, k.oid, 0) o
     WHERE k.oid >= 16384
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = k.class AND x.objid = k.oid AND x.deptype = 'e')
    UNION ALL
    -- pg_identify_object prints a transform differently in 15 and 18.
    SELECT 'transform', format('%s language %I', format_type(t.trftype, NULL), l.lanname), '',
           'TRANSFORM ' || (pg_identify_object('pg_transform'::regclass, t.oid, 0)).identity
      FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang
     WHERE t.oid >= 16384
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_transform'::regclass AND x.objid = t.oid AND x.deptype = 'e')
    UNION ALL
    SELECT 'base type', format('%I.%I', n.nspname, t.typname), t.typinput::regproc::text || ' ' || t.typoutput::regproc::text,
           'TYPE ' || n.nspname || '.' || t.typname
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typtype = 'b' AND t.typisdefined AND t.oid >= 16384 AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
       AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass AND x.objid = t.oid AND x.deptype = 'e')";

/// Reads [`SIGNATURES`] of the database `client` is connected to, but for the objects
/// `excluded` (the `schema_exclude` setting; named as `ddl::Statement::object` names them, with
/// `search_path` emptied as when they were read for the schema).
pub async fn signatures(
    client: &Session,
    excluded: &BTreeSet<&str>,
) -> Result<Vec<Signature>, PgError> {
    Ok(signed(client, excluded)
        .await?
        .into_iter()
        .map(|(signature, _)| signature)
        .collect())
}

/// [`signatures`] with each object's name as [`ddl::Statement::object`] names it.
async fn signed(
    client: &Session,
    excluded: &BTreeSet<&str>,
) -> Result<Vec<(Signature, String)>, PgError> {
    let own_publication = format!("PUBLICATION {}", crate::naming::PREFIX);
    // Privileges given on system objects (taken away ones are not compared: PostgreSQL 18 may
    // not give what 15 gave, and taking it away again changes nothing).
    let sql = format!(
        "{SIGNATURES} \
         UNION ALL \
         SELECT 'system privilege', format('%s%s ON %s TO %s', g.privilege_type, \
                  coalesce(' (' || quote_ident(g.col) || ')', ''), g.target, coalesce(quote_ident(g.grantee), 'PUBLIC')), \
                g.is_grantable::text, 'PRIVILEGES ON ' || g.target || coalesce(' (' || g.col || ')', '') \
           FROM ({SYSTEM_GRANTS}) g WHERE NOT g.revoked"
    );
    // With `search_path` emptied, names print as the schema step's statements name objects.
    client
        .batch_execute("SET search_path = ''")
        .await
        .map_err(q(client.target(), "emptying search_path"))?;
    let rows = client.query(&sql, &[]).await;
    client
        .batch_execute("RESET search_path")
        .await
        .map_err(q(client.target(), "resetting search_path"))?;
    Ok(rows
        .map_err(q(client.target(), "reading object signatures"))?
        .iter()
        .filter(|r| {
            let object: &str = r.get(3);
            // The tool's own publication is on the source only, by design.
            !excluded.contains(object) && !object.starts_with(&own_publication)
        })
        .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
        .collect())
}

/// Objects that differ. Tables present on one side only are left to [`compare`].
pub fn compare_objects(source: &[Signature], destination: &[Signature]) -> Vec<Drift> {
    let index = |list: &[Signature]| -> BTreeMap<(String, String), String> {
        list.iter()
            .map(|(k, n, s)| ((k.clone(), n.clone()), s.clone()))
            .collect()
    };
    let (src, dst) = (index(source), index(destination));
    let mut drift = Vec::new();
    for ((kind, name), signature) in &src {
        let change = match dst.get(&(kind.clone(), name.clone())) {
            None if kind == "table" => continue,
            None => ObjectChange::Added,
            Some(theirs) if theirs != signature => ObjectChange::Changed,
            Some(_) => continue,
        };
        drift.push(Drift::ObjectChanged {
            kind: kind.clone(),
            name: name.clone(),
            change,
        });
    }
    for (kind, name) in dst.keys() {
        if kind != "table" && !src.contains_key(&(kind.clone(), name.clone())) {
            drift.push(Drift::ObjectChanged {
                kind: kind.clone(),
                name: name.clone(),
                change: ObjectChange::Dropped,
            });
        }
    }
    drift
}

fn by_name(catalog: &SchemaCatalog) -> BTreeMap<&QualifiedName, &Table> {
    catalog.tables.iter().map(|t| (&t.name, t)).collect()
}

/// Tables and columns that differ. A partition's columns that come from its parent are
/// compared on the parent.
pub fn compare(source: &SchemaCatalog, destination: &SchemaCatalog) -> Vec<Drift> {
    let src = by_name(source);
    let dst = by_name(destination);
    let mut drift = Vec::new();
    for (name, table) in &src {
        let Some(theirs) = dst.get(name) else {
            drift.push(Drift::TableAdded {
                table: (*name).clone(),
            });
            continue;
        };
        let columns: BTreeMap<&str, &Column> = theirs
            .columns
            .iter()
            .filter(|c| !c.inherited)
            .map(|c| (c.name.as_str(), c))
            .collect();
        for c in table.columns.iter().filter(|c| !c.inherited) {
            match columns.get(c.name.as_str()) {
                None => drift.push(Drift::ColumnAdded {
                    table: (*name).clone(),
                    column: Box::new(c.clone()),
                }),
                Some(d) if d.data_type != c.data_type => drift.push(Drift::ColumnTypeChanged {
                    table: (*name).clone(),
                    column: c.name.clone(),
                    source: c.data_type.clone(),
                    destination: d.data_type.clone(),
                }),
                Some(_) => {}
            }
        }
        for d in theirs.columns.iter().filter(|c| !c.inherited) {
            if !table.columns.iter().any(|c| c.name == d.name) {
                drift.push(Drift::ColumnDropped {
                    table: (*name).clone(),
                    column: d.name.clone(),
                });
            }
        }
    }
    for name in dst.keys() {
        if !src.contains_key(name) {
            drift.push(Drift::TableDropped {
                table: (*name).clone(),
            });
        }
    }
    drift
}

/// Indexes (a partitioned table's with its partitions' indexes attached to it, and whether it
/// is valid) and constraints of the tables on both sides, by table and name (their definitions
/// print differently across versions; the dump comparison in the tests covers those).
pub fn compare_indexes(source: &SchemaCatalog, destination: &SchemaCatalog) -> Vec<Drift> {
    let names = |catalog: &SchemaCatalog| -> BTreeSet<(String, String, String)> {
        catalog
            .tables
            .iter()
            .flat_map(|t| {
                let table = t.name.to_string();
                t.indexes
                    .iter()
                    .flat_map(move |i| {
                        let invalid = if i.invalid { " (not valid)" } else { "" };
                        std::iter::once((
                            "index".to_owned(),
                            table.clone(),
                            format!("{}{invalid}", i.name),
                        ))
                        .chain(i.partitions.iter().map(|p| {
                            (
                                "index".to_owned(),
                                p.table.to_string(),
                                format!("{} (attached to {})", p.name, p.parent),
                            )
                        }))
                    })
                    .chain(t.constraints.iter().filter(|c| c.own()).map({
                        let table = t.name.to_string();
                        move |c| ("constraint".to_owned(), table.clone(), c.name.clone())
                    }))
            })
            .collect()
    };
    let (src, dst) = (names(source), names(destination));
    let object = |(kind, table, name): &(String, String, String), change| Drift::ObjectChanged {
        kind: kind.clone(),
        name: format!("{name} on {table}"),
        change,
    };
    src.difference(&dst)
        .map(|k| object(k, ObjectChange::Added))
        .chain(
            dst.difference(&src)
                .map(|k| object(k, ObjectChange::Dropped)),
        )
        .collect()
}

/// What the schema proof of one database found: how many objects it compared, and every
/// difference.
#[derive(Debug, Clone)]
pub struct Proof {
    pub compared: usize,
    pub differences: Vec<Drift>,
}

/// Compares the schema of database `db` on both sides object by object: tables and columns,
/// indexes and constraints by name, and every other kind the tool carries by its signature
/// ([`SIGNATURES`]). What `schema_exclude` leaves out is not compared.
pub async fn prove(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst: &Session,
) -> Result<Proof, PgError> {
    let (source, destination) = (catalog::read(src).await?, catalog::read(dst).await?);
    let excluded = ctx.schema_excluded(db);
    let (theirs, ours) = (
        signatures(src, &excluded).await?,
        signatures(dst, &excluded).await?,
    );
    let compared = theirs.len()
        + source
            .tables
            .iter()
            .map(|t| 1 + t.columns.len() + t.indexes.len() + t.constraints.len())
            .sum::<usize>();
    let mut differences = compare(&source, &destination);
    differences.extend(compare_indexes(&source, &destination));
    differences.extend(compare_objects(&theirs, &ours));
    Ok(Proof {
        compared,
        differences,
    })
}

impl Drift {
    /// What changed, for people.
    pub fn describe(&self) -> String {
        match self {
            Drift::TableAdded { table } => format!("table {table} was created on the source"),
            Drift::TableDropped { table } => format!(
                "table {table} is on the destination but no longer on the source (dropped there?)"
            ),
            Drift::ColumnAdded { table, column } => format!(
                "column {} ({}) was added to {table} on the source",
                column.name, column.data_type
            ),
            Drift::ColumnDropped { table, column } => {
                format!("column {column} was dropped from {table} on the source")
            }
            Drift::ColumnTypeChanged {
                table,
                column,
                source,
                destination,
            } => format!(
                "column {column} of {table} is {source} on the source but {destination} on the destination"
            ),
            Drift::ObjectChanged { kind, name, change } => match change {
                ObjectChange::Added => format!("{kind} {name} was created on the source"),
                ObjectChange::Dropped => {
                    format!("{kind} {name} is on the destination but no longer on the source")
                }
                ObjectChange::Changed => format!(
                    "{kind} {name} differs (definition, owner, privileges or row-level security)"
                ),
            },
        }
    }

    /// The statement to run on the destination database, where one is safe to suggest.
    pub fn remedy(&self) -> String {
        match self {
            Drift::TableAdded { table } => format!(
                "create {} on the destination as on the source (pg_dump --schema-only --table), add it to the publication if the source's is a table list (ALTER PUBLICATION ... ADD TABLE), then ALTER SUBSCRIPTION ... REFRESH PUBLICATION copies its rows",
                qualified(table)
            ),
            Drift::TableDropped { table } => format!("DROP TABLE {}", qualified(table)),
            Drift::ColumnAdded { table, column } => format!(
                "ALTER TABLE {} ADD COLUMN {}",
                qualified(table),
                column_definition(column)
            ),
            Drift::ColumnDropped { table, column } => format!(
                "ALTER TABLE {} DROP COLUMN {}",
                qualified(table),
                ident(column)
            ),
            Drift::ColumnTypeChanged {
                table,
                column,
                source,
                ..
            } => format!(
                "ALTER TABLE {} ALTER COLUMN {} TYPE {source}",
                qualified(table),
                ident(column)
            ),
            Drift::ObjectChanged { kind, name, change } => match change {
                ObjectChange::Dropped => format!("drop {kind} {name} on the destination"),
                _ => format!(
                    "make {kind} {name} on the destination as it is on the source (pg_dump --schema-only of the source shows its definition, \\dp its privileges)"
                ),
            },
        }
    }
}

impl Drift {
    /// Whether the tool may resolve it by itself (`resync`): a new table (created on the
    /// destination and copied by refreshing the subscription), or a new column whose value on
    /// existing rows the destination computes the same way (no default, a constant default, or a
    /// generated expression), or any other object new on the source (created as the schema step
    /// creates it). Dropped and changed objects and type changes are left to the operator.
    pub fn is_safe(&self) -> bool {
        match self {
            Drift::TableAdded { .. } => true,
            Drift::ObjectChanged {
                change: ObjectChange::Added,
                kind,
                ..
            } => kind != "index" && kind != "constraint",
            Drift::ColumnAdded { column, .. } => {
                column.identity.is_none()
                    && column.default.as_deref().is_none_or(|d| !d.contains('('))
            }
            _ => false,
        }
    }
}

/// Resolves the safe part of database `db`'s drift ([`Drift::is_safe`]) and returns, one line
/// each, what it did and what it left to the operator. New columns are added as on the source.
/// New tables are created with their sequences, primary keys, owner and grants, added to the publication
/// when it is a table list, and the subscription is refreshed, which copies their rows (changes
/// the apply worker skipped while the table was unknown to it are in that copy: nothing is lost).
/// Their owner and grants are set as on the source; indexes and foreign keys are built by the
/// next ticks like every deferred object.
pub async fn resync(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst: &Session,
) -> Result<Vec<String>, PgError> {
    let source = catalog::read(src).await?;
    let destination = catalog::read(dst).await?;
    let drift = compare(&source, &destination);
    let mut report = Vec::new();
    for d in drift.iter().filter(|d| d.is_safe()) {
        if let Drift::ColumnAdded { .. } = d {
            dst.batch_execute(&d.remedy()).await.map_err(|e| {
                PgError::query(dst.target(), format!("resolving drift ({})", d.remedy()), e)
            })?;
            report.push(format!(
                "{db:?}: {} -> added on the destination",
                d.describe()
            ));
        }
    }
    let added: Vec<&QualifiedName> = drift
        .iter()
        .filter_map(|d| match d {
            Drift::TableAdded { table } => Some(table),
            _ => None,
        })
        .collect();
    if !added.is_empty() {
        add_tables(ctx, db, src, dst, &source, &added).await?;
        for table in &added {
            report.push(format!(
                "{db:?}: table {table} created on the destination (owner and grants as on the source) and copying"
            ));
        }
    }
    report.extend(add_objects(ctx, db, src, dst).await?);
    // What still differs once the safe changes are made is left to the operator.
    let source = catalog::read(src).await?;
    let destination = catalog::read(dst).await?;
    let mut left = compare(&source, &destination);
    left.extend(compare_objects(
        &signatures(src, &ctx.schema_excluded(db)).await?,
        &signatures(dst, &ctx.schema_excluded(db)).await?,
    ));
    for d in &left {
        report.push(format!(
            "{db:?}: {} -> left for you: {}",
            d.describe(),
            d.remedy()
        ));
    }
    Ok(report)
}

/// Creates on the destination, with their owners, grants and comments, the objects other than
/// tables that the source has and the destination lacks (views, functions, types, statistics,
/// triggers, policies, publications, ...), as the schema step creates them.
async fn add_objects(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst: &Session,
) -> Result<Vec<String>, PgError> {
    let excluded = ctx.schema_excluded(db);
    let present: BTreeSet<(String, String)> = signed(dst, &excluded)
        .await?
        .into_iter()
        .map(|((kind, name, _), _)| (kind, name))
        .collect();
    let added: BTreeSet<String> = signed(src, &excluded)
        .await?
        .into_iter()
        .filter(|((kind, name, _), _)| {
            kind != "table" && !present.contains(&(kind.clone(), name.clone()))
        })
        .map(|(_, object)| object)
        .collect();
    if added.is_empty() {
        return Ok(Vec::new());
    }
    let source = catalog::read(src).await?;
    let objects = objects::read(src).await?;
    let (statements, _) = ddl::schema_statements(
        &source,
        &objects,
        &roles::names(dst).await?,
        ddl::Keys::WithTables,
    );
    let todo: Vec<&ddl::Statement> = statements
        .iter()
        .filter(|s| added.contains(&s.object))
        .collect();
    let target = ctx.destination.target(db);
    let mut client = crate::pg::connect(&ctx.destination, db).await?;
    let tx = client
        .transaction()
        .await
        .map_err(q(&target, "starting to add objects"))?;
    tx.batch_execute("SET LOCAL check_function_bodies = off")
        .await
        .map_err(q(&target, "starting to add objects"))?;
    let failed = destination::create(&tx, &target, todo, false).await?.failed;
    tx.commit()
        .await
        .map_err(q(&target, "committing the added objects"))?;
    Ok(added
        .iter()
        .map(|object| match failed.iter().find(|f| &f.object == object) {
            Some(f) => format!(
                "{db:?}: {object} could not be created on the destination: {}",
                f.error
            ),
            None => format!("{db:?}: {object} created on the destination as on the source"),
        })
        .collect())
}

/// Creates the tables `added` on the source (with their owned sequences, owners and grants) on
/// the destination in one transaction, adds them to a listed publication, and refreshes the
/// subscription so that it copies them.
async fn add_tables(
    ctx: &MappingContext,
    db: &str,
    src: &Session,
    dst: &Session,
    source: &SchemaCatalog,
    added: &[&QualifiedName],
) -> Result<(), PgError> {
    let new = SchemaCatalog {
        sequences: source
            .sequences
            .iter()
            .filter(|s| s.owned_by.as_ref().is_some_and(|(t, _)| added.contains(&t)))
            .cloned()
            .collect(),
        tables: source
            .tables
            .iter()
            .filter(|t| added.contains(&&t.name))
            .cloned()
            .collect(),
        ..Default::default()
    };
    let mut statements = ddl::added_tables(&new);
    statements.extend(privileges_of(src, dst, &new).await?);
    // One simple query: one implicit transaction, all or nothing.
    dst.batch_execute(&statements.join(";\n"))
        .await
        .map_err(q(dst.target(), "creating the tables added on the source"))?;
    let names = ctx.names(db);
    if !crate::catalog::roles::is_superuser(src).await? {
        let roots: Vec<String> = new
            .tables
            .iter()
            .filter(|t| t.partition_of.is_none())
            .map(|t| qualified(&t.name))
            .collect();
        if !roots.is_empty() {
            src.batch_execute(&format!(
                "ALTER PUBLICATION {} ADD TABLE {}",
                ident(&names.publication),
                roots.join(", ")
            ))
            .await
            .map_err(q(src.target(), "adding the new tables to the publication"))?;
        }
    }
    dst.batch_execute(&format!(
        "ALTER SUBSCRIPTION {} REFRESH PUBLICATION",
        ident(&names.subscription)
    ))
    .await
    .map_err(q(dst.target(), "refreshing the subscription"))
}

/// Owners and privileges of the tables (and their columns and owned sequences) of `new`, as
/// the schema phase sets them; references are matched in the server's quoting.
async fn privileges_of(
    src: &Session,
    dst: &Session,
    new: &SchemaCatalog,
) -> Result<Vec<String>, PgError> {
    let mut references = Vec::new();
    let names = new.tables.iter().map(|t| &t.name);
    for name in names.chain(new.sequences.iter().map(|s| &s.name)) {
        references.push(
            src.query_one(
                "SELECT format('%I.%I', $1::text, $2::text)",
                &[&name.schema, &name.name],
            )
            .await
            .map_err(q(src.target(), "quoting a table name"))?
            .get::<_, String>(0),
        );
    }
    let objects = objects::read(src).await?;
    let theirs = objects::ObjectCatalog {
        privileges: objects
            .privileges
            .into_iter()
            .filter(|p| references.contains(&p.reference))
            .collect(),
        ..Default::default()
    };
    let (privileges, _) = ddl::objects::privileges(&theirs, &roles::names(dst).await?);
    Ok(privileges)
}

/// One blocking finding for all drift of a database.
pub fn finding(db: &str, drift: &[Drift]) -> Option<Finding> {
    if drift.is_empty() {
        return None;
    }
    let what: Vec<String> = drift.iter().map(Drift::describe).collect();
    let fix: Vec<String> = drift.iter().map(Drift::remedy).collect();
    Some(Finding::blocking(
        Code::SchemaDrift,
        format!(
            "the schema of {db:?} changed on the source after it was copied: {}",
            what.join("; ")
        ),
        format!(
            "{}run on the destination database {db:?}: {}; the tool checks again every tick and goes on by itself",
            if drift.iter().any(Drift::is_safe) {
                "press \"Apply safe schema changes\" on the dashboard or run `postgres-migrator resync MAPPING` (new tables, columns and other objects), or "
            } else {
                ""
            },
            fix.join("; ")
        ),
    )
    .resolvable_by_resync(drift.iter().any(Drift::is_safe)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ddl::tests::col as column;

    fn table(name: &str, columns: Vec<Column>) -> Table {
        Table {
            columns,
            ..crate::ddl::tests::table("app", name)
        }
    }

    fn catalog(tables: Vec<Table>) -> SchemaCatalog {
        SchemaCatalog {
            tables,
            ..Default::default()
        }
    }

    #[test]
    fn objects_added_dropped_or_changed_are_drift_but_tables_only_when_on_both_sides() {
        let sig = |k: &str, n: &str, s: &str| (k.to_owned(), n.to_owned(), s.to_owned());
        let source = vec![
            sig("function", "app.f()", "abc owner"),
            sig("function", "app.g()", "x"),
            sig("table", "app.t", "owner {reader=r/owner}"),
            sig("table", "app.new", "owner"),
            sig("view", "app.v", "owner id bigint"),
        ];
        let destination = vec![
            sig("function", "app.f()", "abd owner"),
            sig("table", "app.t", "owner "),
            sig("table", "app.old", "owner"),
            sig("view", "app.v", "owner id bigint"),
            sig("trigger", "tr on app.t", "7 app.touch"),
        ];
        let drift = compare_objects(&source, &destination);
        let described: Vec<String> = drift.iter().map(Drift::describe).collect();
        assert_eq!(
            described,
            [
                "function app.f() differs (definition, owner, privileges or row-level security)",
                "function app.g() was created on the source",
                "table app.t differs (definition, owner, privileges or row-level security)",
                "trigger tr on app.t is on the destination but no longer on the source",
            ]
        );
        // Only the new function is for resync to create; changes and drops are the operator's.
        let safe: Vec<bool> = drift.iter().map(Drift::is_safe).collect();
        assert_eq!(safe, [false, true, false, false]);
        assert!(drift[3].remedy().starts_with("drop trigger tr on app.t"));
    }

    #[test]
    fn equal_schemas_have_no_drift() {
        let a = catalog(vec![table("t", vec![column("id", "bigint")])]);
        assert!(compare(&a, &a.clone()).is_empty());
        assert!(finding("db", &[]).is_none());
    }

    #[test]
    fn indexes_and_constraints_compare_by_table_and_name() {
        use crate::catalog::model::{Constraint, ConstraintKind, Index};
        let index = |name: &str| Index {
            name: name.into(),
            definition: format!("CREATE INDEX {name} ON app.t USING btree (id)"),
            replica_identity: false,
            comment: None,
            ..Default::default()
        };
        let mut src = table("t", vec![column("id", "int")]);
        src.indexes = vec![index("t_id"), index("t_new")];
        src.constraints = vec![Constraint {
            name: "t_pkey".into(),
            kind: ConstraintKind::PrimaryKey,
            definition: "PRIMARY KEY (id)".into(),
            replica_identity: false,
            comment: None,
            calls_functions: false,
            inherited: false,
            index_comment: None,
            depended_on: false,
        }];
        let mut dst = table("t", vec![column("id", "int")]);
        // Printed differently by another version: still the same index.
        dst.indexes = vec![
            Index {
                definition: "CREATE INDEX t_id ON app.t (id)".into(),
                ..index("t_id")
            },
            index("t_extra"),
        ];
        let drift = compare_indexes(&catalog(vec![src]), &catalog(vec![dst]));
        let described: Vec<String> = drift.iter().map(Drift::describe).collect();
        assert_eq!(
            described,
            [
                "constraint t_pkey on app.t was created on the source",
                "index t_new on app.t was created on the source",
                "index t_extra on app.t is on the destination but no longer on the source",
            ]
        );
        // Resync builds no index by itself: the deferred-object machinery does.
        assert!(drift.iter().all(|d| !d.is_safe()));
        let view = Drift::ObjectChanged {
            kind: "view".into(),
            name: "app.v".into(),
            change: ObjectChange::Added,
        };
        assert!(view.is_safe());
        let changed = Drift::ObjectChanged {
            kind: "view".into(),
            name: "app.v".into(),
            change: ObjectChange::Changed,
        };
        assert!(!changed.is_safe());
    }

    #[test]
    fn every_kind_of_change_is_found_with_its_remedy() {
        let mut added = column("Note \"x\"", "text");
        added.default = Some("'n/a'::text".into());
        added.not_null = true;
        let source = catalog(vec![
            table(
                "t",
                vec![column("id", "bigint"), added, column("v", "numeric")],
            ),
            table("new", vec![column("id", "int")]),
        ]);
        let destination = catalog(vec![
            table(
                "t",
                vec![
                    column("id", "bigint"),
                    column("old", "int"),
                    column("v", "integer"),
                ],
            ),
            table("gone", vec![]),
        ]);
        let drift = compare(&source, &destination);
        assert_eq!(drift.len(), 5, "{drift:?}");
        let f = finding("shop", &drift).unwrap();
        assert!(f.is_blocking());
        assert!(
            f.message
                .contains("column Note \"x\" (text) was added to app.t"),
            "{}",
            f.message
        );
        assert!(f.message.contains("table app.new was created"));
        assert!(
            f.message
                .contains("table app.gone is on the destination but no longer on the source")
        );
        assert!(f.message.contains("column old was dropped from app.t"));
        assert!(
            f.message
                .contains("column v of app.t is numeric on the source but integer")
        );
        assert!(
            f.fix.contains("ALTER TABLE \"app\".\"t\" ADD COLUMN \"Note \"\"x\"\"\" text DEFAULT 'n/a'::text NOT NULL"),
            "{}",
            f.fix
        );
        assert!(
            f.fix
                .contains("ALTER TABLE \"app\".\"t\" ALTER COLUMN \"v\" TYPE numeric")
        );
    }
}
