//! Atomics and cells that loom replaces when the crate is built with `--cfg loom`.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

/// Hints the CPU that the caller spins, or yields to loom's scheduler under the model checker.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(all(loom, test))]
    loom::thread::yield_now();
    #[cfg(not(all(loom, test)))]
    std::hint::spin_loop();
}
