//! Who may do what: row-level security and its policies, owners and privileges, default
//! privileges. One reader per kind, each with its query.

use crate::pg::{PgError, Session, q};

use super::{
    DefaultPrivileges, Grant, Policy, Privileges, RowSecurity, SystemGrant, name, user_object,
};

/// `[[grantee, privilege, grantable], ...]` as built by [`acl_json`].
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

/// Tables with row-level security switched on.
pub(super) async fn row_security(client: &Session) -> Result<Vec<RowSecurity>, PgError> {
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
        .map_err(q(client.target(), "listing tables with row-level security"))?
        .iter()
        .map(|r| RowSecurity {
            table: name(r, 0),
            forced: r.get(2),
        })
        .collect();
    Ok(row_security)
}

/// Row-level security policies.
pub(super) async fn policies(client: &Session) -> Result<Vec<Policy>, PgError> {
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
        .map_err(q(client.target(), "listing row-level security policies"))?
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
    Ok(policies)
}

/// Owners and privileges of relations, columns, schemas, routines, types, collations, text
/// search objects and the database itself.
pub(super) async fn privileges(client: &Session) -> Result<Vec<Privileges>, PgError> {
    let privileges = client
        .query(
            &format!(
                "SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
                          WHEN 'S' THEN CASE WHEN EXISTS (SELECT 1 FROM pg_depend dp WHERE dp.classid = 'pg_class'::regclass \
                                         AND dp.objid = c.oid AND dp.deptype IN ('a', 'i')) THEN NULL ELSE 'SEQUENCE' END \
                          WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, \
                   CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, \
                   format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner), NULL::text, {relacl}, c.oid::bigint, \
                   {relation} \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'SERVER', 'FOREIGN SERVER', format('%I', s.srvname), pg_get_userbyid(s.srvowner), NULL, {srvacl}, \
                   s.oid::bigint, 'SERVER ' || s.srvname \
                 FROM pg_foreign_server s \
                 UNION ALL \
                 SELECT NULL, 'TABLE', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner), \
                   a.attname::text, {attacl}, c.oid::bigint, {relation} \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped \
                   AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relpersistence = 'p' AND {rel} \
                 UNION ALL \
                 SELECT 'SCHEMA', 'SCHEMA', format('%I', n.nspname), pg_get_userbyid(n.nspowner), NULL, {nspacl}, n.oid::bigint, \
                   'SCHEMA ' || n.nspname \
                 FROM pg_namespace n WHERE {nsp} \
                 UNION ALL \
                 SELECT 'ROUTINE', 'ROUTINE', {routine}, pg_get_userbyid(p.proowner), NULL, {proacl}, p.oid::bigint, \
                   'ROUTINE ' || p.oid::regprocedure::text \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p', 'w', 'a') AND {proc} \
                 UNION ALL \
                 SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, 'TYPE', format('%I.%I', n.nspname, t.typname), \
                   pg_get_userbyid(t.typowner), NULL, {typacl}, t.oid::bigint, \
                   CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || n.nspname || '.' || t.typname \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 LEFT JOIN pg_class tc ON tc.oid = t.typrelid \
                 WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b') AND (t.typrelid = 0 OR tc.relkind = 'c') AND {typ} \
                   AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid) \
                 UNION ALL \
                 SELECT 'STATISTICS', 'STATISTICS', format('%I.%I', n.nspname, s.stxname), \
                   pg_get_userbyid(s.stxowner), NULL, NULL, s.oid::bigint, 'STATISTICS ' || n.nspname || '.' || s.stxname \
                 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE {stx} \
                 UNION ALL \
                 SELECT 'COLLATION', 'COLLATION', format('%I.%I', n.nspname, co.collname), \
                   pg_get_userbyid(co.collowner), NULL, NULL, co.oid::bigint, 'COLLATION ' || n.nspname || '.' || co.collname \
                 FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE {coll} \
                 UNION ALL \
                 SELECT 'TEXT SEARCH DICTIONARY', 'TEXT SEARCH DICTIONARY', format('%I.%I', n.nspname, td.dictname), \
                   pg_get_userbyid(td.dictowner), NULL, NULL, td.oid::bigint, \
                   'TEXT SEARCH DICTIONARY ' || n.nspname || '.' || td.dictname \
                 FROM pg_ts_dict td JOIN pg_namespace n ON n.oid = td.dictnamespace WHERE {dict} \
                 UNION ALL \
                 SELECT 'TEXT SEARCH CONFIGURATION', 'TEXT SEARCH CONFIGURATION', format('%I.%I', n.nspname, tc.cfgname), \
                   pg_get_userbyid(tc.cfgowner), NULL, NULL, tc.oid::bigint, \
                   'TEXT SEARCH CONFIGURATION ' || n.nspname || '.' || tc.cfgname \
                 FROM pg_ts_config tc JOIN pg_namespace n ON n.oid = tc.cfgnamespace WHERE {cfg} \
                 UNION ALL \
                 SELECT 'LANGUAGE', 'LANGUAGE', format('%I', l.lanname), pg_get_userbyid(l.lanowner), NULL, {lanacl}, \
                   l.oid::bigint, {lan_label} \
                 FROM pg_language l WHERE l.lanispl AND {lan} \
                 UNION ALL \
                 SELECT NULL, 'FOREIGN DATA WRAPPER', format('%I', w.fdwname), pg_get_userbyid(w.fdwowner), NULL, \
                   {fdwacl}, w.oid::bigint, 'FOREIGN DATA WRAPPER ' || w.fdwname \
                 FROM pg_foreign_data_wrapper w WHERE {fdw} \
                 UNION ALL \
                 SELECT 'OPERATOR CLASS', '', format('%I.%I USING %I', n.nspname, c.opcname, am.amname), \
                   pg_get_userbyid(c.opcowner), NULL, NULL, c.oid::bigint, {opc_label} \
                 FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am am ON am.oid = c.opcmethod \
                 WHERE {opc} \
                 UNION ALL \
                 SELECT 'OPERATOR FAMILY', '', format('%I.%I USING %I', n.nspname, f.opfname, am.amname), \
                   pg_get_userbyid(f.opfowner), NULL, NULL, f.oid::bigint, {opf_label} \
                 FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod \
                 WHERE {opf} \
                 UNION ALL \
                 SELECT 'CONVERSION', '', format('%I.%I', n.nspname, c.conname), pg_get_userbyid(c.conowner), NULL, NULL, \
                   c.oid::bigint, {conv_label} \
                 FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {conv} \
                 UNION ALL \
                 SELECT 'DATABASE', 'DATABASE', format('%I', d.datname), pg_get_userbyid(d.datdba), NULL, {datacl}, 0, \
                   'DATABASE ' || d.datname \
                 FROM pg_database d WHERE d.datname = current_database() \
                 ORDER BY 7, 5 NULLS FIRST",
                relacl = acl_json("c.relacl"),
                attacl = acl_json("a.attacl"),
                nspacl = acl_json("n.nspacl"),
                proacl = acl_json("p.proacl"),
                typacl = acl_json("t.typacl"),
                datacl = acl_json("d.datacl"),
                srvacl = acl_json("s.srvacl"),
                lanacl = acl_json("l.lanacl"),
                routine = super::definitions::ROUTINE_REFERENCE,
                fdwacl = acl_json("w.fdwacl"),
                lan = super::support::created("pg_language", "l.oid"),
                lan_label = super::support::label("pg_language", "l.oid"),
                fdw = super::support::created("pg_foreign_data_wrapper", "w.oid"),
                opc = super::support::created("pg_opclass", "c.oid"),
                opc_label = super::support::label("pg_opclass", "c.oid"),
                opf = super::support::created("pg_opfamily", "f.oid"),
                opf_label = super::support::label("pg_opfamily", "f.oid"),
                conv = super::support::created("pg_conversion", "c.oid"),
                conv_label = super::support::label("pg_conversion", "c.oid"),
                rel = user_object("pg_class", "c.oid"),
                nsp = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
                proc = user_object("pg_proc", "p.oid"),
                typ = user_object("pg_type", "t.oid"),
                coll = user_object("pg_collation", "co.oid"),
                dict = user_object("pg_ts_dict", "td.oid"),
                cfg = user_object("pg_ts_config", "tc.oid"),
                stx = user_object("pg_statistic_ext", "s.oid"),
                relation = super::definitions::RELATION_OBJECT,
            ),
            &[],
        )
        .await
        .map_err(q(client.target(), "listing owners and privileges"))?
        .iter()
        .map(|r| Privileges {
            owner_kind: r.get(0),
            grant_kind: r.get(1),
            reference: r.get(2),
            owner: r.get(3),
            column: r.get(4),
            acl: grants(r.get(5)),
            object: r.get(7),
        })
        .collect();
    Ok(privileges)
}

