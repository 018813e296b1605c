//! Everything besides tables as SQL, woven around the tables by [`super::schema_statements`]:
//!
//! * [`text_search_and_collations`] before types; [`early_functions`] after types, before
//!   tables: the functions tables may call in defaults, checks and generated columns (created
//!   with `check_function_bodies = off`, so a body may name a table created later).
//! * [`after_tables`]: functions whose signature names a table's row type, aggregates, views and
//!   materialized views (`WITH NO DATA`: refreshed after the initial sync), triggers, rules,
//!   row-level security and policies, comments.
//! * [`privileges`]: owners, grants (objects and columns) and default privileges, last, so that
//!   sequences owned by columns follow their table's new owner.
//!
//! Triggers: the apply worker runs with `session_replication_role = replica`, so ordinary
//! triggers (and foreign-key triggers) do not fire while changes stream in; they are created
//! enabled, as on the source. Triggers set to `ENABLE REPLICA` or `ENABLE ALWAYS` do fire during
//! apply, and would act a second time on rows whose effects replicate anyway: they are created
//! disabled, reported, and the cutover instructions enable them.

use std::collections::{BTreeMap, BTreeSet};

use super::quote::{ident, literal, qualified};
use super::{Statement, object_name};
use crate::catalog::objects::*;

/// Collations and text search objects: types and columns may use them.
pub fn text_search_and_collations(o: &ObjectCatalog) -> Vec<Statement> {
    let mut sql = Vec::new();
    for c in &o.collations {
        let mut options = vec![format!("provider = {}", c.provider)];
        if c.provider == "libc" {
            if let Some(collate) = &c.collate {
                options.push(format!("lc_collate = {}", literal(collate)));
            }
            if let Some(ctype) = &c.ctype {
                options.push(format!("lc_ctype = {}", literal(ctype)));
            }
        } else if let Some(locale) = &c.locale {
            options.push(format!("locale = {}", literal(locale)));
        }
        if !c.deterministic {
            options.push("deterministic = false".to_owned());
        }
        sql.push(Statement::new(
            object_name("COLLATION", &c.name),
            format!(
                "CREATE COLLATION {} ({})",
                qualified(&c.name),
                options.join(", ")
            ),
        ));
    }
    for d in &o.ts_dictionaries {
        let mut options = format!("TEMPLATE = {}", d.template);
        if let Some(extra) = d.options.as_deref().filter(|s| !s.is_empty()) {
            options.push_str(&format!(", {extra}"));
        }
        sql.push(Statement::new(
            object_name("TEXT SEARCH DICTIONARY", &d.name),
            format!(
                "CREATE TEXT SEARCH DICTIONARY {} ({options})",
                qualified(&d.name)
            ),
        ));
    }
    for c in &o.ts_configs {
        let object = object_name("TEXT SEARCH CONFIGURATION", &c.name);
        sql.push(Statement::new(
            &object,
            format!(
                "CREATE TEXT SEARCH CONFIGURATION {} (PARSER = {})",
                qualified(&c.name),
                c.parser
            ),
        ));
        for (token, dictionaries) in &c.mappings {
            sql.push(Statement::new(
                &object,
                format!(
                    "ALTER TEXT SEARCH CONFIGURATION {} ADD MAPPING FOR {} WITH {}",
                    qualified(&c.name),
                    ident(token),
                    dictionaries.join(", ")
                ),
            ));
        }
    }
    sql
}

/// Functions tables may call (after the types their signatures use). The schema transaction
/// runs with `check_function_bodies = off`, so a body may name what is created later.
pub fn early_functions(o: &ObjectCatalog) -> Vec<Statement> {
    o.early_functions.iter().map(definition).collect()
}

/// Range types: after the other types, before the tables whose columns use them.
pub fn range_types(o: &ObjectCatalog) -> Vec<Statement> {
    o.range_types.iter().map(definition).collect()
}

/// Operators and casts: after the functions, before the tables.
pub fn operators_and_casts(o: &ObjectCatalog) -> Vec<Statement> {
    o.operators_and_casts.iter().map(definition).collect()
}

/// Event triggers: the very last, so that they do not fire on the schema's own statements.
pub fn event_triggers(o: &ObjectCatalog) -> Vec<Statement> {
    o.event_triggers.iter().map(definition).collect()
}

