//! Reads a source database's schema into [`SchemaCatalog`] using the server's own deparse
//! functions (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_partkeydef`). The session's `search_path` is emptied first so that every name those
//! functions print is schema-qualified: the text is valid on the destination whatever its
//! `search_path`.
//!
//! Left out: system schemas, objects that belong to an extension (the extension recreates them),
//! temporary tables. Unlogged tables are read (their schema is created; logical replication
//! carries none of their rows).

use std::collections::{HashMap, HashSet};

use crate::pg::{PgError, Session, q};

use super::model::*;

/// Objects in these schemas are never copied.
const USER_SCHEMA_FILTER: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

/// Identity columns' sequences by (table oid, column name), with their options.
type IdentitySequences = HashMap<(u32, String), (QualifiedName, SequenceOptions)>;

/// Reads the whole catalog of the database `client` is connected to.
pub async fn read(client: &Session) -> Result<SchemaCatalog, PgError> {
    client
        .batch_execute("SET search_path = ''")
        .await
        .map_err(q(client.target(), "emptying search_path"))?;
    let database = database(client).await?;
    let extensions = extensions(client).await?;
    let schemas = schemas(client).await?;
    let enums = enums(client).await?;
    let types = types(client).await?;
    let (sequences, identity_sequences) = sequences(client).await?;
    let tables = tables(client, identity_sequences).await?;
    let sequence_persistence = sequence_persistence(client).await?;
    client
        .batch_execute("RESET search_path")
        .await
        .map_err(q(client.target(), "resetting search_path"))?;
    Ok(SchemaCatalog {
        database,
        extensions,
        schemas,
        enums,
        types,
        sequences,
        tables,
        sequence_persistence,
    })
}

/// See [`SchemaCatalog::sequence_persistence`].
async fn sequence_persistence(client: &Session) -> Result<Vec<(QualifiedName, bool)>, PgError> {
    Ok(client
        .query(
            &format!(
                "SELECT n.nspname::text, s.relname::text, s.relpersistence = 'p' \
                 FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace \
                 WHERE s.relkind = 'S' AND {USER_SCHEMA_FILTER} AND {} \
                   AND (s.relpersistence = 'u' OR EXISTS (SELECT 1 FROM pg_depend d \
                        JOIN pg_class t ON t.oid = d.refobjid AND t.relpersistence = 'u' \
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid \
                          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))) \
                 ORDER BY s.oid",
                not_extension_member("pg_class", "s.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing unlogged sequences"))?
        .iter()
        .map(|r| {
            (
                QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                r.get(2),
            )
        })
        .collect())
}

/// Not a member of an extension (the extension recreates it).
fn not_extension_member(classid: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '{classid}'::regclass \
         AND x.objid = {oid} AND x.deptype = 'e')"
    )
}

/// How the database was created: name, encoding, locale provider and locales.
async fn database(client: &Session) -> Result<DatabaseInfo, PgError> {
    let db = client
        .query_one(
            "SELECT d.datname, pg_encoding_to_char(d.encoding), to_jsonb(d) FROM pg_database d \
             WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(q(client.target(), "reading the database's settings"))?;
    let json: serde_json::Value = db.get(2);
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let database = DatabaseInfo {
        name: db.get(0),
        encoding: db.get(1),
        locale_provider: text("datlocprovider").unwrap_or_else(|| "c".into()),
        collate: text("datcollate").unwrap_or_default(),
        ctype: text("datctype").unwrap_or_default(),
        // PostgreSQL 15-16 call it daticulocale, 17+ datlocale.
        locale: text("datlocale").or_else(|| text("daticulocale")),
    };
    Ok(database)
}

/// Extensions other than plpgsql, in creation order.
async fn extensions(client: &Session) -> Result<Vec<Extension>, PgError> {
    let extensions = client
        .query(
            "SELECT e.extname, n.nspname, e.extversion FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace \
             WHERE e.extname <> 'plpgsql' ORDER BY e.oid",
            &[],
        )
        .await
        .map_err(q(client.target(), "listing extensions"))?
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            schema: r.get(1),
            version: r.get(2),
        })
        .collect();
    Ok(extensions)
}

