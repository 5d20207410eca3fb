//! Benchmark: a pod's three-network attach plus detach, in process with `telco-net` against
//! the same three networks made by exec of Debian's CNI plugins in `/usr/lib/cni`.
//!
//! Two sets of networks, one row each:
//! - with a host device: a veth on a bridge with a host-local address (`bridge` +
//!   `host-local`), a macvlan with a static address (`macvlan` + `static`), and a host device
//!   moved in with a static address (`host-device` + `static`);
//! - virtual links only: the same bridge and macvlan networks, and a veth on a second bridge
//!   with a static address in place of the host device.
//!
//! Both sides work in a stand-in host namespace and a pod namespace that the program creates
//! and removes, so the real host is untouched.
//!
//! The measured part of a round is the attach plus detach, including opening the attacher's
//! two netlink sessions on our side and every exec on the plugins' side. Creating the
//! namespaces, the bridges and the uplinks is outside it.
//!
//! NOTE: kernel waits bound both rows. Moving a device to another namespace runs
//! `rcu_barrier()` inside `__dev_change_net_namespace`, and each request that deletes links
//! runs it once in `netdev_run_todo`. Measured with `sched_switch` stacks on Linux 6.18 (HZ=250,
//! 2 vCPUs), each wait took 12 to 20 ms. The plugins make one wait per deleted link and per
//! move: four in the first set, three in the second. The attacher deletes the veth and
//! macvlan links of a pod in one request, so it makes three waits in the first set (two moves
//! and one delete) and one in the second. No code can bring the first set under 20 ms.
//!
//! Run as root: `cargo run --release -p telco-examples --bin bench-attach`. Prints one JSON
//! object per line, the format `cargo xtask bench` reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use telco_net::attach::kinds::{HostDeviceKind, MacvlanKind, VethKind};
use telco_net::attach::{Attacher, AttachmentSpec, HostLocalIpam, IpConfig, StaticAddress};
use telco_net::ipam::IpRange;
use telco_net::link::{Bridge, Veth};
use telco_net::netns::Netns;

const ROUNDS: usize = 30;
const WARMUP: usize = 3;
const PLUGIN_DIR: &str = "/usr/lib/cni";

/// One set of three networks, in both forms.
#[derive(Clone, Copy)]
struct Scenario {
    row: &'static str,
    peer_name: &'static str,
    /// The third network is a host device rather than a veth on a second bridge.
    host_device: bool,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        row: "three-network attach plus detach",
        peer_name: "Debian CNI plugins by exec (bridge+host-local, macvlan+static, host-device+static)",
        host_device: true,
    },
    Scenario {
        row: "three-network attach plus detach, virtual links only",
        peer_name: "Debian CNI plugins by exec (bridge+host-local, macvlan+static, bridge+static)",
        host_device: false,
    },
];

fn main() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "bench-attach needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to make namespaces and links"
        );
    }
    for plugin in ["bridge", "macvlan", "host-device", "host-local", "static"] {
        let path = Path::new(PLUGIN_DIR).join(plugin);
        if !path.exists() {
            bail!(
                "{} is missing: install Debian's containernetworking-plugins",
                path.display()
            );
        }
    }
    for scenario in SCENARIOS {
        let tag = std::process::id();
        let host = Netns::create(&format!("telco-bench-{tag}-host"))
            .context("create the host namespace")?;
        let pod =
            Netns::create(&format!("telco-bench-{tag}-pod")).context("create the pod namespace")?;
        let data_dir = std::env::temp_dir().join(format!("telco-bench-attach-{tag}"));
        let result = run(scenario, &host, &pod, &data_dir);
        let _ = std::fs::remove_dir_all(&data_dir);
        drop((host, pod));
        let (ours, peer) = result?;
        let row = serde_json::json!({
            "row": scenario.row,
            "unit": "ms",
            "ours": round(ours),
            "peer_name": scenario.peer_name,
            "peer": round(peer),
            "better": "lower",
            "goal": "at least 5x faster than exec of the plugins, under 20 ms",
        });
        println!("{row}");
    }
    Ok(())
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Prepares the stand-in host and measures both sides, alternating rounds so that noise on
/// the shared machine hits both alike. Returns the medians in milliseconds.
fn run(
    scenario: Scenario,
    host: &Netns,
    pod: &Netns,
    data_dir: &Path,
) -> anyhow::Result<(f64, f64)> {
    let links = host.netlink()?;
    links.links().add(Bridge::new("br-bench").up())?;
    links.links().add(Bridge::new("br-bench2").up())?;
    links
        .links()
        .add(Veth::new("uplink0", "uplink0-peer").up())?;
    links.links().add(Veth::new("hostdev0", "hostdev0-peer"))?;
    let mut ours = Vec::with_capacity(ROUNDS);
    let mut peer = Vec::with_capacity(ROUNDS);
    for round in 0..WARMUP + ROUNDS {
        let id = format!("bench{round}");
        let ours_time = ours_round(scenario, host, pod, &id, &data_dir.join("ours"))?;
        let peer_time = host.run(|| peer_round(scenario, pod, &id, &data_dir.join("peer")))??;
        if round >= WARMUP {
            ours.push(ours_time);
            peer.push(peer_time);
        }
    }
    Ok((median(&mut ours), median(&mut peer)))
}

