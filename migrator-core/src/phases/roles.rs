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

use crate::pg::{PgError, Session};
use secrecy::{ExposeSecret, SecretString};

use super::MappingContext;
use crate::catalog::roles::{
    self as catalog, Membership, Password, Powers, Role, RoleCatalog, powers,
};
use crate::config::RoleConflictStrategy;
use crate::ddl::quote::ident;
use crate::ddl::roles::{self as ddl, definition};
use crate::findings::{Code, Finding};
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
    let mut planner = Planner::new(source, destination, input);
    let roles: Vec<RoleStatus> = source.roles.values().map(|r| planner.role(r)).collect();
    let present = present_memberships(destination);
    let created_here = created_here(&roles);
    planner.memberships(&present, &created_here);
    planner.connecting_role_memberships(&present, &created_here);
    planner.settings();
    RolePlan {
        findings: planner.findings(),
        statements: planner.statements,
        roles,
        definitions: definitions(source, input),
    }
}

/// What [`plan`] has decided so far: the statements in order, and the roles in each list its
/// findings name.
struct Planner<'a> {
    source: &'a RoleCatalog,
    destination: &'a RoleCatalog,
    input: &'a PlanInput<'a>,
    /// The comment mark of roles copied by this mapping.
    marker: String,
    statements: Vec<Statement>,
    conflicts: Vec<String>,
    skipped: Vec<String>,
    merged: Vec<String>,
    withheld: Vec<String>,
    needs_password: Vec<String>,
    fallback: Vec<String>,
    md5: Vec<String>,
    /// Roles whose memberships and settings the tool brings in line (copied or merged).
    managed: BTreeSet<&'a str>,
}

/// What happens to `role`, whose namesake on the destination is `existing`.
fn action(role: &Role, existing: Option<&Role>, input: &PlanInput) -> RoleAction {
    if role.name == input.destination_user {
        return RoleAction::Connection;
    }
    match existing {
        None => RoleAction::Create,
        Some(d) if is_ours(d.comment.as_deref()) => RoleAction::Copied,
        Some(_) => match input.strategy {
            RoleConflictStrategy::Fail => RoleAction::Conflict,
            RoleConflictStrategy::Skip => RoleAction::Skipped,
            RoleConflictStrategy::Merge => RoleAction::Merged,
        },
    }
}

impl<'a> Planner<'a> {
    fn new(source: &'a RoleCatalog, destination: &'a RoleCatalog, input: &'a PlanInput) -> Self {
        Planner {
            source,
            destination,
            input,
            marker: format!("{MARKER}{}", input.mapping),
            statements: Vec::new(),
            conflicts: Vec::new(),
            skipped: Vec::new(),
            merged: Vec::new(),
            withheld: Vec::new(),
            needs_password: Vec::new(),
            fallback: Vec::new(),
            md5: Vec::new(),
            managed: BTreeSet::new(),
        }
    }

    /// One source role: what to do with it, its statements (attributes, then password), and
    /// the lists it belongs to.
    fn role(&mut self, role: &'a Role) -> RoleStatus {
        let existing = self.destination.roles.get(&role.name);
        let action = action(role, existing, self.input);
        let (wanted, left_out) = grantable(&role.attributes, &self.input.destination_powers);
        let copies = matches!(action, RoleAction::Create | RoleAction::Copied);
        if !left_out.is_empty() && copies {
            self.withheld
                .push(format!("{} ({})", ident(&role.name), left_out.join(", ")));
        }
        let mut outcome = PasswordOutcome::NotApplicable;
        if copies {
            self.attributes(role, existing, action, &wanted);
            outcome = self.password(role, existing, action);
            self.managed.insert(&role.name);
        }
        match action {
            RoleAction::Conflict => self.conflicts.push(role.name.clone()),
            RoleAction::Skipped => self.skipped.push(role.name.clone()),
            RoleAction::Merged => {
                self.merged.push(role.name.clone());
                self.managed.insert(&role.name);
            }
            _ => {}
        }
        RoleStatus {
            name: role.name.clone(),
            action,
            login: role.attributes.login,
            password: outcome,
            member_of: self
                .source
                .memberships
                .iter()
                .filter(|m| m.member == role.name)
                .map(|m| m.group.clone())
                .collect(),
        }
    }

