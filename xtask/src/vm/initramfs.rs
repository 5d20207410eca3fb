//! Builds the guest's initramfs: busybox, the peer tools with their shared libraries, the kernel
//! modules the tests need, the init script and the command to run.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::kernel::{self, Kernel};

/// Peer tools packed into the guest, by command name, with the Debian package that has each.
pub const GUEST_TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("bridge", "iproute2"),
    ("sctp_darn", "lksctp-tools"),
    ("sctp_test", "lksctp-tools"),
    ("checksctp", "lksctp-tools"),
    ("ethtool", "ethtool"),
    ("modprobe", "kmod"),
    ("lsmod", "kmod"),
    ("qemu-system-x86_64", "qemu-system-x86"),
];

/// Host data directories copied whole into the guest: QEMU's firmware, for the benchmark that
/// boots `qemu-system-x86_64 -M microvm` beside our microVM (it loads seabios's
/// `bios-microvm.bin`).
const GUEST_DATA_DIRS: &[&str] = &["/usr/share/qemu", "/usr/share/seabios"];

/// Contents of one initramfs.
#[derive(Debug)]
pub struct Contents<'a> {
    pub kernel: &'a Kernel,
    /// Directories the guest mounts from the host over 9p, at the same path: (tag, host path).
    pub shares: &'a [(String, PathBuf)],
    /// Directories put in front of the guest's PATH.
    pub extra_path: &'a [PathBuf],
    /// Host files copied in: (host path, guest path).
    pub copies: &'a [(PathBuf, PathBuf)],
    /// Host executables whose shared libraries the guest needs (test binaries read over 9p).
    pub library_users: &'a [PathBuf],
    /// Shell script the init runs after setting up the guest.
    pub script: &'a str,
}

/// Writes the initramfs for `contents` to `output` (an uncompressed newc cpio archive), using
/// `work` as scratch space.
pub fn build(contents: &Contents<'_>, work: &Path, output: &Path) -> Result<()> {
    if work.exists() {
        fs::remove_dir_all(work).with_context(|| format!("failed to clear {}", work.display()))?;
    }
    let tree = work.join("tree");
    lay_out_base(&tree)?;
    copy_file(Path::new(BUSYBOX), &tree.join("usr/bin/busybox"))?;

    let mut libraries_of = Vec::new();
    for (tool, package) in GUEST_TOOLS {
        let path = which(tool).with_context(|| {
            format!(
                "{tool} not found on the host; install Debian's {package} (scripts/setup.sh does)"
            )
        })?;
        let real = fs::canonicalize(&path)?;
        copy_file(&real, &tree.join(strip_root(&usr_path(&real))))?;
        let link = tree.join(strip_root(&usr_path(&path)));
        if !link.exists() {
            make_parent(&link)?;
            symlink(&real, &link)?;
        }
        libraries_of.push(real);
    }
    copy_cni_plugins(&tree)?;
    for dir in GUEST_DATA_DIRS {
        copy_tree(Path::new(dir), &tree.join(strip_root(Path::new(dir))))?;
    }
    for (host, guest) in contents.copies {
        copy_file(host, &tree.join(strip_root(guest)))
            .with_context(|| format!("--copy {}:{}", host.display(), guest.display()))?;
        libraries_of.push(host.clone());
    }
    libraries_of.extend(contents.library_users.iter().cloned());
    copy_shared_libraries(&libraries_of, &tree)?;

    copy_modules(contents.kernel, &tree)?;
    copy_file(&contents.kernel.image, &tree.join("boot/vmlinuz"))?;
    write_init(contents, &tree)?;
    write_executable(&tree.join("telco/run.sh"), contents.script)?;
    pack(&tree, output)
}

const BUSYBOX: &str = "/bin/busybox";