fn median(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn specs(scenario: Scenario) -> anyhow::Result<Vec<AttachmentSpec>> {
    let ranges = vec![vec![IpRange::new("10.90.0.0/24".parse()?)]];
    let fixed = |text: &str| -> anyhow::Result<IpConfig> {
        Ok(IpConfig::Static(vec![StaticAddress::new(
            text.parse()?,
            None,
        )]))
    };
    Ok(vec![
        AttachmentSpec::new(
            "bench-mgmt",
            "eth0".parse()?,
            VethKind::new().bridge("br-bench"),
        )
        .ip(IpConfig::HostLocal(HostLocalIpam::new(
            "bench-mgmt",
            ranges,
        ))),
        AttachmentSpec::new("bench-data", "net1".parse()?, MacvlanKind::new("uplink0"))
            .ip(fixed("10.91.0.5/24")?),
        if scenario.host_device {
            AttachmentSpec::new("bench-hd", "net2".parse()?, HostDeviceKind::new("hostdev0"))
        } else {
            AttachmentSpec::new(
                "bench-br2",
                "net2".parse()?,
                VethKind::new().bridge("br-bench2"),
            )
        }
        .ip(fixed("10.92.0.5/24")?),
    ])
}

/// One in-process attach plus detach, including opening the attacher's netlink sessions.
fn ours_round(
    scenario: Scenario,
    host: &Netns,
    pod: &Netns,
    id: &str,
    data_dir: &Path,
) -> anyhow::Result<Duration> {
    let specs = specs(scenario)?;
    let start = Instant::now();
    let attacher = Attacher::with_host(pod, host, id)?.ipam_data_dir(data_dir);
    let status = attacher.attach(&specs)?;
    attacher.detach(&specs)?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        status.len() == 3,
        "attach reported {} networks",
        status.len()
    );
    Ok(elapsed)
}

/// The plugin configs and interface names of the same three networks.
fn plugin_configs(scenario: Scenario, data_dir: &Path) -> Vec<(serde_json::Value, &'static str)> {
    let third = if scenario.host_device {
        serde_json::json!({"cniVersion": "1.0.0", "name": "bench-hd", "type": "host-device", "device": "hostdev0",
            "ipam": {"type": "static", "addresses": [{"address": "10.92.0.5/24"}]}})
    } else {
        serde_json::json!({"cniVersion": "1.0.0", "name": "bench-br2", "type": "bridge", "bridge": "br-bench2",
            "ipam": {"type": "static", "addresses": [{"address": "10.92.0.5/24"}]}})
    };
    vec![
        (
            serde_json::json!({"cniVersion": "1.0.0", "name": "bench-mgmt", "type": "bridge", "bridge": "br-bench",
                "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.90.0.0/24"}]]}}),
            "eth0",
        ),
        (
            serde_json::json!({"cniVersion": "1.0.0", "name": "bench-data", "type": "macvlan", "master": "uplink0",
                "mode": "bridge", "ipam": {"type": "static", "addresses": [{"address": "10.91.0.5/24"}]}}),
            "net1",
        ),
        (third, "net2"),
    ]
}

/// One attach plus detach by exec of the plugins: ADD in order, DEL in reverse, as a runtime
/// does. Runs on a thread inside the stand-in host namespace, so the plugins start there.
fn peer_round(
    scenario: Scenario,
    pod: &Netns,
    id: &str,
    data_dir: &Path,
) -> anyhow::Result<Duration> {
    let configs = plugin_configs(scenario, data_dir);
    let netns = pod.path();
    let start = Instant::now();
    for (config, ifname) in &configs {
        exec_plugin("ADD", config, id, &netns, ifname)?;
    }
    for (config, ifname) in configs.iter().rev() {
        exec_plugin("DEL", config, id, &netns, ifname)?;
    }
    Ok(start.elapsed())
}

fn exec_plugin(
    command: &str,
    config: &serde_json::Value,
    id: &str,
    netns: &PathBuf,
    ifname: &str,
) -> anyhow::Result<()> {
    let plugin = config["type"].as_str().unwrap_or_default();
    let mut child = Command::new(Path::new(PLUGIN_DIR).join(plugin))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", PLUGIN_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("exec {plugin}"))?;
    child
        .stdin
        .take()
        .context("plugin stdin")?
        .write_all(config.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{plugin} {command} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