/// Default privileges on tables, sequences, functions, types and schemas.
pub(super) async fn default_privileges(
    client: &Session,
) -> Result<Vec<DefaultPrivileges>, PgError> {
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
        .map_err(q(client.target(), "listing default privileges"))?
        .iter()
        .map(|r| DefaultPrivileges {
            role: r.get(0),
            schema: r.get(1),
            kind: r.get(2),
            acl: grants(r.get(3)).unwrap_or_default(),
        })
        .collect();
    Ok(default_privileges)
}

/// Privileges on `pg_catalog`'s functions, tables and columns that differ from the ones the
/// database was made with (see [`SYSTEM_GRANTS`]) (`pg_init_privs`; none there means the kind's default): what to
/// revoke, then what to grant. (`aclexplode` refuses an empty ACL: those are NULL here.)
pub(super) async fn system_grants(client: &Session) -> Result<Vec<SystemGrant>, PgError> {
    Ok(client
        .query(SYSTEM_GRANTS, &[])
        .await
        .map_err(q(client.target(), "listing privileges on system objects"))?
        .iter()
        .map(|r| SystemGrant {
            on: r.get(0),
            column: r.get(1),
            grant: Grant {
                grantee: r.get(2),
                privilege: r.get(3),
                grantable: r.get(4),
            },
            revoked: r.get(5),
        })
        .collect())
}

