//! Growing a node's hugepage pool for the pod, and shrinking it again on teardown, with
//! telco-topo's pool access.

use telco_core::HostRoot;
use telco_topo::hugepages::{hugepage_counts, reserve_hugepages};

use super::PodError;
use super::spec::HugepageRequest;

/// Makes `request.count` free pages exist in `node`'s pool, growing `nr_hugepages` by the
/// shortfall. Returns the pages added, which [`release`] takes away again.
///
/// Pages that are free already are not set aside: another workload may still map them, as
/// without a hugetlb cgroup limit nothing stops it.
pub fn reserve(host: &HostRoot, node: usize, request: &HugepageRequest) -> Result<u64, PodError> {
    const STEP: &str = "reserve hugepages";
    let context = format!("node {node}, {} x {} KiB", request.count, request.size_kib);
    let (total, free) = hugepage_counts(host, node, request.size_kib)
        .map_err(|error| PodError::step(STEP, context.clone(), error))?;
    if free >= request.count {
        return Ok(0);
    }
    let target_total = total + (request.count - free);
    if let Err(error) = reserve_hugepages(host, node, request.size_kib, target_total) {
        // The kernel may have grown the pool part of the way: give those pages back.
        let _ = reserve_hugepages(host, node, request.size_kib, total);
        return Err(PodError::step(STEP, context, error));
    }
    Ok(target_total - total)
}

/// Shrinks `node`'s pool by `added` pages; nothing to do for 0.
pub fn release(node: usize, size_kib: u64, added: u64) -> Result<(), PodError> {
    const STEP: &str = "release hugepages";
    if added == 0 {
        return Ok(());
    }
    let host = HostRoot::system();
    let context = format!("node {node}, {added} x {size_kib} KiB");
    let (total, _) = hugepage_counts(&host, node, size_kib)
        .map_err(|error| PodError::step(STEP, context.clone(), error))?;
    let target = total.saturating_sub(added);
    reserve_hugepages(&host, node, size_kib, target)
        .map(|_| ())
        .map_err(|error| PodError::step(STEP, context, error))
}
