//! Proof that nothing was lost: every table compared on both sides, range by range.
//!
//! Each range's row count and order-independent row-hash sum are computed by each server
//! ([`plan`]); only those two numbers travel, so memory stays bounded on both servers and here
//! whatever the size of a table. Ranges are read `parallel` at a time per database, each in a
//! `REPEATABLE READ READ ONLY` transaction, the source's reads paid for in the mapping's rate
//! limiter (the copy's).
//!
//! Writes may be running (online mode): a range whose two sides differ is read again as
//! source -> destination (once it has applied past the source's WAL position of that read) ->
//! source. The destination then holds the source's state at some position between the two
//! source reads; if the source held still in between and the destination still differs, rows
//! were lost or changed ([`plan::judge`]). A range that changed on the source is read again, up
//! to `rechecks` times; a range that differs is then looked at row by row (keys and row hashes,
//! bounded by the range size), and each differing row is settled the same way. Rows that kept
//! changing are reported as not settled, never as differences. Exact mode (writes stopped, lag
//! drained) is the same with no re-check.

pub mod plan;
pub mod report;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::catalog::model::QualifiedName;
use crate::config::ResolvedConnection;
use crate::limiter::RateLimiter;
use crate::naming::ReplicationNames;
use crate::pg::{self, PgError, Session, q};
use crate::status::{RangeReport, VerifyDatabase, VerifyMode, VerifyTable};
use plan::{Digest, Rows, Table, Verdict};

/// Session settings that make every value print the same way on both servers (and on any
/// version): `search_path` empty so type names and `regclass` values come out qualified.
pub const SESSION: &str = "SET search_path = ''; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; \
     SET lc_monetary = 'C'; SET xmloption = 'content'; SET statement_timeout = 0; \
     SET application_name = 'postgres-migrator verify'";

/// Differing rows listed per range at most.
const LISTED_ROWS: usize = 20;
/// Rows of one range listed with their keys and hashes (tens of MB here) at most.
const MAX_ROWS_LOOKED_AT: i64 = 2_000_000;
/// Differing rows settled one by one per range at most; beyond, the range is reported whole.
const SETTLED_ROWS: usize = 1_000;
/// Pauses before the next tries of a range after an error that may pass.
const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];
/// How long a re-check waits for the destination to apply past a source position.
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// What to compare.
#[derive(Debug, Clone)]
pub struct Request {
    pub mode: VerifyMode,
    /// Only this database.
    pub database: Option<String>,
    /// Only this table: `schema.table` or `table` (unquoted names).
    pub table: Option<String>,
}

/// How to compare.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub parallel: usize,
    pub chunk_bytes: u64,
    pub rechecks: u32,
}

/// The two servers of one database and what the comparison shares with the copy.
pub struct Sides<'a> {
    pub source: &'a ResolvedConnection,
    pub destination: &'a ResolvedConnection,
    pub database: &'a str,
    pub limiter: &'a RateLimiter,
    /// The database's replication, when it is running: re-checks wait for it to apply.
    pub replication: Option<ReplicationNames>,
}

/// Whether table `t` is the one `only` names (`schema.table` or `table`).
fn selected(t: &QualifiedName, only: Option<&str>) -> bool {
    match only {
        None => true,
        Some(only) => only == t.name || only == format!("{}.{}", t.schema, t.name),
    }
}

async fn connect(conn: &ResolvedConnection, db: &str) -> Result<Session, PgError> {
    let session = pg::session(conn, db).await?;
    session
        .batch_execute(SESSION)
        .await
        .map_err(q(session.target(), "setting up a verification session"))?;
    Ok(session)
}

