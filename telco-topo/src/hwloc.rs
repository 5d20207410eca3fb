//! The same [`Topology`] built through libhwloc (`hwloc2` crate, Debian's `libhwloc-dev`), as a
//! cross-check of the sysfs reader. Only with the `hwloc` feature.
//!
//! libhwloc reads the live host, or the tree that the environment variable `HWLOC_FSROOT`
//! names (how hwloc's own fixture tests run).
//!
//! CPUs, cores, packages and caches come through the `hwloc2` bindings. NUMA node memory, the
//! distance matrix and PCI devices come through a second libhwloc topology, loaded with I/O
//! objects enabled, that a small `extern "C"` block reads (the bindings map NUMA nodes' virtual
//! depth to bridges and expose no distances).
//!
//! # Limitations
//!
//! Hugepage pools and the cache type of data caches are not read: `hugepages` is empty, and
//! caches of level 1 are reported as data caches, higher levels as unified. NUMA node CPU sets
//! come from each PU's node set. Instruction caches are filtered out by libhwloc's defaults.
//! PCI devices carry address, vendor, device and class without the programming interface
//! byte (libhwloc keeps 16 bits of class), and no driver, node, local CPUs, interfaces or
//! SR-IOV counts. Debian's libhwloc stores PCI domains in 16 bits, so domains above `ffff`
//! are truncated.

use std::collections::BTreeMap;

use hwloc2::{ObjectType, TopologyObject};
use telco_core::{CpuSet, NodeMask};

use crate::discover::{Cache, CacheKind, Core, Cpu, CpuGroup, NumaNode, Topology};
use crate::error::DiscoverError;

fn cpus_of(object: &TopologyObject) -> CpuSet {
    object
        .cpuset()
        .map(|set| set.into_iter().map(|cpu| cpu as usize).collect())
        .unwrap_or_default()
}

fn objects(topology: &hwloc2::Topology, kind: ObjectType) -> Vec<&TopologyObject> {
    topology.objects_with_type(&kind).unwrap_or_default()
}

