//! Kinds that extend the server itself, read as whole statements built by the server:
//! procedural languages, access methods, operator families and classes, conversions, text
//! search parsers and templates, transforms. Each only when a user created it (not part of an
//! extension, not built in).
//!
//! Their object names (`OPERATOR CLASS public.c USING btree`) are the kind and the server's
//! `pg_identify_object` identity, which is how [`super::definitions::comments`] names the
//! object of a comment on them too.

use crate::pg::{PgError, Session};

use super::{Definition, definitions};

/// Created by a user: past the built-in objects' oids and not brought by an extension.
pub(super) fn created(class: &str, oid: &str) -> String {
    format!(
        "{oid} >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '{class}'::regclass \
           AND x.objid = {oid} AND x.deptype = 'e')"
    )
}

/// `KIND identity` of an object, as [`super::Definition::object`] holds it.
pub(super) fn label(class: &str, oid: &str) -> String {
    format!(
        "upper((pg_identify_object('{class}'::regclass, {oid}, 0)).type) || ' ' || (pg_identify_object('{class}'::regclass, {oid}, 0)).identity"
    )
}

/// Procedural languages not brought by an extension (their handler is a C function the schema
/// creates first). Owner and privileges are carried with the others (`security.rs`).
pub(super) async fn languages(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing procedural languages",
        &format!(
            "SELECT '', l.lanname, format('CREATE %sLANGUAGE %I HANDLER %s%s%s', \
               CASE WHEN l.lanpltrusted THEN 'TRUSTED ' ELSE '' END, l.lanname, l.lanplcallfoid::regproc, \
               CASE WHEN l.laninline <> 0 THEN ' INLINE ' || l.laninline::regproc ELSE '' END, \
               CASE WHEN l.lanvalidator <> 0 THEN ' VALIDATOR ' || l.lanvalidator::regproc ELSE '' END), {} \
             FROM pg_language l WHERE l.lanispl AND {} ORDER BY l.oid",
            label("pg_language", "l.oid"),
            created("pg_language", "l.oid"),
        ),
        &[],
    )
    .await
}

