//! Why a microVM stopped, and how long it took to boot.

use std::time::Duration;

/// Why a microVM stopped running.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExitReason {
    /// The guest powered off or halted: Linux printed `reboot: Power down` or
    /// `reboot: System halted` on the console. Without ACPI the kernel has no power-off method
    /// and halts the CPUs after that line, so the console is the only signal.
    PowerOff,
    /// The guest reset through the i8042 controller (Linux's `reboot=k`, used by `reboot -f`).
    Reboot,
    /// A vCPU triple-faulted (`KVM_EXIT_SHUTDOWN`): a guest crash, or a reset by `reboot=t`.
    TripleFault,
    /// The guest kernel panicked: the panic line it printed. Reported instead of the reset or
    /// halt that followed it.
    Panic(String),
    /// The host stopped the VM with [`MicroVm::stop`](crate::MicroVm::stop).
    Stopped,
    /// A vCPU hit an error the VMM cannot recover from.
    Error(VcpuError),
}

impl ExitReason {
    /// The process exit code a launcher should use: 0 for power-off, 1 for reboot, 2 for a
    /// panic or crash, 3 for a stop by the host and 4 for a VMM error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitReason::PowerOff => 0,
            ExitReason::Reboot => 1,
            ExitReason::TripleFault | ExitReason::Panic(_) => 2,
            ExitReason::Stopped => 3,
            ExitReason::Error(_) => 4,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::PowerOff => f.write_str("guest powered off"),
            ExitReason::Reboot => f.write_str("guest rebooted"),
            ExitReason::TripleFault => f.write_str("guest triple-faulted"),
            ExitReason::Panic(line) => write!(f, "guest panicked: {line}"),
            ExitReason::Stopped => f.write_str("stopped by the host"),
            ExitReason::Error(error) => write!(f, "VMM error: {error}"),
        }
    }
}

/// Errors that end a vCPU thread, and with it the VM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VcpuError {
    /// `KVM_RUN` failed.
    #[error("KVM_RUN on vCPU {vcpu} failed")]
    Run {
        /// The vCPU index.
        vcpu: u8,
        /// The errno.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// `KVM_RUN` could not enter the guest (`KVM_EXIT_FAIL_ENTRY`).
    #[error("vCPU {vcpu} failed to enter the guest, hardware reason {reason:#x}")]
    FailEntry {
        /// The vCPU index.
        vcpu: u8,
        /// `hardware_entry_failure_reason`.
        reason: u64,
    },
    /// KVM hit an internal error (`KVM_EXIT_INTERNAL_ERROR`), such as an instruction it cannot
    /// emulate.
    #[error("KVM internal error on vCPU {vcpu}")]
    Internal {
        /// The vCPU index.
        vcpu: u8,
    },
    /// An exit this VMM does not handle.
    #[error("unhandled exit {exit} on vCPU {vcpu}")]
    UnhandledExit {
        /// The vCPU index.
        vcpu: u8,
        /// The exit, as kvm-ioctls names it.
        exit: String,
    },
    /// `sched_setaffinity` for the vCPU thread failed.
    #[error("pinning vCPU {vcpu} to CPUs {cpus} failed")]
    Affinity {
        /// The vCPU index.
        vcpu: u8,
        /// The requested CPUs.
        cpus: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Boot timing, measured from the start of [`MicroVmBuilder::build`](crate::MicroVmBuilder::build).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootTimes {
    /// Until the boot vCPU first entered `KVM_RUN`: the VMM's own start-up cost.
    pub to_first_entry: Option<Duration>,
    /// Until the boot vCPU's first exit to the VMM, which the guest's first I/O causes.
    pub to_first_exit: Option<Duration>,
    /// Until the marker appeared on the serial console.
    pub to_marker: Option<Duration>,
}
