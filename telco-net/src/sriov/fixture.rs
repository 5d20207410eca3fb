//! Fixture sysfs trees shaped like real SR-IOV NICs, for tests of code that reads through a
//! [`HostRoot`].
//!
//! [`FixtureHost::standard`] builds a two-socket host with an Intel X710 (i40e, VFs on iavf), an
//! Intel E810 (ice) and a Mellanox ConnectX-5 (mlx5_core) on NUMA nodes 0 and 1, plus a broken
//! and a partial device. [`FixturePf`] builds any other layout. The tree has the kernel's
//! shape: device directories under `/sys/devices/pci0000:XX/`, `/sys/bus/pci/devices/<pci>`
//! links to them, `physfn`, `virtfnN`, `driver` and `iommu_group` links, `net/<ifname>/`
//! directories and `/sys/class/net/<ifname>` links.
//!
//! The tree contains only files: writing `sriov_numvfs` or `drivers_probe` stores the value and
//! creates or binds nothing.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use telco_core::{HostRoot, PciAddress};

/// A fixture VF.
#[derive(Debug, Clone)]
pub struct FixtureVf {
    /// PCI address.
    pub pci: PciAddress,
    /// Bound driver, or `None` for an unbound VF.
    pub driver: Option<String>,
    /// Netdev name, or `None` when the VF has none (DPDK mode or unbound).
    pub netdev: Option<String>,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
}

/// A fixture PF with its VFs.
#[derive(Debug, Clone)]
pub struct FixturePf {
    /// PCI address.
    pub pci: PciAddress,
    /// PCI vendor id.
    pub vendor: u16,
    /// PF device id.
    pub device: u16,
    /// VF device id.
    pub vf_device: u16,
    /// PF driver, or `None` for an unbound PF.
    pub driver: Option<String>,
    /// NUMA node as sysfs shows it (-1 for none).
    pub numa_node: i32,
    /// PF netdev name.
    pub netdev: Option<String>,
    /// `sriov_totalvfs`.
    pub total_vfs: u32,
    /// Link type in `net/<ifname>/type` (1 Ethernet, 32 InfiniBand).
    pub link_type: u32,
    /// The enabled VFs, in index order.
    pub vfs: Vec<FixtureVf>,
}

impl FixturePf {
    /// Creates a PF with no VFs enabled.
    // Each argument is one sysfs attribute of the PF, in the order a table of NICs lists them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pci: &str,
        vendor: u16,
        device: u16,
        vf_device: u16,
        driver: &str,
        numa_node: i32,
        netdev: &str,
        total_vfs: u32,
    ) -> Self {
        FixturePf {
            pci: parse_pci(pci),
            vendor,
            device,
            vf_device,
            driver: Some(driver.to_owned()),
            numa_node,
            netdev: Some(netdev.to_owned()),
            total_vfs,
            link_type: 1,
            vfs: Vec::new(),
        }
    }

    /// Adds a VF.
    pub fn vf(
        mut self,
        pci: &str,
        driver: Option<&str>,
        netdev: Option<&str>,
        iommu_group: Option<u32>,
    ) -> Self {
        self.vfs.push(FixtureVf {
            pci: parse_pci(pci),
            driver: driver.map(str::to_owned),
            netdev: netdev.map(str::to_owned),
            iommu_group,
        });
        self
    }

    /// Writes the PF and its VFs into the tree at `root`.
    pub fn write(&self, root: &Path) -> io::Result<()> {
        let pf_dir = write_device(
            root,
            self.pci,
            self.vendor,
            self.device,
            self.driver.as_deref(),
            self.numa_node,
            None,
        )?;
        fs::write(
            pf_dir.join("sriov_totalvfs"),
            format!("{}\n", self.total_vfs),
        )?;
        fs::write(pf_dir.join("sriov_numvfs"), format!("{}\n", self.vfs.len()))?;
        fs::write(pf_dir.join("sriov_drivers_autoprobe"), "1\n")?;
        if let Some(netdev) = &self.netdev {
            write_netdev(root, self.pci, netdev, self.link_type)?;
        }
        for (index, vf) in self.vfs.iter().enumerate() {
            let vf_dir = write_device(
                root,
                vf.pci,
                self.vendor,
                self.vf_device,
                vf.driver.as_deref(),
                self.numa_node,
                vf.iommu_group,
            )?;
            symlink(format!("../{}", self.pci), vf_dir.join("physfn"))?;
            symlink(
                format!("../{}", vf.pci),
                pf_dir.join(format!("virtfn{index}")),
            )?;
            if let Some(netdev) = &vf.netdev {
                write_netdev(root, vf.pci, netdev, self.link_type)?;
            }
        }
        Ok(())
    }
}

