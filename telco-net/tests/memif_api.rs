//! memif between our own client and server in one process: frames both ways, chaining,
//! abstract sockets, handshake rejections and reconnect.

#![allow(clippy::cast_possible_truncation)]

use std::thread;
use std::time::{Duration, Instant};

use telco_net::memif::{Memif, MemifConfig, MemifError, Role, SocketPath};

const TIMEOUT: Duration = Duration::from_secs(5);

fn pair_config(socket: &SocketPath) -> (MemifConfig, MemifConfig) {
    let mut server = MemifConfig::new(Role::Server, socket.clone());
    server.name = "server".into();
    let mut client = MemifConfig::new(Role::Client, socket.clone());
    client.name = "client".into();
    (server, client)
}

/// Connects a server and a client on `socket`; the server accepts in a thread.
fn connect_pair(server: MemifConfig, client: MemifConfig) -> (Memif, Memif) {
    let mut server = Memif::new(server).unwrap();
    let accept = thread::spawn(move || {
        server.connect(TIMEOUT).unwrap();
        server
    });
    let mut client = Memif::new(client).unwrap();
    client.connect(TIMEOUT).unwrap();
    (accept.join().unwrap(), client)
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

/// Sends `frames` from `tx` to `rx` and returns what arrived, in order.
fn transfer(tx: &mut Memif, rx: &mut Memif, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    let mut sent = 0;
    let deadline = Instant::now() + TIMEOUT;
    while received.len() < frames.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} frames arrived",
            received.len(),
            frames.len()
        );
        let burst: Vec<&[u8]> = frames[sent..].iter().take(32).map(Vec::as_slice).collect();
        sent += tx.tx_burst(0, &burst).unwrap();
        rx.rx_burst(0, 64, |bytes| received.push(bytes.to_vec()))
            .unwrap();
    }
    received
}

#[test]
fn frames_cross_both_ways_intact() {
    let dir = tempfile::tempdir().unwrap();
    let socket = SocketPath::Path(dir.path().join("memif.sock"));
    let (mut server, mut client) = connect_pair(pair_config(&socket).0, pair_config(&socket).1);
    assert_eq!(client.peer_name(), Some("server"));
    assert_eq!(server.peer_name(), Some("client"));

    let frames: Vec<Vec<u8>> = (0..5000)
        .map(|i| frame(i, 60 + (i as usize * 7) % 1400))
        .collect();
    assert_eq!(transfer(&mut client, &mut server, &frames), frames);
    assert_eq!(transfer(&mut server, &mut client, &frames), frames);
    assert_eq!(client.stats().tx_packets, 5000);
    assert_eq!(server.stats().rx_packets, 5000);
    assert_eq!(client.stats().errors + server.stats().errors, 0);
}

#[test]
fn jumbo_frames_are_chained_across_buffers() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-jumbo", std::process::id()));
    let (mut server_config, mut client_config) = pair_config(&socket);
    client_config.buffer_size = 1024;
    client_config.log2_ring_size = 4;
    server_config.buffer_size = 1024;
    let (mut server, mut client) = connect_pair(server_config, client_config);
    let frames: Vec<Vec<u8>> = (0..200)
        .map(|i| frame(i, 1500 + (i as usize * 97) % 7000))
        .collect();
    assert_eq!(transfer(&mut client, &mut server, &frames), frames);
    assert_eq!(transfer(&mut server, &mut client, &frames), frames);
}

#[test]
fn oversized_and_empty_frames_are_dropped_and_counted() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-drop", std::process::id()));
    let (mut server, mut client) = connect_pair(pair_config(&socket).0, pair_config(&socket).1);
    let big = vec![0u8; 10_000];
    let ok = frame(1, 64);
    assert_eq!(client.tx_burst(0, &[&big, &[], &ok]).unwrap(), 3);
    assert_eq!(client.stats().errors, 2);
    let mut got = Vec::new();
    server
        .rx_burst(0, 8, |bytes| got.push(bytes.to_vec()))
        .unwrap();
    assert_eq!(got, vec![ok]);
}

