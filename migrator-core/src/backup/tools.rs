//! Finding `pg_dump`, `pg_dumpall` and `pg_restore`: they must be at least the server's major
//! version (an older pg_dump refuses a newer server; an older pg_restore cannot read a newer
//! archive). Searched in `backup.pg_bin_dir`, then the standard install locations (Debian's
//! `/usr/lib/postgresql/N/bin`, the PGDG RPMs' `/usr/pgsql-N/bin`, `/usr/local/pgsql/bin`,
//! Homebrew's `postgresql@N`), then `PATH`; the lowest version that is new enough wins (the
//! closest to the server).

use std::path::{Path, PathBuf};

use super::BackupError;

/// One client program and its version.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    /// `pg_dump (PostgreSQL) 18.4`.
    pub version: String,
    pub major: u32,
}

impl Tool {
    /// A command running it. An install laid out as `bin/` beside `lib/` gets that `lib/` on
    /// `LD_LIBRARY_PATH` (relocated builds such as PyPI's carry their libpq there).
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.path);
        if let Some(lib) = library_dir(&self.path) {
            let mut paths = vec![lib];
            if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
                paths.extend(std::env::split_paths(&existing));
            }
            if let Ok(joined) = std::env::join_paths(paths) {
                command.env("LD_LIBRARY_PATH", joined);
            }
        }
        command
    }
}

fn library_dir(tool: &Path) -> Option<PathBuf> {
    let lib = tool.parent()?.parent()?.join("lib");
    lib.is_dir().then_some(lib)
}

/// `name` at least version `major`: the lowest such version found (see the module's search
/// order), or an error naming what was found and how to install the right one.
pub fn find(name: &str, major: u32, first: &[String]) -> Result<Tool, BackupError> {
    let mut found: Vec<Tool> = Vec::new();
    for dir in candidate_dirs(first) {
        let path = dir.join(name);
        if !path.is_file() || found.iter().any(|t| t.path == path) {
            continue;
        }
        if let Some(tool) = version_of(&path) {
            found.push(tool);
        }
    }
    if let Some(best) = found
        .iter()
        .filter(|t| t.major >= major)
        .min_by_key(|t| t.major)
    {
        return Ok(best.clone());
    }
    let seen = if found.is_empty() {
        "none".to_owned()
    } else {
        found
            .iter()
            .map(|t| format!("{} ({})", t.version, t.path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(BackupError::Tool(format!(
        "{name} {major} or newer is needed for a PostgreSQL {major} server; found: {seen}. Install PostgreSQL {major}'s client programs (Debian/Ubuntu: apt-get install postgresql-client-{major} from apt.postgresql.org; RHEL: postgresql{major}; or `bash scripts/install-postgres.sh` in a checkout), then set backup.pg_bin_dir to their directory if it is not a standard one"
    )))
}

/// Where to look, in order.
fn candidate_dirs(first: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = first.iter().map(PathBuf::from).collect();
    let versioned = |parent: &str, prefix: &str, suffix: &str| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path().join(suffix))
            .collect();
        found.sort();
        found
    };
    dirs.extend(versioned("/usr/lib/postgresql", "", "bin"));
    dirs.extend(versioned("/usr", "pgsql-", "bin"));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs.extend(versioned("/opt/homebrew/opt", "postgresql@", "bin"));
    dirs.extend(versioned("/usr/local/opt", "postgresql@", "bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Runs `path --version`: `pg_dump (PostgreSQL) 18.4 (Debian ...)` -> 18.
fn version_of(path: &Path) -> Option<Tool> {
    let probe = Tool {
        path: path.to_owned(),
        version: String::new(),
        major: 0,
    };
    let mut command = std::process::Command::new(path);
    if let Some(lib) = library_dir(path) {
        command.env("LD_LIBRARY_PATH", lib);
    }
    let output = command.arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = major_of(&text)?;
    Some(Tool {
        version: text,
        major,
        ..probe
    })
}

/// The major version in a `--version` line.
pub fn major_of(text: &str) -> Option<u32> {
    let number = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    number
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_major_version_is_read_from_each_kind_of_version_line() {
        for (line, major) in [
            ("pg_dump (PostgreSQL) 18.4", 18),
            ("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)", 15),
            ("pg_restore (PostgreSQL) 17beta2", 17),
        ] {
            assert_eq!(major_of(line), Some(major), "{line}");
        }
        assert_eq!(major_of("pg_dump (PostgreSQL)"), None);
    }

    #[test]
    fn a_missing_tool_is_an_error_that_says_how_to_install_it() {
        let e = find("pg_dump_nonexistent", 99, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pg_dump_nonexistent 99 or newer"), "{e}");
        assert!(e.contains("postgresql-client-99"), "{e}");
        assert!(e.contains("backup.pg_bin_dir"), "{e}");
    }
}
