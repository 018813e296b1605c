//! `backup create | list | restore | delete`: the command line of [`migrator_core::backup`].

use std::process::ExitCode;

use migrator_core::backup::{self, BackupError, Listed, Progress, RestoreRequest, Side, Target};
use migrator_core::config::Settings;
use migrator_core::orchestrator::commands;
use tokio_util::sync::CancellationToken;

use crate::EXIT_CONFIG;
use crate::cli::{BackupAction, SideArg};
use crate::commands::EXIT_BLOCKED;

pub async fn run(settings: Settings, action: BackupAction, cancel: CancellationToken) -> ExitCode {
    let done = match action {
        BackupAction::Create {
            mapping,
            side,
            database,
        } => create(&settings, &mapping, side, database.as_deref(), &cancel).await,
        BackupAction::List { json } => list(&settings, json),
        BackupAction::Restore {
            key,
            to,
            database,
            as_name,
            clean,
            no_owner,
        } => {
            let target = match to.as_str() {
                "source" => Target::Side(Side::Source),
                "destination" => Target::Side(Side::Destination),
                url => Target::Url(url),
            };
            let request = RestoreRequest {
                key: &key,
                to: target,
                database: database.as_deref(),
                as_name: as_name.as_deref(),
                clean,
                no_owner,
            };
            restore(&settings, &request, &cancel).await
        }
        BackupAction::Delete { key } => backup::delete(&settings.backup, &key)
            .map(|()| vec![format!("backup {key} deleted")])
            .map_err(Failure::Backup),
    };
    match done {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("postgres-migrator: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// A backup command's failure and its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Command(#[from] commands::CommandError),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Backup(BackupError::UnknownKey(_) | BackupError::NotConfigured)
            | Failure::Command(
                commands::CommandError::UnknownMapping(_) | commands::CommandError::Config(_),
            ) => EXIT_CONFIG,
            Failure::Backup(BackupError::Refused(_) | BackupError::Damaged(_)) => EXIT_BLOCKED,
            Failure::Backup(BackupError::Cancelled) => 130,
            _ => 1,
        }
    }
}

/// Progress on stderr, one line per table.
fn show(progress: &Progress) {
    eprintln!(
        "{}: table {} of {}",
        progress.database, progress.done, progress.total
    );
}

async fn create(
    settings: &Settings,
    mapping: &str,
    side: SideArg,
    database: Option<&str>,
    cancel: &CancellationToken,
) -> Result<Vec<String>, Failure> {
    let ctx = commands::find(settings, mapping)?;
    let side = match side {
        SideArg::Source => Side::Source,
        SideArg::Destination => Side::Destination,
    };
    let manifest = backup::create(&ctx, &settings.backup, side, database, &show, cancel).await?;
    let mut lines = vec![format!(
        "backup {} written: {} database(s) ({}), {:.1} MB, {} file(s) with checksums; {}",
        manifest.key,
        manifest.databases.len(),
        manifest
            .databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        manifest.bytes() as f64 / 1_048_576.0,
        manifest.files.len(),
        manifest.dump_tool
    )];
    lines.extend(manifest.roles_note.clone());
    lines.push(manifest.key);
    Ok(lines)
}

fn list(settings: &Settings, json: bool) -> Result<Vec<String>, Failure> {
    let found = backup::list(&settings.backup)?;
    if json {
        return Ok(vec![
            serde_json::to_string_pretty(&found).expect("a list serialises"),
        ]);
    }
    if found.is_empty() {
        return Ok(vec!["no backups".to_owned()]);
    }
    let mut lines = vec![format!(
        "{:<42} {:<12} {:<22} {:>10}  databases",
        "key", "side", "finished", "MB"
    )];
    let (done, unfinished): (Vec<&Listed>, Vec<&Listed>) =
        found.iter().partition(|l| l.manifest.is_some());
    for listed in done {
        let m = listed.manifest.as_ref().expect("partitioned on it");
        lines.push(format!(
            "{:<42} {:<12} {:<22} {:>10.1}  {}",
            listed.key,
            m.side,
            m.finished_at,
            listed.bytes as f64 / 1_048_576.0,
            m.databases
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for listed in unfinished {
        lines.push(format!(
            "{:<42} unfinished (no manifest: killed, failed or still running; not restorable), {:.1} MB",
            listed.key,
            listed.bytes as f64 / 1_048_576.0
        ));
    }
    Ok(lines)
}

async fn restore(
    settings: &Settings,
    request: &RestoreRequest<'_>,
    cancel: &CancellationToken,
) -> Result<Vec<String>, Failure> {
    let manifest = backup::manifest_of(&settings.backup, request.key)?;
    let ctx = commands::find(settings, &manifest.mapping).ok();
    Ok(backup::restore(ctx.as_ref(), &settings.backup, request, &show, cancel).await?)
}
