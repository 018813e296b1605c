use super::*;
use crate::catalog::roles::{Membership, RoleAttributes, RoleSetting};

fn attrs(login: bool) -> RoleAttributes {
    RoleAttributes {
        superuser: false,
        inherit: true,
        createrole: false,
        createdb: false,
        login,
        replication: false,
        bypassrls: false,
        connection_limit: -1,
        valid_until: None,
    }
}

fn role(name: &str, login: bool, password: Password, comment: Option<&str>) -> Role {
    Role {
        name: name.into(),
        attributes: attrs(login),
        password,
        comment: comment.map(Into::into),
    }
}

fn catalog(roles: Vec<Role>, memberships: Vec<(&str, &str)>, readable: bool) -> RoleCatalog {
    RoleCatalog {
        roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
        memberships: memberships
            .into_iter()
            .map(|(g, m)| Membership {
                group: g.into(),
                member: m.into(),
                admin: false,
                inherit: None,
                set: None,
            })
            .collect(),
        settings: Vec::new(),
        passwords_readable: readable,
    }
}

fn scram(s: &str) -> Password {
    Password::Hash(SecretString::from(format!("SCRAM-SHA-256$4096:{s}")))
}

fn input(strategy: RoleConflictStrategy) -> PlanInput<'static> {
    PlanInput {
        mapping: "prod",
        strategy,
        fallback_password: None,
        destination_user: "postgres",
        destination_powers: Powers {
            superuser: true,
            ..Powers::default()
        },
    }
}

fn sql(plan: &RolePlan) -> Vec<String> {
    plan.statements
        .iter()
        .map(|s| s.sql.expose_secret().to_owned())
        .collect()
}

fn codes(plan: &RolePlan) -> Vec<&'static str> {
    plan.findings.iter().map(|f| f.code).collect()
}

#[test]
fn new_roles_are_created_marked_with_their_hash_and_memberships() {
    let source = catalog(
        vec![
            role("app", true, scram("x"), Some("the application")),
            role("readers", false, Password::Absent, None),
        ],
        vec![("readers", "app"), ("pg_read_all_stats", "app")],
        true,
    );
    let plan = plan(
        &source,
        &RoleCatalog::default(),
        &input(RoleConflictStrategy::Fail),
    );
    let sql = sql(&plan);
    assert!(sql[0].starts_with("CREATE ROLE \"app\" WITH NOSUPERUSER INHERIT"));
    assert_eq!(
        sql[1],
        "COMMENT ON ROLE \"app\" IS 'the application\n\npostgres-migrator: role copied by mapping prod'"
    );
    assert_eq!(sql[2], "ALTER ROLE \"app\" PASSWORD 'SCRAM-SHA-256$4096:x'");
    assert!(sql.contains(&"GRANT \"readers\" TO \"app\" WITH ADMIN FALSE".to_owned()));
    assert!(sql.contains(&"GRANT \"pg_read_all_stats\" TO \"app\" WITH ADMIN FALSE".to_owned()));
    assert!(plan.findings.is_empty());
    assert_eq!(plan.roles[0].password, PasswordOutcome::Copied);
    // The statements' descriptions, used in errors, never hold the hash.
    assert!(plan.statements.iter().all(|s| !s.what.contains("SCRAM")));
}

#[test]
fn roles_already_copied_are_left_alone_when_nothing_changed() {
    let source = catalog(vec![role("app", true, scram("x"), None)], vec![], true);
    let dest = catalog(
        vec![role(
            "app",
            true,
            scram("x"),
            Some("postgres-migrator: role copied by mapping prod"),
        )],
        vec![],
        true,
    );
    let plan = plan(&source, &dest, &input(RoleConflictStrategy::Fail));
    assert!(plan.statements.is_empty(), "{:?}", sql(&plan));
    assert_eq!(plan.roles[0].action, RoleAction::Copied);

    // A password changed on the source, and an attribute: both follow.
    let mut source = source;
    source.roles.get_mut("app").unwrap().password = scram("y");
    source.roles.get_mut("app").unwrap().attributes.createdb = true;
    let plan = super::plan(&source, &dest, &input(RoleConflictStrategy::Fail));
    let sql = sql(&plan);
    assert!(
        sql[0].starts_with("ALTER ROLE \"app\" WITH NOSUPERUSER INHERIT NOCREATEROLE CREATEDB")
    );
    assert_eq!(sql[1], "ALTER ROLE \"app\" PASSWORD 'SCRAM-SHA-256$4096:y'");
}

