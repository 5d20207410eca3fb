//! Errors of the microVM builder and runtime.

use std::io;
use std::path::PathBuf;

/// Errors from building, booting and running a microVM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmmError {
    /// The builder was given an invalid or incomplete configuration.
    #[error("invalid microVM configuration: {0}")]
    InvalidConfig(String),
    /// `/dev/kvm` is missing.
    #[error(
        "KVM is not available at {path}: load kvm-intel or kvm-amd, or run on a host with virtualization"
    )]
    KvmMissing {
        /// The device path that was opened.
        path: PathBuf,
        /// The error from `open`.
        #[source]
        source: io::Error,
    },
    /// `/dev/kvm` exists but this process may not open it.
    #[error("permission denied on {path}: run as root or join the kvm group")]
    KvmPermission {
        /// The device path that was opened.
        path: PathBuf,
        /// The error from `open`.
        #[source]
        source: io::Error,
    },
    /// The host KVM lacks a capability this VMM needs.
    #[error("KVM lacks capability {0}: the host kernel is too old or built without it")]
    KvmCapability(&'static str),
    /// A KVM ioctl failed.
    #[error("KVM ioctl {ioctl} failed")]
    Kvm {
        /// The ioctl, as named in the kernel's KVM API document.
        ioctl: &'static str,
        /// The errno.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Allocating or mapping guest memory failed.
    #[error("creating {size_mib} MiB of guest memory ({backend}) failed")]
    GuestMemory {
        /// The memory size requested.
        size_mib: u64,
        /// Which backing was requested.
        backend: &'static str,
        /// The error from the allocation.
        #[source]
        source: io::Error,
    },
    /// The hugetlbfs directory is not on a hugetlbfs mount.
    #[error(
        "{path} is not on a hugetlbfs mount: mount one (mount -t hugetlbfs none {path}) and reserve pages in /proc/sys/vm/nr_hugepages"
    )]
    NotHugetlbfs {
        /// The directory given.
        path: PathBuf,
    },
    /// Opening or reading a file given to the VM failed.
    #[error("reading {path} failed")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The kernel image is neither an ELF vmlinux nor a bzImage this VMM can boot.
    #[error("loading kernel {path} failed")]
    KernelLoad {
        /// The kernel file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: linux_loader::loader::Error,
    },
    /// The bzImage is too old for the 64-bit boot protocol.
    #[error(
        "kernel {path} does not support the 64-bit boot protocol (boot protocol {version:#x}, xloadflags {xloadflags:#x}); 2.12 with XLF_KERNEL_64 is required"
    )]
    KernelTooOld {
        /// The kernel file.
        path: PathBuf,
        /// The setup header's boot protocol version.
        version: u16,
        /// The setup header's `xloadflags`.
        xloadflags: u16,
    },
    /// The initramfs does not fit below the kernel's highest initrd address.
    #[error(
        "initramfs {path} ({size} bytes) does not fit in guest memory below {limit:#x} above the kernel: give the VM more memory"
    )]
    InitrdTooLarge {
        /// The initramfs file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The highest address the initramfs may end at.
        limit: u64,
    },
    /// Writing a boot structure into guest memory failed.
    #[error("writing {what} at guest address {addr:#x} failed")]
    GuestWrite {
        /// The structure written.
        what: &'static str,
        /// The guest address.
        addr: u64,
        /// The memory error.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// The kernel command line is invalid or too long.
    #[error("invalid kernel command line")]
    Cmdline(#[source] linux_loader::cmdline::Error),
    /// Creating an eventfd, thread or other host resource failed.
    #[error("{what} failed")]
    Host {
        /// The failing call.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A virtio device could not be set up.
    #[error("virtio device {device} setup failed")]
    Device {
        /// The device name.
        device: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The VM is not in a state that allows the requested operation.
    #[error("cannot {operation} a microVM that is {state}")]
    InvalidState {
        /// The requested operation.
        operation: &'static str,
        /// The current state.
        state: &'static str,
    },
}

impl VmmError {
    pub(crate) fn kvm(ioctl: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
        move |source| VmmError::Kvm { ioctl, source }
    }

    pub(crate) fn guest_write(
        what: &'static str,
        addr: u64,
    ) -> impl FnOnce(vm_memory::GuestMemoryError) -> VmmError {
        move |source| VmmError::GuestWrite { what, addr, source }
    }

    pub(crate) fn host(what: &'static str) -> impl FnOnce(io::Error) -> VmmError {
        move |source| VmmError::Host { what, source }
    }
}
