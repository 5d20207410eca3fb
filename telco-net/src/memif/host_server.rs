//! The host data plane that [`MemifKind`](super::MemifKind) runs for a workload in the client
//! (`slave`) role: a memif server on a thread of its own that passes every received frame to a
//! [`FrameHandler`] and sends back the frames the handler keeps.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Memif, MemifConfig, MemifError, MemifStats};

/// A handler of the frames a workload sends to the host data plane.
///
/// It gets each frame as an owned buffer that it may change, resize or clear. It returns `true`
/// to send the buffer back to the workload on the same queue, `false` to drop it. The server
/// thread calls it once per frame, in ring order.
pub type FrameHandler = Arc<dyn Fn(&mut Vec<u8>) -> bool + Send + Sync>;

/// Swaps the destination and source MAC addresses of an Ethernet frame, as testpmd's `macswap`
/// forwarding mode does. Frames shorter than the two addresses (12 bytes) are left as they are.
pub fn swap_macs(frame: &mut [u8]) {
    if let Some(addresses) = frame.get_mut(..12) {
        let (destination, source) = addresses.split_at_mut(6);
        destination.swap_with_slice(source);
    }
}

/// The handler of the built-in echo responder: every frame goes back with its MAC addresses
/// swapped.
pub fn echo_handler() -> FrameHandler {
    Arc::new(|frame: &mut Vec<u8>| {
        swap_macs(frame);
        true
    })
}

/// Frames read from one queue per pass.
const BURST: usize = 32;
/// The maximum time the thread sleeps in one wait, and so its maximum delay in noticing a stop
/// request.
const WAIT_SLICE: Duration = Duration::from_millis(20);
/// The maximum time one handshake step of a client may take. A stop request waits for a
/// handshake in progress, so this bounds that delay too.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reply may wait for the workload to post receive buffers before it is dropped.
const TX_PATIENCE: Duration = Duration::from_millis(500);
/// Busy passes after which the control socket is checked even while frames keep coming.
const CONTROL_CHECK_PASSES: u32 = 4096;

/// A running server thread. Dropping it stops the thread and waits for it, and the [`Memif`] it
/// owns removes the socket file when the thread ends.
pub(super) struct HostServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for HostServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostServer")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl HostServer {
    /// Binds the server socket of `config` (a [`Role::Server`](super::Role::Server) config) and
    /// starts serving it on a thread named `thread_name`.
    pub(super) fn start(
        config: MemifConfig,
        handler: FrameHandler,
        thread_name: String,
    ) -> Result<HostServer, StartError> {
        let memif = Memif::new(config).map_err(StartError::Listen)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(thread_name)
            .spawn(move || serve(memif, &handler, &flag))
            .map_err(StartError::Spawn)?;
        Ok(HostServer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it to end. Returns false when the thread had panicked.
    pub(super) fn stop(&mut self) -> bool {
        self.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(thread) => thread.join().is_ok(),
            None => true,
        }
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The failure of [`HostServer::start`].
#[derive(Debug)]
pub(super) enum StartError {
    /// Binding or listening on the socket failed.
    Listen(MemifError),
    /// The thread could not be created.
    Spawn(std::io::Error),
}

/// Runs the thread: accepts one client at a time and handles its frames until `stop` is set.
fn serve(mut memif: Memif, handler: &FrameHandler, stop: &AtomicBool) {
    let socket = memif.config().socket.to_string();
    tracing::debug!(socket, "memif host server started");
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Acquire) {
        match memif.connect_within(WAIT_SLICE, HANDSHAKE_TIMEOUT) {
            Ok(()) => {
                last_error = None;
                let before = memif.stats();
                serve_connection(&mut memif, handler, stop);
                log_connection_end(&socket, before, memif.stats());
            }
            Err(MemifError::Timeout { .. }) => {}
            Err(error) => {
                // A client that fails the handshake retries; log each distinct error once.
                let text = error.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(socket, %error, "memif host server rejected a client");
                    last_error = Some(text);
                }
                thread::sleep(WAIT_SLICE);
            }
        }
    }
    memif.disconnect("host data plane stopped");
    tracing::debug!(socket, "memif host server stopped");
}

