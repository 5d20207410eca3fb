//! The built-in spec of `vnf-pod run` without `--spec`: works on any Linux host as root.
//!
//! - `mgmt`: a veth whose host end joins a bridge that the placement creates;
//! - `ctrl`: a macvlan on a parent link that the placement creates: a dummy link where the
//!   kernel has them, else one end of a veth pair (build machines without the dummy driver);
//! - `data`: a memif interface whose workload is the client (role `slave`), served by
//!   telco-net's memif kind with its echo responder, which sends every frame back with the MAC
//!   addresses swapped.
//!
//! The command prints the pod's addresses and CPUs, then runs the `memif-pkt` example (from
//! the directory of the `vnf-pod` executable) as the memif client. `memif-pkt` reads the socket
//! from the network-status list, sends [`MEMIF_FRAMES`] frames and prints one JSON line whose
//! `echoed` counts the frames that came back intact. Without `memif-pkt` next to `vnf-pod`, the command
//! prints a line saying so and skips the exchange.
//!
//! The host links' names carry a hash of the pod name, so pods with different names never
//! share them, and no host address or route is touched.

use std::path::PathBuf;

use super::spec::{PodSpec, SpecError};

/// Frames the built-in command sends over the memif interface.
pub const MEMIF_FRAMES: u64 = 1000;

/// The shell script of the built-in command; `$1` is the path of `memif-pkt`.
const BUILTIN_SCRIPT: &str = r#"ip address show
grep Cpus_allowed_list /proc/self/status
if [ -x "$1" ]; then
    echo "memif: sending $2 frames to the echo responder of network data"
    exec "$1" --network data --mode tx --count "$2" --timeout 10
else
    echo "memif: $1 not found next to vnf-pod; skipping the memif packet exchange"
fi"#;

/// Returns the path of `memif-pkt` in the directory of the running executable.
pub fn memif_pkt_path() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    dir.join("memif-pkt")
}

/// The host links the built-in spec needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinLinks {
    /// The bridge of the `mgmt` veth.
    pub bridge: String,
    /// The parent of the `ctrl` macvlan.
    pub parent: String,
    /// The other end of the parent when it has to be a veth pair.
    pub parent_peer: String,
}

impl BuiltinLinks {
    /// Names for pod `pod`: a 7-character prefix and 8 hex digits of a hash of the name.
    pub fn for_pod(pod: &str) -> BuiltinLinks {
        let hash = fnv1a(pod);
        BuiltinLinks {
            bridge: format!("vpodbr-{hash:08x}"),
            parent: format!("vpodpa-{hash:08x}"),
            parent_peer: format!("vpodpb-{hash:08x}"),
        }
    }
}

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Builds the built-in spec for pod `name` and names the host links it needs.
pub fn builtin_spec(name: &str) -> Result<(PodSpec, BuiltinLinks), SpecError> {
    let links = BuiltinLinks::for_pod(name);
    let text = serde_json::json!({
        "name": name,
        "cpus": {"count": 1},
        "networks": [
            {"name": "mgmt", "ifname": "eth0", "kind": "veth", "bridge": links.bridge,
             "ips": ["10.251.0.2/24"], "gateway": "10.251.0.1"},
            {"name": "ctrl", "ifname": "net1", "kind": "macvlan", "master": links.parent,
             "mode": "bridge", "ips": ["10.252.0.2/24"]},
            {"name": "data", "ifname": "memif0", "kind": "memif", "role": "slave"}
        ],
        "command": ["sh", "-c", BUILTIN_SCRIPT, "vnf-pod-builtin",
                    memif_pkt_path(), MEMIF_FRAMES.to_string()]
    })
    .to_string();
    Ok((PodSpec::from_json(&text)?, links))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telco_core::InterfaceName;

    #[test]
    fn builtin_spec_is_valid() {
        let (spec, links) = builtin_spec("builtin-123").unwrap();
        assert_eq!(spec.networks.len(), 3);
        for name in [&links.bridge, &links.parent, &links.parent_peer] {
            assert!(name.parse::<InterfaceName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn builtin_command_runs_memif_pkt_next_to_exe() {
        let (spec, _) = builtin_spec("builtin-123").unwrap();
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        assert_eq!(spec.command[..2], ["sh", "-c"]);
        assert_eq!(
            spec.command[4],
            exe_dir.join("memif-pkt").display().to_string()
        );
        assert_eq!(spec.command[5], MEMIF_FRAMES.to_string());
        assert!(spec.command[2].contains("--network data"));
    }

    #[test]
    fn host_link_names_differ_per_pod() {
        assert_ne!(BuiltinLinks::for_pod("a"), BuiltinLinks::for_pod("b"));
    }
}
