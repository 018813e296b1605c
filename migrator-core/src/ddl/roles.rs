//! Roles, memberships and settings as SQL. Pure; password statements come back as secrets.

use secrecy::{ExposeSecret, SecretString};

use super::quote::{ident, literal};
use crate::catalog::roles::{Membership, Role, RoleAttributes, RoleCatalog};

/// The attribute list of `CREATE ROLE` / `ALTER ROLE`: every attribute spelled out, so the
/// statement sets them all whatever the defaults.
fn attribute_list(a: &RoleAttributes) -> String {
    let flag = |on: bool, name: &str| {
        if on {
            name.to_owned()
        } else {
            format!("NO{name}")
        }
    };
    let mut sql = [
        flag(a.superuser, "SUPERUSER"),
        flag(a.inherit, "INHERIT"),
        flag(a.createrole, "CREATEROLE"),
        flag(a.createdb, "CREATEDB"),
        flag(a.login, "LOGIN"),
        flag(a.replication, "REPLICATION"),
        flag(a.bypassrls, "BYPASSRLS"),
    ]
    .join(" ");
    sql.push_str(&format!(" CONNECTION LIMIT {}", a.connection_limit));
    if let Some(until) = &a.valid_until {
        sql.push_str(&format!(" VALID UNTIL {}", literal(until)));
    }
    sql
}

pub fn create_role(name: &str, attributes: &RoleAttributes) -> String {
    format!(
        "CREATE ROLE {} WITH {}",
        ident(name),
        attribute_list(attributes)
    )
}

pub fn alter_role(name: &str, attributes: &RoleAttributes) -> String {
    let mut sql = format!(
        "ALTER ROLE {} WITH {}",
        ident(name),
        attribute_list(attributes)
    );
    if attributes.valid_until.is_none() {
        // Absent on the source means no expiry; clear whatever the destination has.
        sql.push_str(" VALID UNTIL 'infinity'");
    }
    sql
}

/// `ALTER ROLE ... PASSWORD`: a stored hash is kept as it is (the server recognises SCRAM and
/// MD5 hashes); the fallback password arrives here already hashed by the tool.
pub fn set_password(name: &str, password: &SecretString) -> SecretString {
    SecretString::from(format!(
        "ALTER ROLE {} PASSWORD {}",
        ident(name),
        literal(password.expose_secret())
    ))
}

pub fn comment_on_role(name: &str, comment: &str) -> String {
    format!("COMMENT ON ROLE {} IS {}", ident(name), literal(comment))
}

/// `GRANT group TO member` with the membership's options. PostgreSQL 15 has no INHERIT/SET
/// options: those memberships get the destination's defaults (INHERIT follows the member's
/// attribute, SET TRUE), which is what they meant on the source.
pub fn grant_membership(m: &Membership) -> String {
    let mut options = vec![format!("ADMIN {}", if m.admin { "TRUE" } else { "FALSE" })];
    if let Some(inherit) = m.inherit {
        options.push(format!(
            "INHERIT {}",
            if inherit { "TRUE" } else { "FALSE" }
        ));
    }
    if let Some(set) = m.set {
        options.push(format!("SET {}", if set { "TRUE" } else { "FALSE" }));
    }
    format!(
        "GRANT {} TO {} WITH {}",
        ident(&m.group),
        ident(&m.member),
        options.join(", ")
    )
}

/// A role's definition in one line (attributes, groups, settings everywhere; no password): what
/// two mappings sending a role of one name to one destination must agree on.
pub fn definition(role: &Role, source: &RoleCatalog) -> String {
    let a = &role.attributes;
    let mut parts: Vec<String> = [
        (a.superuser, "SUPERUSER"),
        (a.login, "LOGIN"),
        (a.inherit, "INHERIT"),
        (a.createrole, "CREATEROLE"),
        (a.createdb, "CREATEDB"),
        (a.replication, "REPLICATION"),
        (a.bypassrls, "BYPASSRLS"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| (*name).to_owned())
    .collect();
    if a.connection_limit >= 0 {
        parts.push(format!("CONNECTION LIMIT {}", a.connection_limit));
    }
    if let Some(until) = &a.valid_until {
        parts.push(format!("VALID UNTIL {until}"));
    }
    let groups: Vec<&str> = source
        .memberships
        .iter()
        .filter(|m| m.member == role.name)
        .map(|m| m.group.as_str())
        .collect();
    if !groups.is_empty() {
        parts.push(format!("IN ROLE {}", groups.join(", ")));
    }
    for s in source
        .settings
        .iter()
        .filter(|s| s.role.as_deref() == Some(&role.name) && s.database.is_none())
    {
        parts.push(format!("SET {}", s.config.join(", ")));
    }
    if parts.is_empty() {
        "NOLOGIN".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Settings whose value is a list of names: each element must be given separately, or the
/// server would read the whole list as one name (`search_path = 'a, b'` is one schema "a, b").
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
];

/// Splits a stored list value (`app, "My Schema", public`) into its unquoted elements.
fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        item.push('"');
                    } else {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim_end().to_owned();
        }
        if !item.is_empty() {
            items.push(item);
        }
        if chars.next().is_none() {
            break;
        }
    }
    items
}

