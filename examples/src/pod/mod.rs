//! `vnf-pod`: places one VNF on this host with the telco crates, the way an integrator's
//! runtime would.
//!
//! The placement ([`place::Placement`]) is a sequence of named steps: discover the topology
//! (telco-topo), collect topology hints from the CPU manager, the hugepage pools and the
//! aligned network's device, merge them under the spec's topology-manager policy, allocate
//! exclusive CPUs, reserve hugepages, create the network namespace, create missing host links
//! (bridges, the built-in spec's macvlan parent), attach every network in order (telco-net's
//! multi-network attach), create the cpuset cgroup and write the network-status file. Each
//! step records what it makes in the pod's state file ([`state`]) as an [`teardown::Undo`]
//! entry, so that an error, the command's end, SIGINT or SIGTERM, or `vnf-pod down` after a
//! crash undoes everything in reverse.
//!
//! The command then runs ([`workload`]) inside the namespace, in the cgroup and pinned to the
//! CPUs from its first instruction, with the network-status list in `TELCO_NETWORK_STATUS`
//! and in the file named by `TELCO_NETWORK_STATUS_FILE`.
//!
//! # Limitations
//!
//! - memif: the workload gets a socket path and role in `device-info`. For a `slave`
//!   workload, `vnf-pod run` serves the socket itself with telco-net's memif kind and its echo
//!   responder (every frame goes back with the MAC addresses swapped), on a thread that ends
//!   with `vnf-pod run`. `vnf-pod up` exits after placing, so it rejects a `slave` memif
//!   network. A `master` workload creates the socket, and its peer must come from elsewhere.
//! - Hugepages are made available on the chosen node, but nothing keeps other workloads from
//!   mapping free pages of the pool (there is no hugetlb cgroup limit).
//! - Exclusive CPUs are exclusive among `vnf-pod` pods, whose state files record them; other
//!   processes of the host may still run on them.
//! - A step blocked in a system call or a CNI plugin sees SIGINT or SIGTERM only when it
//!   returns.

pub mod builtin;
pub mod cgroup;
pub mod commands;
pub mod cpus;
pub mod error;
pub mod hugepages;
pub mod networks;
pub mod place;
pub mod signals;
pub mod spec;
pub mod state;
pub mod teardown;
pub mod workload;

pub use error::PodError;
