//! `bench-memif`: memif packets per second at 64 bytes, ours against testpmd, compared with
//! testpmd against testpmd, side by side in one run.
//!
//! Each setup pins the receiving side to CPU 1 and the sending side to CPU 0, lets traffic run,
//! and reads the receiver's packet counter twice, 5 seconds apart:
//!
//! - peer: `dpdk-testpmd` client in `txonly` mode into a `dpdk-testpmd` server in `rxonly` mode,
//!   both `--no-huge -m 1024 --no-pci`, one vCPU each (`--lcores 0@0,1@0` and `0@1,1@1`),
//!   started interactively and told to `start` once both are up;
//! - ours as sender: our client transmitting bursts of 32 frames into the testpmd `rxonly` server;
//! - ours as receiver: testpmd `txonly` client into our server.
//!
//! Prints one JSON object per row for `cargo xtask bench`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use telco_net::memif::{Memif, MemifConfig, Role, SocketPath};

const MEASURE: Duration = Duration::from_secs(5);
const WARMUP: Duration = Duration::from_secs(2);
const FRAME_LEN: usize = 64;

/// A `dpdk-testpmd` child in interactive mode, killed when dropped.
struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
}

impl Testpmd {
    fn spawn(
        role: &str,
        socket: &Path,
        lcores: &str,
        mode: &str,
        name: &str,
    ) -> anyhow::Result<Self> {
        let prefix = format!("telco-bench-memif-{}-{name}", std::process::id());
        let vdev = format!(
            "net_memif0,role={role},socket={},socket-abstract=no",
            socket.display()
        );
        let forward = format!("--forward-mode={mode}");
        let mut child = Command::new("stdbuf")
            .args([
                "-o0",
                "dpdk-testpmd",
                "--no-huge",
                "-m",
                "1024",
                "--no-pci",
                "--lcores",
                lcores,
            ])
            .args([
                "--file-prefix",
                &prefix,
                "--vdev",
                &vdev,
                "--",
                "-i",
                &forward,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running dpdk-testpmd (Debian package dpdk)")?;
        let stdin = child.stdin.take().context("stdin")?;
        let mut stdout = child.stdout.take().context("stdout")?;
        let output = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let mut testpmd = Self {
            child,
            stdin,
            output,
        };
        testpmd.wait_for("testpmd>")?;
        Ok(testpmd)
    }

    fn command(&mut self, command: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{command}")?;
        Ok(self.stdin.flush()?)
    }

    fn wait_for(&mut self, text: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(at) = output.find(text) {
                    let seen = output[..at + text.len()].to_string();
                    output.drain(..at + text.len());
                    return Ok(seen);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("dpdk-testpmd exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("dpdk-testpmd did not print {text:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Port 0's RX-packets counter.
    fn rx_packets(&mut self) -> anyhow::Result<u64> {
        self.command("show port stats 0")?;
        self.wait_for("RX-packets:")?;
        let text = self.wait_for("RX-missed")?;
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .context("RX-packets in testpmd output")
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

/// Packets per second that `read` counts over the measurement window, after a warm-up.
fn measure(mut read: impl FnMut() -> anyhow::Result<u64>) -> anyhow::Result<f64> {
    std::thread::sleep(WARMUP);
    let (first, start) = (read()?, Instant::now());
    std::thread::sleep(MEASURE);
    let (last, elapsed) = (read()?, start.elapsed());
    Ok((last - first) as f64 / elapsed.as_secs_f64())
}

fn socket(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn testpmd_to_testpmd(dir: &Path) -> anyhow::Result<f64> {
    let path = socket(dir, "peer.sock");
    let mut server = Testpmd::spawn("server", &path, "0@1,1@1", "rxonly", "server")?;
    let mut client = Testpmd::spawn("client", &path, "0@0,1@0", "txonly", "client")?;
    server.command("start")?;
    client.command("start")?;
    let pps = measure(|| server.rx_packets());
    drop(client);
    pps
}

/// Our client sends 64-byte frames into a testpmd server in `rxonly` mode.
fn ours_to_testpmd(dir: &Path) -> anyhow::Result<f64> {
    let path = socket(dir, "ours-tx.sock");
    let mut server = Testpmd::spawn("server", &path, "0@1,1@1", "rxonly", "rx")?;
    server.command("start")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let path = path.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            pin(0)?;
            let mut memif = Memif::new(MemifConfig::new(Role::Client, SocketPath::Path(path)))?;
            memif.connect(Duration::from_secs(10))?;
            let mut frame = [0u8; FRAME_LEN];
            frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            let burst = [&frame[..]; 32];
            while !stop.load(Ordering::Relaxed) {
                memif.tx_burst(0, &burst)?;
            }
            Ok(())
        })
    };
    let pps = measure(|| server.rx_packets());
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread")?;
    pps
}

/// A testpmd client in `txonly` mode sends into our server.
fn testpmd_to_ours(dir: &Path) -> anyhow::Result<f64> {
    let path = socket(dir, "ours-rx.sock");
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut memif = Memif::new(MemifConfig::new(
        Role::Server,
        SocketPath::Path(path.clone()),
    ))?;
    let receiver = {
        let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || -> anyhow::Result<()> {
            pin(1)?;
            memif.connect(Duration::from_secs(20))?;
            let mut local = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = memif.rx_burst(0, 32, |frame| {
                    std::hint::black_box(frame);
                })?;
                local += n as u64;
                received.store(local, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    let mut client = Testpmd::spawn("client", &path, "0@0,1@0", "txonly", "tx")?;
    client.command("start")?;
    let pps = measure(|| Ok(received.load(Ordering::Relaxed)));
    stop.store(true, Ordering::Relaxed);
    drop(client);
    receiver.join().expect("receiver thread")?;
    pps
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let peer = testpmd_to_testpmd(&dir)
        .map_err(|error| eprintln!("bench-memif: testpmd to testpmd: {error:#}"))
        .ok();
    let rows = [
        (
            "memif 64 B pps, our client sending to testpmd",
            ours_to_testpmd(&dir),
        ),
        (
            "memif 64 B pps, testpmd sending to our server",
            testpmd_to_ours(&dir),
        ),
    ];
    for (row, ours) in rows {
        let ours = ours.with_context(|| row.to_owned())?;
        println!(
            "{}",
            serde_json::json!({
                "row": row,
                "unit": "packets/s",
                "ours": ours.round(),
                "peer_name": "dpdk-testpmd txonly to dpdk-testpmd rxonly (DPDK 22.11 net_memif)",
                "peer": peer.map(f64::round),
                "better": "higher",
                "goal": "at least equal to testpmd against testpmd",
            })
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("telco-bench-memif-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