/// Every table of the source database: columns, key and size. Unlogged tables come back in the
/// second list (logical replication does not carry their rows).
async fn source_tables(src: &Session) -> Result<(Vec<Table>, Vec<QualifiedName>), PgError> {
    let rows = src
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relpersistence = 'u', \
                    pg_table_size(c.oid)::bigint, c.reltuples::float8, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid \
                          AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n ORDER BY k.o), \
                    ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey::int2[]) \
                          WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN LATERAL ( \
                 SELECT x.indkey FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid \
                 JOIN pg_am am ON am.oid = ic.relam \
                 WHERE x.indrelid = c.oid AND (x.indisprimary OR x.indisreplident) \
                   AND x.indisvalid AND x.indexprs IS NULL AND x.indpred IS NULL \
                   AND am.amname = 'btree' AND NOT (0 = ANY (x.indkey::int2[])) \
                 ORDER BY x.indisprimary DESC LIMIT 1) i ON true \
             WHERE c.relkind = 'r' AND c.relpersistence IN ('p', 'u') \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(src.target(), "listing the tables to verify"))?;
    let mut tables = Vec::new();
    let mut unlogged = Vec::new();
    for r in rows {
        let name = QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        if r.get::<_, bool>(2) {
            unlogged.push(name);
            continue;
        }
        let names: Vec<String> = r.get(6);
        let types: Vec<String> = r.get(7);
        tables.push(Table {
            name,
            bytes: r.get::<_, i64>(3).max(0) as u64,
            tuples: r.get(4),
            range_bytes: 0,
            columns: r.get(5),
            key: names
                .into_iter()
                .zip(types)
                .map(|(name, type_sql)| plan::KeyColumn { name, type_sql })
                .collect(),
        });
    }
    Ok((tables, unlogged))
}

