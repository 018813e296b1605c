//! Kinds read as whole statements built by the server: range types, extended statistics,
//! event triggers and the source's own publications. Every name prints qualified and quoted
//! (`search_path` is empty while they are read, see [`super::read`]).

use crate::naming::PREFIX;
use crate::pg::{PgError, Session};

use super::{Definition, definitions, user_object};

/// Range types (`CREATE TYPE ... AS RANGE`), with their multirange type's name.
pub(super) async fn range_types(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing range types",
        &format!(
            "SELECT n.nspname, t.typname, format('CREATE TYPE %I.%I AS RANGE (%s)', n.nspname, t.typname, \
               concat_ws(', ', \
                 'SUBTYPE = ' || format_type(r.rngsubtype, NULL), \
                 (SELECT format('SUBTYPE_OPCLASS = %I.%I', ocn.nspname, oc.opcname) FROM pg_opclass oc \
                    JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace WHERE oc.oid = r.rngsubopc), \
                 CASE WHEN r.rngcollation <> 0 THEN (SELECT format('COLLATION = %I.%I', cn.nspname, co.collname) \
                    FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) END, \
                 CASE WHEN r.rngcanonical <> 0 THEN 'CANONICAL = ' || r.rngcanonical::regproc END, \
                 CASE WHEN r.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || r.rngsubdiff::regproc END, \
                 'MULTIRANGE_TYPE_NAME = ' || r.rngmultitypid::regtype)), \
               'TYPE ' || n.nspname || '.' || t.typname \
             FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid \
             JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {} ORDER BY t.oid",
            user_object("pg_type", "t.oid")
        ),
        &[],
    )
    .await
}

/// Extended statistics (`CREATE STATISTICS`), with their statistics target when set.
pub(super) async fn statistics(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing extended statistics",
        &format!(
            "SELECT n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid) \
               || CASE WHEN coalesce(s.stxstattarget, -1) >= 0 \
                    THEN format('; ALTER STATISTICS %I.%I SET STATISTICS %s', n.nspname, s.stxname, s.stxstattarget) \
                    ELSE '' END, \
               'STATISTICS ' || n.nspname || '.' || s.stxname \
             FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace \
             WHERE {} ORDER BY s.oid",
            user_object("pg_statistic_ext", "s.oid")
        ),
        &[],
    )
    .await
}

/// Event triggers, in their source state (enabled, disabled, replica, always). Their name has no
/// schema: `name.schema` is empty.
pub(super) async fn event_triggers(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing event triggers",
        "SELECT '', e.evtname, format('CREATE EVENT TRIGGER %I ON %I%s EXECUTE FUNCTION %s()', e.evtname, e.evtevent, \
           CASE WHEN e.evttags IS NOT NULL THEN ' WHEN TAG IN (' \
             || (SELECT string_agg(quote_literal(tag), ', ') FROM unnest(e.evttags) tag) || ')' ELSE '' END, \
           e.evtfoid::regproc) \
           || CASE e.evtenabled WHEN 'D' THEN format('; ALTER EVENT TRIGGER %I DISABLE', e.evtname) \
                WHEN 'R' THEN format('; ALTER EVENT TRIGGER %I ENABLE REPLICA', e.evtname) \
                WHEN 'A' THEN format('; ALTER EVENT TRIGGER %I ENABLE ALWAYS', e.evtname) ELSE '' END \
           || format('; ALTER EVENT TRIGGER %I OWNER TO %I', e.evtname, pg_get_userbyid(e.evtowner)), \
           'EVENT TRIGGER ' || e.evtname \
         FROM pg_event_trigger e \
         WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_event_trigger'::regclass \
                           AND x.objid = e.oid AND x.deptype = 'e') \
         ORDER BY e.evtname",
        &[],
    )
    .await
}