fn log_connection_end(socket: &str, before: MemifStats, after: MemifStats) {
    tracing::info!(
        socket,
        rx_packets = after.rx_packets - before.rx_packets,
        tx_packets = after.tx_packets - before.tx_packets,
        errors = after.errors - before.errors,
        "memif client of the host server disconnected"
    );
}

/// Handles the frames of one client until it disconnects or `stop` is set.
fn serve_connection(memif: &mut Memif, handler: &FrameHandler, stop: &AtomicBool) {
    let Some((tx_queues, rx_queues)) = memif.queues() else {
        return;
    };
    for queue in 0..rx_queues {
        // Interrupt mode lets the thread sleep on the eventfds instead of spinning.
        let _ = memif.set_rx_interrupt(queue, true);
    }
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(BURST);
    let mut busy_passes = 0u32;
    while !stop.load(Ordering::Acquire) {
        let mut received = 0;
        for queue in 0..rx_queues {
            frames.clear();
            let _ = memif.rx_burst(queue, BURST, |frame| frames.push(frame.to_vec()));
            received += frames.len();
            frames.retain_mut(|frame| handler(frame));
            if !frames.is_empty() {
                send_all(memif, queue % tx_queues.max(1), &frames, stop);
            }
        }
        if received > 0 {
            busy_passes += 1;
            if busy_passes < CONTROL_CHECK_PASSES || !memif.control_pending() {
                continue;
            }
        }
        busy_passes = 0;
        // The rings are drained (or the peer signalled), so a DISCONNECT loses no frame.
        if memif.control_pending() && !memif.poll_control() {
            return;
        }
        if received == 0 {
            wait_for_frames(memif, rx_queues);
        }
    }
}

/// Sends `frames` on `queue`, waiting up to [`TX_PATIENCE`] for the client to post buffers.
/// Frames that still do not fit are dropped.
fn send_all(memif: &mut Memif, queue: usize, frames: &[Vec<u8>], stop: &AtomicBool) {
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut sent = 0;
    let deadline = Instant::now() + TX_PATIENCE;
    while sent < refs.len() {
        match memif.tx_burst(queue, &refs[sent..]) {
            Ok(0) if Instant::now() < deadline && !stop.load(Ordering::Acquire) => {
                thread::sleep(Duration::from_micros(100));
            }
            Ok(0) | Err(_) => break,
            Ok(done) => sent += done,
        }
    }
    if sent < refs.len() {
        tracing::debug!(
            queue,
            dropped = refs.len() - sent,
            "memif client posted no receive buffers; replies dropped"
        );
    }
}

/// Sleeps until a receive queue's interrupt fires or the control socket has news, at most
/// [`WAIT_SLICE`].
fn wait_for_frames(memif: &mut Memif, rx_queues: usize) {
    let fired: Vec<bool> = {
        let mut fds: Vec<PollFd<'_>> = (0..rx_queues)
            .filter_map(|queue| memif.rx_interrupt_fd(queue))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        let timeout = PollTimeout::try_from(WAIT_SLICE).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, timeout).is_err() {
            return;
        }
        fds.iter()
            .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
            .collect()
    };
    for (queue, fired) in fired.into_iter().enumerate() {
        if fired {
            // Clears the eventfd counter; the frames are read on the next pass.
            let _ = memif.wait_rx_interrupt(queue, Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_macs_exchanges_addresses() {
        let mut frame: Vec<u8> = (0..20).collect();
        swap_macs(&mut frame);
        assert_eq!(&frame[..6], &[6, 7, 8, 9, 10, 11]);
        assert_eq!(&frame[6..12], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(&frame[12..], &[12, 13, 14, 15, 16, 17, 18, 19]);
    }

    #[test]
    fn swap_macs_leaves_short_frames() {
        let mut frame = vec![1, 2, 3];
        swap_macs(&mut frame);
        assert_eq!(frame, [1, 2, 3]);
    }

    #[test]
    fn echo_handler_keeps_frames() {
        let handler = echo_handler();
        let mut frame: Vec<u8> = (0..14).collect();
        assert!(handler(&mut frame));
        assert_eq!(frame[0], 6);
    }
}
