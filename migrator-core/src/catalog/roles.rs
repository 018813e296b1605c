//! Reads an instance's roles, memberships and role settings into plain structs.
//!
//! Roles of the system (`pg_*` and every role created by `initdb`, i.e. oid below 16384) are
//! never copied; predefined `pg_*` roles still appear as groups of memberships, since every
//! supported destination has them too. Password hashes come from `pg_authid`, which only
//! superusers (and roles granted SELECT on it) can read; everybody else reads
//! [`RoleCatalog::passwords_readable`] = false and [`Password::Unreadable`] for every role.
//! Version differences are absorbed with `to_jsonb(row)`: PostgreSQL 16 added
//! `inherit_option` and `set_option` to memberships.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretString;
use tokio_postgres::Row;

use crate::pg::{PgError, Session, q};

/// The first oid of objects created after `initdb` (`FirstNormalObjectId`).
const FIRST_NORMAL_OID: u32 = 16384;

/// Attributes of a role, as `CREATE ROLE` sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAttributes {
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    /// -1 = no limit.
    pub connection_limit: i32,
    /// `YYYY-MM-DD HH:MM:SS.ffffff+00`, or `infinity`.
    pub valid_until: Option<String>,
}

/// A role's password as read from the source.
#[derive(Clone)]
pub enum Password {
    /// The role has no password.
    Absent,
    /// The stored hash (`SCRAM-SHA-256$...` or `md5...`): copied as it is, never logged.
    Hash(SecretString),
    /// The connecting role cannot read `pg_authid`.
    Unreadable,
}

impl Password {
    /// An MD5 hash: deprecated in PostgreSQL 18.
    pub fn is_md5(&self) -> bool {
        use secrecy::ExposeSecret;
        matches!(self, Password::Hash(h) if h.expose_secret().starts_with("md5"))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Absent => "Absent",
            Password::Hash(_) if self.is_md5() => "Hash(md5, redacted)",
            Password::Hash(_) => "Hash(redacted)",
            Password::Unreadable => "Unreadable",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub attributes: RoleAttributes,
    pub password: Password,
    pub comment: Option<String>,
}

/// `member` belongs to `group`. `inherit` and `set` are `None` on PostgreSQL 15, which has no
/// such per-membership options (the member's INHERIT attribute decides; SET is always allowed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    pub group: String,
    pub member: String,
    pub admin: bool,
    pub inherit: Option<bool>,
    pub set: Option<bool>,
}

/// `ALTER ROLE ... [IN DATABASE ...] SET` / `ALTER DATABASE ... SET` values. `role` is `None` for
/// a database-wide setting, `database` is `None` for a setting of the role everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSetting {
    pub role: Option<String>,
    pub database: Option<String>,
    /// `name=value` entries, as the server stores them.
    pub config: Vec<String>,
}

/// Every role of an instance that the tool copies, with their memberships and settings.
#[derive(Debug, Clone, Default)]
pub struct RoleCatalog {
    /// By name.
    pub roles: BTreeMap<String, Role>,
    /// Memberships whose member is one of `roles` (groups may be predefined `pg_*` roles).
    pub memberships: Vec<Membership>,
    pub settings: Vec<RoleSetting>,
    /// The connecting role could read `pg_authid`.
    pub passwords_readable: bool,
}

/// Reads the roles of the instance `client` is connected to. With `with_passwords` the hashes
/// are read when the connecting role may.
pub async fn read(client: &Session, with_passwords: bool) -> Result<RoleCatalog, PgError> {
    let rows = role_rows(client).await?;
    let passwords_readable = with_passwords && pg_authid_readable(client).await?;
    let hashes = if passwords_readable {
        password_hashes(client).await?
    } else {
        BTreeMap::new()
    };
    let roles = roles(&rows, passwords_readable, hashes);
    let memberships = memberships(client).await?;
    let settings = settings(client).await?;
    Ok(RoleCatalog {
        roles,
        memberships,
        settings,
        passwords_readable,
    })
}

/// Roles created after `initdb` whose names do not start with `pg_`, by name.
async fn role_rows(client: &Session) -> Result<Vec<Row>, PgError> {
    client
        .query(
            "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, \
               r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
               CASE WHEN r.rolvaliduntil = 'infinity' THEN 'infinity' \
                    ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' END, \
               shobj_description(r.oid, 'pg_authid') \
             FROM pg_roles r WHERE r.oid >= $1 AND r.rolname !~ '^pg_' ORDER BY r.rolname",
            &[&FIRST_NORMAL_OID],
        )
        .await
        .map_err(q(client.target(), "listing roles"))
}

/// The connecting role may read `pg_authid` (and so the password hashes).
async fn pg_authid_readable(client: &Session) -> Result<bool, PgError> {
    Ok(client
        .query_one(
            "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')",
            &[],
        )
        .await
        .map_err(q(client.target(), "checking whether pg_authid is readable"))?
        .get::<_, bool>(0))
}

