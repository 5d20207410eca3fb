//! The kubelet's CPU-manager test topologies (`policy_test.go`), as data for tests, examples
//! and benchmarks.

use super::topology::{CpuPlace, CpuTopology};

fn build(places: impl IntoIterator<Item = (usize, usize, usize, usize, usize)>) -> CpuTopology {
    CpuTopology::from_places(
        places
            .into_iter()
            .map(|(cpu, core, socket, numa_node, uncore)| {
                (
                    cpu,
                    CpuPlace {
                        core,
                        socket,
                        numa_node,
                        uncore,
                    },
                )
            }),
    )
}

/// `topoSingleSocketHT`: 8 CPUs, 1 socket, 4 cores; CPU n and n+4 share core n.
pub fn single_socket_ht() -> CpuTopology {
    build((0..8).map(|cpu| (cpu, cpu % 4, 0, 0, 0)))
}

/// `topoDualSocketHT`: 12 CPUs, 2 sockets (= NUMA nodes), 6 cores; even cores on socket 0,
/// CPU n and n+6 share core n.
pub fn dual_socket_ht() -> CpuTopology {
    build((0..12).map(|cpu| {
        let core = cpu % 6;
        (cpu, core, core % 2, core % 2, core % 2)
    }))
}

/// `topoDualSocketNoHT`: 8 CPUs, 2 sockets, no SMT.
pub fn dual_socket_no_ht() -> CpuTopology {
    build((0..8).map(|cpu| (cpu, cpu, cpu / 4, cpu / 4, cpu / 4)))
}

/// `topoDualSocketMultiNumaPerSocketHT`: 80 CPUs, 2 sockets, 4 NUMA nodes, 40 cores; CPU n
/// and n+40 share core n.
pub fn dual_socket_multi_numa_ht() -> CpuTopology {
    build((0..80).map(|cpu| {
        let core = cpu % 40;
        (cpu, core, core / 20, core / 10, core / 20)
    }))
}

/// `topoDualSocketMultiNumaPerSocketHTLarge`: 256 CPUs, 2 sockets, 8 NUMA nodes, 128 cores.
pub fn dual_socket_multi_numa_ht_large() -> CpuTopology {
    build((0..256).map(|cpu| {
        let core = cpu % 128;
        (cpu, core, core / 64, core / 16, core / 64)
    }))
}

/// The socket CPU lists of `topoQuadSocketFourWayHT` (288 CPUs, 4 sockets = NUMA nodes, 4
/// threads per core).
pub const QUAD_SOCKET_FOUR_WAY_HT_SOCKETS: [&str; 4] = [
    "0-2,9-10,13-14,21-22,25-26,33-34,38-39,46-47,50,57-58,71-72,79-80,87-88,95-96,103-104,109-110,117-118,131-132,139-140,147-148,155-156,163-164,169-170,177-178,191-192,199-200,207-208,215-216,223-224,229-230,237-238,251-252,259-260,267-268,275-276,283-284",
    "3-4,11-12,15-16,23-24,27-28,35-36,40-41,48-49,51-52,59-60,65-66,73-74,81-82,89-90,97-98,111-112,119-120,125-126,133-134,141-142,149-150,157-158,171-172,179-180,185-186,193-194,201-202,209-210,217-218,231-232,239-240,245-246,253-254,261-262,269-270,277-278",
    "5-6,17-18,29-30,42-43,53-54,61-62,67-68,75-76,83-84,91-92,99-100,105-106,113-114,121-122,127-128,135-136,143-144,151-152,159-160,165-166,173-174,181-182,187-188,195-196,203-204,211-212,219-220,225-226,233-234,241-242,247-248,255-256,263-264,271-272,279-280,285-286",
    "7-8,19-20,31-32,37,44-45,55-56,63-64,69-70,77-78,85-86,93-94,101-102,107-108,115-116,123-124,129-130,137-138,145-146,153-154,161-162,167-168,175-176,183-184,189-190,197-198,205-206,213-214,221-222,227-228,235-236,243-244,249-250,257-258,265-266,273-274,281-282,287",
];

/// `topoQuadSocketFourWayHT` with its socket lists; cores are formed from four CPUs of a
/// socket in id order (the fixture's scattered core ids are not all known), which keeps its
/// shape: 72 cores of 4 threads.
pub fn quad_socket_four_way_ht() -> CpuTopology {
    let mut places = Vec::new();
    for (socket, list) in QUAD_SOCKET_FOUR_WAY_HT_SOCKETS.iter().enumerate() {
        let cpus: telco_core::CpuSet = list.parse().expect("fixture socket list");
        for (index, cpu) in cpus.iter().enumerate() {
            places.push((cpu, socket * 18 + index / 4, socket, socket, socket));
        }
    }
    build(places)
}

/// `topoUncoreSingleSocketSMT`: 16 CPUs, 8 cores, CPU n and n+8 share core n; cores 0-3 share
/// uncore cache 0, cores 4-7 uncore cache 1.
pub fn uncore_single_socket_smt() -> CpuTopology {
    build((0..16).map(|cpu| {
        let core = cpu % 8;
        (cpu, core, 0, 0, core / 4)
    }))
}

/// A machine of `nodes` NUMA nodes (one socket each) with `cores_per_node` two-thread cores.
pub fn numa_grid(nodes: usize, cores_per_node: usize) -> CpuTopology {
    let cores = nodes * cores_per_node;
    build((0..cores * 2).map(|cpu| {
        let core = cpu % cores;
        let node = core / cores_per_node;
        (cpu, core, node, node, node)
    }))
}
