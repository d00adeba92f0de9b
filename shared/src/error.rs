//! One error type for every job, and the exit codes it maps to (SPEC §8).
//!
//! Every failure a user can cause or meet is reported as ONE line saying what is wrong and what to
//! do, and the process exits with a code that tells a scheduler *which kind* of failure it was: a
//! workflow engine retries an external-service failure, but not bad input.

use std::fmt;

/// The kind of a failure; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bug or an impossible state. Exit code 1.
    Internal,
    /// The run's inputs, a credential file or a document are unusable. Exit code 2 (clap's code
    /// for a bad command line is also 2).
    BadInput,
    /// An upstream stage's marker is missing, tampered with, or belongs to another run. Exit code 3.
    Upstream,
    /// OpenAI, Google or Paperspace failed (after retries), refused the credentials, or lost a
    /// resource. Exit code 4: a scheduler may retry.
    External,
    /// The outputs volume is read-only, full, or otherwise cannot be written. Exit code 5.
    Storage,
    /// Another run holds the lock for this company and stage. Exit code 6: retry later.
    Busy,
}

impl ErrorKind {
    /// The process exit code for this kind (the table in README.md).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::BadInput => 2,
            ErrorKind::Upstream => 3,
            ErrorKind::External => 4,
            ErrorKind::Storage => 5,
            ErrorKind::Busy => 6,
        }
    }

    /// A short name used in the `error_kind` log field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Upstream => "upstream",
            ErrorKind::External => "external",
            ErrorKind::Storage => "storage",
            ErrorKind::Busy => "busy",
        }
    }
}

/// A failure with its kind, a one-line message (what is wrong and what to do) and the cause.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result type of the shared contract and the jobs.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: one_line(message.into()),
            source: None,
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Upstream, message)
    }
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::External, message)
    }
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy, message)
    }

    /// Attaches the underlying cause (kept for the log's error chain, not for the one-liner).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A storage error for a failed write, read or rename of `path`.
    pub fn io(action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        let hint = match err.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                "make the outputs directory writable or pass another --outputs"
            }
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                "free space on the outputs volume or give it more"
            }
            std::io::ErrorKind::NotFound => "check that the path exists",
            _ => "check the outputs volume",
        };
        Error::storage(format!("cannot {action} {}: {err}; {hint}", path.display()))
            .with_source(err)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The message followed by every cause, `: `-separated, for the log's `error` field.
    pub fn chain(&self) -> String {
        let mut out = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&one_line(text));
            }
            cause = c.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Messages are one line by contract: a newline inside would break log parsers and the CLI.
fn one_line(message: String) -> String {
    if message.contains(['\n', '\r']) {
        message
            .split(['\n', '\r'])
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_nonzero_exit_code() {
        let kinds = [
            ErrorKind::Internal,
            ErrorKind::BadInput,
            ErrorKind::Upstream,
            ErrorKind::External,
            ErrorKind::Storage,
            ErrorKind::Busy,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        assert!(codes.iter().all(|&c| c != 0));
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
    }

    #[test]
    fn messages_are_single_lines_and_chain_includes_causes() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::storage("cannot write x\nsecond line").with_source(io);
        assert_eq!(err.to_string(), "cannot write x second line");
        assert_eq!(err.chain(), "cannot write x second line: disk on fire");
        assert_eq!(err.exit_code(), 5);
    }
}