    /// A role to create is created with `wanted` and marked as copied; one copied before is
    /// altered when its attributes differ.
    fn attributes(
        &mut self,
        role: &Role,
        existing: Option<&Role>,
        action: RoleAction,
        wanted: &catalog::RoleAttributes,
    ) {
        let name = &role.name;
        if action == RoleAction::Create {
            self.statements.push(Statement::new(
                ddl::create_role(name, wanted),
                format!("creating role {name:?}"),
            ));
            let comment = match &role.comment {
                Some(c) => format!("{c}\n\n{}", self.marker),
                None => self.marker.clone(),
            };
            self.statements.push(Statement::new(
                ddl::comment_on_role(name, &comment),
                format!("marking role {name:?} as copied"),
            ));
        } else if existing.is_some_and(|d| d.attributes != *wanted) {
            self.statements.push(Statement::new(
                ddl::alter_role(name, wanted),
                format!("updating the attributes of role {name:?}"),
            ));
        }
    }

    /// The password of a role the tool copies: the source's hash, the fallback password, or
    /// none (reported).
    fn password(
        &mut self,
        role: &Role,
        existing: Option<&Role>,
        action: RoleAction,
    ) -> PasswordOutcome {
        let name = &role.name;
        let set = |hash: &SecretString| Statement {
            sql: ddl::set_password(name, hash),
            what: format!("setting the password of role {name:?}"),
        };
        match &role.password {
            Password::Hash(hash) => {
                let current = existing.map(|d| &d.password);
                let same = matches!(current, Some(Password::Hash(h)) if h.expose_secret() == hash.expose_secret());
                // A copied role whose destination hash cannot be read is left alone.
                let unknown = matches!(current, Some(Password::Unreadable));
                if action == RoleAction::Create || !(same || unknown) {
                    self.statements.push(set(hash));
                }
                if role.password.is_md5() {
                    self.md5.push(name.clone());
                    PasswordOutcome::CopiedMd5
                } else {
                    PasswordOutcome::Copied
                }
            }
            Password::Absent => PasswordOutcome::None,
            Password::Unreadable if !role.attributes.login => PasswordOutcome::NotApplicable,
            Password::Unreadable => match self.input.fallback_password {
                Some(password) => {
                    if action == RoleAction::Create {
                        self.statements.push(set(password));
                    }
                    self.fallback.push(name.clone());
                    PasswordOutcome::Fallback
                }
                None => {
                    self.needs_password.push(name.clone());
                    PasswordOutcome::NeedsPassword
                }
            },
        }
    }

    /// Memberships of managed members in groups that exist (or are created) there; missing ones
    /// are granted, existing ones left as they are (merge never weakens).
    fn memberships(&mut self, present: &BTreeSet<(&str, &str)>, created_here: &BTreeSet<&str>) {
        let (source, destination) = (self.source, self.destination);
        let exists = |name: &str| {
            destination.roles.contains_key(name)
                || source.roles.contains_key(name)
                || name.starts_with("pg_")
        };
        let powers = &self.input.destination_powers;
        let may_grant = |group: &str| {
            powers.superuser || powers.admin_of.contains(group) || created_here.contains(group)
        };
        for m in &source.memberships {
            let blocked_group = self.conflicts.contains(&m.group);
            if self.managed.contains(m.member.as_str())
                && exists(&m.group)
                && !blocked_group
                && !present.contains(&(m.group.as_str(), m.member.as_str()))
            {
                if !may_grant(&m.group) {
                    self.withheld.push(format!(
                        "{} (member of {})",
                        ident(&m.member),
                        ident(&m.group)
                    ));
                    continue;
                }
                self.statements.push(Statement::new(
                    ddl::grant_membership(m),
                    format!("granting role {:?} to {:?}", m.group, m.member),
                ));
            }
        }
    }

