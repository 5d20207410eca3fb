//! The microVM builder and handle.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::thread::JoinHandleExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{
    KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config, kvm_userspace_memory_region,
};
use kvm_ioctls::{Cap, Kvm, VmFd};
use telco_core::CpuSet;
use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::boot::{self, EntryPoint, LoadedKernel, acpi, cpu, mptable};
use crate::bus::{DeviceBus, MmioDevice};
use crate::devices::IrqLine;
use crate::devices::console::{ConsoleEvents, ConsoleWatch, SerialConsole, lock};
use crate::error::VmmError;
use crate::exit::{BootTimes, ExitReason};
use crate::layout::{HIMEM_START, KVM_TSS_ADDRESS, SERIAL_IRQ};
use crate::memory::{GuestMemory, MemoryBackend, create_guest_memory};
use crate::vcpu::{self, RunState, Vcpu, VmShared};
use crate::virtio::{self, BlockConfig, NetConfig};

/// The command line used when the builder is given none: console on COM1, reset through the
/// i8042 controller, reboot one second after a panic, no PCI probing.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off";

/// KVM capabilities this VMM relies on.
const REQUIRED_CAPS: [(Cap, &str); 5] = [
    (Cap::Irqchip, "KVM_CAP_IRQCHIP"),
    (Cap::Irqfd, "KVM_CAP_IRQFD"),
    (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR"),
    (Cap::Pit2, "KVM_CAP_PIT2"),
];

/// The destination of the guest's serial console output.
#[non_exhaustive]
pub enum Console {
    /// Discarded (still scanned for the marker and panics).
    Discard,
    /// Written to this writer.
    Writer(Box<dyn Write + Send>),
    /// Appended to this file, created if missing.
    File(PathBuf),
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Console::Discard => f.write_str("Discard"),
            Console::Writer(_) => f.write_str("Writer(..)"),
            Console::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The code the boot vCPU starts.
#[derive(Debug, Clone)]
enum BootSource {
    /// A Linux kernel image, with an optional initramfs.
    Kernel(PathBuf),
    /// Raw 64-bit code loaded at 1 MiB and entered in long mode, for tests of the VMM itself.
    Flat64(Vec<u8>),
}

/// Builds a microVM: memory, vCPUs and their host CPUs, kernel, initramfs, command line and
/// devices. [`build`](Self::build) validates the whole configuration and acquires the KVM
/// resources; [`MicroVm::start`] runs it.
///
/// ```no_run
/// use telco_vmm::{Console, MicroVmBuilder};
///
/// let mut vm = MicroVmBuilder::new()
///     .memory_mib(256)
///     .vcpus(2)
///     .kernel("/boot/vmlinuz")
///     .initrd("/tmp/initramfs.cpio")
///     .console(Console::Writer(Box::new(std::io::stdout())))
///     .build()?;
/// vm.start()?;
/// let reason = vm.wait()?;
/// println!("{reason}");
/// # Ok::<(), telco_vmm::VmmError>(())
/// ```
#[derive(Debug)]
pub struct MicroVmBuilder {
    memory_mib: u64,
    memory_backend: MemoryBackend,
    vcpus: u8,
    all_vcpu_cpus: Option<CpuSet>,
    vcpu_cpus: Vec<(u8, CpuSet)>,
    boot: Option<BootSource>,
    initrd: Option<PathBuf>,
    cmdline: Option<String>,
    console: Console,
    marker: Option<Vec<u8>>,
    nets: Vec<NetConfig>,
    blocks: Vec<BlockConfig>,
    kvm_path: PathBuf,
}

impl Default for MicroVmBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MicroVmBuilder {
    /// Creates a builder for one vCPU and 128 MiB of anonymous memory.
    pub fn new() -> Self {
        MicroVmBuilder {
            memory_mib: 128,
            memory_backend: MemoryBackend::Anonymous,
            vcpus: 1,
            all_vcpu_cpus: None,
            vcpu_cpus: Vec::new(),
            boot: None,
            initrd: None,
            cmdline: None,
            console: Console::Discard,
            marker: None,
            nets: Vec::new(),
            blocks: Vec::new(),
            kvm_path: PathBuf::from("/dev/kvm"),
        }
    }

    /// Sets the guest RAM in MiB.
    pub fn memory_mib(mut self, mib: u64) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Sets what backs guest RAM. Use [`MemoryBackend::Memfd`] or [`MemoryBackend::Hugetlbfs`]
    /// when a vhost-user backend must map it.
    pub fn memory_backend(mut self, backend: MemoryBackend) -> Self {
        self.memory_backend = backend;
        self
    }

    /// Sets the number of vCPUs, 1 to 32.
    pub fn vcpus(mut self, count: u8) -> Self {
        self.vcpus = count;
        self
    }

    /// Pins every vCPU thread to these host CPUs, unless [`vcpu_cpus`](Self::vcpu_cpus) gives one
    /// its own set.
    pub fn cpus(mut self, cpus: CpuSet) -> Self {
        self.all_vcpu_cpus = Some(cpus);
        self
    }

    /// Pins the thread of vCPU `index` to `cpus` (`sched_setaffinity` in that thread).
    pub fn vcpu_cpus(mut self, index: u8, cpus: CpuSet) -> Self {
        self.vcpu_cpus.retain(|(i, _)| *i != index);
        self.vcpu_cpus.push((index, cpus));
        self
    }

    /// Sets the kernel: a bzImage or an ELF vmlinux (booted through PVH when it has the PVH
    /// note).
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.boot = Some(BootSource::Kernel(path.into()));
        self
    }

    /// Sets the initramfs (a cpio archive, optionally compressed).
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Some(path.into());
        self
    }

    /// Sets the whole kernel command line, replacing [`DEFAULT_CMDLINE`].
    pub fn cmdline(mut self, cmdline: impl Into<String>) -> Self {
        self.cmdline = Some(cmdline.into());
        self
    }

    /// Sets the destination of the serial console output.
    pub fn console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// Sets the bytes the guest prints on the serial console when it is up; the time they appear is in
    /// [`BootTimes::to_marker`].
    pub fn serial_marker(mut self, marker: impl Into<Vec<u8>>) -> Self {
        self.marker = Some(marker.into());
        self
    }

    /// Adds a virtio-net device on a tap.
    pub fn net(mut self, net: NetConfig) -> Self {
        self.nets.push(net);
        self
    }

    /// Adds a virtio-blk device on a raw image file.
    pub fn block(mut self, block: BlockConfig) -> Self {
        self.blocks.push(block);
        self
    }

    /// Boots raw 64-bit code instead of a kernel: it is loaded at 1 MiB and entered in long mode
    /// with the same registers as a Linux kernel. For testing the VMM and measuring its start-up
    /// without a guest kernel.
    pub fn flat_binary(mut self, code: impl Into<Vec<u8>>) -> Self {
        self.boot = Some(BootSource::Flat64(code.into()));
        self
    }

    /// Sets the KVM device to open, `/dev/kvm` by default.
    pub fn kvm_device(mut self, path: impl Into<PathBuf>) -> Self {
        self.kvm_path = path.into();
        self
    }

    /// Checks the configuration without touching KVM or the files.
    pub fn validate(&self) -> Result<(), VmmError> {
        let invalid = |text: String| Err(VmmError::InvalidConfig(text));
        if self.vcpus == 0 || self.vcpus > mptable::MAX_VCPUS {
            return invalid(format!(
                "{} vCPUs requested: use 1 to {}",
                self.vcpus,
                mptable::MAX_VCPUS
            ));
        }
        if self.memory_mib < 2 {
            return invalid(format!(
                "{} MiB of memory is too little: use 2 MiB or more",
                self.memory_mib
            ));
        }
        if self.memory_mib > (1 << 20) {
            return invalid(format!(
                "{} MiB of memory exceeds the 1 TiB this VMM lays out",
                self.memory_mib
            ));
        }
        if matches!(self.memory_backend, MemoryBackend::Hugetlbfs(_))
            && !self.memory_mib.is_multiple_of(2)
        {
            return invalid(format!(
                "{} MiB is not a multiple of the 2 MiB huge page size",
                self.memory_mib
            ));
        }
        match &self.boot {
            None => return invalid("no kernel given".into()),
            Some(BootSource::Flat64(code)) if code.is_empty() => {
                return invalid("the flat binary is empty".into());
            }
            Some(BootSource::Flat64(_)) if self.initrd.is_some() => {
                return invalid("an initramfs needs a kernel, not a flat binary".into());
            }
            _ => {}
        }
        if self.all_vcpu_cpus.as_ref().is_some_and(CpuSet::is_empty) {
            return invalid("the vCPU CPU set is empty".into());
        }
        for (index, cpus) in &self.vcpu_cpus {
            if *index >= self.vcpus {
                return invalid(format!(
                    "CPUs given for vCPU {index}, but the VM has {} vCPUs",
                    self.vcpus
                ));
            }
            if cpus.is_empty() {
                return invalid(format!("the CPU set of vCPU {index} is empty"));
            }
        }
        let devices = self.nets.len() + self.blocks.len();
        if devices > virtio::MAX_DEVICES {
            return invalid(format!(
                "{devices} virtio devices requested: at most {} have an interrupt line",
                virtio::MAX_DEVICES
            ));
        }
        let cmdline = self.cmdline.as_deref().unwrap_or(DEFAULT_CMDLINE);
        if cmdline.contains('\0') {
            return invalid("the kernel command line contains a NUL byte".into());
        }
        Ok(())
    }

    /// Validates the configuration, creates the VM, loads the kernel and initramfs, writes the
    /// boot structures and creates the vCPUs and devices. Nothing runs until
    /// [`MicroVm::start`].
    pub fn build(self) -> Result<MicroVm, VmmError> {
        let started = Instant::now();
        self.validate()?;
        let kvm = open_kvm(&self.kvm_path)?;
        let vm = kvm.create_vm().map_err(VmmError::kvm("KVM_CREATE_VM"))?;
        let memory = create_guest_memory(self.memory_mib << 20, &self.memory_backend)?;
        register_memory(&vm, &memory)?;
        vm.set_tss_address(usize::try_from(KVM_TSS_ADDRESS).unwrap_or(usize::MAX))
            .map_err(VmmError::kvm("KVM_SET_TSS_ADDR"))?;
        vm.create_irq_chip()
            .map_err(VmmError::kvm("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit)
            .map_err(VmmError::kvm("KVM_CREATE_PIT2"))?;

        let virtio_devices = virtio::create_devices(&vm, &memory, self.nets, self.blocks)?;
        let kernel = self.boot.expect("validated above");
        mptable::write(&memory, self.vcpus)?;
        let acpi_rsdp = if virtio_devices.is_empty() {
            None
        } else {
            let entries: Vec<_> = virtio_devices.iter().map(|d| d.acpi_entry()).collect();
            Some(acpi::write(&memory, self.vcpus, &entries)?)
        };
        let entry = load_boot_source(&memory, kernel, self.initrd, self.cmdline, acpi_rsdp)?;

        let console_events = Arc::new(Mutex::new(ConsoleEvents::default()));
        let serial = create_serial(&vm, self.console, self.marker, Arc::clone(&console_events))?;
        let mmio: Vec<Arc<dyn MmioDevice>> = virtio_devices.iter().map(|d| d.mmio()).collect();
        let bus = Arc::new(DeviceBus::new(serial, mmio));
        let shared = Arc::new(VmShared::new(started, console_events));

        let supported_cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(VmmError::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        let mut vcpus = Vec::with_capacity(usize::from(self.vcpus));
        for index in 0..self.vcpus {
            let fd = vm
                .create_vcpu(u64::from(index))
                .map_err(VmmError::kvm("KVM_CREATE_VCPU"))?;
            cpu::setup_cpuid(&fd, &supported_cpuid, index, self.vcpus)?;
            cpu::setup_msrs(&fd)?;
            cpu::setup_fpu(&fd)?;
            cpu::setup_lapic(&fd)?;
            if index == 0 {
                cpu::setup_sregs(&memory, &fd, entry)?;
                cpu::setup_regs(&fd, entry)?;
            }
            let cpus = self
                .vcpu_cpus
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, cpus)| cpus.clone())
                .or_else(|| self.all_vcpu_cpus.clone());
            vcpus.push(Vcpu {
                index,
                fd,
                cpus,
                shared: Arc::clone(&shared),
                bus: Arc::clone(&bus),
            });
        }
        tracing::debug!(
            vcpus = self.vcpus,
            memory_mib = self.memory_mib,
            "microVM built"
        );
        Ok(MicroVm {
            _kvm: kvm,
            _vm: vm,
            memory,
            shared,
            pending: vcpus,
            threads: Vec::new(),
            virtio_devices,
            exit: None,
        })
    }
}

fn open_kvm(path: &std::path::Path) -> Result<Kvm, VmmError> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| {
            let path = path.to_path_buf();
            match source.kind() {
                std::io::ErrorKind::NotFound => VmmError::KvmMissing { path, source },
                std::io::ErrorKind::PermissionDenied => VmmError::KvmPermission { path, source },
                _ => VmmError::File { path, source },
            }
        })?;
    // SAFETY: `file` is an open /dev/kvm descriptor whose ownership moves into `Kvm`.
    let kvm = unsafe { Kvm::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(file)) };
    for (cap, name) in REQUIRED_CAPS {
        if !kvm.check_extension(cap) {
            return Err(VmmError::KvmCapability(name));
        }
    }
    Ok(kvm)
}

