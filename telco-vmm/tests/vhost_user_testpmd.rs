//! The vhost-user-net backend against DPDK's `net_virtio_user` front end in `dpdk-testpmd`.

mod host_tier {
    use std::io::{Read, Write};
    use std::path::Path;
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use telco_vmm::vhost_user::{NetPeer, VhostUserNet};

    /// A running `dpdk-testpmd -i` whose console output is collected.
    struct Testpmd {
        child: Child,
        stdin: ChildStdin,
        outputs: [Arc<Mutex<String>>; 2],
    }

    impl Testpmd {
        fn start(socket: &Path, instance: &str) -> Testpmd {
            let vdev = format!(
                "net_virtio_user0,path={},queues=1,queue_size=256",
                socket.display()
            );
            // stdbuf: testpmd's printf output is block-buffered on a pipe.
            let mut child = Command::new("stdbuf")
                .args(["-o0", "-e0", "dpdk-testpmd"])
                .args([
                    "-l",
                    "0-1",
                    "--no-pci",
                    "--no-huge",
                    "-m",
                    "256",
                    "--no-shconf",
                ])
                .arg(format!(
                    "--file-prefix=telco-vu-{}-{instance}",
                    std::process::id()
                ))
                .arg(format!("--vdev={vdev}"))
                .args([
                    "--",
                    "-i",
                    "--rxq=1",
                    "--txq=1",
                    "--nb-cores=1",
                    "--forward-mode=io",
                ])
                .args(["--total-num-mbufs=4096"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("dpdk-testpmd is needed (apt install dpdk): {e}"));
            let stdin = child.stdin.take().unwrap();
            // One buffer per stream: testpmd writes its prompt to stdout and warnings to
            // stderr, and a shared buffer could split "testpmd>" with a warning.
            let outputs = [
                Arc::new(Mutex::new(String::new())),
                Arc::new(Mutex::new(String::new())),
            ];
            for (stream, output) in [
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                Box::new(child.stderr.take().unwrap()),
            ]
            .into_iter()
            .zip(outputs.iter())
            {
                let output = Arc::clone(output);
                // Raw reads, not lines: the `testpmd> ` prompt has no newline.
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buffer = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        output
                            .lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buffer[..n]));
                    }
                });
            }
            Testpmd {
                child,
                stdin,
                outputs,
            }
        }

        fn command(&mut self, line: &str) {
            writeln!(self.stdin, "{line}").unwrap();
            self.stdin.flush().unwrap();
        }

        fn wait_for(&self, text: &str, timeout: Duration) {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if self
                    .outputs
                    .iter()
                    .any(|output| output.lock().unwrap().contains(text))
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!(
                "testpmd did not print {text:?} within {timeout:?}:\n{}",
                self.output()
            );
        }

        fn output(&self) -> String {
            self.outputs
                .iter()
                .map(|output| output.lock().unwrap().clone())
                .collect::<Vec<_>>()
                .join("\n--- stderr ---\n")
        }

        /// Sends `quit` and waits for the process to end.
        fn quit(mut self) -> String {
            self.command("quit");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait().unwrap().is_some() {
                    return self.output();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("testpmd did not quit:\n{}", self.output());
        }
    }

    impl Drop for Testpmd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Returns the `N` after `label` in the last "Accumulated forward statistics" block.
    fn accumulated(output: &str, label: &str) -> u64 {
        let block = output
            .rsplit("Accumulated forward statistics for all ports")
            .next()
            .filter(|_| output.contains("Accumulated forward statistics"))
            .unwrap_or_else(|| panic!("no forward statistics in testpmd output:\n{output}"));
        let after = block
            .split(label)
            .nth(1)
            .unwrap_or_else(|| panic!("{label} missing:\n{block}"));
        after
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{label} has no number:\n{block}"))
    }

    fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `start tx_first`, forwards for `duration`, stops; returns testpmd's (RX, TX) totals.
    fn forward_burst(testpmd: &mut Testpmd, duration: Duration) -> (u64, u64) {
        testpmd.command("start tx_first");
        std::thread::sleep(duration);
        testpmd.command("stop");
        testpmd.wait_for("Done.", Duration::from_secs(10));
        let output = testpmd.output();
        (
            accumulated(&output, "RX-packets:"),
            accumulated(&output, "TX-packets:"),
        )
    }

    /// Checks that `frame` is testpmd's generated 64-byte IPv4/UDP packet from 198.18.0.1 to
    /// 198.18.0.2.
    fn assert_txonly_packet(frame: &[u8]) {
        assert_eq!(frame.len(), 64, "frame length");
        assert_eq!(&frame[12..14], &[0x08, 0x00], "ethertype IPv4");
        assert_eq!(frame[14] >> 4, 4, "IP version");
        assert_eq!(frame[23], 17, "IP protocol UDP");
        assert_eq!(&frame[26..30], &[198, 18, 0, 1], "source address");
        assert_eq!(&frame[30..34], &[198, 18, 0, 2], "destination address");
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn testpmd_exchanges_frames_through_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("vu0.sock");
        let backend = VhostUserNet::serve(&socket, NetPeer::Loopback).unwrap();
        backend.capture_frames(16);

        let mut testpmd = Testpmd::start(&socket, "a");
        testpmd.wait_for("testpmd>", Duration::from_secs(60));
        wait_until("the front end to connect", Duration::from_secs(10), || {
            backend.is_connected()
        });
        let (testpmd_rx, testpmd_tx) = forward_burst(&mut testpmd, Duration::from_secs(1));

        // Everything testpmd transmitted reached the backend, and everything testpmd received
        // came from it.
        wait_until(
            "the backend to drain the transmit ring",
            Duration::from_secs(5),
            || backend.stats().tx_frames >= testpmd_tx,
        );
        let stats = backend.stats();
        assert!(
            testpmd_tx >= 32,
            "testpmd sent {testpmd_tx} frames:\n{}",
            testpmd.output()
        );
        assert_eq!(stats.tx_frames, testpmd_tx, "{stats:?}");
        assert!(testpmd_rx > 0, "testpmd received nothing: {stats:?}");
        assert!(
            stats.rx_frames >= testpmd_rx,
            "{stats:?}, testpmd RX {testpmd_rx}"
        );
        assert_eq!(stats.tx_bytes, 64 * stats.tx_frames);
        assert_eq!(stats.bad_chains, 0);

        let frames = backend.captured_frames();
        assert_eq!(frames.len(), 16);
        frames.iter().for_each(|frame| assert_txonly_packet(frame));
        testpmd.quit();
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn restarted_testpmd_reconnects() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("vu1.sock");
        let backend = VhostUserNet::serve(&socket, NetPeer::Sink).unwrap();

        let mut first = Testpmd::start(&socket, "b1");
        first.wait_for("testpmd>", Duration::from_secs(60));
        let (_, first_tx) = forward_burst(&mut first, Duration::from_millis(300));
        first.quit();
        wait_until("the first front end to go", Duration::from_secs(10), || {
            !backend.is_connected()
        });
        let after_first = backend.stats();
        assert_eq!(after_first.connections, 1);
        assert_eq!(after_first.tx_frames, first_tx);

        let mut second = Testpmd::start(&socket, "b2");
        second.wait_for("testpmd>", Duration::from_secs(60));
        wait_until(
            "the second front end to connect",
            Duration::from_secs(10),
            || backend.is_connected(),
        );
        let (_, second_tx) = forward_burst(&mut second, Duration::from_millis(300));
        wait_until(
            "the backend to count the second run",
            Duration::from_secs(5),
            || backend.stats().tx_frames >= first_tx + second_tx,
        );
        let stats = backend.stats();
        assert_eq!(stats.connections, 2);
        assert_eq!(stats.tx_frames, first_tx + second_tx);
        assert!(second_tx > 0);
        second.quit();
    }
}