    /// A non-superuser gives objects to a role (ALTER ... OWNER TO), grants on that role's
    /// objects and lets the subscription apply as each table's owner only as a member of the
    /// role: it takes that membership (SET and INHERIT) in the roles it created, as a managed
    /// service's admin is a member of the application's roles.
    fn connecting_role_memberships(
        &mut self,
        present: &BTreeSet<(&str, &str)>,
        created_here: &BTreeSet<&str>,
    ) {
        let user = self.input.destination_user;
        if self.input.destination_powers.superuser {
            return;
        }
        for group in created_here.iter().filter(|g| **g != user) {
            if present.contains(&(*group, user)) {
                continue;
            }
            let membership = Membership {
                group: (*group).to_owned(),
                member: user.to_owned(),
                admin: false,
                inherit: Some(true),
                set: Some(true),
            };
            self.statements.push(Statement::new(
                ddl::grant_membership(&membership),
                format!("letting {user:?} act as {group:?} (to give it its objects)"),
            ));
        }
    }

    /// Settings of the managed roles everywhere (per-database ones come with the database's
    /// schema): missing ones are set; merge leaves a setting the destination has as it is.
    fn settings(&mut self) {
        for s in &self.source.settings {
            let (Some(role), None) = (&s.role, &s.database) else {
                continue;
            };
            if !self.managed.contains(role.as_str()) {
                continue;
            }
            let current: BTreeSet<&String> = self
                .destination
                .settings
                .iter()
                .filter(|d| d.role.as_ref() == Some(role) && d.database.is_none())
                .flat_map(|d| &d.config)
                .collect();
            let merge_only = self.merged.contains(role);
            for entry in s.config.iter().filter(|e| !current.contains(e)) {
                let name = entry.split('=').next().unwrap_or_default();
                let has_key = current.iter().any(|c| c.split('=').next() == Some(name));
                if merge_only && has_key {
                    continue;
                }
                if let Some(sql) = ddl::set_config(Some(role), None, entry) {
                    self.statements.push(Statement::new(
                        sql,
                        format!("setting {name} for role {role:?}"),
                    ));
                }
            }
        }
    }

    /// The findings, in a fixed order: conflicts first, passwords last.
    fn findings(&self) -> Vec<Finding> {
        [
            role_conflict(&self.conflicts),
            role_skipped(&self.skipped),
            role_merged(&self.merged),
            attributes_withheld(&self.withheld),
            needs_password(&self.needs_password),
            fallback_password(&self.fallback),
            md5_password(&self.md5),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The memberships the destination has, as (group, member).
fn present_memberships(destination: &RoleCatalog) -> BTreeSet<(&str, &str)> {
    destination
        .memberships
        .iter()
        .map(|m| (m.group.as_str(), m.member.as_str()))
        .collect()
}

/// The roles the tool creates (or created) on the destination. A non-superuser grants only
/// groups it holds ADMIN OPTION on; a CREATEROLE role holds it on the roles it created
/// (PostgreSQL 16+).
fn created_here(roles: &[RoleStatus]) -> BTreeSet<&str> {
    roles
        .iter()
        .filter(|r| matches!(r.action, RoleAction::Create | RoleAction::Copied))
        .map(|r| r.name.as_str())
        .collect()
}

/// Each source role's definition but the connecting role's.
fn definitions(source: &RoleCatalog, input: &PlanInput) -> BTreeMap<String, String> {
    source
        .roles
        .values()
        .filter(|r| r.name != input.destination_user)
        .map(|r| (r.name.clone(), definition(r, source)))
        .collect()
}

/// Existing roles the tool did not create, with role_conflict_strategy = fail.
fn role_conflict(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::blocking(
        Code::RoleConflict,
        format!(
            "roles {} already exist on the destination and were not created by postgres-migrator (role_conflict_strategy = fail)",
            list(roles)
        ),
        "drop or rename them on the destination, or set role_conflict_strategy to skip (leave them as they are) or merge (add the source's memberships and grants to them)",
    ))
}

/// Existing roles left as they are (role_conflict_strategy = skip).
fn role_skipped(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleSkipped,
        format!(
            "roles {} already exist on the destination and were left as they are (role_conflict_strategy = skip); their attributes, password and memberships may differ from the source",
            list(roles)
        ),
        "compare them with the source (\\du on both sides) and align them by hand if applications need it",
    ))
}

