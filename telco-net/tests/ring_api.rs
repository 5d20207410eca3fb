//! API tests of in-process rings: sizes, bulk and burst semantics, zero-copy, threads, and a
//! property test against a `VecDeque` model.

#![allow(clippy::cast_possible_truncation)]

use std::collections::VecDeque;

use proptest::prelude::*;
use telco_net::ring::{Multi, RingBuilder, RingError, Single};

#[test]
fn power_of_two_count_gives_count_minus_one_capacity() {
    let (producer, _consumer) = RingBuilder::new(1024)
        .build::<u64, Single, Single>()
        .unwrap();
    assert_eq!(producer.capacity(), 1023);
    assert_eq!(producer.size(), 1024);
}

#[test]
fn exact_size_gives_requested_capacity() {
    let (mut producer, _consumer) = RingBuilder::new(1000)
        .exact_size(true)
        .build::<u32, Single, Single>()
        .unwrap();
    assert_eq!(producer.capacity(), 1000);
    assert_eq!(producer.size(), 1024);
    let values: Vec<u32> = (0..1000).collect();
    assert_eq!(producer.enqueue_bulk(&values), 1000);
    assert_eq!(producer.enqueue(7), Err(7));
    assert!(producer.is_full());
}

#[test]
fn exact_size_of_power_of_two_doubles_slots() {
    let (producer, _consumer) = RingBuilder::new(1024)
        .exact_size(true)
        .build::<u8, Multi, Multi>()
        .unwrap();
    assert_eq!(producer.capacity(), 1024);
    assert_eq!(producer.size(), 2048);
}

#[test]
fn non_power_of_two_count_is_rejected() {
    let error = RingBuilder::new(1000)
        .build::<u64, Single, Single>()
        .unwrap_err();
    assert!(
        matches!(error, RingError::CountNotPowerOfTwo { count: 1000 }),
        "{error}"
    );
}

#[test]
fn zero_and_oversized_counts_are_rejected() {
    for count in [0, 1, 1 << 31 | 1 << 30, u32::MAX] {
        let result = RingBuilder::new(count).build::<u8, Single, Single>();
        assert!(result.is_err(), "count {count} accepted");
    }
    let result = RingBuilder::new(u32::MAX)
        .exact_size(true)
        .build::<u8, Single, Single>();
    assert!(result.is_err());
}

#[test]
fn bulk_is_all_or_nothing_and_burst_takes_what_fits() {
    let (mut producer, mut consumer) = RingBuilder::new(8).build::<u64, Multi, Multi>().unwrap();
    assert_eq!(producer.enqueue_bulk(&[1, 2, 3, 4, 5]), 5);
    assert_eq!(producer.enqueue_bulk(&[6, 7, 8]), 0, "only 2 of 3 fit");
    assert_eq!(producer.count(), 5);
    assert_eq!(producer.enqueue_burst(&[6, 7, 8]), 2);
    assert_eq!(producer.free_count(), 0);

    let mut out = [0u64; 10];
    assert_eq!(consumer.dequeue_bulk(&mut out), 0, "only 7 of 10 present");
    assert_eq!(consumer.dequeue_bulk(&mut out[..3]), 3);
    assert_eq!(&out[..3], &[1, 2, 3]);
    assert_eq!(consumer.dequeue_burst(&mut out), 4);
    assert_eq!(&out[..4], &[4, 5, 6, 7]);
    assert_eq!(consumer.dequeue(), None);
}

#[test]
fn large_elements_wrap_around_intact() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Packet {
        id: u64,
        payload: [u8; 100],
    }
    let (mut producer, mut consumer) = RingBuilder::new(4)
        .build::<Packet, Single, Single>()
        .unwrap();
    for id in 0..100u64 {
        let packet = Packet {
            id,
            payload: [u8::try_from(id % 251).unwrap(); 100],
        };
        assert_eq!(producer.enqueue_burst(&[packet, packet]), 2);
        assert_eq!(consumer.dequeue(), Some(packet));
        assert_eq!(consumer.dequeue(), Some(packet));
    }
}

