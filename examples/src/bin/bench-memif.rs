//! `bench-memif`: memif packets per second at 64 bytes, ours against testpmd, compared with
//! testpmd against testpmd.
//!
//! Three pairs of sender and receiver, each with the receiver pinned to CPU 1 and the sender to
//! CPU 0:
//!
//! - peer: `dpdk-testpmd` client in `txonly` mode into a `dpdk-testpmd` server in `rxonly` mode,
//!   both `--no-huge -m 1024 --no-pci`, one vCPU each (`--lcores 0@0,1@0` and `0@1,1@1`), run
//!   interactively;
//! - ours as sender: our client transmitting bursts of 32 frames into a testpmd `rxonly` server;
//! - ours as receiver: a testpmd `txonly` client into our server, which receives bursts of 32 and
//!   copies each frame out of shared memory, as DPDK's `net_memif` copies it into an mbuf.
//!
//! The pairs take turns, in a rotating order, for `--rounds` rounds (7 by default). Each turn
//! starts fresh processes and threads and measures the same way: start the receiver, then the
//! sender, wait until the receiver counts a packet, warm up, read the receiver's packet counter
//! twice, [`MEASURE`] apart, and end both sides. Every pair is torn down before the next one
//! starts because a testpmd lcore busy-polls even after `stop`, and would take CPU time from the
//! pair being measured. Short interleaved turns make load from other programs on the machine hit
//! all pairs alike.
//!
//! Each row reports the highest sample of each side, and the medians beside it. Noise here only
//! lowers a sample: other load takes CPU time, and on a 2-vCPU KVM guest every pair, testpmd's
//! own included, was seen to run for seconds at a time at about a third of its usual rate.
//! The median then depends on how many turns of each side fell into such a phase, while the
//! highest sample of each side shows what it does when nothing interferes.
//!
//! Prints one JSON object per row for `cargo xtask bench`, with every sample and the load
//! average before and after, and one line per sample on stderr.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use telco_net::memif::{MAX_FRAME_LEN, Memif, MemifConfig, Role, SocketPath};

const MEASURE: Duration = Duration::from_secs(2);
const WARMUP: Duration = Duration::from_millis(500);
/// How long a pair may take from `start` to the receiver's first packet.
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_ROUNDS: usize = 7;
const FRAME_LEN: usize = 64;
/// Frames per burst, as testpmd's default `--burst`.
const BURST: usize = 32;
const SENDER_CPU: usize = 0;
const RECEIVER_CPU: usize = 1;
const SERVER_LCORES: &str = "0@1,1@1";
const CLIENT_LCORES: &str = "0@0,1@0";
/// Runtime directory of DPDK processes started by root, one subdirectory per file prefix.
const DPDK_RUNTIME_DIR: &str = "/var/run/dpdk";

/// Numbers the testpmd processes of this run, so that each gets its own file prefix.
static TESTPMD_SPAWNS: AtomicUsize = AtomicUsize::new(0);

/// A `dpdk-testpmd` child in interactive mode, killed when dropped.
struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
    prefix: String,
}

