//! Objects the server prints as definitions (collations, text search dictionaries and
//! configurations, functions and procedures, views and materialized views, triggers, rules) and
//! the comments on them. One reader per kind, each with its query.

use crate::pg::{PgError, Session, q};

use super::{
    Collation, Comment, Definition, QualifiedName, TextSearchConfig, TextSearchDictionary, Trigger,
    View, name, user_object,
};

/// User-defined collations, in creation order.
pub(super) async fn collations(client: &Session) -> Result<Vec<Collation>, PgError> {
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
        .map_err(q(client.target(), "listing collations"))?
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
    Ok(collations)
}

/// Text search dictionaries, in creation order.
pub(super) async fn text_search_dictionaries(
    client: &Session,
) -> Result<Vec<TextSearchDictionary>, PgError> {
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
        .map_err(q(client.target(), "listing text search dictionaries"))?
        .iter()
        .map(|r| TextSearchDictionary {
            name: name(r, 0),
            template: r.get(2),
            options: r.get(3),
        })
        .collect();
    Ok(ts_dictionaries)
}

/// Text search configurations with their token mappings, in creation order.
pub(super) async fn text_search_configs(
    client: &Session,
) -> Result<Vec<TextSearchConfig>, PgError> {
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
        .map_err(q(client.target(), "listing text search configurations"))?;
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
            .map_err(q(client.target(), "reading text search mappings"))?
            .iter()
            .map(|m| (m.get::<_, String>(0), m.get::<_, Vec<String>>(1)))
            .collect();
        ts_configs.push(TextSearchConfig {
            name: name(r, 1),
            parser: r.get(3),
            mappings,
        });
    }
    Ok(ts_configs)
}

/// User-defined aggregates as `CREATE AGGREGATE` statements, built by the server from
/// `pg_aggregate` (`pg_get_functiondef` refuses aggregates). Support functions and types print
/// qualified (`search_path` is empty) and every literal is quoted by the server.
pub(super) async fn aggregates(client: &Session) -> Result<Vec<Definition>, PgError> {
    super::definitions(
        client,
        "listing aggregates",
        &format!(
                "SELECT n.nspname, p.proname, format('CREATE AGGREGATE %I.%I (%s) (%s)', n.nspname, p.proname, \
                   CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_get_function_arguments(p.oid) END, \
                   concat_ws(', ', \
                     'SFUNC = ' || a.aggtransfn::regproc, \
                     'STYPE = ' || format_type(a.aggtranstype, NULL), \
                     CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END, \
                     CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC = ' || a.aggfinalfn::regproc END, \
                     CASE WHEN a.aggfinalextra THEN 'FINALFUNC_EXTRA' END, \
                     CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC_MODIFY = ' || {modify} END, \
                     CASE WHEN a.aggcombinefn <> 0 THEN 'COMBINEFUNC = ' || a.aggcombinefn::regproc END, \
                     CASE WHEN a.aggserialfn <> 0 THEN 'SERIALFUNC = ' || a.aggserialfn::regproc END, \
                     CASE WHEN a.aggdeserialfn <> 0 THEN 'DESERIALFUNC = ' || a.aggdeserialfn::regproc END, \
                     CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || quote_literal(a.agginitval) END, \
                     CASE WHEN a.aggmtransfn <> 0 THEN 'MSFUNC = ' || a.aggmtransfn::regproc END, \
                     CASE WHEN a.aggminvtransfn <> 0 THEN 'MINVFUNC = ' || a.aggminvtransfn::regproc END, \
                     CASE WHEN a.aggmtransfn <> 0 THEN 'MSTYPE = ' || format_type(a.aggmtranstype, NULL) END, \
                     CASE WHEN a.aggmtransspace <> 0 THEN 'MSSPACE = ' || a.aggmtransspace END, \
                     CASE WHEN a.aggmfinalfn <> 0 THEN 'MFINALFUNC = ' || a.aggmfinalfn::regproc END, \
                     CASE WHEN a.aggmfinalextra THEN 'MFINALFUNC_EXTRA' END, \
                     CASE WHEN a.aggmfinalfn <> 0 THEN 'MFINALFUNC_MODIFY = ' || {mmodify} END, \
                     CASE WHEN a.aggminitval IS NOT NULL THEN 'MINITCOND = ' || quote_literal(a.aggminitval) END, \
                     CASE WHEN a.aggsortop <> 0 THEN (SELECT 'SORTOP = OPERATOR(' || quote_ident(son.nspname) || '.' || so.oprname || ')' \
                       FROM pg_operator so JOIN pg_namespace son ON son.oid = so.oprnamespace WHERE so.oid = a.aggsortop) END, \
                     CASE WHEN a.aggkind = 'h' THEN 'HYPOTHETICAL' END, \
                     CASE p.proparallel WHEN 's' THEN 'PARALLEL = SAFE' WHEN 'r' THEN 'PARALLEL = RESTRICTED' END)), \
                   'ROUTINE ' || p.oid::regprocedure::text \
                 FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid \
                 JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE {} ORDER BY p.oid",
                user_object("pg_proc", "p.oid"),
                modify = "CASE a.aggfinalmodify WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END",
                mmodify = "CASE a.aggmfinalmodify WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END",
        ),
        &[],
    )
    .await
}

