//! Unit tests of the spec parser: a full spec, defaults, and a table of bad specs.

use super::*;

const GOOD: &str = r#"{
    "name": "upf1",
    "cpus": {"count": 2, "full_pcpus_only": true, "align_with": "data", "policy": "restricted"},
    "hugepages": {"size_kib": 2048, "count": 16},
    "networks": [
        {"name": "mgmt", "ifname": "eth0", "kind": "veth", "bridge": "br-mgmt",
         "ips": ["10.10.0.5/24"], "gateway": "10.10.0.1"},
        {"name": "ctrl", "kind": "macvlan", "master": "dummy0", "mode": "private",
         "ips": ["10.11.0.5/24"]},
        {"name": "data", "kind": "sriov", "pf": "ens1f0", "vlan": 100, "spoofchk": false},
        {"name": "fast", "kind": "memif", "role": "master"},
        {"name": "plug", "kind": "cni", "conflist": "/etc/cni/net.d/10-plug.conflist"}
    ],
    "command": ["/bin/sleep", "1"]
}"#;

#[test]
fn full_spec_parses() {
    let spec = PodSpec::from_json(GOOD).unwrap();
    assert_eq!(spec.name, "upf1");
    assert_eq!(spec.cpus.count, 2);
    assert!(spec.cpus.full_pcpus_only);
    assert_eq!(spec.cpus.policy, TopologyPolicy::Restricted);
    assert_eq!(
        spec.hugepages,
        Some(HugepageRequest {
            size_kib: 2048,
            count: 16
        })
    );
    assert_eq!(spec.networks.len(), 5);
    let NetworkKind::Macvlan(macvlan) = &spec.networks[1].kind else {
        panic!("second network is {:?}", spec.networks[1].kind);
    };
    assert_eq!(macvlan.mode, MacvlanMode::Private);
    assert_eq!(spec.command, ["/bin/sleep", "1"]);
}

#[test]
fn missing_ifname_defaults_to_position() {
    let spec = PodSpec::from_json(GOOD).unwrap();
    let ifnames: Vec<&str> = spec
        .networks
        .iter()
        .map(|network| network.ifname.as_str())
        .collect();
    assert_eq!(ifnames, ["eth0", "net2", "net3", "net4", "net5"]);
}