#[test]
fn zero_copy_enqueue_wraps_into_second_slice() {
    let (mut producer, mut consumer) = RingBuilder::new(8).build::<u32, Single, Single>().unwrap();
    assert_eq!(producer.enqueue_bulk(&[0; 6]), 6);
    let mut drain = [0u32; 6];
    assert_eq!(consumer.dequeue_bulk(&mut drain), 6);

    let mut reservation = producer.enqueue_zc_bulk(5).expect("5 free slots");
    let (first, second) = reservation.slots();
    assert_eq!((first.len(), second.len()), (2, 3));
    for (i, slot) in first.iter_mut().chain(second.iter_mut()).enumerate() {
        slot.write(u32::try_from(i).unwrap() + 100);
    }
    reservation.finish(4);
    assert_eq!(consumer.count(), 4);

    let loan = consumer.dequeue_zc_burst(10);
    let (first, second) = loan.elements();
    let seen: Vec<u32> = first.iter().chain(second).copied().collect();
    assert_eq!(seen, [100, 101, 102, 103]);
    loan.finish(0);
    assert_eq!(consumer.count(), 4, "finish(0) is a peek");

    let loan = consumer.dequeue_zc_bulk(3).expect("3 present");
    loan.finish(3);
    assert_eq!(consumer.dequeue(), Some(103));
}

#[test]
fn dropped_zero_copy_reservation_publishes_nothing() {
    let (mut producer, consumer) = RingBuilder::new(4).build::<u16, Single, Single>().unwrap();
    {
        let mut reservation = producer.enqueue_zc_burst(8);
        assert_eq!(reservation.len(), 3);
        reservation.slots().0[0].write(1);
    }
    assert!(consumer.is_empty());
    assert!(producer.enqueue_zc_bulk(4).is_none());
}

fn run_threads<P: telco_net::ring::SyncMode, C: telco_net::ring::SyncMode>(
    producers: Vec<telco_net::ring::Producer<u64, P>>,
    consumers: Vec<telco_net::ring::Consumer<u64, C>>,
    per_producer: u64,
    burst: usize,
) {
    let producer_count = producers.len() as u64;
    let total = per_producer * producer_count;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    std::thread::scope(|scope| {
        for (index, mut producer) in producers.into_iter().enumerate() {
            scope.spawn(move || {
                let tag = (index as u64) << 48;
                let mut next = 0;
                while next < per_producer {
                    let n = (burst as u64).min(per_producer - next);
                    let batch: Vec<u64> = (next..next + n).map(|i| tag | i).collect();
                    next += producer.enqueue_burst(&batch) as u64;
                }
            });
        }
        let mut handles = Vec::new();
        for mut consumer in consumers {
            let received = std::sync::Arc::clone(&received);
            handles.push(scope.spawn(move || {
                let mut seen = Vec::new();
                let mut buffer = vec![0u64; burst];
                while received.load(std::sync::atomic::Ordering::Relaxed) < total {
                    let n = consumer.dequeue_burst(&mut buffer);
                    received.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    seen.extend_from_slice(&buffer[..n]);
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
                seen
            }));
        }
        let mut all: Vec<u64> = Vec::new();
        for handle in handles {
            let seen = handle.join().unwrap();
            // Each consumer sees each producer's elements in increasing order.
            let mut last = vec![None; producer_count as usize];
            for value in &seen {
                let producer = usize::try_from(value >> 48).unwrap();
                let sequence = value & 0xffff_ffff_ffff;
                if let Some(previous) = last[producer] {
                    assert!(sequence > previous, "producer {producer} out of order");
                }
                last[producer] = Some(sequence);
            }
            all.extend(seen);
        }
        all.sort_unstable();
        let mut expected: Vec<u64> = (0..producer_count)
            .flat_map(|p| (0..per_producer).map(move |i| p << 48 | i))
            .collect();
        expected.sort_unstable();
        assert_eq!(all.len(), expected.len());
        assert!(all == expected, "elements lost or duplicated");
    });
}

#[test]
fn mp_mc_threads_deliver_every_element_once() {
    let (producer, consumer) = RingBuilder::new(64).build::<u64, Multi, Multi>().unwrap();
    run_threads(
        vec![producer.clone(), producer],
        vec![consumer.clone(), consumer],
        50_000,
        8,
    );
}

#[test]
fn sp_sc_threads_deliver_in_order() {
    let (producer, consumer) = RingBuilder::new(32).build::<u64, Single, Single>().unwrap();
    run_threads(vec![producer], vec![consumer], 200_000, 7);
}

#[derive(Debug, Clone)]
enum Op {
    EnqueueBulk(usize),
    EnqueueBurst(usize),
    DequeueBulk(usize),
    DequeueBurst(usize),
    EnqueueZc(usize, usize),
    DequeueZc(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..12usize).prop_map(Op::EnqueueBulk),
        (0..12usize).prop_map(Op::EnqueueBurst),
        (0..12usize).prop_map(Op::DequeueBulk),
        (0..12usize).prop_map(Op::DequeueBurst),
        (0..12usize, 0..12usize).prop_map(|(n, k)| Op::EnqueueZc(n, k)),
        (0..12usize, 0..12usize).prop_map(|(n, k)| Op::DequeueZc(n, k)),
    ]
}

