//! Errors shared by every reader: a parse error that quotes the text, and a file error that names
//! the path.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Text that could not be parsed into one of the vocabulary types.
///
/// The message quotes the text and says what was wrong with it, for example
/// `invalid CPU list "3-1": range "3-1" ends before it starts`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {text:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    text: String,
    reason: String,
}

impl ParseError {
    /// Creates a parse error for `text`, which was expected to be a `what` (such as "CPU list").
    pub fn new(what: &'static str, text: &str, reason: impl Into<String>) -> Self {
        ParseError {
            what,
            text: text.to_owned(),
            reason: reason.into(),
        }
    }

    /// Kind of value that was expected, such as "CPU list" or "PCI address".
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Text that was rejected, as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Reason the text was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A host file (under `/sys`, `/proc`, `/run` or `/dev` of a [`HostRoot`](crate::HostRoot)) that
/// could not be read, parsed or written.
#[derive(Debug, Error)]
pub enum FileError {
    /// Reading the file failed.
    #[error("failed to read {}", path.display())]
    Read {
        /// File that was read.
        path: PathBuf,
        /// Error from the read.
        #[source]
        source: io::Error,
    },
    /// The file was read but its contents are not what the kernel documents.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// File that was read.
        path: PathBuf,
        /// What was wrong with its text.
        #[source]
        source: ParseError,
    },
    /// Writing a value to the file failed.
    #[error("failed to write {value:?} to {}", path.display())]
    Write {
        /// File that was written.
        path: PathBuf,
        /// Value that was written.
        value: String,
        /// Error from the write.
        #[source]
        source: io::Error,
    },
}

impl FileError {
    /// Creates a [`FileError::Read`].
    pub fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileError::Read {
            path: path.into(),
            source,
        }
    }

    /// Creates a [`FileError::Parse`].
    pub fn parse(path: impl Into<PathBuf>, source: ParseError) -> Self {
        FileError::Parse {
            path: path.into(),
            source,
        }
    }

    /// Creates a [`FileError::Write`].
    pub fn write(path: impl Into<PathBuf>, value: impl Into<String>, source: io::Error) -> Self {
        FileError::Write {
            path: path.into(),
            value: value.into(),
            source,
        }
    }

    /// File the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Read { path, .. }
            | FileError::Parse { path, .. }
            | FileError::Write { path, .. } => path,
        }
    }

    /// Returns true when the file does not exist, which many sysfs readers treat as "not
    /// reported" rather than as a failure.
    pub fn is_not_found(&self) -> bool {
        match self {
            FileError::Read { source, .. } | FileError::Write { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            FileError::Parse { .. } => false,
        }
    }

    /// Returns the OS error code of a failed read or write, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            FileError::Read { source, .. } | FileError::Write { source, .. } => {
                source.raw_os_error()
            }
            FileError::Parse { .. } => None,
        }
    }
}