/// The source's own publications (a change-data-capture feed, say), not the tool's: with their
/// tables (column lists and row filters), schemas and options. Their name has no schema.
pub(super) async fn publications(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing the source's publications",
        "SELECT '', p.pubname, format('CREATE PUBLICATION %I%s WITH (publish = %L, publish_via_partition_root = %s)', \
           p.pubname, \
           CASE WHEN p.puballtables THEN ' FOR ALL TABLES' \
             ELSE coalesce(' FOR ' || nullif(concat_ws(', ', \
               (SELECT string_agg(format('TABLE %I.%I%s%s', tn.nspname, tc.relname, \
                   CASE WHEN pr.prattrs IS NOT NULL THEN ' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) \
                     FROM pg_attribute a WHERE a.attrelid = pr.prrelid AND a.attnum = ANY (pr.prattrs)) || ')' ELSE '' END, \
                   CASE WHEN pr.prqual IS NOT NULL THEN ' WHERE (' || pg_get_expr(pr.prqual, pr.prrelid) || ')' ELSE '' END), \
                   ', ' ORDER BY tn.nspname, tc.relname) \
                FROM pg_publication_rel pr JOIN pg_class tc ON tc.oid = pr.prrelid \
                JOIN pg_namespace tn ON tn.oid = tc.relnamespace WHERE pr.prpubid = p.oid), \
               (SELECT string_agg(format('TABLES IN SCHEMA %I', pn.nspname), ', ' ORDER BY pn.nspname) \
                FROM pg_publication_namespace pns JOIN pg_namespace pn ON pn.oid = pns.pnnspid \
                WHERE pns.pnpubid = p.oid)), ''), '') END, \
           concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END, \
             CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END), \
           CASE WHEN p.pubviaroot THEN 'true' ELSE 'false' END) \
           || format('; ALTER PUBLICATION %I OWNER TO %I', p.pubname, pg_get_userbyid(p.pubowner)), \
           'PUBLICATION ' || p.pubname \
         FROM pg_publication p WHERE left(p.pubname, length($1)) <> $1 ORDER BY p.pubname",
        &[&PREFIX],
    )
    .await
}

/// `OPTIONS (name 'value', ...)` from the `text[]` of `name=value` in column `column`, or ''.
fn options(column: &str) -> String {
    format!(
        "coalesce(' OPTIONS (' || (SELECT string_agg(format('%I %L', split_part(o, '=', 1), \
           substr(o, strpos(o, '=') + 1)), ', ') FROM unnest({column}) o) || ')', '')"
    )
}

/// Foreign-data wrappers not brought by an extension, foreign servers and user mappings, in
/// that order. A user mapping's options (a password, often) go to the destination as they are
/// and appear in no log line or error. Their names have no schema.
pub(super) async fn foreign_servers(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing foreign-data wrappers, servers and user mappings",
        &format!(
            "SELECT '', w.fdwname, format('CREATE FOREIGN DATA WRAPPER %I%s%s', w.fdwname, \
               CASE WHEN w.fdwhandler <> 0 THEN ' HANDLER ' || w.fdwhandler::regproc ELSE ' NO HANDLER' END, \
               CASE WHEN w.fdwvalidator <> 0 THEN ' VALIDATOR ' || w.fdwvalidator::regproc ELSE ' NO VALIDATOR' END) \
               || {fdw_options} \
               || format('; ALTER FOREIGN DATA WRAPPER %I OWNER TO %I', w.fdwname, pg_get_userbyid(w.fdwowner)), \
               'FOREIGN DATA WRAPPER ' || w.fdwname, 1 AS rank, w.oid \
             FROM pg_foreign_data_wrapper w \
             WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_foreign_data_wrapper'::regclass \
                               AND x.objid = w.oid AND x.deptype = 'e') \
             UNION ALL \
             SELECT '', s.srvname, format('CREATE SERVER %I%s%s FOREIGN DATA WRAPPER %I', s.srvname, \
               ' TYPE ' || quote_literal(s.srvtype), ' VERSION ' || quote_literal(s.srvversion), w.fdwname) \
               || {srv_options} \
               || format('; ALTER SERVER %I OWNER TO %I', s.srvname, pg_get_userbyid(s.srvowner)), \
               'SERVER ' || s.srvname, 2, s.oid \
             FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
             WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_foreign_server'::regclass \
                               AND x.objid = s.oid AND x.deptype = 'e') \
             UNION ALL \
             SELECT '', u.srvname, format('CREATE USER MAPPING FOR %s SERVER %I', \
               CASE WHEN u.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(u.usename) END, u.srvname) || {um_options}, \
               'USER MAPPING FOR ' || CASE WHEN u.umuser = 0 THEN 'PUBLIC' ELSE u.usename END || ' SERVER ' || u.srvname, \
               3, u.umid \
             FROM pg_user_mappings u \
             ORDER BY 5, 6",
            fdw_options = options("w.fdwoptions"),
            srv_options = options("s.srvoptions"),
            um_options = options("u.umoptions"),
        ),
        &[],
    )
    .await
}