fn lay_out_base(tree: &Path) -> Result<()> {
    for dir in [
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "etc",
        "root",
        "mnt",
        "boot",
        "telco",
        "var/lib",
        "var/run",
    ] {
        fs::create_dir_all(tree.join(dir))?;
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(target, tree.join(link))?;
    }
    fs::write(
        tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(tree.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(
        tree.join("etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n",
    )?;
    fs::write(tree.join("etc/hostname"), "telco-vm\n")?;
    Ok(())
}

/// Maps `/bin/x`, `/lib/x` and so on to their merged-/usr paths.
fn usr_path(path: &Path) -> PathBuf {
    for prefix in ["/bin", "/sbin", "/lib", "/lib64"] {
        if let Ok(rest) = path.strip_prefix(prefix) {
            return Path::new("/usr").join(&prefix[1..]).join(rest);
        }
    }
    path.to_path_buf()
}

fn strip_root(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

fn which(tool: &str) -> Result<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let candidate = Path::new(dir).join(tool);
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("{tool} not found")
}

/// Directory of Debian's CNI reference plugins, packed so vm-tier tests can run them.
const CNI_PLUGIN_DIR: &str = "/usr/lib/cni";

fn copy_cni_plugins(tree: &Path) -> Result<()> {
    let entries = fs::read_dir(CNI_PLUGIN_DIR).with_context(|| {
        format!("failed to list {CNI_PLUGIN_DIR}; install Debian's containernetworking-plugins (scripts/setup.sh does)")
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        copy_file(&path, &tree.join(strip_root(&path)))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let entries =
        fs::read_dir(from).with_context(|| format!("failed to list {}", from.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let destination = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &destination)?;
        } else {
            copy_file(&path, &destination)?;
        }
    }
    Ok(())
}

fn make_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    make_parent(to)?;
    fs::copy(from, to)
        .with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    make_parent(path)?;
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Copies every shared library that `ldd` lists for the executables, at the paths the dynamic
/// loader looks them up.
fn copy_shared_libraries(executables: &[PathBuf], tree: &Path) -> Result<()> {
    let mut libraries = BTreeSet::new();
    for executable in executables {
        let output = Command::new("ldd")
            .arg(executable)
            .stderr(Stdio::null())
            .output()
            .context("failed to run ldd")?;
        // Static executables make ldd exit non-zero with "not a dynamic executable".
        if !output.status.success() {
            continue;
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if line.contains("not found") {
                bail!(
                    "{}: shared library missing on the host: {}",
                    executable.display(),
                    line.trim()
                );
            }
            let path = line
                .split_whitespace()
                .find(|word| word.starts_with('/'))
                .map(PathBuf::from);
            if let Some(path) = path {
                libraries.insert(path);
            }
        }
    }
    for library in libraries {
        let destination = tree.join(strip_root(&usr_path(&library)));
        if !destination.exists() {
            copy_file(&library, &destination)?;
        }
    }
    Ok(())
}

fn copy_modules(kernel: &Kernel, tree: &Path) -> Result<()> {
    let (files, absent) = kernel::module_closure(kernel, kernel::GUEST_MODULES)?;
    let crucial_absent: Vec<_> = absent
        .iter()
        .filter(|name| !matches!(name.as_str(), "crc32c-intel" | "kvm-intel" | "dummy"))
        .collect();
    if !crucial_absent.is_empty() {
        bail!(
            "kernel {} has no module for {:?}; the vm tier needs them",
            kernel.release,
            crucial_absent
        );
    }
    let module_root = tree.join("usr/lib/modules").join(&kernel.release);
    for file in &files {
        copy_file(&kernel.modules.join(file), &module_root.join(file))?;
    }
    for extra in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let source = kernel.modules.join(extra);
        if source.exists() {
            copy_file(&source, &module_root.join(extra))?;
        }
    }
    let status = Command::new("depmod")
        .args(["-b"])
        .arg(tree)
        .arg(&kernel.release)
        .status()
        .context("failed to run depmod (Debian's kmod)")?;
    if !status.success() {
        bail!(
            "depmod -b {} {} failed with {status}",
            tree.display(),
            kernel.release
        );
    }
    Ok(())
}

fn write_init(contents: &Contents<'_>, tree: &Path) -> Result<()> {
    let mut mounts = String::new();
    for (tag, path) in contents.shares {
        let path = super::shell_quote(&path.to_string_lossy());
        mounts.push_str(&format!(
            "mkdir -p {path} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro {tag} {path} || fail \"mounting the host directory {path} over 9p failed\"\n"
        ));
    }
    let extra_path: Vec<String> = contents
        .extra_path
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let modules = kernel::GUEST_MODULES.join(" ");
    let init = format!(
        r#"#!/usr/bin/busybox sh
# Init of the telco VM-tier guest, written by cargo xtask.
/usr/bin/busybox mkdir -p /usr/local/busybox
/usr/bin/busybox --install -s /usr/local/busybox
export PATH={extra_path}:/usr/local/sbin:/usr/sbin:/usr/bin:/usr/local/busybox
export HOME=/root TMPDIR=/tmp TELCO_TEST_TIER=vm
fail() {{ echo "TELCO-GUEST-ERROR $*"; echo "TELCO-GUEST-EXIT 125"; poweroff -f; }}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
mkdir -p /run/netns /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t hugetlbfs hugetlbfs /dev/hugepages 2>/dev/null
hostname telco-vm
for module in {modules}; do
    modprobe "$module" 2>/dev/null
done
{mounts}ip link set lo up
echo "TELCO-GUEST-READY kernel $(uname -r), $(nproc) CPUs, modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
cd /root
sh /telco/run.sh
status=$?
sync
echo "TELCO-GUEST-EXIT $status"
poweroff -f
"#,
        extra_path = extra_path.join(":"),
    );
    write_executable(&tree.join("init"), &init)
}

fn pack(tree: &Path, output: &Path) -> Result<()> {
    make_parent(output)?;
    let archive = fs::File::create(output)
        .with_context(|| format!("failed to create {}", output.display()))?;
    let status = Command::new("sh")
        .arg("-c")
        .arg("find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc")
        .current_dir(tree)
        .stdout(archive)
        .status()
        .context("failed to run cpio (Debian's cpio)")?;
    if !status.success() {
        bail!("cpio failed with {status}");
    }
    Ok(())
}
