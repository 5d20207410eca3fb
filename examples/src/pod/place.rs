//! The placement: a sequence of named steps, each recording in the state file what it is
//! about to make, so that a failure, the command's end, a signal or `vnf-pod down` after a
//! crash undoes everything in reverse.

use std::path::{Path, PathBuf};

use serde::Serialize;
use telco_core::{CpuSet, HostRoot, NodeMask, ResourceRequest, TopologyHint, TopologyHintProvider};
use telco_net::attach::{Attacher, AttachmentSpec};
use telco_net::cni::NetworkStatus;
use telco_net::link::{Dummy, LinkError, Veth};
use telco_net::netns::{NETNS_RUN_DIR, Netlink, Netns};
use telco_topo::topomanager::TopologyManagerOptions;
use telco_topo::{CpuManager, HugepageProvider, Scope, Topology, TopologyManager};

use super::builtin::BuiltinLinks;
use super::cpus::DeviceHints;
use super::spec::{HugepageRequest, NetworkKind, PodSpec};
use super::state::{Mode, PodDir, PodState, PodsLock, cpus_of_other_pods, write_atomically};
use super::teardown::{TeardownContext, Undo, run_teardown};
use super::{PodError, cgroup, cpus, hugepages, networks, signals};

/// The placement that `vnf-pod` prints once the pod is placed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    /// Pod name.
    pub name: String,
    /// The network namespace's name (`ip netns exec NAME ...`).
    pub netns: String,
    /// The pod's exclusive CPUs.
    pub cpus: CpuSet,
    /// The NUMA node of the pod's CPUs; `null` when they span several.
    pub numa_node: Option<usize>,
    /// The hugepages reserved, when the spec requests some.
    pub hugepages: Option<PlacedHugepages>,
    /// The network-status list (`k8s.v1.cni.cncf.io/network-status`).
    pub networks: Vec<NetworkStatus>,
    /// The cpuset cgroup, when a cpuset hierarchy is mounted; pinning is by affinity otherwise.
    pub cgroup: Option<PathBuf>,
}

/// Hugepages reserved for the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlacedHugepages {
    /// NUMA node.
    pub node: usize,
    /// Page size in KiB.
    pub size_kib: u64,
    /// Pages.
    pub count: u64,
}

/// The placement of one pod, step by step.
#[derive(Debug)]
pub struct Placement {
    spec: PodSpec,
    dir: PodDir,
    state: PodState,
    host: HostRoot,
    builtin_links: Option<BuiltinLinks>,
    topology: Option<Topology>,
    cpu_manager: Option<CpuManager>,
    hugepage_provider: Option<HugepageProvider>,
    device: Option<DeviceHints>,
    request: ResourceRequest,
    affinity: Option<TopologyHint>,
    cpus: CpuSet,
    hugepages: Option<PlacedHugepages>,
    netns: Option<Netns>,
    /// The attached networks' kinds. They stay alive until teardown detaches them, since a
    /// memif kind runs the host data plane of a `slave` workload on a thread it owns.
    attachments: Vec<AttachmentSpec>,
    networks: Vec<NetworkStatus>,
    cgroup: Option<PathBuf>,
}

