//! The CNI error result (`{"code", "msg", "details"}`) and its error codes (CNI spec "Error").

use std::fmt;

use serde::{Deserialize, Serialize};

/// A CNI error code. The spec reserves codes 0 to 99, so plugins use 100 and above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 1: incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: ErrorCode = ErrorCode(1);
    /// 2: unsupported field in the network configuration; the message names key and value.
    pub const UNSUPPORTED_FIELD: ErrorCode = ErrorCode(2);
    /// 3: the container is unknown or does not exist.
    pub const UNKNOWN_CONTAINER: ErrorCode = ErrorCode(3);
    /// 4: an environment variable is invalid or missing; the message names it.
    pub const INVALID_ENVIRONMENT: ErrorCode = ErrorCode(4);
    /// 5: I/O failure, such as reading stdin.
    pub const IO_FAILURE: ErrorCode = ErrorCode(5);
    /// 6: failed to decode content, such as malformed JSON.
    pub const DECODING_FAILURE: ErrorCode = ErrorCode(6);
    /// 7: invalid network configuration.
    pub const INVALID_NETWORK_CONFIG: ErrorCode = ErrorCode(7);
    /// 8: `CNI_NETNS` is the plugin's own namespace (libcni's skel, not in the spec table).
    pub const INVALID_NETNS: ErrorCode = ErrorCode(8);
    /// 11: transient failure; the runtime may retry later.
    pub const TRY_AGAIN_LATER: ErrorCode = ErrorCode(11);
    /// 50: the plugin cannot serve ADD (STATUS, CNI 1.1).
    pub const PLUGIN_NOT_AVAILABLE: ErrorCode = ErrorCode(50);
    /// 51: the plugin cannot serve ADD and existing containers may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: ErrorCode = ErrorCode(51);
    /// 999: internal error (libcni's skel uses it for errors that carry no code).
    pub const INTERNAL: ErrorCode = ErrorCode(999);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The error result a plugin writes to stdout before it exits with status 1.
///
/// `cniVersion` is optional on input because libcni's plugins never write it.
///
/// ```
/// use telco_net::cni::{ErrorCode, PluginError};
///
/// let error = PluginError::new(ErrorCode::INVALID_ENVIRONMENT, "required variable CNI_IFNAME is missing");
/// assert_eq!(
///     serde_json::to_string(&error).unwrap(),
///     r#"{"code":4,"msg":"required variable CNI_IFNAME is missing"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PluginError {
    /// `cniVersion`: the version of the request, when the plugin knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// `code`: the CNI error code.
    pub code: ErrorCode,
    /// `msg`: a short description.
    pub msg: String,
    /// `details`: longer text, such as the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl PluginError {
    /// Creates an error with a code and a message.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        PluginError {
            cni_version: None,
            code,
            msg: msg.into(),
            details: None,
        }
    }

    /// Creates an error whose `details` carry `cause` and the causes under it.
    pub fn with_cause(
        code: ErrorCode,
        msg: impl Into<String>,
        cause: &dyn std::error::Error,
    ) -> Self {
        PluginError::new(code, msg).details(error_chain(cause))
    }

    /// Sets `details`.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Sets `cniVersion`.
    pub fn version(mut self, cni_version: impl Into<String>) -> Self {
        self.cni_version = Some(cni_version.into());
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (CNI error code {})", self.msg, self.code)?;
        if let Some(details) = self.details.as_deref().filter(|d| !d.is_empty()) {
            write!(f, ": {details}")?;
        }
        Ok(())
    }
}

/// Joins an error and its sources with `": "`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_without_version_parses() {
        let error: PluginError = serde_json::from_str(
            r#"{"code":7,"msg":"Invalid Configuration","details":"too small"}"#,
        )
        .unwrap();
        assert_eq!(error.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert_eq!(error.cni_version, None);
        assert_eq!(
            error.to_string(),
            "Invalid Configuration (CNI error code 7): too small"
        );
    }

    #[test]
    fn error_with_version_round_trips() {
        let error = PluginError::new(ErrorCode(101), "no free VF")
            .details("pool sriov_a")
            .version("1.1.0");
        let json = serde_json::to_string(&error).unwrap();
        assert_eq!(
            json,
            r#"{"cniVersion":"1.1.0","code":101,"msg":"no free VF","details":"pool sriov_a"}"#
        );
        assert_eq!(serde_json::from_str::<PluginError>(&json).unwrap(), error);
    }
}
