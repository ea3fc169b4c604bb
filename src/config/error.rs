//! The configuration error type. Every problem found in a file becomes one [`Issue`] that names the
//! origin, the line and the key (`gsmgate.toml:12: modem[1].per_minute: must be between 1 and 600,
//! got 0`), because a user fixing a config needs exactly those three things and nothing else. All
//! issues of a file are collected and reported together, so a user fixes the file in one pass instead
//! of one error per run.

use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration text, located by line (1-based) when it can be located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Name of the file or text the issue was found in (as given by the caller).
    pub origin: String,
    /// 1-based line, when the problem has a place in the text.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem, when known.
    pub column: Option<usize>,
    /// Dotted key path such as `modem[1].per_minute`; empty for syntax errors outside any key.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Issue {
    /// `origin:line: key: message`; parts that are unknown are left out rather than invented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text was read but is not a valid configuration; holds every issue found (at least one).
    #[error("{}", display_issues(issues))]
    Invalid { issues: Vec<Issue> },
}

impl ConfigError {
    /// The located issues (empty for a read error).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { issues } => issues,
        }
    }
}

fn display_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