/// Builds the topology through libhwloc.
pub fn discover_with_hwloc() -> Result<Topology, DiscoverError> {
    let topology = hwloc2::Topology::new().ok_or_else(|| DiscoverError::Hwloc {
        reason: "hwloc_topology_init or hwloc_topology_load failed".to_owned(),
    })?;
    let pus = objects(&topology, ObjectType::PU);
    let online: CpuSet = pus.iter().map(|pu| pu.os_index() as usize).collect();
    let packages: Vec<CpuGroup> = objects(&topology, ObjectType::Package)
        .into_iter()
        .map(|package| CpuGroup {
            id: package.os_index() as usize,
            package: package.os_index() as usize,
            cpus: cpus_of(package),
        })
        .collect();
    let package_of = |cpus: &CpuSet| {
        packages
            .iter()
            .find(|package| cpus.is_subset(&package.cpus))
            .map_or(0, |package| package.id)
    };
    let cores: Vec<Core> = objects(&topology, ObjectType::Core)
        .into_iter()
        .map(|core| {
            let cpus = cpus_of(core);
            Core {
                id: core.os_index() as usize,
                package: package_of(&cpus),
                cpus,
            }
        })
        .collect();
    let mut caches = Vec::new();
    for (kind, level) in [
        (ObjectType::L1Cache, 1u8),
        (ObjectType::L2Cache, 2),
        (ObjectType::L3Cache, 3),
        (ObjectType::L4Cache, 4),
        (ObjectType::L5Cache, 5),
    ] {
        for cache in objects(&topology, kind) {
            let attributes = cache.cache_attributes();
            caches.push(Cache {
                level,
                kind: if level == 1 {
                    CacheKind::Data
                } else {
                    CacheKind::Unified
                },
                size_kib: attributes.map(|a| a.size() / 1024),
                line_size: attributes.map(|a| a.linesize),
                ways: attributes.and_then(|a| u32::try_from(a.associativity).ok()),
                id: None,
                cpus: cpus_of(cache),
            });
        }
    }
    let mut node_cpus: BTreeMap<usize, CpuSet> = BTreeMap::new();
    let all_nodes: NodeMask = topology
        .object_at_root()
        .nodeset()
        .map(|set| set.into_iter().map(|node| node as usize).collect())
        .unwrap_or_default();
    for node in all_nodes.iter() {
        node_cpus.insert(node, CpuSet::new());
    }
    for pu in &pus {
        for node in pu.nodeset().into_iter().flatten() {
            node_cpus
                .entry(node as usize)
                .or_default()
                .insert(pu.os_index() as usize);
        }
    }
    let io = raw::IoTopology::load()?;
    let memory = io.node_memory();
    let numa_nodes: Vec<NumaNode> = node_cpus
        .into_iter()
        .map(|(id, cpus)| NumaNode {
            id,
            cpus,
            memory_kib: memory.get(&id).map(|bytes| bytes / 1024),
            hugepages: Vec::new(),
        })
        .collect();
    let node_ids: Vec<usize> = numa_nodes.iter().map(|node| node.id).collect();
    let distances = io.node_distances(&node_ids);
    let pci_devices = io.pci_devices();
    let cpus: Vec<Cpu> = online
        .iter()
        .map(|id| {
            let core_index = cores.iter().position(|core| core.cpus.contains(id));
            Cpu {
                id,
                online: true,
                package: packages.iter().find(|p| p.cpus.contains(id)).map(|p| p.id),
                die: None,
                cluster: None,
                core: core_index.map(|index| cores[index].id),
                core_index,
                numa_node: numa_nodes
                    .iter()
                    .find(|n| n.cpus.contains(id))
                    .map(|n| n.id),
                llc: None,
            }
        })
        .collect();
    Ok(Topology {
        possible: online.clone(),
        present: online.clone(),
        online,
        cpus,
        packages,
        dies: Vec::new(),
        clusters: Vec::new(),
        cores,
        numa_nodes,
        distances,
        caches,
        pci_devices,
        isolated: CpuSet::new(),
        nohz_full: CpuSet::new(),
        hugepage_sizes_kib: Vec::new(),
        cgroup: None,
    })
}

/// A libhwloc topology of its own, with I/O objects, read through libhwloc's C API (hwloc 2.x
/// ABI, as Debian's `libhwloc-dev` 2.9 ships it).
mod raw {
    use std::collections::BTreeMap;

    use libc::{c_char, c_int, c_uint, c_ulong, c_void};
    use telco_core::PciAddress;

    use crate::discover::PciDevice;
    use crate::error::DiscoverError;

    /// `struct hwloc_topology`, opaque.
    #[repr(C)]
    struct HwlocTopology {
        _opaque: [u8; 0],
    }

    /// The leading fields of `struct hwloc_obj`, the only ones read here.
    #[repr(C)]
    struct HwlocObject {
        kind: c_int,
        subtype: *mut c_char,
        os_index: c_uint,
        name: *mut c_char,
        total_memory: u64,
        attr: *mut c_void,
    }

    /// `struct hwloc_pcidev_attr_s` with a 16-bit domain (Debian builds without
    /// `HWLOC_HAVE_32BITS_PCI_DOMAIN`).
    #[repr(C)]
    struct PciAttributes {
        domain: u16,
        bus: u8,
        device: u8,
        function: u8,
        class_id: u16,
        vendor_id: u16,
        device_id: u16,
        subvendor_id: u16,
        subdevice_id: u16,
        revision: u8,
        link_speed: f32,
    }

    /// The leading fields of `struct hwloc_bridge_attr_s`.
    #[repr(C)]
    struct BridgeAttributes {
        upstream: PciAttributes,
        upstream_type: c_int,
    }

    /// `struct hwloc_distances_s`.
    #[repr(C)]
    struct HwlocDistances {
        object_count: c_uint,
        objects: *mut *mut HwlocObject,
        kind: c_ulong,
        values: *mut u64,
    }