#[test]
fn wrong_secret_is_refused_by_the_server() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-secret", std::process::id()));
    let (mut server_config, mut client_config) = pair_config(&socket);
    server_config.secret = Some("right".into());
    client_config.secret = Some("wrong".into());
    let mut server = Memif::new(server_config).unwrap();
    let accept = thread::spawn(move || server.connect(TIMEOUT));
    let mut client = Memif::new(client_config).unwrap();
    let error = client.connect(TIMEOUT).unwrap_err();
    assert!(
        matches!(&error, MemifError::PeerDisconnected { reason, .. } if reason == "incorrect secret"),
        "{error}"
    );
    let error = accept.join().unwrap().unwrap_err();
    assert!(matches!(error, MemifError::Protocol(_)), "{error}");
}

#[test]
fn wrong_interface_id_is_refused_by_the_server() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-id", std::process::id()));
    let (server_config, mut client_config) = pair_config(&socket);
    client_config.id = 3;
    let mut server = Memif::new(server_config).unwrap();
    let accept = thread::spawn(move || server.connect(TIMEOUT));
    let mut client = Memif::new(client_config).unwrap();
    let error = client.connect(TIMEOUT).unwrap_err();
    assert!(
        matches!(&error, MemifError::PeerDisconnected { reason, .. } if reason == "unmatched interface id"),
        "{error}"
    );
    assert!(accept.join().unwrap().is_err());
}

#[test]
fn client_without_server_reports_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = MemifConfig::new(
        Role::Client,
        SocketPath::Path(dir.path().join("absent.sock")),
    );
    let error = Memif::new(config).unwrap().connect(TIMEOUT).unwrap_err();
    assert!(matches!(error, MemifError::NoServer { .. }), "{error}");
}

#[test]
fn server_notices_client_leaving_and_accepts_it_again() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-again", std::process::id()));
    let (server_config, client_config) = pair_config(&socket);
    let (mut server, client) = connect_pair(server_config, client_config.clone());
    assert!(server.poll_control());
    drop(client);
    let deadline = Instant::now() + TIMEOUT;
    while server.poll_control() {
        assert!(
            Instant::now() < deadline,
            "server did not notice the client leaving"
        );
        thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        server.tx_burst(0, &[&[0u8; 64]]),
        Err(MemifError::NotConnected)
    ));

    let accept = thread::spawn(move || {
        server.connect(TIMEOUT).unwrap();
        server
    });
    let mut client = Memif::new(client_config).unwrap();
    client.connect(TIMEOUT).unwrap();
    let mut server = accept.join().unwrap();
    let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(i, 64)).collect();
    assert_eq!(transfer(&mut client, &mut server, &frames), frames);
}

#[test]
fn interrupt_mode_signals_the_receiver() {
    let socket = SocketPath::Abstract(format!("telco-memif-test-{}-irq", std::process::id()));
    let (mut server, mut client) = connect_pair(pair_config(&socket).0, pair_config(&socket).1);
    assert!(
        !server
            .wait_rx_interrupt(0, Duration::from_millis(10))
            .unwrap(),
        "masked by default"
    );
    server.set_rx_interrupt(0, true).unwrap();
    let waiter = thread::spawn(move || {
        let fired = server.wait_rx_interrupt(0, TIMEOUT).unwrap();
        let mut count = 0;
        server.rx_burst(0, 8, |_| count += 1).unwrap();
        (fired, count)
    });
    thread::sleep(Duration::from_millis(20));
    assert_eq!(client.tx_burst(0, &[&frame(0, 64)]).unwrap(), 1);
    assert_eq!(waiter.join().unwrap(), (true, 1));
}

#[test]
fn invalid_configs_are_rejected() {
    let socket = SocketPath::Abstract("unused".into());
    let mut config = MemifConfig::new(Role::Client, socket);
    config.log2_ring_size = 15;
    assert!(matches!(
        Memif::new(config.clone()),
        Err(MemifError::InvalidConfig { .. })
    ));
    config.log2_ring_size = 10;
    config.secret = Some("x".repeat(25));
    assert!(matches!(
        Memif::new(config.clone()),
        Err(MemifError::InvalidConfig { .. })
    ));
    config.secret = None;
    config.buffer_size = 100;
    assert!(matches!(
        Memif::new(config),
        Err(MemifError::InvalidConfig { .. })
    ));
}