proptest! {
    #[test]
    fn single_threaded_ring_matches_a_deque(
        count in 1u32..20,
        exact in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let count = if exact { count } else { count.next_power_of_two().max(2) };
        let (mut producer, mut consumer) =
            RingBuilder::new(count).exact_size(exact).build::<u32, Single, Single>().unwrap();
        let capacity = producer.capacity();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::EnqueueBulk(n) | Op::EnqueueBurst(n) => {
                    let values: Vec<u32> = (next..next + n as u32).collect();
                    let free = capacity - model.len();
                    let (done, expected) = match op {
                        Op::EnqueueBulk(_) => (producer.enqueue_bulk(&values), if n <= free { n } else { 0 }),
                        _ => (producer.enqueue_burst(&values), n.min(free)),
                    };
                    prop_assert_eq!(done, expected);
                    model.extend(&values[..done]);
                    next += done as u32;
                }
                Op::DequeueBulk(n) | Op::DequeueBurst(n) => {
                    let mut out = vec![0; n];
                    let (done, expected) = match op {
                        Op::DequeueBulk(_) => (consumer.dequeue_bulk(&mut out), if n <= model.len() { n } else { 0 }),
                        _ => (consumer.dequeue_burst(&mut out), n.min(model.len())),
                    };
                    prop_assert_eq!(done, expected);
                    let want: Vec<u32> = model.drain(..done).collect();
                    prop_assert_eq!(&out[..done], &want[..]);
                }
                Op::EnqueueZc(n, k) => {
                    let mut reservation = producer.enqueue_zc_burst(n);
                    prop_assert_eq!(reservation.len(), n.min(capacity - model.len()));
                    let k = k.min(reservation.len());
                    let (first, second) = reservation.slots();
                    for (i, slot) in first.iter_mut().chain(second.iter_mut()).enumerate() {
                        slot.write(next + i as u32);
                    }
                    reservation.finish(k);
                    model.extend(next..next + k as u32);
                    next += k as u32;
                }
                Op::DequeueZc(n, k) => {
                    let loan = consumer.dequeue_zc_burst(n);
                    prop_assert_eq!(loan.len(), n.min(model.len()));
                    let (first, second) = loan.elements();
                    let seen: Vec<u32> = first.iter().chain(second).copied().collect();
                    let want: Vec<u32> = model.iter().take(seen.len()).copied().collect();
                    prop_assert_eq!(seen, want);
                    let k = k.min(loan.len());
                    loan.finish(k);
                    model.drain(..k);
                }
            }
            prop_assert_eq!(producer.count(), model.len());
            prop_assert_eq!(consumer.free_count(), capacity - model.len());
        }
    }
}
