//! memif as a multi-network attachment: the attach driver gives a pod namespace a memif network
//! whose workload is the client, the kind serves the socket, and detach stops it.

#![allow(clippy::cast_possible_truncation)]

mod host_tier {
    use std::os::unix::fs::FileTypeExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use telco_net::attach::{Attacher, AttachmentSpec};
    use telco_net::cni::{Device, MemifRole, NetworkStatus};
    use telco_net::memif::{Memif, MemifConfig, MemifKind, Role, SocketPath};
    use telco_net::netns::Netns;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const IFNAME: &str = "memif0";

    /// The fd and thread counts are per process: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A pod namespace (deleted on drop) and a socket directory.
    struct Pod {
        netns: Netns,
        container_id: String,
        sockets: tempfile::TempDir,
    }

    fn pod() -> Pod {
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root (CAP_SYS_ADMIN to create namespaces)"
        );
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("telco-test-{}-memif{n}", std::process::id());
        Pod {
            netns: Netns::create(&name).unwrap(),
            container_id: format!("{name}-sandbox"),
            sockets: tempfile::tempdir().unwrap(),
        }
    }

    fn spec(kind: MemifKind) -> Vec<AttachmentSpec> {
        vec![AttachmentSpec::new(
            "default/fast",
            IFNAME.parse().unwrap(),
            kind,
        )]
    }

    /// Returns the socket path of a memif entry's `device-info`, after checking its role.
    fn memif_socket(status: &NetworkStatus, role: MemifRole) -> PathBuf {
        let info = status
            .device_info
            .as_ref()
            .expect("memif entry has device-info");
        let Device::Memif(memif) = &info.device else {
            panic!("expected memif device-info, got {:?}", info.device)
        };
        assert_eq!(memif.role, role);
        memif.path.clone()
    }

    /// Counts the threads of this process named like the kind's server thread.
    fn server_threads() -> usize {
        let name = format!("memif-{IFNAME}");
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == name)
            })
            .count()
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    fn is_socket(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_socket())
    }

    fn connect_client(socket: &Path) -> Memif {
        let mut config = MemifConfig::new(Role::Client, SocketPath::Path(socket.to_owned()));
        config.name = "workload".into();
        let mut memif = Memif::new(config).unwrap();
        memif.connect(TIMEOUT).unwrap();
        memif
    }

    /// Builds an Ethernet frame with locally administered MACs, a local experimental ethertype and a
    /// payload that encodes `seq`.
    fn frame(seq: u32, len: usize) -> Vec<u8> {
        let mut frame = vec![0u8; len];
        frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
        frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        for (i, byte) in frame[14..].iter_mut().enumerate() {
            *byte = (seq as usize).wrapping_mul(7).wrapping_add(i) as u8;
        }
        frame[14..18].copy_from_slice(&seq.to_be_bytes());
        frame
    }

    fn swapped(frame: &[u8]) -> Vec<u8> {
        let mut out = frame.to_vec();
        out[..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&frame[..6]);
        out
    }

    /// Sends frames `0..count` of `len` bytes and returns what came back, in order, until
    /// `expected` frames arrived. Keeps at most `window` frames sent and not yet back.
    fn exchange(
        memif: &mut Memif,
        count: u32,
        len: usize,
        expected: usize,
        window: usize,
    ) -> Vec<Vec<u8>> {
        let mut sent = 0u32;
        let mut received: Vec<Vec<u8>> = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while received.len() < expected {
            assert!(
                Instant::now() < deadline,
                "{} of {expected} frames came back after {TIMEOUT:?}",
                received.len()
            );
            let in_flight = sent as usize - received.len().min(sent as usize);
            if sent < count && in_flight < window {
                let frames: Vec<Vec<u8>> = (sent..count.min(sent + 32))
                    .map(|seq| frame(seq, len))
                    .collect();
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                sent += memif.tx_burst(0, &refs).unwrap() as u32;
            }
            memif
                .rx_burst(0, 64, |bytes| received.push(bytes.to_vec()))
                .unwrap();
        }
        received
    }

    /// Checks that frames `0..count` came back in order, MAC-swapped and otherwise intact.
    fn assert_echoed(memif: &mut Memif, count: u32, len: usize) {
        let echoes = exchange(memif, count, len, count as usize, 256);
        for (seq, echo) in echoes.iter().enumerate() {
            assert_eq!(
                echo,
                &swapped(&frame(seq as u32, len)),
                "echo {seq} of {len} bytes differs"
            );
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn client_echo_then_detach_cleans_up() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Slave,
        ));
        let fds_before = open_fds();
        assert_eq!(server_threads(), 0, "a server thread runs before attach");

        let statuses = attacher.attach(&specs).unwrap();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].interface.as_deref(), Some(IFNAME));
        let socket = memif_socket(&statuses[0], MemifRole::Slave);
        assert_eq!(
            socket,
            pod.sockets
                .path()
                .join(MemifKind::socket_name(&pod.container_id, IFNAME))
        );
        assert!(
            is_socket(&socket),
            "attach made no socket at {}",
            socket.display()
        );
        assert_eq!(server_threads(), 1, "attach started no server thread");

        let mut client = connect_client(&socket);
        assert_eq!(client.peer_name(), Some("telco-host"));
        assert_echoed(&mut client, 10_000, 64);
        assert_echoed(&mut client, 1_000, 1500);
        assert_eq!(client.stats().errors, 0);

        // Detach with the client still connected: the server must stop anyway.
        attacher.detach(&specs).unwrap();
        assert!(!socket.exists(), "detach left {}", socket.display());
        assert_eq!(server_threads(), 0, "detach left the server thread running");
        let deadline = Instant::now() + TIMEOUT;
        while client.poll_control() {
            assert!(
                Instant::now() < deadline,
                "the client never saw the server go"
            );
            thread::sleep(Duration::from_millis(10));
        }
        drop(client);

        attacher.detach(&specs).unwrap();
        assert_eq!(open_fds(), fds_before, "attach and detach leaked fds");
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn dropping_kind_stops_server() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Slave,
        ));
        let statuses = attacher.attach(&specs).unwrap();
        let socket = memif_socket(&statuses[0], MemifRole::Slave);
        let mut client = connect_client(&socket);
        assert_echoed(&mut client, 100, 64);
        assert_eq!(server_threads(), 1);

        drop(specs);
        assert_eq!(
            server_threads(),
            0,
            "dropping the kind left its server thread"
        );
        assert!(
            !socket.exists(),
            "dropping the kind left {}",
            socket.display()
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn reconnecting_client_is_served_again() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Slave,
        ));
        let statuses = attacher.attach(&specs).unwrap();
        let socket = memif_socket(&statuses[0], MemifRole::Slave);

        for round in 0..3 {
            let mut client = connect_client(&socket);
            assert_echoed(&mut client, 500, 128);
            client.disconnect(&format!("round {round} done"));
        }
        attacher.detach(&specs).unwrap();
        assert!(!socket.exists());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn custom_handler_sees_every_frame() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        // Sends back the frames with an even sequence number, unchanged; drops the others.
        let kind = MemifKind::new(pod.sockets.path(), pod.sockets.path(), MemifRole::Slave)
            .handler(move |frame: &mut Vec<u8>| {
                counter.fetch_add(1, Ordering::Relaxed);
                frame[17].is_multiple_of(2)
            });
        let specs = spec(kind);
        let statuses = attacher.attach(&specs).unwrap();
        let socket = memif_socket(&statuses[0], MemifRole::Slave);

        let mut client = connect_client(&socket);
        let back = exchange(&mut client, 1000, 64, 500, usize::MAX);
        let expected: Vec<Vec<u8>> = (0..1000).step_by(2).map(|seq| frame(seq, 64)).collect();
        assert_eq!(back, expected, "the handler's choice and frames differ");
        let deadline = Instant::now() + TIMEOUT;
        while seen.load(Ordering::Relaxed) < 1000 {
            assert!(
                Instant::now() < deadline,
                "the handler saw {seen:?} of 1000"
            );
            thread::sleep(Duration::from_millis(10));
        }
        drop(client);
        attacher.detach(&specs).unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 1000);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn live_socket_is_rejected_and_kept() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let socket = pod
            .sockets
            .path()
            .join(MemifKind::socket_name(&pod.container_id, IFNAME));
        let other = Memif::new(MemifConfig::new(
            Role::Server,
            SocketPath::Path(socket.clone()),
        ))
        .unwrap();

        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Slave,
        ));
        let error = attacher.attach(&specs).unwrap_err();
        let chain = error_chain(&error);
        assert!(chain.contains("in use by a live server"), "{chain}");
        assert!(
            is_socket(&socket),
            "the rollback removed the other server's socket"
        );
        assert_eq!(server_threads(), 0);
        drop(other);
        assert!(!socket.exists());
        attacher.detach(&specs).unwrap();
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn stale_socket_is_replaced() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let socket = pod
            .sockets
            .path()
            .join(MemifKind::socket_name(&pod.container_id, IFNAME));
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(
            is_socket(&socket),
            "the stale socket stays after its listener closed"
        );

        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Slave,
        ));
        attacher.attach(&specs).unwrap();
        let mut client = connect_client(&socket);
        assert_echoed(&mut client, 100, 64);
        drop(client);
        attacher.detach(&specs).unwrap();
        assert!(!socket.exists());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn bad_socket_locations_are_rejected() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();

        let long = pod.sockets.path().join("d".repeat(120)).join("x.sock");
        let specs = spec(MemifKind::with_socket(&long, &long, MemifRole::Slave));
        let chain = error_chain(&attacher.attach(&specs).unwrap_err());
        assert!(chain.contains("longer than the 107 bytes"), "{chain}");
        assert!(
            !long.parent().unwrap().exists(),
            "a rejected path was created"
        );

        let file = pod.sockets.path().join("plain-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let specs = spec(MemifKind::new(
            file.join("sub"),
            "/run/memif",
            MemifRole::Slave,
        ));
        let chain = error_chain(&attacher.attach(&specs).unwrap_err());
        assert!(chain.contains("creating memif socket directory"), "{chain}");

        let specs = spec(
            MemifKind::new(pod.sockets.path(), pod.sockets.path(), MemifRole::Slave)
                .mode(telco_net::cni::MemifMode::Ip),
        );
        let chain = error_chain(&attacher.attach(&specs).unwrap_err());
        assert!(chain.contains("speaks Ethernet only"), "{chain}");
        assert_eq!(server_threads(), 0);
        attacher.detach(&specs).unwrap();
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn master_workload_socket_is_left_to_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let pod = pod();
        let attacher = Attacher::new(&pod.netns, &pod.container_id).unwrap();
        let specs = spec(MemifKind::new(
            pod.sockets.path(),
            pod.sockets.path(),
            MemifRole::Master,
        ));
        let statuses = attacher.attach(&specs).unwrap();
        let socket = memif_socket(&statuses[0], MemifRole::Master);
        assert!(
            !socket.exists(),
            "the kind made the master workload's socket"
        );
        assert_eq!(server_threads(), 0);

        // The workload listens, and a client of the host side connects.
        let mut workload = Memif::new(MemifConfig::new(
            Role::Server,
            SocketPath::Path(socket.clone()),
        ))
        .unwrap();
        let accept = thread::spawn(move || {
            workload.connect(TIMEOUT).unwrap();
            workload
        });
        let client = connect_client(&socket);
        let workload = accept.join().unwrap();
        assert!(workload.is_connected());
        drop(client);

        drop(workload);

        // A workload killed with SIGKILL leaves its socket file behind; detach removes it.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(is_socket(&socket));
        attacher.detach(&specs).unwrap();
        assert!(!socket.exists(), "detach left the master's socket");
        attacher.detach(&specs).unwrap();
    }

    fn error_chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
