//! `bench-multinet`: the cost of `telco-multinet` over calling its delegates directly.
//!
//! Both sides attach and detach the same three networks (bridge with host-local, macvlan with
//! static IPAM, ptp with host-local; Debian's plugins in `/usr/lib/cni`) to a namespace, in
//! rounds that alternate between the two sides so drift on a shared machine hits both. Ours is
//! one exec of `telco-multinet` for ADD and one for DEL; the peer execs the three plugins itself,
//! as a runtime would without a meta plugin. Prints one JSON object per row (median of the
//! rounds). Needs root; everything it creates lives in namespaces and a temporary directory it
//! removes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};
use telco_net::netns::Netns;

const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Measures telco-multinet with three delegates against the three plugins called directly.
#[derive(Debug, Parser)]
struct Options {
    /// Rounds per side; each round is one ADD and one DEL.
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// The telco-multinet binary; by default the one next to this program.
    #[arg(long)]
    plugin: Option<PathBuf>,
}

/// Wall-clock time and CPU time (user plus system, of the plugin processes and everything they
/// ran) of one or more plugin runs.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            wall: self.wall + other.wall,
            cpu: self.cpu + other.cpu,
        }
    }
}

/// CPU time of the calling thread plus all waited-for descendants of this process so far.
///
/// The thread's own time counts because the kernel charges the cost of reaping a child to the
/// process that waits for it: the peer's plugins are reaped here, ours inside telco-multinet.
fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_CHILDREN) + rusage(libc::RUSAGE_THREAD)
}

fn rusage(who: libc::c_int) -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage struct into the pointer, which points at a zeroed
    // MaybeUninit of exactly that type.
    let status = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    assert_eq!(
        status, 0,
        "getrusage({who}) cannot fail with a valid pointer"
    );
    // SAFETY: getrusage succeeded, so it initialised the struct.
    let usage = unsafe { usage.assume_init() };
    let micros = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// The namespaces and directories of one run.
struct Bench {
    host: Netns,
    pod: Netns,
    dir: PathBuf,
    plugin: PathBuf,
}

impl Bench {
    fn new(plugin: PathBuf) -> Result<Bench> {
        ensure!(
            nix::unistd::geteuid().is_root(),
            "bench-multinet needs root to create namespaces"
        );
        ensure!(
            plugin.exists(),
            "{} not found: build telco-multinet or pass --plugin",
            plugin.display()
        );
        let pid = std::process::id();
        let host =
            Netns::create(&format!("telco-bench-mn-{pid}-h")).context("create host namespace")?;
        let pod =
            Netns::create(&format!("telco-bench-mn-{pid}-p")).context("create pod namespace")?;
        let dir = std::env::temp_dir().join(format!("telco-bench-multinet-{pid}"));
        std::fs::create_dir_all(&dir)?;
        let bench = Bench {
            host,
            pod,
            dir,
            plugin,
        };
        bench.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up0p"])?;
        bench.ip(&["link", "set", "up0", "up"])?;
        Ok(bench)
    }

    fn ip(&self, args: &[&str]) -> Result<()> {
        let status = Command::new("ip")
            .args(["-n", self.host.name().unwrap_or_default()])
            .args(args)
            .status()?;
        ensure!(status.success(), "ip {args:?} failed");
        Ok(())
    }

    /// The three delegate conflists, each with a single plugin.
    fn delegates(&self) -> Vec<Value> {
        let ipam = self.dir.join("ipam");
        vec![
            json!({"cniVersion": "1.0.0", "name": "bench-mgmt", "plugins": [
                {"type": "bridge", "bridge": "benchbr0", "isGateway": true,
                 "ipam": {"type": "host-local", "dataDir": ipam, "ranges": [[{"subnet": "10.97.0.0/24"}]]}}]}),
            json!({"cniVersion": "1.0.0", "name": "bench-data", "plugins": [
                {"type": "macvlan", "master": "up0",
                 "ipam": {"type": "static", "addresses": [{"address": "10.98.0.5/24"}]}}]}),
            json!({"cniVersion": "1.0.0", "name": "bench-ctl", "plugins": [
                {"type": "ptp", "ipam": {"type": "host-local", "dataDir": ipam, "ranges": [[{"subnet": "10.99.0.0/24"}]]}}]}),
        ]
    }

    fn multinet_config(&self) -> Vec<u8> {
        json!({"cniVersion": "1.0.0", "name": "bench-multi", "type": "telco-multinet",
               "stateDir": self.dir.join("state"), "delegates": self.delegates()})
        .to_string()
        .into_bytes()
    }

    /// One ADD and one DEL through telco-multinet.
    fn ours(&self, container_id: &str) -> Result<(Cost, Cost)> {
        let config = self.multinet_config();
        let (add, _) = self.timed(&self.plugin, "ADD", container_id, "eth0", &config)?;
        let (del, _) = self.timed(&self.plugin, "DEL", container_id, "eth0", &config)?;
        Ok((add, del))
    }