/// Foreign tables: columns (type, collation, NOT NULL, default, column options), server and
/// options. Their rows live elsewhere: nothing to copy or replicate.
pub(super) async fn foreign_tables(client: &Session) -> Result<Vec<Definition>, PgError> {
    definitions(
        client,
        "listing foreign tables",
        &format!(
            "SELECT n.nspname, c.relname, format('CREATE FOREIGN TABLE %I.%I (%s) SERVER %I', n.nspname, c.relname, \
               coalesce((SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) \
                   || {col_options} \
                   || CASE WHEN a.attcollation <> t.typcollation THEN (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname) \
                        FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END \
                   || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
                   || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum) \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''), s.srvname) \
               || {ft_options}, \
               'FOREIGN TABLE ' || n.nspname || '.' || c.relname \
             FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_foreign_server s ON s.oid = f.ftserver \
             WHERE {} ORDER BY c.oid",
            user_object("pg_class", "c.oid"),
            col_options = options("a.attfdwoptions"),
            ft_options = options("f.ftoptions"),
        ),
        &[],
    )
    .await
}

/// User-defined operators (shells left out: a commutator or negator creates its own) and casts
/// (not those a range type makes to its multirange type: they come with it).
/// After the functions they call, before the tables whose checks and defaults may use them.
pub(super) async fn operators_and_casts(client: &Session) -> Result<Vec<Definition>, PgError> {
    let other = |column: &str, word: &str| {
        format!(
            "CASE WHEN {column} <> 0 THEN (SELECT format('{word} = OPERATOR(%I.%s)', xn.nspname, x.oprname) \
               FROM pg_operator x JOIN pg_namespace xn ON xn.oid = x.oprnamespace WHERE x.oid = {column}) END"
        )
    };
    let arg = |column: &str| {
        format!("CASE WHEN {column} <> 0 THEN format_type({column}, NULL) ELSE 'NONE' END")
    };
    definitions(
        client,
        "listing operators and casts",
        &format!(
            "SELECT n.nspname, o.oprname::text, format('CREATE OPERATOR %I.%s (%s)', n.nspname, o.oprname, concat_ws(', ', \
               'FUNCTION = ' || o.oprcode::regproc, \
               CASE WHEN o.oprleft <> 0 THEN 'LEFTARG = ' || format_type(o.oprleft, NULL) END, \
               CASE WHEN o.oprright <> 0 THEN 'RIGHTARG = ' || format_type(o.oprright, NULL) END, \
               {commutator}, {negator}, \
               CASE WHEN o.oprrest <> 0 THEN 'RESTRICT = ' || o.oprrest::regproc END, \
               CASE WHEN o.oprjoin <> 0 THEN 'JOIN = ' || o.oprjoin::regproc END, \
               CASE WHEN o.oprcanhash THEN 'HASHES' END, CASE WHEN o.oprcanmerge THEN 'MERGES' END)) \
               || format('; ALTER OPERATOR %s OWNER TO %I', o.oid::regoperator, pg_get_userbyid(o.oprowner)), \
               'OPERATOR ' || n.nspname || '.' || o.oprname || '(' || {left} || ', ' || {right} || ')', 1 AS rank, o.oid \
             FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace \
             WHERE o.oprcode <> 0 AND {operator} \
             UNION ALL \
             SELECT '', '', format('CREATE CAST (%s AS %s) %s%s', format_type(c.castsource, NULL), \
               format_type(c.casttarget, NULL), \
               CASE c.castmethod WHEN 'f' THEN 'WITH FUNCTION ' || c.castfunc::regprocedure::text \
                 WHEN 'i' THEN 'WITH INOUT' ELSE 'WITHOUT FUNCTION' END, \
               CASE c.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' ELSE '' END), \
               'CAST (' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')', 2, c.oid \
             FROM pg_cast c \
             WHERE c.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_cast'::regclass \
                                                  AND x.objid = c.oid AND x.deptype IN ('e', 'i')) \
             ORDER BY 5, 6",
            commutator = other("o.oprcom", "COMMUTATOR"),
            negator = other("o.oprnegate", "NEGATOR"),
            left = arg("o.oprleft"),
            right = arg("o.oprright"),
            operator = user_object("pg_operator", "o.oid"),
        ),
        &[],
    )
    .await
}
