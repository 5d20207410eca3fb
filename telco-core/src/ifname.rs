//! [`InterfaceName`]: a network interface name the kernel accepts.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

/// A network interface name valid for Linux: 1 to 15 bytes (`IFNAMSIZ` minus the terminating
/// NUL), no `/`, `:` or whitespace, and neither `.` nor `..`, the rules of the kernel's
/// `dev_valid_name`.
///
/// ```
/// use telco_core::InterfaceName;
///
/// assert!("net1".parse::<InterfaceName>().is_ok());
/// assert!("eth0:1".parse::<InterfaceName>().is_err());
/// assert!("a-name-too-long-for-linux".parse::<InterfaceName>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// Longest name in bytes.
    pub const MAX_LEN: usize = 15;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the name and returns its text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for InterfaceName {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let reason = if text.is_empty() {
            Some("empty name".to_owned())
        } else if text.len() > Self::MAX_LEN {
            Some(format!("longer than {} bytes", Self::MAX_LEN))
        } else if text == "." || text == ".." {
            Some("\".\" and \"..\" are reserved".to_owned())
        } else {
            text.chars()
                .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || *c == '\0')
                .map(|bad| format!("contains {bad:?}"))
        };
        match reason {
            Some(reason) => Err(ParseError::new("interface name", text, reason)),
            None => Ok(InterfaceName(text.to_owned())),
        }
    }
}

impl TryFrom<&str> for InterfaceName {
    type Error = ParseError;

    fn try_from(text: &str) -> Result<Self, ParseError> {
        text.parse()
    }
}

impl AsRef<str> for InterfaceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InterfaceName({:?})", self.0)
    }
}

#[cfg(feature = "serde")]
crate::serde_as_text!(InterfaceName, "a Linux interface name of 1 to 15 bytes");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_linux_names() {
        for text in [
            "eth0",
            "net1",
            "a",
            "ens1f0v3",
            "br-telco.100",
            "123456789012345",
        ] {
            assert_eq!(text.parse::<InterfaceName>().unwrap().as_str(), text);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for text in [
            "",
            ".",
            "..",
            "eth0:1",
            "a/b",
            "a b",
            "tab\tname",
            "1234567890123456",
        ] {
            let error = text.parse::<InterfaceName>().unwrap_err();
            assert_eq!(error.text(), text);
        }
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(text in "[a-zA-Z0-9_.-]{1,15}") {
            prop_assume!(text != "." && text != "..");
            let name: InterfaceName = text.parse().unwrap();
            prop_assert_eq!(name.to_string(), text);
        }
    }
}
