//! Shared helpers of the example programs.

pub mod pod;

use std::io::IsTerminal;

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` or else by `default_filter`
/// (`"warn"`, `"info"`, ...). Colours are used only when stderr is a terminal, so logs
/// captured in files and by test harnesses carry no escape sequences.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}
