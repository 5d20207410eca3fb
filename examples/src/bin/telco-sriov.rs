//! `telco-sriov`: a CNI plugin that gives a pod an SR-IOV VF, accepting SR-IOV CNI's
//! configuration unchanged.
//!
//! Install it in the CNI plugin directory and use `"type": "telco-sriov"` in place of
//! `"type": "sriov"`. Attachments are saved under `/var/lib/cni/telco-sriov` (or
//! `$TELCO_SRIOV_STATE_DIR`, with allocation markers in its `pci/` subdirectory); logs go to
//! stderr, filtered by `RUST_LOG` (default `warn`).

use telco_net::cni::plugin_main;
use telco_net::sriov::SriovPlugin;

fn main() {
    telco_examples::init_logging("warn");
    let plugin = match std::env::var_os("TELCO_SRIOV_STATE_DIR") {
        Some(dir) => SriovPlugin::with_state_dir(dir),
        None => SriovPlugin::default(),
    };
    plugin_main(&plugin)
}
