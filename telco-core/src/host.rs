//! [`HostRoot`]: where the host's `/sys`, `/proc`, `/run` and `/dev` are.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{FileError, ParseError};

/// The root directory under which a reader finds `sys/`, `proc/`, `run/` and `dev/`.
///
/// Every reader in the telco crates takes a `HostRoot` rather than hard-coding `/sys`, so the
/// same code runs on the live host ([`HostRoot::system`]) and on a fixture tree
/// ([`HostRoot::at`]), such as one of hwloc's sysfs dumps extracted into a directory.
///
/// ```
/// use telco_core::HostRoot;
///
/// let host = HostRoot::at("/tmp/fixture");
/// assert_eq!(host.sys().to_str(), Some("/tmp/fixture/sys"));
/// assert_eq!(HostRoot::system().proc().to_str(), Some("/proc"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostRoot {
    root: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot::system()
    }
}

impl HostRoot {
    /// The live host: `/sys`, `/proc`, `/run` and `/dev`.
    pub fn system() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
        }
    }

    /// A tree rooted at `dir`, which contains `sys/`, `proc/` and so on.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        HostRoot { root: dir.into() }
    }

    /// Returns true for the live host's root.
    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `sys` directory.
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// The `proc` directory.
    pub fn proc(&self) -> PathBuf {
        self.root.join("proc")
    }

    /// The `run` directory.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The `dev` directory.
    pub fn dev(&self) -> PathBuf {
        self.root.join("dev")
    }

    /// Resolves an absolute host path such as `/sys/devices/system/cpu/online` inside this root.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        let relative = host_path.strip_prefix("/").unwrap_or(host_path);
        self.root.join(relative)
    }

    /// Reads a file under this root as text, with trailing newlines removed.
    pub fn read_string(&self, host_path: impl AsRef<Path>) -> Result<String, FileError> {
        read_trimmed(&self.path(host_path))
    }

    /// Reads a file under this root, or returns `None` when it does not exist.
    pub fn read_optional(&self, host_path: impl AsRef<Path>) -> Result<Option<String>, FileError> {
        match self.read_string(host_path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads a file under this root and parses its trimmed text with `T::from_str`.
    pub fn read_parsed<T>(&self, host_path: impl AsRef<Path>) -> Result<T, FileError>
    where
        T: FromStr<Err = ParseError>,
    {
        let path = self.path(host_path);
        let text = read_trimmed(&path)?;
        text.trim()
            .parse()
            .map_err(|error| FileError::parse(path, error))
    }

    /// Reads a file holding one decimal integer (negative values allowed, as in `numa_node`).
    pub fn read_integer(&self, host_path: impl AsRef<Path>) -> Result<i64, FileError> {
        let path = self.path(host_path);
        let text = read_trimmed(&path)?;
        parse_integer(&text).map_err(|error| FileError::parse(path, error))
    }

    /// Writes `value` to a file under this root, as `echo -n value > file` would.
    pub fn write(&self, host_path: impl AsRef<Path>, value: &str) -> Result<(), FileError> {
        let path = self.path(host_path);
        fs::write(&path, value).map_err(|source| FileError::write(path, value, source))
    }
}

/// Reads `path` as text with trailing newlines removed, naming the path on failure.
pub fn read_trimmed(path: &Path) -> Result<String, FileError> {
    let mut text = fs::read_to_string(path).map_err(|source| FileError::read(path, source))?;
    while text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

fn parse_integer(text: &str) -> Result<i64, ParseError> {
    let trimmed = text.trim();
    trimmed
        .parse()
        .map_err(|_| ParseError::new("integer", text, "not a decimal integer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuSet;

    #[test]
    fn path_resolves_inside_root() {
        let host = HostRoot::at("/fixture");
        assert_eq!(
            host.path("/sys/devices/system/cpu/online"),
            Path::new("/fixture/sys/devices/system/cpu/online")
        );
        assert_eq!(
            host.path("proc/cpuinfo"),
            Path::new("/fixture/proc/cpuinfo")
        );
    }

    #[test]
    fn read_parsed_names_file_on_bad_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        std::fs::write(dir.path().join("sys/online"), "0-x\n").unwrap();
        let host = HostRoot::at(dir.path());

        let error = host.read_parsed::<CpuSet>("/sys/online").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("sys/online"), "{message}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains("\"0-x\""), "{source}");
    }

    #[test]
    fn read_optional_maps_missing_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::at(dir.path());
        assert_eq!(host.read_optional("/sys/nothing").unwrap(), None);
    }

    #[test]
    fn read_integer_accepts_negative() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("numa_node"), "-1\n").unwrap();
        let host = HostRoot::at(dir.path());
        assert_eq!(host.read_integer("/numa_node").unwrap(), -1);
    }
}
