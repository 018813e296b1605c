use super::*;

fn opts() -> SequenceOptions {
    SequenceOptions {
        data_type: "bigint".into(),
        start: 1,
        increment: 1,
        min: 1,
        max: i64::MAX,
        cache: 1,
        cycle: false,
    }
}

pub(crate) fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        data_type: ty.into(),
        not_null: false,
        default: None,
        identity: None,
        generated: None,
        collation: None,
        statistics: None,
        storage: None,
        compression: None,
        default_calls_functions: false,
        inherited: false,
    }
}

pub(crate) fn table(schema: &str, name: &str) -> Table {
    Table {
        name: QualifiedName::new(schema, name),
        partition_key: None,
        partition_of: None,
        columns: vec![],
        constraints: vec![],
        indexes: vec![],
        replica_identity: 'd',
        inherits: vec![],
        unlogged: false,
        clustered_on: None,
        access_method: None,
        of_type: None,
        options: vec![],
    }
}

fn constraint(name: &str, kind: ConstraintKind, def: &str) -> Constraint {
    Constraint {
        name: name.into(),
        kind,
        definition: def.into(),
        replica_identity: false,
        comment: None,
        calls_functions: false,
        inherited: false,
        index_comment: None,
        depended_on: false,
    }
}

fn position(sql: &[String], needle: &str) -> usize {
    sql.iter()
        .position(|s| s.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in {sql:#?}"))
}

#[test]
fn create_database_keeps_encoding_and_locale_for_every_provider() {
    let mut info = DatabaseInfo {
        name: "x".into(),
        encoding: "UTF8".into(),
        locale_provider: "c".into(),
        collate: "C.UTF-8".into(),
        ctype: "C.UTF-8".into(),
        locale: None,
    };
    assert_eq!(
        create_database(&info, "My \"DB\""),
        "CREATE DATABASE \"My \"\"DB\"\"\" WITH TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
    );
    info.locale_provider = "i".into();
    info.locale = Some("en-US".into());
    assert!(create_database(&info, "d").ends_with(
        "LOCALE_PROVIDER icu LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' ICU_LOCALE 'en-US'"
    ));
    info.locale_provider = "b".into();
    info.locale = Some("C.UTF-8".into());
    assert!(create_database(&info, "d").ends_with("BUILTIN_LOCALE 'C.UTF-8'"));
}

#[test]
fn columns_carry_identity_generated_collation_default_and_not_null() {
    let mut t = table("public", "Order Items");
    let mut id = col("id", "bigint");
    id.not_null = true;
    id.identity = Some((
        Identity::Always,
        QualifiedName::new("public", "Order Items_id_seq"),
        opts(),
    ));
    let mut total = col("total", "numeric(12,2)");
    total.generated = Some("(qty * price)".into());
    let mut name = col("Name \"x\"", "text");
    name.collation = Some(QualifiedName::new("pg_catalog", "C"));
    name.default = Some("'unnamed'::text".into());
    t.columns = vec![id, total, name];
    t.constraints = vec![constraint(
        "qty_positive",
        ConstraintKind::Check,
        "CHECK ((qty > 0))",
    )];
    let sql = early_statements(&SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    });
    assert_eq!(
        sql,
        vec![
            "CREATE TABLE \"public\".\"Order Items\" (\
             \"id\" bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME \"public\".\"Order Items_id_seq\" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 NO CYCLE) NOT NULL, \
             \"total\" numeric(12,2) GENERATED ALWAYS AS ((qty * price)) STORED, \
             \"Name \"\"x\"\"\" text COLLATE \"pg_catalog\".\"C\" DEFAULT 'unnamed'::text, \
             CONSTRAINT \"qty_positive\" CHECK ((qty > 0)))"
        ]
    );
}

#[test]
fn types_and_sequences_come_before_tables_and_owned_by_after() {
    let mut t = table("app", "t");
    t.columns = vec![col("n", "integer")];
    let catalog = SchemaCatalog {
        schemas: vec!["app".into()],
        extensions: vec![Extension {
            name: "pgcrypto".into(),
            schema: "public".into(),
            version: "1.3".into(),
        }],
        enums: vec![EnumType {
            name: QualifiedName::new("app", "mood"),
            labels: vec!["ok".into(), "it's bad".into()],
        }],
        types: vec![
            UserType::Domain {
                name: QualifiedName::new("app", "pos"),
                base_type: "integer".into(),
                not_null: true,
                default: Some("1".into()),
                checks: vec![("pos_check".into(), "CHECK ((VALUE > 0))".into())],
            },
            UserType::Composite {
                name: QualifiedName::new("app", "pair"),
                attributes: vec![("a".into(), "app.pos".into()), ("b".into(), "text".into())],
            },
        ],
        sequences: vec![Sequence {
            name: QualifiedName::new("app", "t_n_seq"),
            options: opts(),
            owned_by: Some((QualifiedName::new("app", "t"), "n".into())),
        }],
        tables: vec![t],
        ..Default::default()
    };
    let sql = early_statements(&catalog);
    assert_eq!(sql[0], "CREATE SCHEMA IF NOT EXISTS \"app\"");
    assert_eq!(
        sql[1],
        "CREATE EXTENSION IF NOT EXISTS \"pgcrypto\" WITH SCHEMA \"public\""
    );
    assert_eq!(
        sql[2],
        "CREATE TYPE \"app\".\"mood\" AS ENUM ('ok', 'it''s bad')"
    );
    assert_eq!(
        sql[3],
        "CREATE DOMAIN \"app\".\"pos\" AS integer DEFAULT 1 NOT NULL CONSTRAINT \"pos_check\" CHECK ((VALUE > 0))"
    );
    assert_eq!(
        sql[4],
        "CREATE TYPE \"app\".\"pair\" AS (\"a\" app.pos, \"b\" text)"
    );
    assert!(sql[5].starts_with("CREATE SEQUENCE \"app\".\"t_n_seq\" AS bigint"));
    assert_eq!(sql[6], "CREATE TABLE \"app\".\"t\" (\"n\" integer)");
    assert_eq!(
        sql[7],
        "ALTER SEQUENCE \"app\".\"t_n_seq\" OWNED BY \"app\".\"t\".\"n\""
    );
    assert_eq!(sql.len(), 8);
}

#[test]
fn partitions_follow_their_parent_and_primary_keys_come_before_data() {
    let mut parent = table("public", "events");
    parent.columns = vec![col("id", "bigint"), col("at", "date")];
    parent.partition_key = Some("RANGE (at)".into());
    parent.constraints = vec![constraint(
        "events_pkey",
        ConstraintKind::PrimaryKey,
        "PRIMARY KEY (id, at)",
    )];
    let mut check = constraint("id_positive", ConstraintKind::Check, "CHECK ((id > 0))");
    parent.constraints.push(check.clone());
    let mut part = table("public", "events_2026");
    part.partition_of = Some((
        QualifiedName::new("public", "events"),
        "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')".into(),
    ));
    // Its own column order, and its parent's check, which ATTACH requires it to have.
    part.columns = vec![col("at", "date"), col("id", "bigint")];
    for c in &mut part.columns {
        c.inherited = true;
    }
    check.inherited = true;
    part.constraints = vec![check];
    let sql = early_statements(&SchemaCatalog {
        tables: vec![parent, part],
        ..Default::default()
    });
    assert_eq!(
        sql[0],
        "CREATE TABLE \"public\".\"events\" (\"id\" bigint, \"at\" date, CONSTRAINT \"id_positive\" CHECK ((id > 0))) PARTITION BY RANGE (at)"
    );
    assert_eq!(
        sql[1],
        "CREATE TABLE \"public\".\"events_2026\" (\"at\" date, \"id\" bigint, CONSTRAINT \"id_positive\" CHECK ((id > 0)))"
    );
    assert_eq!(
        sql[2],
        "ALTER TABLE ONLY \"public\".\"events\" ATTACH PARTITION \"public\".\"events_2026\" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
    );
    assert_eq!(
        sql[3],
        "ALTER TABLE \"public\".\"events\" ADD CONSTRAINT \"events_pkey\" PRIMARY KEY (id, at)"
    );
    // The parent's check reaches the partition through the parent, never on its own.
    assert_eq!(sql.len(), 4, "{sql:#?}");
}

#[test]
fn a_partitioned_index_attaches_each_partitions_index_under_its_own_name() {
    let mut parent = table("public", "m");
    parent.partition_key = Some("RANGE (a)".into());
    let p =
        |table: &str, name: &str, on: &str, parent: &str| crate::catalog::model::PartitionIndex {
            table: QualifiedName::new("public", table),
            name: name.into(),
            definition: format!("CREATE INDEX {name} ON {on} USING btree (a)"),
            parent: QualifiedName::new("public", parent),
            comment: None,
            constraint: false,
        };
    parent.indexes = vec![Index {
        name: "m_a".into(),
        definition: "CREATE INDEX m_a ON ONLY public.m USING btree (a)".into(),
        partitions: vec![
            p("m1", "m1 own name", "public.m1", "m_a"),
            p("m2", "m2_a", "ONLY public.m2", "m_a"),
            p("m21", "m21_a", "public.m21", "m2_a"),
        ],
        ..Default::default()
    }];
    let catalog = SchemaCatalog {
        tables: vec![parent],
        ..Default::default()
    };
    let objects = deferred_objects(&catalog);
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0].statements,
        [
            "CREATE INDEX IF NOT EXISTS m_a ON ONLY public.m USING btree (a)",
            "CREATE INDEX IF NOT EXISTS m1 own name ON public.m1 USING btree (a)",
            "ALTER INDEX \"public\".\"m_a\" ATTACH PARTITION \"public\".\"m1 own name\"",
            "CREATE INDEX IF NOT EXISTS m2_a ON ONLY public.m2 USING btree (a)",
            "ALTER INDEX \"public\".\"m_a\" ATTACH PARTITION \"public\".\"m2_a\"",
            "CREATE INDEX IF NOT EXISTS m21_a ON public.m21 USING btree (a)",
            "ALTER INDEX \"public\".\"m2_a\" ATTACH PARTITION \"public\".\"m21_a\"",
        ]
    );
    assert!(!objects[0].not_valid);
}

