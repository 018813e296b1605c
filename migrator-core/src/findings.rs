//! Findings: what stops a migration (blocking) or deserves an operator's eye (warning), each with
//! the fix.

use serde::Serialize;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the migration goes on.
    Warning,
    /// The migration cannot go on until the operator fixes it. Checked again every tick.
    Blocking,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier for scripts and tests, e.g. `no_primary_key`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// What the operator should do.
    pub fix: String,
}

impl Finding {
    pub fn blocking(
        code: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Blocking,
            code,
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            code,
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn is_blocking(&self) -> bool {
        self.severity == Severity::Blocking
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Blocking => "BLOCKING",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level} [{}] {} Fix: {}",
            self.code, self.message, self.fix
        )
    }
}
