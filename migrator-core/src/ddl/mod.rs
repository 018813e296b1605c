//! Pure functions from catalog structs to SQL text. No I/O: everything here is unit-tested.
//!
//! The schema is created in two steps around the initial copy:
//!
//! * [`early_statements`]: what data needs before it arrives — extensions, schemas, types,
//!   sequences, tables (partitioned parents before partitions) with defaults, identity and
//!   generated columns, NOT NULL and CHECK, then replica identities and, with
//!   [`Keys::WithTables`], primary keys (the apply worker finds rows through them; without one
//!   every UPDATE is a sequential scan).
//! * [`deferred_objects`]: with [`Keys::AfterCopy`] the primary keys nothing else needs sooner,
//!   secondary indexes, unique, exclusion and foreign key constraints, built after the table's
//!   copy (faster than maintaining them row by row). Foreign keys are added `NOT VALID` and
//!   then validated, so the long check takes a weaker lock.

pub mod objects;
pub mod quote;
pub mod roles;

use crate::catalog::model::*;
use quote::{ident, literal, qualified};

/// `CREATE DATABASE` with the source's encoding, locale provider and collation. `template0`, so
/// any encoding and locale can be chosen.
pub fn create_database(info: &DatabaseInfo, name: &str) -> String {
    let mut sql = format!(
        "CREATE DATABASE {} WITH TEMPLATE template0 ENCODING {}",
        ident(name),
        literal(&info.encoding)
    );
    let provider = match info.locale_provider.as_str() {
        "i" => "icu",
        "b" => "builtin",
        _ => "libc",
    };
    sql.push_str(&format!(
        " LOCALE_PROVIDER {provider} LC_COLLATE {} LC_CTYPE {}",
        literal(&info.collate),
        literal(&info.ctype)
    ));
    match (provider, &info.locale) {
        ("icu", Some(locale)) => sql.push_str(&format!(" ICU_LOCALE {}", literal(locale))),
        ("builtin", Some(locale)) => sql.push_str(&format!(" BUILTIN_LOCALE {}", literal(locale))),
        _ => {}
    }
    sql
}

/// `COMMENT ON DATABASE` carrying `marker`: how the tool recognises databases it created.
pub fn comment_on_database(name: &str, marker: &str) -> String {
    format!("COMMENT ON DATABASE {} IS {}", ident(name), literal(marker))
}

/// Sequence options; an identity column's sequence takes its type from the column (`AS` there
/// is an error), a standalone one states it.
fn sequence_options(o: &SequenceOptions, with_type: bool) -> String {
    let data_type = if with_type {
        format!("AS {} ", o.data_type)
    } else {
        String::new()
    };
    format!(
        "{data_type}INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}",
        o.increment,
        o.min,
        o.max,
        o.start,
        o.cache,
        if o.cycle { "CYCLE" } else { "NO CYCLE" }
    )
}

/// One column as in `CREATE TABLE` / `ADD COLUMN`: type, collation, identity, generated
/// expression, default, NOT NULL.
pub fn column_definition(c: &Column) -> String {
    let mut sql = format!("{} {}", ident(&c.name), c.data_type);
    if let Some(collation) = &c.collation {
        sql.push_str(&format!(" COLLATE {}", qualified(collation)));
    }
    sql.push_str(&column_options(c));
    sql
}

/// What a column has beyond its type and collation: identity, generated expression, default,
/// NOT NULL (each with a leading space).
fn column_options(c: &Column) -> String {
    let mut sql = String::new();
    if let Some((kind, seq, options)) = &c.identity {
        let kind = match kind {
            Identity::Always => "ALWAYS",
            Identity::ByDefault => "BY DEFAULT",
        };
        sql.push_str(&format!(
            " GENERATED {kind} AS IDENTITY (SEQUENCE NAME {} {})",
            qualified(seq),
            sequence_options(options, false)
        ));
    }
    if let Some(expr) = &c.generated {
        sql.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
    }
    if let Some(default) = c.default.as_ref().filter(|_| !c.default_calls_functions) {
        sql.push_str(&format!(" DEFAULT {default}"));
    }
    if c.not_null {
        sql.push_str(" NOT NULL");
    }
    sql
}

