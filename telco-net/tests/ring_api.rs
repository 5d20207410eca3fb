//! API tests of in-process rings: sizes, bulk and burst semantics, zero-copy, threads, and a
//! property test against a `VecDeque` model.

#![allow(clippy::cast_possible_truncation)]

use std::collections::VecDeque;

use proptest::prelude::*;
use telco_net::ring::{
    Consumer, Multi, MultiHts, MultiRts, Producer, RingBuilder, RingError, Single, SyncMode,
    SyncType,
};

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

fn run_threads<P: SyncMode, C: SyncMode>(
    producers: Vec<Producer<u64, P>>,
    consumers: Vec<Consumer<u64, C>>,
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

/// Runs two producers and two consumers on one ring, sharing each side's handle, with 50 000
/// elements per producer; `burst` as in [`run_threads`].
fn run_two_by_two<P: SyncMode, C: SyncMode>(
    producer: Producer<u64, P>,
    consumer: Consumer<u64, C>,
    burst: usize,
) where
    Producer<u64, P>: Clone,
    Consumer<u64, C>: Clone,
{
    run_threads(
        vec![producer.clone(), producer],
        vec![consumer.clone(), consumer],
        50_000,
        burst,
    );
}

#[test]
fn mp_mc_threads_deliver_every_element_once() {
    let (producer, consumer) = RingBuilder::new(64).build::<u64, Multi, Multi>().unwrap();
    run_two_by_two(producer, consumer, 8);
}

#[test]
fn rts_threads_deliver_every_element_once() {
    let (producer, consumer) = RingBuilder::new(64)
        .build::<u64, MultiRts, MultiRts>()
        .unwrap();
    run_two_by_two(producer, consumer, 8);
}

#[test]
fn hts_threads_deliver_every_element_once() {
    let (producer, consumer) = RingBuilder::new(64)
        .build::<u64, MultiHts, MultiHts>()
        .unwrap();
    run_two_by_two(producer, consumer, 8);
}

#[test]
fn mixed_modes_deliver_every_element_once() {
    let (producer, consumer) = RingBuilder::new(64)
        .prod_htd_max(1)
        .build::<u64, MultiRts, MultiHts>()
        .unwrap();
    run_two_by_two(producer, consumer, 5);
    let (producer, consumer) = RingBuilder::new(64)
        .cons_htd_max(64)
        .build::<u64, MultiHts, MultiRts>()
        .unwrap();
    run_two_by_two(producer, consumer, 5);
}

/// Returns the `i`-th element of producer `p`, distinct per producer and position.
fn stress_element(p: u64, i: u64) -> u64 {
    (p << 40 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Runs 4 producers and 4 consumers, passing 4 x 50 000 elements in bulks of 8, and checks the
/// count, the sum and the xor of what the consumers received. There are more threads than
/// cores, so threads are preempted in the middle of operations.
fn oversubscribed_stress<P: SyncMode, C: SyncMode>(builder: RingBuilder)
where
    Producer<u64, P>: Clone,
    Consumer<u64, C>: Clone,
{
    const THREADS: u64 = 4;
    const PER_PRODUCER: u64 = 50_000;
    const BULK: usize = 8;
    let total = THREADS * PER_PRODUCER;
    let (producer, consumer) = builder.build::<u64, P, C>().unwrap();
    let received = std::sync::atomic::AtomicU64::new(0);
    let sums: Vec<(u64, u64, u64)> = std::thread::scope(|scope| {
        for p in 0..THREADS {
            let mut producer = producer.clone();
            scope.spawn(move || {
                let mut batch = [0u64; BULK];
                let mut next = 0;
                while next < PER_PRODUCER {
                    for (slot, i) in batch.iter_mut().zip(next..) {
                        *slot = stress_element(p, i);
                    }
                    let n = BULK.min((PER_PRODUCER - next) as usize);
                    if producer.enqueue_bulk(&batch[..n]) == n {
                        next += n as u64;
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let mut consumer = consumer.clone();
                let received = &received;
                scope.spawn(move || {
                    let (mut count, mut sum, mut xor) = (0u64, 0u64, 0u64);
                    let mut buffer = [0u64; BULK];
                    while received.load(std::sync::atomic::Ordering::Relaxed) < total {
                        let n = consumer.dequeue_burst(&mut buffer);
                        if n == 0 {
                            std::thread::yield_now();
                            continue;
                        }
                        received.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        for value in &buffer[..n] {
                            count += 1;
                            sum = sum.wrapping_add(*value);
                            xor ^= *value;
                        }
                    }
                    (count, sum, xor)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut count, mut sum, mut xor) = (0u64, 0u64, 0u64);
    for (c, s, x) in sums {
        count += c;
        sum = sum.wrapping_add(s);
        xor ^= x;
    }
    let expected = (0..THREADS).flat_map(|p| (0..PER_PRODUCER).map(move |i| stress_element(p, i)));
    let (expected_sum, expected_xor) =
        expected.fold((0u64, 0u64), |(s, x), v| (s.wrapping_add(v), x ^ v));
    assert_eq!(count, total, "elements lost or duplicated");
    assert_eq!(sum, expected_sum, "sum of elements differs");
    assert_eq!(xor, expected_xor, "xor of elements differs");
    assert!(consumer.is_empty());
}

#[test]
fn rts_stress_with_more_threads_than_cores() {
    oversubscribed_stress::<MultiRts, MultiRts>(RingBuilder::new(1024));
}

#[test]
fn hts_stress_with_more_threads_than_cores() {
    oversubscribed_stress::<MultiHts, MultiHts>(RingBuilder::new(1024));
}

#[test]
fn mp_mc_stress_with_more_threads_than_cores() {
    oversubscribed_stress::<Multi, Multi>(RingBuilder::new(1024));
}

#[test]
fn htd_max_is_rejected_for_sides_not_in_rts_mode() {
    let error = RingBuilder::new(64)
        .prod_htd_max(4)
        .build::<u64, Multi, MultiRts>()
        .unwrap_err();
    assert!(
        matches!(
            error,
            RingError::HtdMaxWithoutRts {
                side: "producer",
                mode: SyncType::Multi
            }
        ),
        "{error}"
    );
    let error = RingBuilder::new(64)
        .cons_htd_max(4)
        .build::<u64, MultiRts, MultiHts>()
        .unwrap_err();
    assert!(
        matches!(
            error,
            RingError::HtdMaxWithoutRts {
                side: "consumer",
                mode: SyncType::MultiHts
            }
        ),
        "{error}"
    );
}

/// An RTS side whose distance allows no second operation in flight still moves every element.
#[test]
fn rts_with_zero_distance_moves_elements() {
    let (mut producer, mut consumer) = RingBuilder::new(8)
        .prod_htd_max(0)
        .cons_htd_max(0)
        .build::<u64, MultiRts, MultiRts>()
        .unwrap();
    assert_eq!(producer.enqueue_bulk(&[1, 2, 3]), 3);
    assert_eq!(producer.enqueue_burst(&[4, 5, 6, 7, 8]), 4);
    assert!(producer.is_full());
    let mut out = [0u64; 8];
    assert_eq!(consumer.dequeue_bulk(&mut out[..8]), 0);
    assert_eq!(consumer.dequeue_burst(&mut out), 7);
    assert_eq!(&out[..7], &[1, 2, 3, 4, 5, 6, 7]);
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

#[derive(Debug, Clone)]
enum CopyOp {
    EnqueueBulk(usize),
    EnqueueBurst(usize),
    DequeueBulk(usize),
    DequeueBurst(usize),
}

fn copy_op() -> impl Strategy<Value = CopyOp> {
    prop_oneof![
        (0..12usize).prop_map(CopyOp::EnqueueBulk),
        (0..12usize).prop_map(CopyOp::EnqueueBurst),
        (0..12usize).prop_map(CopyOp::DequeueBulk),
        (0..12usize).prop_map(CopyOp::DequeueBurst),
    ]
}

/// Applies `ops` from one thread to a ring in modes `P` and `C` and to a `VecDeque`, and checks
/// that they agree after each step.
fn check_against_deque<P: SyncMode, C: SyncMode>(
    builder: RingBuilder,
    ops: &[CopyOp],
) -> Result<(), TestCaseError> {
    let (mut producer, mut consumer) = builder.build::<u32, P, C>().unwrap();
    let capacity = producer.capacity();
    let mut model = VecDeque::new();
    let mut next = 0u32;
    for op in ops {
        match *op {
            CopyOp::EnqueueBulk(n) | CopyOp::EnqueueBurst(n) => {
                let values: Vec<u32> = (next..next + n as u32).collect();
                let free = capacity - model.len();
                let (done, expected) = match op {
                    CopyOp::EnqueueBulk(_) => (
                        producer.enqueue_bulk(&values),
                        if n <= free { n } else { 0 },
                    ),
                    _ => (producer.enqueue_burst(&values), n.min(free)),
                };
                prop_assert_eq!(done, expected);
                model.extend(&values[..done]);
                next += done as u32;
            }
            CopyOp::DequeueBulk(n) | CopyOp::DequeueBurst(n) => {
                let mut out = vec![0; n];
                let (done, expected) = match op {
                    CopyOp::DequeueBulk(_) => (
                        consumer.dequeue_bulk(&mut out),
                        if n <= model.len() { n } else { 0 },
                    ),
                    _ => (consumer.dequeue_burst(&mut out), n.min(model.len())),
                };
                prop_assert_eq!(done, expected);
                let want: Vec<u32> = model.drain(..done).collect();
                prop_assert_eq!(&out[..done], &want[..]);
            }
        }
        prop_assert_eq!(producer.count(), model.len());
        prop_assert_eq!(consumer.free_count(), capacity - model.len());
    }
    Ok(())
}

proptest! {
    #[test]
    fn rts_and_hts_rings_match_a_deque(
        count in 1u32..20,
        exact in any::<bool>(),
        htd_max in 0u32..20,
        ops in proptest::collection::vec(copy_op(), 1..200),
    ) {
        let count = if exact { count } else { count.next_power_of_two().max(2) };
        let builder = RingBuilder::new(count).exact_size(exact);
        check_against_deque::<MultiRts, MultiRts>(
            builder.prod_htd_max(htd_max).cons_htd_max(htd_max),
            &ops,
        )?;
        check_against_deque::<MultiHts, MultiHts>(builder, &ops)?;
        check_against_deque::<MultiRts, MultiHts>(builder, &ops)?;
        check_against_deque::<MultiHts, Single>(builder, &ops)?;
        check_against_deque::<Single, MultiRts>(builder, &ops)?;
    }
}
