//! The copy's work list: every published leaf, large ones split into ctid ranges, largest
//! first, and the COPY statements of each piece.

use std::collections::HashMap;
use std::sync::Arc;

use super::CopySettings;
use crate::catalog::model::QualifiedName;
use crate::catalog::published::PublishedTable;
use crate::ddl::quote::{ident, qualified};

/// A piece of work: one leaf, or one ctid range of it.
#[derive(Debug, Clone)]
pub(super) struct Chunk {
    pub(super) table: Arc<PublishedTable>,
    /// Block range `[from, to)`; `None` bounds are open.
    pub(super) range: Option<(Option<u64>, Option<u64>)>,
    pub(super) bytes: u64,
}

impl Chunk {
    pub(super) fn copy_out(&self) -> String {
        let t = &self.table;
        let columns = t.columns.iter().map(|c| ident(c)).collect::<Vec<_>>();
        let format = if t.binary { " (FORMAT binary)" } else { "" };
        match self.range {
            None => format!(
                "COPY {}{} TO STDOUT{format}",
                qualified(&t.leaf),
                column_list(&columns)
            ),
            Some((from, to)) => {
                let mut bounds = Vec::new();
                if let Some(from) = from {
                    bounds.push(format!("ctid >= '({from},0)'::tid"));
                }
                if let Some(to) = to {
                    bounds.push(format!("ctid < '({to},0)'::tid"));
                }
                format!(
                    "COPY (SELECT {} FROM ONLY {} WHERE {}) TO STDOUT{format}",
                    columns.join(", "),
                    qualified(&t.leaf),
                    bounds.join(" AND ")
                )
            }
        }
    }

    pub(super) fn copy_in(&self) -> String {
        let t = &self.table;
        let columns = t.columns.iter().map(|c| ident(c)).collect::<Vec<_>>();
        let format = if t.binary { " (FORMAT binary)" } else { "" };
        format!(
            "COPY {}{} FROM STDIN{format}",
            qualified(&t.root),
            column_list(&columns)
        )
    }
}

/// ` (a, b)`, or nothing for a table without columns (which has rows all the same: `COPY t ()`
/// is a syntax error).
fn column_list(columns: &[String]) -> String {
    if columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", columns.join(", "))
    }
}

/// Smallest range the automatic chunk size makes.
const MIN_AUTO_CHUNK: u64 = 64 * 1024 * 1024;

/// The range size tables are split into, or `None` for no splitting. Automatic (`chunk_bytes`
/// 0): a worker's fair share of all the data, so only a table that would outlast the others is
/// split. Splitting has a price (two writers into one table share its last page and its primary
/// key's right edge), so it only pays where a worker would otherwise sit idle.
pub(super) fn chunk_size(settings: &CopySettings, tables: &[PublishedTable]) -> Option<u64> {
    if !settings.split {
        return None;
    }
    if settings.chunk_bytes > 0 {
        return Some(settings.chunk_bytes);
    }
    let total: u64 = tables.iter().map(|t| t.bytes).sum();
    Some((total / settings.workers.max(1) as u64).max(MIN_AUTO_CHUNK))
}

/// Splits the tables into ranges of about `chunk` bytes (none when `None`), largest first.
pub(super) fn plan(tables: Vec<PublishedTable>, chunk: Option<u64>) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let chunk_bytes = chunk.unwrap_or(0);
    for table in tables.into_iter().map(Arc::new) {
        let pieces = if chunk_bytes == 0 || table.bytes <= chunk_bytes || table.blocks < 2 {
            1
        } else {
            table.bytes.div_ceil(chunk_bytes).min(table.blocks)
        };
        if pieces == 1 {
            chunks.push(Chunk {
                bytes: table.bytes,
                table,
                range: None,
            });
            continue;
        }
        let step = table.blocks.div_ceil(pieces);
        for i in 0..pieces {
            let from = (i > 0).then_some(i * step);
            // The last range is open: rows the snapshot sees cannot lie past the blocks that
            // exist now, but an open end costs nothing and needs no such argument.
            let to = (i + 1 < pieces).then_some((i + 1) * step);
            chunks.push(Chunk {
                table: table.clone(),
                range: Some((from, to)),
                bytes: table.bytes / pieces,
            });
        }
    }
    chunks.sort_by_key(|c| std::cmp::Reverse(c.bytes));
    chunks
}

/// Bytes to copy per table: each leaf's, and each partitioned root's (its leaves together).
pub(super) fn table_sizes(chunks: &[Chunk]) -> HashMap<QualifiedName, u64> {
    let mut sizes = HashMap::new();
    for c in chunks {
        *sizes.entry(c.table.leaf.clone()).or_default() += c.bytes;
        if c.table.root != c.table.leaf {
            *sizes.entry(c.table.root.clone()).or_default() += c.bytes;
        }
    }
    sizes
}
