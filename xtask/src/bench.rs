//! `cargo xtask bench`: placeholder until the bench programs land.

use std::process::ExitCode;

use anyhow::Result;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchOptions {}

/// Runs the benchmarks.
pub fn run(_options: &BenchOptions) -> Result<ExitCode> {
    anyhow::bail!("not written yet")
}