    const OBJ_NUMANODE: c_int = 13;
    const OBJ_BRIDGE: c_int = 14;
    const OBJ_PCI_DEVICE: c_int = 15;
    const DEPTH_NUMANODE: c_int = -3;
    const DEPTH_BRIDGE: c_int = -4;
    const DEPTH_PCI_DEVICE: c_int = -5;
    const BRIDGE_PCI: c_int = 1;
    const TYPE_FILTER_KEEP_ALL: c_int = 0;
    const DISTANCES_KIND_FROM_OS: c_ulong = 1;

    #[link(name = "hwloc")]
    unsafe extern "C" {
        fn hwloc_topology_init(topology: *mut *mut HwlocTopology) -> c_int;
        fn hwloc_topology_set_io_types_filter(topology: *mut HwlocTopology, filter: c_int)
        -> c_int;
        fn hwloc_topology_load(topology: *mut HwlocTopology) -> c_int;
        fn hwloc_topology_destroy(topology: *mut HwlocTopology);
        fn hwloc_get_nbobjs_by_depth(topology: *mut HwlocTopology, depth: c_int) -> c_uint;
        fn hwloc_get_obj_by_depth(
            topology: *mut HwlocTopology,
            depth: c_int,
            index: c_uint,
        ) -> *mut HwlocObject;
        fn hwloc_distances_get_by_type(
            topology: *mut HwlocTopology,
            kind: c_int,
            count: *mut c_uint,
            distances: *mut *mut HwlocDistances,
            distance_kind: c_ulong,
            flags: c_ulong,
        ) -> c_int;
        fn hwloc_distances_release(topology: *mut HwlocTopology, distances: *mut HwlocDistances);
    }

    /// A loaded topology with every PCI device and bridge kept; destroyed on drop.
    pub(super) struct IoTopology {
        topology: *mut HwlocTopology,
    }

    impl Drop for IoTopology {
        fn drop(&mut self) {
            // SAFETY: `topology` was initialised by hwloc_topology_init and is destroyed once.
            unsafe { hwloc_topology_destroy(self.topology) };
        }
    }

    impl IoTopology {
        pub(super) fn load() -> Result<IoTopology, DiscoverError> {
            let mut topology = std::ptr::null_mut();
            // SAFETY: hwloc_topology_init writes a new topology into `topology`.
            if unsafe { hwloc_topology_init(&mut topology) } != 0 || topology.is_null() {
                return Err(DiscoverError::Hwloc {
                    reason: "hwloc_topology_init failed".to_owned(),
                });
            }
            let loaded = IoTopology { topology };
            // SAFETY: the topology is initialised and not loaded yet, as both calls require.
            let status = unsafe {
                hwloc_topology_set_io_types_filter(topology, TYPE_FILTER_KEEP_ALL)
                    .min(hwloc_topology_load(topology))
            };
            if status != 0 {
                return Err(DiscoverError::Hwloc {
                    reason: "hwloc_topology_load with I/O objects failed".to_owned(),
                });
            }
            Ok(loaded)
        }

        /// Objects at a (virtual) depth.
        fn objects(&self, depth: c_int) -> Vec<&HwlocObject> {
            // SAFETY: the topology is loaded; libhwloc returns valid objects for indexes below
            // the count, which live as long as the topology.
            unsafe {
                let count = hwloc_get_nbobjs_by_depth(self.topology, depth);
                (0..count)
                    .filter_map(|index| {
                        hwloc_get_obj_by_depth(self.topology, depth, index).as_ref()
                    })
                    .collect()
            }
        }

        /// Memory of each NUMA node in bytes (`local_memory`, which libhwloc reads from
        /// `MemTotal` of the node's `meminfo`), by os index.
        pub(super) fn node_memory(&self) -> BTreeMap<usize, u64> {
            self.objects(DEPTH_NUMANODE)
                .into_iter()
                .filter(|node| node.kind == OBJ_NUMANODE && !node.attr.is_null())
                .map(|node| {
                    // SAFETY: a NUMA node's attributes start with `local_memory`, a u64.
                    let local_memory = unsafe { *node.attr.cast::<u64>() };
                    (node.os_index as usize, local_memory)
                })
                .collect()
        }

