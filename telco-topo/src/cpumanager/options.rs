//! The static policy options and the kubelet's rules for combining them.

use serde::{Deserialize, Serialize};

use super::topology::CpuTopology;
use crate::error::CpuManagerError;

/// Options of the static policy (the kubelet's `cpuManagerPolicyOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StaticPolicyOptions {
    /// `full-pcpus-only`: only whole cores.
    pub full_pcpus_only: bool,
    /// `distribute-cpus-across-numa`: spread evenly over NUMA nodes when more than one is
    /// needed.
    pub distribute_cpus_across_numa: bool,
    /// `align-by-socket`: a NUMA hint widens to the sockets of its nodes.
    pub align_by_socket: bool,
    /// `distribute-cpus-across-cores`: one thread per core before siblings.
    pub distribute_cpus_across_cores: bool,
    /// `strict-cpu-reservation`: reserved CPUs leave the shared pool.
    pub strict_cpu_reservation: bool,
    /// `prefer-align-cpus-by-uncorecache`: pack into as few last-level caches as possible.
    pub prefer_align_cpus_by_uncorecache: bool,
}

const NAMES: [&str; 6] = [
    "full-pcpus-only",
    "distribute-cpus-across-numa",
    "align-by-socket",
    "distribute-cpus-across-cores",
    "strict-cpu-reservation",
    "prefer-align-cpus-by-uncorecache",
];

impl StaticPolicyOptions {
    /// Parses `NAME[=true|false],...` (values in Go's `strconv.ParseBool` syntax; a bare name
    /// means true) and checks the combination.
    pub fn parse(text: &str) -> Result<StaticPolicyOptions, CpuManagerError> {
        let mut options = StaticPolicyOptions::default();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, value) = item.split_once('=').unwrap_or((item, "true"));
            let value = parse_bool(value).ok_or_else(|| CpuManagerError::InvalidOptionValue {
                name: name.to_owned(),
                value: value.to_owned(),
            })?;
            options.set(name, value)?;
        }
        options.check_combination()?;
        Ok(options)
    }

    /// Sets the option called `name` (its kubelet name).
    pub fn set(&mut self, name: &str, value: bool) -> Result<(), CpuManagerError> {
        let field = match name {
            "full-pcpus-only" => &mut self.full_pcpus_only,
            "distribute-cpus-across-numa" => &mut self.distribute_cpus_across_numa,
            "align-by-socket" => &mut self.align_by_socket,
            "distribute-cpus-across-cores" => &mut self.distribute_cpus_across_cores,
            "strict-cpu-reservation" => &mut self.strict_cpu_reservation,
            "prefer-align-cpus-by-uncorecache" => &mut self.prefer_align_cpus_by_uncorecache,
            _ => {
                return Err(CpuManagerError::UnknownOption {
                    name: name.to_owned(),
                });
            }
        };
        *field = value;
        Ok(())
    }

    /// Returns the option names of the static policy.
    pub fn names() -> &'static [&'static str] {
        &NAMES
    }

    /// Checks the kubelet's exclusions between options.
    pub fn check_combination(&self) -> Result<(), CpuManagerError> {
        let exclusive = |first, second| Err(CpuManagerError::IncompatibleOptions { first, second });
        if self.full_pcpus_only && self.distribute_cpus_across_cores {
            return exclusive("full-pcpus-only", "distribute-cpus-across-cores");
        }
        if self.distribute_cpus_across_cores && self.distribute_cpus_across_numa {
            return exclusive(
                "distribute-cpus-across-cores",
                "distribute-cpus-across-numa",
            );
        }
        if self.prefer_align_cpus_by_uncorecache && self.distribute_cpus_across_cores {
            return exclusive(
                "prefer-align-cpus-by-uncorecache",
                "distribute-cpus-across-cores",
            );
        }
        if self.prefer_align_cpus_by_uncorecache && self.distribute_cpus_across_numa {
            return exclusive(
                "prefer-align-cpus-by-uncorecache",
                "distribute-cpus-across-numa",
            );
        }
        Ok(())
    }

    /// Checks the options against the machine: `align-by-socket` needs no more sockets than
    /// NUMA nodes.
    pub fn validate_for(&self, topology: &CpuTopology) -> Result<(), CpuManagerError> {
        self.check_combination()?;
        if self.align_by_socket && topology.num_sockets() > topology.num_nodes() {
            return Err(CpuManagerError::AlignBySocketUnsupported {
                reason: format!(
                    "{} sockets on {} NUMA nodes",
                    topology.num_sockets(),
                    topology.num_nodes()
                ),
            });
        }
        Ok(())
    }

    /// `align-by-socket` cannot be used with the topology manager's `single-numa-node` policy.
    pub fn validate_with_policy(&self, policy_name: &str) -> Result<(), CpuManagerError> {
        if self.align_by_socket && policy_name == "single-numa-node" {
            return Err(CpuManagerError::AlignBySocketUnsupported {
                reason: "the single-numa-node topology manager policy".to_owned(),
            });
        }
        Ok(())
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}
