use super::*;
use crate::cni::{Interface, IpConfig};
use serde_json::json;

/// A plugin that records nothing and returns a fixed interface; DEL fails for ifname "bad0".
struct Fixed;

impl Plugin for Fixed {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        let mut result = args
            .prev_result()?
            .unwrap_or_else(|| CniResult::new(args.cni_version()));
        let mut interface = Interface::new(args.ifname.clone());
        interface.sandbox = args.netns.as_ref().map(|p| p.display().to_string());
        result.interfaces.push(interface);
        let mut ip = IpConfig::new("10.0.0.2/24".parse().unwrap());
        ip.interface = Some(result.interfaces.len() - 1);
        result.ips.push(ip);
        Ok(result)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        if args.ifname == "bad0" {
            return Err(PluginError::new(ErrorCode(120), "cannot delete bad0"));
        }
        Ok(())
    }

    fn check(&self, _args: &CmdArgs) -> Result<(), PluginError> {
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let valid = args.valid_attachments()?;
        if valid.len() != 1 {
            return Err(PluginError::new(ErrorCode(121), format!("got {valid:?}")));
        }
        Ok(())
    }
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn add_env() -> Environment {
    env(&[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/does-not-exist-for-test"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/usr/lib/cni"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"),
    ])
}

const CONF: &[u8] = br#"{"cniVersion":"1.0.0","name":"net","type":"fixed"}"#;

fn error_of(reply: &Reply) -> PluginError {
    assert_eq!(reply.exit_code, 1, "stdout: {}", reply.stdout);
    serde_json::from_str(&reply.stdout).unwrap()
}

#[test]
fn add_prints_result_of_request_version() {
    let reply = dispatch(&Fixed, &add_env(), CONF);
    assert_eq!(reply.exit_code, 0, "{}", reply.stdout);
    let value: Value = serde_json::from_str(&reply.stdout).unwrap();
    assert_eq!(value["cniVersion"], "1.0.0");
    assert_eq!(value["interfaces"][0]["name"], "eth0");
    assert_eq!(
        value["ips"][0],
        json!({"address": "10.0.0.2/24", "interface": 0})
    );
}

#[test]
fn add_for_0_4_0_writes_ip_version() {
    let conf = br#"{"cniVersion":"0.4.0","name":"net","type":"fixed"}"#;
    let reply = dispatch(&Fixed, &add_env(), conf);
    let value: Value = serde_json::from_str(&reply.stdout).unwrap();
    assert_eq!(value["ips"][0]["version"], "4");
}

#[test]
fn add_extends_prev_result() {
    let conf = br#"{"cniVersion":"1.0.0","name":"net","type":"fixed",
        "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"br0"}]}}"#;
    let reply = dispatch(&Fixed, &add_env(), conf);
    let value: Value = serde_json::from_str(&reply.stdout).unwrap();
    assert_eq!(value["interfaces"][0]["name"], "br0");
    assert_eq!(value["ips"][0]["interface"], 1);
}

#[test]
fn missing_command_prints_about() {
    let reply = dispatch(&Fixed, &env(&[]), b"");
    assert_eq!(reply.exit_code, 0);
    assert!(reply.stdout.is_empty());
    assert!(reply.stderr.contains("1.1.0"), "{}", reply.stderr);
}