#[test]
fn defaults_fill_optional_fields() {
    let spec = PodSpec::from_json(r#"{"name": "a", "cpus": {"count": 1}}"#).unwrap();
    assert_eq!(spec.cpus.policy, TopologyPolicy::BestEffort);
    assert!(!spec.cpus.full_pcpus_only);
    assert!(spec.networks.is_empty());
    assert!(spec.command.is_empty());
    assert_eq!(spec.hugepages, None);
}

#[test]
fn spec_round_trips_through_json() {
    let spec = PodSpec::from_json(GOOD).unwrap();
    let again = PodSpec::from_json(&spec.to_json()).unwrap();
    assert_eq!(again, spec);
}

/// Replaces the networks of a minimal spec.
fn with_networks(networks: &str) -> String {
    format!(r#"{{"name": "p", "cpus": {{"count": 1}}, "networks": [{networks}]}}"#)
}

#[test]
fn bad_specs_name_the_field() {
    let veth = r#"{"name": "a", "kind": "veth", "ips": ["10.0.0.2/24"]}"#;
    let cases: Vec<(String, &str, &str)> =
        vec![
        (
            r#"{"name": "p", "cpus": {"count": 1}, "color": "red"}"#.into(),
            "color",
            "unknown field `color`",
        ),
        (r#"{"cpus": {"count": 1}}"#.into(), "", "missing field `name`"),
        (r#"{"name": "P!", "cpus": {"count": 1}}"#.into(), "name", "invalid pod name"),
        (r#"{"name": "p", "cpus": {"count": 0}}"#.into(), "cpus.count", "at least 1"),
        (
            r#"{"name": "p", "cpus": {"count": "two"}}"#.into(),
            "cpus.count",
            "invalid type",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1, "pin": true}}"#.into(),
            "cpus.pin",
            "unknown field `pin`",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1, "policy": "strict"}}"#.into(),
            "cpus.policy",
            "unknown topology manager policy \"strict\"",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1, "align_with": "data"}}"#.into(),
            "cpus.align_with",
            "no network named \"data\"",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1}, "hugepages": {"size_kib": 3000, "count": 1}}"#
                .into(),
            "hugepages.size_kib",
            "not a page size",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1}, "hugepages": {"size_kib": 2048, "count": 0}}"#
                .into(),
            "hugepages.count",
            "at least 1",
        ),
        (
            r#"{"name": "p", "cpus": {"count": 1}, "command": [""]}"#.into(),
            "command[0]",
            "empty program name",
        ),
        (
            with_networks(&format!(
                r#"{veth}, {{"name": "b", "kind": "macvlan", "master": "eth0", "mode": "foo"}}"#
            )),
            "networks[1].mode",
            "unknown macvlan mode \"foo\"",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "ipvlan", "master": "eth0", "mode": "l4"}"#),
            "networks[0].mode",
            "unknown ipvlan mode \"l4\"",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "wifi"}"#),
            "networks[0].kind",
            "unknown network kind \"wifi\"",
        ),
        (
            with_networks(r#"{"name": "a"}"#),
            "networks[0].kind",
            "missing field",
        ),
        (
            with_networks(r#"{"kind": "veth"}"#),
            "networks[0].name",
            "missing field",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "veth", "device": "eth0"}"#),
            "networks[0].device",
            "unknown field `device`",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "veth", "ips": ["10.0.0.300/24"]}"#),
            "networks[0].ips[0]",
            "10.0.0.300",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "veth", "ifname": "eth0:1"}"#),
            "networks[0].ifname",
            "eth0:1",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "macvlan"}"#),
            "networks[0]",
            "missing field `master`",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "vlan", "master": "eth0", "id": 4095}"#),
            "networks[0].id",
            "outside 1 to 4094",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "sriov"}"#),
            "networks[0].pool",
            "give pool or pf",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "sriov", "pool": "x", "pf": "eth0"}"#),
            "networks[0].pf",
            "not both",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "sriov", "pf": "eth0", "vlan_qos": 9}"#),
            "networks[0].vlan_qos",
            "outside 0 to 7",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "memif", "role": "leader"}"#),
            "networks[0].role",
            "unknown memif role \"leader\"",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "memif", "role": "slave", "socket": "x.sock"}"#),
            "networks[0].socket",
            "not an absolute path",
        ),
        (
            with_networks(r#"{"name": "a", "kind": "cni", "conflist": 5}"#),
            "networks[0].conflist",
            "expected a conflist object",
        ),
        (
            with_networks(&format!("{veth}, {veth}")),
            "networks[1].name",
            "used twice",
        ),
        (
            with_networks(
                r#"{"name": "a", "kind": "veth", "ifname": "eth0"},
                   {"name": "b", "kind": "tap", "ifname": "eth0"}"#,
            ),
            "networks[1].ifname",
            "used twice",
        ),
        (
            with_networks(
                r#"{"name": "a", "kind": "veth", "ips": ["10.0.0.2/24"], "gateway": "10.9.0.1"}"#,
            ),
            "networks[0].gateway",
            "none of the subnets",
        ),
        (
            with_networks(
                r#"{"name": "a", "kind": "veth", "ips": ["10.0.0.2/24"], "gateway": "10.0.0.1"},
                   {"name": "b", "kind": "tap", "ips": ["10.1.0.2/24"], "gateway": "10.1.0.1"}"#,
            ),
            "networks[1].gateway",
            "already has the default gateway",
        ),
        ("{\"name\": \"p\"".into(), "", "EOF"),
    ];
    let mut failures = Vec::new();
    for (text, field, message) in &cases {
        let error = PodSpec::from_json(text).expect_err(text);
        if &error.field != field || !error.message.contains(message) {
            failures.push(format!(
                "{text}\n  expected {field}: ...{message}...\n  got {error}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_display_starts_with_field() {
    let text =
        with_networks(r#"{"name": "b", "kind": "macvlan", "master": "eth0", "mode": "foo"}"#);
    let error = PodSpec::from_json(&text).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("networks[0].mode: unknown macvlan mode \"foo\""),
        "{error}"
    );
}

#[test]
fn readme_example_spec_parses() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("```json\n")
        .expect("README.md should hold a json spec block")
        + "```json\n".len();
    let length = readme[start..]
        .find("```")
        .expect("unterminated json block");
    let spec = PodSpec::from_json(&readme[start..start + length]).unwrap();
    assert_eq!(spec.name, "upf-1");
    assert_eq!(spec.networks.len(), 3);
}

#[test]
fn up_rejects_slave_memif() {
    let spec = PodSpec::from_json(&with_networks(
        r#"{"name": "a", "kind": "veth"}, {"name": "b", "kind": "memif", "role": "slave"}"#,
    ))
    .unwrap();
    let error = spec.check_for_up().unwrap_err();
    assert_eq!(error.field, "networks[1].role");
    assert!(error.message.contains("vnf-pod run"), "{error}");

    let spec = PodSpec::from_json(&with_networks(
        r#"{"name": "b", "kind": "memif", "role": "master"}"#,
    ))
    .unwrap();
    assert_eq!(spec.check_for_up(), Ok(()));
}
