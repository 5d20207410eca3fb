//! The `sctp-echo` program: server and client against each other over loopback (vm tier), and
//! its error on a kernel without SCTP.

use std::process::Command;

const ECHO: &str = env!("CARGO_BIN_EXE_sctp-echo");

/// The client fails with the kernel-support message when the host has no SCTP, and with a
/// connect error when nothing listens.
#[test]
fn client_reports_missing_sctp_or_refused_connect() {
    let output = Command::new(ECHO)
        .args([
            "client",
            "--connect",
            "127.0.0.1",
            "--port",
            "9",
            "--count",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    if std::path::Path::new("/proc/net/sctp").exists() {
        assert!(
            stderr.contains("failed to connect to [127.0.0.1:9]"),
            "{stderr}"
        );
    } else {
        assert!(
            stderr.contains("kernel has no SCTP support (CONFIG_IP_SCTP); load the sctp module"),
            "{stderr}"
        );
    }
}

mod vm_tier {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::ECHO;

    /// A server process, killed on drop.
    struct Server(Child);

    impl Server {
        fn start(args: &[&str]) -> Server {
            let mut full = vec!["server"];
            full.extend_from_slice(args);
            let child = Command::new(ECHO)
                .args(&full)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            // Give the server time to bind before the client connects.
            std::thread::sleep(Duration::from_millis(500));
            Server(child)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn require_sctp() {
        assert!(
            std::path::Path::new("/proc/net/sctp").exists(),
            "SCTP is not loaded: vm tier tests run in the guest of `cargo xtask test`"
        );
    }

    /// Runs the client and returns its JSON summary.
    fn client(args: &[&str]) -> serde_json::Value {
        let mut full = vec!["client"];
        full.extend_from_slice(args);
        let output = Command::new(ECHO).args(&full).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "client failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
    }

    fn assert_clean_run(summary: &serde_json::Value, count: u64) {
        assert_eq!(summary["sent"], count, "{summary}");
        assert_eq!(summary["received"], count, "{summary}");
        assert_eq!(summary["mismatches"], 0, "{summary}");
        let p50 = summary["rtt_us_p50"].as_u64().unwrap();
        let p99 = summary["rtt_us_p99"].as_u64().unwrap();
        assert!(p50 > 0, "{summary}");
        assert!(p50 <= p99, "{summary}");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn echo_one_to_one_keeps_stream_and_ppid() {
        require_sctp();
        let _server = Server::start(&["--bind", "127.0.0.1", "--port", "36412"]);
        let summary = client(&[
            "--connect",
            "127.0.0.1",
            "--port",
            "36412",
            "--stream",
            "3",
            "--ppid",
            "18",
            "--count",
            "50",
            "--size",
            "300",
        ]);
        assert_clean_run(&summary, 50);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn echo_one_to_many_multihomed() {
        require_sctp();
        let _server = Server::start(&[
            "--bind",
            "127.0.0.1,127.0.0.2",
            "--port",
            "38412",
            "--one-to-many",
        ]);
        let summary = client(&[
            "--connect",
            "127.0.0.1,127.0.0.2",
            "--port",
            "38412",
            "--bind",
            "127.0.0.3,127.0.0.4",
            "--stream",
            "1",
            "--ppid",
            "60",
            "--count",
            "20",
        ]);
        assert_clean_run(&summary, 20);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn echo_ipv6_large_messages() {
        require_sctp();
        let _server = Server::start(&["--bind", "::1", "--port", "3868"]);
        let summary = client(&[
            "--connect",
            "::1",
            "--port",
            "3868",
            "--ppid",
            "46",
            "--count",
            "5",
            "--size",
            "60000",
        ]);
        assert_clean_run(&summary, 5);
    }
}