#[test]
fn a_typed_table_is_created_of_its_type_with_its_columns_options() {
    let mut t = table("app", "people");
    t.of_type = Some(QualifiedName::new("app", "person"));
    let mut id = col("id", "integer");
    id.not_null = true;
    let mut name = col("name", "text");
    name.default = Some("''::text".into());
    t.columns = vec![id, name, col("note", "text")];
    t.constraints = vec![constraint(
        "id_positive",
        ConstraintKind::Check,
        "CHECK ((id > 0))",
    )];
    let sql = early_statements(&SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    });
    assert_eq!(
        sql[0],
        "CREATE TABLE \"app\".\"people\" OF \"app\".\"person\" (\"id\" WITH OPTIONS NOT NULL, \"name\" WITH OPTIONS DEFAULT ''::text, CONSTRAINT \"id_positive\" CHECK ((id > 0)))"
    );
    let mut bare = table("app", "plain");
    bare.of_type = Some(QualifiedName::new("app", "person"));
    bare.columns = vec![col("id", "integer")];
    let sql = early_statements(&SchemaCatalog {
        tables: vec![bare],
        ..Default::default()
    });
    assert_eq!(
        sql[0],
        "CREATE TABLE \"app\".\"plain\" OF \"app\".\"person\""
    );
}

