//! `memif-pkt`: sends, receives or echoes Ethernet frames over memif, against DPDK's
//! `net_memif`, VPP, libmemif, or another `memif-pkt`.
//!
//! ```text
//! memif-pkt --socket PATH --role client|server --mode tx|rx|echo --count N [--size BYTES]
//! memif-pkt --network NAME --mode tx|rx|echo --count N [--size BYTES]
//! ```
//!
//! `PATH` starting with `@` is an abstract socket name. With `--network`, the socket and role
//! come from the memif `device-info` of that network's entry in the network-status list that
//! `vnf-pod` gives its workload (`$TELCO_NETWORK_STATUS`, else the file named by
//! `$TELCO_NETWORK_STATUS_FILE`): a `slave` workload is the client.
//!
//! `tx` sends N frames of `--size` bytes and counts the ones that come back with the same
//! payload (the MAC addresses may be swapped, as testpmd's `macswap` mode does) in `echoed`. If
//! none comes back within five seconds of the last one sent, the peer does not echo, and
//! `packets` counts the frames sent. `rx` receives N frames; `echo` sends back every frame it
//! receives until it has echoed N. The program prints one JSON object:
//! `{"packets", "bytes", "errors", "mpps"}`, plus `"echoed"` in `tx` mode. When the peer goes
//! away, it reconnects and carries on. Logs go to stderr; set `RUST_LOG=debug` for more.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use telco_net::cni::{Device, MemifRole, NetworkStatus};
use telco_net::memif::{Memif, MemifConfig, MemifError, Role, SocketPath};
use tracing::info;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Connect to the socket and own the shared memory.
    Client,
    /// Listen on the socket.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Send frames and count the echoes.
    Tx,
    /// Receive frames.
    Rx,
    /// Send back every frame received.
    Echo,
}

#[derive(Debug, Parser)]
#[command(about = "Send, receive or echo Ethernet frames over memif and print a JSON summary")]
struct Cli {
    /// Control socket path, or `@name` for an abstract socket.
    #[arg(long, required_unless_present = "network", conflicts_with = "network")]
    socket: Option<String>,
    /// memif role.
    #[arg(
        long,
        value_enum,
        required_unless_present = "network",
        conflicts_with = "network"
    )]
    role: Option<RoleArg>,
    /// Take the socket and role from this network's entry in the network-status list
    /// ($TELCO_NETWORK_STATUS or the file named by $TELCO_NETWORK_STATUS_FILE).
    #[arg(long)]
    network: Option<String>,
    /// What to do with frames.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Number of frames to send, receive or echo.
    #[arg(long)]
    count: u64,
    /// Frame size in bytes, 14 to 9216.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Interface id, as the peer's `id` devarg.
    #[arg(long, default_value_t = 0)]
    id: u32,
    /// Seconds to wait for the peer, at start and after it goes away.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

const BURST: usize = 32;

/// Counters printed at the end.
#[derive(Debug, Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    errors: u64,
    /// Frames that came back intact, in `tx` mode.
    echoed: Option<u64>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("memif-pkt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if !(14..=telco_net::memif::MAX_FRAME_LEN).contains(&cli.size) {
        bail!(
            "--size must be 14 to {} bytes",
            telco_net::memif::MAX_FRAME_LEN
        );
    }
    let (socket, role) = match (&cli.network, &cli.socket, cli.role) {
        (Some(network), _, _) => socket_of_network(network)?,
        (None, Some(socket), Some(role)) => {
            let role = match role {
                RoleArg::Client => Role::Client,
                RoleArg::Server => Role::Server,
            };
            (SocketPath::parse(socket), role)
        }
        _ => bail!("give --network, or both --socket and --role"),
    };
    info!(%socket, ?role, "using memif socket");
    let mut config = MemifConfig::new(role, socket);
    config.id = cli.id;
    config.name = "memif-pkt".into();
    let mut memif = Memif::new(config).context("creating the memif interface")?;
    let timeout = Duration::from_secs(cli.timeout);
    connect(&mut memif, timeout)?;

    let start = Instant::now();
    let mut totals = match cli.mode {
        Mode::Tx => transmit(&mut memif, cli, timeout)?,
        Mode::Rx => receive(&mut memif, cli.count, false, timeout)?,
        Mode::Echo => receive(&mut memif, cli.count, true, timeout)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    totals.errors += memif.stats().errors;
    let mpps = if seconds > 0.0 {
        totals.packets as f64 / seconds / 1e6
    } else {
        0.0
    };
    let mut summary = serde_json::json!({
        "packets": totals.packets,
        "bytes": totals.bytes,
        "errors": totals.errors,
        "mpps": (mpps * 1000.0).round() / 1000.0,
    });
    if let Some(echoed) = totals.echoed {
        summary["echoed"] = echoed.into();
    }
    println!("{summary}");
    Ok(())
}

