//! Backups from a running instance (`Command::Backup`, `Command::DeleteBackup`: the mapping
//! page's buttons and the API): a backup runs in the background, one per mapping at a time, its
//! progress published as the mapping's `backup` in the snapshot; shutdown cancels it, which
//! kills pg_dump and removes the unfinished backup.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::commands::CommandError;
use super::{Acting, CommandResult, Update};
use crate::backup::{self, BackupError, Side};
use crate::config::BackupSettings;
use crate::status::BackupRun;

/// The running backup of each mapping.
pub type Running = BTreeMap<String, JoinHandle<()>>;

impl From<BackupError> for CommandError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Pg(e) => CommandError::Pg(e),
            other => CommandError::Refused(other.to_string()),
        }
    }
}

/// Starts backing up `side` of `mapping` in the background, unless one runs for it.
pub fn start(
    acting: &Acting,
    settings: &BackupSettings,
    running: &mut Running,
    updates: &mpsc::UnboundedSender<Update>,
    shutdown: &CancellationToken,
    mapping: &str,
    side: Side,
) -> CommandResult {
    let ctx = acting
        .get(mapping)
        .ok_or_else(|| CommandError::UnknownMapping(mapping.to_owned()))?
        .clone();
    if settings.dir.is_none() {
        return Err(BackupError::NotConfigured.into());
    }
    if running.get(mapping).is_some_and(|task| !task.is_finished()) {
        return Err(CommandError::Refused(format!(
            "a backup of mapping {mapping} is already running: follow it on its Backups tab, and start another once it has finished"
        )));
    }
    let (settings, updates, cancel) = (settings.clone(), updates.clone(), shutdown.child_token());
    let name = mapping.to_owned();
    running.insert(
        name.clone(),
        tokio::spawn(async move {
            let mut run = BackupRun {
                side: side.as_str().to_owned(),
                started_at: SystemTime::now(),
                finished_at: None,
                key: None,
                progress: None,
                error: None,
            };
            let publish = |run: &BackupRun| {
                let _ = updates.send(Update::Backup {
                    name: name.clone(),
                    status: Box::new(run.clone()),
                });
            };
            publish(&run);
            let shown = std::sync::Mutex::new(run.clone());
            let progress = |p: &backup::Progress| {
                let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
                shown.progress = Some(p.clone());
                publish(&shown);
            };
            let outcome = backup::create(&ctx, &settings, side, None, &progress, &cancel).await;
            run.progress = shown
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .progress;
            run.finished_at = Some(SystemTime::now());
            match outcome {
                Ok(manifest) => run.key = Some(manifest.key),
                Err(e) => {
                    tracing::warn!(mapping = %name, error = %e, "backup failed");
                    run.error = Some(e.to_string());
                }
            }
            publish(&run);
        }),
    );
    tracing::info!(mapping, side = side.as_str(), "backup started");
    Ok(vec![format!(
        "backup of the {} of mapping {mapping} started: follow it on its Backups tab or in GET /api/status",
        side.as_str()
    )])
}

/// Deletes backup `key` of `mapping` (a key of another mapping is refused).
pub fn delete(
    settings: &BackupSettings,
    running: &Running,
    mapping: &str,
    key: &str,
) -> CommandResult {
    let of_mapping = [Side::Source, Side::Destination]
        .iter()
        .any(|side| key.ends_with(&format!("-{mapping}-{}", side.as_str())));
    if !of_mapping {
        return Err(BackupError::UnknownKey(key.to_owned()).into());
    }
    if running.get(mapping).is_some_and(|task| !task.is_finished()) {
        return Err(CommandError::Refused(format!(
            "a backup of mapping {mapping} is running; delete once it has finished (or stop it by stopping the instance, which removes it)"
        )));
    }
    backup::delete(settings, key)?;
    Ok(vec![format!("backup {key} deleted with every file in it")])
}