#[test]
fn replica_identity_is_copied_and_its_index_built_early() {
    let mut full = table("public", "log");
    full.replica_identity = 'f';
    let mut by_index = table("public", "kv");
    by_index.replica_identity = 'i';
    by_index.indexes = vec![
        Index {
            name: "kv_key".into(),
            definition: "CREATE UNIQUE INDEX kv_key ON public.kv USING btree (k)".into(),
            replica_identity: true,
            comment: None,
            ..Default::default()
        },
        Index {
            name: "kv_v".into(),
            definition: "CREATE INDEX kv_v ON public.kv USING btree (v)".into(),
            replica_identity: false,
            comment: None,
            ..Default::default()
        },
    ];
    let catalog = SchemaCatalog {
        tables: vec![full, by_index],
        ..Default::default()
    };
    let sql = early_statements(&catalog);
    let index = position(&sql, "CREATE UNIQUE INDEX IF NOT EXISTS kv_key");
    let identity = position(
        &sql,
        "ALTER TABLE \"public\".\"kv\" REPLICA IDENTITY USING INDEX \"kv_key\"",
    );
    assert!(index < identity);
    position(&sql, "ALTER TABLE \"public\".\"log\" REPLICA IDENTITY FULL");
    assert!(
        !sql.iter().any(|s| s.contains("kv_v")),
        "secondary index is deferred"
    );
    let deferred = deferred_objects(&catalog);
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].name, "kv_v");
    assert_eq!(deferred[0].kind, DeferredKind::Index);
}

