//! Roles: copied once per mapping, at the instance level, before any database's schema (whose
//! owners and grants name them).
//!
//! [`plan`] is pure: from the source's roles, the destination's roles and the mapping's
//! `role_conflict_strategy` it decides, per role, what to do, and which statements and
//! findings follow. [`observe`] reads both sides and plans; [`apply`] runs the statements.
//!
//! How the tool recognises roles it created: their comment carries [`MARKER`] (after the
//! source role's own comment, if any). A role of the same name without it was there before:
//! that is a conflict, settled by the strategy (`fail`, `skip`, `merge`). A role with the marker
//! is brought in line with the source every tick (attributes, memberships, settings, and the
//! password hash when both sides' hashes can be read), so a change on the source during the
//! migration reaches the destination.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::Client;

use super::MappingContext;
use crate::catalog::roles::{self as catalog, Membership, Password, Powers, RoleCatalog, powers};
use crate::config::RoleConflictStrategy;
use crate::ddl::quote::ident;
use crate::ddl::roles::{self as ddl, definition};
use crate::findings::Finding;
use crate::pg::PgError;
use crate::status::{PasswordOutcome, RoleAction, RoleStatus};

/// Written into the comment of every role the tool creates.
pub const MARKER: &str = "postgres-migrator: role copied by mapping ";

/// A statement to run on the destination, with what it does (for errors: statements may hold a
/// password hash, so they are never printed).
pub struct Statement {
    pub sql: SecretString,
    pub what: String,
}

impl Statement {
    fn new(sql: String, what: String) -> Self {
        Statement {
            sql: SecretString::from(sql),
            what,
        }
    }
}

/// The outcome of planning.
pub struct RolePlan {
    pub statements: Vec<Statement>,
    pub findings: Vec<Finding>,
    pub roles: Vec<RoleStatus>,
    /// Each source role's definition (attributes, groups, settings; no password), for spotting
    /// two mappings that bring different roles of one name to one destination.
    pub definitions: BTreeMap<String, String>,
}

/// What planning needs besides the two catalogs.
pub struct PlanInput<'a> {
    pub mapping: &'a str,
    pub strategy: RoleConflictStrategy,
    pub fallback_password: Option<&'a SecretString>,
    /// The role the tool connects to the destination as.
    pub destination_user: &'a str,
    /// What the role connecting to the destination may give the roles it creates.
    pub destination_powers: Powers,
}

/// `wanted` as the connecting role may set it, and the attributes it had to leave out. PostgreSQL
/// 16+ rules: a superuser may give anything; a CREATEROLE role never SUPERUSER, and CREATEDB,
/// REPLICATION and BYPASSRLS only when it has them itself (managed services' admin roles are
/// such roles). Pure.
pub fn grantable(
    wanted: &catalog::RoleAttributes,
    powers: &Powers,
) -> (catalog::RoleAttributes, Vec<&'static str>) {
    let mut allowed = wanted.clone();
    let mut withheld = Vec::new();
    if powers.superuser {
        return (allowed, withheld);
    }
    for (on, may, name) in [
        (&mut allowed.superuser, false, "SUPERUSER"),
        (&mut allowed.createdb, powers.createdb, "CREATEDB"),
        (&mut allowed.replication, powers.replication, "REPLICATION"),
        (&mut allowed.bypassrls, powers.bypassrls, "BYPASSRLS"),
    ] {
        if *on && !may {
            *on = false;
            withheld.push(name);
        }
    }
    (allowed, withheld)
}

