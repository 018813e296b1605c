//! Plain structs describing a source database's schema. Built by [`super::schema::read`], turned
//! into SQL one layer up, by `ddl`. Names are raw (unquoted); expressions and definitions are the
//! server's own deparsed text, produced with an empty `search_path` so every name in them is
//! schema-qualified and quoted as needed.

/// A schema-qualified object name, unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Everything the schema phase recreates on the destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaCatalog {
    pub database: DatabaseInfo,
    pub extensions: Vec<Extension>,
    pub schemas: Vec<String>,
    pub enums: Vec<EnumType>,
    /// Domains and composite types, in creation (oid) order so dependencies come first.
    pub types: Vec<UserType>,
    pub sequences: Vec<Sequence>,
    /// Tables with every parent before its partitions.
    pub tables: Vec<Table>,
    /// Sequences whose persistence the destination must be told (`true`: logged): every
    /// unlogged sequence, and every sequence of an unlogged table (created unlogged with it
    /// unless said otherwise). Since PostgreSQL 15 the two may differ.
    pub sequence_persistence: Vec<(QualifiedName, bool)>,
}

impl SchemaCatalog {
    /// The table whose subscription state governs `table`: its topmost partitioned ancestor
    /// (with publish_via_partition_root the subscription knows only roots).
    pub fn root_of(&self, table: &QualifiedName) -> QualifiedName {
        let mut current = table.clone();
        while let Some((parent, _)) = self
            .tables
            .iter()
            .find(|t| t.name == current)
            .and_then(|t| t.partition_of.as_ref())
        {
            current = parent.clone();
        }
        current
    }
}