/// Existing roles the source's memberships and grants were added to (merge).
fn role_merged(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleMerged,
        format!(
            "roles {} already existed on the destination: the source's memberships and grants were added to them, their attributes and passwords left as they were (role_conflict_strategy = merge)",
            list(roles)
        ),
        "check that their passwords on the destination are the ones applications use",
    ))
}

/// Attributes and memberships the connecting role could not give.
fn attributes_withheld(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleAttributesWithheld,
        format!(
            "roles were created without attributes or memberships the role connecting to the destination cannot give: {}",
            roles.join(", ")
        ),
        "give them by hand as a role that has them, if they are still needed (ALTER ROLE ... REPLICATION, GRANT pg_read_all_data TO ...); on a managed service grant the provider's role instead (e.g. rds_replication, rds_superuser, azure_pg_admin)",
    ))
}

/// Login roles left without a password (no hash readable, no fallback).
fn needs_password(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleNeedsPassword,
        format!(
            "password hashes cannot be read on the source (the connecting role cannot read pg_authid), so login roles {} have no password on the destination",
            list(roles)
        ),
        format!(
            "before cutover set each one's password on the destination (ALTER ROLE {} PASSWORD '...'), or set migration.fallback_password_file so new roles get one",
            ident(&roles[0])
        ),
    ))
}

/// Login roles given the fallback password.
fn fallback_password(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleFallbackPassword,
        format!(
            "password hashes cannot be read on the source, so login roles {} were given the configured fallback password",
            list(roles)
        ),
        format!(
            "before cutover set each one's real password on the destination (ALTER ROLE {} PASSWORD '...'), or connect to the source as a role that can read pg_authid",
            ident(&roles[0])
        ),
    ))
}

/// Roles copied with MD5 hashes.
fn md5_password(roles: &[String]) -> Option<Finding> {
    (!roles.is_empty()).then(|| Finding::warning(
        Code::RoleMd5Password,
        format!(
            "roles {} have MD5 password hashes, which PostgreSQL 18 deprecates (they still work, with a warning at each login)",
            list(roles)
        ),
        "have each role set its password again with password_encryption = 'scram-sha-256' (\\password in psql), and change md5 lines in pg_hba.conf to scram-sha-256",
    ))
}

/// Reads the roles of both instances (maintenance databases) and plans.
pub async fn observe(
    ctx: &MappingContext,
    src: &Session,
    dst: &Session,
) -> Result<RolePlan, PgError> {
    let source = catalog::read(src, true).await?;
    let destination = catalog::read(dst, true).await?;
    let destination_powers = powers(dst).await?;
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
pub async fn apply(ctx: &MappingContext, plan: &RolePlan, dst: &Session) -> Result<(), PgError> {
    for statement in &plan.statements {
        dst.batch_execute(statement.sql.expose_secret())
            .await
            .map_err(|e| PgError::query(dst.target(), statement.what.clone(), e))?;
    }
    if !plan.statements.is_empty() {
        tracing::info!(mapping = %ctx.name, statements = plan.statements.len(), "roles brought in line with the source");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
