//! Reserving hugepages on one NUMA node (`nodeN/hugepages/hugepages-<size>kB/nr_hugepages`).

use telco_core::HostRoot;

use crate::discover::{read_int, read_text};
use crate::error::HugepageError;

/// Sets the pool of `size_kib` pages on `node` to `count` pages, like
/// `echo COUNT > /sys/devices/system/node/nodeN/hugepages/hugepages-SIZEkB/nr_hugepages`.
///
/// The kernel may give fewer pages than asked when memory is short or fragmented: the error
/// [`HugepageError::Short`] then carries the count it could give. The pool keeps those pages,
/// so set the count again to release them. Returns the pages in the pool.
pub fn reserve_hugepages(
    host: &HostRoot,
    node: usize,
    size_kib: u64,
    count: u64,
) -> Result<u64, HugepageError> {
    let pool = format!("/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kib}kB");
    if read_text(host, &format!("{pool}/nr_hugepages"))?.is_none() {
        return Err(HugepageError::NoPool {
            node,
            size_kib,
            path: host.path(&pool),
        });
    }
    let path = format!("{pool}/nr_hugepages");
    host.write(&path, &count.to_string())?;
    let obtained = read_int(host, &path)?
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0);
    if obtained < count {
        return Err(HugepageError::Short {
            node,
            size_kib,
            requested: count,
            obtained,
        });
    }
    tracing::debug!(node, size_kib, count, "reserved hugepages");
    Ok(obtained)
}

/// Pages in the pool of `size_kib` pages on `node`, and how many are free.
pub fn hugepage_counts(
    host: &HostRoot,
    node: usize,
    size_kib: u64,
) -> Result<(u64, u64), HugepageError> {
    let pool = format!("/sys/devices/system/node/node{node}/hugepages/hugepages-{size_kib}kB");
    let read = |name: &str| -> Result<Option<u64>, HugepageError> {
        Ok(read_int(host, &format!("{pool}/{name}"))?.and_then(|value| u64::try_from(value).ok()))
    };
    match (read("nr_hugepages")?, read("free_hugepages")?) {
        (Some(total), free) => Ok((total, free.unwrap_or(0))),
        (None, _) => Err(HugepageError::NoPool {
            node,
            size_kib,
            path: host.path(&pool),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pool_error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = reserve_hugepages(&HostRoot::at(dir.path()), 3, 2048, 4).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("node3/hugepages/hugepages-2048kB"),
            "{message}"
        );
    }

    #[test]
    fn reservation_writes_node_pool() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir
            .path()
            .join("sys/devices/system/node/node1/hugepages/hugepages-2048kB");
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::write(pool.join("nr_hugepages"), "0\n").unwrap();
        let host = HostRoot::at(dir.path());
        assert_eq!(reserve_hugepages(&host, 1, 2048, 16).unwrap(), 16);
        assert_eq!(hugepage_counts(&host, 1, 2048).unwrap(), (16, 0));
    }
}