/// Password hashes by role name (`None`: no password).
async fn password_hashes(client: &Session) -> Result<BTreeMap<String, Option<String>>, PgError> {
    let mut hashes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for r in client
        .query(
            "SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE oid >= $1",
            &[&FIRST_NORMAL_OID],
        )
        .await
        .map_err(q(client.target(), "reading password hashes"))?
    {
        hashes.insert(r.get(0), r.get(1));
    }
    Ok(hashes)
}

/// The roles of `rows` with their passwords: taken from `hashes` when `passwords_readable`,
/// [`Password::Unreadable`] otherwise.
fn roles(
    rows: &[Row],
    passwords_readable: bool,
    mut hashes: BTreeMap<String, Option<String>>,
) -> BTreeMap<String, Role> {
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let password = if !passwords_readable {
                Password::Unreadable
            } else {
                match hashes.remove(&name).flatten() {
                    Some(hash) => Password::Hash(SecretString::from(hash)),
                    None => Password::Absent,
                }
            };
            let role = Role {
                name: name.clone(),
                attributes: RoleAttributes {
                    superuser: r.get(1),
                    inherit: r.get(2),
                    createrole: r.get(3),
                    createdb: r.get(4),
                    login: r.get(5),
                    replication: r.get(6),
                    bypassrls: r.get(7),
                    connection_limit: r.get(8),
                    valid_until: r.get(9),
                },
                password,
                comment: r.get(10),
            };
            (name, role)
        })
        .collect::<BTreeMap<_, _>>()
}

/// Memberships of the copied roles (in their own groups or in predefined `pg_*` roles).
async fn memberships(client: &Session) -> Result<Vec<Membership>, PgError> {
    let memberships = client
        .query(
            "SELECT g.rolname, m.rolname, am.admin_option, \
               (to_jsonb(am) ->> 'inherit_option')::boolean, (to_jsonb(am) ->> 'set_option')::boolean \
             FROM pg_auth_members am \
             JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member \
             WHERE m.oid >= $1 AND m.rolname !~ '^pg_' \
               AND (g.oid >= $1 OR g.rolname ~ '^pg_') \
             ORDER BY g.rolname, m.rolname",
            &[&FIRST_NORMAL_OID],
        )
        .await
        .map_err(q(client.target(), "listing role memberships"))?
        .iter()
        .map(|r| Membership {
            group: r.get(0),
            member: r.get(1),
            admin: r.get(2),
            inherit: r.get(3),
            set: r.get(4),
        })
        .collect();
    Ok(memberships)
}

/// Role settings (`ALTER ROLE ... SET`) and database settings (`ALTER DATABASE ... SET`).
async fn settings(client: &Session) -> Result<Vec<RoleSetting>, PgError> {
    let settings = client
        .query(
            "SELECT r.rolname, d.datname, s.setconfig FROM pg_db_role_setting s \
             LEFT JOIN pg_roles r ON r.oid = s.setrole \
             LEFT JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE (s.setrole = 0 OR (r.oid >= $1 AND r.rolname !~ '^pg_')) \
               AND (s.setdatabase = 0 OR d.oid IS NOT NULL) \
             ORDER BY r.rolname NULLS FIRST, d.datname NULLS FIRST",
            &[&FIRST_NORMAL_OID],
        )
        .await
        .map_err(q(client.target(), "listing role and database settings"))?
        .iter()
        .map(|r| RoleSetting {
            role: r.get(0),
            database: r.get(1),
            config: r.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
        })
        .collect();
    Ok(settings)
}

/// Names of every role on the instance (system roles included).
pub async fn names(client: &Session) -> Result<std::collections::BTreeSet<String>, PgError> {
    Ok(client
        .query("SELECT rolname FROM pg_roles", &[])
        .await
        .map_err(|e| PgError::query(client.target(), "listing roles", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The attributes and memberships a role may hand on to roles it creates or alters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Powers {
    pub superuser: bool,
    pub createdb: bool,
    pub replication: bool,
    pub bypassrls: bool,
    /// Roles it holds ADMIN OPTION on (so may grant), e.g. a provider's `pg_*` roles.
    pub admin_of: BTreeSet<String>,
}

/// Whether the role connecting to `client` is a superuser.
pub async fn is_superuser(client: &Session) -> Result<bool, PgError> {
    Ok(client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| {
            PgError::query(
                client.target(),
                "checking whether the connecting role is a superuser",
                e,
            )
        })?
        .get(0))
}

/// What the role connecting to `client` may give the roles it creates.
pub async fn powers(client: &Session) -> Result<Powers, PgError> {
    let row = client
        .query_one(
            "SELECT rolsuper, rolcreatedb, rolreplication, rolbypassrls \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| {
            PgError::query(
                client.target(),
                "reading the connecting role's attributes",
                e,
            )
        })?;
    let admin_of = client
        .query(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
             WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
             AND m.admin_option",
            &[],
        )
        .await
        .map_err(|e| {
            PgError::query(
                client.target(),
                "reading the roles the connecting role may grant",
                e,
            )
        })?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Powers {
        superuser: row.get(0),
        createdb: row.get(1),
        replication: row.get(2),
        bypassrls: row.get(3),
        admin_of,
    })
}
