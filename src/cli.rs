//! Command-line interface: what each subcommand is for, in `--help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Moves production PostgreSQL 15+ instances onto PostgreSQL 18+ without downtime, using
/// PostgreSQL's own logical replication, and shows in a browser when each is safe to cut over.
#[derive(Debug, Parser)]
#[command(name = "postgres-migrator", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file laid over the built-in defaults; environment variables
    /// MIGRATOR__SECTION__KEY are laid over both. Default: config/default.toml if present.
    #[arg(long, global = true, env = "MIGRATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stdout (overrides log.format).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every configured mapping until cutover ready, serving the dashboard, API and metrics.
    Run,
    /// Start a local PostgreSQL 15 and 18 cluster with sample data and migrate it, with the
    /// dashboard: a real migration from one command. Needs scripts/install-postgres.sh.
    /// At cutover ready it stops the write load and waits for you to press "Mark complete" on
    /// the dashboard, then proves every table equal; Ctrl-C ends it and removes the clusters.
    Demo {
        /// Mark complete by itself at cutover ready, verify, and exit (for scripts).
        #[arg(long)]
        complete: bool,
    },
    /// Print the effective configuration (defaults, file and environment merged) with every
    /// secret shown as ***; exits 2 listing every problem when it is invalid.
    Config,
    /// Run the preflight checks of every mapping and print the findings; exits 3 when any
    /// finding blocks the migration.
    Check {
        /// Instead: compare every database's schema on both sides, object by object (tables,
        /// columns, indexes, constraints, routines, views, triggers, policies, types,
        /// statistics, rules, event triggers, publications, servers, owners and privileges),
        /// print every difference, and exit 4 when there is one. Best run at cutover ready.
        #[arg(long)]
        schema: bool,
        /// Only this mapping (with --schema).
        #[arg(long, requires = "schema")]
        mapping: Option<String>,
    },
    /// Look at the databases once and print each mapping's databases, phase, lag and findings.
    Status {
        /// Print the status snapshot as JSON (the same document as GET /api/status).
        #[arg(long)]
        json: bool,
    },
    /// Print the step-by-step cutover instructions for a mapping.
    Instructions {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
    },
    /// Mark a mapping complete after cutover: final sequence sync, then drop the replication
    /// slots and publications on the source and detach the subscriptions on the destination.
    Complete {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
        /// Complete even though the mapping is not cutover ready (changes not yet replicated
        /// are lost to the destination).
        #[arg(long)]
        force: bool,
    },
    /// Prove the data arrived: compare every table of every database on both sides, in key
    /// ranges (row count and an order-independent hash of the rows, computed by each server),
    /// and print what differs with a query to look at it. Only reads; runs beside `run`.
    /// Without --exact (writes running) a range that differs is read again once the destination
    /// has applied past where the source was read. Exits 0 when every table is equal, 4 when a
    /// difference is found, 5 when no difference is found but some rows kept changing (online),
    /// 1 when something could not be compared.
    Verify {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
        /// Only this database of the source.
        #[arg(long, value_name = "DATABASE")]
        database: Option<String>,
        /// Only this table: schema.table (or table), unquoted.
        #[arg(long, value_name = "TABLE")]
        table: Option<String>,
        /// Compare every range once, exactly: for after writes to the source stopped (waits
        /// until the destination has caught up first).
        #[arg(long)]
        exact: bool,
    },
    /// Resolve the safe part of a mapping's schema drift: create tables, add columns and create
    /// other objects (views, functions, types, ...) that were added on the source (tables are
    /// then copied by the subscription). Dropped and changed objects and type changes are listed
    /// with the statements for you to run.
    Resync {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
    },
    /// Backups of a mapping's databases (pg_dump --format=directory into backup.dir): create,
    /// list, restore, delete.
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Start one database of a mapping over: drop its subscription (and its slot on the
    /// source), then empty its tables on the destination (or drop the database with --drop);
    /// the next `run` copies it again. Only for a database the tool created that is not
    /// completed and has no other sessions on it; exits 3 with the reason otherwise.
    Purge {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
        /// The database to start over.
        #[arg(long)]
        database: String,
        /// Empty only these tables (schema.table, comma-separated); every table is copied
        /// again either way.
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Drop the database on the destination instead of emptying it (the schema step
        /// creates it again).
        #[arg(long, conflicts_with = "tables")]
        drop: bool,
    },
}

/// What `backup` does.
#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Dump every database of a mapping's side (or one), and its roles, into a new backup;
    /// prints its key. Ctrl-C kills pg_dump and removes the unfinished backup.
    Create {
        /// The mapping's name, as in [mappings.NAME].
        mapping: String,
        /// Which server.
        #[arg(long, value_enum, default_value = "source")]
        side: SideArg,
        /// Only this database.
        #[arg(long)]
        database: Option<String>,
    },
    /// The backups in backup.dir, newest first; unfinished ones apart (never restorable).
    List {
        /// The list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup (every file's checksum checked first) into databases it creates.
    Restore {
        /// The backup's key, as `backup list` shows it.
        key: String,
        /// `source`, `destination` (of the backup's mapping) or a connection URL.
        #[arg(long)]
        to: String,
        /// Only this database of the backup.
        #[arg(long)]
        database: Option<String>,
        /// Its name on the target (with one database).
        #[arg(long = "as", value_name = "NEWNAME")]
        as_name: Option<String>,
        /// Drop a database of that name first, ending its sessions (says how many).
        #[arg(long)]
        clean: bool,
        /// Leave out ownership and privileges (for a server without the backup's roles).
        #[arg(long)]
        no_owner: bool,
    },
    /// Delete a backup and every file in it.
    Delete {
        /// The backup's key, as `backup list` shows it.
        key: String,
    },
}

/// A mapping's server.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SideArg {
    Source,
    Destination,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
