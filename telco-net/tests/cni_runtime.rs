//! The CNI runtime against plugins: shell-script plugins that record what they receive (any
//! machine), Debian's containernetworking-plugins in `/usr/lib/cni` (host tier), and the vlan and
//! ipvlan plugins the build kernel cannot run (vm tier).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use telco_net::cni::{
    CniError, CniResult, CniRuntime, ErrorCode, GcAttachment, NetConfList, RuntimeConf, cache_path,
};

/// Writes an executable shell script plugin `name` into `dir`.
fn write_script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plugin that appends `VERB stdin` to `log`, and on ADD echoes `prevResult` with one more
/// interface named after itself.
fn recording_plugin(dir: &Path, name: &str, log: &Path) {
    let body = format!(
        r#"input=$(cat)
printf '%s %s %s\n' "$CNI_COMMAND" "{name}" "$input" >> {log}
case "$CNI_COMMAND" in
ADD)
  prev=$(printf '%s' "$input" | sed -n 's/.*"prevResult":{{"cniVersion":"1.1.0","interfaces":\[\(.*\)\]}}.*/\1/p')
  if [ -n "$prev" ]; then prev="$prev,"; fi
  printf '{{"cniVersion":"1.1.0","interfaces":[%s{{"name":"{name}"}}]}}' "$prev" ;;
VERSION) printf '{{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}}' ;;
esac
"#,
        log = log.display()
    );
    write_script(dir, name, &body);
}

fn log_lines(log: &Path) -> Vec<(String, String, Value)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let verb = parts.next().unwrap().to_owned();
            let plugin = parts.next().unwrap().to_owned();
            let stdin = serde_json::from_str(parts.next().unwrap()).unwrap();
            (verb, plugin, stdin)
        })
        .collect()
}

fn two_plugin_list() -> NetConfList {
    NetConfList::from_value(json!({
        "cniVersion": "1.1.0", "name": "rec",
        "plugins": [{"type": "first", "keep": {"a": 1}}, {"type": "second"}]
    }))
    .unwrap()
}

#[test]
fn chain_passes_prev_result_and_deletes_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    recording_plugin(dir.path(), "first", &log);
    recording_plugin(dir.path(), "second", &log);
    let runtime =
        CniRuntime::new(vec![dir.path().to_owned()]).with_cache_dir(dir.path().join("cache"));
    let rt = RuntimeConf::new("c1", Some("/run/netns/none".into()), "eth0");
    let list = two_plugin_list();

    let result = runtime.add_network_list(&list, &rt).unwrap();
    let names: Vec<_> = result.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);

    runtime.check_network_list(&list, &rt).unwrap();
    runtime.del_network_list(&list, &rt).unwrap();
    let calls = log_lines(&log);
    let order: Vec<_> = calls.iter().map(|(v, p, _)| format!("{v} {p}")).collect();
    assert_eq!(
        order,
        [
            "ADD first",
            "ADD second",
            "CHECK first",
            "CHECK second",
            "DEL second",
            "DEL first"
        ]
    );
    assert_eq!(
        calls[0].2["keep"],
        json!({"a": 1}),
        "unknown key not passed through"
    );
    assert_eq!(calls[0].2["name"], "rec");
    assert!(calls[0].2.get("prevResult").is_none());
    assert_eq!(calls[1].2["prevResult"]["interfaces"][0]["name"], "first");
    for (verb, plugin, stdin) in &calls[2..] {
        assert_eq!(
            stdin["prevResult"],
            result.to_value(),
            "{verb} {plugin} prevResult"
        );
    }
    let cache = cache_path(&dir.path().join("cache"), "rec", "c1", "eth0");
    assert!(!cache.exists(), "cache entry left after DEL");
}