/// One placement step: its name and what it does.
type Step = (&'static str, fn(&mut Placement) -> Result<(), PodError>);

/// The steps, in order.
const STEPS: &[Step] = &[
    ("discover topology", Placement::discover_topology),
    ("collect hints", Placement::collect_hints),
    ("merge hints", Placement::merge_hints),
    ("allocate cpus", Placement::allocate_cpus),
    ("reserve hugepages", Placement::reserve_hugepages),
    ("create namespace", Placement::create_namespace),
    ("create host links", Placement::create_host_links),
    ("attach networks", Placement::attach_networks),
    ("create cgroup", Placement::create_cgroup),
    ("write network status", Placement::write_network_status),
];

impl Placement {
    /// Starts the placement of `spec`: creates the pod directory and the state file.
    ///
    /// `builtin_links` are host links to create first (the built-in spec's bridge and parent).
    pub fn start(
        spec: PodSpec,
        mode: Mode,
        builtin_links: Option<BuiltinLinks>,
    ) -> Result<Placement, PodError> {
        let dir = PodDir::of(&spec.name);
        dir.create(&spec.name)?;
        let state = PodState {
            name: spec.name.clone(),
            mode,
            placer_pid: std::process::id(),
            spec: serde_json::from_str(&spec.to_json()).expect("spec JSON is valid"),
            cpus: None,
            placed: None,
            teardown: Vec::new(),
        };
        let mut placement = Placement {
            spec,
            dir,
            state,
            host: HostRoot::system(),
            builtin_links,
            topology: None,
            cpu_manager: None,
            hugepage_provider: None,
            device: None,
            request: ResourceRequest::default(),
            affinity: None,
            cpus: CpuSet::new(),
            hugepages: None,
            netns: None,
            attachments: Vec::new(),
            networks: Vec::new(),
            cgroup: None,
        };
        placement.record(Undo::RemovePodDir)?;
        Ok(placement)
    }

    /// Runs every step. On failure or a signal it tears down what was made and returns the
    /// error.
    pub fn run_steps(&mut self) -> Result<Placed, PodError> {
        for (name, step) in STEPS {
            if let Some(signal) = signals::received() {
                return Err(self.fail(PodError::Interrupted {
                    signal: signal.as_str(),
                    step: name,
                }));
            }
            tracing::info!(pod = %self.spec.name, step = name, "placement step");
            if let Err(error) = step(self) {
                return Err(self.fail(error));
            }
        }
        let placed = self.placed();
        self.state.placed = Some(serde_json::to_value(&placed).expect("placement serialises"));
        self.save()?;
        Ok(placed)
    }

    /// Returns the pod's spec.
    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// Returns the pod's directory.
    pub fn dir(&self) -> &PodDir {
        &self.dir
    }

    /// Returns the pod's namespace once it is created.
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// Records an undo step and saves the state; call before making what it undoes.
    pub fn record(&mut self, undo: Undo) -> Result<(), PodError> {
        self.state.teardown.push(undo);
        self.save()
    }

    /// Tears the pod down: every recorded step in reverse.
    pub fn teardown(&self) -> Result<(), PodError> {
        let cx = TeardownContext {
            spec: &self.spec,
            dir: &self.dir,
            attachments: Some(&self.attachments),
        };
        run_teardown(&self.state.teardown, &cx)
    }

    fn save(&self) -> Result<(), PodError> {
        self.dir.write_state(&self.state)
    }

    /// Tears down after `error` and returns it; a teardown failure is logged, since the
    /// placement error is the one to report.
    fn fail(&self, error: PodError) -> PodError {
        if let Err(teardown) = self.teardown() {
            tracing::error!(pod = %self.spec.name, error = %super::error::error_chain(&teardown), "teardown after a failed placement left things behind");
        }
        error
    }

    fn placed(&self) -> Placed {
        let nodes = cpus::nodes_of(self.topology(), &self.cpus);
        Placed {
            name: self.spec.name.clone(),
            netns: self.spec.name.clone(),
            cpus: self.cpus.clone(),
            numa_node: nodes.first().filter(|_| nodes.len() == 1),
            hugepages: self.hugepages,
            networks: self.networks.clone(),
            cgroup: self.cgroup.clone(),
        }
    }

    fn topology(&self) -> &Topology {
        self.topology
            .as_ref()
            .expect("the topology is discovered first")
    }

    fn discover_topology(&mut self) -> Result<(), PodError> {
        let topology = Topology::discover(&self.host)
            .map_err(|error| PodError::step("discover topology", "", error))?;
        self.topology = Some(topology);
        Ok(())
    }

    /// Sets up the hint providers: the CPU manager (without the CPUs of other pods), the
    /// hugepage pools, and the device of the network the CPUs align with.
    fn collect_hints(&mut self) -> Result<(), PodError> {
        const STEP: &str = "collect hints";
        let others = cpus_of_other_pods(&self.spec.name)?;
        let topology = self.topology();
        let cpu_manager = cpus::cpu_manager(topology, &self.spec.cpus, &others)
            .map_err(|error| PodError::step(STEP, "cpu manager", error))?;
        let hugepage_provider = self
            .spec
            .hugepages
            .map(|request| hugepage_provider(topology, &request));
        let device = self
            .spec
            .cpus
            .align_with
            .as_ref()
            .and_then(|name| self.spec.network(name))
            .map(|network| DeviceHints::for_network(&self.host, network));

        self.request = cpus::resource_request(
            &self.spec.name,
            &self.spec.cpus,
            self.spec.hugepages.as_ref(),
            device.as_ref(),
        );
        self.cpu_manager = Some(cpu_manager);
        self.hugepage_provider = hugepage_provider;
        self.device = device;
        for provider in self.providers() {
            let hints = provider.topology_hints(&self.request);
            tracing::info!(pod = %self.spec.name, provider = provider.provider_name(), ?hints, "topology hints");
        }
        Ok(())
    }

    fn providers(&self) -> Vec<&dyn TopologyHintProvider> {
        let mut providers: Vec<&dyn TopologyHintProvider> = Vec::new();
        if let Some(manager) = &self.cpu_manager {
            providers.push(manager);
        }
        if let Some(provider) = &self.hugepage_provider {
            providers.push(provider);
        }
        if let Some(device) = &self.device {
            providers.push(device);
        }
        providers
    }

    /// Admits the request through telco-topo's topology manager under the spec's policy.
    fn merge_hints(&mut self) -> Result<(), PodError> {
        const STEP: &str = "merge hints";
        let policy = cpus::policy(self.spec.cpus.policy);
        let nodes: NodeMask = self
            .topology()
            .numa_nodes
            .iter()
            .map(|node| node.id)
            .collect();
        let mut manager = TopologyManager::new(
            policy,
            Scope::Container,
            nodes,
            None,
            &TopologyManagerOptions::default(),
        )
        .map_err(|error| PodError::step(STEP, format!("policy {policy}"), error))?;
        for provider in self.providers() {
            manager.add_provider(provider);
        }
        let merged = manager
            .admit(&self.request)
            .map_err(|error| PodError::step(STEP, format!("policy {policy}"), error))?;
        tracing::info!(pod = %self.spec.name, nodes = %merged.affinity, preferred = merged.preferred, "merged topology hint");
        self.affinity = Some(merged);
        Ok(())
    }

    /// Takes the CPUs under the pods' lock, so that no other placement takes them too, and
    /// records them in the state file before the lock goes.
    fn allocate_cpus(&mut self) -> Result<(), PodError> {
        const STEP: &str = "allocate cpus";
        let _lock = PodsLock::acquire()?;
        let others = cpus_of_other_pods(&self.spec.name)?;
        let affinity = self
            .affinity
            .as_ref()
            .expect("hints are merged first")
            .affinity
            .clone();
        let manager = self
            .cpu_manager
            .as_mut()
            .expect("the CPU manager is set up first");
        let shared = manager.shared_pool().difference(&others);
        manager.set_shared_pool(shared);
        let allocated = manager
            .allocate(&self.spec.name, self.spec.cpus.count, Some(&affinity))
            .map_err(|error| {
                PodError::step(STEP, format!("{} CPUs", self.spec.cpus.count), error)
            })?;
        self.state.cpus = Some(allocated.clone());
        self.save()?;
        self.cpus = allocated;
        Ok(())
    }

    fn reserve_hugepages(&mut self) -> Result<(), PodError> {
        let Some(request) = self.spec.hugepages else {
            return Ok(());
        };
        let node = self.hugepage_node(&request);
        // The pages added are known only after the write: record the most that can be added
        // now, then the real count.
        let index = self.state.teardown.len();
        self.record(Undo::ReleaseHugepages {
            node,
            size_kib: request.size_kib,
            added: 0,
        })?;
        let added = hugepages::reserve(&self.host, node, &request)?;
        self.state.teardown[index] = Undo::ReleaseHugepages {
            node,
            size_kib: request.size_kib,
            added,
        };
        self.save()?;
        self.hugepages = Some(PlacedHugepages {
            node,
            size_kib: request.size_kib,
            count: request.count,
        });
        Ok(())
    }

    /// Chooses the node to take hugepages from: the first node with a pool of the size among the
    /// merged affinity, then the nodes of the pod's CPUs, then all nodes.
    fn hugepage_node(&self, request: &HugepageRequest) -> usize {
        let topology = self.topology();
        let affinity = &self
            .affinity
            .as_ref()
            .expect("hints are merged first")
            .affinity;
        let with_pool = |id: &usize| {
            topology
                .numa_nodes
                .iter()
                .any(|node| node.id == *id && node.hugepage_pool(request.size_kib).is_some())
        };
        affinity
            .iter()
            .find(with_pool)
            .or_else(|| cpus::nodes_of(topology, &self.cpus).iter().find(with_pool))
            .or_else(|| {
                topology
                    .numa_nodes
                    .iter()
                    .map(|node| node.id)
                    .find(with_pool)
            })
            .unwrap_or(0)
    }

    fn create_namespace(&mut self) -> Result<(), PodError> {
        let name = self.spec.name.clone();
        // A namespace of that name that is not the pod's must survive the teardown, so it is
        // rejected before the undo entry exists.
        if Path::new(NETNS_RUN_DIR).join(&name).exists() {
            return Err(PodError::step(
                "create namespace",
                name.as_str(),
                format!("{NETNS_RUN_DIR}/{name} exists already; pick another pod name"),
            ));
        }
        self.record(Undo::DeleteNetns { name: name.clone() })?;
        let mut netns = Netns::create(&name)
            .map_err(|error| PodError::step("create namespace", name.as_str(), error))?;
        netns.persist();
        let netlink = netns
            .netlink()
            .map_err(|error| PodError::step("create namespace", name.as_str(), error))?;
        netlink
            .links()
            .set("lo")
            .up()
            .apply()
            .map_err(|error| PodError::step("create namespace", format!("{name}: lo up"), error))?;
        self.netns = Some(netns);
        Ok(())
    }

    /// Creates the bridges of veth networks that do not exist yet and the built-in spec's
    /// parent link, each recorded for deletion.
    fn create_host_links(&mut self) -> Result<(), PodError> {
        let host =
            Netlink::current().map_err(|error| PodError::step("create host links", "", error))?;
        let links = host.links();
        let bridges: Vec<String> = self
            .spec
            .networks
            .iter()
            .filter_map(|network| match &network.kind {
                NetworkKind::Veth(veth) => veth
                    .bridge
                    .as_ref()
                    .map(|bridge| bridge.as_str().to_owned()),
                _ => None,
            })
            .collect();
        for bridge in bridges {
            let exists = links
                .find(&bridge)
                .map_err(|error| PodError::step("create host links", bridge.as_str(), error))?
                .is_some();
            if exists {
                continue;
            }
            self.record(Undo::DeleteHostLink {
                name: bridge.clone(),
            })?;
            links
                .add(telco_net::link::Bridge::new(&bridge).up())
                .map_err(|error| PodError::step("create host links", bridge.as_str(), error))?;
        }
        if let Some(builtin) = self.builtin_links.clone() {
            self.record(Undo::DeleteHostLink {
                name: builtin.parent.clone(),
            })?;
            create_parent_link(&host, &builtin)?;
        }
        Ok(())
    }

    fn attach_networks(&mut self) -> Result<(), PodError> {
        const STEP: &str = "attach networks";
        let name = self.spec.name.clone();
        let specs = networks::attachment_specs(&self.spec, &self.dir, networks::Purpose::Attach)
            .map_err(|error| PodError::step(STEP, name.as_str(), error))?;
        self.record(Undo::DetachNetworks)?;
        let netns = self.netns.as_ref().expect("the namespace is created first");
        let attacher = Attacher::new(netns, &networks::container_id(&name))
            .map_err(|error| PodError::step(STEP, name.as_str(), error))?;
        self.networks = attacher
            .attach(&specs)
            .map_err(|error| PodError::step(STEP, name.as_str(), error))?;
        self.attachments = specs;
        Ok(())
    }

    fn create_cgroup(&mut self) -> Result<(), PodError> {
        let mems = cpus::nodes_of(self.topology(), &self.cpus);
        let mems = if mems.is_empty() {
            NodeMask::from_node(0)
        } else {
            mems
        };
        // NOTE: the undo entry can only be recorded after telco-topo made the directory, so a
        // crash in between leaves an empty cgroup named after the pod.
        match cgroup::create(&self.host, &self.spec.name, &self.cpus, &mems)? {
            Some(path) => {
                self.record(Undo::RemoveCgroup { path: path.clone() })?;
                self.cgroup = Some(path);
            }
            None => {
                tracing::info!(pod = %self.spec.name, "no cpuset cgroup hierarchy; pinning by affinity only");
            }
        }
        Ok(())
    }

    fn write_network_status(&mut self) -> Result<(), PodError> {
        let text = serde_json::to_vec_pretty(&self.networks).expect("network status serialises");
        write_atomically(&self.dir.network_status_file(), &text)
    }

    /// Records the workload so that teardown stops it.
    pub fn record_workload(&mut self, pid: i32, start_ticks: u64) -> Result<(), PodError> {
        self.record(Undo::StopWorkload { pid, start_ticks })
    }

    /// Returns the environment the command gets: the network-status list and where it is on disk,
    /// and the pod's CPUs and node.
    pub fn workload_env(&self, placed: &Placed) -> Vec<(String, String)> {
        let mut env = vec![
            ("TELCO_POD_NAME".to_owned(), placed.name.clone()),
            (
                "TELCO_NETWORK_STATUS".to_owned(),
                serde_json::to_string(&placed.networks).expect("network status serialises"),
            ),
            (
                "TELCO_NETWORK_STATUS_FILE".to_owned(),
                self.dir.network_status_file().display().to_string(),
            ),
            ("TELCO_CPUS".to_owned(), placed.cpus.to_string()),
        ];
        if let Some(node) = placed.numa_node {
            env.push(("TELCO_NUMA_NODE".to_owned(), node.to_string()));
        }
        env
    }

    /// Returns the cgroup made for the pod, if any.
    pub fn cgroup(&self) -> Option<&std::path::Path> {
        self.cgroup.as_deref()
    }

    /// Returns the CPUs allocated to the pod.
    pub fn cpus(&self) -> &CpuSet {
        &self.cpus
    }
}

/// Builds the hint provider of the hugepage pools. When no node has the pages free, every node with a
/// pool of the size counts as able to hold them, because the reserve step grows the chosen
/// node's pool.
fn hugepage_provider(topology: &Topology, request: &HugepageRequest) -> HugepageProvider {
    let mut provider = HugepageProvider::from_topology(topology);
    if provider.hints(request.size_kib, request.count).is_empty() {
        for node in &topology.numa_nodes {
            if let Some(pool) = node.hugepage_pool(request.size_kib) {
                let total = pool.total.max(request.count);
                provider.set_pool(node.id, request.size_kib, request.count, total);
            }
        }
    }
    provider
}

/// Creates the built-in spec's macvlan parent: a dummy link, or a veth pair where the kernel
/// has no dummy driver.
fn create_parent_link(host: &Netlink, names: &BuiltinLinks) -> Result<(), PodError> {
    const STEP: &str = "create host links";
    let links = host.links();
    match links.add(Dummy::new(&names.parent).up()) {
        Ok(()) => return Ok(()),
        Err(LinkError::KindNotSupported { .. }) => {
            tracing::info!(link = %names.parent, "no dummy link support; using a veth pair as the macvlan parent");
        }
        Err(error) => return Err(PodError::step(STEP, names.parent.as_str(), error)),
    }
    links
        .add(Veth::new(&names.parent, &names.parent_peer).up())
        .map_err(|error| PodError::step(STEP, names.parent.as_str(), error))?;
    links
        .set(&names.parent_peer)
        .up()
        .apply()
        .map_err(|error| PodError::step(STEP, names.parent_peer.as_str(), error))
}
