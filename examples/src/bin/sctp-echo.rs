//! `sctp-echo`: checks an SCTP path by hand, such as the S1AP (port 36412, PPID 18) or NGAP
//! (port 38412, PPID 60) path between a RAN node and its core.
//!
//! ```text
//! sctp-echo server --bind 10.0.0.1,10.1.0.1 --port 38412 [--one-to-many]
//! sctp-echo client --connect 10.0.0.1,10.1.0.1 --port 38412 [--bind 10.0.0.2,10.1.0.2]
//!                  [--stream 1] [--ppid 60] [--count 100] [--size 200]
//! ```
//!
//! The server echoes every message back on the same stream with the same payload protocol
//! identifier. The client sends `--count` messages one at a time, checks each echo's payload,
//! stream and PPID, and prints one JSON object:
//! `{"sent", "received", "mismatches", "rtt_us_p50", "rtt_us_p99"}`. It exits with status 1 if
//! an echo is missing or differs.
//!
//! Every address list binds or connects all its addresses (multi-homing). Logs go to stderr;
//! set `RUST_LOG=debug` for the notifications.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use telco_sctp::{
    Event, InitMsg, Message, Notification, OneToManySocket, Received, SctpBuilder, SctpError,
    SctpStream, SendFlags, SendInfo,
};
use tracing::{debug, info, warn};

#[derive(Debug, Parser)]
#[command(about = "Echo SCTP messages to check a path: stream and PPID are kept")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accept associations and echo every message on its stream with its PPID.
    Server(ServerArgs),
    /// Send messages, check their echoes and print a JSON summary.
    Client(ClientArgs),
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Local addresses to bind, comma-separated (IPv4 or IPv6).
    #[arg(long, value_delimiter = ',', required = true)]
    bind: Vec<IpAddr>,
    /// SCTP port to listen on.
    #[arg(long)]
    port: u16,
    /// Serve every association on one one-to-many (SOCK_SEQPACKET) socket instead of one
    /// one-to-one socket each.
    #[arg(long)]
    one_to_many: bool,
    /// Streams to offer in each direction.
    #[arg(long, default_value_t = 16)]
    streams: u16,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Server addresses, comma-separated; all of them are given to sctp_connectx.
    #[arg(long, value_delimiter = ',', required = true)]
    connect: Vec<IpAddr>,
    /// Server's SCTP port.
    #[arg(long)]
    port: u16,
    /// Local addresses to bind first, comma-separated; the kernel picks them when absent.
    #[arg(long, value_delimiter = ',')]
    bind: Vec<IpAddr>,
    /// Stream id to send on.
    #[arg(long, default_value_t = 0)]
    stream: u16,
    /// Payload protocol identifier, decimal (18 S1AP, 60 NGAP, 46 Diameter).
    #[arg(long, default_value_t = 0)]
    ppid: u32,
    /// Messages to send.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Milliseconds to wait for each echo before counting it missing.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