/// Reads the network-status list from the environment, as `vnf-pod` passes it.
fn network_status_list() -> anyhow::Result<Vec<NetworkStatus>> {
    let (origin, text) = match std::env::var("TELCO_NETWORK_STATUS") {
        Ok(text) => ("$TELCO_NETWORK_STATUS".to_owned(), text),
        Err(_) => {
            let path = std::env::var_os("TELCO_NETWORK_STATUS_FILE")
                .map(PathBuf::from)
                .context(
                    "--network needs the network-status list in $TELCO_NETWORK_STATUS or \
                     $TELCO_NETWORK_STATUS_FILE; run under vnf-pod or give --socket and --role",
                )?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading network status file {}", path.display()))?;
            (path.display().to_string(), text)
        }
    };
    serde_json::from_str(&text)
        .with_context(|| format!("parsing the network-status list in {origin}"))
}

/// Returns the socket and this side's role for network `name`, from its memif `device-info`.
fn socket_of_network(name: &str) -> anyhow::Result<(SocketPath, Role)> {
    let list = network_status_list()?;
    let entry = list
        .iter()
        .find(|entry| entry.name == name)
        .with_context(|| format!("the network-status list has no network {name:?}"))?;
    let Some(Device::Memif(memif)) = entry.device_info.as_ref().map(|info| &info.device) else {
        bail!("network {name:?} has no memif device-info");
    };
    let role = match memif.role {
        MemifRole::Slave => Role::Client,
        MemifRole::Master => Role::Server,
    };
    Ok((SocketPath::Path(memif.path.clone()), role))
}

