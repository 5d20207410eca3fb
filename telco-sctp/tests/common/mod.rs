//! Helpers of the SCTP integration tests: loopback pairs, network namespaces and peer tools.

#![allow(dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use telco_sctp::{Event, Notification, Received, SctpBuilder, SctpError, SctpListener, SctpStream};

/// How long a receive in a test waits before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Panics unless the test runs where SCTP is available: the vm tier guest.
pub fn require_sctp() {
    let support = telco_sctp::probe();
    assert!(
        support.is_available(),
        "SCTP is not available here ({support:?}): vm tier tests run in the guest of `cargo xtask test`"
    );
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Returns the port a listener was bound to.
pub fn bound_port(listener: &SctpListener) -> u16 {
    listener.bound_addrs().unwrap()[0].port()
}

/// Connects a client and accepts the server side of the same association, over loopback.
pub fn loopback_pair(builder: &SctpBuilder, ip: &str) -> (SctpStream, SctpStream) {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    let listener = builder.listen(&[SocketAddr::new(ip, 0)]).unwrap();
    let port = bound_port(&listener);
    let server_addr = SocketAddr::new(ip, port);
    let client = builder.connect(&[server_addr], &[]).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();
    (client, server)
}

/// Receives until a user message arrives, collecting the notifications on the way.
pub fn recv_message(
    recv: impl Fn() -> Result<Received, SctpError>,
    seen: &mut Vec<Notification>,
) -> telco_sctp::Message {
    loop {
        match recv().unwrap() {
            Received::Message(message) => return message,
            Received::Notification(notification) => seen.push(notification),
            Received::Eof => panic!("association closed while a message was expected"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Receives until a notification arrives; fails on a user message.
pub fn recv_notification(recv: impl Fn() -> Result<Received, SctpError>) -> Notification {
    match recv().unwrap() {
        Received::Notification(notification) => notification,
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// Returns a builder subscribed to every event the tests check.
pub fn builder_with_events() -> SctpBuilder {
    SctpBuilder::new()
        .subscribe(Event::AssocChange)
        .subscribe(Event::PeerAddrChange)
        .subscribe(Event::Shutdown)
        .subscribe(Event::SendFailedEvent)
}

/// Runs `command` and panics with its output if it fails.
pub fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to run {program} {args:?}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A network namespace the test created, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("telco-test-{}-{tag}{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    /// Runs `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full);
    }

    /// Runs `f` on a thread that entered the namespace; sockets it creates stay in it.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path).unwrap();
                    // SAFETY: setns on a valid namespace descriptor changes only this thread's
                    // network namespace, and the thread ends after `f`.
                    let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