fn main() -> ExitCode {
    telco_examples::init_logging("info");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => serve(&args).map(|()| ExitCode::SUCCESS),
        Command::Client(args) => run_client(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sctp-echo: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn with_port(ips: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
}

fn serve(args: &ServerArgs) -> anyhow::Result<()> {
    if args.bind.is_empty() {
        bail!("--bind needs at least one address");
    }
    let addrs = with_port(&args.bind, args.port);
    let builder = SctpBuilder::new()
        .init_msg(InitMsg::streams(args.streams, args.streams))
        .nodelay(true)
        .subscribe(Event::AssocChange)
        .subscribe(Event::PeerAddrChange);
    if args.one_to_many {
        let socket = builder
            .one_to_many(&addrs)
            .with_context(|| format!("failed to listen on {addrs:?}"))?;
        info!(?addrs, "serving one-to-many");
        serve_one_to_many(&socket)
    } else {
        let listener = builder
            .listen(&addrs)
            .with_context(|| format!("failed to listen on {addrs:?}"))?;
        info!(?addrs, "serving one-to-one");
        loop {
            let (stream, peer) = listener.accept().context("accept failed")?;
            info!(?peer, assoc_id = %stream.assoc_id(), "association accepted");
            std::thread::spawn(move || {
                if let Err(error) = echo_stream(&stream) {
                    warn!(assoc_id = %stream.assoc_id(), "echo ended: {error}");
                }
            });
        }
    }
}

/// Echoes `message` back with its stream and PPID, on association `assoc` if given.
fn reply_info(message: &Message) -> SendInfo {
    let info = message.info.unwrap_or_default();
    SendInfo::new(info.stream, info.ppid)
        .with_flags(info.flags)
        .with_assoc_id(info.assoc_id)
}

fn echo_stream(stream: &SctpStream) -> Result<(), SctpError> {
    loop {
        match stream.recv()? {
            Received::Message(message) => {
                stream.send(&message.data, &reply_info(&message))?;
            }
            Received::Notification(notification) => log_notification(&notification),
            Received::Eof => {
                info!(assoc_id = %stream.assoc_id(), "association closed");
                return Ok(());
            }
            other => debug!(?other, "ignored"),
        }
    }
}

fn serve_one_to_many(socket: &OneToManySocket) -> anyhow::Result<()> {
    loop {
        match socket.recv() {
            Ok(Received::Message(message)) => {
                if let Err(error) = socket.send(&message.data, &reply_info(&message)) {
                    warn!(from = ?message.from, "echo failed: {error}");
                }
            }
            Ok(Received::Notification(notification)) => log_notification(&notification),
            Ok(other) => debug!(?other, "ignored"),
            Err(error) => warn!("receive failed: {error}"),
        }
    }
}

fn log_notification(notification: &Notification) {
    match notification {
        Notification::AssocChange(change) => {
            info!(assoc_id = %change.assoc_id, state = ?change.state, "association change");
        }
        Notification::PeerAddrChange(change) => {
            info!(
                assoc_id = %change.assoc_id,
                address = ?change.address,
                state = ?change.state,
                "peer address change"
            );
        }
        other => debug!(?other, "notification"),
    }
}

/// The result line of the client.
#[derive(Debug, serde::Serialize)]
struct Summary {
    sent: u64,
    received: u64,
    mismatches: u64,
    rtt_us_p50: Option<u64>,
    rtt_us_p99: Option<u64>,
}

fn run_client(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let peers = with_port(&args.connect, args.port);
    let local = with_port(&args.bind, 0);
    let outbound = args.stream.saturating_add(1).max(16);
    let stream = SctpBuilder::new()
        .init_msg(InitMsg::streams(outbound, outbound))
        .nodelay(true)
        .connect(&peers, &local)
        .with_context(|| format!("failed to connect to {peers:?}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(args.timeout_ms)))?;
    // The kernel rejects a message larger than the send buffer with EMSGSIZE, so make room
    // for one (up to net.core.wmem_max).
    if let Err(error) = stream
        .as_socket()
        .set_send_buffer_size(args.size.saturating_mul(2))
    {
        warn!("failed to raise the send buffer: {error}");
    }
    info!(?peers, assoc_id = %stream.assoc_id(), "connected");

    let info = SendInfo::new(args.stream, args.ppid).with_flags(SendFlags::SACK_IMMEDIATELY);
    let mut summary = Summary {
        sent: 0,
        received: 0,
        mismatches: 0,
        rtt_us_p50: None,
        rtt_us_p99: None,
    };
    let mut rtts = Vec::with_capacity(usize::try_from(args.count).unwrap_or(0));
    for sequence in 0..args.count {
        let payload = payload(sequence, args.size);
        let started = Instant::now();
        stream
            .send(&payload, &info)
            .with_context(|| format!("failed to send message {sequence}"))?;
        summary.sent += 1;
        match next_message(&stream) {
            Ok(Some(echo)) => {
                rtts.push(started.elapsed());
                summary.received += 1;
                if echo.data != payload || echo.stream() != args.stream || echo.ppid() != args.ppid
                {
                    warn!(
                        sequence,
                        stream = echo.stream(),
                        ppid = echo.ppid(),
                        "echo differs"
                    );
                    summary.mismatches += 1;
                }
            }
            Ok(None) => {
                warn!(sequence, "association closed before the echo");
                break;
            }
            Err(error) if error.is_would_block() => {
                warn!(sequence, "no echo within {} ms", args.timeout_ms);
                break;
            }
            Err(error) => return Err(error).context("receive failed"),
        }
    }
    let _ = stream.shutdown();

    summary.rtt_us_p50 = percentile_us(&mut rtts, 50);
    summary.rtt_us_p99 = percentile_us(&mut rtts, 99);
    println!("{}", serde_json::to_string(&summary)?);
    let complete = summary.received == summary.sent && summary.sent == args.count;
    Ok(if complete && summary.mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Receives until a user message arrives; `None` when the association ends first.
fn next_message(stream: &SctpStream) -> Result<Option<Message>, SctpError> {
    loop {
        match stream.recv()? {
            Received::Message(message) => return Ok(Some(message)),
            Received::Notification(notification) => log_notification(&notification),
            Received::Eof => return Ok(None),
            other => debug!(?other, "ignored"),
        }
    }
}

/// Builds a payload of `size` bytes that starts with the sequence number, so a stale echo shows.
fn payload(sequence: u64, size: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz";
    let mut data: Vec<u8> = (0..size).map(|i| alphabet[i % alphabet.len()]).collect();
    let prefix = sequence.to_be_bytes();
    let len = prefix.len().min(size);
    data[..len].copy_from_slice(&prefix[..len]);
    data
}

/// Returns the `percent` percentile of `samples` in microseconds (nearest rank).
fn percentile_us(samples: &mut [Duration], percent: usize) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = (samples.len() * percent).div_ceil(100).max(1);
    let micros = samples[rank - 1].as_micros();
    Some(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_us(&mut samples, 50), Some(50));
        assert_eq!(percentile_us(&mut samples, 99), Some(99));
        assert_eq!(percentile_us(&mut [Duration::from_micros(7)], 99), Some(7));
        assert_eq!(percentile_us(&mut [], 50), None);
    }

    #[test]
    fn payload_starts_with_sequence() {
        let data = payload(258, 12);
        assert_eq!(data.len(), 12);
        assert_eq!(&data[..8], &258u64.to_be_bytes());
        assert_ne!(payload(1, 12), payload(2, 12));
        assert_eq!(payload(1, 3).len(), 3);
    }

    #[test]
    fn cli_parses_address_lists() {
        let cli = Cli::try_parse_from([
            "sctp-echo",
            "client",
            "--connect",
            "10.0.0.1,fd00::1",
            "--port",
            "38412",
            "--ppid",
            "60",
        ])
        .unwrap();
        let Command::Client(args) = cli.command else {
            panic!("expected the client subcommand");
        };
        assert_eq!(args.connect.len(), 2);
        assert_eq!(
            with_port(&args.connect, args.port)[1],
            "[fd00::1]:38412".parse().unwrap()
        );
        assert_eq!(args.ppid, 60);
        assert_eq!(args.count, 10);
    }
}
