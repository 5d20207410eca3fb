//! Pinning threads to CPUs (`sched_setaffinity(2)`) and binding their memory to NUMA nodes
//! (`set_mempolicy(2)`), like `taskset` and `numactl --membind/--preferred`.
//!
//! CPU masks are sized for the highest CPU of the set, so machines with more than 1,024 CPUs
//! work (a fixed `cpu_set_t` would drop CPUs from 1,024 up).

use std::io;

use telco_core::{CpuSet, HostRoot, NodeMask};

use crate::error::PinError;

const MPOL_DEFAULT: libc::c_int = 0;
const MPOL_PREFERRED: libc::c_int = 1;
const MPOL_BIND: libc::c_int = 2;

/// Kernel CPU mask words (bit `n` of word `n / 64` is CPU `n`), at least `minimum_words` long.
fn mask_words(cpus: &CpuSet, minimum_words: usize) -> Vec<libc::c_ulong> {
    let words = cpus
        .last()
        .map_or(1, |last| last / 64 + 1)
        .max(minimum_words);
    let mut mask = vec![0; words];
    for cpu in cpus.iter() {
        mask[cpu / 64] |= 1 << (cpu % 64);
    }
    mask
}

/// Pins thread `tid` (0 for the calling thread) to `cpus`, like `taskset -p -c LIST TID`.
pub fn pin_thread(tid: i32, cpus: &CpuSet) -> Result<(), PinError> {
    if cpus.is_empty() {
        return Err(PinError::BadCpuSet { cpus: cpus.clone() });
    }
    let mask = mask_words(cpus, 1);
    let bytes = std::mem::size_of_val(mask.as_slice());
    // SAFETY: `mask` is a live buffer of `bytes` bytes that the kernel only reads.
    let result = unsafe { libc::sched_setaffinity(tid, bytes, mask.as_ptr().cast()) };
    if result != 0 {
        return Err(PinError::SetAffinity {
            tid,
            cpus: cpus.clone(),
            source: io::Error::last_os_error(),
        });
    }
    tracing::debug!(tid, cpus = %cpus, "pinned thread");
    Ok(())
}

/// Pins the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &CpuSet) -> Result<(), PinError> {
    pin_thread(0, cpus)
}

/// Pins every thread of process `pid` to `cpus` (the threads listed in `/proc/PID/task`),
/// like `taskset -a -p -c LIST PID`.
pub fn pin_process(pid: i32, cpus: &CpuSet) -> Result<(), PinError> {
    let host = HostRoot::system();
    let dir = host.path(format!("/proc/{pid}/task"));
    let entries =
        std::fs::read_dir(&dir).map_err(|source| PinError::ListThreads { pid, source })?;
    for entry in entries {
        let entry = entry.map_err(|source| PinError::ListThreads { pid, source })?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        match pin_thread(tid, cpus) {
            // A thread that exited since the listing is not an error.
            Err(PinError::SetAffinity { source, .. })
                if source.raw_os_error() == Some(libc::ESRCH) => {}
            other => other?,
        }
    }
    Ok(())
}

/// Returns the CPUs thread `tid` (0 for the calling thread) may run on.
pub fn thread_affinity(tid: i32) -> Result<CpuSet, PinError> {
    let mut words = 16;
    loop {
        let mut mask: Vec<libc::c_ulong> = vec![0; words];
        let bytes = std::mem::size_of_val(mask.as_slice());
        // SAFETY: the kernel writes at most `bytes` bytes into `mask`, which is that long.
        let result = unsafe { libc::sched_getaffinity(tid, bytes, mask.as_mut_ptr().cast()) };
        if result == 0 {
            let mut cpus = CpuSet::new();
            for (index, word) in mask.iter().enumerate() {
                for bit in 0..64 {
                    if word & (1 << bit) != 0 && index * 64 + bit <= CpuSet::MAX_ID {
                        cpus.insert(index * 64 + bit);
                    }
                }
            }
            return Ok(cpus);
        }
        let error = io::Error::last_os_error();
        // EINVAL: the mask is smaller than the kernel's; try a larger one.
        if error.raw_os_error() == Some(libc::EINVAL) && words < 1024 {
            words *= 4;
            continue;
        }
        return Err(PinError::GetAffinity { tid, source: error });
    }
}

/// The memory policy of [`set_memory_policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// Allocate only from the given nodes (`MPOL_BIND`, `numactl --membind`).
    Bind,
    /// Allocate from the given node first, elsewhere when it is full (`MPOL_PREFERRED`,
    /// `numactl --preferred`); takes one node.
    Preferred,
}

/// Sets the calling thread's memory policy for `nodes`, like `numactl --membind` or
/// `--preferred` for the rest of the thread's life.
pub fn set_memory_policy(policy: MemoryPolicy, nodes: &NodeMask) -> Result<(), PinError> {
    let (mode, name) = match policy {
        MemoryPolicy::Bind => (MPOL_BIND, "bind"),
        MemoryPolicy::Preferred => {
            if nodes.len() != 1 {
                return Err(PinError::PreferredNeedsOneNode {
                    nodes: nodes.clone(),
                });
            }
            (MPOL_PREFERRED, "preferred")
        }
    };
    let words = nodes.last().map_or(1, |last| last / 64 + 1);
    let mut mask: Vec<libc::c_ulong> = vec![0; words];
    for node in nodes.iter() {
        mask[node / 64] |= 1 << (node % 64);
    }
    // The kernel reads `maxnode - 1` bits.
    let max_node = libc::c_ulong::try_from(words * 64 + 1).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: set_mempolicy reads `max_node - 1` bits from `mask`, which contains `words * 64`.
    let result = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), max_node) };
    if result != 0 {
        return Err(PinError::SetMempolicy {
            mode: name,
            nodes: nodes.clone(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Resets the calling thread's memory policy to the default (local allocation).
pub fn reset_memory_policy() -> Result<(), PinError> {
    // SAFETY: MPOL_DEFAULT takes no node mask; a null pointer with maxnode 0 is allowed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_DEFAULT,
            std::ptr::null::<libc::c_ulong>(),
            0,
        )
    };
    if result != 0 {
        return Err(PinError::SetMempolicy {
            mode: "default",
            nodes: NodeMask::new(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_grow_past_1024_cpus() {
        let cpus: CpuSet = "0,1500".parse().unwrap();
        let mask = mask_words(&cpus, 1);
        assert_eq!(mask.len(), 24);
        assert_eq!(mask[0], 1);
        assert_eq!(mask[1500 / 64], 1 << (1500 % 64));
    }

    #[test]
    fn empty_cpu_set_is_refused_before_the_syscall() {
        assert!(matches!(
            pin_current_thread(&CpuSet::new()),
            Err(PinError::BadCpuSet { .. })
        ));
    }

    #[test]
    fn preferred_policy_takes_one_node() {
        let nodes: NodeMask = "0-1".parse().unwrap();
        assert!(matches!(
            set_memory_policy(MemoryPolicy::Preferred, &nodes),
            Err(PinError::PreferredNeedsOneNode { .. })
        ));
    }
}