#[test]
fn each_conflict_strategy_decides_for_existing_roles() {
    let source = catalog(
        vec![
            role("app", true, scram("x"), None),
            role("readers", false, Password::Absent, None),
        ],
        vec![("readers", "app")],
        true,
    );
    let dest = catalog(vec![role("app", true, scram("other"), None)], vec![], true);

    let fail = plan(&source, &dest, &input(RoleConflictStrategy::Fail));
    assert_eq!(codes(&fail), vec!["role_conflict"]);
    assert!(fail.findings[0].is_blocking());
    assert!(fail.findings[0].message.contains("\"app\""));
    assert!(
        !sql(&fail).iter().any(|s| s.contains("\"app\"")),
        "{:?}",
        sql(&fail)
    );

    let skip = plan(&source, &dest, &input(RoleConflictStrategy::Skip));
    assert_eq!(codes(&skip), vec!["role_skipped"]);
    assert!(!skip.findings[0].is_blocking());
    assert!(!sql(&skip).iter().any(|s| s.contains("TO \"app\"")));

    let merge = plan(&source, &dest, &input(RoleConflictStrategy::Merge));
    assert_eq!(codes(&merge), vec!["role_merged"]);
    let sql = sql(&merge);
    assert!(sql.contains(&"GRANT \"readers\" TO \"app\" WITH ADMIN FALSE".to_owned()));
    // Merge never touches the existing role's attributes or password.
    assert!(!sql.iter().any(|s| s.starts_with("ALTER ROLE \"app\"")));
}

#[test]
fn unreadable_hashes_use_the_fallback_or_are_reported() {
    let source = catalog(
        vec![
            role("app", true, Password::Unreadable, None),
            role("group", false, Password::Unreadable, None),
        ],
        vec![],
        false,
    );
    let none = plan(
        &source,
        &RoleCatalog::default(),
        &input(RoleConflictStrategy::Fail),
    );
    assert_eq!(codes(&none), vec!["role_needs_password"]);
    assert!(none.findings[0].message.contains("\"app\""));
    assert!(!none.findings[0].message.contains("\"group\""));
    assert!(!sql(&none).iter().any(|s| s.contains("PASSWORD")));

    let secret = SecretString::from("fallback-pw");
    let mut with = input(RoleConflictStrategy::Fail);
    with.fallback_password = Some(&secret);
    let fallback = plan(&source, &RoleCatalog::default(), &with);
    assert_eq!(codes(&fallback), vec!["role_fallback_password"]);
    assert!(sql(&fallback).contains(&"ALTER ROLE \"app\" PASSWORD 'fallback-pw'".to_owned()));
    assert!(
        fallback
            .findings
            .iter()
            .all(|f| !f.message.contains("fallback-pw") && !f.fix.contains("fallback-pw"))
    );
    assert_eq!(fallback.roles[0].password, PasswordOutcome::Fallback);
}

#[test]
fn md5_hashes_are_copied_and_reported() {
    let source = catalog(
        vec![role(
            "old",
            true,
            Password::Hash(SecretString::from("md5abc")),
            None,
        )],
        vec![],
        true,
    );
    let plan = plan(
        &source,
        &RoleCatalog::default(),
        &input(RoleConflictStrategy::Fail),
    );
    assert_eq!(codes(&plan), vec!["role_md5_password"]);
    assert!(plan.findings[0].fix.contains("scram-sha-256"));
    assert_eq!(plan.roles[0].password, PasswordOutcome::CopiedMd5);
}

#[test]
fn the_destination_user_and_superuser_attribute_are_respected() {
    let mut admin = role("admin", true, Password::Absent, None);
    admin.attributes.superuser = true;
    let source = catalog(
        vec![admin, role("migrator", true, Password::Absent, None)],
        vec![],
        true,
    );
    let mut i = input(RoleConflictStrategy::Fail);
    i.destination_user = "migrator";
    i.destination_powers = Powers::default();
    let dest = catalog(
        vec![role("migrator", true, Password::Absent, None)],
        vec![],
        true,
    );
    let plan = plan(&source, &dest, &i);
    assert_eq!(codes(&plan), vec!["role_attributes_withheld"]);
    assert!(sql(&plan)[0].starts_with("CREATE ROLE \"admin\" WITH NOSUPERUSER"));
    assert_eq!(plan.roles[1].action, RoleAction::Connection);
    assert!(!plan.definitions.contains_key("migrator"));
}