/// `CREATE TABLE`. A partition is created as a table of its own, with its columns in its own
/// order (which may differ from its parent's), and attached by [`attach_partition`], as
/// pg_dump does: `PARTITION OF` would give it its parent's order, and on PostgreSQL 18 its
/// parent's NOT NULL constraint names. A typed table is created `OF` its type, with its
/// columns' own options.
fn create_table(t: &Table) -> String {
    // A NOT VALID check is added after the copy (old rows may violate it); see
    // [`deferred_objects`].
    let checks = t
        .constraints
        .iter()
        .filter(|c| c.with_table())
        .map(|c| format!("CONSTRAINT {} {}", ident(&c.name), c.definition));
    let elements: Vec<String> = match &t.of_type {
        Some(_) => t
            .columns
            .iter()
            .filter(|c| !column_options(c).is_empty())
            .map(|c| format!("{} WITH OPTIONS{}", ident(&c.name), column_options(c)))
            .chain(checks)
            .collect(),
        None => t
            .columns
            .iter()
            .map(column_definition)
            .chain(checks)
            .collect(),
    };
    let mut sql = format!(
        "CREATE {}TABLE {}",
        if t.unlogged { "UNLOGGED " } else { "" },
        qualified(&t.name)
    );
    match &t.of_type {
        Some(of) => {
            sql.push_str(&format!(" OF {}", qualified(of)));
            if !elements.is_empty() {
                sql.push_str(&format!(" ({})", elements.join(", ")));
            }
        }
        None => sql.push_str(&format!(" ({})", elements.join(", "))),
    }
    if !t.inherits.is_empty() {
        let parents: Vec<String> = t.inherits.iter().map(qualified).collect();
        sql.push_str(&format!(" INHERITS ({})", parents.join(", ")));
    }
    if let Some(key) = &t.partition_key {
        sql.push_str(&format!(" PARTITION BY {key}"));
    }
    if let Some(method) = &t.access_method {
        sql.push_str(&format!(" USING {}", ident(method)));
    }
    sql
}

/// `ALTER TABLE ONLY parent ATTACH PARTITION` of a partition, once created.
fn attach_partition(t: &Table) -> Option<String> {
    t.partition_of.as_ref().map(|(parent, bound)| {
        format!(
            "ALTER TABLE ONLY {} ATTACH PARTITION {} {bound}",
            qualified(parent),
            qualified(&t.name)
        )
    })
}

/// Column compression, one statement per column, each its own object (`COMPRESSION
/// s.t.column`): a destination built without lz4 refuses it, and the operator can leave it
/// out (`schema_exclude`) while the table stays.
fn compression(t: &Table) -> Vec<Statement> {
    t.columns
        .iter()
        .filter_map(|c| {
            let method = c.compression.as_ref()?;
            Some(Statement::new(
                format!("COMPRESSION {}.{}.{}", t.name.schema, t.name.name, c.name),
                format!(
                    "ALTER TABLE {} ALTER COLUMN {} SET COMPRESSION {method}",
                    qualified(&t.name),
                    ident(&c.name)
                ),
            ))
        })
        .collect()
}

/// Storage parameters, statistics targets and column storage: `ALTER TABLE` statements after
/// the table's creation.
fn table_settings(t: &Table) -> Vec<String> {
    let mut sql = Vec::new();
    if !t.options.is_empty() {
        // `name=value` as pg_class.reloptions holds them; a TOAST table's carry `toast.`.
        let options: Vec<String> = t
            .options
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(name, value)| {
                let name = match name.split_once('.') {
                    Some((namespace, name)) => format!("{}.{}", ident(namespace), ident(name)),
                    None => ident(name),
                };
                format!("{name} = {}", literal(value))
            })
            .collect();
        sql.push(format!(
            "ALTER TABLE {} SET ({})",
            qualified(&t.name),
            options.join(", ")
        ));
    }
    let mut columns = Vec::new();
    for c in &t.columns {
        if let Some(target) = c.statistics {
            columns.push(format!(
                "ALTER COLUMN {} SET STATISTICS {target}",
                ident(&c.name)
            ));
        }
        if let Some(storage) = &c.storage {
            columns.push(format!(
                "ALTER COLUMN {} SET STORAGE {storage}",
                ident(&c.name)
            ));
        }
    }
    if !columns.is_empty() {
        sql.push(format!(
            "ALTER TABLE {} {}",
            qualified(&t.name),
            columns.join(", ")
        ));
    }
    sql
}