#[test]
fn unique_and_foreign_keys_are_deferred_with_foreign_keys_last_and_validated_separately() {
    let mut orders = table("public", "orders");
    orders.constraints = vec![
        constraint(
            "orders_customer_fk",
            ConstraintKind::ForeignKey,
            "FOREIGN KEY (customer_id) REFERENCES public.customers(id)",
        ),
        constraint(
            "orders_old_fk",
            ConstraintKind::ForeignKey,
            "FOREIGN KEY (x) REFERENCES public.x(id) NOT VALID",
        ),
    ];
    let mut customers = table("public", "customers");
    customers.constraints = vec![constraint(
        "customers_email_key",
        ConstraintKind::Unique,
        "UNIQUE (email)",
    )];
    let catalog = SchemaCatalog {
        tables: vec![orders, customers],
        ..Default::default()
    };
    assert!(
        early_statements(&catalog)
            .iter()
            .all(|s| !s.contains("FOREIGN KEY") && !s.contains("UNIQUE"))
    );
    let deferred = deferred_objects(&catalog);
    let names: Vec<&str> = deferred.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["customers_email_key", "orders_customer_fk", "orders_old_fk"]
    );
    assert_eq!(
        deferred[1].statements,
        vec![
            "ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"orders_customer_fk\" FOREIGN KEY (customer_id) REFERENCES public.customers(id) NOT VALID",
            "ALTER TABLE \"public\".\"orders\" VALIDATE CONSTRAINT \"orders_customer_fk\"",
        ]
    );
    assert_eq!(
        deferred[2].statements.len(),
        1,
        "a NOT VALID source constraint stays unvalidated"
    );
}

#[test]
fn parents_first_orders_multi_level_partitions() {
    let mut leaf = table("public", "leaf");
    leaf.partition_of = Some((QualifiedName::new("public", "mid"), "DEFAULT".into()));
    let mut mid = table("public", "mid");
    mid.partition_of = Some((QualifiedName::new("public", "root"), "DEFAULT".into()));
    let root = table("public", "root");
    let mut tables = vec![leaf, mid, root];
    crate::catalog::schema::parents_first(&mut tables);
    let names: Vec<&str> = tables.iter().map(|t| t.name.name.as_str()).collect();
    assert_eq!(names, ["root", "mid", "leaf"]);
}

#[test]
fn a_domain_check_added_not_valid_follows_as_alter_domain() {
    let catalog = SchemaCatalog {
        types: vec![UserType::Domain {
            name: QualifiedName::new("app", "pos"),
            base_type: "integer".into(),
            not_null: false,
            default: None,
            checks: vec![
                ("late".into(), "CHECK ((VALUE < 100)) NOT VALID".into()),
                ("pos_check".into(), "CHECK ((VALUE > 0))".into()),
            ],
        }],
        ..Default::default()
    };
    assert_eq!(
        early_statements(&catalog),
        [
            "CREATE DOMAIN \"app\".\"pos\" AS integer CONSTRAINT \"pos_check\" CHECK ((VALUE > 0))",
            "ALTER DOMAIN \"app\".\"pos\" ADD CONSTRAINT \"late\" CHECK ((VALUE < 100)) NOT VALID",
        ]
    );
}

