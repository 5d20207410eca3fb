//! KVM microVMs and a vhost-user-net backend for VNFs that need a kernel of their own, built on
//! the rust-vmm crates (`kvm-ioctls`, `vm-memory`, `linux-loader`, `vm-superio`,
//! `virtio-queue`, `vhost`, `vhost-user-backend`).
//!
//! A [`MicroVmBuilder`] takes what a container placement also decides: the host CPUs each vCPU
//! thread is pinned to (a [`telco_core::CpuSet`]), the memory and whether it is shared
//! (memfd) or on hugepages, and network attachments (a tap file descriptor that `telco-net`
//! created in the pod's namespace). It boots a Linux bzImage or ELF vmlinux directly, without
//! firmware, the way Firecracker does.
//!
//! ```no_run
//! use telco_vmm::{Console, MicroVmBuilder};
//!
//! let mut vm = MicroVmBuilder::new()
//!     .memory_mib(256)
//!     .vcpus(2)
//!     .cpus("2-3".parse().unwrap())
//!     .kernel("/boot/vmlinuz")
//!     .initrd("initramfs.cpio")
//!     .serial_marker("READY")
//!     .console(Console::Writer(Box::new(std::io::stderr())))
//!     .build()?;
//! vm.start()?;
//! let reason = vm.wait()?;
//! eprintln!("{reason}, exit code {}", reason.exit_code());
//! # Ok::<(), telco_vmm::VmmError>(())
//! ```
//!
//! # When not to use it
//!
//! This is a microVM for Linux guests: no firmware, no PCI, no ACPI beyond the minimal tables
//! that announce virtio-mmio devices, no live migration, no snapshots, no seccomp jail. Use QEMU or Cloud Hypervisor for general-purpose VMs.
//!
//! # Limitations
//! - x86_64 hosts only.
//! - Power-off is recognized from the guest's `reboot: Power down` or `reboot: System halted`
//!   console line, because without ACPI the guest has no power-off device; a guest without a
//!   serial console that powers off halts forever. `reboot -f` (through the i8042 reset) always ends the VM.
//! - A kernel panic is recognized from the guest's console line `Kernel panic - not syncing`.

mod boot;
mod bus;
mod devices;
mod error;
mod exit;
pub mod initramfs;
mod layout;
mod memory;
mod vcpu;
pub mod vhost_user;
mod virtio;
mod vm;

pub use boot::{KernelFormat, detect_kernel_format};
pub use error::VmmError;
pub use exit::{BootTimes, ExitReason, VcpuError};
pub use memory::{GuestMemory, MemoryBackend};
pub use virtio::{BlockConfig, MAX_DEVICES as MAX_VIRTIO_DEVICES, NetConfig};
pub use vm::{Console, DEFAULT_CMDLINE, MicroVm, MicroVmBuilder, VmState};

/// The most vCPUs a microVM can have (the MP table's room below 640 KiB).
pub const MAX_VCPUS: u8 = boot::mptable::MAX_VCPUS;
