//! `ring-perf`: cycles per element of `telco_net::ring` for the cases of DPDK's
//! `ring_perf_autotest`, with 8-byte elements as DPDK's pointer rings.
//!
//! ```text
//! ring-perf [--json] [--cpus A,B]
//! ```
//!
//! Each row is TSC cycles per element, measured as `ring_perf_autotest` measures them:
//! single-core rows enqueue then dequeue on one core and divide the cycles by the elements moved;
//! two-core rows run a producer on one core and a consumer on another and add the cycles per
//! element of both sides. The ring has 4096 slots. Output is one `NAME: CYCLES` line per row, or
//! with `--json` a JSON list of `{"name", "cycles_per_elem"}`.

use std::hint::black_box;
use std::sync::Barrier;

use anyhow::{Context, bail};
use clap::Parser;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use telco_net::ring::{Consumer, Multi, Producer, RingBuilder, Single, SyncMode};

#[derive(Debug, Parser)]
#[command(about = "Measure ring enqueue/dequeue cost in TSC cycles per element")]
struct Cli {
    /// Print a JSON list instead of `NAME: CYCLES` lines.
    #[arg(long)]
    json: bool,
    /// The two CPUs to run on: single-core rows use the first, two-core rows both.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1])]
    cpus: Vec<usize>,
}

/// Rejects CPUs this process may not run on, and one CPU given twice: the two-core rows spin
/// on a partner thread that would otherwise never run.
fn check_cpus(first: usize, second: usize) -> anyhow::Result<()> {
    if first == second {
        bail!("--cpus {first},{second}: the two CPUs must differ");
    }
    let allowed = nix::sched::sched_getaffinity(Pid::from_raw(0))?;
    for cpu in [first, second] {
        if !allowed.is_set(cpu).unwrap_or(false) {
            bail!(
                "--cpus: CPU {cpu} is not online or not allowed for this process (see taskset -p $$)"
            );
        }
    }
    Ok(())
}

const RING_SIZE: u32 = 4096;
const SINGLE_ITERATIONS: u64 = 1 << 22;
const TWO_CORE_ITERATIONS: u64 = 1 << 16;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let [first, second] = cli.cpus[..] else {
        bail!("--cpus takes exactly two CPUs, such as --cpus 0,1");
    };
    check_cpus(first, second)?;
    pin(first)?;
    let mut rows: Vec<(String, f64)> = Vec::new();
    rows.push(("single SP/SC".into(), single::<Single, Single>()));
    rows.push(("single MP/MC".into(), single::<Multi, Multi>()));
    for (kind, bulk) in [("burst", false), ("bulk", true)] {
        for (mode, multi) in [("SP/SC", false), ("MP/MC", true)] {
            for size in [8, 32] {
                let cycles = if multi {
                    batch::<Multi, Multi>(size, bulk)
                } else {
                    batch::<Single, Single>(size, bulk)
                };
                rows.push((format!("{kind} {size} {mode}"), cycles));
            }
        }
    }
    for (mode, multi) in [("SP/SC", false), ("MP/MC", true)] {
        for size in [8, 32] {
            let cycles = if multi {
                two_cores::<Multi, Multi>(size, first, second)?
            } else {
                two_cores::<Single, Single>(size, first, second)?
            };
            rows.push((format!("two cores bulk {size} {mode}"), cycles));
        }
    }
    // Print in the order the rows are documented in.
    let order = [
        "single SP/SC",
        "single MP/MC",
        "burst 8 SP/SC",
        "burst 32 SP/SC",
        "burst 8 MP/MC",
        "burst 32 MP/MC",
        "bulk 8 SP/SC",
        "bulk 32 SP/SC",
        "bulk 8 MP/MC",
        "bulk 32 MP/MC",
        "two cores bulk 8 SP/SC",
        "two cores bulk 32 SP/SC",
        "two cores bulk 8 MP/MC",
        "two cores bulk 32 MP/MC",
    ];
    rows.sort_by_key(|(name, _)| order.iter().position(|o| o == name));
    if cli.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, cycles)| serde_json::json!({"name": name, "cycles_per_elem": (cycles * 100.0).round() / 100.0}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for (name, cycles) in rows {
            println!("{name}: {cycles:.2}");
        }
    }
    Ok(())
}

fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("CPU {cpu} out of range"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

/// The time stamp counter, which `ring_perf_autotest` reads with `rte_rdtsc`.
#[inline]
fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::time::Instant::now().elapsed().as_nanos() as u64
    }
}

fn ring<P: SyncMode, C: SyncMode>() -> (Producer<u64, P>, Consumer<u64, C>) {
    RingBuilder::new(RING_SIZE)
        .build::<u64, P, C>()
        .expect("4096 is a power of two")
}

fn single<P: SyncMode, C: SyncMode>() -> f64 {
    let (mut producer, mut consumer) = ring::<P, C>();
    let start = rdtsc();
    for i in 0..SINGLE_ITERATIONS {
        let _ = producer.enqueue(black_box(i));
        black_box(consumer.dequeue());
    }
    (rdtsc() - start) as f64 / SINGLE_ITERATIONS as f64
}

fn batch<P: SyncMode, C: SyncMode>(size: usize, bulk: bool) -> f64 {
    let (mut producer, mut consumer) = ring::<P, C>();
    let input: Vec<u64> = (0..size as u64).collect();
    let mut output = vec![0u64; size];
    let iterations = SINGLE_ITERATIONS / 4;
    let start = rdtsc();
    for _ in 0..iterations {
        if bulk {
            black_box(producer.enqueue_bulk(black_box(&input)));
            black_box(consumer.dequeue_bulk(&mut output));
        } else {
            black_box(producer.enqueue_burst(black_box(&input)));
            black_box(consumer.dequeue_burst(&mut output));
        }
    }
    (rdtsc() - start) as f64 / (iterations * size as u64) as f64
}

fn two_cores<P: SyncMode, C: SyncMode>(
    size: usize,
    first: usize,
    second: usize,
) -> anyhow::Result<f64> {
    let (mut producer, mut consumer) = ring::<P, C>();
    let barrier = Barrier::new(2);
    let per_element = |cycles: u64| cycles as f64 / (TWO_CORE_ITERATIONS * size as u64) as f64;
    std::thread::scope(|scope| {
        let enqueue = scope.spawn(|| -> anyhow::Result<f64> {
            pin(first)?;
            let input: Vec<u64> = (0..size as u64).collect();
            barrier.wait();
            let start = rdtsc();
            for _ in 0..TWO_CORE_ITERATIONS {
                while producer.enqueue_bulk(&input) == 0 {
                    std::hint::spin_loop();
                }
            }
            Ok(per_element(rdtsc() - start))
        });
        let dequeue = scope.spawn(|| -> anyhow::Result<f64> {
            pin(second)?;
            let mut output = vec![0u64; size];
            barrier.wait();
            let start = rdtsc();
            for _ in 0..TWO_CORE_ITERATIONS {
                while consumer.dequeue_bulk(&mut output) == 0 {
                    std::hint::spin_loop();
                }
            }
            black_box(&output);
            Ok(per_element(rdtsc() - start))
        });
        let enqueue = enqueue.join().expect("enqueue thread")?;
        let dequeue = dequeue.join().expect("dequeue thread")?;
        Ok(enqueue + dequeue)
    })
}
