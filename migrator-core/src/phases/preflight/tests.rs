use super::*;

fn claim(mapping: &str, destination: &str, dbs: &[&str]) -> Claim {
    Claim {
        mapping: mapping.into(),
        destination: destination.into(),
        databases: dbs.iter().map(|d| (*d).to_owned()).collect(),
        roles: BTreeMap::new(),
    }
}

#[test]
fn one_role_defined_differently_for_one_destination_refuses_both_showing_both() {
    let mut a = claim("a", "new:5432", &["shop"]);
    let mut b = claim("b", "new:5432", &["crm"]);
    let mut c = claim("c", "other:5432", &["crm2"]);
    a.roles.insert("app".into(), "LOGIN".into());
    b.roles.insert("app".into(), "LOGIN CREATEDB".into());
    c.roles.insert("app".into(), "NOLOGIN".into());
    a.roles.insert("same".into(), "LOGIN".into());
    b.roles.insert("same".into(), "LOGIN".into());
    let found = name_conflicts(&[a, b, c]);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(found["a"].len(), 1);
    let message = &found["b"][0].message;
    assert!(
        message.contains("mapping a: LOGIN; mapping b: LOGIN CREATEDB"),
        "{message}"
    );
    assert_eq!(found["a"][0].code, "role_definition_conflict");
}

#[test]
fn same_database_name_to_one_destination_refuses_both_mappings() {
    let found = name_conflicts(&[
        claim("a", "new:5432", &["shop", "crm"]),
        claim("b", "new:5432", &["shop", "billing"]),
        claim("c", "other:5432", &["shop"]),
    ]);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(
        found["a"][0].message.contains("a, b"),
        "{}",
        found["a"][0].message
    );
    assert!(found["a"][0].message.contains("\"shop\""));
    assert!(found["b"][0].is_blocking());
}

#[test]
fn distinct_names_or_destinations_do_not_conflict() {
    assert!(
        name_conflicts(&[
            claim("a", "new:5432", &["shop"]),
            claim("b", "new:5432", &["crm"]),
            claim("c", "new:5433", &["shop"]),
        ])
        .is_empty()
    );
}

#[test]
fn capacity_blocks_below_one_per_database_and_warns_below_sync_room() {
    let mut f = Vec::new();
    capacity(&mut f, Code::ReplicationSlots, "max_x", "source", 2, 3, 2);
    assert!(f[0].is_blocking(), "{f:?}");
    let mut f = Vec::new();
    capacity(&mut f, Code::ReplicationSlots, "max_x", "source", 5, 3, 2);
    assert!(!f[0].is_blocking(), "{f:?}");
    let mut f = Vec::new();
    capacity(&mut f, Code::ReplicationSlots, "max_x", "source", 9, 3, 2);
    assert!(f.is_empty());
}