/// Privileges on `pg_catalog`'s functions, tables and columns that differ from the ones the
/// database was made with (`pg_init_privs`; none there means the kind's default), one row per
/// privilege: the object (`FUNCTION pg_catalog.pg_ls_dir(text)` with `search_path` empty), the
/// column or NULL, the grantee (NULL: PUBLIC), the privilege, grantable, and whether it was
/// revoked rather than granted; revokes first. (`aclexplode` refuses an empty ACL: those are
/// NULL here.)
pub const SYSTEM_GRANTS: &str = "WITH objects AS ( \
               SELECT 'FUNCTION ' || p.oid::regprocedure::text AS target, 'pg_proc'::regclass AS classid, \
                 p.oid, 0 AS subid, NULL::text AS col, p.proacl AS acl, acldefault('f', p.proowner) AS first \
               FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proacl IS NOT NULL \
               UNION ALL \
               SELECT 'TABLE ' || c.oid::regclass::text, 'pg_class'::regclass, c.oid, 0, NULL, c.relacl, \
                 acldefault('r', c.relowner) \
               FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relacl IS NOT NULL \
               UNION ALL \
               SELECT 'TABLE ' || c.oid::regclass::text, 'pg_class'::regclass, c.oid, a.attnum, a.attname::text, \
                 a.attacl, NULL::aclitem[] \
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
               WHERE c.relnamespace = 'pg_catalog'::regnamespace AND a.attacl IS NOT NULL), \
             compared (target, col, acl, first) AS ( \
               SELECT o.target, o.col, nullif(o.acl, '{}'), nullif(coalesce(i.initprivs, o.first), '{}') AS first \
               FROM objects o \
               LEFT JOIN pg_init_privs i ON i.classoid = o.classid AND i.objoid = o.oid AND i.objsubid = o.subid), \
             diff AS ( \
               SELECT c.target, c.col, g.grantee, g.privilege_type, g.is_grantable, false AS revoked \
               FROM compared c, LATERAL ( \
                 SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(c.acl) a \
                 EXCEPT SELECT f.grantee, f.privilege_type, f.is_grantable FROM aclexplode(c.first) f) g \
               UNION ALL \
               SELECT c.target, c.col, g.grantee, g.privilege_type, g.is_grantable, true \
               FROM compared c, LATERAL ( \
                 SELECT f.grantee, f.privilege_type, f.is_grantable FROM aclexplode(c.first) f \
                 EXCEPT SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(c.acl) a) g) \
             SELECT target, col, CASE WHEN grantee = 0 THEN NULL ELSE pg_get_userbyid(grantee) END AS grantee, \
               privilege_type, is_grantable, revoked \
             FROM diff ORDER BY revoked DESC, target, col, 3, privilege_type";