fn is_ours(comment: Option<&str>) -> bool {
    comment.is_some_and(|c| c.contains(MARKER))
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides what to do with every source role. Pure.
pub fn plan(source: &RoleCatalog, destination: &RoleCatalog, input: &PlanInput) -> RolePlan {
    let mut statements = Vec::new();
    let mut roles = Vec::new();
    let mut conflicts = Vec::new();
    let mut skipped = Vec::new();
    let mut merged = Vec::new();
    let mut withheld = Vec::new();
    let mut needs_password = Vec::new();
    let mut fallback = Vec::new();
    let mut md5 = Vec::new();
    let marker = format!("{MARKER}{}", input.mapping);
    let mut managed: BTreeSet<&str> = BTreeSet::new();

    for role in source.roles.values() {
        let existing = destination.roles.get(&role.name);
        let action = if role.name == input.destination_user {
            RoleAction::Connection
        } else {
            match existing {
                None => RoleAction::Create,
                Some(d) if is_ours(d.comment.as_deref()) => RoleAction::Copied,
                Some(_) => match input.strategy {
                    RoleConflictStrategy::Fail => RoleAction::Conflict,
                    RoleConflictStrategy::Skip => RoleAction::Skipped,
                    RoleConflictStrategy::Merge => RoleAction::Merged,
                },
            }
        };
        let (wanted, left_out) = grantable(&role.attributes, &input.destination_powers);
        if !left_out.is_empty() && matches!(action, RoleAction::Create | RoleAction::Copied) {
            withheld.push(format!("{} ({})", ident(&role.name), left_out.join(", ")));
        }
        let copies = matches!(action, RoleAction::Create | RoleAction::Copied);
        let mut outcome = PasswordOutcome::NotApplicable;
        if copies {
            let name = &role.name;
            if action == RoleAction::Create {
                statements.push(Statement::new(
                    ddl::create_role(name, &wanted),
                    format!("creating role {name:?}"),
                ));
                let comment = match &role.comment {
                    Some(c) => format!("{c}\n\n{marker}"),
                    None => marker.clone(),
                };
                statements.push(Statement::new(
                    ddl::comment_on_role(name, &comment),
                    format!("marking role {name:?} as copied"),
                ));
            } else if existing.is_some_and(|d| d.attributes != wanted) {
                statements.push(Statement::new(
                    ddl::alter_role(name, &wanted),
                    format!("updating the attributes of role {name:?}"),
                ));
            }
            let set = |hash: &SecretString| Statement {
                sql: ddl::set_password(name, hash),
                what: format!("setting the password of role {name:?}"),
            };
            outcome = match &role.password {
                Password::Hash(hash) => {
                    let current = existing.map(|d| &d.password);
                    let same = matches!(current, Some(Password::Hash(h)) if h.expose_secret() == hash.expose_secret());
                    // A copied role whose destination hash cannot be read is left alone.
                    let unknown = matches!(current, Some(Password::Unreadable));
                    if action == RoleAction::Create || !(same || unknown) {
                        statements.push(set(hash));
                    }
                    if role.password.is_md5() {
                        md5.push(name.clone());
                        PasswordOutcome::CopiedMd5
                    } else {
                        PasswordOutcome::Copied
                    }
                }
                Password::Absent => PasswordOutcome::None,
                Password::Unreadable if !role.attributes.login => PasswordOutcome::NotApplicable,
                Password::Unreadable => match input.fallback_password {
                    Some(password) => {
                        if action == RoleAction::Create {
                            statements.push(set(password));
                        }
                        fallback.push(name.clone());
                        PasswordOutcome::Fallback
                    }
                    None => {
                        needs_password.push(name.clone());
                        PasswordOutcome::NeedsPassword
                    }
                },
            };
            managed.insert(name);
        }
        match action {
            RoleAction::Conflict => conflicts.push(role.name.clone()),
            RoleAction::Skipped => skipped.push(role.name.clone()),
            RoleAction::Merged => {
                merged.push(role.name.clone());
                managed.insert(&role.name);
            }
            _ => {}
        }
        roles.push(RoleStatus {
            name: role.name.clone(),
            action,
            login: role.attributes.login,
            password: outcome,
            member_of: source
                .memberships
                .iter()
                .filter(|m| m.member == role.name)
                .map(|m| m.group.clone())
                .collect(),
        });
    }

    // Memberships of managed members in groups that exist (or are created) there; missing ones
    // are granted, existing ones left as they are (merge never weakens).
    let exists = |name: &str| {
        destination.roles.contains_key(name)
            || source.roles.contains_key(name)
            || name.starts_with("pg_")
    };
    let present: BTreeSet<(&str, &str)> = destination
        .memberships
        .iter()
        .map(|m| (m.group.as_str(), m.member.as_str()))
        .collect();
    // A non-superuser grants only groups it holds ADMIN OPTION on; a CREATEROLE role holds it
    // on the roles it created (PostgreSQL 16+).
    let created_here: BTreeSet<&str> = roles
        .iter()
        .filter(|r| matches!(r.action, RoleAction::Create | RoleAction::Copied))
        .map(|r| r.name.as_str())
        .collect();
    let powers = &input.destination_powers;
    let may_grant = |group: &str| {
        powers.superuser || powers.admin_of.contains(group) || created_here.contains(group)
    };
    for m in &source.memberships {
        let blocked_group = conflicts.contains(&m.group);
        if managed.contains(m.member.as_str())
            && exists(&m.group)
            && !blocked_group
            && !present.contains(&(m.group.as_str(), m.member.as_str()))
        {
            if !may_grant(&m.group) {
                withheld.push(format!(
                    "{} (member of {})",
                    ident(&m.member),
                    ident(&m.group)
                ));
                continue;
            }
            statements.push(Statement::new(
                ddl::grant_membership(m),
                format!("granting role {:?} to {:?}", m.group, m.member),
            ));
        }
    }
    // A non-superuser gives objects to a role (ALTER ... OWNER TO), grants on that role's
    // objects and lets the subscription apply as each table's owner only as a member of the
    // role: it takes that membership (SET and INHERIT) in the roles it created, as a managed
    // service's admin is a member of the application's roles.
    if !powers.superuser {
        for group in created_here
            .iter()
            .filter(|g| **g != input.destination_user)
        {
            if present.contains(&(*group, input.destination_user)) {
                continue;
            }
            let membership = Membership {
                group: (*group).to_owned(),
                member: input.destination_user.to_owned(),
                admin: false,
                inherit: Some(true),
                set: Some(true),
            };
            statements.push(Statement::new(
                ddl::grant_membership(&membership),
                format!(
                    "letting {:?} act as {group:?} (to give it its objects)",
                    input.destination_user
                ),
            ));
        }
    }
    // Settings of the role everywhere (per-database ones come with the database's schema).
    for s in &source.settings {
        let (Some(role), None) = (&s.role, &s.database) else {
            continue;
        };
        if !managed.contains(role.as_str()) {
            continue;
        }
        let current: BTreeSet<&String> = destination
            .settings
            .iter()
            .filter(|d| d.role.as_ref() == Some(role) && d.database.is_none())
            .flat_map(|d| &d.config)
            .collect();
        let merge_only = merged.contains(role);
        for entry in s.config.iter().filter(|e| !current.contains(e)) {
            let name = entry.split('=').next().unwrap_or_default();
            let has_key = current.iter().any(|c| c.split('=').next() == Some(name));
            if merge_only && has_key {
                continue;
            }
            if let Some(sql) = ddl::set_config(Some(role), None, entry) {
                statements.push(Statement::new(
                    sql,
                    format!("setting {name} for role {role:?}"),
                ));
            }
        }
    }

    let mut findings = Vec::new();
    if !conflicts.is_empty() {
        findings.push(Finding::blocking(
            "role_conflict",
            format!(
                "roles {} already exist on the destination and were not created by postgres-migrator (role_conflict_strategy = fail)",
                list(&conflicts)
            ),
            "drop or rename them on the destination, or set role_conflict_strategy to skip (leave them as they are) or merge (add the source's memberships and grants to them)",
        ));
    }
    if !skipped.is_empty() {
        findings.push(Finding::warning(
            "role_skipped",
            format!(
                "roles {} already exist on the destination and were left as they are (role_conflict_strategy = skip); their attributes, password and memberships may differ from the source",
                list(&skipped)
            ),
            "compare them with the source (\\du on both sides) and align them by hand if applications need it",
        ));
    }
    if !merged.is_empty() {
        findings.push(Finding::warning(
            "role_merged",
            format!(
                "roles {} already existed on the destination: the source's memberships and grants were added to them, their attributes and passwords left as they were (role_conflict_strategy = merge)",
                list(&merged)
            ),
            "check that their passwords on the destination are the ones applications use",
        ));
    }
    if !withheld.is_empty() {
        findings.push(Finding::warning(
            "role_attributes_withheld",
            format!(
                "roles were created without attributes or memberships the role connecting to the destination cannot give: {}",
                withheld.join(", ")
            ),
            "give them by hand as a role that has them, if they are still needed (ALTER ROLE ... REPLICATION, GRANT pg_read_all_data TO ...); on a managed service grant the provider's role instead (e.g. rds_replication, rds_superuser, azure_pg_admin)",
        ));
    }
    if !needs_password.is_empty() {
        findings.push(Finding::warning(
            "role_needs_password",
            format!(
                "password hashes cannot be read on the source (the connecting role cannot read pg_authid), so login roles {} have no password on the destination",
                list(&needs_password)
            ),
            format!(
                "before cutover set each one's password on the destination (ALTER ROLE {} PASSWORD '...'), or set migration.fallback_password_file so new roles get one",
                ident(&needs_password[0])
            ),
        ));
    }
    if !fallback.is_empty() {
        findings.push(Finding::warning(
            "role_fallback_password",
            format!(
                "password hashes cannot be read on the source, so login roles {} were given the configured fallback password",
                list(&fallback)
            ),
            format!(
                "before cutover set each one's real password on the destination (ALTER ROLE {} PASSWORD '...'), or connect to the source as a role that can read pg_authid",
                ident(&fallback[0])
            ),
        ));
    }
    if !md5.is_empty() {
        findings.push(Finding::warning(
            "role_md5_password",
            format!(
                "roles {} have MD5 password hashes, which PostgreSQL 18 deprecates (they still work, with a warning at each login)",
                list(&md5)
            ),
            "have each role set its password again with password_encryption = 'scram-sha-256' (\\password in psql), and change md5 lines in pg_hba.conf to scram-sha-256",
        ));
    }

    let definitions = source
        .roles
        .values()
        .filter(|r| r.name != input.destination_user)
        .map(|r| (r.name.clone(), definition(r, source)))
        .collect();
    RolePlan {
        statements,
        findings,
        roles,
        definitions,
    }
}

/// Reads the roles of both instances (maintenance databases) and plans.
pub async fn observe(
    ctx: &MappingContext,
    src: &Client,
    dst: &Client,
) -> Result<RolePlan, PgError> {
    let st = ctx.source.describe();
    let dt = ctx.destination.describe();
    let source = catalog::read(src, &st, true).await?;
    let destination = catalog::read(dst, &dt, true).await?;
    let destination_powers = powers(dst, &dt).await?;
    let destination_user = ctx.destination.pg.get_user().unwrap_or_default();
    Ok(plan(
        &source,
        &destination,
        &PlanInput {
            mapping: &ctx.name,
            strategy: ctx.role_conflict_strategy,
            fallback_password: ctx.fallback_password.as_ref(),
            destination_user,
            destination_powers,
        },
    ))
}

/// Runs the plan's statements on the destination, in order.
pub async fn apply(ctx: &MappingContext, plan: &RolePlan, dst: &Client) -> Result<(), PgError> {
    let dt = ctx.destination.describe();
    for statement in &plan.statements {
        dst.batch_execute(statement.sql.expose_secret())
            .await
            .map_err(|e| PgError::query(&dt, statement.what.clone(), e))?;
    }
    if !plan.statements.is_empty() {
        tracing::info!(mapping = %ctx.name, statements = plan.statements.len(), "roles brought in line with the source");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
