//! `bench-vmm`: telco-vmm against its peers, one JSON object per line.
//!
//! Rows:
//! - `vmm_start_to_first_entry`: wall time from `MicroVmBuilder::build` to the boot vCPU's first
//!   `KVM_RUN`, and the process CPU time of the whole start, with a one-instruction guest.
//!   Firecracker publishes under 8 ms of CPU for its start, and no peer runs here.
//! - `vmm_rss_beyond_guest`: resident memory of the VMM process outside the guest RAM
//!   mapping, ours (`microvm`) against `qemu-system-x86_64 -M microvm`, same kernel, initramfs
//!   and memory size, two seconds after start.
//! - `boot_to_marker`: seconds from process start to the init marker on the serial console,
//!   against `qemu-system-x86_64 -M microvm`. Linux only boots at useful speed where KVM runs
//!   guests natively (the vm tier), so this row runs when `TELCO_TEST_TIER=vm` or with
//!   `--boot`.
//! - `vhost_user_pps`: 64-byte packets per second that `dpdk-testpmd` with `net_virtio_user`
//!   in `txonly` mode pushes into our backend (a sink), against the same into testpmd's own
//!   `net_vhost` backend in `rxonly` mode.
//!
//! Usage: `bench-vmm [--kernel K] [--boot] [--seconds N]`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use telco_vmm::initramfs::NewcWriter;
use telco_vmm::vhost_user::{NetPeer, VhostUserNet};
use telco_vmm::{ExitReason, MicroVmBuilder};

const MARKER: &str = "TELCO-BENCH-MARKER";
const GUEST_MIB: u64 = 256;
const CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off quiet";
/// `mov al, 0xfe; out 0x64, al; hlt`: the guest resets at once.
const RESET_GUEST: [u8; 5] = [0xb0, 0xfe, 0xe6, 0x64, 0xf4];

struct Options {
    kernel: PathBuf,
    boot: bool,
    seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let dir = std::env::temp_dir().join(format!("bench-vmm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_rows(&options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_rows(options: &Options, dir: &Path) -> anyhow::Result<()> {
    start_rows()?;
    let initrd = write_initramfs(dir).context("building the benchmark initramfs")?;
    rss_row(options, &initrd)?;
    if options.boot {
        boot_row(options, &initrd)?;
        // The VM tier guest has no DPDK, so the vhost-user row runs on the build machine.
        eprintln!("bench-vmm: vhost_user_pps skipped in boot mode: it runs where dpdk-testpmd is");
        Ok(())
    } else {
        eprintln!(
            "bench-vmm: boot_to_marker skipped: KVM here runs guests too slowly; \
             set TELCO_TEST_TIER=vm or pass --boot"
        );
        vhost_user_row(options, dir)
    }
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        kernel: default_kernel()?,
        boot: std::env::var("TELCO_TEST_TIER").is_ok_and(|tier| tier == "vm"),
        seconds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kernel" => options.kernel = args.next().context("--kernel needs a path")?.into(),
            "--boot" => options.boot = true,
            "--seconds" => {
                options.seconds = args.next().context("--seconds needs a number")?.parse()?
            }
            other => bail!(
                "unknown argument {other}; usage: bench-vmm [--kernel K] [--boot] [--seconds N]"
            ),
        }
    }
    Ok(options)
}

fn default_kernel() -> anyhow::Result<PathBuf> {
    if Path::new("/boot/vmlinuz").exists() {
        return Ok("/boot/vmlinuz".into());
    }
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels
        .pop()
        .context("no kernel in /boot: pass --kernel or install linux-image-amd64")
}