/// The destination's tables and their columns.
async fn destination_columns(
    dst: &Session,
) -> Result<HashMap<QualifiedName, Vec<String>>, PgError> {
    Ok(dst
        .query(
            "SELECT n.nspname::text, c.relname::text, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid \
                          AND a.attnum > 0 AND NOT a.attisdropped) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(q(dst.target(), "listing the destination's tables"))?
        .iter()
        .map(|r| {
            (
                QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                r.get(2),
            )
        })
        .collect())
}

/// The ranges of `table`: boundaries from a sample of the source's keys.
async fn plan_ranges(src: &Session, table: &Table, chunk: u64) -> Result<Vec<Rows>, PgError> {
    let count = plan::range_count(table.bytes, chunk);
    if table.key.is_empty() || count < 2 {
        return Ok(vec![Rows::All]);
    }
    let wanted = plan::sample_size(count);
    let mut percent = plan::sample_percent(wanted, table.tuples, table.bytes);
    let mut sample: Vec<Vec<String>> = Vec::new();
    // A block sample may come back short (few blocks, stale reltuples): ask for more, up to
    // the whole table, until it holds a key per range at least.
    for _ in 0..4 {
        sample = src
            .query(&plan::sample_sql(table), &[&percent])
            .await
            .map_err(q(src.target(), "sampling a table's keys"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if sample.len() >= wanted / 2 || percent >= 100.0 {
            break;
        }
        percent = (percent * 8.0).min(100.0);
    }
    Ok(plan::ranges(plan::boundaries(&sample, count)))
}

fn params(values: &[String]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// Runs `read` in a `REPEATABLE READ READ ONLY` transaction; with `lsn`, the source's WAL
/// insert position is read first (the transaction's snapshot holds nothing committed after it).
async fn in_snapshot<T>(
    session: &Session,
    lsn: bool,
    read: impl AsyncFnOnce(&Session) -> Result<T, tokio_postgres::Error>,
) -> Result<(Option<String>, T), PgError> {
    let st = session.target();
    session
        .batch_execute("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(q(st, "starting a verification snapshot"))?;
    let result = async {
        let position = if lsn {
            Some(
                session
                    .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
                    .await?
                    .get::<_, String>(0),
            )
        } else {
            None
        };
        Ok::<_, tokio_postgres::Error>((position, read(session).await?))
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = session.batch_execute(end).await;
    let out = result.map_err(q(st, "reading rows to compare"))?;
    ended.map_err(q(st, "ending a verification snapshot"))?;
    Ok(out)
}

async fn digest(
    session: &Session,
    table: &Table,
    rows: &Rows,
    lsn: bool,
) -> Result<(Option<String>, Digest), PgError> {
    let (sql, values) = plan::digest_sql(table, rows);
    in_snapshot(session, lsn, async |s: &Session| {
        let row = s.query_one(&sql, &params(&values)).await?;
        Ok(Digest {
            rows: row.get(0),
            sum: row.get(1),
        })
    })
    .await
}

async fn row_hashes(
    session: &Session,
    table: &Table,
    rows: &Rows,
) -> Result<HashMap<Vec<String>, i64>, PgError> {
    let (sql, values) = plan::rows_sql(table, rows);
    let (_, map) = in_snapshot(session, false, async |s: &Session| {
        Ok(s.query(&sql, &params(&values))
            .await?
            .iter()
            .map(|r| (r.get::<_, Vec<String>>(0), r.get::<_, i64>(1)))
            .collect::<HashMap<_, _>>())
    })
    .await?;
    Ok(map)
}

/// One worker's two sessions.
struct Pair {
    src: Session,
    dst: Session,
}

/// How one set of rows compared.
enum Settled {
    Equal { lsn: Option<String>, rows: i64 },
    Differs { source: Digest, destination: Digest },
    Unsettled { source: Digest, destination: Digest },
}

/// The verification of one database, `progress` called with its state after every range.
pub struct Job<'a> {
    sides: Sides<'a>,
    request: Request,
    settings: Settings,
}

impl<'a> Job<'a> {
    pub fn new(sides: Sides<'a>, request: Request, settings: Settings) -> Self {
        Job {
            sides,
            request,
            settings,
        }
    }

    fn rechecks(&self) -> u32 {
        match self.request.mode {
            VerifyMode::Online => self.settings.rechecks,
            VerifyMode::Exact => 0,
        }
    }

    async fn pair(&self) -> Result<Pair, PgError> {
        Ok(Pair {
            src: connect(self.sides.source, self.sides.database).await?,
            dst: connect(self.sides.destination, self.sides.database).await?,
        })
    }

    /// Compares every table of the database; never fails: what could not be compared is an
    /// error of the database or of the table.
    pub async fn run(&self, progress: &(dyn Fn(&VerifyDatabase) + Sync)) -> VerifyDatabase {
        let db = self.sides.database;
        let state = Mutex::new(VerifyDatabase {
            name: db.to_owned(),
            tables: Vec::new(),
            error: None,
        });
        let work = match self.plan(&state).await {
            Ok(work) => work,
            Err(e) => {
                let mut s = state.into_inner().expect("verify state");
                s.error = Some(e.to_string());
                return s;
            }
        };
        progress(&state.lock().expect("verify state"));
        let queue = Mutex::new(work);
        let workers =
            (0..self.settings.parallel.max(1)).map(|_| self.worker(&queue, &state, progress));
        futures_util::future::join_all(workers).await;
        state.into_inner().expect("verify state")
    }

    /// Lists and plans the tables; returns the work (table index, rows) in order.
    async fn plan(
        &self,
        state: &Mutex<VerifyDatabase>,
    ) -> Result<std::collections::VecDeque<(usize, Table, Rows)>, PgError> {
        let pair = self.pair().await?;
        let (tables, unlogged) = source_tables(&pair.src).await?;
        let on_destination = destination_columns(&pair.dst).await?;
        let only = self.request.table.as_deref();
        let mut work = std::collections::VecDeque::new();
        let mut listed = Vec::new();
        for name in unlogged.iter().filter(|t| selected(t, only)) {
            listed.push(VerifyTable {
                note: Some(
                    "unlogged: logical replication does not carry its rows, not compared".into(),
                ),
                ..empty_table(name, &[])
            });
        }
        for table in tables.into_iter().filter(|t| selected(&t.name, only)) {
            let key: Vec<String> = table.key.iter().map(|k| k.name.clone()).collect();
            let mut report = empty_table(&table.name, &key);
            match on_destination.get(&table.name) {
                None => {
                    report.error = Some("missing on the destination".into());
                }
                Some(columns) => {
                    let missing: Vec<&String> = table
                        .columns
                        .iter()
                        .filter(|c| !columns.contains(c))
                        .collect();
                    if !missing.is_empty() {
                        report.error = Some(format!(
                            "the destination's table lacks column(s) {}: see the schema drift findings",
                            missing
                                .iter()
                                .map(|c| format!("{c:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
            if table.key.is_empty() {
                report.note = Some(
                    "no primary key or replica identity index: compared whole (one count and hash)"
                        .into(),
                );
            }
            if report.error.is_none() {
                let ranges = plan_ranges(&pair.src, &table, self.settings.chunk_bytes).await?;
                report.ranges = ranges.len() as u64;
                let table = Table {
                    range_bytes: table.bytes / report.ranges.max(1),
                    ..table
                };
                let index = listed.len();
                for rows in ranges {
                    work.push_back((index, table.clone(), rows));
                }
            }
            listed.push(report);
        }
        if let Some(only) = only
            && listed.is_empty()
        {
            return Err(PgError::Query {
                target: pair.src.target().to_owned(),
                context: "choosing the table to verify".into(),
                message: format!("no table named {only:?} (write schema.table)"),
                transient: false,
            });
        }
        state.lock().expect("verify state").tables = listed;
        Ok(work)
    }

    /// Takes ranges off `queue` until it is empty, with its own two sessions.
    async fn worker(
        &self,
        queue: &Mutex<std::collections::VecDeque<(usize, Table, Rows)>>,
        state: &Mutex<VerifyDatabase>,
        progress: &(dyn Fn(&VerifyDatabase) + Sync),
    ) {
        let mut pair: Option<Pair> = None;
        loop {
            let Some((index, table, rows)) = queue.lock().expect("verify queue").pop_front() else {
                return;
            };
            // After an error that may pass (a server restarting), new sessions and another try,
            // RETRY_DELAYS apart.
            let mut outcome = None;
            for delay in std::iter::once(Duration::ZERO).chain(RETRY_DELAYS) {
                if outcome
                    .as_ref()
                    .is_some_and(|o: &Result<RangeDone, PgError>| {
                        o.as_ref().is_err_and(|e| !e.is_transient())
                    })
                {
                    break;
                }
                tokio::time::sleep(delay).await;
                if pair.is_none() {
                    match self.pair().await {
                        Ok(p) => pair = Some(p),
                        Err(e) => {
                            outcome = Some(Err(e));
                            continue;
                        }
                    }
                }
                let p = pair.as_ref().expect("connected");
                match self.range(p, &table, &rows).await {
                    Ok(report) => {
                        outcome = Some(Ok(report));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "a verification read failed");
                        pair = None;
                        outcome = Some(Err(e));
                    }
                }
            }
            let mut s = state.lock().expect("verify state");
            let t = &mut s.tables[index];
            match outcome.expect("tried") {
                Ok(done) => {
                    t.checked += 1;
                    t.rows += done.rows.max(0) as u64;
                    if let Some(lsn) = done.lsn {
                        let earlier = |a: &str, b: &str| plan::lsn_value(a) < plan::lsn_value(b);
                        if t.first_lsn.as_deref().is_none_or(|f| earlier(&lsn, f)) {
                            t.first_lsn = Some(lsn.clone());
                        }
                        if t.last_lsn.as_deref().is_none_or(|l| earlier(l, &lsn)) {
                            t.last_lsn = Some(lsn);
                        }
                    }
                    t.differing.extend(done.differing);
                    t.unsettled.extend(done.unsettled);
                }
                Err(e) => {
                    t.error
                        .get_or_insert_with(|| format!("a range could not be compared: {e}"));
                }
            }
            progress(&s);
        }
    }

    /// Compares one range (or the whole table), down to its rows when it differs.
    async fn range(&self, p: &Pair, table: &Table, rows: &Rows) -> Result<RangeDone, PgError> {
        let share = table.range_bytes;
        let mut done = RangeDone::default();
        let (source, destination, differs) = match self.settle(p, table, rows, share).await? {
            Settled::Equal { lsn, rows } => {
                done.lsn = lsn;
                done.rows = rows;
                return Ok(done);
            }
            Settled::Differs {
                source,
                destination,
            } => (source, destination, true),
            Settled::Unsettled {
                source,
                destination,
            } => (source, destination, false),
        };
        done.rows = source.rows;
        let mut report = RangeReport {
            condition: plan::describe(table, rows),
            source_rows: source.rows,
            destination_rows: destination.rows,
            rows: Vec::new(),
            more_rows: 0,
            inspect: plan::inspect_sql(table, rows),
        };
        if table.key.is_empty() {
            // No key, no rows to single out: the whole table is the finding.
            if differs {
                done.differing.push(report);
            } else {
                done.unsettled.push(report);
            }
            return Ok(done);
        }
        // Row by row: which keys differ, then each settled on its own; never more rows at
        // once than a range should hold (a skewed sample can make one larger).
        if source.rows.max(destination.rows) > MAX_ROWS_LOOKED_AT {
            report.rows = vec![format!(
                "too many rows to look at one by one here (more than {MAX_ROWS_LOOKED_AT}): run the query below, or verify this table with a smaller verify_chunk_mb"
            )];
            if differs {
                done.differing.push(report);
            } else {
                done.unsettled.push(report);
            }
            return Ok(done);
        }
        self.sides.limiter.take(share).await;
        let src_rows = row_hashes(&p.src, table, rows).await?;
        let dst_rows = row_hashes(&p.dst, table, rows).await?;
        let diff = plan::diff_rows(&src_rows, &dst_rows);
        drop((src_rows, dst_rows));
        if diff.len() > SETTLED_ROWS {
            report.rows = diff
                .keys()
                .take(LISTED_ROWS)
                .map(|k| plan::key_text(table, k))
                .collect();
            report.more_rows = (diff.len() - report.rows.len()) as u64;
            done.differing.push(report);
            return Ok(done);
        }
        let mut differs = Vec::new();
        let mut unsettled = Vec::new();
        for key in diff.keys() {
            let single = Rows::Key(key.clone());
            let kind = if diff.missing.contains(key) {
                "missing on the destination"
            } else if diff.extra.contains(key) {
                "only on the destination"
            } else {
                "changed"
            };
            match self.settle(p, table, &single, 0).await? {
                Settled::Equal { .. } => {}
                Settled::Differs {
                    source,
                    destination,
                } => differs.push(format!(
                    "{}: {}",
                    plan::key_text(table, key),
                    row_kind(&source, &destination, kind)
                )),
                Settled::Unsettled { .. } => unsettled.push(format!(
                    "{}: changing on the source during every re-check",
                    plan::key_text(table, key)
                )),
            }
        }
        let list = |mut lines: Vec<String>, report: &RangeReport| {
            let mut r = report.clone();
            let more = lines.len().saturating_sub(LISTED_ROWS);
            lines.truncate(LISTED_ROWS);
            r.rows = lines;
            r.more_rows = more as u64;
            r
        };
        if !differs.is_empty() {
            done.differing.push(list(differs, &report));
        } else if !unsettled.is_empty() {
            done.unsettled.push(list(unsettled, &report));
        } else if diff.is_empty() {
            // The sums differed but no row does: the range changed between the reads.
            report.rows = vec!["rows changed between the reads; verify again".into()];
            done.unsettled.push(report);
        }
        Ok(done)
    }

    /// Reads `rows` on both sides until they agree, differ while the source holds still, or
    /// the re-checks run out (see the module's doc).
    async fn settle(
        &self,
        p: &Pair,
        table: &Table,
        rows: &Rows,
        share: u64,
    ) -> Result<Settled, PgError> {
        let mut last = None;
        for attempt in 0..=self.rechecks() {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            self.sides.limiter.take(share).await;
            let (lsn, first) = digest(&p.src, table, rows, true).await?;
            let (_, destination) = digest(&p.dst, table, rows, false).await?;
            if destination == first {
                return Ok(Settled::Equal {
                    lsn,
                    rows: first.rows,
                });
            }
            let applied = match (&self.sides.replication, &lsn) {
                (Some(names), Some(lsn)) => applied_past(p, names, lsn).await?,
                _ => true,
            };
            let (_, destination) = digest(&p.dst, table, rows, false).await?;
            self.sides.limiter.take(share).await;
            let (lsn2, second) = digest(&p.src, table, rows, true).await?;
            match plan::judge(&first, &destination, &second) {
                Verdict::EqualFirst => {
                    return Ok(Settled::Equal {
                        lsn,
                        rows: first.rows,
                    });
                }
                Verdict::EqualSecond => {
                    return Ok(Settled::Equal {
                        lsn: lsn2,
                        rows: second.rows,
                    });
                }
                Verdict::Differs if applied => {
                    return Ok(Settled::Differs {
                        source: second,
                        destination,
                    });
                }
                Verdict::Differs | Verdict::Changing => last = Some((second, destination)),
            }
        }
        let (source, destination) = last.expect("at least one attempt");
        Ok(Settled::Unsettled {
            source,
            destination,
        })
    }
}

/// What one range showed.
#[derive(Default)]
struct RangeDone {
    lsn: Option<String>,
    rows: i64,
    differing: Vec<RangeReport>,
    unsettled: Vec<RangeReport>,
}

fn empty_table(name: &QualifiedName, key: &[String]) -> VerifyTable {
    VerifyTable {
        table: name.to_string(),
        key: key.to_vec(),
        ranges: 0,
        checked: 0,
        rows: 0,
        first_lsn: None,
        last_lsn: None,
        differing: Vec::new(),
        unsettled: Vec::new(),
        error: None,
        note: None,
    }
}

/// How one row differs, from its two digests (a missing row counts 0 on its side).
fn row_kind(source: &Digest, destination: &Digest, seen: &'static str) -> &'static str {
    match (source.rows, destination.rows) {
        (1, 0) => "missing on the destination",
        (0, 1) => "only on the destination",
        (1, 1) => "changed",
        _ => seen,
    }
}

/// Whether the destination has applied everything the source wrote before `lsn`: its
/// subscription's origin has applied a commit at or past it, or the slot confirmed it. Waits
/// (nudging a quiet source with a heartbeat) at most [`APPLY_WAIT`].
async fn applied_past(p: &Pair, names: &ReplicationNames, lsn: &str) -> Result<bool, PgError> {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    let mut pause = Duration::from_millis(10);
    let mut nudged = false;
    loop {
        // The origin's progress needs pg_read_all_stats or superuser: without it, the slot.
        let origin = p
            .dst
            .query_one(
                "SELECT coalesce((SELECT o.remote_lsn >= $1::text::pg_lsn \
                   FROM pg_catalog.pg_subscription s \
                   JOIN pg_catalog.pg_replication_origin_status o ON o.external_id = 'pg_' || s.oid \
                   WHERE s.subname = $2), false)",
                &[&lsn, &names.subscription],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        if origin {
            return Ok(true);
        }
        let slot: bool = p
            .src
            .query_one(
                "SELECT coalesce(bool_and(confirmed_flush_lsn >= $1::text::pg_lsn), false) \
                 FROM pg_catalog.pg_replication_slots WHERE slot_name = $2",
                &[&lsn, &names.slot],
            )
            .await
            .map_err(q(p.src.target(), "reading the replication slot's position"))?
            .get(0);
        if slot {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        if !nudged && pause >= Duration::from_millis(40) {
            // A quiet database: give the slot something to confirm.
            let _ = p
                .src
                .execute(
                    "SELECT pg_catalog.pg_logical_emit_message(false, 'postgres-migrator', 'heartbeat')",
                    &[],
                )
                .await;
            nudged = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