/// Connects, retrying while a server is not there yet.
fn connect(memif: &mut Memif, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match memif.connect(left.max(Duration::from_millis(100))) {
            Ok(()) => {
                info!(peer = memif.peer_name().unwrap_or(""), "connected");
                return Ok(());
            }
            Err(error @ (MemifError::NoServer { .. } | MemifError::PeerClosed))
                if Instant::now() < deadline =>
            {
                tracing::debug!(%error, "retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => return Err(error).context("connecting to the memif peer"),
        }
    }
}

/// Checks the control socket every few thousand polls and reconnects if the peer left.
struct Watchdog {
    polls: u32,
}

impl Watchdog {
    fn check(&mut self, memif: &mut Memif, timeout: Duration) -> anyhow::Result<bool> {
        self.polls += 1;
        if !self.polls.is_multiple_of(4096) || memif.poll_control() {
            return Ok(false);
        }
        info!("peer went away; reconnecting");
        connect(memif, timeout)?;
        Ok(true)
    }
}

/// A frame with locally administered MACs, ethertype 0x88b5 (local experimental) and a
/// payload derived from `seq`.
fn build_frame(seq: u64, size: usize) -> Vec<u8> {
    let mut frame = vec![0u8; size];
    frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    for (i, byte) in frame[14..].iter_mut().enumerate() {
        // The low byte of a running pattern; truncation is the point.
        *byte = seq.wrapping_mul(131).wrapping_add(i as u64).to_le_bytes()[0];
    }
    let tag = seq.to_be_bytes();
    let n = tag.len().min(size - 14);
    frame[14..14 + n].copy_from_slice(&tag[..n]);
    frame
}

fn transmit(memif: &mut Memif, cli: &Cli, timeout: Duration) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let templates: Vec<Vec<u8>> = (0..BURST as u64)
        .map(|seq| build_frame(seq, cli.size))
        .collect();
    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let mut sent = 0u64;
    let mut echoed = 0u64;
    let mut intact_total = 0u64;
    let mut last_progress = Instant::now();
    let mut watchdog = Watchdog { polls: 0 };
    let mut signal_seen = false;
    let mut frames: Vec<Vec<u8>> = templates.clone();
    loop {
        if sent < cli.count {
            let n = usize::try_from((cli.count - sent).min(BURST as u64)).unwrap_or(BURST);
            for (k, frame) in frames.iter_mut().take(n).enumerate() {
                // Only the tag changes between frames, so refresh it in place.
                let seq = sent + k as u64;
                frame.copy_from_slice(&build_frame(seq, cli.size));
            }
            let refs: Vec<&[u8]> = frames[..n].iter().map(Vec::as_slice).collect();
            match memif.tx_burst(0, &refs) {
                Ok(done) => {
                    in_flight.extend(sent..sent + done as u64);
                    sent += done as u64;
                    if done > 0 {
                        last_progress = Instant::now();
                    }
                }
                Err(MemifError::NotConnected) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let mut intact = 0u64;
        let mut bad = 0u64;
        let _ = memif.rx_burst(0, BURST * 2, |frame| {
            let Some(seq) = in_flight.pop_front() else {
                bad += 1;
                return;
            };
            let expected = build_frame(seq, cli.size);
            if frame.len() == expected.len() && frame[12..] == expected[12..] {
                intact += 1;
            } else {
                bad += 1;
            }
        });
        if intact + bad > 0 {
            last_progress = Instant::now();
        }
        echoed += intact;
        intact_total += intact;
        totals.errors += bad;
        if echoed + totals.errors >= cli.count {
            break;
        }
        // Once everything is sent, a peer that leaves or stays silent for five seconds ends the run.
        // Look at the control socket only when the ring is drained, since the echoes of a peer
        // that exits right after echoing are still in it.
        let idle = intact + bad == 0;
        let mut peer_left = false;
        if sent >= cli.count && idle && memif.control_pending() {
            // The peer wrote its last echoes before it signalled, so one more idle pass after
            // the signal means the ring is drained.
            peer_left = signal_seen && !memif.poll_control();
            signal_seen = true;
        }
        if peer_left || (sent >= cli.count && last_progress.elapsed() > Duration::from_secs(5)) {
            if echoed == 0 && totals.errors == 0 {
                info!("no echo came back: counting frames sent");
                echoed = sent;
            }
            break;
        }
        // Only a drained ring may be reset by a reconnect: echoes still in it would be lost.
        if idle && watchdog.check(memif, timeout)? {
            in_flight.clear();
        }
    }
    drop(templates);
    totals.packets = echoed;
    totals.bytes = echoed * cli.size as u64;
    totals.echoed = Some(intact_total);
    Ok(totals)
}

fn receive(memif: &mut Memif, count: u64, echo: bool, timeout: Duration) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let mut watchdog = Watchdog { polls: 0 };
    let mut pending: Vec<Vec<u8>> = Vec::new();
    while totals.packets < count {
        let want = usize::try_from(count - totals.packets)
            .unwrap_or(BURST)
            .min(BURST);
        if echo {
            if pending.is_empty() {
                let _ = memif.rx_burst(0, want, |frame| pending.push(frame.to_vec()));
            }
            if !pending.is_empty() {
                let refs: Vec<&[u8]> = pending.iter().map(Vec::as_slice).collect();
                let done = match memif.tx_burst(0, &refs) {
                    Ok(done) => done,
                    Err(MemifError::NotConnected) => 0,
                    Err(error) => return Err(error.into()),
                };
                totals.packets += done as u64;
                totals.bytes += pending[..done]
                    .iter()
                    .map(|frame| frame.len() as u64)
                    .sum::<u64>();
                pending.drain(..done);
            }
        } else {
            let _ = memif.rx_burst(0, want, |frame| {
                totals.packets += 1;
                totals.bytes += frame.len() as u64;
            });
        }
        if watchdog.check(memif, timeout)? {
            pending.clear();
        }
    }
    Ok(totals)
}