fn emit(
    row: &str,
    unit: &str,
    ours: f64,
    peer_name: &str,
    peer: Option<f64>,
    better: &str,
    goal: &str,
) {
    let line = serde_json::json!({
        "row": row, "unit": unit, "ours": ours, "peer_name": peer_name, "peer": peer,
        "better": better, "goal": goal,
    });
    println!("{line}");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn process_cpu_time() -> Duration {
    // SAFETY: `timespec` is plain old data and the clock id is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Measures the start cost with a guest that resets at its first instruction, as the median
/// of 20 runs.
fn start_rows() -> anyhow::Result<()> {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..20 {
        let cpu_before = process_cpu_time();
        let mut vm = MicroVmBuilder::new()
            .memory_mib(GUEST_MIB)
            .flat_binary(RESET_GUEST.to_vec())
            .build()?;
        vm.start()?;
        let reason = vm.wait()?;
        if !matches!(reason, ExitReason::Reboot) {
            bail!("the start-up guest ended with {reason}, expected a reset");
        }
        cpu.push((process_cpu_time() - cpu_before).as_secs_f64() * 1e3);
        let entry = vm
            .boot_times()
            .to_first_entry
            .context("no first entry recorded")?;
        wall.push(entry.as_secs_f64() * 1e3);
    }
    emit(
        "vmm_start_to_first_entry",
        "ms",
        median(wall),
        "firecracker (published, not run)",
        None,
        "lower",
        "build to first KVM_RUN in well under 8 ms",
    );
    emit(
        "vmm_start_cpu",
        "ms",
        median(cpu),
        "firecracker (published, not run)",
        None,
        "lower",
        "under 8 ms of CPU for the whole start, Firecracker's published figure",
    );
    Ok(())
}

/// Writes an initramfs whose init prints the marker and resets, with the host's static busybox.
fn write_initramfs(dir: &Path) -> anyhow::Result<PathBuf> {
    let busybox = std::fs::read("/bin/busybox")
        .context("reading /bin/busybox (apt install busybox-static)")?;
    let init = format!("#!/bin/busybox sh\necho {MARKER}\n/bin/busybox reboot -f\n");
    let mut archive = NewcWriter::new(Vec::new());
    archive.directory("bin", 0o755)?;
    archive.directory("dev", 0o755)?;
    archive.char_device("dev/console", 0o600, 5, 1)?;
    archive.file("bin/busybox", 0o755, &busybox)?;
    archive.file("init", 0o755, init.as_bytes())?;
    let path = dir.join("bench-initramfs.cpio");
    std::fs::write(&path, archive.finish()?)?;
    Ok(path)
}

fn microvm_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("microvm");
    if !path.exists() {
        bail!(
            "{} is missing: build it with cargo build --release -p telco-examples --bin microvm",
            path.display()
        );
    }
    Ok(path)
}

fn ours_command(options: &Options, initrd: &Path) -> anyhow::Result<Command> {
    let mut command = Command::new(microvm_binary()?);
    command
        .arg("--kernel")
        .arg(&options.kernel)
        .arg("--initrd")
        .arg(initrd)
        .args([
            "--cmdline",
            CMDLINE,
            "--mem",
            &GUEST_MIB.to_string(),
            "--marker",
            MARKER,
        ]);
    Ok(command)
}

/// QEMU CPU models to try in order: `host` aborts on the build machines' emulating KVM
/// (setting MSR 0x10a fails), and the generic `qemu64` runs there.
const QEMU_CPUS: [&str; 2] = ["host", "qemu64"];

fn qemu_command(options: &Options, initrd: &Path, cpu: &str) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args([
            "-M",
            "microvm",
            "-accel",
            "kvm",
            "-cpu",
            cpu,
            "-m",
            &GUEST_MIB.to_string(),
        ])
        .args([
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(&options.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", CMDLINE]);
    command
}

/// Sums `Rss:` over every mapping of `pid` except the one of `guest_kib` KiB (guest RAM).
fn rss_beyond_guest_kib(pid: u32, guest_kib: u64) -> anyhow::Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut total = 0;
    let mut in_guest = false;
    for line in smaps.lines() {
        if let Some(size) = line.strip_prefix("Size:") {
            in_guest = parse_kib(size) == guest_kib;
        } else if let Some(rss) = line.strip_prefix("Rss:")
            && !in_guest
        {
            total += parse_kib(rss);
        }
    }
    Ok(total)
}

fn parse_kib(text: &str) -> u64 {
    text.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(0)
}

fn sample_rss(mut command: Command) -> anyhow::Result<f64> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(2));
    if let Some(status) = child.try_wait()? {
        bail!("{command:?} exited early with {status}");
    }
    let result = rss_beyond_guest_kib(child.id(), GUEST_MIB * 1024);
    let _ = child.kill();
    let _ = child.wait();
    Ok(result? as f64 / 1024.0)
}

fn rss_row(options: &Options, initrd: &Path) -> anyhow::Result<()> {
    let ours = sample_rss(ours_command(options, initrd)?)?;
    let peer =
        QEMU_CPUS
            .iter()
            .find_map(|cpu| match sample_rss(qemu_command(options, initrd, cpu)) {
                Ok(rss) => Some(rss),
                Err(error) => {
                    eprintln!("bench-vmm: QEMU with -cpu {cpu}: {error:#}");
                    None
                }
            });
    emit(
        "vmm_rss_beyond_guest",
        "MiB",
        ours,
        "qemu-system-x86_64 -M microvm",
        peer,
        "lower",
        "under 5 MiB resident beyond guest memory, Firecracker's published figure",
    );
    Ok(())
}

/// Measures the seconds from spawn until `MARKER` appears on the child's stdout.
fn time_to_marker(mut command: Command, timeout: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let seen = Arc::new(Mutex::new(None));
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                text.extend_from_slice(&buffer[..n]);
                if text.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
                    *seen.lock().unwrap() = Some(start.elapsed());
                    break;
                }
            }
        })
    };
    while start.elapsed() < timeout && seen.lock().unwrap().is_none() && !reader.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let elapsed = *seen.lock().unwrap();
    elapsed
        .map(|d| d.as_secs_f64())
        .context("the marker did not appear")
}

