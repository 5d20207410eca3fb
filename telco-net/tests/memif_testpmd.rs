//! memif against DPDK: `dpdk-testpmd --no-huge` with a `net_memif` port in either role,
//! echoing our frames in `macswap` forward mode, and testpmd as the client workload of a memif
//! attachment whose kind serves it.

#![allow(clippy::cast_possible_truncation)]

mod host_tier {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use std::sync::atomic::AtomicU64;

    use telco_net::attach::{Attacher, AttachmentSpec};
    use telco_net::cni::{Device, MemifRole};
    use telco_net::memif::{Memif, MemifConfig, MemifKind, Role, SocketPath, swap_macs};
    use telco_net::netns::Netns;

    /// testpmd processes use 1 GiB each and both CPUs: run one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());
    static INSTANCE: AtomicU32 = AtomicU32::new(0);
    const TIMEOUT: Duration = Duration::from_secs(30);

    /// A `dpdk-testpmd` child in interactive mode, killed when dropped.
    struct Testpmd {
        child: Child,
        stdin: ChildStdin,
        output: Arc<Mutex<String>>,
    }

    impl Testpmd {
        /// Starts testpmd with one memif port in `role` on `socket`, forwarding in macswap mode
        /// back out of the same port, and starts forwarding.
        fn start(role: &str, socket: &Path) -> Self {
            Self::start_in(None, role, socket, "macswap")
        }

        /// Like [`Testpmd::start`], inside the named network namespace `netns` when given, and
        /// with forward mode `mode`.
        fn start_in(netns: Option<&str>, role: &str, socket: &Path, mode: &str) -> Self {
            let prefix = format!(
                "telco-test-{}-{}",
                std::process::id(),
                INSTANCE.fetch_add(1, Ordering::Relaxed)
            );
            let vdev = format!(
                "net_memif0,role={role},socket={},socket-abstract=no",
                socket.display()
            );
            // stdbuf makes testpmd's stdio unbuffered, so statistics reach the pipe at once.
            let mut command = match netns {
                Some(netns) => {
                    let mut command = Command::new("ip");
                    command.args(["netns", "exec", netns, "stdbuf"]);
                    command
                }
                None => Command::new("stdbuf"),
            };
            let mut child = command
                .args(["-o0", "dpdk-testpmd"])
                .args([
                    "--no-huge",
                    "-m",
                    "1024",
                    "--no-pci",
                    "-l",
                    "0-1",
                    "--file-prefix",
                    &prefix,
                    "--vdev",
                    &vdev,
                ])
                .args([
                    "--",
                    "-i",
                    "--port-topology=loop",
                    &format!("--forward-mode={mode}"),
                    "--total-num-mbufs=16384",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("dpdk-testpmd must be installed (Debian package dpdk)");
            let stdin = child.stdin.take().unwrap();
            let output = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&output);
            let stdout = child.stdout.take().unwrap();
            thread::spawn(move || {
                // The prompt has no newline, so read raw chunks rather than lines.
                let mut stdout = stdout;
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut chunk) {
                    let text = String::from_utf8_lossy(&chunk[..n]).into_owned();
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&text);
                }
            });
            let mut testpmd = Self {
                child,
                stdin,
                output,
            };
            testpmd.wait_for("testpmd>");
            testpmd.command("start");
            testpmd.wait_for("testpmd>");
            testpmd
        }

        fn command(&mut self, command: &str) {
            writeln!(self.stdin, "{command}").expect("testpmd stdin");
            self.stdin.flush().unwrap();
        }