/// The value part of `SET name = ...` for one stored `name=value` entry.
fn setting_value(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name) {
        let items: Vec<String> = split_list(value).iter().map(|i| literal(i)).collect();
        if items.is_empty() {
            "''".to_owned()
        } else {
            items.join(", ")
        }
    } else {
        literal(value)
    }
}

/// `ALTER ROLE r [IN DATABASE d] SET ...` or `ALTER DATABASE d SET ...` for one stored
/// `name=value` entry; `None` for an entry without `=` (never written by the server).
pub fn set_config(role: Option<&str>, database: Option<&str>, entry: &str) -> Option<String> {
    let (name, value) = entry.split_once('=')?;
    let target = match (role, database) {
        (Some(role), Some(db)) => format!("ROLE {} IN DATABASE {}", ident(role), ident(db)),
        (Some(role), None) => format!("ROLE {}", ident(role)),
        (None, Some(db)) => format!("DATABASE {}", ident(db)),
        (None, None) => return None,
    };
    Some(format!(
        "ALTER {target} SET {} = {}",
        ident(name),
        setting_value(name, value)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> RoleAttributes {
        RoleAttributes {
            superuser: false,
            inherit: true,
            createrole: false,
            createdb: true,
            login: true,
            replication: false,
            bypassrls: false,
            connection_limit: 5,
            valid_until: Some("2030-01-01 00:00:00.000000+00".into()),
        }
    }

    #[test]
    fn create_role_spells_out_every_attribute() {
        assert_eq!(
            create_role("app \"owner\"", &attrs()),
            "CREATE ROLE \"app \"\"owner\"\"\" WITH NOSUPERUSER INHERIT NOCREATEROLE CREATEDB LOGIN \
             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 VALID UNTIL '2030-01-01 00:00:00.000000+00'"
        );
        let mut a = attrs();
        a.valid_until = None;
        assert!(alter_role("r", &a).ends_with("CONNECTION LIMIT 5 VALID UNTIL 'infinity'"));
    }

    #[test]
    fn passwords_are_literals_inside_a_secret() {
        let sql = set_password("r", &SecretString::from("it's"));
        assert_eq!(sql.expose_secret(), "ALTER ROLE \"r\" PASSWORD 'it''s'");
        assert!(!format!("{sql:?}").contains("it's"));
    }

    #[test]
    fn memberships_carry_the_options_the_source_has() {
        let mut m = Membership {
            group: "readers".into(),
            member: "alice".into(),
            admin: true,
            inherit: None,
            set: None,
        };
        assert_eq!(
            grant_membership(&m),
            "GRANT \"readers\" TO \"alice\" WITH ADMIN TRUE"
        );
        m.inherit = Some(false);
        m.set = Some(true);
        assert_eq!(
            grant_membership(&m),
            "GRANT \"readers\" TO \"alice\" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE"
        );
    }

    #[test]
    fn list_settings_are_split_into_quoted_elements() {
        assert_eq!(
            set_config(
                Some("app"),
                None,
                "search_path=app, \"My \"\"S\"\", 1\", public"
            )
            .unwrap(),
            "ALTER ROLE \"app\" SET \"search_path\" = 'app', 'My \"S\", 1', 'public'"
        );
        assert_eq!(
            set_config(Some("app"), Some("shop"), "statement_timeout=5s").unwrap(),
            "ALTER ROLE \"app\" IN DATABASE \"shop\" SET \"statement_timeout\" = '5s'"
        );
        assert_eq!(
            set_config(None, Some("shop"), "work_mem=64MB").unwrap(),
            "ALTER DATABASE \"shop\" SET \"work_mem\" = '64MB'"
        );
        assert_eq!(
            set_config(None, Some("d"), "search_path=\"$user\", public").unwrap(),
            "ALTER DATABASE \"d\" SET \"search_path\" = '$user', 'public'"
        );
        assert!(set_config(Some("a"), None, "garbage").is_none());
    }
}