    /// The same attachments with each plugin exec'd directly: ADD in order, DEL in reverse.
    fn peer(&self, container_id: &str) -> Result<(Cost, Cost)> {
        let plugins: Vec<(PathBuf, String, Vec<u8>)> = self
            .delegates()
            .iter()
            .enumerate()
            .map(|(index, list)| {
                let mut plugin = list["plugins"][0].clone();
                plugin["name"] = list["name"].clone();
                plugin["cniVersion"] = list["cniVersion"].clone();
                let binary =
                    Path::new(PLUGIN_DIR).join(plugin["type"].as_str().unwrap_or_default());
                let ifname = if index == 0 {
                    "eth0".to_owned()
                } else {
                    format!("net{index}")
                };
                (binary, ifname, plugin.to_string().into_bytes())
            })
            .collect();
        let mut add = Cost::default();
        let mut results = Vec::with_capacity(plugins.len());
        for (binary, ifname, config) in &plugins {
            let (elapsed, stdout) = self.timed(binary, "ADD", container_id, ifname, config)?;
            add = add + elapsed;
            results.push(serde_json::from_slice::<Value>(&stdout)?);
        }
        // DEL gets the ADD result as prevResult, as the spec requires of a runtime.
        let mut del = Cost::default();
        for ((binary, ifname, config), result) in plugins.iter().zip(results).rev() {
            let mut config: Value = serde_json::from_slice(config)?;
            config["prevResult"] = result;
            let config = config.to_string().into_bytes();
            del = del + self.timed(binary, "DEL", container_id, ifname, &config)?.0;
        }
        Ok((add, del))
    }

    /// Runs one plugin verb from the host namespace and returns its cost and stdout.
    fn timed(
        &self,
        binary: &Path,
        verb: &str,
        container_id: &str,
        ifname: &str,
        config: &[u8],
    ) -> Result<(Cost, Vec<u8>)> {
        let netns = self.pod.path();
        self.host
            .run(|| -> Result<(Cost, Vec<u8>)> {
                let cpu_before = cpu_time();
                let start = Instant::now();
                let mut child = Command::new(binary)
                    .env_clear()
                    .env("CNI_COMMAND", verb)
                    .env("CNI_CONTAINERID", container_id)
                    .env("CNI_NETNS", &netns)
                    .env("CNI_IFNAME", ifname)
                    .env("CNI_PATH", PLUGIN_DIR)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("start {}", binary.display()))?;
                child.stdin.take().context("stdin")?.write_all(config)?;
                let output = child.wait_with_output()?;
                let elapsed = Cost {
                    wall: start.elapsed(),
                    cpu: cpu_time().saturating_sub(cpu_before),
                };
                if !output.status.success() {
                    bail!(
                        "{} {verb} failed: {}",
                        binary.display(),
                        String::from_utf8_lossy(&output.stdout)
                    );
                }
                Ok((elapsed, output.stdout))
            })
            .context("enter host namespace")?
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn print_row(row: &str, ours: f64, peer: f64) {
    let line = json!({"row": row, "unit": "ms", "ours": (ours * 1000.0).round() / 1000.0,
                      "peer_name": "bridge, macvlan and ptp plugins exec'd directly", "peer": (peer * 1000.0).round() / 1000.0,
                      "better": "lower", "goal": "under 10% overhead over calling the three plugins directly"});
    println!("{line}");
}

/// The samples of one side: ADD, DEL and the whole cycle of each round.
#[derive(Default)]
struct Samples {
    add: Vec<Cost>,
    del: Vec<Cost>,
    cycle: Vec<Cost>,
}

impl Samples {
    fn push(&mut self, (add, del): (Cost, Cost)) {
        self.add.push(add);
        self.del.push(del);
        self.cycle.push(add + del);
    }
}

/// One output row: its name, our samples, the peer's samples, and the measure to report.
type Row<'a> = (&'a str, &'a [Cost], &'a [Cost], fn(&Cost) -> Duration);

fn median_ms(samples: &[Cost], pick: fn(&Cost) -> Duration) -> f64 {
    let mut values: Vec<Duration> = samples.iter().map(pick).collect();
    values.sort();
    values[values.len() / 2].as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let options = Options::parse();
    let plugin = match options.plugin {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("telco-multinet"),
    };
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let bench = Bench::new(plugin)?;
    // One warm-up round per side creates the bridge and fills the page cache.
    bench.ours("warmup-a")?;
    bench.peer("warmup-b")?;

    let (mut ours, mut peer) = (Samples::default(), Samples::default());
    for round in 0..options.rounds {
        ours.push(bench.ours(&format!("ours{round}"))?);
        peer.push(bench.peer(&format!("peer{round}"))?);
    }
    let wall = |cost: &Cost| cost.wall;
    let cpu = |cost: &Cost| cost.cpu;
    let rows: [Row<'_>; 4] = [
        (
            "telco-multinet ADD+DEL, 3 delegates, wall time",
            &ours.cycle,
            &peer.cycle,
            wall,
        ),
        (
            "telco-multinet ADD, 3 delegates, wall time",
            &ours.add,
            &peer.add,
            wall,
        ),
        (
            "telco-multinet DEL, 3 delegates, wall time",
            &ours.del,
            &peer.del,
            wall,
        ),
        (
            "telco-multinet ADD+DEL, 3 delegates, CPU time",
            &ours.cycle,
            &peer.cycle,
            cpu,
        ),
    ];
    for (row, ours, peer, pick) in rows {
        print_row(row, median_ms(ours, pick), median_ms(peer, pick));
    }
    Ok(())
}