#[test]
fn gc_sends_both_keys_and_deletes_stale_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    recording_plugin(dir.path(), "first", &log);
    recording_plugin(dir.path(), "second", &log);
    let cache_dir = dir.path().join("cache");
    let runtime = CniRuntime::new(vec![dir.path().to_owned()]).with_cache_dir(&cache_dir);
    let list = two_plugin_list();
    let keep = RuntimeConf::new("keep", Some("/run/netns/a".into()), "eth0");
    let stale = RuntimeConf::new("stale", Some("/run/netns/b".into()), "eth0");
    runtime.add_network_list(&list, &keep).unwrap();
    runtime.add_network_list(&list, &stale).unwrap();
    std::fs::remove_file(&log).unwrap();

    let valid = [GcAttachment {
        container_id: "keep".into(),
        ifname: "eth0".into(),
    }];
    runtime.gc_network_list(&list, &valid).unwrap();

    let calls = log_lines(&log);
    let order: Vec<_> = calls.iter().map(|(v, p, _)| format!("{v} {p}")).collect();
    assert_eq!(order, ["DEL second", "DEL first", "GC first", "GC second"]);
    let expected = json!([{"containerID": "keep", "ifname": "eth0"}]);
    assert_eq!(calls[2].2["cni.dev/valid-attachments"], expected);
    assert_eq!(calls[2].2["cni.dev/attachments"], expected);
    assert!(cache_path(&cache_dir, "rec", "keep", "eth0").exists());
    assert!(!cache_path(&cache_dir, "rec", "stale", "eth0").exists());
}

#[test]
fn status_runs_only_from_1_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    recording_plugin(dir.path(), "first", &log);
    recording_plugin(dir.path(), "second", &log);
    let runtime = CniRuntime::new(vec![dir.path().to_owned()]);
    let mut list = two_plugin_list();
    runtime.get_status(&list).unwrap();
    assert_eq!(log_lines(&log).len(), 2);
    list.cni_version = "1.0.0".into();
    runtime.get_status(&list).unwrap();
    assert_eq!(log_lines(&log).len(), 2, "STATUS sent to a 1.0.0 list");
}

