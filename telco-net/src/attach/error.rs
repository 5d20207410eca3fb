//! [`AttachError`] and [`DetachError`].

use std::fmt;

use super::KindError;
use crate::netns::NetnsError;

/// The step of an attachment that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The kind making or removing the interface.
    Kind,
    /// Taking or giving back addresses.
    Ipam,
    /// Adding addresses to the interface.
    Address,
    /// Bringing the interface up or reading it.
    Link,
    /// Adding routes.
    Route,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Kind => "kind",
            Step::Ipam => "ipam",
            Step::Address => "address",
            Step::Link => "link",
            Step::Route => "route",
        })
    }
}

/// One failed step of one attachment.
#[derive(Debug, thiserror::Error)]
#[error("network {network} as {interface} ({kind}): {step} step failed")]
pub struct StepError {
    /// The network.
    pub network: String,
    /// The interface inside the pod.
    pub interface: String,
    /// The kind.
    pub kind: &'static str,
    /// The step.
    pub step: Step,
    /// The cause.
    #[source]
    pub source: KindError,
}

/// An attach that failed. Everything it had made was removed again unless `rollback` lists
/// failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The specs contradict each other.
    #[error("invalid attachment list: {reason}")]
    InvalidSpec {
        /// What is wrong.
        reason: String,
    },
    /// A netlink session for the pod or the host could not be opened.
    #[error("open netlink session for the attach")]
    Session(#[source] NetnsError),
    /// An attachment failed; the earlier ones were rolled back.
    #[error("attachment {index} failed{}", rollback_note(rollback))]
    Attachment {
        /// Position of the failed attachment in the list.
        index: usize,
        /// The failed step.
        #[source]
        error: StepError,
        /// Failures while rolling back, empty when everything was removed.
        rollback: Vec<StepError>,
    },
}

fn rollback_note(rollback: &[StepError]) -> String {
    match rollback.len() {
        0 => String::new(),
        n => format!(" and {n} rollback steps failed (leftovers may remain)"),
    }
}

/// A detach that left something behind: every failure, in the order met. The detach went on
/// past each one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetachError {
    /// A netlink session for the pod or the host could not be opened.
    #[error("open netlink session for the detach")]
    Session(#[source] NetnsError),
    /// Some steps failed.
    #[error("detach failed in {} steps: {}", failures.len(), list(failures))]
    Failures {
        /// The failures.
        failures: Vec<StepError>,
    },
}

fn list(failures: &[StepError]) -> String {
    failures
        .iter()
        .map(|failure| {
            let mut text = failure.to_string();
            let mut source: Option<&dyn std::error::Error> = Some(failure.source.as_ref());
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}
