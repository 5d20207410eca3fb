//! CNI spec versions: parsing, the versions this crate speaks, the VERSION reply, and the
//! selection rule of CNI 1.1 (the highest of `cniVersion` and `cniVersions`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The newest spec version this crate implements.
pub const CURRENT_VERSION: &str = "1.1.0";

/// The spec versions this crate reads and writes. Versions 0.1.0 and 0.2.0 use an older result
/// layout (`ip4`/`ip6`) that this crate does not implement.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A CNI spec version such as `1.1.0`, ordered numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl Version {
    /// 0.4.0: the first version with CHECK and `prevResult` on DEL.
    pub const V0_4_0: Version = Version::new(0, 4, 0);
    /// 1.0.0: the first version without `ips[].version` in results.
    pub const V1_0_0: Version = Version::new(1, 0, 0);
    /// 1.1.0: the first version with STATUS, GC and `cniVersions`.
    pub const V1_1_0: Version = Version::new(1, 1, 0);

    /// Creates a version from its three numbers.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Returns true when this crate implements the version (see [`SUPPORTED_VERSIONS`]).
    pub fn is_supported(&self) -> bool {
        SUPPORTED_VERSIONS
            .iter()
            .any(|text| text.parse::<Version>().is_ok_and(|known| known == *self))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The text is not a `MAJOR.MINOR.PATCH` version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid CNI version \"{0}\": expected MAJOR.MINOR.PATCH")]
pub struct InvalidVersion(pub String);

impl FromStr for Version {
    type Err = InvalidVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidVersion(text.to_owned());
        let mut numbers = text.split('.').map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse::<u32>().map_err(|_| invalid())
        });
        let major = numbers.next().ok_or_else(invalid)??;
        let minor = numbers.next().ok_or_else(invalid)??;
        let patch = numbers.next().ok_or_else(invalid)??;
        if numbers.next().is_some() {
            return Err(invalid());
        }
        Ok(Version::new(major, minor, patch))
    }
}

/// Picks the version a runtime uses for a configuration: the highest version this crate supports
/// among `cni_version` and `cni_versions` (CNI 1.1 "Version considerations").
///
/// Entries that do not parse or that this crate does not support are skipped, so a configuration
/// may list versions newer than this crate. Returns `None` when no listed version is usable.
pub fn select_version<'a>(
    cni_version: Option<&'a str>,
    cni_versions: impl IntoIterator<Item = &'a str>,
) -> Option<Version> {
    cni_version
        .into_iter()
        .chain(cni_versions)
        .filter_map(|text| text.parse::<Version>().ok())
        .filter(Version::is_supported)
        .max()
}

/// The VERSION reply of a plugin: `{"cniVersion": ..., "supportedVersions": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VersionInfo {
    /// `cniVersion`: the version of this reply.
    pub cni_version: String,
    /// `supportedVersions`: every version the plugin accepts.
    #[serde(default)]
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// Creates a reply listing `supported`.
    pub fn new(cni_version: impl Into<String>, supported: &[&str]) -> Self {
        VersionInfo {
            cni_version: cni_version.into(),
            supported_versions: supported.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    /// Returns true when the plugin lists `version`.
    pub fn supports(&self, version: Version) -> bool {
        self.supported_versions
            .iter()
            .any(|text| text.parse::<Version>().is_ok_and(|v| v == version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        let v = |text: &str| text.parse::<Version>().unwrap();
        assert!(v("0.10.0") > v("0.4.0"));
        assert!(v("1.1.0") > v("1.0.0"));
        assert_eq!(v("1.1.0").to_string(), "1.1.0");
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for text in [
            "", "1", "1.0", "1.0.0.0", "1.x.0", "1..0", "-1.0.0", "v1.0.0", " 1.0.0",
        ] {
            assert!(text.parse::<Version>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn selection_takes_highest_supported() {
        assert_eq!(
            select_version(Some("1.0.0"), ["1.1.0", "0.4.0"]),
            Some(Version::V1_1_0)
        );
        assert_eq!(select_version(Some("0.4.0"), []), Some(Version::V0_4_0));
        assert_eq!(
            select_version(Some("1.0.0"), ["9.0.0", "junk"]),
            Some(Version::V1_0_0)
        );
        assert_eq!(select_version(None, ["0.2.0"]), None);
        assert_eq!(select_version(Some("2.0.0"), []), None);
    }

    #[test]
    fn version_info_matches_wire_format() {
        let info = VersionInfo::new("1.1.0", SUPPORTED_VERSIONS);
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(
            json,
            r#"{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        );
        assert!(info.supports(Version::V0_4_0));
        assert!(!info.supports(Version::new(0, 2, 0)));
    }
}