#[test]
fn plugin_errors_and_crashes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_script(
        dir.path(),
        "fails",
        r#"cat >/dev/null; printf '{"code":7,"msg":"Invalid Configuration","details":"no subnet"}'; exit 1"#,
    );
    write_script(
        dir.path(),
        "crashes",
        "cat >/dev/null; echo 'segfault-ish' >&2; exit 2",
    );
    write_script(dir.path(), "garbage", "cat >/dev/null; echo 'not json'");
    let runtime = CniRuntime::new(vec![dir.path().to_owned()]).with_cache_dir(dir.path());
    let rt = RuntimeConf::new("c1", Some("/run/netns/none".into()), "eth0");
    let list = |plugin: &str| {
        NetConfList::from_value(
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": plugin}]}),
        )
        .unwrap()
    };

    match runtime.add_network_list(&list("fails"), &rt).unwrap_err() {
        CniError::Plugin {
            plugin,
            network,
            error,
            ..
        } => {
            assert_eq!(plugin, "fails");
            assert_eq!(network, "n");
            assert_eq!(error.code, ErrorCode::INVALID_NETWORK_CONFIG);
            assert_eq!(error.details.as_deref(), Some("no subnet"));
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    match runtime.add_network_list(&list("crashes"), &rt).unwrap_err() {
        CniError::PluginCrashed { stderr, .. } => assert_eq!(stderr, "segfault-ish"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(matches!(
        runtime.add_network_list(&list("garbage"), &rt).unwrap_err(),
        CniError::InvalidReply { .. }
    ));
    assert!(matches!(
        runtime.add_network_list(&list("missing"), &rt).unwrap_err(),
        CniError::PluginNotFound { .. }
    ));
    let passed_on = runtime
        .add_network_list(&list("fails"), &rt)
        .unwrap_err()
        .to_plugin_error("delegate n");
    assert_eq!(passed_on.code, ErrorCode::INVALID_NETWORK_CONFIG);
    assert!(
        passed_on.msg.starts_with("delegate n: plugin \"fails\""),
        "{}",
        passed_on.msg
    );
}

/// A config larger than a pipe holds, to a plugin that fills its stdout before it reads stdin:
/// neither side may wait on the other.
#[test]
fn large_config_to_plugin_that_replies_first() {
    let dir = tempfile::tempdir().unwrap();
    let received = dir.path().join("received");
    write_script(
        dir.path(),
        "chatty",
        &format!(
            r#"head -c 200000 /dev/zero | tr '\000' ' '
wc -c > {received}
printf '{{"cniVersion":"1.1.0","interfaces":[{{"name":"chatty"}}]}}'
"#,
            received = received.display()
        ),
    );
    let runtime =
        CniRuntime::new(vec![dir.path().to_owned()]).with_cache_dir(dir.path().join("cache"));
    let rt = RuntimeConf::new("c1", Some("/run/netns/none".into()), "eth0");
    let padding = "x".repeat(300_000);
    let list = NetConfList::from_value(json!({
        "cniVersion": "1.1.0", "name": "big",
        "plugins": [{"type": "chatty", "padding": padding}]
    }))
    .unwrap();

    let result = runtime.add_network_list(&list, &rt).unwrap();

    assert_eq!(result.interfaces[0].name, "chatty");
    let bytes: usize = std::fs::read_to_string(&received)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(bytes > padding.len(), "the plugin read {bytes} bytes");
}

#[test]
fn check_without_cached_result_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    recording_plugin(dir.path(), "first", &log);
    recording_plugin(dir.path(), "second", &log);
    let runtime = CniRuntime::new(vec![dir.path().to_owned()]).with_cache_dir(dir.path());
    let rt = RuntimeConf::new("c1", Some("/run/netns/none".into()), "eth0");
    assert!(matches!(
        runtime
            .check_network_list(&two_plugin_list(), &rt)
            .unwrap_err(),
        CniError::NotCached { .. }
    ));
    let mut disabled = two_plugin_list();
    disabled.disable_check = true;
    runtime.check_network_list(&disabled, &rt).unwrap();
}

/// Helpers for tests that run Debian's plugins in namespaces they create.
mod support {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use telco_net::netns::Netns;

    pub const PLUGIN_DIR: &str = "/usr/lib/cni";

    /// A namespace pair: `host` stands in for the host, where plugins run and create their host
    /// side; `pod` is the container.
    pub struct Sandbox {
        pub host: Netns,
        pub pod: Netns,
        pub state: tempfile::TempDir,
        pub runtime: CniRuntime,
    }

    static NEXT: AtomicU32 = AtomicU32::new(0);

    pub fn unique_name(tag: &str) -> String {
        format!(
            "telco-cni-{}-{tag}{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    impl Sandbox {
        pub fn new() -> Sandbox {
            assert!(
                nix::unistd::geteuid().is_root(),
                "host tier needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
            );
            assert!(
                Path::new(PLUGIN_DIR).join("bridge").exists(),
                "install containernetworking-plugins"
            );
            let host = Netns::create(&unique_name("h")).expect("create host namespace");
            let pod = Netns::create(&unique_name("p")).expect("create pod namespace");
            let state = tempfile::tempdir().unwrap();
            let runtime =
                CniRuntime::new(vec![PLUGIN_DIR.into()]).with_cache_dir(state.path().join("cache"));
            Sandbox {
                host,
                pod,
                state,
                runtime,
            }
        }

        pub fn rt(&self, container_id: &str, ifname: &str) -> RuntimeConf {
            RuntimeConf::new(container_id, Some(self.pod.path()), ifname)
        }

        /// Runs `f` with the calling thread in the host namespace, so plugins start there.
        pub fn in_host<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            self.host.run(f).expect("enter host namespace")
        }

        pub fn ipam_dir(&self) -> PathBuf {
            self.state.path().join("ipam")
        }

        pub fn ipam_files(&self, network: &str) -> Vec<String> {
            let dir = self.ipam_dir().join(network);
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("last_reserved_ip") && n != "lock")
                .collect();
            names.sort();
            names
        }
    }

    pub fn ip(netns: &Netns, args: &[&str]) -> String {
        let name = netns.name().unwrap();
        let output = Command::new("ip")
            .args(["-n", name])
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            output.status.success(),
            "ip -n {name} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn links(netns: &Netns) -> Vec<String> {
        let links: Value = serde_json::from_str(&ip(netns, &["-j", "link", "show"])).unwrap();
        let mut names: Vec<String> = links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// `ADDRESS/PREFIX` of every global address on `ifname`.
    pub fn addresses(netns: &Netns, ifname: &str) -> Vec<String> {
        let links: Value =
            serde_json::from_str(&ip(netns, &["-j", "addr", "show", "dev", ifname])).unwrap();
        links[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }
}

mod host_tier {
    use super::support::*;
    use super::*;

    fn bridge_list(sandbox: &Sandbox, name: &str, bridge: &str, subnet: &str) -> NetConfList {
        NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": name,
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true,
                 "ipam": {"type": "host-local", "dataDir": sandbox.ipam_dir(),
                          "ranges": [[{"subnet": subnet}]]}},
                {"type": "tuning", "mtu": 1400, "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"},
                 "dataDir": sandbox.state.path().join("tuning")}
            ]
        }))
        .unwrap()
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn bridge_tuning_chain_add_check_del() {
        let sandbox = Sandbox::new();
        let list = bridge_list(&sandbox, "brnet", "telcobr0", "10.77.0.0/24");
        let rt = sandbox.rt("ctr1", "eth0");

        let result = sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &rt))
            .unwrap();
        let (interface, ips) = result.container_interface();
        assert_eq!(interface.unwrap().name, "eth0");
        let address = ips[0].address.to_string();
        assert!(address.starts_with("10.77.0."), "{address}");
        assert_eq!(
            addresses(&sandbox.pod, "eth0"),
            std::slice::from_ref(&address)
        );
        assert!(ip(&sandbox.pod, &["link", "show", "eth0"]).contains("mtu 1400"));
        assert!(links(&sandbox.host).contains(&"telcobr0".to_owned()));
        assert_eq!(
            sandbox.ipam_files("brnet"),
            [ips[0].address.addr().to_string()]
        );

        let cache = sandbox
            .runtime
            .cached_attachment("brnet", &rt)
            .unwrap()
            .expect("cache entry");
        assert_eq!(cache.kind, "cniCacheV1");
        assert_eq!(NetConfList::from_slice(&cache.config).unwrap(), list);
        assert_eq!(
            CniResult::from_value(cache.result.unwrap()).unwrap(),
            result
        );

        sandbox
            .in_host(|| sandbox.runtime.check_network_list(&list, &rt))
            .unwrap();
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
        assert!(sandbox.ipam_files("brnet").is_empty());
        assert!(
            sandbox
                .runtime
                .cached_attachment("brnet", &rt)
                .unwrap()
                .is_none()
        );
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .expect("second DEL");
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn macvlan_with_static_ipam() {
        let sandbox = Sandbox::new();
        ip(
            &sandbox.host,
            &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"],
        );
        ip(&sandbox.host, &["link", "set", "up0", "up"]);
        let list = NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": "mvnet",
            "plugins": [{"type": "macvlan", "master": "up0", "mode": "bridge",
                         "ipam": {"type": "static", "addresses": [{"address": "10.78.0.5/24", "gateway": "10.78.0.1"}]}}]
        }))
        .unwrap();
        let rt = sandbox.rt("ctr1", "net1");
        let result = sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &rt))
            .unwrap();
        assert_eq!(result.ips[0].address.to_string(), "10.78.0.5/24");
        assert_eq!(addresses(&sandbox.pod, "net1"), ["10.78.0.5/24"]);
        let detail = ip(&sandbox.pod, &["-d", "link", "show", "net1"]);
        assert!(detail.contains("macvlan mode bridge"), "{detail}");

        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn ptp_and_host_device_attach_and_return() {
        let sandbox = Sandbox::new();
        ip(
            &sandbox.host,
            &["link", "add", "hd0", "type", "veth", "peer", "name", "hd0p"],
        );
        let ptp = NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": "ptpnet",
            "plugins": [{"type": "ptp", "ipMasq": false,
                         "ipam": {"type": "host-local", "dataDir": sandbox.ipam_dir(),
                                  "ranges": [[{"subnet": "10.79.0.0/24"}]]}}]
        }))
        .unwrap();
        let device = NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": "hdnet",
            "plugins": [{"type": "host-device", "device": "hd0",
                         "ipam": {"type": "static", "addresses": [{"address": "10.80.0.5/24"}]}}]
        }))
        .unwrap();
        let eth0 = sandbox.rt("ctr1", "eth0");
        let net1 = sandbox.rt("ctr1", "net1");

        sandbox
            .in_host(|| sandbox.runtime.add_network_list(&ptp, &eth0))
            .unwrap();
        sandbox
            .in_host(|| sandbox.runtime.add_network_list(&device, &net1))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["eth0", "lo", "net1"]);
        assert_eq!(addresses(&sandbox.pod, "net1"), ["10.80.0.5/24"]);
        assert!(!links(&sandbox.host).contains(&"hd0".to_owned()));

        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&device, &net1))
            .unwrap();
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&ptp, &eth0))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
        assert!(
            links(&sandbox.host).contains(&"hd0".to_owned()),
            "host-device did not return hd0"
        );
        assert!(sandbox.ipam_files("ptpnet").is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn failed_chain_reports_plugin_and_del_cleans_up() {
        let sandbox = Sandbox::new();
        let mut list = bridge_list(&sandbox, "failnet", "telcobr1", "10.81.0.0/24");
        list.plugins[1]
            .extra
            .insert("sysctl".into(), json!({"net.ipv4.no_such_knob": "1"}));
        let rt = sandbox.rt("ctr1", "eth0");
        let error = sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &rt))
            .unwrap_err();
        match &error {
            CniError::Plugin {
                plugin, network, ..
            } => {
                assert_eq!(plugin, "tuning");
                assert_eq!(network, "failnet");
            }
            other => panic!("expected the tuning plugin's error, got {other:?}"),
        }
        assert!(
            sandbox
                .runtime
                .cached_attachment("failnet", &rt)
                .unwrap()
                .is_none()
        );
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
        assert!(sandbox.ipam_files("failnet").is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn gc_removes_only_stale_attachments() {
        let sandbox = Sandbox::new();
        let list = NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": "gcnet",
            "plugins": [{"type": "ptp", "ipam": {"type": "host-local", "dataDir": sandbox.ipam_dir(),
                                                 "ranges": [[{"subnet": "10.82.0.0/24"}]]}}]
        }))
        .unwrap();
        let keep = sandbox.rt("keep", "eth0");
        // ptp installs a host route per container, so the second container needs its own
        // namespace.
        let other_pod = telco_net::netns::Netns::create(&unique_name("p")).unwrap();
        let stale = RuntimeConf::new("stale", Some(other_pod.path()), "eth0");
        sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &keep))
            .unwrap();
        sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &stale))
            .unwrap();
        assert_eq!(sandbox.ipam_files("gcnet").len(), 2);

        let valid = [GcAttachment {
            container_id: "keep".into(),
            ifname: "eth0".into(),
        }];
        sandbox
            .in_host(|| sandbox.runtime.gc_network_list(&list, &valid))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["eth0", "lo"]);
        assert_eq!(links(&other_pod), ["lo"]);
        assert_eq!(sandbox.ipam_files("gcnet").len(), 1);
        assert_eq!(
            sandbox.runtime.cached_attachments("gcnet").unwrap().len(),
            1
        );

        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &keep))
            .unwrap();
        assert!(sandbox.ipam_files("gcnet").is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn debian_plugin_versions_are_read() {
        let runtime = CniRuntime::new(vec![PLUGIN_DIR.into()]);
        let info = runtime.plugin_versions("bridge").unwrap();
        assert!(info.supports(telco_net::cni::Version::V1_0_0), "{info:?}");
    }
}