/// Access methods, operator families, operator classes (one without members says `STORAGE` of
/// its own type, as pg_dump does: the syntax wants an item) and the members a family holds
/// outside any class (`ALTER OPERATOR FAMILY ... ADD`), in that order; then conversions, text search
/// parsers and templates, and transforms.
pub(super) async fn support(client: &Session) -> Result<Vec<Definition>, PgError> {
    let operator = "format('OPERATOR %s %s%s', o.amopstrategy, o.amopopr::regoperator, \
         CASE WHEN o.amoppurpose = 'o' THEN (SELECT format(' FOR ORDER BY %I.%I', sn.nspname, sf.opfname) \
           FROM pg_opfamily sf JOIN pg_namespace sn ON sn.oid = sf.opfnamespace WHERE sf.oid = o.amopsortfamily) \
           ELSE '' END)";
    let function = "format('FUNCTION %s (%s, %s) %s', p.amprocnum, format_type(p.amproclefttype, NULL), \
         format_type(p.amprocrighttype, NULL), p.amproc::regprocedure)";
    // Members of an operator class depend on the class; loose members of a family on the family
    // (also of a built-in family: `ALTER OPERATOR FAMILY integer_ops USING btree ADD ...`).
    let members = |owner_class: &str, owner: &str| {
        format!(
            "concat_ws(', ', \
               (SELECT string_agg({operator}, ', ' ORDER BY o.amopstrategy, o.oid) FROM pg_amop o \
                  JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = o.oid \
                   AND d.refclassid = '{owner_class}'::regclass AND d.refobjid = {owner} WHERE o.oid >= 16384), \
               (SELECT string_agg({function}, ', ' ORDER BY p.amprocnum, p.oid) FROM pg_amproc p \
                  JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = p.oid \
                   AND d.refclassid = '{owner_class}'::regclass AND d.refobjid = {owner} WHERE p.oid >= 16384))"
        )
    };
    definitions(
        client,
        "listing access methods, operator classes, conversions, text search parsers and templates, transforms",
        &format!(
            "SELECT '', a.amname, format('CREATE ACCESS METHOD %I TYPE %s HANDLER %s', a.amname, \
               CASE a.amtype WHEN 'i' THEN 'INDEX' ELSE 'TABLE' END, a.amhandler::regproc), \
               {am_label}, 1 AS rank, a.oid \
             FROM pg_am a WHERE {am} \
             UNION ALL \
             SELECT n.nspname, f.opfname, format('CREATE OPERATOR FAMILY %I.%I USING %I', n.nspname, f.opfname, am.amname), \
               {opf_label}, 2, f.oid \
             FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod \
             WHERE {opf} \
             UNION ALL \
             SELECT n.nspname, c.opcname, format('CREATE OPERATOR CLASS %I.%I %sFOR TYPE %s USING %I FAMILY %I.%I AS %s', \
               n.nspname, c.opcname, CASE WHEN c.opcdefault THEN 'DEFAULT ' ELSE '' END, format_type(c.opcintype, NULL), \
               am.amname, fn.nspname, f.opfname, \
               coalesce(nullif(concat_ws(', ', nullif({class_members}, ''), \
                 CASE WHEN c.opckeytype <> 0 THEN 'STORAGE ' || format_type(c.opckeytype, NULL) END), ''), \
                 'STORAGE ' || format_type(c.opcintype, NULL))), \
               {opc_label}, 3, c.oid \
             FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am am ON am.oid = c.opcmethod \
             JOIN pg_opfamily f ON f.oid = c.opcfamily JOIN pg_namespace fn ON fn.oid = f.opfnamespace \
             WHERE {opc} \
             UNION ALL \
             SELECT n.nspname, f.opfname, format('ALTER OPERATOR FAMILY %I.%I USING %I ADD %s', \
               n.nspname, f.opfname, am.amname, {family_members}), {opf_label}, 4, f.oid \
             FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod \
             WHERE {family_members} <> '' \
               AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_opfamily'::regclass \
                               AND x.objid = f.oid AND x.deptype = 'e') \
             UNION ALL \
             SELECT n.nspname, c.conname, format('CREATE %sCONVERSION %I.%I FOR %L TO %L FROM %s', \
               CASE WHEN c.condefault THEN 'DEFAULT ' ELSE '' END, n.nspname, c.conname, \
               pg_encoding_to_char(c.conforencoding), pg_encoding_to_char(c.contoencoding), c.conproc::regproc), \
               {conv_label}, 5, c.oid \
             FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {conv} \
             UNION ALL \
             SELECT n.nspname, p.prsname, format('CREATE TEXT SEARCH PARSER %I.%I (START = %s, GETTOKEN = %s, \
               END = %s, LEXTYPES = %s%s)', n.nspname, p.prsname, p.prsstart::regproc, p.prstoken::regproc, \
               p.prsend::regproc, p.prslextype::regproc, \
               CASE WHEN p.prsheadline <> 0 THEN ', HEADLINE = ' || p.prsheadline::regproc ELSE '' END), \
               {prs_label}, 6, p.oid \
             FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace WHERE {prs} \
             UNION ALL \
             SELECT n.nspname, t.tmplname, format('CREATE TEXT SEARCH TEMPLATE %I.%I (%sLEXIZE = %s)', \
               n.nspname, t.tmplname, CASE WHEN t.tmplinit <> 0 THEN 'INIT = ' || t.tmplinit::regproc || ', ' ELSE '' END, \
               t.tmpllexize::regproc), {tmpl_label}, 7, t.oid \
             FROM pg_ts_template t JOIN pg_namespace n ON n.oid = t.tmplnamespace WHERE {tmpl} \
             UNION ALL \
             SELECT '', '', format('CREATE TRANSFORM FOR %s LANGUAGE %I (%s)', format_type(t.trftype, NULL), l.lanname, \
               concat_ws(', ', CASE WHEN t.trffromsql <> 0 THEN 'FROM SQL WITH FUNCTION ' || t.trffromsql::regprocedure END, \
                 CASE WHEN t.trftosql <> 0 THEN 'TO SQL WITH FUNCTION ' || t.trftosql::regprocedure END)), \
               {trf_label}, 8, t.oid \
             FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang WHERE {trf} \
             ORDER BY 5, 6",
            am = created("pg_am", "a.oid"),
            am_label = label("pg_am", "a.oid"),
            opf = created("pg_opfamily", "f.oid"),
            opf_label = label("pg_opfamily", "f.oid"),
            opc = created("pg_opclass", "c.oid"),
            opc_label = label("pg_opclass", "c.oid"),
            class_members = members("pg_opclass", "c.oid"),
            family_members = members("pg_opfamily", "f.oid"),
            conv = created("pg_conversion", "c.oid"),
            conv_label = label("pg_conversion", "c.oid"),
            prs = created("pg_ts_parser", "p.oid"),
            prs_label = label("pg_ts_parser", "p.oid"),
            tmpl = created("pg_ts_template", "t.oid"),
            tmpl_label = label("pg_ts_template", "t.oid"),
            trf = created("pg_transform", "t.oid"),
            trf_label = label("pg_transform", "t.oid"),
        ),
        &[],
    )
    .await
}

