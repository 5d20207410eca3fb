//! Benchmark: `telco-sctp` against lksctp-tools' `sctp_test` (C, libsctp) on the same kernel,
//! side by side in one run.
//!
//! Both rows use one-to-one sockets over loopback and the same in-process peer, so only the
//! measured side differs:
//! - round trips per second: 1-byte unordered messages on stream 0, each sent after the echo
//!   of the one before, against an echo server of this program. The C side is
//!   `sctp_test -s -T -c 0 -D` (`-D` reads the echo after each send). Both times include
//!   process-side setup and the association handshake, amortized over the messages.
//! - bulk throughput: 32 KiB unordered messages sent as fast as the socket takes them to a sink
//!   of this program, which times the first message to the end of the association. The C side
//!   is `sctp_test -s -T -c 5`.
//!
//! Each row alternates the two sides for several rounds and reports the median, so noise on a
//! shared machine hits both. Needs a kernel with SCTP and `sctp_test` on `PATH`: it runs in the
//! vm tier guest through `cargo xtask bench`. Prints one JSON object per line.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use telco_sctp::{Received, SctpBuilder, SctpListener, SctpStream, SendFlags, SendInfo};

const ROUNDS: usize = 3;
/// `sctp_test` sends 10 messages per repeat (`-x`).
const MESSAGES_PER_REPEAT: u64 = 10;
const ROUND_TRIP_REPEATS: u64 = 50;
const BULK_REPEATS: u64 = 15;
const BULK_SIZE: usize = 32768;

fn main() -> anyhow::Result<()> {
    let support = telco_sctp::probe();
    if !support.is_available() {
        bail!("SCTP is not available ({support:?}); run bench-sctp in the vm tier guest");
    }
    let version = Command::new("sctp_test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if version.is_err() {
        bail!("sctp_test is missing: install Debian's lksctp-tools");
    }

    let echo = start_echo_server().context("failed to start the echo server")?;
    let (sink, sink_results) = start_sink().context("failed to start the sink")?;

    let round_trips = ROUND_TRIP_REPEATS * MESSAGES_PER_REPEAT;
    let mut ours = Vec::new();
    let mut peer = Vec::new();
    for _ in 0..ROUNDS {
        ours.push(round_trip_rate(echo, round_trips)?);
        peer.push(sctp_test_round_trip_rate(echo)?);
    }
    print_row(
        "SCTP echo round trips, 1 B, one-to-one, loopback",
        "round trips/s",
        median(&mut ours),
        median(&mut peer),
    );

    let mut ours = Vec::new();
    let mut peer = Vec::new();
    for _ in 0..ROUNDS {
        bulk_send(sink)?;
        ours.push(sink_results.recv_timeout(Duration::from_secs(60))?);
        sctp_test_bulk_send(sink)?;
        peer.push(sink_results.recv_timeout(Duration::from_secs(60))?);
    }
    print_row(
        "SCTP bulk throughput, 32 KiB messages, one-to-one, loopback",
        "MB/s",
        median(&mut ours),
        median(&mut peer),
    );
    Ok(())
}

fn print_row(row: &str, unit: &str, ours: f64, peer: f64) {
    let line = serde_json::json!({
        "row": row,
        "unit": unit,
        "ours": ours,
        "peer_name": "lksctp-tools sctp_test",
        "peer": peer,
        "better": "higher",
        "goal": "at least 0.95 of the C tool",
    });
    println!("{line}");
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn listener() -> anyhow::Result<(SctpListener, SocketAddr)> {
    let listener = SctpBuilder::new()
        .nodelay(true)
        .listen(&["127.0.0.1:0".parse()?])?;
    let addr = listener.bound_addrs()?[0];
    Ok((listener, addr))
}

/// Starts an echo server that sends every message back on its stream with its PPID and flags.
fn start_echo_server() -> anyhow::Result<SocketAddr> {
    let (listener, addr) = listener()?;
    std::thread::spawn(move || {
        while let Ok((stream, _)) = listener.accept() {
            std::thread::spawn(move || {
                while let Ok(Received::Message(message)) = stream.recv() {
                    let info = message.info.unwrap_or_default();
                    let reply = SendInfo::new(info.stream, info.ppid).with_flags(info.flags);
                    if stream.send(&message.data, &reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Starts a sink that reports, per association, megabytes per second from its first message to
/// its end.
fn start_sink() -> anyhow::Result<(SocketAddr, mpsc::Receiver<f64>)> {
    let (listener, addr) = listener()?;
    let (results, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((stream, _)) = listener.accept() {
            let mut bytes = 0usize;
            let mut first = None;
            while let Ok(Received::Message(message)) = stream.recv() {
                first.get_or_insert_with(Instant::now);
                bytes += message.data.len();
            }
            let seconds = first.map_or(f64::INFINITY, |first| first.elapsed().as_secs_f64());
            let _ = results.send(bytes as f64 / seconds / 1e6);
        }
    });
    Ok((addr, receiver))
}

/// Our client: `count` sequential 1-byte round trips, including the connect.
fn round_trip_rate(echo: SocketAddr, count: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    // Default options, as sctp_test uses.
    let stream = SctpBuilder::new().connect(&[echo], &[])?;
    let info = SendInfo::new(0, 0).with_flags(SendFlags::UNORDERED);
    for _ in 0..count {
        stream.send(b"x", &info)?;
        match stream.recv()? {
            Received::Message(_) => {}
            other => bail!("expected an echo, got {other:?}"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(stream);
    Ok(count as f64 / seconds)
}

fn sctp_test(target: SocketAddr, case: &str, repeats: u64, drain: bool) -> anyhow::Result<f64> {
    let mut command = Command::new("sctp_test");
    command.args(["-H", "127.0.0.1", "-P", "0", "-h", "127.0.0.1"]);
    command.args(["-p", &target.port().to_string(), "-s", "-T", "-d", "0"]);
    command.args(["-c", case, "-x", &repeats.to_string()]);
    if drain {
        command.arg("-D");
    }
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("failed to run sctp_test")?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "sctp_test failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(seconds)
}

/// `sctp_test`: the same round trips, including its process start and connect.
fn sctp_test_round_trip_rate(echo: SocketAddr) -> anyhow::Result<f64> {
    let seconds = sctp_test(echo, "0", ROUND_TRIP_REPEATS, true)?;
    Ok((ROUND_TRIP_REPEATS * MESSAGES_PER_REPEAT) as f64 / seconds)
}

/// Our client: the bulk messages to the sink.
fn bulk_send(sink: SocketAddr) -> anyhow::Result<()> {
    let stream: SctpStream = SctpBuilder::new().connect(&[sink], &[])?;
    let payload = vec![0x5a; BULK_SIZE];
    let info = SendInfo::new(0, 0).with_flags(SendFlags::UNORDERED);
    for _ in 0..BULK_REPEATS * MESSAGES_PER_REPEAT {
        stream.send(&payload, &info)?;
    }
    stream.shutdown()?;
    // Wait for the peer's side of the shutdown so all data is acknowledged before the next run.
    while let Ok(Received::Notification(_)) = stream.recv() {}
    Ok(())
}

/// `sctp_test`: the same bulk messages (test case 5: ten 32768-byte messages per repeat).
fn sctp_test_bulk_send(sink: SocketAddr) -> anyhow::Result<()> {
    sctp_test(sink, "5", BULK_REPEATS, false).map(drop)
}
