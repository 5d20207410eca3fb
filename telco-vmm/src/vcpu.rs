//! vCPU threads: pinning, the `KVM_RUN` loop, and the shared run state that pause, resume and
//! stop drive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd};
use telco_core::CpuSet;

use crate::bus::{BusAction, DeviceBus};
use crate::devices::console::{ConsoleEvents, lock};
use crate::exit::{ExitReason, VcpuError};

/// Where the VM's vCPU threads are told to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    Paused,
    Stopping,
}

#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) state: RunState,
    pub(crate) exit: Option<ExitReason>,
    /// vCPU threads waiting in the paused state.
    pub(crate) parked: usize,
    /// vCPU threads that have returned.
    pub(crate) finished: usize,
}

/// State shared by the VM handle and its vCPU threads.
#[derive(Debug)]
pub(crate) struct VmShared {
    pub(crate) control: Mutex<Control>,
    pub(crate) changed: Condvar,
    pub(crate) console: Arc<Mutex<ConsoleEvents>>,
    pub(crate) started: Instant,
    pub(crate) first_entry: OnceLock<Instant>,
    pub(crate) first_exit: OnceLock<Instant>,
}

impl VmShared {
    pub(crate) fn new(started: Instant, console: Arc<Mutex<ConsoleEvents>>) -> Self {
        VmShared {
            control: Mutex::new(Control {
                state: RunState::Running,
                exit: None,
                parked: 0,
                finished: 0,
            }),
            changed: Condvar::new(),
            console,
            started,
            first_entry: OnceLock::new(),
            first_exit: OnceLock::new(),
        }
    }

    /// Records the first reason to stop and tells every vCPU to stop.
    pub(crate) fn request_exit(&self, reason: ExitReason) {
        let mut control = lock(&self.control);
        if control.exit.is_none() {
            tracing::info!(%reason, "microVM exiting");
            control.exit = Some(reason);
        }
        control.state = RunState::Stopping;
        self.changed.notify_all();
    }

    /// Turns a reset or halt into a panic report when the guest printed a panic first.
    fn guest_exit(&self, plain: ExitReason) -> ExitReason {
        match lock(&self.console).panic.clone() {
            Some(line) => ExitReason::Panic(line),
            None => plain,
        }
    }
}

/// The signal that interrupts `KVM_RUN` so a vCPU thread sees a pause or stop request.
pub(crate) fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn ignore_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the no-op handler for [`kick_signal`], once per process.
pub(crate) fn install_kick_handler() -> std::io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    vmm_sys_util::signal::register_signal_handler(kick_signal(), ignore_kick)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

/// Everything one vCPU thread owns.
#[derive(Debug)]
pub(crate) struct Vcpu {
    pub(crate) index: u8,
    pub(crate) fd: VcpuFd,
    pub(crate) cpus: Option<CpuSet>,
    pub(crate) shared: Arc<VmShared>,
    pub(crate) bus: Arc<DeviceBus>,
}

impl Vcpu {
    /// The thread body: pin, then run until the VM stops.
    pub(crate) fn run(mut self) {
        if let Some(cpus) = self.cpus.clone()
            && let Err(source) = pin_current_thread(&cpus)
        {
            self.shared
                .request_exit(ExitReason::Error(VcpuError::Affinity {
                    vcpu: self.index,
                    cpus: cpus.to_string(),
                    source,
                }));
            self.finish();
            return;
        }
        while self.wait_until_runnable() {
            if let Some(reason) = self.run_once() {
                self.shared.request_exit(reason);
            }
        }
        self.finish();
    }

    fn finish(&self) {
        let mut control = lock(&self.shared.control);
        control.finished += 1;
        self.shared.changed.notify_all();
    }

    /// Blocks while paused; returns false once the VM is stopping.
    fn wait_until_runnable(&self) -> bool {
        let mut control = lock(&self.shared.control);
        loop {
            match control.state {
                RunState::Running => return true,
                RunState::Stopping => return false,
                RunState::Paused => {
                    control.parked += 1;
                    self.shared.changed.notify_all();
                    control = self
                        .shared
                        .changed
                        .wait(control)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    control.parked -= 1;
                }
            }
        }
    }

    /// Runs the guest until one exit and handles it; returns a reason when the VM must stop.
    fn run_once(&mut self) -> Option<ExitReason> {
        if self.index == 0 {
            self.shared.first_entry.get_or_init(Instant::now);
        }
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(error) if error.errno() == libc::EINTR || error.errno() == libc::EAGAIN => {
                return None;
            }
            Err(source) => {
                return Some(ExitReason::Error(VcpuError::Run {
                    vcpu: self.index,
                    source,
                }));
            }
        };
        if self.index == 0 {
            self.shared.first_exit.get_or_init(Instant::now);
        }
        let vcpu = self.index;
        let action = match exit {
            VcpuExit::IoIn(port, data) => {
                self.bus.io_in(port, data);
                BusAction::None
            }
            VcpuExit::IoOut(port, data) => self.bus.io_out(port, data),
            VcpuExit::MmioRead(addr, data) => {
                self.bus.mmio_read(addr, data);
                BusAction::None
            }
            VcpuExit::MmioWrite(addr, data) => {
                self.bus.mmio_write(addr, data);
                BusAction::None
            }
            VcpuExit::Hlt => return Some(self.shared.guest_exit(ExitReason::PowerOff)),
            VcpuExit::Shutdown => return Some(self.shared.guest_exit(ExitReason::TripleFault)),
            VcpuExit::Intr => BusAction::None,
            VcpuExit::FailEntry(reason, _) => {
                return Some(ExitReason::Error(VcpuError::FailEntry { vcpu, reason }));
            }
            VcpuExit::InternalError => {
                return Some(ExitReason::Error(VcpuError::Internal { vcpu }));
            }
            other => {
                return Some(ExitReason::Error(VcpuError::UnhandledExit {
                    vcpu,
                    exit: format!("{other:?}"),
                }));
            }
        };
        match action {
            BusAction::None => None,
            BusAction::Reset => Some(self.shared.guest_exit(ExitReason::Reboot)),
            BusAction::PowerOff => Some(self.shared.guest_exit(ExitReason::PowerOff)),
        }
    }
}

/// Pins the calling thread to `cpus` with `sched_setaffinity(2)`.
pub(crate) fn pin_current_thread(cpus: &CpuSet) -> std::io::Result<()> {
    // SAFETY: `cpu_set_t` is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let capacity = 8 * size_of::<libc::cpu_set_t>();
    for cpu in cpus {
        if cpu >= capacity {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond the {capacity} CPUs sched_setaffinity takes"),
            ));
        }
        // SAFETY: `cpu` is below the set's capacity, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid, initialized cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends [`kick_signal`] to every thread in `threads` until `done` holds for the control state,
/// so that a thread that had not yet entered `KVM_RUN` when the first signal came still leaves.
pub(crate) fn kick_until(
    shared: &VmShared,
    threads: &[libc::pthread_t],
    done: impl Fn(&Control) -> bool,
) {
    let mut control = lock(&shared.control);
    while !done(&control) {
        drop(control);
        for &thread in threads {
            // SAFETY: the thread ids come from live `JoinHandle`s that the caller still holds;
            // the signal has a no-op handler installed.
            unsafe { libc::pthread_kill(thread, kick_signal()) };
        }
        control = lock(&shared.control);
        let (guard, _) = shared
            .changed
            .wait_timeout(control, Duration::from_millis(2))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        control = guard;
    }
}
