//! [`PodError`]: a placement step or a teardown step that failed.

use std::io;
use std::path::PathBuf;

use super::spec::SpecError;

/// A step of `vnf-pod` that failed, with what it worked on. The cause is in the source chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PodError {
    /// The spec file could not be read.
    #[error("failed to read spec file {}", path.display())]
    ReadSpec {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The spec is invalid.
    #[error("invalid spec {origin}")]
    Spec {
        /// The file, or `built-in`.
        origin: String,
        /// The problem, with the field.
        #[source]
        source: SpecError,
    },
    /// The pod already exists.
    #[error("pod {name:?} already exists (state in {}); remove it with `vnf-pod down {name}`", dir.display())]
    AlreadyExists {
        /// Pod name.
        name: String,
        /// Its state directory.
        dir: PathBuf,
    },
    /// No state is recorded for the pod.
    #[error("no pod named {name:?} (no state in {})", dir.display())]
    NotFound {
        /// Pod name.
        name: String,
        /// The state directory looked for.
        dir: PathBuf,
    },
    /// `vnf-pod` needs root for namespaces, links and cgroups.
    #[error("vnf-pod must run as root: it creates network namespaces, links and cgroups")]
    NotRoot,
    /// Reading or writing the pod's state failed.
    #[error("pod state {} could not be {action}", path.display())]
    State {
        /// The failed action: `read`, `written`, `parsed`, `removed`, `locked`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A placement or teardown step failed.
    #[error("step {step:?} failed{}", context_suffix(.context))]
    Step {
        /// The step's name, such as `discover topology` or `attach networks`.
        step: &'static str,
        /// The object of the step (a namespace, a link, a cgroup path), or empty.
        context: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The placement was interrupted by SIGINT or SIGTERM; everything was torn down.
    #[error("interrupted by {signal} during step {step:?}")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
        /// The step that was running or next.
        step: &'static str,
    },
    /// Teardown left things behind; each failure is listed.
    #[error("teardown of pod {name:?} failed in {} step(s): {}", failures.len(), failures.join("; "))]
    Teardown {
        /// Pod name.
        name: String,
        /// Each failed undo step with its error chain.
        failures: Vec<String>,
    },
}

fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" for {context}")
    }
}

impl PodError {
    /// Creates a step error with the context it worked on.
    pub fn step(
        step: &'static str,
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> PodError {
        PodError::Step {
            step,
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Formats an error and its sources on one line, `outer: cause: root cause`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