/// A statement the server built, as it is.
pub fn definition(d: &Definition) -> Statement {
    Statement::new(&d.object, &d.sql)
}

fn create_view(v: &View) -> Vec<String> {
    let with = if v.options.is_empty() {
        String::new()
    } else {
        // reloptions are `name=value` with simple names and values (booleans, local/cascaded).
        let options: Vec<String> = v
            .options
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(k, val)| format!("{} = {}", ident(k), literal(val)))
            .collect();
        format!(" WITH ({})", options.join(", "))
    };
    let query = v.query.trim().trim_end_matches(';');
    if v.materialized {
        let using = v
            .access_method
            .as_ref()
            .map(|m| format!(" USING {}", ident(m)))
            .unwrap_or_default();
        let mut sql = vec![format!(
            "CREATE MATERIALIZED VIEW {}{using}{with} AS {query} WITH NO DATA",
            qualified(&v.name)
        )];
        sql.extend(v.indexes.iter().cloned());
        sql
    } else {
        vec![format!(
            "CREATE VIEW {}{with} AS {query}",
            qualified(&v.name)
        )]
    }
}

/// Triggers that fire during apply on the destination (`ENABLE REPLICA`, `ENABLE ALWAYS`), and
/// partitions' clones of such a trigger in another state (enabling the parent's enables them).
pub fn held_back_triggers(o: &ObjectCatalog) -> Vec<&Trigger> {
    o.triggers.iter().filter(|t| held_back(t)).collect()
}

/// `t` is disabled on the destination until cutover (see [`held_back_triggers`]).
pub fn held_back(t: &Trigger) -> bool {
    matches!(t.enabled, 'R' | 'A') || matches!(t.parent_enabled, Some('R' | 'A'))
}

/// The statement that gives a trigger its source state back (at cutover for held-back ones).
/// A partition's clone is set after its parent's trigger, whose state it would otherwise take.
pub fn trigger_state(t: &Trigger) -> Option<String> {
    let state = match t.enabled {
        'D' => "DISABLE TRIGGER",
        'R' => "ENABLE REPLICA TRIGGER",
        'A' => "ENABLE ALWAYS TRIGGER",
        _ if t.parent_enabled.is_some() => "ENABLE TRIGGER",
        _ => return None,
    };
    Some(format!(
        "ALTER TABLE {} {state} {}",
        qualified(&t.table),
        ident(&t.name)
    ))
}

fn create_policy(p: &Policy) -> String {
    let roles: Vec<String> = if p.roles.is_empty() {
        vec!["PUBLIC".to_owned()]
    } else {
        p.roles
            .iter()
            .map(|r| r.as_deref().map_or("PUBLIC".to_owned(), ident))
            .collect()
    };
    let mut sql = format!(
        "CREATE POLICY {} ON {} AS {} FOR {} TO {}",
        ident(&p.name),
        qualified(&p.table),
        if p.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        },
        p.command,
        roles.join(", ")
    );
    if let Some(using) = &p.using {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = &p.with_check {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql
}

/// The second group: what reads or acts on tables.
pub fn after_tables(o: &ObjectCatalog) -> Vec<Statement> {
    let mut sql: Vec<Statement> = o.foreign_servers.iter().map(definition).collect();
    sql.extend(o.foreign_tables.iter().map(definition));
    sql.extend(o.late_functions.iter().map(definition));
    sql.extend(o.aggregates.iter().map(definition));
    sql.extend(o.statistics.iter().map(definition));
    sql.extend(o.publications.iter().map(definition));
    for v in &o.views {
        let kind = if v.materialized {
            "MATERIALIZED VIEW"
        } else {
            "VIEW"
        };
        let object = object_name(kind, &v.name);
        let mut statements: Vec<Statement> = create_view(v)
            .into_iter()
            .map(|s| Statement::new(&object, s))
            .collect();
        if !v.materialized && !v.placeholder_columns.is_empty() {
            statements[0].placeholder = Some(format!(
                "CREATE VIEW {} AS SELECT {}",
                qualified(&v.name),
                v.placeholder_columns.join(", ")
            ));
        }
        sql.extend(statements);
    }
    for t in &o.triggers {
        let object = format!("TRIGGER {} ON {}.{}", t.name, t.table.schema, t.table.name);
        if t.parent_enabled.is_none() {
            sql.push(Statement::new(&object, &t.sql));
        }
        let state = if held_back(t) {
            Some(format!(
                "ALTER TABLE {} DISABLE TRIGGER {}",
                qualified(&t.table),
                ident(&t.name)
            ))
        } else {
            trigger_state(t)
        };
        sql.extend(state.map(|s| Statement::new(&object, s)));
    }
    sql.extend(o.rules.iter().map(definition));
    for r in &o.row_security {
        let object = object_name("TABLE", &r.table);
        sql.push(Statement::new(
            &object,
            format!(
                "ALTER TABLE {} ENABLE ROW LEVEL SECURITY",
                qualified(&r.table)
            ),
        ));
        if r.forced {
            sql.push(Statement::new(
                &object,
                format!(
                    "ALTER TABLE {} FORCE ROW LEVEL SECURITY",
                    qualified(&r.table)
                ),
            ));
        }
    }
    sql.extend(o.policies.iter().map(|p| {
        Statement::new(
            format!("POLICY {} ON {}.{}", p.name, p.table.schema, p.table.name),
            create_policy(p),
        )
    }));
    for c in &o.comments {
        sql.push(Statement::new(
            &c.object,
            format!("COMMENT ON {} IS {}", c.target, literal(&c.text)),
        ));
    }
    sql
}

fn grantee(g: &Option<String>) -> String {
    g.as_deref().map_or("PUBLIC".to_owned(), ident)
}

/// Every table privilege of PostgreSQL 15 and 16: ALL on a table there.
const PRIVILEGES_BEFORE_MAINTAIN: [&str; 7] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
];