/// Functions and procedures, as `(early, late)` in the sense of [`super::ObjectCatalog`].
pub(super) async fn functions(
    client: &Session,
) -> Result<(Vec<Definition>, Vec<Definition>), PgError> {
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
                       AND d.refclassid = 'pg_type'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'f')), \
                   'ROUTINE ' || p.oid::regprocedure::text \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE p.prokind IN ('f', 'p', 'w') AND {} \
                   AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
                                   AND i.objid = p.oid AND i.deptype = 'i') \
                 ORDER BY p.oid",
                user_object("pg_proc", "p.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing functions"))?
    {
        let def = Definition {
            name: name(&r, 0),
            sql: r.get(2),
            object: r.get(4),
        };
        if r.get::<_, bool>(3) {
            late_functions.push(def);
        } else {
            early_functions.push(def);
        }
    }
    Ok((early_functions, late_functions))
}

/// Views and materialized views, each after those it reads.
pub(super) async fn views(client: &Session) -> Result<Vec<View>, PgError> {
    let view_rows = client
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_get_viewdef(c.oid), \
                   coalesce(c.reloptions, '{{}}'), \
                   coalesce((SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid) \
                             FROM pg_index i WHERE i.indrelid = c.oid), '{{}}'), \
                   coalesce((SELECT array_agg(format('NULL::%s%s AS %I', format_type(a.atttypid, a.atttypmod), \
                               CASE WHEN a.attcollation <> t.typcollation \
                                 THEN (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname) FROM pg_collation co \
                                       JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) \
                                 ELSE '' END, a.attname) ORDER BY a.attnum) \
                             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'), \
                   (SELECT am.amname::text FROM pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('v', 'm') AND {} ORDER BY c.oid",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing views"))?;
    let mut views: Vec<View> = Vec::new();
    for r in &view_rows {
        let depends_on = dependency_names(client, r.get::<_, u32>(0))
            .await
            .map_err(q(client.target(), "reading view dependencies"))?;
        views.push(View {
            name: name(r, 1),
            materialized: r.get(3),
            query: r.get(4),
            options: r.get(5),
            indexes: r.get(6),
            placeholder_columns: r.get(7),
            access_method: r.get(8),
            depends_on,
        });
    }
    dependencies_first(&mut views);
    Ok(views)
}

