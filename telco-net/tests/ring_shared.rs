//! Rings in shared mappings: attach validation against hostile headers, hostile indices, and two
//! processes passing elements.

#![allow(clippy::cast_possible_truncation)]

use std::os::fd::OwnedFd;

use telco_net::ring::{
    FLAG_MP_HTS_ENQ, FLAG_MP_RTS_ENQ, FLAG_SC_DEQ, FLAG_SP_ENQ, Multi, MultiHts, MultiRts,
    RingBuilder, RingError, SharedMapping, SharedRing, Single, SyncType,
};

/// Byte offsets of the header fields, as the layout fixes them.
const VERSION: usize = 8;
const FLAGS: usize = 12;
const ELEM_SIZE: usize = 16;
const SLOTS: usize = 24;
const CAPACITY: usize = 28;
const SLOTS_OFFSET: usize = 32;
const PROD_HTD_MAX: usize = 40;
const CONS_HTD_MAX: usize = 44;
const PROD_HEAD: usize = 128;
const PROD_TAIL: usize = 136;
const CONS_HEAD: usize = 256;
const CONS_TAIL: usize = 264;

/// A second mapping of a ring's memfd, through which the test plays a hostile peer.
fn peer_view(ring: &SharedRing<u64>) -> SharedMapping {
    let fd: OwnedFd = ring.fd().try_clone_to_owned().unwrap();
    SharedMapping::map_whole(fd).unwrap()
}

fn poke_u32(view: &SharedMapping, offset: usize, value: u32) {
    assert!(offset + 4 <= view.len());
    // SAFETY: in bounds of the mapping; the test is the only writer.
    unsafe {
        view.base()
            .as_ptr()
            .add(offset)
            .cast::<u32>()
            .write_volatile(value)
    };
}

fn poke_u64(view: &SharedMapping, offset: usize, value: u64) {
    assert!(offset + 8 <= view.len());
    // SAFETY: as in `poke_u32`.
    unsafe {
        view.base()
            .as_ptr()
            .add(offset)
            .cast::<u64>()
            .write_volatile(value)
    };
}

fn peek_u64(view: &SharedMapping, offset: usize) -> u64 {
    assert!(offset + 8 <= view.len());
    // SAFETY: in bounds of the mapping and 8-byte aligned; a volatile read of shared memory.
    unsafe {
        view.base()
            .as_ptr()
            .add(offset)
            .cast::<u64>()
            .read_volatile()
    }
}

fn fresh_ring() -> SharedRing<u64> {
    RingBuilder::new(64)
        .create_memfd::<u64, Single, Single>("ring-test")
        .unwrap()
}

fn attach_after(edit: impl FnOnce(&SharedMapping)) -> Result<SharedRing<u64>, RingError> {
    let ring = fresh_ring();
    let view = peer_view(&ring);
    edit(&view);
    SharedRing::<u64>::attach_fd(ring.fd().try_clone_to_owned().unwrap())
}

#[test]
fn attach_accepts_an_untouched_header() {
    let ring = attach_after(|_| {}).unwrap();
    assert_eq!(ring.capacity(), 63);
}

#[test]
fn attach_rejects_bad_magic() {
    let error = attach_after(|view| poke_u64(view, 0, 0x1234)).unwrap_err();
    assert!(
        matches!(
            error,
            RingError::InvalidHeader {
                reason: "bad magic"
            }
        ),
        "{error}"
    );
}

#[test]
fn attach_rejects_other_version() {
    let error = attach_after(|view| poke_u32(view, VERSION, 99)).unwrap_err();
    assert!(
        matches!(error, RingError::UnsupportedVersion { version: 99, .. }),
        "{error}"
    );
}