/// `GRANT a, b ON <on> TO x [WITH GRANT OPTION]`, one statement per grantee and option, for
/// `object`.
fn grant_statements(
    object: &str,
    prefix: &str,
    on: &str,
    grants: &[Grant],
    column: Option<&str>,
) -> Vec<Statement> {
    let mut grouped: BTreeMap<(Option<String>, bool), Vec<String>> = BTreeMap::new();
    for g in grants {
        let privilege = match column {
            Some(c) => format!("{} ({})", g.privilege, ident(c)),
            None => g.privilege.clone(),
        };
        grouped
            .entry((g.grantee.clone(), g.grantable))
            .or_default()
            .push(privilege);
    }
    // MAINTAIN (PostgreSQL 17+) is part of ALL on a table: who held every table privilege
    // of an older source (its owner, anyone granted ALL) gets it too, or the owner could no
    // longer refresh its materialized views, vacuum or analyze.
    if column.is_none() && on.starts_with("TABLE ") {
        for privileges in grouped.values_mut() {
            let all_before_17 = PRIVILEGES_BEFORE_MAINTAIN
                .iter()
                .all(|p| privileges.iter().any(|q| q == p));
            if all_before_17 && !privileges.iter().any(|q| q == "MAINTAIN") {
                privileges.push("MAINTAIN".to_owned());
            }
        }
    }
    grouped
        .into_iter()
        .map(|((to, grantable), privileges)| {
            Statement::new(
                object,
                format!(
                    "{prefix}GRANT {} ON {on} TO {}{}",
                    privileges.join(", "),
                    grantee(&to),
                    if grantable { " WITH GRANT OPTION" } else { "" }
                ),
            )
        })
        .collect()
}

/// [`privilege_statements`] as SQL only.
pub fn privileges(
    o: &ObjectCatalog,
    present: &BTreeSet<String>,
) -> (Vec<String>, BTreeSet<String>) {
    let (sql, missing) = privilege_statements(o, present);
    (super::sql_of(sql), missing)
}