fn register_memory(vm: &VmFd, memory: &GuestMemory) -> Result<(), VmmError> {
    for (slot, region) in memory.iter().enumerate() {
        let host = region
            .get_host_address(vm_memory::MemoryRegionAddress(0))
            .map_err(VmmError::guest_write(
                "memory region host address",
                region.start_addr().0,
            ))?;
        let descriptor = kvm_userspace_memory_region {
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            flags: 0,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region's mapping lives in `MicroVm::memory`, which outlives the VM fd
        // (fields drop in order: the VM handle before the memory), and no two slots overlap.
        unsafe { vm.set_user_memory_region(descriptor) }
            .map_err(VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(())
}

fn load_boot_source(
    memory: &GuestMemory,
    source: BootSource,
    initrd: Option<PathBuf>,
    cmdline: Option<String>,
    acpi_rsdp: Option<u64>,
) -> Result<EntryPoint, VmmError> {
    match source {
        BootSource::Flat64(code) => {
            boot::write_bytes(memory, "flat binary", HIMEM_START, &code)?;
            let kernel = LoadedKernel {
                entry: EntryPoint::Linux64(GuestAddress(HIMEM_START)),
                setup_header: None,
                end: HIMEM_START + code.len() as u64,
            };
            let cmdline = boot::parse_cmdline("")?;
            boot::write_boot_params(memory, &kernel, &cmdline, None, acpi_rsdp)?;
            Ok(kernel.entry)
        }
        BootSource::Kernel(path) => {
            let kernel = boot::load_kernel(memory, &path)?;
            let initrd = initrd
                .map(|initrd| boot::load_initrd(memory, &initrd, &kernel))
                .transpose()?;
            let cmdline = boot::parse_cmdline(cmdline.as_deref().unwrap_or(DEFAULT_CMDLINE))?;
            boot::write_cmdline(memory, &cmdline)?;
            boot::write_boot_params(memory, &kernel, &cmdline, initrd, acpi_rsdp)?;
            tracing::debug!(entry = ?kernel.entry, "kernel loaded");
            Ok(kernel.entry)
        }
    }
}

fn create_serial(
    vm: &VmFd,
    console: Console,
    marker: Option<Vec<u8>>,
    events: Arc<Mutex<ConsoleEvents>>,
) -> Result<SerialConsole, VmmError> {
    let sink: Box<dyn Write + Send> = match console {
        Console::Discard => Box::new(std::io::sink()),
        Console::Writer(writer) => writer,
        Console::File(path) => Box::new(
            File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| VmmError::File { path, source })?,
        ),
    };
    let event = EventFd::new(libc::EFD_NONBLOCK).map_err(VmmError::host("eventfd for COM1"))?;
    vm.register_irqfd(&event, SERIAL_IRQ)
        .map_err(VmmError::kvm("KVM_IRQFD"))?;
    Ok(SerialConsole::new(
        IrqLine::new(event),
        sink,
        ConsoleWatch::new(marker, events),
    ))
}

/// A built microVM. Dropping it stops the vCPUs.
#[derive(Debug)]
pub struct MicroVm {
    // Field order is drop order: vCPU threads are joined in `Drop`, then the VM fd closes
    // before the guest memory it maps is unmapped.
    _vm: VmFd,
    _kvm: Kvm,
    virtio_devices: Vec<virtio::VirtioMmioDevice>,
    memory: GuestMemory,
    shared: Arc<VmShared>,
    pending: Vec<Vcpu>,
    threads: Vec<JoinHandle<()>>,
    exit: Option<ExitReason>,
}

/// Lifecycle state of a [`MicroVm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmState {
    /// Built, not started.
    Created,
    /// vCPUs running.
    Running,
    /// vCPUs parked by [`MicroVm::pause`].
    Paused,
    /// Stopped or stopping; [`MicroVm::wait`] returns the reason.
    Exited,
}

impl MicroVm {
    /// Starts one thread per vCPU, pinned to its CPU set.
    pub fn start(&mut self) -> Result<(), VmmError> {
        if self.pending.is_empty() {
            return Err(VmmError::InvalidState {
                operation: "start",
                state: self.state_name(),
            });
        }
        vcpu::install_kick_handler()
            .map_err(VmmError::host("installing the vCPU kick signal handler"))?;
        for device in &mut self.virtio_devices {
            device.start_worker()?;
        }
        for vcpu in self.pending.drain(..) {
            let name = format!("vcpu{}", vcpu.index);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || vcpu.run())
                .map_err(VmmError::host("spawning a vCPU thread"))?;
            self.threads.push(handle);
        }
        Ok(())
    }

    /// Parks every vCPU outside the guest; returns once all are parked.
    pub fn pause(&self) -> Result<(), VmmError> {
        self.require_state("pause", VmState::Running)?;
        lock(&self.shared.control).state = RunState::Paused;
        let count = self.threads.len();
        vcpu::kick_until(&self.shared, &self.pthreads(), |control| {
            control.parked + control.finished >= count || control.state != RunState::Paused
        });
        Ok(())
    }

    /// Lets paused vCPUs run again.
    pub fn resume(&self) -> Result<(), VmmError> {
        self.require_state("resume", VmState::Paused)?;
        let mut control = lock(&self.shared.control);
        control.state = RunState::Running;
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Stops the vCPUs and returns why the VM ended: [`ExitReason::Stopped`] unless the guest
    /// had already exited.
    pub fn stop(&mut self) -> Result<&ExitReason, VmmError> {
        if self.state() == VmState::Created {
            return Err(VmmError::InvalidState {
                operation: "stop",
                state: "created",
            });
        }
        self.shared.request_exit(ExitReason::Stopped);
        self.wait()
    }

    /// Waits until the VM exits and returns why.
    pub fn wait(&mut self) -> Result<&ExitReason, VmmError> {
        if self.state() == VmState::Created {
            return Err(VmmError::InvalidState {
                operation: "wait for",
                state: "created",
            });
        }
        if self.exit.is_none() {
            {
                let mut control = lock(&self.shared.control);
                while control.exit.is_none() {
                    control = self
                        .shared
                        .changed
                        .wait(control)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            self.join_threads();
        }
        Ok(self.exit.get_or_insert(ExitReason::Stopped))
    }

    /// Waits up to `timeout` for the VM to exit; `None` when it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<&ExitReason>, VmmError> {
        let deadline = Instant::now() + timeout;
        {
            let mut control = lock(&self.shared.control);
            while control.exit.is_none() {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                control = self
                    .shared
                    .changed
                    .wait_timeout(control, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        }
        self.wait().map(Some)
    }

    fn join_threads(&mut self) {
        let count = self.threads.len();
        vcpu::kick_until(&self.shared, &self.pthreads(), |control| {
            control.finished >= count
        });
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a vCPU thread panicked");
            }
        }
        for device in &mut self.virtio_devices {
            device.stop_worker();
        }
        self.exit = lock(&self.shared.control).exit.take();
    }

    fn pthreads(&self) -> Vec<libc::pthread_t> {
        self.threads
            .iter()
            .map(JoinHandleExt::as_pthread_t)
            .collect()
    }

    /// Returns the current lifecycle state.
    pub fn state(&self) -> VmState {
        if !self.pending.is_empty() {
            return VmState::Created;
        }
        if self.exit.is_some() {
            return VmState::Exited;
        }
        match lock(&self.shared.control).state {
            RunState::Running => VmState::Running,
            RunState::Paused => VmState::Paused,
            RunState::Stopping => VmState::Exited,
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state() {
            VmState::Created => "created",
            VmState::Running => "running",
            VmState::Paused => "paused",
            VmState::Exited => "exited",
        }
    }

    fn require_state(&self, operation: &'static str, expected: VmState) -> Result<(), VmmError> {
        if self.state() == expected {
            Ok(())
        } else {
            Err(VmmError::InvalidState {
                operation,
                state: self.state_name(),
            })
        }
    }

    /// Returns the boot timing measured so far.
    pub fn boot_times(&self) -> BootTimes {
        let since_start =
            |at: Option<&Instant>| at.map(|at| at.duration_since(self.shared.started));
        BootTimes {
            to_first_entry: since_start(self.shared.first_entry.get()),
            to_first_exit: since_start(self.shared.first_exit.get()),
            to_marker: since_start(lock(&self.shared.console).marker_at.as_ref()),
        }
    }

    /// Returns the guest's memory.
    pub fn guest_memory(&self) -> &GuestMemory {
        &self.memory
    }
}

impl Drop for MicroVm {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shared.request_exit(ExitReason::Stopped);
            self.join_threads();
        }
    }
}
