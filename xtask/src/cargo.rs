//! Builds through cargo and reads what it built.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A test executable that cargo built, with the package directory it runs in.
#[derive(Debug, Clone)]
pub struct TestBinary {
    /// Display name: `package::target`.
    pub name: String,
    /// Path of the executable.
    pub path: PathBuf,
    /// Directory of the package's Cargo.toml, the working directory cargo gives tests.
    pub manifest_dir: PathBuf,
    /// Package name, for `CARGO_PKG_NAME`.
    pub package: String,
}

/// Returns the workspace root (the directory of the top Cargo.toml).
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf();
    Ok(root)
}

/// Returns the target directory cargo uses for this workspace.
pub fn target_dir(workspace: &Path) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return Ok(if dir.is_absolute() {
            dir
        } else {
            workspace.join(dir)
        });
    }
    Ok(workspace.join("target"))
}

/// Builds every test target of the workspace with every feature (so the `hwloc` cross-check and
/// the tokio wrappers are tested too) without running them, and returns the executables.
pub fn build_test_binaries(workspace: &Path) -> Result<Vec<TestBinary>> {
    let output = Command::new(cargo())
        .current_dir(workspace)
        .args([
            "test",
            "--workspace",
            "--all-features",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("failed to run cargo test --no-run")?;
    if !output.status.success() {
        bail!("cargo test --no-run failed with {}", output.status);
    }
    let mut binaries = Vec::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        let manifest_path = message["manifest_path"]
            .as_str()
            .context("compiler-artifact without manifest_path")?;
        let package = package_name(&message);
        let target = message["target"]["name"].as_str().unwrap_or("?");
        binaries.push(TestBinary {
            name: format!("{package}::{target}"),
            path: PathBuf::from(executable),
            manifest_dir: Path::new(manifest_path)
                .parent()
                .context("manifest path has no parent")?
                .to_path_buf(),
            package,
        });
    }
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    binaries.dedup_by(|a, b| a.path == b.path);
    Ok(binaries)
}

fn package_name(message: &Value) -> String {
    // package_id is `path+file:///dir/telco-core#0.1.0` or `telco-core 0.1.0 (path+...)`.
    let id = message["package_id"].as_str().unwrap_or("?");
    if let Some((_, tail)) = id.rsplit_once('/') {
        let name = tail.split('#').next().unwrap_or(tail);
        if let Some((name, _)) = name.split_once('@') {
            return name.to_owned();
        }
        return name.to_owned();
    }
    id.split(' ').next().unwrap_or(id).to_owned()
}

/// Builds the release binaries of the examples crate (vnf-pod, the CNI plugins, the tools).
pub fn build_release_binaries(workspace: &Path) -> Result<()> {
    let status = Command::new(cargo())
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--package",
            "telco-examples",
            "--bins",
        ])
        .status()
        .context("failed to run cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release failed with {status}");
    }
    Ok(())
}

/// Lists the tests of a test binary whose names contain `filter`, ignored ones included.
pub fn list_tests(binary: &TestBinary, filter: &str) -> Result<Vec<String>> {
    let output = Command::new(&binary.path)
        .current_dir(&binary.manifest_dir)
        .args(["--list", "--format", "terse", "--include-ignored", filter])
        .output()
        .with_context(|| format!("failed to list the tests of {}", binary.path.display()))?;
    if !output.status.success() {
        bail!(
            "{} --list failed with {}: {}",
            binary.path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// Lists the ignored tests of a test binary.
pub fn list_ignored_tests(binary: &TestBinary) -> Result<Vec<String>> {
    let output = Command::new(&binary.path)
        .current_dir(&binary.manifest_dir)
        .args(["--list", "--format", "terse", "--ignored"])
        .output()
        .with_context(|| format!("failed to list the tests of {}", binary.path.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// The cargo that runs this xtask.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
