//! Concurrency tests of the head and tail moves. Built with `RUSTFLAGS="--cfg loom"`, each runs
//! under loom's model checker, which explores the thread interleavings and the weak-memory
//! outcomes the orderings allow; in a normal build each runs many times on real threads.

#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::thread;

use super::{Multi, RingBuilder, Single, SyncMode};

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

/// Two producers enqueue one element each into a ring with room for one, and one consumer takes
/// both: every element arrives once, and the consumer reads what the producer wrote.
fn two_producers_one_slot<C: SyncMode>() {
    check(|| {
        let (producer, mut consumer) = RingBuilder::new(2).build::<u64, Multi, C>().unwrap();
        let handles: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|value| {
                let mut producer = producer.clone();
                thread::spawn(move || until(|| producer.enqueue(value).ok()))
            })
            .collect();
        let first = until(|| consumer.dequeue());
        let second = until(|| consumer.dequeue());
        for handle in handles {
            handle.join().unwrap();
        }
        let mut got = [first, second];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(consumer.is_empty());
    });
}

#[test]
fn mp_ring_delivers_each_element_once() {
    two_producers_one_slot::<Single>();
}

#[test]
fn mp_mc_ring_delivers_each_element_once() {
    two_producers_one_slot::<Multi>();
}

/// Two consumers share a ring while the producer adds to it: each element goes to exactly one
/// consumer.
#[test]
fn mc_ring_hands_each_element_to_one_consumer() {
    check(|| {
        let (mut producer, consumer) = RingBuilder::new(2)
            .exact_size(true)
            .build::<u64, Single, Multi>()
            .unwrap();
        assert_eq!(producer.enqueue_bulk(&[10]), 1);
        let mut other = consumer.clone();
        let handle = thread::spawn(move || until(|| other.dequeue()));
        assert!(producer.enqueue(20).is_ok());
        let mut consumer = consumer;
        let mine = until(|| consumer.dequeue());
        let mut got = [mine, handle.join().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [10, 20]);
        assert!(consumer.is_empty());
    });
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