/// User schemas other than `public`, in creation order.
async fn schemas(client: &Session) -> Result<Vec<String>, PgError> {
    let schemas = client
        .query(
            &format!(
                "SELECT n.nspname FROM pg_namespace n WHERE {USER_SCHEMA_FILTER} \
                 AND n.nspname <> 'public' AND {} ORDER BY n.oid",
                not_extension_member("pg_namespace", "n.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing schemas"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(schemas)
}

/// Enum types with their labels in sort order.
async fn enums(client: &Session) -> Result<Vec<EnumType>, PgError> {
    let enums = client
        .query(
            &format!(
                "SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 JOIN pg_enum e ON e.enumtypid = t.oid \
                 WHERE {USER_SCHEMA_FILTER} AND {} GROUP BY t.oid, n.nspname, t.typname ORDER BY t.oid",
                not_extension_member("pg_type", "t.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing enum types"))?
        .iter()
        .map(|r| EnumType {
            name: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            labels: r.get(2),
        })
        .collect();
    Ok(enums)
}

/// Domains and composite types, in creation order.
async fn types(client: &Session) -> Result<Vec<UserType>, PgError> {
    let types = client
        .query(
            &format!(
                "SELECT n.nspname, t.typname, t.typtype::text, \
                   format_type(t.typbasetype, t.typtypmod), t.typnotnull, \
                   pg_get_expr(t.typdefaultbin, 0), \
                   coalesce((SELECT array_agg(c.conname::text ORDER BY c.conname) FROM pg_constraint c \
                             WHERE c.contypid = t.oid AND c.contype = 'c'), '{{}}'), \
                   coalesce((SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conname) \
                             FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '{{}}'), \
                   coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a \
                             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'), \
                   coalesce((SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) \
                             FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 \
                             AND NOT a.attisdropped), '{{}}') \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 LEFT JOIN pg_class rc ON rc.oid = t.typrelid \
                 WHERE {USER_SCHEMA_FILTER} AND {} \
                   AND (t.typtype = 'd' OR (t.typtype = 'c' AND rc.relkind = 'c')) \
                 ORDER BY t.oid",
                not_extension_member("pg_type", "t.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing domains and composite types"))?
        .iter()
        .map(|r| {
            let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            if r.get::<_, String>(2) == "d" {
                let names: Vec<String> = r.get(6);
                let defs: Vec<String> = r.get(7);
                UserType::Domain {
                    name,
                    base_type: r.get(3),
                    not_null: r.get(4),
                    default: r.get(5),
                    checks: names.into_iter().zip(defs).collect(),
                }
            } else {
                let names: Vec<String> = r.get(8);
                let types: Vec<String> = r.get(9);
                UserType::Composite {
                    name,
                    attributes: names.into_iter().zip(types).collect(),
                }
            }
        })
        .collect();
    Ok(types)
}

/// Sequences that are not an identity column's, and identity columns' sequences apart.
async fn sequences(client: &Session) -> Result<(Vec<Sequence>, IdentitySequences), PgError> {
    // Sequences, with what owns them: 'a' = OWNED BY (serial), 'i' = identity column.
    let sequence_rows = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, \
                   s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, \
                   d.deptype::text, d.refobjid::oid, a.attname::text, tn.nspname, t.relname \
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
                 LEFT JOIN pg_class t ON t.oid = d.refobjid \
                 LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace \
                 LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                 WHERE {USER_SCHEMA_FILTER} AND {} ORDER BY c.oid",
                not_extension_member("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing sequences"))?;
    let mut sequences = Vec::new();
    let mut identity_sequences: HashMap<(u32, String), (QualifiedName, SequenceOptions)> =
        HashMap::new();
    for r in &sequence_rows {
        let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        let options = SequenceOptions {
            data_type: r.get(2),
            start: r.get(3),
            increment: r.get(4),
            min: r.get(5),
            max: r.get(6),
            cache: r.get(7),
            cycle: r.get(8),
        };
        let deptype: Option<String> = r.get(9);
        match deptype.as_deref() {
            Some("i") => {
                identity_sequences.insert((r.get(10), r.get(11)), (name, options));
            }
            Some(_) => sequences.push(Sequence {
                name,
                options,
                owned_by: Some((
                    QualifiedName::new(r.get::<_, String>(12), r.get::<_, String>(13)),
                    r.get(11),
                )),
            }),
            None => sequences.push(Sequence {
                name,
                options,
                owned_by: None,
            }),
        }
    }
    Ok((sequences, identity_sequences))
}

/// Permanent tables with their columns, constraints and indexes, every parent before its
/// partitions. Identity columns take their sequence from `identity_sequences`.
async fn tables(
    client: &Session,
    identity_sequences: IdentitySequences,
) -> Result<Vec<Table>, PgError> {
    let table_rows = client
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.relname, c.relreplident::text, \
                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
                   pn.nspname, pc.relname, pg_get_expr(c.relpartbound, c.oid), \
                   ARRAY(SELECT hn.nspname::text FROM pg_inherits h JOIN pg_class hc ON hc.oid = h.inhparent \
                         JOIN pg_namespace hn ON hn.oid = hc.relnamespace \
                         WHERE h.inhrelid = c.oid AND NOT c.relispartition ORDER BY h.inhseqno), \
                   ARRAY(SELECT hc.relname::text FROM pg_inherits h JOIN pg_class hc ON hc.oid = h.inhparent \
                         WHERE h.inhrelid = c.oid AND NOT c.relispartition ORDER BY h.inhseqno), \
                   coalesce(c.reloptions, '{{}}') || coalesce(ARRAY(SELECT 'toast.' || o FROM pg_class tc, \
                         unnest(tc.reloptions) o WHERE tc.oid = c.reltoastrelid), '{{}}'), \
                   c.relpersistence = 'u', \
                   (SELECT ic.relname::text FROM pg_index ci JOIN pg_class ic ON ic.oid = ci.indexrelid \
                    WHERE ci.indrelid = c.oid AND ci.indisclustered), \
                   (SELECT a.amname::text FROM pg_am a WHERE a.oid = c.relam AND a.amname <> 'heap'), \
                   (SELECT tn.nspname::text FROM pg_type tt JOIN pg_namespace tn ON tn.oid = tt.typnamespace \
                    WHERE tt.oid = c.reloftype), \
                   (SELECT tt.typname::text FROM pg_type tt WHERE tt.oid = c.reloftype) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition \
                 LEFT JOIN pg_class pc ON pc.oid = i.inhparent \
                 LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u') \
                   AND {USER_SCHEMA_FILTER} AND {} ORDER BY c.oid",
                not_extension_member("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing tables"))?;
    let oids: Vec<u32> = table_rows.iter().map(|r| r.get(0)).collect();
    let partitions: Vec<u32> = table_rows
        .iter()
        .filter(|r| r.get::<_, Option<String>>(7).is_some())
        .map(|r| r.get(0))
        .collect();
    let mut columns = columns(client, &oids, &partitions, identity_sequences).await?;
    let mut constraints = constraints(client, &oids, &partitions).await?;
    let mut indexes = indexes(client, &oids).await?;
    let mut tables: Vec<Table> = table_rows
        .iter()
        .map(|r| {
            let oid: u32 = r.get(0);
            let partition_of = match (
                r.get::<_, Option<String>>(5),
                r.get::<_, Option<String>>(6),
                r.get::<_, Option<String>>(7),
            ) {
                (Some(schema), Some(name), Some(bound)) => {
                    Some((QualifiedName::new(schema, name), bound))
                }
                _ => None,
            };
            Table {
                name: QualifiedName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                partition_key: r.get(4),
                partition_of,
                columns: columns.remove(&oid).unwrap_or_default(),
                constraints: constraints.remove(&oid).unwrap_or_default(),
                indexes: indexes.remove(&oid).unwrap_or_default(),
                replica_identity: r.get::<_, String>(3).chars().next().unwrap_or('d'),
                inherits: r
                    .get::<_, Vec<String>>(8)
                    .into_iter()
                    .zip(r.get::<_, Vec<String>>(9))
                    .map(|(schema, name)| QualifiedName::new(schema, name))
                    .collect(),
                options: r.get(10),
                unlogged: r.get(11),
                clustered_on: r.get(12),
                access_method: r.get(13),
                of_type: match (
                    r.get::<_, Option<String>>(14),
                    r.get::<_, Option<String>>(15),
                ) {
                    (Some(schema), Some(name)) => Some(QualifiedName::new(schema, name)),
                    _ => None,
                },
            }
        })
        .collect();
    parents_first(&mut tables);
    Ok(tables)
}

/// Local columns of the tables `oids`, and every column of the `partitions` among them, by
/// table oid, in column order.
async fn columns(
    client: &Session,
    oids: &[u32],
    partitions: &[u32],
    mut identity_sequences: IdentitySequences,
) -> Result<HashMap<u32, Vec<Column>>, PgError> {
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in client
        .query(
            "SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), \
               a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, \
               a.attgenerated::text, cn.nspname, co.collname, a.attislocal, \
               nullif(a.attstattarget, -1)::int2, \
               CASE WHEN a.attstorage <> t.typstorage THEN \
                 CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END, \
               CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END, \
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_attrdef'::regclass \
                       AND d.objid = ad.oid AND d.refclassid = 'pg_proc'::regclass \
                       AND d.refobjid >= 16384) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation \
             LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
               AND (a.attislocal OR a.attrelid = ANY($2)) \
             ORDER BY a.attrelid, a.attnum",
            &[&oids, &partitions],
        )
        .await
        .map_err(q(client.target(), "listing columns"))?
    {
        let relid: u32 = r.get(0);
        let name: String = r.get(1);
        let expr: Option<String> = r.get(4);
        let identity_kind: String = r.get(5);
        let generated: String = r.get(6);
        let identity = match identity_kind.as_str() {
            "a" | "d" => identity_sequences
                .remove(&(relid, name.clone()))
                .map(|(seq, opts)| {
                    let kind = if identity_kind == "a" { Identity::Always } else { Identity::ByDefault };
                    (kind, seq, opts)
                }),
            _ => None,
        };
        let is_generated = generated == "s";
        let collation = match (r.get::<_, Option<String>>(7), r.get::<_, Option<String>>(8)) {
            (Some(schema), Some(name)) => Some(QualifiedName::new(schema, name)),
            _ => None,
        };
        let is_local: bool = r.get(9);
        columns.entry(relid).or_default().push(Column {
            name,
            data_type: r.get(2),
            not_null: r.get(3),
            default: if is_generated { None } else { expr.clone() },
            identity,
            generated: if is_generated { expr } else { None },
            collation,
            statistics: r.get(10),
            storage: r.get(11),
            compression: r.get(12),
            default_calls_functions: !is_generated && r.get::<_, bool>(13),
            inherited: !is_local,
        });
    }
    Ok(columns)
}

/// Local constraints of the tables `oids` (not partitions' clones), and the CHECKs the
/// `partitions` among them inherit, by table oid.
async fn constraints(
    client: &Session,
    oids: &[u32],
    partitions: &[u32],
) -> Result<HashMap<u32, Vec<Constraint>>, PgError> {
    let mut constraints: HashMap<u32, Vec<Constraint>> = HashMap::new();
    for r in client
        .query(
            "SELECT c.conrelid, c.conname::text, c.contype::text, pg_get_constraintdef(c.oid), \
               coalesce(i.indisreplident, false), c.conindid, obj_description(c.oid, 'pg_constraint'), \
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_constraint'::regclass AND d.objid = c.oid \
                       AND d.refclassid = 'pg_proc'::regclass AND d.refobjid >= 16384), \
               NOT c.conislocal, \
               CASE WHEN c.contype IN ('p', 'u', 'x') THEN obj_description(c.conindid, 'pg_class') END, \
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.deptype = 'n' \
                         AND ((d.refclassid = 'pg_constraint'::regclass AND d.refobjid = c.oid) \
                           OR (c.conindid <> 0 AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.conindid)) \
                         AND NOT EXISTS (SELECT 1 FROM pg_constraint f JOIN pg_class ft ON ft.oid = f.conrelid \
                                         WHERE d.classid = 'pg_constraint'::regclass AND f.oid = d.objid \
                                           AND f.contype = 'f' AND ft.relpersistence = 'p')) \
             FROM pg_constraint c LEFT JOIN pg_index i ON i.indexrelid = c.conindid \
             WHERE c.conrelid = ANY($1) AND c.contype IN ('c', 'p', 'u', 'f', 'x') \
               AND (c.conislocal OR (c.contype = 'c' AND c.conrelid = ANY($2))) \
               AND c.conparentid = 0 \
             ORDER BY c.conrelid, c.contype, c.conname",
            &[&oids, &partitions],
        )
        .await
        .map_err(q(client.target(), "listing constraints"))?
    {
        let kind = match r.get::<_, String>(2).as_str() {
            "c" => ConstraintKind::Check,
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            _ => ConstraintKind::Exclusion,
        };
        constraints.entry(r.get(0)).or_default().push(Constraint {
            name: r.get(1),
            kind,
            definition: r.get(3),
            replica_identity: r.get(4),
            comment: r.get(6),
            calls_functions: r.get(7),
            inherited: r.get(8),
            index_comment: r.get(9),
            depended_on: r.get(10),
        });
    }
    Ok(constraints)
}

/// Indexes of the tables `oids` that back no constraint, by table oid; a partition's index
/// attached to its parent's goes with the parent's, in [`Index::partitions`].
async fn indexes(client: &Session, oids: &[u32]) -> Result<HashMap<u32, Vec<Index>>, PgError> {
    struct Read {
        table_oid: u32,
        table: QualifiedName,
        parent: Option<u32>,
        /// It backs a constraint (which creates it).
        constraint: bool,
        index: Index,
    }
    let rows: Vec<(u32, Read)> = client
        .query(
            "SELECT i.indexrelid, i.indrelid, n.nspname::text, tc.relname::text, ic.relname::text, \
               pg_get_indexdef(i.indexrelid), i.indisreplident, \
               obj_description(i.indexrelid, 'pg_class'), NOT i.indisvalid, h.inhparent, \
               EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid \
                       AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace n ON n.oid = tc.relnamespace \
             LEFT JOIN pg_inherits h ON h.inhrelid = i.indexrelid \
             WHERE i.indrelid = ANY($1) \
             ORDER BY i.indrelid, ic.relname",
            &[&oids],
        )
        .await
        .map_err(q(client.target(), "listing indexes"))?
        .iter()
        .map(|r| {
            (
                r.get(0),
                Read {
                    table_oid: r.get(1),
                    table: QualifiedName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
                    parent: r.get(9),
                    constraint: r.get(10),
                    index: Index {
                        name: r.get(4),
                        definition: r.get(5),
                        replica_identity: r.get(6),
                        comment: r.get(7),
                        invalid: r.get(8),
                        partitions: Vec::new(),
                    },
                },
            )
        })
        .collect();
    let read: HashMap<u32, &Read> = rows.iter().map(|(oid, r)| (*oid, r)).collect();
    // Attached to an index that backs no constraint (a constraint's index has its partitions'
    // constraints' indexes attached: the constraints bring those).
    let attached_to = |r: &Read| {
        r.parent
            .filter(|p| read.get(p).is_some_and(|p| !p.constraint))
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (oid, r) in &rows {
        if let Some(parent) = attached_to(r) {
            children.entry(parent).or_default().push(*oid);
        }
    }
    let mut indexes: HashMap<u32, Vec<Index>> = HashMap::new();
    for (oid, r) in &rows {
        if r.constraint {
            continue;
        }
        let attached = attached_to(r).is_some();
        // A partition's replica identity index is also its own (built before the data); the
        // parent's index then attaches it.
        if attached && !r.index.replica_identity {
            continue;
        }
        let mut index = r.index.clone();
        if !attached {
            // Every level below, each index after the one it is attached to.
            let mut queue = std::collections::VecDeque::from([*oid]);
            while let Some(parent) = queue.pop_front() {
                for child in children.get(&parent).into_iter().flatten() {
                    let (p, c) = (read[&parent], read[child]);
                    index.partitions.push(PartitionIndex {
                        table: c.table.clone(),
                        name: c.index.name.clone(),
                        definition: c.index.definition.clone(),
                        parent: QualifiedName::new(p.table.schema.clone(), p.index.name.clone()),
                        comment: c.index.comment.clone(),
                        constraint: c.constraint,
                    });
                    queue.push_back(*child);
                }
            }
        }
        indexes.entry(r.table_oid).or_default().push(index);
    }
    Ok(indexes)
}

/// Orders tables so that every partition and every INHERITS child comes after its parents
/// (stable otherwise).
pub fn parents_first(tables: &mut Vec<Table>) {
    let mut placed: HashSet<QualifiedName> = HashSet::new();
    let mut ordered = Vec::with_capacity(tables.len());
    let mut rest = std::mem::take(tables);
    while !rest.is_empty() {
        let (ready, waiting): (Vec<Table>, Vec<Table>) = rest.into_iter().partition(|t| {
            t.partition_of
                .as_ref()
                .is_none_or(|(parent, _)| placed.contains(parent))
                && t.inherits.iter().all(|parent| placed.contains(parent))
        });
        if ready.is_empty() {
            // A parent outside the catalog (e.g. unlogged): keep the rest as they are.
            ordered.extend(waiting);
            break;
        }
        placed.extend(ready.iter().map(|t| t.name.clone()));
        ordered.extend(ready);
        rest = waiting;
    }
    *tables = ordered;
}