/// Views and materialized views the view `oid` reads.
async fn dependency_names(
    client: &Session,
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

/// Triggers on user tables (not internal ones), then partitions' clones of a parent's trigger
/// enabled otherwise than the parent's (the others come with the parent's as they are).
pub(super) async fn triggers(client: &Session) -> Result<Vec<Trigger>, PgError> {
    let triggers = client
        .query(
            &format!(
                "SELECT n.nspname, c.relname, t.tgname, \
                   CASE WHEN t.tgparentid = 0 THEN pg_get_triggerdef(t.oid) ELSE '' END, \
                   t.tgenabled::text, p.tgenabled::text \
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_trigger p ON p.oid = t.tgparentid \
                 WHERE NOT t.tgisinternal AND (t.tgparentid = 0 OR t.tgenabled <> p.tgenabled) \
                   AND {} ORDER BY t.tgparentid <> 0, c.oid, t.tgname",
                user_object("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing triggers"))?
        .iter()
        .map(|r| Trigger {
            table: name(r, 0),
            name: r.get(2),
            sql: r.get(3),
            enabled: r.get::<_, String>(4).chars().next().unwrap_or('O'),
            parent_enabled: r.get::<_, Option<String>>(5).and_then(|e| e.chars().next()),
        })
        .collect();
    Ok(triggers)
}

/// Rules other than views' `_RETURN` rules, in creation order.
pub(super) async fn rules(client: &Session) -> Result<Vec<Definition>, PgError> {
    super::definitions(
        client,
        "listing rules",
        &format!(
            "SELECT n.nspname, c.relname, pg_get_ruledef(rw.oid), \
               'RULE ' || rw.rulename || ' ON ' || n.nspname || '.' || c.relname FROM pg_rewrite rw \
             JOIN pg_class c ON c.oid = rw.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE rw.rulename <> '_RETURN' AND {} ORDER BY rw.oid",
            user_object("pg_class", "c.oid")
        ),
        &[],
    )
    .await
}

/// Routine `p` in `n` as SQL names it: with its arguments' modes and names, as
/// `pg_get_function_identity_arguments` prints them. `regprocedure` is not enough: two
/// procedures that differ only in which argument is OUT print the same.
/// Aggregates keep `regprocedure`: an ordered-set aggregate's identity (`float8 ORDER BY
/// anyelement`) is not a routine reference.
pub(super) const ROUTINE_REFERENCE: &str = "CASE WHEN p.prokind = 'a' THEN p.oid::regprocedure::text \
     ELSE format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) END";

/// A relation `c` in `n` named as [`crate::ddl::Statement::object`] names it.
pub(super) const RELATION_OBJECT: &str = "CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
     WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END || ' ' || n.nspname || '.' || c.relname";

/// The catalogs of the other kinds whose comments are carried (by [`OTHER_COMMENT_TARGET`]).
/// Indexes and table constraints are built after the copy: their comments go with them
/// (`ddl::deferred_objects`).
const OTHER_COMMENTED_CLASSES: &str = "'pg_language'::regclass, 'pg_am'::regclass, \
     'pg_opfamily'::regclass, 'pg_opclass'::regclass, 'pg_conversion'::regclass, 'pg_ts_parser'::regclass, \
     'pg_ts_template'::regclass, 'pg_transform'::regclass, 'pg_collation'::regclass, 'pg_ts_dict'::regclass, \
     'pg_ts_config'::regclass, 'pg_operator'::regclass, 'pg_cast'::regclass, 'pg_event_trigger'::regclass, \
     'pg_foreign_server'::regclass, 'pg_foreign_data_wrapper'::regclass, 'pg_publication'::regclass, \
     'pg_statistic_ext'::regclass, 'pg_rewrite'::regclass, 'pg_extension'::regclass";

/// `COMMENT ON` target of the object of a `pg_description` row `d`, from its identity `o`
/// (`pg_identify_object`), which is the SQL name for most kinds; the others are built here.
/// It names the comment's object too: for kinds labelled by their raw name (a collation, a
/// rule) the comment of an object whose name needs quotes stands on its own.
const OTHER_COMMENT_TARGET: &str = "CASE o.type \
       WHEN 'foreign-data wrapper' THEN 'FOREIGN DATA WRAPPER ' || o.identity \
       WHEN 'statistics object' THEN 'STATISTICS ' || o.identity \
       WHEN 'transform' THEN (SELECT format('TRANSFORM FOR %s LANGUAGE %I', format_type(t.trftype, NULL), l.lanname) \
         FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang WHERE t.oid = d.objoid) \
       WHEN 'domain constraint' THEN (SELECT format('CONSTRAINT %I ON DOMAIN %s', c.conname, c.contypid::regtype) \
         FROM pg_constraint c WHERE c.oid = d.objoid) \
       WHEN 'rule' THEN (SELECT format('RULE %I ON %s', r.rulename, r.ev_class::regclass) \
         FROM pg_rewrite r WHERE r.oid = d.objoid) \
       ELSE upper(o.type) || ' ' || o.identity END";

/// Comments on tables, views, sequences, columns, schemas, routines, types, triggers,
/// policies, and the kinds of [`OTHER_COMMENTED_CLASSES`].
pub(super) async fn comments(client: &Session) -> Result<Vec<Comment>, PgError> {
    let comments = client
        .query(
            &format!(
                "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
                          WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END || ' ' || format('%I.%I', n.nspname, c.relname), d.description, \
                   {relation} \
                 FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'COLUMN ' || format('%I.%I.%I', n.nspname, c.relname, a.attname), d.description, {relation} \
                 FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE d.objsubid > 0 AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'SCHEMA ' || format('%I', n.nspname), d.description, 'SCHEMA ' || n.nspname \
                 FROM pg_description d JOIN pg_namespace n ON n.oid = d.objoid AND d.classoid = 'pg_namespace'::regclass \
                 WHERE {nsp} \
                 UNION ALL \
                 SELECT 'ROUTINE ' || {routine}, d.description, 'ROUTINE ' || p.oid::regprocedure::text \
                 FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid AND d.classoid = 'pg_proc'::regclass \
                 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p', 'w', 'a') AND {proc} \
                 UNION ALL \
                 SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || format('%I.%I', n.nspname, t.typname), d.description, \
                   CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || n.nspname || '.' || t.typname \
                 FROM pg_description d JOIN pg_type t ON t.oid = d.objoid AND d.classoid = 'pg_type'::regclass \
                 JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {typ} \
                 UNION ALL \
                 SELECT 'TRIGGER ' || format('%I ON %I.%I', t.tgname, n.nspname, c.relname), d.description, \
                   'TRIGGER ' || t.tgname || ' ON ' || n.nspname || '.' || c.relname \
                 FROM pg_description d JOIN pg_trigger t ON t.oid = d.objoid AND d.classoid = 'pg_trigger'::regclass \
                 JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel} \
                 UNION ALL \
                 SELECT 'POLICY ' || format('%I ON %I.%I', p.polname, n.nspname, c.relname), d.description, \
                   'POLICY ' || p.polname || ' ON ' || n.nspname || '.' || c.relname \
                 FROM pg_description d JOIN pg_policy p ON p.oid = d.objoid AND d.classoid = 'pg_policy'::regclass \
                 JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel} \
                 UNION ALL \
                 SELECT {other}, d.description, {other} \
                 FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, 0) o \
                 WHERE d.objoid >= 16384 AND d.objsubid = 0 \
                   AND (d.classoid IN ({other_classes}) \
                        OR d.classoid = 'pg_constraint'::regclass \
                           AND EXISTS (SELECT 1 FROM pg_constraint c WHERE c.oid = d.objoid AND c.contypid <> 0)) \
                   AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = d.classoid AND x.objid = d.objoid \
                                   AND x.deptype = 'e')",
                rel = user_object("pg_class", "c.oid"),
                nsp = user_object("pg_namespace", "n.oid"),
                proc = user_object("pg_proc", "p.oid"),
                typ = user_object("pg_type", "t.oid"),
                relation = RELATION_OBJECT,
                other = OTHER_COMMENT_TARGET,
                routine = ROUTINE_REFERENCE,
                other_classes = OTHER_COMMENTED_CLASSES,
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing comments"))?
        .iter()
        .map(|r| Comment {
            target: r.get(0),
            text: r.get(1),
            object: r.get(2),
        })
        .collect();
    Ok(comments)
}

/// The object (named as [`crate::ddl::Statement::object`] names it) that the catalog row
/// `oid` of catalog `class` belongs to: a view's rewrite rule is the view, a table's
/// constraint or default the table, a domain's constraint the domain, a row type its relation,
/// an array type its element type, an operator family's member the family. Kinds named otherwise give a name no statement has.
fn object_of(class: &str, oid: &str) -> String {
    let relation = |relid: &str| {
        format!(
            "(SELECT {RELATION_OBJECT} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = {relid})"
        )
    };
    format!(
        "CASE {class} \
           WHEN 'pg_class'::regclass THEN {rel_oid} \
           WHEN 'pg_proc'::regclass THEN (SELECT 'ROUTINE ' || p.oid::regprocedure::text FROM pg_proc p \
             WHERE p.oid = {oid}) \
           WHEN 'pg_type'::regclass THEN (SELECT CASE \
               WHEN t.typrelid <> 0 AND (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) <> 'c' \
                 THEN {rel_typrelid} \
               WHEN t.typtype = 'd' THEN 'DOMAIN ' || tn.nspname || '.' || t.typname \
               ELSE 'TYPE ' || tn.nspname || '.' || t.typname END \
             FROM pg_type a JOIN pg_type t ON t.oid = CASE WHEN EXISTS (SELECT 1 FROM pg_type e \
               WHERE e.typarray = a.oid) THEN a.typelem ELSE a.oid END \
             JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE a.oid = {oid}) \
           WHEN 'pg_rewrite'::regclass THEN (SELECT CASE WHEN rw.rulename = '_RETURN' THEN {rel_ev_class} \
               ELSE 'RULE ' || rw.rulename || ' ON ' || rn.nspname || '.' || rc.relname END \
             FROM pg_rewrite rw JOIN pg_class rc ON rc.oid = rw.ev_class \
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rw.oid = {oid}) \
           WHEN 'pg_constraint'::regclass THEN (SELECT CASE WHEN co.contypid <> 0 THEN \
               (SELECT 'DOMAIN ' || dn.nspname || '.' || dt.typname FROM pg_type dt \
                JOIN pg_namespace dn ON dn.oid = dt.typnamespace WHERE dt.oid = co.contypid) \
               ELSE {rel_conrelid} END FROM pg_constraint co WHERE co.oid = {oid}) \
           WHEN 'pg_attrdef'::regclass THEN (SELECT {rel_adrelid} FROM pg_attrdef ad WHERE ad.oid = {oid}) \
           WHEN 'pg_trigger'::regclass THEN (SELECT 'TRIGGER ' || tg.tgname || ' ON ' || gn.nspname || '.' || gc.relname \
             FROM pg_trigger tg JOIN pg_class gc ON gc.oid = tg.tgrelid \
             JOIN pg_namespace gn ON gn.oid = gc.relnamespace WHERE tg.oid = {oid}) \
           WHEN 'pg_namespace'::regclass THEN (SELECT 'SCHEMA ' || s.nspname FROM pg_namespace s WHERE s.oid = {oid}) \
           WHEN 'pg_amop'::regclass THEN (SELECT 'OPERATOR FAMILY ' || o.identity FROM pg_amop m, \
             LATERAL pg_identify_object('pg_opfamily'::regclass, m.amopfamily, 0) o WHERE m.oid = {oid}) \
           WHEN 'pg_amproc'::regclass THEN (SELECT 'OPERATOR FAMILY ' || o.identity FROM pg_amproc m, \
             LATERAL pg_identify_object('pg_opfamily'::regclass, m.amprocfamily, 0) o WHERE m.oid = {oid}) \
           ELSE (SELECT upper(o.type) || ' ' || o.identity FROM pg_identify_object({class}, {oid}, 0) o) END",
        rel_oid = relation(oid),
        rel_typrelid = relation("t.typrelid"),
        rel_ev_class = relation("rw.ev_class"),
        rel_conrelid = relation("co.conrelid"),
        rel_adrelid = relation("ad.adrelid"),
    )
}

/// What each user object depends on, from `pg_depend`, as pairs of object names (dependent,
/// referenced) for [`crate::ddl::dependency_order`]. Left out: a table's constraints and
/// defaults calling functions (added after the functions: `ddl::after_functions`), so that
/// they do not hold the table back.
pub(super) async fn dependencies(client: &Session) -> Result<Vec<(String, String)>, PgError> {
    Ok(client
        .query(
            &format!(
                "SELECT DISTINCT {dependent}, {referenced} \
                 FROM (SELECT DISTINCT d.classid, d.objid, d.refclassid, d.refobjid FROM pg_depend d \
                       WHERE d.deptype IN ('n', 'a') AND d.objid >= 16384 AND d.refobjid >= 16384 \
                         AND NOT (d.refclassid = 'pg_proc'::regclass \
                                  AND (d.classid = 'pg_attrdef'::regclass \
                                       OR (d.classid = 'pg_constraint'::regclass \
                                           AND EXISTS (SELECT 1 FROM pg_constraint x \
                                                       WHERE x.oid = d.objid AND x.conrelid <> 0))))) d",
                dependent = object_of("d.classid", "d.objid"),
                referenced = object_of("d.refclassid", "d.refobjid"),
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "reading the dependencies between objects"))?
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)))
        .filter(|(a, b)| a != b)
        .collect())
}