fn boot_row(options: &Options, initrd: &Path) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(120);
    let ours = time_to_marker(ours_command(options, initrd)?, timeout)?;
    let peer = QEMU_CPUS.iter().find_map(|cpu| {
        match time_to_marker(qemu_command(options, initrd, cpu), timeout) {
            Ok(seconds) => Some(seconds),
            Err(error) => {
                eprintln!("bench-vmm: QEMU with -cpu {cpu}: {error:#}");
                None
            }
        }
    });
    emit(
        "boot_to_marker",
        "s",
        ours,
        "qemu-system-x86_64 -M microvm",
        peer,
        "lower",
        "no slower than QEMU microvm with the same kernel and initramfs",
    );
    Ok(())
}

/// A `dpdk-testpmd -i` whose output is collected and whose stdin takes commands.
struct Testpmd {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Testpmd {
    /// Starts testpmd on lcores 0 and 1 with `main_lcore` idle at the prompt, so that the
    /// other lcore forwards.
    fn start(main_lcore: &str, prefix: &str, vdev: &str, mode: &str) -> anyhow::Result<Testpmd> {
        let mut child = Command::new("stdbuf")
            .args([
                "-o0",
                "-e0",
                "dpdk-testpmd",
                "-l",
                "0,1",
                "--main-lcore",
                main_lcore,
                "--no-pci",
                "--no-huge",
                "-m",
                "256",
            ])
            .args([
                "--no-shconf",
                &format!("--file-prefix={prefix}"),
                &format!("--vdev={vdev}"),
            ])
            .args([
                "--",
                "-i",
                "--nb-cores=1",
                &format!("--forward-mode={mode}"),
                "--total-num-mbufs=4096",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running dpdk-testpmd (apt install dpdk)")?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().context("no stdout")?;
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let testpmd = Testpmd { child, output };
        testpmd.wait_for("testpmd>", Duration::from_secs(60))?;
        Ok(testpmd)
    }

    fn command(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("no stdin")?;
        writeln!(stdin, "{line}")?;
        Ok(stdin.flush()?)
    }

    fn wait_for(&self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output.lock().unwrap().contains(text) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "testpmd did not print {text:?}:\n{}",
            self.output.lock().unwrap()
        )
    }

    /// Forwards for `seconds`, stops, and returns the accumulated TX-packets per second.
    fn tx_rate(&mut self, seconds: u64) -> anyhow::Result<f64> {
        self.command("start")?;
        std::thread::sleep(Duration::from_secs(seconds));
        self.command("stop")?;
        self.wait_for("Done.", Duration::from_secs(10))?;
        let output = self.output.lock().unwrap().clone();
        let block = output
            .rsplit("Accumulated forward statistics for all ports")
            .next()
            .context("no forward statistics")?;
        let tx: u64 = block
            .split("TX-packets:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .context("no TX-packets in the statistics")?;
        Ok(tx as f64 / seconds as f64)
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        let _ = self.command("quit");
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vhost_user_row(options: &Options, dir: &Path) -> anyhow::Result<()> {
    let pid = std::process::id();
    let ours = {
        let socket = dir.join("ours.sock");
        let backend = VhostUserNet::serve(&socket, NetPeer::Sink)?;
        let vdev = format!(
            "net_virtio_user0,path={},queues=1,queue_size=256",
            socket.display()
        );
        let mut front = Testpmd::start("0", &format!("bench-vu-ours-{pid}"), &vdev, "txonly")?;
        let rate = front.tx_rate(options.seconds)?;
        drop(front);
        drop(backend);
        rate
    };
    let peer = {
        let socket = dir.join("peer.sock");
        let back_vdev = format!("net_vhost0,iface={},queues=1", socket.display());
        let mut back =
            Testpmd::start("1", &format!("bench-vu-peer-b-{pid}"), &back_vdev, "rxonly")?;
        let vdev = format!(
            "net_virtio_user0,path={},queues=1,queue_size=256",
            socket.display()
        );
        let mut front = Testpmd::start("0", &format!("bench-vu-peer-f-{pid}"), &vdev, "txonly")?;
        back.command("start")?;
        let rate = front.tx_rate(options.seconds);
        drop(front);
        drop(back);
        rate.ok()
    };
    emit(
        "vhost_user_pps",
        "pps",
        ours,
        "dpdk-testpmd net_vhost",
        peer,
        "higher",
        "64-byte packets per second from net_virtio_user, against testpmd's own vhost backend",
    );
    Ok(())
}