/// A fixture host tree in a directory.
#[derive(Debug)]
pub struct FixtureHost {
    root: PathBuf,
}

impl FixtureHost {
    /// Creates the empty skeleton (`/sys/bus/pci/{devices,drivers}`, `/sys/class/net`,
    /// `drivers_probe`) under `root`, with `vfio-pci`, `iavf`, `igbvf` and `mlx5_core` loaded.
    pub fn empty(root: &Path) -> io::Result<Self> {
        for dir in [
            "sys/bus/pci/devices",
            "sys/class/net",
            "sys/kernel/iommu_groups",
            "dev/vfio",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }
        fs::write(root.join("sys/bus/pci/drivers_probe"), "")?;
        for driver in ["vfio-pci", "iavf", "igbvf", "mlx5_core", "i40e", "ice"] {
            ensure_driver(root, driver)?;
        }
        Ok(FixtureHost {
            root: root.to_owned(),
        })
    }

    /// Builds the standard host:
    ///
    /// | PF | NIC | driver | NUMA | netdev | VFs |
    /// |---|---|---|---|---|---|
    /// | 0000:3b:00.0 | X710 (8086:1572) | i40e | 0 | ens1f0 | 4: 3b:02.0-02.2 on iavf (ens1f0v0-v2), 3b:02.3 on vfio-pci, group 60-63 |
    /// | 0000:3b:00.1 | X710 | i40e | 0 | ens1f1 | none of 64 |
    /// | 0000:5e:00.0 | E810 (8086:1592) | ice | 0 | ens3f0 | 2: 5e:01.0-01.1 on iavf |
    /// | 0000:af:00.0 | ConnectX-5 (15b3:1017) | mlx5_core | 1 | ens2f0 | 2: af:00.2-00.3 on mlx5_core |
    /// | 0000:d8:00.0 | X710, broken | i40e | 1 | ens4f0 | virtfn0 points at a missing VF |
    /// | 0000:d8:00.1 | X710, partial | none | -1 | none | no sriov_numvfs file |
    pub fn standard(root: &Path) -> io::Result<Self> {
        let host = FixtureHost::empty(root)?;
        host.add(
            &FixturePf::new(
                "0000:3b:00.0",
                0x8086,
                0x1572,
                0x154c,
                "i40e",
                0,
                "ens1f0",
                64,
            )
            .vf("0000:3b:02.0", Some("iavf"), Some("ens1f0v0"), Some(60))
            .vf("0000:3b:02.1", Some("iavf"), Some("ens1f0v1"), Some(61))
            .vf("0000:3b:02.2", Some("iavf"), Some("ens1f0v2"), Some(62))
            .vf("0000:3b:02.3", Some("vfio-pci"), None, Some(63)),
        )?;
        host.add(&FixturePf::new(
            "0000:3b:00.1",
            0x8086,
            0x1572,
            0x154c,
            "i40e",
            0,
            "ens1f1",
            64,
        ))?;
        host.add(
            &FixturePf::new(
                "0000:5e:00.0",
                0x8086,
                0x1592,
                0x1889,
                "ice",
                0,
                "ens3f0",
                256,
            )
            .vf("0000:5e:01.0", Some("iavf"), Some("ens3f0v0"), Some(70))
            .vf("0000:5e:01.1", Some("iavf"), Some("ens3f0v1"), Some(71)),
        )?;
        host.add(
            &FixturePf::new(
                "0000:af:00.0",
                0x15b3,
                0x1017,
                0x1018,
                "mlx5_core",
                1,
                "ens2f0",
                8,
            )
            .vf(
                "0000:af:00.2",
                Some("mlx5_core"),
                Some("ens2f0v0"),
                Some(80),
            )
            .vf(
                "0000:af:00.3",
                Some("mlx5_core"),
                Some("ens2f0v1"),
                Some(81),
            ),
        )?;
        host.add_broken_pf()?;
        host.add_partial_pf()?;
        Ok(host)
    }

    /// Adds a PF and its VFs.
    pub fn add(&self, pf: &FixturePf) -> io::Result<()> {
        for driver in pf
            .driver
            .iter()
            .chain(pf.vfs.iter().filter_map(|vf| vf.driver.as_ref()))
        {
            ensure_driver(&self.root, driver)?;
        }
        pf.write(&self.root)
    }

