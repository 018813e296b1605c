//! What a database task keeps of the last whole read of both sides' schemas ([`SchemaMemo`]):
//! read again only when a side's catalog fingerprint changes, since with hundreds of tables
//! those reads are most of a tick and only DDL changes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::model::{QualifiedName, SchemaCatalog};
use crate::catalog::{deferred, fingerprint};
use crate::ddl;
use crate::pg::{PgError, Session};
use crate::phases::{MappingContext, drift, sync};

/// What the last whole read of a replicating database's schemas found: the source's catalog, the
/// deferred objects the destination lacks, and the drift between the two. Kept while neither
/// side's [`fingerprint`] changes: with hundreds of tables those reads are most of a tick, and
/// only DDL changes them.
#[derive(Default)]
pub struct SchemaMemo {
    /// The fingerprints of source and destination, read before the catalogs they stand for.
    key: Option<(String, String)>,
    read: Option<SchemaRead>,
    /// The source tables' sizes (for the per-table progress), and when they were read: a
    /// `stat` of every file of every table, so read at most every [`SIZES_EVERY`].
    sizes: Option<(Instant, Arc<HashMap<QualifiedName, u64>>)>,
}

/// How long the source's table sizes are shown before they are read again.
const SIZES_EVERY: Duration = Duration::from_secs(30);

/// One whole read of both sides' schemas.
pub struct SchemaRead {
    pub source: Arc<SchemaCatalog>,
    /// Deferred objects not built on the destination.
    pub missing: Vec<ddl::DeferredObject>,
    /// Of those, indexes that exist but are not valid there.
    pub not_valid: Vec<String>,
    /// The drift, once compared (only while the subscription is enabled).
    drift: Option<Vec<drift::Drift>>,
    /// Every table was copied, built, refreshed and analyzed when last looked.
    pub settled: bool,
}

impl SchemaMemo {
    /// The schemas of both sides: remembered when both fingerprints are as at the last read,
    /// read again otherwise.
    pub async fn read(&mut self, src: &Session, dst: &Session) -> Result<&mut SchemaRead, PgError> {
        let key = (fingerprint::read(src).await?, fingerprint::read(dst).await?);
        if self.key.as_ref() != Some(&key) || self.read.is_none() {
            // Forgotten first: should a read fail, the next tick reads again.
            self.key = None;
            let source = crate::catalog::schema::read(src).await?;
            let existing = deferred::existing(dst).await?;
            let missing: Vec<ddl::DeferredObject> = ddl::deferred_objects(&source)
                .into_iter()
                .filter(|o| !o.exists_in(&existing))
                .collect();
            let not_valid = missing
                .iter()
                .filter(|o| {
                    o.kind == ddl::DeferredKind::Index
                        && existing.has_index(&o.table.schema, &o.name)
                })
                .map(|o| format!("{} on {}", o.name, o.table))
                .collect();
            self.read = Some(SchemaRead {
                source: Arc::new(source),
                missing,
                not_valid,
                drift: None,
                settled: false,
            });
            self.key = Some(key);
        }
        Ok(self.read.as_mut().expect("read above"))
    }

    /// The source tables' sizes, read again when older than [`SIZES_EVERY`].
    pub async fn sizes(
        &mut self,
        src: &Session,
    ) -> Result<Arc<HashMap<QualifiedName, u64>>, PgError> {
        match &self.sizes {
            Some((at, sizes)) if at.elapsed() < SIZES_EVERY => Ok(sizes.clone()),
            _ => {
                let sizes = Arc::new(sync::source_sizes(src).await?);
                self.sizes = Some((Instant::now(), sizes.clone()));
                Ok(sizes)
            }
        }
    }
}

impl SchemaRead {
    /// The drift between source and destination (tables and columns, then every other object
    /// by its signature), compared once per read.
    pub async fn drift(
        &mut self,
        ctx: &MappingContext,
        db: &str,
        src: &Session,
        dst: &Session,
    ) -> Result<&[drift::Drift], PgError> {
        if self.drift.is_none() {
            let on_destination = crate::catalog::schema::read(dst).await?;
            let mut changes = drift::compare(&self.source, &on_destination);
            let excluded = ctx.schema_excluded(db);
            changes.extend(drift::compare_objects(
                &drift::signatures(src, &excluded).await?,
                &drift::signatures(dst, &excluded).await?,
            ));
            self.drift = Some(changes);
        }
        Ok(self.drift.as_deref().unwrap_or_default())
    }
}