#[test]
fn inherits_children_follow_their_parents_and_keep_them() {
    let mut child = table("app", "child");
    child.columns = vec![col("extra", "text")];
    child.inherits = vec![
        QualifiedName::new("app", "base"),
        QualifiedName::new("Other", "mixin"),
    ];
    let mut tables = vec![child, table("Other", "mixin"), table("app", "base")];
    crate::catalog::schema::parents_first(&mut tables);
    let names: Vec<&str> = tables.iter().map(|t| t.name.name.as_str()).collect();
    assert_eq!(names, ["mixin", "base", "child"]);
    let sql = early_statements(&SchemaCatalog {
        tables,
        ..Default::default()
    });
    assert_eq!(
        sql[2],
        "CREATE TABLE \"app\".\"child\" (\"extra\" text) INHERITS (\"app\".\"base\", \"Other\".\"mixin\")"
    );
}

#[test]
fn not_valid_checks_come_after_the_copy_and_stay_not_valid() {
    let mut t = table("app", "t");
    t.columns = vec![col("n", "integer")];
    t.constraints = vec![
        constraint("n_positive", ConstraintKind::Check, "CHECK ((n > 0))"),
        constraint(
            "n_small",
            ConstraintKind::Check,
            "CHECK ((n < 10)) NOT VALID",
        ),
    ];
    let catalog = SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    };
    let early = early_statements(&catalog);
    assert_eq!(
        early,
        ["CREATE TABLE \"app\".\"t\" (\"n\" integer, CONSTRAINT \"n_positive\" CHECK ((n > 0)))"]
    );
    let deferred = deferred_objects(&catalog);
    assert_eq!(deferred.len(), 1);
    assert!(deferred[0].not_valid);
    assert_eq!(
        deferred[0].statements,
        ["ALTER TABLE \"app\".\"t\" ADD CONSTRAINT \"n_small\" CHECK ((n < 10)) NOT VALID"]
    );
}

#[test]
fn storage_parameters_and_column_settings_follow_the_table() {
    let mut t = table("app", "t");
    let mut body = col("body", "text");
    body.statistics = Some(500);
    body.storage = Some("EXTERNAL".into());
    body.compression = Some("pglz".into());
    t.columns = vec![col("id", "integer"), body];
    t.options = vec![
        "fillfactor=70".into(),
        "autovacuum_enabled=false".into(),
        "toast.autovacuum_vacuum_scale_factor=0.05".into(),
    ];
    let sql = early_statements(&SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    });
    assert_eq!(
        &sql[1..],
        [
            "ALTER TABLE \"app\".\"t\" SET (\"fillfactor\" = '70', \"autovacuum_enabled\" = 'false', \"toast\".\"autovacuum_vacuum_scale_factor\" = '0.05')",
            "ALTER TABLE \"app\".\"t\" ALTER COLUMN \"body\" SET STATISTICS 500, ALTER COLUMN \"body\" SET STORAGE EXTERNAL",
            "ALTER TABLE \"app\".\"t\" ALTER COLUMN \"body\" SET COMPRESSION pglz",
        ]
    );
    // Compression is its own object (a destination without lz4 refuses it, not the table).
    let mut t = table("app", "t");
    let mut body = col("body", "text");
    body.compression = Some("lz4".into());
    t.columns = vec![body];
    let objects: Vec<String> = tables(
        &SchemaCatalog {
            tables: vec![t],
            ..Default::default()
        },
        Keys::WithTables,
    )
    .into_iter()
    .map(|s| s.object)
    .collect();
    assert_eq!(objects, ["TABLE app.t", "COMPRESSION app.t.body"]);
}