    /// Returns the [`HostRoot`] of the tree.
    pub fn host(&self) -> HostRoot {
        HostRoot::at(&self.root)
    }

    /// Returns the root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a file of the tree by host path, such as `/sys/bus/pci/drivers_probe`.
    pub fn read(&self, host_path: &str) -> String {
        fs::read_to_string(self.host().path(host_path)).unwrap_or_default()
    }

    /// Adds a PF whose `virtfn0` link dangles, as when a VF disappears while the PF is read.
    fn add_broken_pf(&self) -> io::Result<()> {
        let pf = FixturePf::new(
            "0000:d8:00.0",
            0x8086,
            0x1572,
            0x154c,
            "i40e",
            1,
            "ens4f0",
            64,
        );
        pf.write(&self.root)?;
        let dir = self.root.join("sys/bus/pci/devices/0000:d8:00.0");
        fs::write(dir.join("sriov_numvfs"), "1\n")?;
        symlink("../0000:d8:02.0", dir.join("virtfn0"))
    }

    /// Adds a PF with no driver, no netdev, no NUMA node and no `sriov_numvfs` file.
    fn add_partial_pf(&self) -> io::Result<()> {
        let pci = parse_pci("0000:d8:00.1");
        let dir = write_device(&self.root, pci, 0x8086, 0x1572, None, -1, None)?;
        fs::write(dir.join("sriov_totalvfs"), "64\n")
    }
}

fn parse_pci(text: &str) -> PciAddress {
    text.parse().expect("fixture PCI addresses are valid")
}

fn ensure_driver(root: &Path, driver: &str) -> io::Result<()> {
    let dir = root.join("sys/bus/pci/drivers").join(driver);
    fs::create_dir_all(&dir)?;
    for file in ["bind", "unbind", "new_id"] {
        if !dir.join(file).exists() {
            fs::write(dir.join(file), "")?;
        }
    }
    Ok(())
}

/// Writes one PCI device directory and its `/sys/bus/pci/devices` link; returns the directory.
fn write_device(
    root: &Path,
    pci: PciAddress,
    vendor: u16,
    device: u16,
    driver: Option<&str>,
    numa_node: i32,
    iommu_group: Option<u32>,
) -> io::Result<PathBuf> {
    let parent = format!(
        "pci{:04x}:{:02x}",
        pci.domain(),
        pci.bus().saturating_sub(1)
    );
    let relative = format!("devices/{parent}/{pci}");
    let dir = root.join("sys").join(&relative);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("vendor"), format!("0x{vendor:04x}\n"))?;
    fs::write(dir.join("device"), format!("0x{device:04x}\n"))?;
    fs::write(dir.join("class"), "0x020000\n")?;
    fs::write(dir.join("numa_node"), format!("{numa_node}\n"))?;
    fs::write(dir.join("driver_override"), "(null)\n")?;
    if let Some(driver) = driver {
        ensure_driver(root, driver)?;
        symlink(
            format!("../../../bus/pci/drivers/{driver}"),
            dir.join("driver"),
        )?;
    }
    if let Some(group) = iommu_group {
        fs::create_dir_all(root.join(format!("sys/kernel/iommu_groups/{group}/devices")))?;
        symlink(
            format!("../../../kernel/iommu_groups/{group}"),
            dir.join("iommu_group"),
        )?;
    }
    symlink(
        format!("../../../{relative}"),
        root.join(format!("sys/bus/pci/devices/{pci}")),
    )?;
    Ok(dir)
}

fn write_netdev(root: &Path, pci: PciAddress, name: &str, link_type: u32) -> io::Result<()> {
    let device = root.join(format!("sys/bus/pci/devices/{pci}"));
    let dir = device.join("net").join(name);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("type"), format!("{link_type}\n"))?;
    fs::write(dir.join("operstate"), "up\n")?;
    fs::write(dir.join("mtu"), "1500\n")?;
    let canonical = fs::canonicalize(&dir)?;
    let sys = fs::canonicalize(root.join("sys"))?;
    let relative = canonical.strip_prefix(&sys).map_err(io::Error::other)?;
    symlink(
        format!("../../{}", relative.display()),
        root.join(format!("sys/class/net/{name}")),
    )?;
    symlink(format!("../../../{pci}"), dir.join("device"))
}