mod vm_tier {
    use super::support::*;
    use super::*;

    fn run_single(sandbox: &Sandbox, plugin: Value, ifname: &str) -> (NetConfList, RuntimeConf) {
        let list = NetConfList::from_value(
            json!({"cniVersion": "1.0.0", "name": unique_name("n"), "plugins": [plugin]}),
        )
        .unwrap();
        let rt = sandbox.rt("ctr1", ifname);
        sandbox
            .in_host(|| sandbox.runtime.add_network_list(&list, &rt))
            .unwrap();
        (list, rt)
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn vlan_plugin_attaches_tagged_interface() {
        let sandbox = Sandbox::new();
        ip(
            &sandbox.host,
            &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"],
        );
        ip(&sandbox.host, &["link", "set", "up0", "up"]);
        let plugin = json!({"type": "vlan", "master": "up0", "vlanId": 100,
                            "ipam": {"type": "static", "addresses": [{"address": "10.83.0.5/24"}]}});
        let (list, rt) = run_single(&sandbox, plugin, "net1");
        let detail = ip(&sandbox.pod, &["-d", "link", "show", "net1"]);
        assert!(detail.contains("vlan protocol 802.1Q id 100"), "{detail}");
        assert_eq!(addresses(&sandbox.pod, "net1"), ["10.83.0.5/24"]);
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn ipvlan_plugin_attaches_l2_interface() {
        let sandbox = Sandbox::new();
        ip(
            &sandbox.host,
            &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"],
        );
        ip(&sandbox.host, &["link", "set", "up0", "up"]);
        let plugin = json!({"type": "ipvlan", "master": "up0", "mode": "l2",
                            "ipam": {"type": "static", "addresses": [{"address": "10.84.0.5/24"}]}});
        let (list, rt) = run_single(&sandbox, plugin, "net1");
        let detail = ip(&sandbox.pod, &["-d", "link", "show", "net1"]);
        assert!(
            detail.contains("ipvlan") && detail.contains("mode l2"),
            "{detail}"
        );
        assert_eq!(addresses(&sandbox.pod, "net1"), ["10.84.0.5/24"]);
        sandbox
            .in_host(|| sandbox.runtime.del_network_list(&list, &rt))
            .unwrap();
        assert_eq!(links(&sandbox.pod), ["lo"]);
    }
}