        /// Returns the operating system's NUMA distance matrix in the order of `node_ids`. The
        /// matrix is empty when libhwloc has none or it does not cover exactly these nodes.
        pub(super) fn node_distances(&self, node_ids: &[usize]) -> Vec<Vec<u32>> {
            let mut count: c_uint = 1;
            let mut distances: *mut HwlocDistances = std::ptr::null_mut();
            // SAFETY: `count` is 1 and `distances` has room for one pointer.
            let status = unsafe {
                hwloc_distances_get_by_type(
                    self.topology,
                    OBJ_NUMANODE,
                    &mut count,
                    &mut distances,
                    DISTANCES_KIND_FROM_OS,
                    0,
                )
            };
            if status != 0 || count == 0 || distances.is_null() {
                return Vec::new();
            }
            // SAFETY: libhwloc returned one valid matrix, released below.
            let matrix = unsafe { matrix_by_node(&*distances, node_ids) };
            // SAFETY: `distances` came from hwloc_distances_get_by_type on this topology.
            unsafe { hwloc_distances_release(self.topology, distances) };
            matrix
        }

        /// PCI functions: devices, and bridges whose upstream side is PCI, sorted by address.
        pub(super) fn pci_devices(&self) -> Vec<PciDevice> {
            let mut devices = Vec::new();
            for object in self.objects(DEPTH_PCI_DEVICE) {
                if object.kind == OBJ_PCI_DEVICE && !object.attr.is_null() {
                    // SAFETY: a PCI device's attributes are `struct hwloc_pcidev_attr_s`.
                    devices.extend(device_of(unsafe { &*object.attr.cast::<PciAttributes>() }));
                }
            }
            for object in self.objects(DEPTH_BRIDGE) {
                if object.kind != OBJ_BRIDGE || object.attr.is_null() {
                    continue;
                }
                // SAFETY: a bridge's attributes are `struct hwloc_bridge_attr_s`.
                let bridge = unsafe { &*object.attr.cast::<BridgeAttributes>() };
                if bridge.upstream_type == BRIDGE_PCI {
                    devices.extend(device_of(&bridge.upstream));
                }
            }
            devices.sort_by_key(|device| device.address);
            devices
        }
    }

    /// Reorders a libhwloc matrix (objects in libhwloc's order) into the order of `node_ids`.
    ///
    /// # Safety
    ///
    /// `distances` must be a matrix that libhwloc returned and has not released.
    unsafe fn matrix_by_node(distances: &HwlocDistances, node_ids: &[usize]) -> Vec<Vec<u32>> {
        let count = distances.object_count as usize;
        // SAFETY: libhwloc's matrix has `count` objects and `count * count` values.
        let (objects, values) = unsafe {
            (
                std::slice::from_raw_parts(distances.objects, count),
                std::slice::from_raw_parts(distances.values, count * count),
            )
        };
        let positions: Vec<Option<usize>> = node_ids
            .iter()
            .map(|id| {
                objects.iter().position(|&object| {
                    // SAFETY: the matrix's objects are valid NUMA node objects.
                    unsafe { object.as_ref() }.is_some_and(|node| node.os_index as usize == *id)
                })
            })
            .collect();
        if count != node_ids.len() || positions.iter().any(Option::is_none) {
            return Vec::new();
        }
        let positions: Vec<usize> = positions.into_iter().flatten().collect();
        positions
            .iter()
            .map(|&row| {
                positions
                    .iter()
                    .map(|&column| u32::try_from(values[row * count + column]).unwrap_or(u32::MAX))
                    .collect()
            })
            .collect()
    }

    fn device_of(attributes: &PciAttributes) -> Option<PciDevice> {
        let address = PciAddress::new(
            u32::from(attributes.domain),
            attributes.bus,
            attributes.device,
            attributes.function,
        )?;
        Some(PciDevice {
            address,
            class: u32::from(attributes.class_id) << 8,
            vendor: attributes.vendor_id,
            device: attributes.device_id,
            driver: None,
            numa_node: None,
            local_cpus: None,
            net: Vec::new(),
            sriov_totalvfs: None,
            sriov_numvfs: None,
        })
    }
}