impl Testpmd {
    fn spawn(
        role: &str,
        socket: &Path,
        lcores: &str,
        mode: &str,
        name: &str,
    ) -> anyhow::Result<Self> {
        let spawn = TESTPMD_SPAWNS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("telco-bench-memif-{}-{spawn}-{name}", std::process::id());
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
            prefix,
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
            // Short, so that counter reads return soon after testpmd prints them.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Starts forwarding in the mode given at spawn.
    fn start(&mut self) -> anyhow::Result<()> {
        self.command("start")
    }

    /// Port 0's RX-packets counter.
    fn rx_packets(&mut self) -> anyhow::Result<u64> {
        // Older output, such as the port configuration that `start` prints, must not be parsed
        // as the output of this command.
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
        let _ = std::fs::remove_dir_all(Path::new(DPDK_RUNTIME_DIR).join(&self.prefix));
    }
}

fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

fn socket(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// A sender and a receiver, connected; traffic moves from `start` until the pair is dropped.
trait Pair {
    /// Starts the receiver, then the sender.
    fn start(&mut self) -> anyhow::Result<()>;
    /// Returns the receiver's count of packets received since the pair was made.
    fn received(&mut self) -> anyhow::Result<u64>;
}

/// Run and exit switches of one of our pinned threads, which sleeps until it is started.
#[derive(Debug, Default)]
struct Switch {
    running: AtomicBool,
    exit: AtomicBool,
}

impl Switch {
    /// Waits until the thread is started; returns `None` once `exit` is set.
    fn wait_running(&self) -> Option<()> {
        loop {
            if self.exit.load(Ordering::Relaxed) {
                return None;
            }
            if self.running.load(Ordering::Relaxed) {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// One of our pinned threads and its switch; the thread exits when this is dropped.
struct OurThread {
    switch: Arc<Switch>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl OurThread {
    fn spawn(body: impl FnOnce(&Switch) -> anyhow::Result<()> + Send + 'static) -> Self {
        let switch = Arc::new(Switch::default());
        let thread = {
            let switch = Arc::clone(&switch);
            std::thread::spawn(move || body(&switch))
        };
        Self {
            switch,
            thread: Some(thread),
        }
    }

    fn start(&self) {
        self.switch.running.store(true, Ordering::Relaxed);
    }

    /// Returns the thread's error if it has ended, since then the pair cannot move traffic.
    fn check(&mut self) -> anyhow::Result<()> {
        if !self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            return Ok(());
        }
        let thread = self.thread.take().expect("checked above");
        thread.join().expect("our thread panicked")?;
        bail!("our thread ended before the pair was dropped")
    }
}

impl Drop for OurThread {
    fn drop(&mut self) {
        self.switch.exit.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// testpmd `txonly` client into testpmd `rxonly` server.
struct PeerPair {
    server: Testpmd,
    client: Testpmd,
}

impl PeerPair {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        let path = socket(dir, "peer.sock");
        let server = Testpmd::spawn("server", &path, SERVER_LCORES, "rxonly", "server")?;
        let client = Testpmd::spawn("client", &path, CLIENT_LCORES, "txonly", "client")?;
        Ok(Self { server, client })
    }
}

impl Pair for PeerPair {
    fn start(&mut self) -> anyhow::Result<()> {
        self.server.start()?;
        self.client.start()
    }

    fn received(&mut self) -> anyhow::Result<u64> {
        self.server.rx_packets()
    }
}

/// Our client, sending 64-byte frames, into a testpmd `rxonly` server.
struct OursSendingPair {
    server: Testpmd,
    sender: OurThread,
}

impl OursSendingPair {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        let path = socket(dir, "ours-tx.sock");
        let server = Testpmd::spawn("server", &path, SERVER_LCORES, "rxonly", "rx")?;
        let sender = OurThread::spawn(move |switch| {
            pin(SENDER_CPU)?;
            let mut memif = Memif::new(MemifConfig::new(Role::Client, SocketPath::Path(path)))?;
            memif.connect(Duration::from_secs(10))?;
            let mut frame = [0u8; FRAME_LEN];
            frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            let burst = [&frame[..]; BURST];
            while switch.wait_running().is_some() {
                memif.tx_burst(0, &burst)?;
            }
            Ok(())
        });
        Ok(Self { server, sender })
    }
}

impl Pair for OursSendingPair {
    fn start(&mut self) -> anyhow::Result<()> {
        self.server.start()?;
        self.sender.start();
        Ok(())
    }

    fn received(&mut self) -> anyhow::Result<u64> {
        self.sender.check()?;
        self.server.rx_packets()
    }
}

/// A testpmd `txonly` client into our server.
struct OursReceivingPair {
    client: Testpmd,
    receiver: OurThread,
    received: Arc<AtomicU64>,
}

impl OursReceivingPair {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        let path = socket(dir, "ours-rx.sock");
        let received = Arc::new(AtomicU64::new(0));
        let mut memif = Memif::new(MemifConfig::new(
            Role::Server,
            SocketPath::Path(path.clone()),
        ))?;
        let receiver = {
            let received = Arc::clone(&received);
            OurThread::spawn(move |switch| {
                pin(RECEIVER_CPU)?;
                memif.connect(Duration::from_secs(20))?;
                let mut copy = [0u8; MAX_FRAME_LEN];
                let mut total = 0u64;
                while switch.wait_running().is_some() {
                    let count = memif.rx_burst(0, BURST, |frame| {
                        let copy = &mut copy[..frame.len()];
                        copy.copy_from_slice(frame);
                        std::hint::black_box(copy);
                    })?;
                    total += count as u64;
                    received.store(total, Ordering::Relaxed);
                }
                Ok(())
            })
        };
        let client = Testpmd::spawn("client", &path, CLIENT_LCORES, "txonly", "tx")?;
        Ok(Self {
            client,
            receiver,
            received,
        })
    }
}

impl Pair for OursReceivingPair {
    fn start(&mut self) -> anyhow::Result<()> {
        self.receiver.start();
        self.client.start()
    }

    fn received(&mut self) -> anyhow::Result<u64> {
        self.receiver.check()?;
        Ok(self.received.load(Ordering::Relaxed))
    }
}

/// Packets per second that the receiver counts in one turn of `pair`, read the same way for
/// every pair: start, wait for the first packet, warm up, read the counter twice.
fn measure(pair: &mut dyn Pair) -> anyhow::Result<f64> {
    let before = pair.received()?;
    pair.start()?;
    let deadline = Instant::now() + FIRST_PACKET_TIMEOUT;
    while pair.received()? == before {
        if Instant::now() > deadline {
            bail!("the receiver counted no packet within {FIRST_PACKET_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(WARMUP);
    let (first, start) = sample(pair)?;
    std::thread::sleep(MEASURE);
    let (last, end) = sample(pair)?;
    let packets = last
        .checked_sub(first)
        .context("the receiver's packet counter went backwards")?;
    Ok(packets as f64 / (end - start).as_secs_f64())
}

/// Reads the counter and stamps it with the middle of the read: testpmd reads its counter at
/// some point during the round trip of `show port stats`.
fn sample(pair: &mut dyn Pair) -> anyhow::Result<(u64, Instant)> {
    let before = Instant::now();
    let count = pair.received()?;
    let after = Instant::now();
    Ok((count, before + (after - before) / 2))
}

fn max(samples: &[f64]) -> Option<f64> {
    samples.iter().copied().reduce(f64::max)
}

/// Returns the middle value of `samples` (the mean of the two middle ones for an even count).
fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// Returns the 1-minute load average, to show how busy the machine was.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn parse_rounds() -> anyhow::Result<usize> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [] => Ok(DEFAULT_ROUNDS),
        [flag, value] if flag == "--rounds" => match value.parse() {
            Ok(rounds @ 1..) => Ok(rounds),
            _ => bail!("invalid --rounds {value:?}: expected a whole number of at least 1"),
        },
        _ => bail!("usage: bench-memif [--rounds N]"),
    }
}

/// Names of the pairs, in the order of the samples.
const PAIRS: [&str; 3] = [
    "testpmd to testpmd",
    "our client to testpmd",
    "testpmd to our server",
];

/// Connects pair `index` of [`PAIRS`].
fn make_pair(index: usize, dir: &Path) -> anyhow::Result<Box<dyn Pair>> {
    Ok(match index {
        0 => Box::new(PeerPair::new(dir)?),
        1 => Box::new(OursSendingPair::new(dir)?),
        _ => Box::new(OursReceivingPair::new(dir)?),
    })
}

/// Runs the turns and returns the samples in packets per second of each pair, in the order of
/// [`PAIRS`]. A failure of the peer pair ends its turns and leaves its samples short; a failure
/// of ours is an error.
fn run_rounds(dir: &Path, rounds: usize) -> anyhow::Result<[Vec<f64>; 3]> {
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut peer_failed = false;
    for round in 1..=rounds {
        // Rotating the order keeps any pair from always running first or after the same one.
        for step in 0..PAIRS.len() {
            let index = (round + step) % PAIRS.len();
            let name = PAIRS[index];
            if index == 0 && peer_failed {
                continue;
            }
            // The pair is dropped, and its processes and threads end, before the next starts.
            let turn = make_pair(index, dir).and_then(|mut pair| measure(pair.as_mut()));
            match turn {
                Ok(pps) => {
                    eprintln!("bench-memif: round {round}: {name}: {:.2} Mpps", pps / 1e6);
                    samples[index].push(pps);
                }
                // Without the peer, the rows still report our numbers.
                Err(error) if index == 0 => {
                    eprintln!("bench-memif: round {round}: {name}: {error:#}");
                    peer_failed = true;
                }
                Err(error) => return Err(error.context(format!("round {round}: {name}"))),
            }
        }
    }
    Ok(samples)
}

fn main() -> anyhow::Result<()> {
    let rounds = parse_rounds()?;
    let dir = tempfile_dir()?;
    let load_before = load_average();
    let samples = run_rounds(&dir, rounds);
    let load_after = load_average();
    let _ = std::fs::remove_dir_all(&dir);
    let [peer, ours_sending, ours_receiving] = samples?;
    let rows = [
        (
            format!("memif 64 B pps, our client sending to testpmd, best of {rounds} turns"),
            ours_sending,
        ),
        (
            format!("memif 64 B pps, testpmd sending to our server, best of {rounds} turns"),
            ours_receiving,
        ),
    ];
    for (row, ours) in rows {
        let best_ours = max(&ours).context("no samples of our side")?;
        println!(
            "{}",
            serde_json::json!({
                "row": row,
                "unit": "packets/s",
                "ours": best_ours.round(),
                "peer_name": "dpdk-testpmd txonly to dpdk-testpmd rxonly (DPDK 22.11 net_memif)",
                "peer": max(&peer).map(f64::round),
                "better": "higher",
                "goal": "at least equal to testpmd against testpmd",
                "statistic": format!("highest of {rounds} interleaved turns of {MEASURE:?} each"),
                "ours_median": median(&ours).map(f64::round),
                "peer_median": median(&peer).map(f64::round),
                "ours_samples": ours.iter().map(|pps| pps.round()).collect::<Vec<_>>(),
                "peer_samples": peer.iter().map(|pps| pps.round()).collect::<Vec<_>>(),
                "load_average": [load_before, load_after],
            })
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("telco-bench-memif-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