#[test]
fn role_settings_are_set_and_merge_keeps_existing_values() {
    let mut source = catalog(
        vec![role("app", true, Password::Absent, None)],
        vec![],
        true,
    );
    source.settings.push(RoleSetting {
        role: Some("app".into()),
        database: None,
        config: vec!["search_path=app, public".into(), "work_mem=8MB".into()],
    });
    let plan_new = plan(
        &source,
        &RoleCatalog::default(),
        &input(RoleConflictStrategy::Fail),
    );
    let sql_new = sql(&plan_new);
    assert!(
        sql_new.contains(&"ALTER ROLE \"app\" SET \"search_path\" = 'app', 'public'".to_owned())
    );
    assert!(sql_new.contains(&"ALTER ROLE \"app\" SET \"work_mem\" = '8MB'".to_owned()));

    let mut dest = catalog(
        vec![role("app", true, Password::Absent, None)],
        vec![],
        true,
    );
    dest.settings.push(RoleSetting {
        role: Some("app".into()),
        database: None,
        config: vec!["work_mem=64MB".into()],
    });
    let merged = sql(&plan(&source, &dest, &input(RoleConflictStrategy::Merge)));
    assert!(merged.iter().any(|s| s.contains("search_path")));
    assert!(!merged.iter().any(|s| s.contains("work_mem")), "{merged:?}");
    assert!(definition(&source.roles["app"], &source).contains("SET search_path=app, public"));
}

#[test]
fn a_createrole_admin_gives_only_the_attributes_it_has() {
    let attributes = |on: bool| RoleAttributes {
        superuser: on,
        inherit: true,
        createrole: false,
        createdb: on,
        login: true,
        replication: on,
        bypassrls: on,
        connection_limit: -1,
        valid_until: None,
    };
    let all = attributes(true);
    // A managed service's admin: CREATEDB, not REPLICATION or BYPASSRLS.
    let managed = Powers {
        createdb: true,
        ..Powers::default()
    };
    let (allowed, withheld) = grantable(&all, &managed);
    assert_eq!(withheld, vec!["SUPERUSER", "REPLICATION", "BYPASSRLS"]);
    assert!(allowed.createdb && allowed.login);
    assert!(!allowed.superuser && !allowed.replication && !allowed.bypassrls);
    // A superuser gives everything; nothing wanted, nothing withheld.
    let superuser = Powers {
        superuser: true,
        ..Powers::default()
    };
    assert_eq!(grantable(&all, &superuser), (all.clone(), vec![]));
    assert!(
        grantable(&attributes(false), &Powers::default())
            .1
            .is_empty()
    );
}

#[test]
fn a_non_superuser_grants_only_groups_it_created_or_holds_admin_option_on() {
    let source = catalog(
        vec![
            role("app", true, Password::Absent, None),
            role("team", false, Password::Absent, None),
        ],
        vec![("team", "app"), ("pg_read_all_data", "app")],
        true,
    );
    let dest = catalog(vec![], vec![], true);
    let mut i = input(RoleConflictStrategy::Fail);
    i.destination_powers = Powers::default();
    let managed = plan(&source, &dest, &i);
    let statements = sql(&managed);
    assert!(
        statements
            .iter()
            .any(|s| s.starts_with("GRANT \"team\" TO \"app\"")),
        "{statements:?}"
    );
    assert!(
        !statements.iter().any(|s| s.contains("pg_read_all_data")),
        "{statements:?}"
    );
    assert_eq!(codes(&managed), vec!["role_attributes_withheld"]);

    i.destination_powers
        .admin_of
        .insert("pg_read_all_data".into());
    let granted = plan(&source, &dest, &i);
    assert!(
        sql(&granted)
            .iter()
            .any(|s| s.contains("GRANT \"pg_read_all_data\" TO \"app\""))
    );
    assert!(codes(&granted).is_empty());
}