/// How the source database was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub name: String,
    pub encoding: String,
    /// `c` (libc), `i` (ICU) or `b` (builtin).
    pub locale_provider: String,
    pub collate: String,
    pub ctype: String,
    /// ICU or builtin locale, when the provider is not libc.
    pub locale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub schema: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumType {
    pub name: QualifiedName,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserType {
    Domain {
        name: QualifiedName,
        /// `format_type` of the base type.
        base_type: String,
        not_null: bool,
        default: Option<String>,
        /// `(constraint name, pg_get_constraintdef)`.
        checks: Vec<(String, String)>,
    },
    Composite {
        name: QualifiedName,
        /// `(attribute name, format_type)`.
        attributes: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceOptions {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
}

/// A sequence that is not an identity column's (those come with their column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub name: QualifiedName,
    pub options: SequenceOptions,
    /// `OWNED BY` table and column (serial columns).
    pub owned_by: Option<(QualifiedName, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Always,
    ByDefault,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type` output.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// Identity column with its sequence's name and options.
    pub identity: Option<(Identity, QualifiedName, SequenceOptions)>,
    /// Stored generated column expression.
    pub generated: Option<String>,
    /// Explicit collation differing from the type's.
    pub collation: Option<QualifiedName>,
    /// `SET STATISTICS` target, when set.
    pub statistics: Option<i16>,
    /// `SET STORAGE` (`PLAIN`, `EXTERNAL`, `EXTENDED`, `MAIN`), when it differs from the type's.
    pub storage: Option<String>,
    /// `SET COMPRESSION` (`pglz`, `lz4`), when set.
    pub compression: Option<String>,
    /// Its default calls a user-defined function: set after the functions (see
    /// `ddl::after_functions`).
    pub default_calls_functions: bool,
    /// A partition's column that comes from its parent (a partition is created with all its
    /// columns, in its own order, then attached; only its parent's column can change).
    pub inherited: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Check,
    PrimaryKey,
    Unique,
    ForeignKey,
    Exclusion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef` output.
    pub definition: String,
    /// Its index is the table's replica identity index, so it must exist before data.
    pub replica_identity: bool,
    /// `COMMENT ON CONSTRAINT`.
    pub comment: Option<String>,
    /// `COMMENT ON INDEX` of a primary key's, unique or exclusion constraint's index.
    pub index_comment: Option<String>,
    /// Its expression calls a user-defined function.
    pub calls_functions: bool,
    /// A partition's CHECK that comes from its parent: written in the partition's CREATE TABLE
    /// (ATTACH PARTITION requires it there), never added on its own.
    pub inherited: bool,
    /// Something other than a permanent table's foreign key depends on it or on its index (a
    /// view grouping by the key, a rule naming it in ON CONFLICT, an unlogged table's foreign
    /// key): it must exist before that object is created.
    pub depended_on: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    /// `pg_get_indexdef` output (`ON ONLY` for a partitioned table's).
    pub definition: String,
    /// The table's replica identity index: built before data.
    pub replica_identity: bool,
    /// `COMMENT ON INDEX`.
    pub comment: Option<String>,
    /// Not valid on the source (a partitioned index some partition's index is not attached to,
    /// or a failed `CREATE INDEX CONCURRENTLY`): the destination's counts as built even so.
    pub invalid: bool,
    /// A partitioned table's index: the partitions' indexes attached to it, at every level,
    /// each after the index it is attached to.
    pub partitions: Vec<PartitionIndex>,
}

/// A partition's index attached to its parent's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionIndex {
    /// The partition.
    pub table: QualifiedName,
    pub name: String,
    /// `pg_get_indexdef` output.
    pub definition: String,
    /// The index it is attached to, in its table's schema.
    pub parent: QualifiedName,
    pub comment: Option<String>,
    /// It backs a constraint of the partition: the constraint creates it, the parent's index
    /// only attaches it (so that index is built after the constraints).
    pub constraint: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: QualifiedName,
    /// `pg_get_partkeydef` when partitioned.
    pub partition_key: Option<String>,
    /// Parent and bound (`FOR VALUES ...` / `DEFAULT`) when a partition.
    pub partition_of: Option<(QualifiedName, String)>,
    /// Local columns; a partition's every column, in its own order (see [`Column::inherited`]).
    pub columns: Vec<Column>,
    /// Local constraints (inherited ones come with the parent), and a partition's inherited
    /// CHECKs (see [`Constraint::inherited`]).
    pub constraints: Vec<Constraint>,
    /// Indexes not backing a constraint, and not attached to a partitioned parent's index
    /// (those are in its [`Index::partitions`]).
    pub indexes: Vec<Index>,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: char,
    /// Parents of a table created with INHERITS (not partitions), in order.
    pub inherits: Vec<QualifiedName>,
    /// The composite type of a typed table (`CREATE TABLE ... OF type`): its columns are the
    /// type's.
    pub of_type: Option<QualifiedName>,
    /// The index `CLUSTER` uses (`ALTER TABLE ... CLUSTER ON`), by name.
    pub clustered_on: Option<String>,
    /// Its table access method when not `heap` (`CREATE TABLE ... USING`).
    pub access_method: Option<String>,
    /// UNLOGGED: created with every index and constraint (no rows ever arrive: logical
    /// replication does not carry them).
    pub unlogged: bool,
    /// Storage parameters as `pg_class.reloptions` holds them (`fillfactor=70`), the TOAST
    /// table's with a `toast.` prefix.
    pub options: Vec<String>,
}

impl Constraint {
    /// Added `NOT VALID` on the source (rows from before it may violate it), and kept so.
    pub fn not_valid(&self) -> bool {
        self.definition.ends_with(" NOT VALID")
    }

    /// A CHECK created with its table: valid, and calling no user-defined function (such a
    /// function may take the table's own row type, so it comes after the table, and the check
    /// after it).
    pub fn with_table(&self) -> bool {
        self.kind == ConstraintKind::Check && !self.not_valid() && !self.calls_functions
    }

    /// Created by the tool on its own: not a partition's inherited CHECK (the parent's brings
    /// it).
    pub fn own(&self) -> bool {
        !self.inherited
    }
}