#[test]
fn attach_rejects_unknown_flags() {
    let error = attach_after(|view| poke_u32(view, FLAGS, 0x8000_0003)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
}

#[test]
fn attach_rejects_other_element_size() {
    let error = attach_after(|view| poke_u32(view, ELEM_SIZE, 4)).unwrap_err();
    assert!(
        matches!(error, RingError::ElementMismatch { found_size: 4, .. }),
        "{error}"
    );
    let ring = fresh_ring();
    let error = SharedRing::<u32>::attach_fd(ring.fd().try_clone_to_owned().unwrap()).unwrap_err();
    assert!(
        matches!(error, RingError::ElementMismatch { .. }),
        "{error}"
    );
}

#[test]
fn attach_rejects_slot_counts_that_are_not_powers_of_two() {
    let error = attach_after(|view| poke_u32(view, SLOTS, 63)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
    let error = attach_after(|view| poke_u32(view, SLOTS, 0)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
}

#[test]
fn attach_rejects_slots_beyond_the_mapping() {
    let error = attach_after(|view| {
        poke_u32(view, SLOTS, 1 << 31);
        poke_u32(view, CAPACITY, (1 << 31) - 1);
    })
    .unwrap_err();
    assert!(
        matches!(error, RingError::MappingTooSmall { .. }),
        "{error}"
    );
}

#[test]
fn attach_rejects_capacity_that_does_not_match() {
    let error = attach_after(|view| poke_u32(view, CAPACITY, 64)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
    let error = attach_after(|view| poke_u32(view, CAPACITY, u32::MAX)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
}

#[test]
fn attach_rejects_moved_slot_offset() {
    let error = attach_after(|view| poke_u64(view, SLOTS_OFFSET, 1 << 40)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
}

#[test]
fn attach_rejects_a_truncated_file() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(100).unwrap();
    let error = SharedRing::<u64>::attach_fd(OwnedFd::from(file)).unwrap_err();
    assert!(
        matches!(error, RingError::MappingTooSmall { len: 100, .. }),
        "{error}"
    );
    let empty = OwnedFd::from(tempfile::tempfile().unwrap());
    assert!(matches!(
        SharedRing::<u64>::attach_fd(empty),
        Err(RingError::Map { .. })
    ));
}

#[test]
fn attach_rejects_a_mode_the_ring_was_not_made_with() {
    let ring = attach_after(|_| {}).unwrap();
    let error = ring.into_producer::<Multi>().unwrap_err();
    assert!(
        matches!(
            error,
            RingError::ModeMismatch {
                side: "producer",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn attach_rejects_two_modes_for_one_side() {
    for flags in [
        FLAG_SP_ENQ | FLAG_MP_RTS_ENQ | FLAG_SC_DEQ,
        FLAG_MP_RTS_ENQ | FLAG_MP_HTS_ENQ | FLAG_SC_DEQ,
    ] {
        let error = attach_after(|view| poke_u32(view, FLAGS, flags)).unwrap_err();
        assert!(
            matches!(
                error,
                RingError::InvalidHeader {
                    reason: "more than one mode flag for one side"
                }
            ),
            "flags {flags:#x}: {error}"
        );
    }
}

#[test]
fn attach_rejects_head_tail_distances_out_of_range() {
    // A distance on a side that is not in RTS mode.
    let error = attach_after(|view| poke_u32(view, PROD_HTD_MAX, 1)).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
    // A distance beyond the capacity on an RTS side.
    let ring = RingBuilder::new(64)
        .create_memfd::<u64, MultiRts, MultiRts>("ring-rts-htd")
        .unwrap();
    let view = peer_view(&ring);
    poke_u32(&view, CONS_HTD_MAX, 64);
    let error = SharedRing::<u64>::attach_fd(ring.fd().try_clone_to_owned().unwrap()).unwrap_err();
    assert!(matches!(error, RingError::InvalidHeader { .. }), "{error}");
    poke_u32(&view, CONS_HTD_MAX, 63);
    SharedRing::<u64>::attach_fd(ring.fd().try_clone_to_owned().unwrap())
        .expect("a distance equal to the capacity is valid");
}

#[test]
fn rts_and_hts_modes_survive_attach() {
    let ring = RingBuilder::new(64)
        .prod_htd_max(5)
        .create_memfd::<u64, MultiRts, MultiHts>("ring-rts-hts")
        .unwrap();
    let view = peer_view(&ring);
    let attached = SharedRing::<u64>::attach_fd(ring.fd().try_clone_to_owned().unwrap()).unwrap();
    assert_eq!(attached.producer_sync_type(), SyncType::MultiRts);
    assert_eq!(attached.consumer_sync_type(), SyncType::MultiHts);
    // SAFETY: the read is in bounds of the mapping, and no code writes the metadata after creation.
    let htd_max = unsafe {
        view.base()
            .as_ptr()
            .add(PROD_HTD_MAX)
            .cast::<u32>()
            .read_volatile()
    };
    assert_eq!(htd_max, 5, "the header records the producer's distance");

    let error = attached.into_producer::<Multi>().unwrap_err();
    assert!(
        matches!(
            error,
            RingError::ModeMismatch {
                side: "producer",
                ring: SyncType::MultiRts,
                requested: SyncType::Multi,
            }
        ),
        "{error}"
    );
    let attached = SharedRing::<u64>::attach_fd(ring.fd().try_clone_to_owned().unwrap()).unwrap();
    let error = attached.into_consumer::<MultiRts>().unwrap_err();
    assert!(
        matches!(
            error,
            RingError::ModeMismatch {
                side: "consumer",
                ring: SyncType::MultiHts,
                ..
            }
        ),
        "{error}"
    );

    let mut producer = ring.into_producer::<MultiRts>().unwrap();
    let attached = SharedRing::<u64>::attach_fd(view.fd().try_clone_to_owned().unwrap()).unwrap();
    let mut consumer = attached.into_consumer::<MultiHts>().unwrap();
    assert_eq!(producer.enqueue_bulk(&[7, 8, 9]), 3);
    let mut out = [0u64; 4];
    assert_eq!(consumer.dequeue_burst(&mut out), 3);
    assert_eq!(&out[..3], &[7, 8, 9]);

    // RTS words: position 3 after one operation, counted in both head and tail.
    assert_eq!(peek_u64(&view, PROD_HEAD), 3 | 1 << 32);
    assert_eq!(peek_u64(&view, PROD_TAIL), 3 | 1 << 32);
    // HTS word: tail 3 in the low half, head 3 in the high half.
    assert_eq!(peek_u64(&view, CONS_TAIL), 3 | 3 << 32);
}

#[test]
fn hostile_indices_stay_inside_the_ring() {
    let ring = RingBuilder::new(64)
        .create_memfd::<u64, Multi, Multi>("ring-hostile")
        .unwrap();
    let view = peer_view(&ring);
    let (mut producer, mut consumer) = ring.split::<Multi, Multi>().unwrap();
    let mut out = vec![0u64; 1000];
    let hostile = [u32::MAX, 0x8000_0000, 0x7fff_ffff, 12_345_678, 1];
    for &prod in &hostile {
        for &cons in &hostile {
            poke_u64(&view, PROD_HEAD, u64::from(prod));
            poke_u64(&view, PROD_TAIL, u64::from(prod));
            poke_u64(&view, CONS_HEAD, u64::from(cons));
            poke_u64(&view, CONS_TAIL, u64::from(cons));
            assert!(consumer.count() <= 63);
            assert!(consumer.dequeue_burst(&mut out) <= 63);
            assert!(producer.enqueue_burst(&out[..100]) <= 63);
            assert!(producer.free_count() <= 63);
        }
    }
}

/// Arbitrary but self-consistent words (RTS counters equal in head and tail, HTS head equal to
/// tail) keep RTS and HTS sides inside the ring too. Inconsistent words make the side's threads
/// wait, as an unfinished peer operation would.
#[test]
fn hostile_rts_and_hts_words_stay_inside_the_ring() {
    let hostile = [u32::MAX, 0x8000_0000, 0x7fff_ffff, 12_345_678, 1];
    let word = |position: u32, high: u32| u64::from(position) | u64::from(high) << 32;

    let ring = RingBuilder::new(64)
        .prod_htd_max(63)
        .create_memfd::<u64, MultiRts, MultiHts>("ring-hostile-rts")
        .unwrap();
    let view = peer_view(&ring);
    let (mut producer, mut consumer) = ring.split::<MultiRts, MultiHts>().unwrap();
    let mut out = vec![0u64; 1000];
    for &prod in &hostile {
        for &cons in &hostile {
            let counter = prod.rotate_left(7);
            poke_u64(&view, PROD_HEAD, word(prod, counter));
            poke_u64(&view, PROD_TAIL, word(prod, counter));
            poke_u64(&view, CONS_TAIL, word(cons, cons));
            assert!(consumer.count() <= 63);
            assert!(consumer.dequeue_burst(&mut out) <= 63);
            assert!(producer.enqueue_burst(&out[..100]) <= 63);
            assert!(producer.free_count() <= 63);
            assert!(consumer.dequeue_burst(&mut out) <= 63);
        }
    }
}

#[test]
fn ring_in_a_file_is_attached_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let ring = RingBuilder::new(100)
        .exact_size(true)
        .create_file::<[u32; 3], Single, Single>(&path)
        .unwrap();
    let mut producer = ring.into_producer::<Single>().unwrap();
    assert_eq!(producer.enqueue_burst(&[[1, 2, 3], [4, 5, 6]]), 2);
    let attached = SharedRing::<[u32; 3]>::attach_path(&path).unwrap();
    assert_eq!(attached.capacity(), 100);
    let mut consumer = attached.into_consumer::<Single>().unwrap();
    assert_eq!(consumer.dequeue(), Some([1, 2, 3]));
    assert_eq!(consumer.dequeue(), Some([4, 5, 6]));
    assert_eq!(producer.count(), 0);
}

mod host_tier {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::process::Command;

    use super::*;

    const ELEMENTS: u64 = 10_000_000;
    const CHILD_FD_VAR: &str = "TELCO_RING_TEST_CHILD_FD";

    /// The value the producer sends at position `i`, so the consumer can check order and content.
    fn element(i: u64) -> u64 {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7)
    }

    fn produce(fd: i32) {
        // SAFETY: the parent passed this fd number without close-on-exec for us to own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ring = SharedRing::<u64>::attach_fd(fd).expect("attach in the child");
        let mut producer = ring.into_producer::<Single>().unwrap();
        let mut batch = [0u64; 32];
        let mut next = 0;
        while next < ELEMENTS {
            let n = 32.min(ELEMENTS - next) as usize;
            for (slot, i) in batch.iter_mut().zip(next..) {
                *slot = element(i);
            }
            next += producer.enqueue_burst(&batch[..n]) as u64;
        }
    }

    /// The parent creates a ring in a memfd, re-executes this test binary as the producer with
    /// the fd inherited, and consumes and checks 10 million elements.
    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn two_processes_pass_ten_million_elements() {
        if let Ok(fd) = std::env::var(CHILD_FD_VAR) {
            produce(fd.parse().expect("fd number"));
            return;
        }
        let ring = RingBuilder::new(4096)
            .create_memfd::<u64, Single, Single>("ring-2proc")
            .unwrap();
        let child_fd = ring.fd().try_clone_to_owned().unwrap();
        nix::fcntl::fcntl(
            &child_fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "host_tier::two_processes_pass_ten_million_elements",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_FD_VAR, child_fd.as_raw_fd().to_string())
            .spawn()
            .expect("spawn the producer process");
        drop(child_fd);

        let mut consumer = ring.into_consumer::<Single>().unwrap();
        let mut buffer = [0u64; 64];
        let mut received = 0u64;
        let mut checksum = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while received < ELEMENTS {
            let n = consumer.dequeue_burst(&mut buffer);
            for value in &buffer[..n] {
                assert_eq!(
                    *value,
                    element(received),
                    "element {received} wrong or out of order"
                );
                checksum = checksum.wrapping_add(*value);
                received += 1;
            }
            if n == 0 {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        consumer.count() > 0 || received == ELEMENTS,
                        "producer exited with {status} after {received} elements"
                    );
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out after {received} elements"
                );
                std::hint::spin_loop();
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "producer process failed: {status}");
        let expected: u64 = (0..ELEMENTS).map(element).fold(0, u64::wrapping_add);
        assert_eq!(checksum, expected);
        assert_eq!(consumer.dequeue(), None, "no element beyond the last");
    }
}