/// Base types (`CREATE TYPE name (INPUT = ..., OUTPUT = ...)`), not the array types the server
/// makes for every type, and shell types never defined (`CREATE TYPE name`). The schema creates each as a shell first, so that its input and output
/// functions (C, in a library the destination must have) can name it.
pub(super) async fn base_types(client: &Session) -> Result<Vec<Definition>, PgError> {
    let function = |column: &str, word: &str| {
        format!("CASE WHEN t.{column} <> 0 THEN '{word} = ' || t.{column}::regproc END")
    };
    definitions(
        client,
        "listing base types",
        &format!(
            "SELECT n.nspname, t.typname, format('CREATE TYPE %I.%I (%s)', n.nspname, t.typname, concat_ws(', ', \
               'INPUT = ' || t.typinput::regproc, 'OUTPUT = ' || t.typoutput::regproc, \
               {receive}, {send}, {typmod_in}, {typmod_out}, {analyze}, {subscript}, \
               'INTERNALLENGTH = ' || CASE WHEN t.typlen < 0 THEN 'VARIABLE' ELSE t.typlen::text END, \
               CASE WHEN t.typbyval THEN 'PASSEDBYVALUE' END, \
               'ALIGNMENT = ' || CASE t.typalign WHEN 'c' THEN 'char' WHEN 's' THEN 'int2' WHEN 'i' THEN 'int4' ELSE 'double' END, \
               'STORAGE = ' || CASE t.typstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external' WHEN 'm' THEN 'main' ELSE 'extended' END, \
               'CATEGORY = ' || quote_literal(t.typcategory::text), \
               CASE WHEN t.typispreferred THEN 'PREFERRED = true' END, \
               CASE WHEN t.typdefault IS NOT NULL THEN 'DEFAULT = ' || quote_literal(t.typdefault) END, \
               CASE WHEN t.typelem <> 0 THEN 'ELEMENT = ' || format_type(t.typelem, NULL) END, \
               CASE WHEN t.typdelim <> ',' THEN 'DELIMITER = ' || quote_literal(t.typdelim::text) END, \
               CASE WHEN t.typcollation <> 0 THEN 'COLLATABLE = true' END)), \
               'TYPE ' || n.nspname || '.' || t.typname, t.oid \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE t.typtype = 'b' AND t.typisdefined AND {created} \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
               AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid) \
             UNION ALL \
             SELECT n.nspname, t.typname, format('CREATE TYPE %I.%I', n.nspname, t.typname), \
               'TYPE ' || n.nspname || '.' || t.typname, t.oid \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE t.typtype = 'p' AND NOT t.typisdefined AND {created} \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
             ORDER BY 5",
            receive = function("typreceive", "RECEIVE"),
            send = function("typsend", "SEND"),
            typmod_in = function("typmodin", "TYPMOD_IN"),
            typmod_out = function("typmodout", "TYPMOD_OUT"),
            analyze = function("typanalyze", "ANALYZE"),
            subscript = function("typsubscript", "SUBSCRIPT"),
            created = created("pg_type", "t.oid"),
        ),
        &[],
    )
    .await
}
