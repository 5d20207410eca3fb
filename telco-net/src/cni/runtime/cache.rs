//! The result cache in libcni's on-disk format (`cniCacheV1`), so that a node can switch between
//! this runtime and libcni-based ones with attachments in place.
//!
//! Files live at `<cache dir>/results/<network>-<container ID>-<ifname>`; `config` holds the
//! conflist bytes in standard base64, as Go encodes a byte slice. The base64 codec is written here
//! because no workspace dependency provides one.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CniError;

/// The cache `kind` libcni writes.
pub const CACHE_KIND: &str = "cniCacheV1";

/// One cached attachment, the JSON object of a cache file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CachedAttachment {
    /// `kind`: always `cniCacheV1`.
    pub kind: String,
    /// `containerId`.
    pub container_id: String,
    /// `config`: the conflist bytes used for ADD.
    #[serde(with = "base64_bytes")]
    pub config: Vec<u8>,
    /// `ifName`.
    pub if_name: String,
    /// `networkName`.
    pub network_name: String,
    /// `netns`: the namespace path given to ADD.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// `cniArgs`: the `CNI_ARGS` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<(String, String)>,
    /// `capabilityArgs`: the runtime's capability values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub capability_args: Map<String, Value>,
    /// `result`: the final ADD result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// The path of the cache file of one attachment.
pub fn cache_path(cache_dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    cache_dir
        .join("results")
        .join(format!("{network}-{container_id}-{ifname}"))
}

pub(crate) fn write(cache_dir: &Path, entry: &CachedAttachment) -> Result<(), CniError> {
    let path = cache_path(
        cache_dir,
        &entry.network_name,
        &entry.container_id,
        &entry.if_name,
    );
    let error = |action, source| CniError::Cache {
        action,
        path: path.clone(),
        source,
    };
    let dir = path.parent().expect("cache path has a parent");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| error("write", e))?;
    let bytes = serde_json::to_vec(entry).map_err(|e| error("write", e.into()))?;
    // Write a sibling file and rename it, so a reader never sees half an entry.
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| error("write", e))?;
    file.write_all(&bytes).map_err(|e| error("write", e))?;
    std::fs::rename(&temp, &path).map_err(|e| error("write", e))
}

pub(crate) fn read(path: &Path) -> Result<Option<CachedAttachment>, CniError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::Cache {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CniError::Cache {
            action: "decode",
            path: path.to_owned(),
            source: e.into(),
        })
}

pub(crate) fn remove(path: &Path) -> Result<(), CniError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CniError::Cache {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Every cached attachment of `network`, keyed by file path. Files that do not decode are
/// skipped with a debug event, as libcni skips them.
pub(crate) fn list(
    cache_dir: &Path,
    network: &str,
) -> Result<BTreeMap<PathBuf, CachedAttachment>, CniError> {
    let dir = cache_dir.join("results");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(CniError::Cache {
                action: "read",
                path: dir,
                source,
            });
        }
    };
    let prefix = format!("{network}-");
    let mut found = BTreeMap::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        match read(&path) {
            Ok(Some(cached)) if cached.network_name == network => {
                found.insert(path, cached);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "skipping CNI cache file")
            }
        }
    }
    Ok(found)
}

mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64 in \"config\""))
    }

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let group = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    let index = (group >> (18 - 6 * i)) & 0x3f;
                    text.push(char::from(ALPHABET[index as usize]));
                } else {
                    text.push('=');
                }
            }
        }
        text
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
        for (index, chunk) in text.chunks(4).enumerate() {
            let last = index == text.len() / 4 - 1;
            let padding = chunk.iter().rev().take_while(|c| **c == b'=').count();
            if padding > 2 || (padding > 0 && !last) {
                return None;
            }
            let mut group = 0u32;
            for (i, c) in chunk[..4 - padding].iter().enumerate() {
                let value = ALPHABET.iter().position(|a| a == c)?;
                group |= u32::try_from(value).ok()? << (18 - 6 * i);
            }
            let [_, b0, b1, b2] = group.to_be_bytes();
            bytes.extend_from_slice(&[b0, b1, b2][..3 - padding]);
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_go_encoding() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"{\"name\":\"n\"}", "eyJuYW1lIjoibiJ9"),
            (&[0xff, 0xfe, 0x00], "//4A"),
        ];
        for (bytes, text) in cases {
            assert_eq!(base64_bytes::encode(bytes), *text);
            assert_eq!(base64_bytes::decode(text).as_deref(), Some(*bytes));
        }
        for bad in ["Zg=", "Z===", "Zg==Zm9v", "Zm9*"] {
            assert_eq!(base64_bytes::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn entry_uses_libcni_keys_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let entry = CachedAttachment {
            kind: CACHE_KIND.to_owned(),
            container_id: "c1".to_owned(),
            config: br#"{"name":"n"}"#.to_vec(),
            if_name: "eth0".to_owned(),
            network_name: "n".to_owned(),
            netns: "/run/netns/x".to_owned(),
            cni_args: vec![("K8S_POD_NAME".to_owned(), "web".to_owned())],
            capability_args: Map::new(),
            result: Some(serde_json::json!({"cniVersion": "1.0.0"})),
        };
        write(dir.path(), &entry).unwrap();
        let path = cache_path(dir.path(), "n", "c1", "eth0");
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"kind": "cniCacheV1", "containerId": "c1", "config": "eyJuYW1lIjoibiJ9",
                "ifName": "eth0", "networkName": "n", "netns": "/run/netns/x",
                "cniArgs": [["K8S_POD_NAME", "web"]], "result": {"cniVersion": "1.0.0"}})
        );
        assert_eq!(read(&path).unwrap(), Some(entry.clone()));
        assert_eq!(list(dir.path(), "n").unwrap().len(), 1);
        assert!(list(dir.path(), "m").unwrap().is_empty());
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(read(&path).unwrap(), None);
    }
}
