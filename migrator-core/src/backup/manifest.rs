//! A backup's manifest (`manifest.json`): what is in it, from which server, made by which
//! pg_dump, when, and a SHA-256 of every file. Written last, through a temporary file renamed
//! into place, so a backup without one is unfinished (killed, failed, still running) and is
//! never listed as usable; a restore checks every file against it first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

pub const FILE: &str = "manifest.json";

/// Everything a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub mapping: String,
    /// `source` or `destination`.
    pub side: String,
    /// `user@host:port` of the server (never a password).
    pub server: String,
    /// `server_version` of the server.
    pub server_version: String,
    /// `pg_dump (PostgreSQL) 18.4`.
    pub dump_tool: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub databases: Vec<DumpedDatabase>,
    /// `roles.sql` (pg_dumpall --roles-only), when the role could read them.
    pub roles: Option<String>,
    /// Why the roles are missing or partial (e.g. passwords left out), if they are.
    pub roles_note: Option<String>,
    pub files: Vec<FileSum>,
}

/// One database's dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpedDatabase {
    pub name: String,
    /// Its directory (pg_dump --format=directory), relative to the backup.
    pub dir: String,
    pub bytes: u64,
    /// Tables whose rows it holds.
    pub tables: u64,
}

/// One file and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Relative to the backup.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// Total size of the backup's files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Writes it into `dir`, last and atomically.
    pub fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serialises");
        let temporary = dir.join(format!("{FILE}.partial"));
        std::fs::write(&temporary, text).map_err(io("writing the manifest", &temporary))?;
        std::fs::rename(&temporary, dir.join(FILE)).map_err(io("writing the manifest", dir))
    }

    /// The manifest of backup directory `dir`, if it has a readable one.
    pub fn read(dir: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Checks every file against its checksum; the first that is missing or differs is an
    /// error.
    pub fn verify(&self, dir: &Path) -> Result<(), BackupError> {
        for file in &self.files {
            let path = dir.join(&file.path);
            let (bytes, sha256) = checksum(&path)
                .map_err(|_| BackupError::Damaged(format!("{} is missing", file.path)))?;
            if bytes != file.bytes || sha256 != file.sha256 {
                return Err(BackupError::Damaged(format!(
                    "{} differs from its checksum in the manifest",
                    file.path
                )));
            }
        }
        Ok(())
    }
}

/// Every file under `dir` (the manifest left out), with its size and SHA-256, sorted.
pub fn sums(dir: &Path) -> Result<Vec<FileSum>, BackupError> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io("reading the backup", &current))? {
            let path = entry.map_err(io("reading the backup", &current))?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if relative.starts_with(FILE) {
                continue;
            }
            let (bytes, sha256) = checksum(&path).map_err(io("reading the backup", &path))?;
            files.push(FileSum {
                path: relative,
                bytes,
                sha256,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((bytes, format!("{:x}", hasher.finalize())))
}

/// Wraps an I/O error with what was being done and where.
pub fn io<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |error| BackupError::Io {
        what: format!("{what} ({})", path.display()),
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_or_missing_file_fails_the_check_and_the_manifest_is_not_summed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shop")).unwrap();
        std::fs::write(dir.path().join("shop/toc.dat"), b"toc").unwrap();
        std::fs::write(dir.path().join("roles.sql"), b"CREATE ROLE app;").unwrap();
        let manifest = Manifest {
            key: "k".into(),
            mapping: "prod".into(),
            side: "source".into(),
            server: "postgres@old:5432".into(),
            server_version: "15.14".into(),
            dump_tool: "pg_dump (PostgreSQL) 15.14".into(),
            started_at: "2026-12-04T19:00:00Z".into(),
            finished_at: "2026-12-04T19:01:00Z".into(),
            databases: Vec::new(),
            roles: Some("roles.sql".into()),
            roles_note: None,
            files: sums(dir.path()).unwrap(),
        };
        assert_eq!(
            manifest
                .files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>(),
            ["roles.sql", "shop/toc.dat"]
        );
        manifest.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()), Some(manifest.clone()));
        assert_eq!(sums(dir.path()).unwrap(), manifest.files);
        manifest.verify(dir.path()).unwrap();
        std::fs::write(dir.path().join("shop/toc.dat"), b"tampered").unwrap();
        let e = manifest.verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("shop/toc.dat differs"), "{e}");
        std::fs::remove_file(dir.path().join("roles.sql")).unwrap();
        let e = manifest.verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("roles.sql is missing"), "{e}");
    }
}
