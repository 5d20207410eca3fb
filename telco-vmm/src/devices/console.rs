//! The 16550 serial console (COM1) and the watcher that reads the guest's console output for the
//! boot marker, kernel panics and power-off.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vm_superio::Serial;
use vm_superio::serial::NoEvents;

use super::IrqLine;

/// Printed by Linux's `panic()`.
const PANIC_PREFIX: &[u8] = b"Kernel panic - not syncing";
/// Printed by Linux's `kernel_power_off()`, which halts when there is no power-off method.
const POWER_DOWN_LINE: &[u8] = b"reboot: Power down";
/// Printed by Linux's `kernel_halt()`: `reboot(POWER_OFF)` turns into a halt when no power-off
/// method is registered, which is the case without ACPI.
const HALTED_LINE: &[u8] = b"reboot: System halted";
/// Longest console line kept for matching; longer lines are cut.
const MAX_LINE: usize = 512;

/// What the guest's console output told the VMM.
#[derive(Debug, Default)]
pub(crate) struct ConsoleEvents {
    /// When the marker first appeared.
    pub(crate) marker_at: Option<Instant>,
    /// The first kernel panic line.
    pub(crate) panic: Option<String>,
    /// The guest printed the power-off line.
    pub(crate) power_down: bool,
}

/// Scans console bytes line by line, and for the marker anywhere.
#[derive(Debug)]
pub(crate) struct ConsoleWatch {
    marker: Vec<u8>,
    marker_window: Vec<u8>,
    line: Vec<u8>,
    events: Arc<Mutex<ConsoleEvents>>,
}

impl ConsoleWatch {
    pub(crate) fn new(marker: Option<Vec<u8>>, events: Arc<Mutex<ConsoleEvents>>) -> Self {
        ConsoleWatch {
            marker: marker.unwrap_or_default(),
            marker_window: Vec::new(),
            line: Vec::new(),
            events,
        }
    }

    /// Feeds bytes; returns true when the guest printed the power-off line.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut power_down = false;
        for &byte in bytes {
            self.feed_marker(byte);
            if byte == b'\n' {
                power_down |= self.end_line();
            } else if self.line.len() < MAX_LINE {
                self.line.push(byte);
            }
        }
        power_down
    }

    fn feed_marker(&mut self, byte: u8) {
        if self.marker.is_empty() {
            return;
        }
        self.marker_window.push(byte);
        if self.marker_window.len() > self.marker.len() {
            self.marker_window.remove(0);
        }
        if self.marker_window == self.marker {
            let mut events = lock(&self.events);
            events.marker_at.get_or_insert_with(Instant::now);
        }
    }

    fn end_line(&mut self) -> bool {
        let line = std::mem::take(&mut self.line);
        let mut events = lock(&self.events);
        if events.panic.is_none()
            && let Some(start) = find(&line, PANIC_PREFIX)
        {
            let text = String::from_utf8_lossy(&line[start..]);
            events.panic = Some(text.trim_end().to_string());
        }
        if find(&line, POWER_DOWN_LINE).is_some() || find(&line, HALTED_LINE).is_some() {
            events.power_down = true;
            return true;
        }
        false
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer behind the UART: copies to the caller's sink and feeds the watcher.
pub(crate) struct ConsoleOutput {
    sink: Box<dyn Write + Send>,
    watch: ConsoleWatch,
    power_down: bool,
}

impl std::fmt::Debug for ConsoleOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOutput")
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl Write for ConsoleOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.power_down |= self.watch.feed(buf);
        // A failing sink (a closed pipe) must not stop the guest: its output is dropped.
        if let Err(error) = self.sink.write_all(buf) {
            tracing::debug!(%error, "console sink write failed, output dropped");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// COM1: a `vm-superio` 16550 with its interrupt on IRQ 4.
pub(crate) struct SerialConsole {
    uart: Serial<IrqLine, NoEvents, ConsoleOutput>,
}

impl std::fmt::Debug for SerialConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialConsole").finish_non_exhaustive()
    }
}

/// What a console write asks of the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsoleAction {
    None,
    PowerOff,
}

impl SerialConsole {
    pub(crate) fn new(irq: IrqLine, sink: Box<dyn Write + Send>, watch: ConsoleWatch) -> Self {
        let output = ConsoleOutput {
            sink,
            watch,
            power_down: false,
        };
        SerialConsole {
            uart: Serial::new(irq, output),
        }
    }

    pub(crate) fn read(&mut self, offset: u8) -> u8 {
        self.uart.read(offset)
    }

    pub(crate) fn write(&mut self, offset: u8, value: u8) -> ConsoleAction {
        if let Err(error) = self.uart.write(offset, value) {
            tracing::debug!(?error, "serial write failed");
        }
        let output = self.uart.writer_mut();
        if std::mem::take(&mut output.power_down) {
            ConsoleAction::PowerOff
        } else {
            ConsoleAction::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(marker: &str) -> (ConsoleWatch, Arc<Mutex<ConsoleEvents>>) {
        let events = Arc::new(Mutex::new(ConsoleEvents::default()));
        (
            ConsoleWatch::new(Some(marker.as_bytes().to_vec()), Arc::clone(&events)),
            events,
        )
    }

    #[test]
    fn marker_split_across_writes_is_found() {
        let (mut watch, events) = watch("TELCO-READY");
        watch.feed(b"boot... TELCO-");
        assert!(events.lock().unwrap().marker_at.is_none());
        watch.feed(b"READY\r\n");
        assert!(events.lock().unwrap().marker_at.is_some());
    }

    #[test]
    fn panic_line_is_recorded() {
        let (mut watch, events) = watch("x");
        watch.feed(b"[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n");
        let panic = events.lock().unwrap().panic.clone().unwrap();
        assert_eq!(
            panic,
            "Kernel panic - not syncing: VFS: Unable to mount root fs"
        );
    }

    #[test]
    fn halt_line_requests_power_off() {
        let (mut watch, _events) = watch("x");
        assert!(watch.feed(b"[   7.5] reboot: System halted\n"));
    }

    #[test]
    fn power_down_line_requests_power_off() {
        let (mut watch, events) = watch("x");
        assert!(!watch.feed(b"[   2.0] reboot: Restarting system\n"));
        assert!(watch.feed(b"[   2.0] reboot: Power down\n"));
        assert!(events.lock().unwrap().power_down);
    }
}
