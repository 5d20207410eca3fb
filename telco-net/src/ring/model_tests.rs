//! Concurrency tests of the head and tail moves. Built with `RUSTFLAGS="--cfg loom"`, each runs
//! under loom's model checker, which explores the thread interleavings and the weak-memory
//! outcomes the orderings allow; in a normal build each runs many times on real threads.

#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::thread;

use super::{Consumer, Multi, MultiHts, MultiRts, Producer, RingBuilder, Single, SyncMode};

/// Runs `body` under loom, or `REPEAT` times on real threads.
fn check(body: impl Fn() + Sync + Send + 'static) {
    #[cfg(loom)]
    {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(body);
    }
    #[cfg(not(loom))]
    for _ in 0..2000 {
        body();
    }
}

/// Spins until `f` returns `Some`, yielding to the other threads.
fn until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(value) = f() {
            return value;
        }
        thread::yield_now();
    }
}

/// Two producers enqueue one element each into `builder`'s ring, which has room for both, while
/// the consumer makes one attempt to take both; after the producers finish it takes the rest.
/// Every element arrives once, and the consumer reads only what a producer wrote. No thread
/// waits for the ring to fill or drain, which keeps loom's state space small.
fn two_producers_one_consumer<P: SyncMode, C: SyncMode>(builder: RingBuilder)
where
    Producer<u64, P>: Clone,
{
    check(move || {
        let (producer, mut consumer) = builder.build::<u64, P, C>().unwrap();
        let handles: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|value| {
                let mut producer = producer.clone();
                thread::spawn(move || assert_eq!(producer.enqueue(value), Ok(())))
            })
            .collect();
        let mut got = [0u64; 2];
        // Loom explores other threads running first only from a yield point.
        thread::yield_now();
        let early = consumer.dequeue_burst(&mut got);
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(consumer.dequeue_burst(&mut got[early..]), 2 - early);
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(consumer.is_empty());
    });
}

/// Two consumers each take one element of a full four-slot ring (positions 0 and 1) while the
/// producer makes one attempt to add two more (positions 3 and 4, the second in the slot of
/// position 0). The producer may write that slot only after the consumer of position 0 has
/// finished reading it; loom reports the conflicting accesses otherwise. Afterwards every
/// element has been taken once.
fn one_producer_two_consumers<C: SyncMode>(builder: RingBuilder)
where
    Consumer<u64, C>: Clone,
{
    check(move || {
        let (mut producer, mut consumer) = builder.build::<u64, Single, C>().unwrap();
        assert_eq!(producer.enqueue_bulk(&[10, 20, 30]), 3);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let mut consumer = consumer.clone();
                thread::spawn(move || consumer.dequeue().expect("the ring holds 3 elements"))
            })
            .collect();
        thread::yield_now();
        let early = producer.enqueue_burst(&[40, 50]);
        let mut got: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let late = [40u64, 50];
        assert_eq!(producer.enqueue_burst(&late[early..]), 2 - early);
        while let Some(value) = consumer.dequeue() {
            got.push(value);
        }
        got.sort_unstable();
        assert_eq!(got, [10, 20, 30, 40, 50]);
    });
}

#[test]
fn mp_ring_delivers_each_element_once() {
    two_producers_one_consumer::<Multi, Single>(RingBuilder::new(4));
}

#[test]
fn mp_mc_ring_delivers_each_element_once() {
    two_producers_one_consumer::<Multi, Multi>(RingBuilder::new(4));
}

/// With a maximum head-tail distance of 3 both producers can be in flight at once, so the one
/// that finishes first must leave the tail for the other to move.
#[test]
fn rts_producers_deliver_each_element_once() {
    two_producers_one_consumer::<MultiRts, Single>(RingBuilder::new(4).prod_htd_max(3));
}

/// With a distance of 0 a producer waits until no other operation is in flight.
#[test]
fn rts_producers_with_zero_distance_deliver_once() {
    two_producers_one_consumer::<MultiRts, Single>(RingBuilder::new(4).prod_htd_max(0));
}

#[test]
fn hts_producers_deliver_each_element_once() {
    two_producers_one_consumer::<MultiHts, Single>(RingBuilder::new(4));
}

#[test]
fn rts_producers_and_consumers_deliver_once() {
    two_producers_one_consumer::<MultiRts, MultiRts>(
        RingBuilder::new(4).prod_htd_max(3).cons_htd_max(3),
    );
}

#[test]
fn mc_ring_finishes_reads_before_slot_reuse() {
    one_producer_two_consumers::<Multi>(RingBuilder::new(4));
}

#[test]
fn rts_consumers_finish_reads_before_slot_reuse() {
    one_producer_two_consumers::<MultiRts>(RingBuilder::new(4).cons_htd_max(3));
}

#[test]
fn hts_consumers_finish_reads_before_slot_reuse() {
    one_producer_two_consumers::<MultiHts>(RingBuilder::new(4));
}

/// A single producer and consumer pass three elements through one slot in order, with the
/// producer's cached view of the consumer's tail going stale.
#[test]
fn sp_sc_ring_keeps_fifo_order() {
    check(|| {
        let (mut producer, mut consumer) =
            RingBuilder::new(2).build::<u64, Single, Single>().unwrap();
        let handle = thread::spawn(move || {
            for value in 1..=3u64 {
                until(|| producer.enqueue(value).ok());
            }
        });
        for expected in 1..=3u64 {
            assert_eq!(until(|| consumer.dequeue()), expected);
        }
        handle.join().unwrap();
    });
}