        /// Waits until testpmd has printed `text` since the last wait.
        fn wait_for(&mut self, text: &str) -> String {
            let deadline = Instant::now() + TIMEOUT;
            loop {
                {
                    let mut output = self.output.lock().unwrap();
                    if let Some(at) = output.find(text) {
                        let seen = output[..at + text.len()].to_string();
                        output.drain(..at + text.len());
                        return seen;
                    }
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "testpmd exited with {status}: {}",
                        self.output.lock().unwrap()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "testpmd did not print {text:?}: {}",
                    self.output.lock().unwrap()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }

        /// Stops forwarding and returns the RX-packets count of port 0 that testpmd prints.
        fn stop_and_count_rx(&mut self) -> u64 {
            self.command("stop");
            let _ = self.wait_for("Forward statistics for port 0");
            let line = self.wait_for("RX-dropped");
            line.split("RX-packets:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .expect("RX-packets in testpmd output")
        }

        fn kill(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for Testpmd {
        fn drop(&mut self) {
            self.kill();
        }
    }

    fn socket_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("memif.sock")
    }

    /// An Ethernet frame with locally administered MACs, a local experimental ethertype and a
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

    /// What macswap sends back: the frame with source and destination MAC exchanged.
    fn swapped(frame: &[u8]) -> Vec<u8> {
        let mut out = frame.to_vec();
        out[..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&frame[..6]);
        out
    }

    /// Sends `count` frames and checks that each comes back once, in order, MAC-swapped and
    /// otherwise intact; keeps at most 256 frames in flight so testpmd never has to drop.
    fn echo(memif: &mut Memif, count: u32, len: usize) {
        let mut next_send = 0u32;
        let mut next_recv = 0u32;
        let deadline = Instant::now() + TIMEOUT;
        while next_recv < count {
            assert!(
                Instant::now() < deadline,
                "{next_recv} of {count} echoes after {TIMEOUT:?}"
            );
            if next_send < count && next_send - next_recv < 256 {
                let frames: Vec<Vec<u8>> = (next_send..count.min(next_send + 32))
                    .map(|seq| frame(seq, len))
                    .collect();
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                next_send += u32::try_from(memif.tx_burst(0, &refs).unwrap()).unwrap();
            }
            memif
                .rx_burst(0, 64, |bytes| {
                    assert_eq!(
                        bytes,
                        swapped(&frame(next_recv, len)).as_slice(),
                        "echo {next_recv} differs"
                    );
                    next_recv += 1;
                })
                .unwrap();
        }
        assert_eq!(memif.stats().errors, 0);
    }

    fn connect_client_with_retry(memif: &mut Memif) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match memif.connect(Duration::from_secs(5)) {
                Ok(()) => return,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot connect to testpmd: {error}"
                    );
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn client_exchanges_frames_with_testpmd_server() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(&dir);
        let mut testpmd = Testpmd::start("server", &socket);
        let mut memif =
            Memif::new(MemifConfig::new(Role::Client, SocketPath::Path(socket))).unwrap();
        connect_client_with_retry(&mut memif);
        echo(&mut memif, 20_000, 64);
        echo(&mut memif, 2_000, 1500);
        assert_eq!(testpmd.stop_and_count_rx(), 22_000);
        assert_eq!(memif.stats().rx_packets, 22_000);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn server_exchanges_frames_with_testpmd_client() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(&dir);
        let mut memif = Memif::new(MemifConfig::new(
            Role::Server,
            SocketPath::Path(socket.clone()),
        ))
        .unwrap();
        let mut testpmd = Testpmd::start("client", &socket);
        memif.connect(TIMEOUT).unwrap();
        echo(&mut memif, 20_000, 64);
        echo(&mut memif, 2_000, 1500);
        assert_eq!(testpmd.stop_and_count_rx(), 22_000);
        assert_eq!(memif.stats().tx_packets, 22_000);
    }

    fn wait_for_disconnect(memif: &mut Memif) {
        let deadline = Instant::now() + TIMEOUT;
        while memif.poll_control() {
            assert!(Instant::now() < deadline, "the killed peer was not noticed");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn client_reconnects_after_testpmd_server_restarts() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(&dir);
        let mut memif = Memif::new(MemifConfig::new(
            Role::Client,
            SocketPath::Path(socket.clone()),
        ))
        .unwrap();
        for round in 0..2 {
            // A killed DPDK server leaves its socket file behind and cannot bind over it.
            let _ = std::fs::remove_file(&socket);
            let mut testpmd = Testpmd::start("server", &socket);
            connect_client_with_retry(&mut memif);
            echo(&mut memif, 5_000, 64);
            testpmd.kill();
            wait_for_disconnect(&mut memif);
            assert!(!memif.is_connected(), "round {round}");
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn server_accepts_testpmd_client_again_after_it_restarts() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(&dir);
        let mut memif = Memif::new(MemifConfig::new(
            Role::Server,
            SocketPath::Path(socket.clone()),
        ))
        .unwrap();
        for _ in 0..2 {
            let mut testpmd = Testpmd::start("client", &socket);
            memif.connect(TIMEOUT).unwrap();
            echo(&mut memif, 5_000, 64);
            testpmd.kill();
            wait_for_disconnect(&mut memif);
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn testpmd_client_in_pod_is_served_by_memif_kind() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root (CAP_SYS_ADMIN to create namespaces)"
        );
        let netns_name = format!("telco-test-{}-memif-testpmd", std::process::id());
        let pod = Netns::create(&netns_name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&seen);
        let kind = MemifKind::new(dir.path(), dir.path(), MemifRole::Slave).handler(
            move |frame: &mut Vec<u8>| {
                counter.fetch_add(1, Ordering::Relaxed);
                swap_macs(frame);
                true
            },
        );
        let specs = vec![AttachmentSpec::new(
            "default/fast",
            "memif0".parse().unwrap(),
            kind,
        )];
        let attacher = Attacher::new(&pod, "testpmd-sandbox").unwrap();
        let statuses = attacher.attach(&specs).unwrap();
        let info = statuses[0].device_info.as_ref().unwrap();
        let Device::Memif(memif) = &info.device else {
            panic!("expected memif device-info, got {:?}", info.device)
        };
        let socket = memif.path.clone();

        // flowgen sends UDP frames as fast as it can and counts (then frees) what it receives.
        let mut testpmd = Testpmd::start_in(Some(&netns_name), "client", &socket, "flowgen");
        let deadline = Instant::now() + TIMEOUT;
        while seen.load(Ordering::Relaxed) < 20_000 {
            assert!(
                Instant::now() < deadline,
                "the kind saw {seen:?} frames from testpmd"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let echoes = testpmd.stop_and_count_rx();
        let frames = seen.load(Ordering::Relaxed);
        eprintln!("the kind echoed {frames} frames; testpmd received {echoes}");
        assert!(echoes > 0, "testpmd received no echo of {frames} frames");
        assert!(
            echoes <= frames,
            "testpmd received {echoes} echoes of {frames} frames"
        );
        testpmd.kill();

        attacher.detach(&specs).unwrap();
        assert!(!socket.exists(), "detach left {}", socket.display());
        attacher.detach(&specs).unwrap();
    }
}
