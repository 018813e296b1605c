//! What the copy has done so far, per table, shared between the job and the status.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::plan::Chunk;
use crate::catalog::model::QualifiedName;
use crate::status::{TableState, TableStatus};

/// Copy progress of one database, shared between the job and the status.
#[derive(Debug, Default)]
pub struct Progress {
    tables: Mutex<BTreeMap<QualifiedName, TableProgress>>,
    /// While the slot is being created: the source's transactions it waits for.
    waiting_for: Mutex<Option<String>>,
}

#[derive(Debug, Default, Clone)]
struct TableProgress {
    total: u64,
    copied: u64,
    chunks_left: usize,
    started: bool,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<QualifiedName, TableProgress>> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn plan(&self, chunks: &[Chunk]) {
        let mut tables = self.lock();
        tables.clear();
        for chunk in chunks {
            let entry = tables.entry(chunk.table.root.clone()).or_default();
            entry.total += chunk.bytes;
            entry.chunks_left += 1;
        }
    }

    pub(super) fn started(&self, root: &QualifiedName) {
        if let Some(t) = self.lock().get_mut(root) {
            t.started = true;
        }
    }

    pub(super) fn copied(&self, root: &QualifiedName, bytes: u64) {
        if let Some(t) = self.lock().get_mut(root) {
            t.copied += bytes;
        }
    }

    pub(super) fn finished(&self, root: &QualifiedName) {
        if let Some(t) = self.lock().get_mut(root) {
            t.chunks_left -= 1;
        }
    }

    /// What creating the slot waits for, while it does.
    pub fn waiting_for(&self) -> Option<String> {
        self.waiting_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set_waiting_for(&self, what: Option<String>) {
        *self.waiting_for.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }

    /// Per-table rows for the status: queued, copying, or copied (shown as "copy done").
    pub fn tables(&self) -> Vec<TableStatus> {
        self.lock()
            .iter()
            .map(|(name, t)| {
                let state = match (t.chunks_left, t.started) {
                    (0, _) => TableState::FinishedCopy,
                    (_, true) => TableState::Copying,
                    (_, false) => TableState::Init,
                };
                TableStatus {
                    schema: name.schema.clone(),
                    table: name.name.clone(),
                    state,
                    bytes_copied: if t.chunks_left == 0 {
                        t.total
                    } else {
                        t.copied.min(t.total)
                    },
                    bytes_total: t.total,
                }
            })
            .collect()
    }
}