/// `ALTER TABLE ... CLUSTER ON` when `index` is the one the table is clustered on.
fn cluster_on(t: &Table, index: &str) -> Option<String> {
    (t.clustered_on.as_deref() == Some(index)).then(|| {
        format!(
            "ALTER TABLE {} CLUSTER ON {}",
            qualified(&t.name),
            ident(index)
        )
    })
}

/// Builds index `i` of table `t`: for a partitioned table's, the index on the table alone,
/// then each partition's index under its own name, attached to the one above it (as pg_dump
/// does; `CREATE INDEX` on the parent would name the partitions' indexes itself). Every
/// `CREATE INDEX` is `IF NOT EXISTS`, so that a build cut short is finished by running it
/// again.
fn index_statements(t: &Table, i: &Index) -> Vec<String> {
    let mut sql = vec![if_not_exists(&i.definition)];
    for p in &i.partitions {
        if !p.constraint {
            sql.push(if_not_exists(&p.definition));
        }
        sql.push(format!(
            "ALTER INDEX {} ATTACH PARTITION {}.{}",
            qualified(&p.parent),
            ident(&p.table.schema),
            ident(&p.name)
        ));
        sql.extend(
            p.comment
                .as_deref()
                .map(|text| comment_on_index(&p.table.schema, &p.name, text)),
        );
    }
    sql.extend(cluster_on(t, &i.name));
    sql.extend(index_comment(&t.name, i));
    sql
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS ...` of a `pg_get_indexdef` text.
fn if_not_exists(definition: &str) -> String {
    for prefix in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = definition.strip_prefix(prefix) {
            return format!("{prefix}IF NOT EXISTS {rest}");
        }
    }
    definition.to_owned()
}

/// `COMMENT ON CONSTRAINT` when the constraint has one, and `COMMENT ON INDEX` when the index
/// of a primary key, unique or exclusion constraint has one (it has the constraint's name).
fn constraint_comment(table: &QualifiedName, c: &Constraint) -> Vec<String> {
    let on_constraint = c.comment.as_ref().map(|text| {
        format!(
            "COMMENT ON CONSTRAINT {} ON {} IS {}",
            ident(&c.name),
            qualified(table),
            literal(text)
        )
    });
    let on_index = c
        .index_comment
        .as_deref()
        .map(|text| comment_on_index(&table.schema, &c.name, text));
    on_constraint.into_iter().chain(on_index).collect()
}

/// `COMMENT ON INDEX` when the index has one.
fn index_comment(table: &QualifiedName, i: &Index) -> Option<String> {
    i.comment
        .as_deref()
        .map(|text| comment_on_index(&table.schema, &i.name, text))
}

/// `COMMENT ON INDEX` of index `name` (an index lives in its table's schema).
fn comment_on_index(schema: &str, name: &str, text: &str) -> String {
    format!(
        "COMMENT ON INDEX {}.{} IS {}",
        ident(schema),
        ident(name),
        literal(text)
    )
}

fn add_constraint(table: &QualifiedName, c: &Constraint) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {}",
        qualified(table),
        ident(&c.name),
        c.definition
    )
}

/// One statement of a database's schema and the object it creates or alters, named as the
/// findings and the `schema_exclude` setting name it: a kind and the source's raw name
/// (`VIEW public.v`, `TABLE sales.orders`, `TRIGGER audit ON sales.orders`), routines by their
/// signature as `regprocedure` prints it (`ROUTINE public.f(integer)`). The owner, grants and
/// comment of an object carry its name too, so they stand or fall with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub object: String,
    pub sql: String,
    /// For a view's CREATE: a view with its columns and no dependencies, created first when the
    /// view is part of a dependency cycle; `sql` then runs as `CREATE OR REPLACE VIEW`.
    pub placeholder: Option<String>,
    /// A base type's shell (`CREATE TYPE name`), created before its input and output
    /// functions: what uses the type waits for its full definition, later.
    pub shell: bool,
}

impl Statement {
    pub fn new(object: impl Into<String>, sql: impl Into<String>) -> Self {
        Statement {
            object: object.into(),
            sql: sql.into(),
            placeholder: None,
            shell: false,
        }
    }

    /// `sql` once a placeholder of the same view exists.
    pub fn replacing(&self) -> String {
        match self.sql.strip_prefix("CREATE VIEW ") {
            Some(rest) if self.placeholder.is_some() => format!("CREATE OR REPLACE VIEW {rest}"),
            _ => self.sql.clone(),
        }
    }
}

/// Orders `statements` so that each object's creation (its first run of statements) comes after
/// the creation of every object it depends on, as the source's `pg_depend` says
/// (`dependencies`: pairs of dependent and referenced objects, named as [`Statement::object`]
/// names them), and keeps the given order (pg_dump-like groups) wherever that allows: a stable
/// topological sort. An object's later statements (owner, grants, a constraint added after the
/// functions) stay after its creation. The objects of a dependency cycle go together, in the
/// given order (`destination::create` breaks the cycle when that fails).
pub fn dependency_order(
    statements: Vec<Statement>,
    dependencies: &[(String, String)],
) -> Vec<Statement> {
    use std::collections::{BTreeSet, HashMap};
    let mut runs: Vec<Vec<Statement>> = Vec::new();
    for s in statements {
        match runs.last_mut() {
            Some(run) if run[0].object == s.object => run.push(s),
            _ => runs.push(vec![s]),
        }
    }
    // An object's first run creates it, but for a base type's shell: what uses the type waits
    // for the run that defines it.
    let mut creation: HashMap<&str, usize> = HashMap::new();
    let mut defining: HashMap<&str, usize> = HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        creation.entry(run[0].object.as_str()).or_insert(i);
        if !run[0].shell {
            defining.entry(run[0].object.as_str()).or_insert(i);
        }
    }
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (j, run) in runs.iter().enumerate() {
        let first = creation[run[0].object.as_str()];
        if first != j {
            edges.insert((first, j));
        }
    }
    for (dependent, referenced) in dependencies {
        let referenced = referenced.as_str();
        if let (Some(&j), Some(&i)) = (
            creation.get(dependent.as_str()),
            defining.get(referenced).or(creation.get(referenced)),
        ) && i != j
        {
            edges.insert((i, j));
        }
    }
    let order = stable_topological_order(runs.len(), &edges);
    let mut runs: Vec<Option<Vec<Statement>>> = runs.into_iter().map(Some).collect();
    order
        .into_iter()
        .flat_map(|i| runs[i].take().unwrap_or_default())
        .collect()
}

/// The nodes `0..n` in an order where every edge `(i, j)` has `i` first, as close to `0..n` as
/// that allows (of what may go next, the lowest number goes). The nodes of a cycle (a strongly
/// connected component) go together, in their numbered order, where the first of them may go.
fn stable_topological_order(
    n: usize,
    edges: &std::collections::BTreeSet<(usize, usize)>,
) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::{BTreeSet, BinaryHeap};
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(i, j) in edges {
        next[i].push(j);
        back[j].push(i);
    }
    // Kosaraju, without recursion: finishing order on the graph, then components on the
    // reversed graph in reverse finishing order.
    let mut finished = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((node, k)) = stack.pop() {
            if let Some(&to) = next[node].get(k) {
                stack.push((node, k + 1));
                if !seen[to] {
                    seen[to] = true;
                    stack.push((to, 0));
                }
            } else {
                finished.push(node);
            }
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut members: Vec<Vec<usize>> = Vec::new();
    for &start in finished.iter().rev() {
        if component[start] != usize::MAX {
            continue;
        }
        let c = members.len();
        members.push(Vec::new());
        component[start] = c;
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            members[c].push(node);
            for &from in &back[node] {
                if component[from] == usize::MAX {
                    component[from] = c;
                    stack.push(from);
                }
            }
        }
    }
    for m in &mut members {
        m.sort_unstable();
    }
    let mut between: BTreeSet<(usize, usize)> = BTreeSet::new();
    for &(i, j) in edges {
        if component[i] != component[j] {
            between.insert((component[i], component[j]));
        }
    }
    let mut waiting = vec![0usize; members.len()];
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for &(a, b) in &between {
        after[a].push(b);
        waiting[b] += 1;
    }
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..members.len())
        .filter(|&c| waiting[c] == 0)
        .map(|c| Reverse((members[c][0], c)))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, c))) = ready.pop() {
        order.extend(members[c].iter().copied());
        for &d in &after[c] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse((members[d][0], d)));
            }
        }
    }
    order
}

/// `KIND schema.name`: how a schema object is named in [`Statement::object`].
pub fn object_name(kind: &str, name: &QualifiedName) -> String {
    format!("{kind} {}.{}", name.schema, name.name)
}

/// The SQL of `statements`, in order.
pub fn sql_of(statements: Vec<Statement>) -> Vec<String> {
    statements.into_iter().map(|s| s.sql).collect()
}

/// Everything that must exist on the destination before any row arrives, in dependency order.
pub fn early_statements(catalog: &SchemaCatalog) -> Vec<String> {
    let mut sql = namespaces(catalog);
    sql.extend(types(catalog));
    sql.extend(tables(catalog, Keys::WithTables));
    sql.extend(after_functions(catalog));
    sql.extend(sequence_persistence(catalog));
    sql_of(sql)
}

/// The whole schema of a database in one list: [`early_statements`] with the
/// [`objects`] (text search and collations, functions, then what follows the tables) woven in
/// where they depend, then owners and grants.
/// Returns the roles that grants or owners name but the destination lacks (`present`).
pub fn schema_statements(
    catalog: &SchemaCatalog,
    objects: &crate::catalog::objects::ObjectCatalog,
    present: &std::collections::BTreeSet<String>,
    keys: Keys,
) -> (Vec<Statement>, std::collections::BTreeSet<String>) {
    let mut sql = namespaces(catalog);
    sql.extend(objects::text_search_and_collations(objects));
    sql.extend(types(catalog));
    // Base types as shells, their functions, then the types in full.
    sql.extend(
        objects
            .base_types
            .iter()
            // A shell type that stays one is its own statement, below.
            .filter(|t| t.sql.ends_with(')'))
            .map(|t| Statement {
                shell: true,
                ..Statement::new(&t.object, format!("CREATE TYPE {}", qualified(&t.name)))
            }),
    );
    sql.extend(objects::range_types(objects));
    sql.extend(objects::early_functions(objects));
    sql.extend(objects.languages.iter().map(objects::definition));
    sql.extend(objects.base_types.iter().map(objects::definition));
    sql.extend(objects::operators_and_casts(objects));
    sql.extend(objects.support.iter().map(objects::definition));
    sql.extend(tables(catalog, keys));
    sql.extend(sequence_persistence(catalog));
    sql.extend(objects::after_tables(objects));
    sql.extend(after_functions(catalog));
    let (privileges, missing) = objects::privilege_statements(objects, present);
    sql.extend(privileges);
    sql.extend(objects::event_triggers(objects));
    (sql, missing)
}

/// Column defaults and valid CHECK constraints that call user-defined functions, set once the
/// functions exist: a function may read the table (a `BEGIN ATOMIC` body is parsed when
/// created) or take its row type, and pg_dump breaks those cycles the same way.
fn after_functions(catalog: &SchemaCatalog) -> Vec<Statement> {
    let mut sql = Vec::new();
    for t in &catalog.tables {
        for c in t.columns.iter().filter(|c| c.default_calls_functions) {
            if let Some(default) = &c.default {
                sql.push(Statement::new(
                    object_name("TABLE", &t.name),
                    format!(
                        "ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT {default}",
                        qualified(&t.name),
                        ident(&c.name)
                    ),
                ));
            }
        }
        for c in t.constraints.iter().filter(|c| {
            c.kind == ConstraintKind::Check && c.calls_functions && !c.not_valid() && c.own()
        }) {
            let object = object_name("TABLE", &t.name);
            sql.push(Statement::new(&object, add_constraint(&t.name, c)));
            sql.extend(
                constraint_comment(&t.name, c)
                    .into_iter()
                    .map(|s| Statement::new(&object, s)),
            );
        }
    }
    sql
}

/// `ALTER SEQUENCE ... SET LOGGED | UNLOGGED` where the source's persistence must be said
/// (after the tables: identity sequences come with them).
fn sequence_persistence(catalog: &SchemaCatalog) -> Vec<Statement> {
    catalog
        .sequence_persistence
        .iter()
        .map(|(name, logged)| {
            Statement::new(
                object_name("SEQUENCE", name),
                format!(
                    "ALTER SEQUENCE {} SET {}",
                    qualified(name),
                    if *logged { "LOGGED" } else { "UNLOGGED" }
                ),
            )
        })
        .collect()
}

/// Schemas and extensions.
fn namespaces(catalog: &SchemaCatalog) -> Vec<Statement> {
    let mut sql = Vec::new();
    for schema in &catalog.schemas {
        sql.push(Statement::new(
            format!("SCHEMA {schema}"),
            format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)),
        ));
    }
    for ext in &catalog.extensions {
        sql.push(Statement::new(
            format!("EXTENSION {}", ext.name),
            format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
                ident(&ext.name),
                ident(&ext.schema)
            ),
        ));
    }
    sql
}

/// Enums, domains, composite types and sequences.
fn types(catalog: &SchemaCatalog) -> Vec<Statement> {
    let mut sql = Vec::new();
    for e in &catalog.enums {
        let labels: Vec<String> = e.labels.iter().map(|l| literal(l)).collect();
        sql.push(Statement::new(
            object_name("TYPE", &e.name),
            format!(
                "CREATE TYPE {} AS ENUM ({})",
                qualified(&e.name),
                labels.join(", ")
            ),
        ));
    }
    for t in &catalog.types {
        let object = match t {
            UserType::Domain { name, .. } => object_name("DOMAIN", name),
            UserType::Composite { name, .. } => object_name("TYPE", name),
        };
        let last = match t {
            UserType::Domain {
                name,
                base_type,
                not_null,
                default,
                checks,
            } => {
                let mut s = format!("CREATE DOMAIN {} AS {base_type}", qualified(name));
                if let Some(d) = default {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                if *not_null {
                    s.push_str(" NOT NULL");
                }
                // A constraint added NOT VALID (rows from before it may violate it) cannot be
                // written in CREATE DOMAIN: it follows as ALTER DOMAIN, NOT VALID as well.
                let (valid, not_valid): (Vec<_>, Vec<_>) = checks
                    .iter()
                    .partition(|(_, def)| !def.ends_with(" NOT VALID"));
                for (check_name, def) in valid {
                    s.push_str(&format!(" CONSTRAINT {} {def}", ident(check_name)));
                }
                for (check_name, def) in not_valid {
                    sql.push(Statement::new(&object, std::mem::take(&mut s)));
                    s = format!(
                        "ALTER DOMAIN {} ADD CONSTRAINT {} {def}",
                        qualified(name),
                        ident(check_name)
                    );
                }
                s
            }
            UserType::Composite { name, attributes } => {
                let attrs: Vec<String> = attributes
                    .iter()
                    .map(|(n, ty)| format!("{} {ty}", ident(n)))
                    .collect();
                format!("CREATE TYPE {} AS ({})", qualified(name), attrs.join(", "))
            }
        };
        sql.push(Statement::new(object, last));
    }
    for s in &catalog.sequences {
        sql.push(Statement::new(
            object_name("SEQUENCE", &s.name),
            format!(
                "CREATE SEQUENCE {} {}",
                qualified(&s.name),
                sequence_options(&s.options, true)
            ),
        ));
    }
    sql
}

/// Tables added later (drift re-sync): their sequences, then the table statements for them.
pub fn added_tables(catalog: &SchemaCatalog) -> Vec<String> {
    let mut sql = types(catalog);
    // The subscription copies them (`copy_data`), and applies changes to each from then on.
    sql.extend(tables(catalog, Keys::WithTables));
    sql.extend(after_functions(catalog));
    sql_of(sql)
}

/// When a table's primary key is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// With the table, before any row: the subscription's own copy (`copy_data`) applies the
    /// changes of each table as soon as that table is synchronised, and needs the key then.
    WithTables,
    /// After the tool's copy, with the other indexes ([`deferred_objects`]), where nothing
    /// needs it sooner (see [`key_after_copy`]): one sorted build instead of an index
    /// maintained row by row. The subscription is enabled only once every key is built.
    AfterCopy,
}

/// Whether the primary key `c` of `t` may be built after the copy: an index is built faster in
/// one sort than row by row, but the replica identity index chosen by name
/// (`REPLICA IDENTITY USING INDEX`), a key something else depends on (a view grouping by it, a
/// rule naming it), and an unlogged table's (never copied) are created with the table.
pub fn key_after_copy(t: &Table, c: &Constraint) -> bool {
    c.kind == ConstraintKind::PrimaryKey
        && c.own()
        && !c.replica_identity
        && !c.depended_on
        && !t.unlogged
}

/// Tables, primary keys, replica identities, sequence ownership.
fn tables(catalog: &SchemaCatalog, keys: Keys) -> Vec<Statement> {
    let mut sql = Vec::new();
    let table = |t: &Table| object_name("TABLE", &t.name);
    for t in &catalog.tables {
        sql.push(Statement::new(table(t), create_table(t)));
        sql.extend(
            attach_partition(t)
                .into_iter()
                .chain(table_settings(t))
                .chain(
                    t.constraints
                        .iter()
                        .filter(|c| c.with_table() && c.own())
                        .flat_map(|c| constraint_comment(&t.name, c)),
                )
                .map(|s| Statement::new(table(t), s)),
        );
        sql.extend(compression(t));
    }
    for t in &catalog.tables {
        for c in t.constraints.iter().filter(|c| c.own()) {
            // An unlogged table stays empty: everything now.
            let early = (c.kind == ConstraintKind::PrimaryKey
                && !(keys == Keys::AfterCopy && key_after_copy(t, c)))
                || (c.replica_identity && c.kind != ConstraintKind::ForeignKey)
                || (t.unlogged && (c.kind != ConstraintKind::Check || c.not_valid()));
            if early {
                sql.push(Statement::new(table(t), add_constraint(&t.name, c)));
                sql.extend(
                    cluster_on(t, &c.name)
                        .into_iter()
                        .chain(constraint_comment(&t.name, c))
                        .map(|s| Statement::new(table(t), s)),
                );
            }
        }
        for i in t
            .indexes
            .iter()
            .filter(|i| i.replica_identity || t.unlogged)
        {
            sql.extend(
                index_statements(t, i)
                    .into_iter()
                    .map(|s| Statement::new(table(t), s)),
            );
        }
    }
    for t in &catalog.tables {
        let identity = match t.replica_identity {
            'f' => Some("FULL".to_owned()),
            'n' => Some("NOTHING".to_owned()),
            'i' => t
                .indexes
                .iter()
                .find(|i| i.replica_identity)
                .map(|i| i.name.clone())
                .or_else(|| {
                    t.constraints
                        .iter()
                        .find(|c| c.replica_identity)
                        .map(|c| c.name.clone())
                })
                .map(|index| format!("USING INDEX {}", ident(&index))),
            _ => None,
        };
        if let Some(identity) = identity {
            sql.push(Statement::new(
                table(t),
                format!(
                    "ALTER TABLE {} REPLICA IDENTITY {identity}",
                    qualified(&t.name)
                ),
            ));
        }
    }
    for s in &catalog.sequences {
        if let Some((table, column)) = &s.owned_by {
            // It stands or falls with its table.
            sql.push(Statement::new(
                object_name("TABLE", table),
                format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    qualified(&s.name),
                    qualified(table),
                    ident(column)
                ),
            ));
        }
    }
    sql
}

/// What kind of object is built after the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferredKind {
    /// A primary key built after the copy ([`Keys::AfterCopy`]); found on the destination by
    /// table and name.
    PrimaryKey,
    /// An index; found on the destination by schema and name.
    Index,
    /// A unique or exclusion constraint; found on the destination by table and name.
    Constraint,
    /// A foreign key: built after every unique constraint it may reference.
    ForeignKey,
}

/// One object built after its table's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredObject {
    pub table: QualifiedName,
    pub name: String,
    pub kind: DeferredKind,
    /// Statements that build it, in order.
    pub statements: Vec<String>,
    /// NOT VALID on the source, and so on the destination: a foreign key or an index that
    /// exists counts as built (the others count once validated).
    pub not_valid: bool,
    /// Built once every index and unique or exclusion constraint is: a foreign key (it needs
    /// the unique constraint it references), or a partitioned index that attaches a
    /// partition's constraint's index.
    pub after_constraints: bool,
}

impl DeferredObject {
    /// It is built on the destination whose indexes and constraints are `existing`.
    pub fn exists_in(&self, existing: &crate::catalog::deferred::Existing) -> bool {
        match self.kind {
            // A partitioned index is valid once every partition's index is attached to it.
            DeferredKind::Index if self.not_valid => {
                existing.has_index(&self.table.schema, &self.name)
            }
            DeferredKind::Index => existing.has_valid_index(&self.table.schema, &self.name),
            DeferredKind::PrimaryKey | DeferredKind::Constraint => {
                existing.has_constraint(&self.table, &self.name)
            }
            DeferredKind::ForeignKey if self.not_valid => {
                existing.has_constraint(&self.table, &self.name)
            }
            DeferredKind::ForeignKey => existing.has_validated_constraint(&self.table, &self.name),
        }
    }
}

/// Secondary indexes, unique/exclusion constraints (unless the replica identity needed them
/// early), partitioned indexes that attach a partition's constraint's index, then foreign keys
/// (which need the referenced unique constraints).
pub fn deferred_objects(catalog: &SchemaCatalog) -> Vec<DeferredObject> {
    let mut objects = Vec::new();
    let mut late = Vec::new();
    let mut foreign_keys = Vec::new();
    for t in catalog.tables.iter().filter(|t| !t.unlogged) {
        // The key before the table's other indexes (with [`Keys::WithTables`] it exists
        // already, and counts as built).
        for c in t.constraints.iter().filter(|c| key_after_copy(t, c)) {
            objects.push(DeferredObject {
                table: t.name.clone(),
                name: c.name.clone(),
                kind: DeferredKind::PrimaryKey,
                statements: std::iter::once(add_constraint(&t.name, c))
                    .chain(cluster_on(t, &c.name))
                    .chain(constraint_comment(&t.name, c))
                    .collect(),
                not_valid: false,
                after_constraints: false,
            });
        }
        for i in t.indexes.iter().filter(|i| !i.replica_identity) {
            let object = DeferredObject {
                table: t.name.clone(),
                name: i.name.clone(),
                kind: DeferredKind::Index,
                statements: index_statements(t, i),
                not_valid: i.invalid,
                // It attaches indexes that partitions' constraints create.
                after_constraints: i.partitions.iter().any(|p| p.constraint),
            };
            if object.after_constraints {
                late.push(object);
            } else {
                objects.push(object);
            }
        }
        for c in t.constraints.iter().filter(|c| c.own()) {
            let statements = match c.kind {
                ConstraintKind::Unique | ConstraintKind::Exclusion if !c.replica_identity => {
                    std::iter::once(add_constraint(&t.name, c))
                        .chain(cluster_on(t, &c.name))
                        .collect()
                }
                // Rows the source kept from before the constraint may violate it: added after
                // the copy, NOT VALID as on the source.
                ConstraintKind::Check if c.not_valid() => vec![add_constraint(&t.name, c)],
                ConstraintKind::ForeignKey => {
                    let mut steps = Vec::new();
                    if c.not_valid() {
                        steps.push(add_constraint(&t.name, c));
                    } else {
                        steps.push(format!("{} NOT VALID", add_constraint(&t.name, c)));
                        steps.push(format!(
                            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                            qualified(&t.name),
                            ident(&c.name)
                        ));
                    }
                    steps
                }
                _ => continue,
            };
            let statements = statements
                .into_iter()
                .chain(constraint_comment(&t.name, c))
                .collect();
            let object = DeferredObject {
                table: t.name.clone(),
                name: c.name.clone(),
                kind: if c.kind == ConstraintKind::ForeignKey {
                    DeferredKind::ForeignKey
                } else {
                    DeferredKind::Constraint
                },
                statements,
                not_valid: c.not_valid(),
                after_constraints: c.kind == ConstraintKind::ForeignKey,
            };
            if c.kind == ConstraintKind::ForeignKey {
                foreign_keys.push(object);
            } else {
                objects.push(object);
            }
        }
    }
    objects.extend(late);
    objects.extend(foreign_keys);
    objects
}

#[cfg(test)]
pub(crate) mod tests;
