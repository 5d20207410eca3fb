//! Benchmark: giving a VF to a pod and taking it back with `telco-net::sriov` against the same
//! steps done by iproute2's `ip`, side by side in one run.
//!
//! Attach: set the VF's MAC, VLAN 100 with QoS 2, spoof check off and trust on through the PF,
//! move the VF netdev into the pod namespace as `net1`, set its MAC and bring it up. Detach:
//! take it down, rename it back, move it to the host namespace and reset the PF-side settings.
//! Ours also reads sysfs and the PF's VF info to save and restore the state, and takes the
//! VF's lock and allocation marker; the `ip` side runs six commands per attach and five per
//! detach. Each side alternates for several rounds and reports the median in milliseconds.
//!
//! Needs an SR-IOV PF with the igb driver (QEMU's emulated igb NIC in the vm tier guest) and
//! root: it runs through `cargo xtask bench`. Prints one JSON object per line.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use telco_core::HostRoot;
use telco_net::netns::{Netlink, Netns};
use telco_net::sriov::{
    AllocationStore, PhysicalFunction, VfConfig, VfRequest, VirtualFunction, attach_vf, detach_vf,
};

const ROUNDS: usize = 10;
const MAC: &str = "02:00:00:00:50:01";

fn main() -> anyhow::Result<()> {
    let sysfs = HostRoot::system();
    let (pf, vf) = igb_vf(&sysfs)?;
    let pf_netdev = pf.netdev.clone().context("the igb PF has no netdev")?;
    let vf_netdev = vf.netdev.clone().context("the VF has no netdev")?;
    let pod_name = format!("telco-bench-sriov-{}", std::process::id());
    let pod = Netns::create(&pod_name)?;
    let host = Netlink::current()?;
    let state = std::env::temp_dir().join(format!("telco-bench-sriov-{}", std::process::id()));
    let store = AllocationStore::new(state.join("pci"));

    let mut config = VfConfig::default();
    config.mac = Some(MAC.parse()?);
    config.vlan = Some(100);
    config.vlan_qos = Some(2);
    config.spoof_check = Some(false);
    config.trust = Some(true);
    let mut request = VfRequest::new(vf.pci, "net1", "bench");
    request.config = config;

    let (mut ours_attach, mut ours_detach, mut peer_attach, mut peer_detach) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let attachment = attach_vf(&sysfs, &host, &store, &pod, &request)?;
        ours_attach.push(millis(start.elapsed()));
        let start = Instant::now();
        detach_vf(&sysfs, &host, &store, Some(&pod), &attachment)?;
        ours_detach.push(millis(start.elapsed()));

        let start = Instant::now();
        ip_attach(&pf_netdev, vf.index, &vf_netdev, &pod_name)?;
        peer_attach.push(millis(start.elapsed()));
        let start = Instant::now();
        ip_detach(&pf_netdev, vf.index, &vf_netdev, &pod_name)?;
        peer_detach.push(millis(start.elapsed()));
    }
    let _ = std::fs::remove_dir_all(&state);
    print_row(
        "SR-IOV VF attach (PF-side settings and netdev move into the pod)",
        median(&mut ours_attach),
        median(&mut peer_attach),
    );
    print_row(
        "SR-IOV VF detach (netdev back to the host and PF-side reset)",
        median(&mut ours_detach),
        median(&mut peer_detach),
    );
    Ok(())
}

/// Finds the igb PF and a VF with an igbvf netdev, enabling one VF when none is.
fn igb_vf(sysfs: &HostRoot) -> anyhow::Result<(PhysicalFunction, VirtualFunction)> {
    let mut pf = PhysicalFunction::list(sysfs)?
        .into_iter()
        .find(|pf| pf.driver.as_deref() == Some("igb"))
        .context("no igb SR-IOV PF: run bench-sriov in the vm tier guest (QEMU's igb NIC)")?;
    if pf.num_vfs == 0 {
        pf.set_num_vfs(sysfs, 1)?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(vf) = pf
            .virtual_functions(sysfs)?
            .into_iter()
            .find(|vf| vf.netdev.is_some())
        {
            return Ok((pf, vf));
        }
        if Instant::now() > deadline {
            bail!("no VF of {} got an igbvf netdev within 20 s", pf.pci);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("failed to run ip")?;
    ensure!(
        status.success(),
        "ip {} failed with {status}",
        args.join(" ")
    );
    Ok(())
}

fn ip_attach(pf: &str, index: u32, netdev: &str, pod: &str) -> anyhow::Result<()> {
    let vf = index.to_string();
    ip(&[
        "link", "set", pf, "vf", &vf, "mac", MAC, "vlan", "100", "qos", "2",
    ])?;
    ip(&["link", "set", pf, "vf", &vf, "spoofchk", "off"])?;
    ip(&["link", "set", pf, "vf", &vf, "trust", "on"])?;
    ip(&["link", "set", netdev, "netns", pod])?;
    ip(&["-n", pod, "link", "set", netdev, "name", "net1"])?;
    ip(&["-n", pod, "link", "set", "net1", "address", MAC, "up"])
}

fn ip_detach(pf: &str, index: u32, netdev: &str, pod: &str) -> anyhow::Result<()> {
    let vf = index.to_string();
    ip(&["-n", pod, "link", "set", "net1", "down"])?;
    ip(&["-n", pod, "link", "set", "net1", "name", netdev])?;
    ip(&["-n", pod, "link", "set", netdev, "netns", "1"])?;
    ip(&[
        "link",
        "set",
        pf,
        "vf",
        &vf,
        "mac",
        "00:00:00:00:00:00",
        "vlan",
        "0",
    ])?;
    ip(&[
        "link", "set", pf, "vf", &vf, "spoofchk", "on", "trust", "off",
    ])
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_row(row: &str, ours: f64, peer: f64) {
    let line = serde_json::json!({
        "row": row,
        "unit": "ms",
        "ours": ours,
        "peer_name": "iproute2 ip link (same steps)",
        "peer": peer,
        "better": "lower",
        "goal": "no slower than the same steps done with ip",
    });
    println!("{line}");
}