/// The third group: owners, grants, default privileges. Statements naming a role that does not
/// exist on the destination (`present`) are left out; those roles are returned.
pub fn privilege_statements(
    o: &ObjectCatalog,
    present: &BTreeSet<String>,
) -> (Vec<Statement>, BTreeSet<String>) {
    let mut sql = Vec::new();
    let mut missing = BTreeSet::new();
    let mut known = |role: &str| {
        let ok = present.contains(role);
        if !ok {
            missing.insert(role.to_owned());
        }
        ok
    };
    for p in &o.privileges {
        if let Some(kind) = &p.owner_kind
            && p.column.is_none()
            && known(&p.owner)
        {
            sql.push(Statement::new(
                &p.object,
                format!("ALTER {kind} {} OWNER TO {}", p.reference, ident(&p.owner)),
            ));
        }
    }
    for p in &o.privileges {
        let Some(acl) = &p.acl else { continue };
        let grants: Vec<Grant> = acl
            .iter()
            .filter(|g| g.grantee.as_deref().is_none_or(&mut known))
            .cloned()
            .collect();
        let on = format!("{} {}", p.grant_kind, p.reference);
        if p.column.is_none() {
            sql.push(Statement::new(
                &p.object,
                format!("REVOKE ALL ON {on} FROM PUBLIC"),
            ));
            if known(&p.owner) {
                sql.push(Statement::new(
                    &p.object,
                    format!("REVOKE ALL ON {on} FROM {}", ident(&p.owner)),
                ));
            }
        }
        sql.extend(grant_statements(
            &p.object,
            "",
            &on,
            &grants,
            p.column.as_deref(),
        ));
    }
    for d in &o.default_privileges {
        if !known(&d.role) {
            continue;
        }
        let mut prefix = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {} ", ident(&d.role));
        let object = match &d.schema {
            Some(schema) => format!(
                "DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema} ON {}",
                d.role, d.kind
            ),
            None => format!("DEFAULT PRIVILEGES FOR ROLE {} ON {}", d.role, d.kind),
        };
        match &d.schema {
            Some(schema) => prefix.push_str(&format!("IN SCHEMA {} ", ident(schema))),
            None => {
                // A global entry replaces the built-in defaults: start from nothing.
                sql.push(Statement::new(
                    &object,
                    format!("{prefix}REVOKE ALL ON {} FROM PUBLIC", d.kind),
                ));
                sql.push(Statement::new(
                    &object,
                    format!("{prefix}REVOKE ALL ON {} FROM {}", d.kind, ident(&d.role)),
                ));
            }
        }
        let grants: Vec<Grant> = d
            .acl
            .iter()
            .filter(|g| g.grantee.as_deref().is_none_or(&mut known))
            .cloned()
            .collect();
        // `ALTER DEFAULT PRIVILEGES ... GRANT x ON TABLES TO ...`
        sql.extend(grant_statements(&object, &prefix, &d.kind, &grants, None));
    }
    // Revokes first: a grant option taken away and the privilege given again without it.
    for g in &o.system_grants {
        if !g.grant.grantee.as_deref().is_none_or(&mut known) {
            continue;
        }
        let privilege = match &g.column {
            Some(c) => format!("{} ({})", g.grant.privilege, ident(c)),
            None => g.grant.privilege.clone(),
        };
        let to = grantee(&g.grant.grantee);
        sql.push(Statement::new(
            g.object(),
            if g.revoked {
                format!("REVOKE {privilege} ON {} FROM {to}", g.on)
            } else {
                format!(
                    "GRANT {privilege} ON {} TO {to}{}",
                    g.on,
                    if g.grant.grantable {
                        " WITH GRANT OPTION"
                    } else {
                        ""
                    }
                )
            },
        ));
    }
    (sql, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::QualifiedName;

    fn grant(to: Option<&str>, privilege: &str, grantable: bool) -> Grant {
        Grant {
            grantee: to.map(Into::into),
            privilege: privilege.into(),
            grantable,
        }
    }

    #[test]
    fn privileges_set_owner_then_exact_acl_and_skip_missing_roles() {
        let o = ObjectCatalog {
            privileges: vec![
                Privileges {
                    owner_kind: Some("TABLE".into()),
                    grant_kind: "TABLE".into(),
                    reference: "app.accounts".into(),
                    owner: "app".into(),
                    column: None,
                    acl: Some(vec![
                        grant(Some("app"), "SELECT", false),
                        grant(Some("app"), "INSERT", false),
                        grant(Some("gone"), "SELECT", false),
                        grant(None, "SELECT", true),
                    ]),
                    object: "TABLE app.accounts".into(),
                },
                Privileges {
                    owner_kind: None,
                    grant_kind: "TABLE".into(),
                    reference: "app.accounts".into(),
                    owner: "app".into(),
                    column: Some("e\"mail".into()),
                    acl: Some(vec![grant(Some("reader"), "SELECT", false)]),
                    object: "TABLE app.accounts".into(),
                },
                Privileges {
                    owner_kind: Some("SEQUENCE".into()),
                    grant_kind: "SEQUENCE".into(),
                    reference: "app.s".into(),
                    owner: "app".into(),
                    column: None,
                    acl: None,
                    object: "SEQUENCE app.s".into(),
                },
            ],
            ..Default::default()
        };
        let present: BTreeSet<String> = ["app", "reader"].iter().map(|s| s.to_string()).collect();
        let (sql, missing) = privileges(&o, &present);
        assert_eq!(
            sql,
            vec![
                "ALTER TABLE app.accounts OWNER TO \"app\"",
                "ALTER SEQUENCE app.s OWNER TO \"app\"",
                "REVOKE ALL ON TABLE app.accounts FROM PUBLIC",
                "REVOKE ALL ON TABLE app.accounts FROM \"app\"",
                "GRANT SELECT ON TABLE app.accounts TO PUBLIC WITH GRANT OPTION",
                "GRANT SELECT, INSERT ON TABLE app.accounts TO \"app\"",
                "GRANT SELECT (\"e\"\"mail\") ON TABLE app.accounts TO \"reader\"",
            ]
        );
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["gone"]);
    }

    #[test]
    fn default_privileges_global_start_from_nothing_schema_ones_add() {
        let o = ObjectCatalog {
            default_privileges: vec![
                DefaultPrivileges {
                    role: "app".into(),
                    schema: Some("app".into()),
                    kind: "TABLES".into(),
                    acl: vec![grant(Some("reader"), "SELECT", false)],
                },
                DefaultPrivileges {
                    role: "app".into(),
                    schema: None,
                    kind: "FUNCTIONS".into(),
                    acl: vec![grant(Some("app"), "EXECUTE", false)],
                },
            ],
            ..Default::default()
        };
        let present: BTreeSet<String> = ["app", "reader"].iter().map(|s| s.to_string()).collect();
        let (sql, _) = privileges(&o, &present);
        assert_eq!(
            sql,
            vec![
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" IN SCHEMA \"app\" GRANT SELECT ON TABLES TO \"reader\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" REVOKE ALL ON FUNCTIONS FROM PUBLIC",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" REVOKE ALL ON FUNCTIONS FROM \"app\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"app\" GRANT EXECUTE ON FUNCTIONS TO \"app\"",
            ]
        );
    }

    #[test]
    fn replica_and_always_triggers_are_created_disabled() {
        let table = QualifiedName::new("app", "t");
        let trigger = |name: &str, enabled: char| Trigger {
            table: table.clone(),
            name: name.into(),
            sql: format!("CREATE TRIGGER {name} ..."),
            enabled,
            parent_enabled: None,
        };
        let o = ObjectCatalog {
            triggers: vec![trigger("o", 'O'), trigger("d", 'D'), trigger("a", 'A')],
            ..Default::default()
        };
        let sql = after_tables(&o);
        let pairs: Vec<(&str, &str)> = sql
            .iter()
            .map(|s| (s.object.as_str(), s.sql.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("TRIGGER o ON app.t", "CREATE TRIGGER o ..."),
                ("TRIGGER d ON app.t", "CREATE TRIGGER d ..."),
                (
                    "TRIGGER d ON app.t",
                    "ALTER TABLE \"app\".\"t\" DISABLE TRIGGER \"d\""
                ),
                ("TRIGGER a ON app.t", "CREATE TRIGGER a ..."),
                (
                    "TRIGGER a ON app.t",
                    "ALTER TABLE \"app\".\"t\" DISABLE TRIGGER \"a\""
                ),
            ]
        );
        let held = held_back_triggers(&o);
        assert_eq!(held.len(), 1);
        assert_eq!(
            trigger_state(held[0]).unwrap(),
            "ALTER TABLE \"app\".\"t\" ENABLE ALWAYS TRIGGER \"a\""
        );
    }

    #[test]
    fn a_partitions_trigger_clone_keeps_a_state_of_its_own() {
        let clone = |table: &str, enabled: char, parent: char| Trigger {
            table: QualifiedName::new("app", table),
            name: "t".into(),
            sql: String::new(),
            enabled,
            parent_enabled: Some(parent),
        };
        let o = ObjectCatalog {
            triggers: vec![
                clone("p1", 'D', 'O'),
                clone("p2", 'A', 'O'),
                clone("p3", 'O', 'A'),
            ],
            ..Default::default()
        };
        // A clone is not created (its parent's trigger makes it), only set.
        let sql: Vec<String> = after_tables(&o).into_iter().map(|s| s.sql).collect();
        assert_eq!(
            sql,
            [
                "ALTER TABLE \"app\".\"p1\" DISABLE TRIGGER \"t\"",
                // Fires during apply: held back like any ALWAYS trigger.
                "ALTER TABLE \"app\".\"p2\" DISABLE TRIGGER \"t\"",
                // Its parent's is held back, and enabling the parent's would enable it.
                "ALTER TABLE \"app\".\"p3\" DISABLE TRIGGER \"t\"",
            ]
        );
        let restore: Vec<String> = held_back_triggers(&o)
            .into_iter()
            .filter_map(trigger_state)
            .collect();
        assert_eq!(
            restore,
            [
                "ALTER TABLE \"app\".\"p2\" ENABLE ALWAYS TRIGGER \"t\"",
                "ALTER TABLE \"app\".\"p3\" ENABLE TRIGGER \"t\"",
            ]
        );
    }

    #[test]
    fn views_follow_their_dependencies_and_matviews_start_empty() {
        let view = |name: &str, deps: &[&str], materialized: bool| View {
            name: QualifiedName::new("s", name),
            materialized,
            query: format!(" SELECT 1 AS {name};"),
            options: vec!["security_barrier=true".into()],
            indexes: if materialized {
                vec![format!("CREATE UNIQUE INDEX i ON s.{name} USING btree (x)")]
            } else {
                vec![]
            },
            depends_on: deps.iter().map(|d| QualifiedName::new("s", *d)).collect(),
            placeholder_columns: vec![format!("NULL::integer AS {name}")],
            access_method: None,
        };
        let mut views = vec![
            view("top", &["mid"], false),
            view("mid", &["base"], true),
            view("base", &[], false),
        ];
        dependencies_first(&mut views);
        let order: Vec<&str> = views.iter().map(|v| v.name.name.as_str()).collect();
        assert_eq!(order, ["base", "mid", "top"]);
        let o = ObjectCatalog {
            views,
            ..Default::default()
        };
        let sql = after_tables(&o);
        assert_eq!(
            sql[1].sql,
            "CREATE MATERIALIZED VIEW \"s\".\"mid\" WITH (\"security_barrier\" = 'true') AS SELECT 1 AS mid WITH NO DATA"
        );
        assert_eq!(sql[2].sql, "CREATE UNIQUE INDEX i ON s.mid USING btree (x)");
        // The index stands or falls with its view.
        assert_eq!(sql[2].object, "MATERIALIZED VIEW s.mid");
        assert_eq!(sql[0].object, "VIEW s.base");
        // A plain view can be stood in for in a cycle; a materialized one cannot.
        assert_eq!(
            sql[0].placeholder.as_deref(),
            Some("CREATE VIEW \"s\".\"base\" AS SELECT NULL::integer AS base")
        );
        assert!(
            sql[0]
                .replacing()
                .starts_with("CREATE OR REPLACE VIEW \"s\".\"base\" ")
        );
        assert!(sql[1].placeholder.is_none());
    }

    #[test]
    fn policies_name_roles_or_public() {
        let p = Policy {
            table: QualifiedName::new("app", "notes"),
            name: "own rows".into(),
            permissive: false,
            command: "SELECT".into(),
            roles: vec![Some("app".into()), None],
            using: Some("(owner = CURRENT_USER)".into()),
            with_check: None,
        };
        assert_eq!(
            create_policy(&p),
            "CREATE POLICY \"own rows\" ON \"app\".\"notes\" AS RESTRICTIVE FOR SELECT TO \"app\", PUBLIC USING ((owner = CURRENT_USER))"
        );
    }
}
