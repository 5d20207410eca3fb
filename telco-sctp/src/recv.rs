//! Receiving: single `recvmsg` parts marked with `MSG_EOR`, and whole messages put together from
//! them (the partial delivery API, RFC 6458 section 8.1.20).
//!
//! A message larger than the socket's receive buffer or partial delivery point reaches the
//! application in several reads; only the last carries `MSG_EOR`. [`Reassembly`] keeps the parts
//! inside the socket, so a receive that is interrupted (a timeout, `EAGAIN`, or a cancelled
//! future) loses nothing: the next call continues the same message.
//!
//! # Limitations
//!
//! Reassembly assumes the Linux default `SCTP_FRAGMENT_INTERLEAVE` level 0, where the kernel
//! delivers one message completely before any other message or notification. At level 1 or 2
//! parts of different associations or streams interleave; read those with
//! [`recv_part`](crate::SctpStream::recv_part) and the `assoc_id`/`stream` of each part.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::SctpError;
use crate::info::{NextInfo, RecvInfo};
use crate::notification::Notification;
use crate::raw;

/// Default cap on a reassembled message: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Bytes read per `recvmsg` call while reassembling.
const READ_CHUNK: usize = 64 << 10;

/// A complete user message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Payload.
    pub data: Vec<u8>,
    /// Stream, SSN, TSN, PPID and association (`SCTP_RCVINFO`); `None` if the kernel sent none.
    pub info: Option<RecvInfo>,
    /// The message after this one (`SCTP_NXTINFO`), when enabled and one is waiting.
    pub next: Option<NextInfo>,
    /// Peer address the message came from; set on one-to-many sockets.
    pub from: Option<SocketAddr>,
}

impl Message {
    /// Returns the stream id, or 0 without receive information.
    pub fn stream(&self) -> u16 {
        self.info.map_or(0, |info| info.stream)
    }

    /// Returns the payload protocol identifier (host byte order), or 0 without receive
    /// information.
    pub fn ppid(&self) -> u32 {
        self.info.map_or(0, |info| info.ppid)
    }
}

/// Result of one receive: a message, a notification or the end of the association.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A complete user message.
    Message(Message),
    /// A notification the socket subscribed to.
    Notification(Notification),
    /// The association was shut down and no more data arrives (a read of 0 bytes on a
    /// one-to-one socket).
    Eof,
}

/// One `recvmsg` call's worth of a message ([`recv_part`](crate::SctpStream::recv_part)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvPart {
    /// Bytes written to the buffer.
    pub len: usize,
    /// True if this part ends the message (`MSG_EOR`).
    pub complete: bool,
    /// True if the bytes are a notification (`MSG_NOTIFICATION`), to be parsed with
    /// [`Notification::parse`] once complete.
    pub notification: bool,
    /// Receive information, present on every part of a user message.
    pub info: Option<RecvInfo>,
    /// Information on the next message, when enabled.
    pub next: Option<NextInfo>,
    /// Peer address, on one-to-many sockets.
    pub from: Option<SocketAddr>,
}

impl From<raw::RawPart> for RecvPart {
    fn from(part: raw::RawPart) -> RecvPart {
        RecvPart {
            len: part.len,
            complete: part.complete,
            notification: part.notification,
            info: part.control.rcvinfo,
            next: part.control.nxtinfo,
            from: part.from,
        }
    }
}

/// Receives one part into `buf`.
pub(crate) fn recv_part(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvPart> {
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
    let part = unsafe { raw::recv_into(fd, buf.as_mut_ptr(), buf.len(), 0)? };
    Ok(part.into())
}

/// The parts of the message being received, kept between receive calls.
#[derive(Debug)]
pub(crate) struct Reassembly {
    state: Mutex<Partial>,
    max_message_size: AtomicUsize,
}

#[derive(Debug, Default)]
struct Partial {
    data: Vec<u8>,
    first: Option<raw::RawPart>,
    /// True while the rest of an oversized message is being read and dropped.
    discarding: bool,
}

impl Default for Reassembly {
    fn default() -> Reassembly {
        Reassembly {
            state: Mutex::new(Partial::default()),
            max_message_size: AtomicUsize::new(DEFAULT_MAX_MESSAGE_SIZE),
        }
    }
}

impl Reassembly {
    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max_message_size(&self, limit: usize) {
        self.max_message_size.store(limit, Ordering::Relaxed);
    }

    /// Reads parts until a whole message or notification is there.
    ///
    /// On a non-blocking socket an `EAGAIN` between parts returns `WouldBlock` and keeps the
    /// parts read so far for the next call.
    pub(crate) fn recv(&self, fd: BorrowedFd<'_>) -> Result<Received, SctpError> {
        let mut partial = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let limit = self.max_message_size();
        loop {
            let part = partial
                .read_part(fd)
                .map_err(|source| SctpError::Recv { source })?;
            if part.len == 0 && !part.notification && partial.first.is_none() {
                return Ok(Received::Eof);
            }
            if partial.discarding {
                partial.discard_through(&part);
                continue;
            }
            if partial.first.is_none() {
                partial.first = Some(part);
            }
            if partial.data.len() > limit {
                partial.data = Vec::new();
                partial.first = None;
                partial.discarding = !part.complete;
                return Err(SctpError::MessageTooLarge { limit });
            }
            if part.complete {
                return partial.take(part.control.nxtinfo);
            }
        }
    }
}

impl Partial {
    /// Reads one part, appending its bytes to `data`.
    fn read_part(&mut self, fd: BorrowedFd<'_>) -> io::Result<raw::RawPart> {
        if self.discarding {
            self.data.clear();
        }
        self.data.reserve(READ_CHUNK);
        let spare = self.data.spare_capacity_mut();
        // SAFETY: `spare` is the vector's unused capacity, valid for writes of its length.
        let part = unsafe { raw::recv_into(fd, spare.as_mut_ptr().cast::<u8>(), spare.len(), 0)? };
        let len = self.data.len() + part.len;
        // SAFETY: the kernel initialized `part.len` bytes of the spare capacity, which follow the
        // vector's `len()` initialized bytes.
        unsafe { self.data.set_len(len) };
        Ok(part)
    }

    fn discard_through(&mut self, part: &raw::RawPart) {
        self.data.clear();
        if part.complete {
            self.discarding = false;
        }
    }

    /// Returns the message read so far; `next` is the `SCTP_NXTINFO` of its last part.
    fn take(&mut self, next: Option<NextInfo>) -> Result<Received, SctpError> {
        // A small message is copied out so the read buffer keeps its capacity for the next one.
        let data = if self.data.len() < self.data.capacity() / 2 {
            let copy = self.data.clone();
            self.data.clear();
            copy
        } else {
            std::mem::take(&mut self.data)
        };
        let Some(first) = self.first.take() else {
            return Ok(Received::Eof);
        };
        if first.notification {
            return Notification::parse(&data)
                .map(Received::Notification)
                .map_err(|source| SctpError::Notification { source });
        }
        Ok(Received::Message(Message {
            data,
            info: first.control.rcvinfo,
            next,
            from: first.from,
        }))
    }
}