#[test]
fn an_unlogged_table_gets_everything_at_once_and_nothing_deferred() {
    let mut t = table("app", "cache");
    t.unlogged = true;
    t.columns = vec![col("k", "text"), col("n", "integer")];
    t.constraints = vec![
        constraint("cache_pkey", ConstraintKind::PrimaryKey, "PRIMARY KEY (k)"),
        constraint("n_unique", ConstraintKind::Unique, "UNIQUE (n)"),
        constraint(
            "n_small",
            ConstraintKind::Check,
            "CHECK ((n < 10)) NOT VALID",
        ),
    ];
    t.indexes = vec![Index {
        name: "cache_n".into(),
        definition: "CREATE INDEX cache_n ON app.cache USING btree (n)".into(),
        replica_identity: false,
        comment: None,
        ..Default::default()
    }];
    let catalog = SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    };
    let sql = early_statements(&catalog);
    assert!(
        sql[0].starts_with("CREATE UNLOGGED TABLE \"app\".\"cache\""),
        "{sql:#?}"
    );
    for needle in [
        "cache_pkey",
        "n_unique",
        "n_small",
        "CREATE INDEX IF NOT EXISTS cache_n",
    ] {
        position(&sql, needle);
    }
    assert!(deferred_objects(&catalog).is_empty());
}

#[test]
fn comments_on_indexes_and_constraints_come_with_them_and_a_table_keeps_its_access_method() {
    let mut t = table("app", "Read ü");
    t.access_method = Some("heap two".into());
    t.columns = vec![col("v", "integer")];
    let mut check = constraint("v positive", ConstraintKind::Check, "CHECK ((v > 0))");
    check.comment = Some("it's positive".into());
    let mut unique = constraint("v_key", ConstraintKind::Unique, "UNIQUE (v)");
    unique.comment = Some("one each".into());
    t.constraints = vec![check, unique];
    t.indexes = vec![Index {
        name: "v_rev".into(),
        definition: "CREATE INDEX v_rev ON app.\"Read ü\" USING btree (v)".into(),
        replica_identity: false,
        comment: Some("backwards".into()),
        ..Default::default()
    }];
    let catalog = SchemaCatalog {
        tables: vec![t],
        ..Default::default()
    };
    let early = early_statements(&catalog);
    assert!(
        early[position(&early, "CREATE TABLE")].ends_with(") USING \"heap two\""),
        "{early:#?}"
    );
    // The check is created with the table, so its comment follows at once.
    assert!(
        early.contains(
            &"COMMENT ON CONSTRAINT \"v positive\" ON \"app\".\"Read ü\" IS 'it''s positive'"
                .to_owned()
        ),
        "{early:#?}"
    );
    assert!(
        early
            .iter()
            .all(|s| !s.contains("one each") && !s.contains("backwards"))
    );
    // The others are built after the copy: their comments are the last step of each.
    let deferred = deferred_objects(&catalog);
    let last = |name: &str| {
        deferred
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.statements.last().cloned())
            .unwrap()
    };
    assert_eq!(
        last("v_rev"),
        "COMMENT ON INDEX \"app\".\"v_rev\" IS 'backwards'"
    );
    assert_eq!(
        last("v_key"),
        "COMMENT ON CONSTRAINT \"v_key\" ON \"app\".\"Read ü\" IS 'one each'"
    );
}

#[test]
fn sequences_keep_a_persistence_other_than_their_tables() {
    let catalog = SchemaCatalog {
        sequence_persistence: vec![
            (QualifiedName::new("app", "counter_id_seq"), true),
            (QualifiedName::new("app", "scratch ü"), false),
        ],
        ..Default::default()
    };
    let sql = early_statements(&catalog);
    assert_eq!(
        sql,
        [
            "ALTER SEQUENCE \"app\".\"counter_id_seq\" SET LOGGED",
            "ALTER SEQUENCE \"app\".\"scratch ü\" SET UNLOGGED"
        ]
    );
}

