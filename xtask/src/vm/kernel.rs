//! Finds Debian's kernel and its modules for the guest.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A kernel image with its module tree.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Release string, such as `6.1.0-57-amd64`.
    pub release: String,
    /// The bzImage.
    pub image: PathBuf,
    /// `/lib/modules/<release>`.
    pub modules: PathBuf,
}

/// Modules the guest loads at boot, by module name (dependencies follow from `modules.dep`).
///
/// `crc32c_generic` comes first because `libcrc32c`, which sctp needs, requests crc32c from the
/// crypto API when it loads and fails without a provider.
pub const GUEST_MODULES: &[&str] = &[
    "crc32c_generic",
    "crc32c-intel",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "sctp",
    "8021q",
    "ipvlan",
    "macvlan",
    "veth",
    "bridge",
    "tun",
    "dummy",
    "igb",
    "igbvf",
    "vfio",
    "vfio_iommu_type1",
    "vfio-pci",
    "kvm",
    "kvm-amd",
    "kvm-intel",
    // Not used by the outer guest: packed so that tests can put them in a nested microVM's
    // initramfs.
    "virtio_mmio",
    "virtio_net",
    "virtio_blk",
];

/// Finds the newest `linux-image-*-amd64` kernel under `/boot` that has its modules installed.
pub fn find_kernel() -> Result<Kernel> {
    let mut releases: Vec<String> = std::fs::read_dir("/boot")
        .context("failed to list /boot")?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_prefix("vmlinuz-"))
                .map(str::to_owned)
        })
        .filter(|release| {
            Path::new("/lib/modules")
                .join(release)
                .join("modules.dep")
                .exists()
        })
        .collect();
    releases.sort_by(|a, b| compare_versions(a, b));
    let Some(release) = releases.pop() else {
        bail!(
            "no kernel with modules found under /boot and /lib/modules; install Debian's \
             linux-image-amd64 (scripts/setup.sh does)"
        );
    };
    Ok(Kernel {
        image: PathBuf::from("/boot").join(format!("vmlinuz-{release}")),
        modules: PathBuf::from("/lib/modules").join(&release),
        release,
    })
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| {
        s.split(|c: char| !c.is_ascii_digit())
            .filter_map(|part| part.parse::<u64>().ok())
            .collect::<Vec<_>>()
    };
    key(a).cmp(&key(b))
}

/// Returns the module files (relative to the module tree) for `names` and everything they depend
/// on, from the kernel's `modules.dep`. Names the kernel builds in or lacks are returned apart.
pub fn module_closure(kernel: &Kernel, names: &[&str]) -> Result<(BTreeSet<String>, Vec<String>)> {
    let dep_path = kernel.modules.join("modules.dep");
    let text = std::fs::read_to_string(&dep_path)
        .with_context(|| format!("failed to read {}", dep_path.display()))?;
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in text.lines() {
        let Some((file, rest)) = line.split_once(':') else {
            continue;
        };
        let name = module_name(file);
        deps.insert(
            name,
            (
                file.to_owned(),
                rest.split_whitespace().map(str::to_owned).collect(),
            ),
        );
    }
    let builtin =
        std::fs::read_to_string(kernel.modules.join("modules.builtin")).unwrap_or_default();
    let builtin: BTreeSet<String> = builtin.lines().map(module_name).collect();

    let mut files = BTreeSet::new();
    let mut absent = Vec::new();
    for name in names {
        let normalized = name.replace('-', "_");
        match deps.get(&normalized) {
            Some((file, dependencies)) => {
                files.insert(file.clone());
                files.extend(dependencies.iter().cloned());
            }
            None if builtin.contains(&normalized) => {}
            None => absent.push((*name).to_owned()),
        }
    }
    Ok((files, absent))
}

fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_normalize_dashes_and_suffixes() {
        assert_eq!(module_name("kernel/arch/x86/kvm/kvm-amd.ko"), "kvm_amd");
        assert_eq!(module_name("kernel/net/sctp/sctp.ko.xz"), "sctp");
    }

    #[test]
    fn versions_sort_numerically() {
        assert_eq!(
            compare_versions("6.1.0-9-amd64", "6.1.0-57-amd64"),
            std::cmp::Ordering::Less
        );
    }
}