#[test]
fn malformed_input_gets_spec_codes() {
    let with = |key: &str, value: Option<&str>| {
        let mut e = add_env();
        match value {
            Some(v) => e.insert(key.to_owned(), v.to_owned()),
            None => e.remove(key),
        };
        e
    };
    let cases: Vec<(&str, Environment, &[u8], u32)> = vec![
        ("malformed json", add_env(), b"{\"cniVersion\":", 6),
        ("not an object", add_env(), b"[1]", 6),
        ("no cniVersion", add_env(), br#"{"name":"n","type":"t"}"#, 6),
        (
            "old version",
            add_env(),
            br#"{"cniVersion":"0.2.0","name":"n","type":"t"}"#,
            1,
        ),
        (
            "future version",
            add_env(),
            br#"{"cniVersion":"9.0.0","name":"n","type":"t"}"#,
            1,
        ),
        (
            "bad network name",
            add_env(),
            br#"{"cniVersion":"1.0.0","name":"a b","type":"t"}"#,
            7,
        ),
        (
            "unknown command",
            with("CNI_COMMAND", Some("BOGUS")),
            CONF,
            4,
        ),
        ("no container id", with("CNI_CONTAINERID", None), CONF, 4),
        (
            "bad container id",
            with("CNI_CONTAINERID", Some("-x")),
            CONF,
            4,
        ),
        ("no netns", with("CNI_NETNS", None), CONF, 4),
        ("no ifname", with("CNI_IFNAME", None), CONF, 4),
        (
            "long ifname",
            with("CNI_IFNAME", Some("abcdefghijklmnop")),
            CONF,
            4,
        ),
        (
            "ifname with slash",
            with("CNI_IFNAME", Some("a/b")),
            CONF,
            4,
        ),
        ("no path", with("CNI_PATH", None), CONF, 4),
        ("bad args", with("CNI_ARGS", Some("novalue")), CONF, 4),
    ];
    for (name, env, stdin, code) in cases {
        let reply = dispatch(&Fixed, &env, stdin);
        let error = error_of(&reply);
        assert_eq!(error.code, ErrorCode(code), "{name}: {error}");
        assert!(
            serde_json::from_str::<Value>(&reply.stdout).is_ok(),
            "{name}: stdout is not one JSON document"
        );
    }
}

#[test]
fn plugin_errors_keep_their_code() {
    let mut env = add_env();
    env.insert("CNI_COMMAND".into(), "DEL".into());
    env.insert("CNI_IFNAME".into(), "bad0".into());
    let error = error_of(&dispatch(&Fixed, &env, CONF));
    assert_eq!(error.code, ErrorCode(120));
}

#[test]
fn del_needs_no_netns() {
    let mut env = add_env();
    env.insert("CNI_COMMAND".into(), "DEL".into());
    env.remove("CNI_NETNS");
    let reply = dispatch(&Fixed, &env, CONF);
    assert_eq!(reply.exit_code, 0, "{}", reply.stdout);
    assert!(reply.stdout.is_empty());
}

#[test]
fn own_netns_is_rejected_with_code_8() {
    let mut env = add_env();
    env.insert("CNI_NETNS".into(), "/proc/self/ns/net".into());
    assert_eq!(
        error_of(&dispatch(&Fixed, &env, CONF)).code,
        ErrorCode::INVALID_NETNS
    );
    env.insert("CNI_NETNS_OVERRIDE".into(), "true".into());
    assert_eq!(dispatch(&Fixed, &env, CONF).exit_code, 0);
}

#[test]
fn check_needs_0_4_0_and_gc_needs_1_1_0() {
    let mut check_env = add_env();
    check_env.insert("CNI_COMMAND".into(), "CHECK".into());
    let old = br#"{"cniVersion":"0.3.1","name":"net","type":"fixed"}"#;
    assert_eq!(
        error_of(&dispatch(&Fixed, &check_env, old)).code,
        ErrorCode::INCOMPATIBLE_VERSION
    );
    assert_eq!(dispatch(&Fixed, &check_env, CONF).exit_code, 0);

    let gc_env = env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")]);
    assert_eq!(
        error_of(&dispatch(&Fixed, &gc_env, CONF)).code,
        ErrorCode::INCOMPATIBLE_VERSION
    );
}

#[test]
fn gc_reads_either_attachment_key() {
    let gc_env = env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")]);
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let conf = json!({"cniVersion": "1.1.0", "name": "net", "type": "fixed",
                          key: [{"containerID": "c1", "ifname": "eth0"}]});
        let reply = dispatch(&Fixed, &gc_env, conf.to_string().as_bytes());
        assert_eq!(reply.exit_code, 0, "{key}: {}", reply.stdout);
    }
}

#[test]
fn version_echoes_supported_request() {
    let version_env = env(&[("CNI_COMMAND", "VERSION")]);
    let reply = dispatch(&Fixed, &version_env, br#"{"cniVersion":"0.4.0"}"#);
    let info: VersionInfo = serde_json::from_str(&reply.stdout).unwrap();
    assert_eq!(info.cni_version, "0.4.0");
    assert_eq!(info.supported_versions.len(), SUPPORTED_VERSIONS.len());
    let reply = dispatch(&Fixed, &version_env, b"");
    let info: VersionInfo = serde_json::from_str(&reply.stdout).unwrap();
    assert_eq!(info.cni_version, CURRENT_VERSION);
}

#[test]
fn panic_becomes_code_999() {
    struct Panics;
    impl Plugin for Panics {
        fn add(&self, _: &CmdArgs) -> Result<CniResult, PluginError> {
            panic!("boom")
        }
        fn del(&self, _: &CmdArgs) -> Result<(), PluginError> {
            Ok(())
        }
        fn check(&self, _: &CmdArgs) -> Result<(), PluginError> {
            Ok(())
        }
    }
    let error = error_of(&dispatch(&Panics, &add_env(), CONF));
    assert_eq!(error.code, ErrorCode::INTERNAL);
    assert_eq!(error.details.as_deref(), Some("boom"));
}