#[test]
fn statements_follow_what_they_depend_on_and_keep_their_order_otherwise() {
    let st = |object: &str, sql: &str| Statement::new(object, sql);
    let statements = vec![
        st("DOMAIN s.positive", "CREATE DOMAIN"),
        st("ROUTINE s.check_it(integer)", "CREATE FUNCTION check_it"),
        st("TABLE s.t", "CREATE TABLE"),
        st("VIEW s.v", "CREATE VIEW v"),
        st("VIEW s.w", "CREATE VIEW w"),
        st("ROUTINE s.a()", "CREATE FUNCTION a"),
        st("ROUTINE s.b()", "CREATE FUNCTION b"),
        st("DOMAIN s.positive", "ALTER DOMAIN OWNER"),
        st("TABLE s.t", "ALTER TABLE OWNER"),
    ];
    let deps = [
        ("DOMAIN s.positive", "ROUTINE s.check_it(integer)"),
        ("VIEW s.v", "VIEW s.w"),
        // A cycle: together, in the given order.
        ("ROUTINE s.a()", "ROUTINE s.b()"),
        ("ROUTINE s.b()", "ROUTINE s.a()"),
        // Not among the statements: no constraint.
        ("TABLE s.t", "EXTENSION hstore"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    let sql: Vec<String> = dependency_order(statements, &deps)
        .into_iter()
        .map(|s| s.sql)
        .collect();
    assert_eq!(
        sql,
        [
            "CREATE FUNCTION check_it",
            "CREATE DOMAIN",
            "CREATE TABLE",
            "CREATE VIEW w",
            "CREATE VIEW v",
            "CREATE FUNCTION a",
            "CREATE FUNCTION b",
            "ALTER DOMAIN OWNER",
            "ALTER TABLE OWNER",
        ]
    );
}

#[test]
fn primary_keys_follow_the_copy_unless_something_needs_them_sooner() {
    let key = |table: &str| {
        constraint(
            &format!("{table}_pkey"),
            ConstraintKind::PrimaryKey,
            "PRIMARY KEY (id)",
        )
    };
    let mut plain = table("public", "plain");
    plain.constraints = vec![key("plain")];
    plain.clustered_on = Some("plain_pkey".into());
    let mut viewed = table("public", "viewed");
    viewed.constraints = vec![Constraint {
        depended_on: true,
        ..key("viewed")
    }];
    let mut identity = table("public", "identity");
    identity.replica_identity = 'i';
    identity.constraints = vec![Constraint {
        replica_identity: true,
        ..key("identity")
    }];
    let mut scratch = table("public", "scratch");
    scratch.unlogged = true;
    scratch.constraints = vec![key("scratch")];
    let catalog = SchemaCatalog {
        tables: vec![plain, viewed, identity, scratch],
        ..Default::default()
    };
    let early = |keys| sql_of(tables(&catalog, keys));

    let with_tables = early(Keys::WithTables);
    for t in ["plain", "viewed", "identity", "scratch"] {
        position(&with_tables, &format!("ADD CONSTRAINT \"{t}_pkey\""));
    }
    let after_copy = early(Keys::AfterCopy);
    assert!(
        !after_copy.iter().any(|s| s.contains("plain_pkey")),
        "{after_copy:#?}"
    );
    for t in ["viewed", "identity", "scratch"] {
        position(&after_copy, &format!("ADD CONSTRAINT \"{t}_pkey\""));
    }
    assert!(
        position(&after_copy, "ADD CONSTRAINT \"identity_pkey\"")
            < position(
                &after_copy,
                "REPLICA IDENTITY USING INDEX \"identity_pkey\""
            )
    );

    // Deferred: the plain key only (with its CLUSTER), whichever way the schema was made (an
    // existing key counts as built).
    let deferred = deferred_objects(&catalog);
    let keys: Vec<&DeferredObject> = deferred
        .iter()
        .filter(|o| o.kind == DeferredKind::PrimaryKey)
        .collect();
    assert_eq!(keys.len(), 1, "{deferred:#?}");
    assert_eq!(keys[0].name, "plain_pkey");
    assert_eq!(
        keys[0].statements,
        [
            "ALTER TABLE \"public\".\"plain\" ADD CONSTRAINT \"plain_pkey\" PRIMARY KEY (id)",
            "ALTER TABLE \"public\".\"plain\" CLUSTER ON \"plain_pkey\""
        ]
    );
}
