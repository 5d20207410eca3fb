//! `microvm`: boots a Linux kernel as a KVM microVM with pinned vCPUs and an optional tap in a
//! network namespace, prints the guest's serial console on stdout, and exits with the guest's
//! exit reason.
//!
//! ```text
//! microvm --kernel /boot/vmlinuz --initrd initramfs.cpio --vcpus 2 --mem 256 --cpus 2-3 \
//!         --netns pod1 --tap tap0
//! ```
//!
//! Exit status: 0 the guest powered off, 1 it rebooted, 2 it panicked or crashed, 4 a VMM
//! error during the run, 64 invalid arguments or a failure before the guest started.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use telco_core::{CpuSet, MacAddr};
use telco_vmm::{Console, MicroVmBuilder, NetConfig};

/// Exit status for a failure before the guest ran (`EX_USAGE` of sysexits.h).
const EXIT_SETUP_FAILED: u8 = 64;

#[derive(Debug, Parser)]
#[command(about = "Boot a Linux kernel as a KVM microVM and exit with the guest's exit reason")]
struct Args {
    /// Kernel image: a bzImage or an ELF vmlinux.
    #[arg(long)]
    kernel: PathBuf,
    /// Initramfs (cpio archive).
    #[arg(long)]
    initrd: PathBuf,
    /// Complete kernel command line; virtio-mmio devices are appended to it.
    #[arg(long, default_value = telco_vmm::DEFAULT_CMDLINE)]
    cmdline: String,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    vcpus: u8,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 256)]
    mem: u64,
    /// Host CPUs the vCPU threads are pinned to, in the kernel's list format (`2-3,6`). With as
    /// many CPUs as vCPUs, vCPU i gets the i-th CPU of the list; otherwise every vCPU may use
    /// all of them.
    #[arg(long)]
    cpus: Option<CpuSet>,
    /// Named network namespace (under /run/netns) that contains the tap or gets a new one.
    #[arg(long, requires = "tap")]
    netns: Option<String>,
    /// Tap device in --netns for a virtio-net device; created when missing and removed on exit
    /// when it was created here.
    #[arg(long, requires = "netns")]
    tap: Option<String>,
    /// MAC address of the guest's virtio-net device.
    #[arg(long, requires = "tap")]
    mac: Option<MacAddr>,
    /// Text the guest prints on its console when up; the time to it is reported on exit.
    #[arg(long)]
    marker: Option<String>,
}

fn main() -> ExitCode {
    telco_examples::init_logging("error");
    let args = Args::parse();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("microvm: {error:#}");
            ExitCode::from(EXIT_SETUP_FAILED)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<u8> {
    let mut builder = MicroVmBuilder::new()
        .kernel(&args.kernel)
        .initrd(&args.initrd)
        .cmdline(&args.cmdline)
        .vcpus(args.vcpus)
        .memory_mib(args.mem)
        .console(Console::Writer(Box::new(std::io::stdout())));
    if let Some(cpus) = &args.cpus {
        builder = pin_vcpus(builder, cpus, args.vcpus);
    }
    if let Some(marker) = &args.marker {
        builder = builder.serial_marker(marker.as_bytes());
    }
    if let (Some(netns), Some(tap)) = (&args.netns, &args.tap) {
        let fd = open_tap(netns, tap)?;
        builder = builder.net(NetConfig::new(fd, args.mac));
    }

    let mut vm = builder.build().context("building the microVM")?;
    vm.start().context("starting the microVM")?;
    let reason = vm.wait().context("waiting for the microVM")?;
    let code = reason.exit_code();
    let message = reason.to_string();
    let times = vm.boot_times();
    eprintln!(
        "microvm: {message}; first guest entry after {}, marker after {}",
        format_duration(times.to_first_entry),
        format_duration(times.to_marker)
    );
    Ok(u8::try_from(code).unwrap_or(EXIT_SETUP_FAILED))
}

/// Pins one CPU per vCPU when the list has exactly as many, else the whole list for every vCPU.
fn pin_vcpus(builder: MicroVmBuilder, cpus: &CpuSet, vcpus: u8) -> MicroVmBuilder {
    if cpus.len() == usize::from(vcpus) {
        cpus.iter().zip(0..vcpus).fold(builder, |b, (cpu, index)| {
            b.vcpu_cpus(index, std::iter::once(cpu).collect())
        })
    } else {
        builder.cpus(cpus.clone())
    }
}

fn open_tap(netns: &str, tap: &str) -> anyhow::Result<std::os::fd::OwnedFd> {
    let namespace = telco_net::netns::Netns::open(netns)
        .with_context(|| format!("opening network namespace {netns}"))?;
    let netlink = telco_net::netns::Netlink::in_netns(&namespace)
        .with_context(|| format!("opening a netlink session in {netns}"))?;
    let mut queues = telco_net::link::Tap::new(tap)
        .persistent(false)
        .create(&netlink)
        .with_context(|| format!("opening tap {tap} in {netns}"))?;
    let file = queues.pop().context("the tap returned no queue")?;
    Ok(file.into())
}

fn format_duration(duration: Option<std::time::Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()))
}
