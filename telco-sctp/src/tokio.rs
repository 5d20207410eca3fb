//! The SCTP sockets on tokio (feature `tokio`): each operation as an `async fn`, a `poll_*`
//! method for hand-written futures, and a `try_*` method that returns at once with a
//! would-block error ([`SctpError::is_would_block`]) when the socket is not ready.
//!
//! The sockets are the blocking types in non-blocking mode, registered with tokio's reactor
//! through [`AsyncFd`]; [`SctpOptions`] works on them unchanged. They must be created inside a
//! tokio runtime with I/O enabled: the constructors panic outside one, as tokio's own sockets
//! do.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::error::SctpError;
use crate::ext::{SctpOptions, Sealed};
use crate::info::{AssocId, SendInfo};
use crate::recv::{Received, RecvPart};
use crate::socket::SctpBuilder;

/// Registers one of the crate's sockets with the reactor.
///
/// # Panics
///
/// Panics outside a tokio runtime, as [`AsyncFd::register`] does.
fn register<T: AsRawFd + OwnsFd>(socket: T) -> Result<AsyncFd<T>, SctpError> {
    // SAFETY: `T` is one of the crate's socket types (the `OwnsFd` bound), which own their
    // descriptor through a `socket2::Socket` and return that same descriptor from every
    // `as_raw_fd` call until they are dropped, so it stays open while the `AsyncFd` owns them.
    unsafe { AsyncFd::register(socket) }.map_err(|error| {
        let (_, source) = error.into_parts();
        SctpError::Register { source }
    })
}

/// The crate's socket types, which own their file descriptor for their whole life.
trait OwnsFd {}

impl OwnsFd for crate::SctpListener {}
impl OwnsFd for crate::SctpStream {}
impl OwnsFd for crate::OneToManySocket {}

fn registration(source: io::Error) -> SctpError {
    SctpError::Register { source }
}

/// Runs `op` until it does not return would-block, waiting for `interest` in between.
async fn async_op<T: AsRawFd, R>(
    io: &AsyncFd<T>,
    interest: Interest,
    mut op: impl FnMut(&T) -> Result<R, SctpError>,
) -> Result<R, SctpError> {
    loop {
        let mut guard = io.ready(interest).await.map_err(registration)?;
        match op(io.get_ref()) {
            Err(error) if error.is_would_block() => guard.clear_ready(),
            result => return result,
        }
    }
}

/// Polls `op` until it does not return would-block: the `poll_*` form of [`async_op`].
fn poll_op<T: AsRawFd, R>(
    io: &AsyncFd<T>,
    cx: &mut Context<'_>,
    interest: Interest,
    mut op: impl FnMut(&T) -> Result<R, SctpError>,
) -> Poll<Result<R, SctpError>> {
    loop {
        let ready = if interest.is_readable() {
            io.poll_read_ready(cx)
        } else {
            io.poll_write_ready(cx)
        };
        let mut guard = ready!(ready).map_err(registration)?;
        match op(io.get_ref()) {
            Err(error) if error.is_would_block() => guard.clear_ready(),
            result => return Poll::Ready(result),
        }
    }
}

/// A one-to-one listening socket on tokio.
#[derive(Debug)]
pub struct SctpListener {
    io: AsyncFd<crate::SctpListener>,
}

impl SctpListener {
    /// Binds to `addrs` and listens, like [`crate::SctpListener::bind`].
    ///
    /// # Errors
    ///
    /// As [`crate::SctpListener::bind`], and [`SctpError::Register`] outside a tokio runtime.
    pub fn bind(addrs: &[SocketAddr]) -> Result<SctpListener, SctpError> {
        SctpListener::from_std(crate::SctpListener::bind(addrs)?)
    }

    /// Moves a blocking listener (for example from [`SctpBuilder::listen`]) onto tokio.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be made non-blocking or registered.
    pub fn from_std(listener: crate::SctpListener) -> Result<SctpListener, SctpError> {
        listener.set_nonblocking(true)?;
        Ok(SctpListener {
            io: register(listener)?,
        })
    }

    /// Waits for an association.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no association was taken from
    /// the queue.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Accept`].
    pub async fn accept(&self) -> Result<(SctpStream, Option<SocketAddr>), SctpError> {
        let (stream, peer) =
            async_op(&self.io, Interest::READABLE, crate::SctpListener::accept).await?;
        Ok((SctpStream::from_std(stream)?, peer))
    }

    /// Polls for an association.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Accept`].
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(SctpStream, Option<SocketAddr>), SctpError>> {
        let (stream, peer) = ready!(poll_op(
            &self.io,
            cx,
            Interest::READABLE,
            crate::SctpListener::accept
        ))?;
        Poll::Ready(SctpStream::from_std(stream).map(|stream| (stream, peer)))
    }

    /// Takes an association if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Accept`]; a would-block error if none is queued.
    pub fn try_accept(&self) -> Result<(SctpStream, Option<SocketAddr>), SctpError> {
        let (stream, peer) = self.io.get_ref().accept()?;
        Ok((SctpStream::from_std(stream)?, peer))
    }

    /// Returns the blocking listener underneath.
    pub fn get_ref(&self) -> &crate::SctpListener {
        self.io.get_ref()
    }
}

/// A one-to-one association on tokio.
#[derive(Debug)]
pub struct SctpStream {
    io: AsyncFd<crate::SctpStream>,
}

impl SctpStream {
    /// Connects to the peer's addresses with the kernel's default options.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future closes the socket, which aborts the association
    /// being set up.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::connect`].
    pub async fn connect(addrs: &[SocketAddr]) -> Result<SctpStream, SctpError> {
        SctpStream::connect_with(&SctpBuilder::new(), addrs, &[]).await
    }

    /// Connects with the options of `builder`, binding `local` first if it is not empty.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// As [`SctpBuilder::connect`].
    pub async fn connect_with(
        builder: &SctpBuilder,
        addrs: &[SocketAddr],
        local: &[SocketAddr],
    ) -> Result<SctpStream, SctpError> {
        let inner = builder.connect_socket(addrs, local)?;
        crate::stream::set_nonblocking(&inner, true)?;
        let (assoc_id, in_progress) = inner.connectx(addrs)?;
        let io = register(crate::SctpStream::from_inner(inner, assoc_id))?;
        if in_progress {
            let guard = io.writable().await.map_err(registration)?;
            drop(guard);
            let pending = io.get_ref().as_socket().take_error();
            let failure = match pending {
                Ok(None) => None,
                Ok(Some(error)) | Err(error) => Some(error),
            };
            if let Some(source) = failure {
                return Err(SctpError::Connect {
                    addrs: addrs.to_vec(),
                    source,
                });
            }
        }
        Ok(SctpStream { io })
    }

    /// Moves a blocking stream onto tokio.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be made non-blocking or registered.
    pub fn from_std(stream: crate::SctpStream) -> Result<SctpStream, SctpError> {
        stream.set_nonblocking(true)?;
        Ok(SctpStream {
            io: register(stream)?,
        })
    }

    /// Returns the association id.
    pub fn assoc_id(&self) -> AssocId {
        self.io.get_ref().assoc_id()
    }

    /// Sends `data` as one message with `info`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is queued whole or not at all, so a dropped future sent nothing.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::send`].
    pub async fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        async_op(&self.io, Interest::WRITABLE, |stream| {
            stream.send(data, info)
        })
        .await
    }

    /// Polls to send `data` as one message with `info`.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::send`].
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        info: &SendInfo,
    ) -> Poll<Result<usize, SctpError>> {
        poll_op(&self.io, cx, Interest::WRITABLE, |stream| {
            stream.send(data, info)
        })
    }

    /// Sends `data` if the send buffer has room for it now.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::send`]; a would-block error if the buffer is full.
    pub fn try_send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        self.io.get_ref().send(data, info)
    }

    /// Receives a whole message or notification.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the parts of a message read before the future is dropped stay in the
    /// socket, and the next receive continues the same message.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv`].
    pub async fn recv(&self) -> Result<Received, SctpError> {
        async_op(&self.io, Interest::READABLE, crate::SctpStream::recv).await
    }

    /// Polls to receive a whole message or notification.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv`].
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Received, SctpError>> {
        poll_op(&self.io, cx, Interest::READABLE, crate::SctpStream::recv)
    }

    /// Receives a whole message if all of it is there now.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv`]; a would-block error otherwise, keeping any parts read.
    pub fn try_recv(&self) -> Result<Received, SctpError> {
        self.io.get_ref().recv()
    }

    /// Receives one `recvmsg` call's worth into `buf`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is read unless the future completes.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv_part`].
    pub async fn recv_part(&self, buf: &mut [u8]) -> Result<RecvPart, SctpError> {
        async_op(&self.io, Interest::READABLE, |stream| stream.recv_part(buf)).await
    }

    /// Polls to receive one part into `buf`.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv_part`].
    pub fn poll_recv_part(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<RecvPart, SctpError>> {
        poll_op(&self.io, cx, Interest::READABLE, |stream| {
            stream.recv_part(buf)
        })
    }

    /// Receives one part into `buf` if data is there now.
    ///
    /// # Errors
    ///
    /// As [`crate::SctpStream::recv_part`]; a would-block error otherwise.
    pub fn try_recv_part(&self, buf: &mut [u8]) -> Result<RecvPart, SctpError> {
        self.io.get_ref().recv_part(buf)
    }

    /// Starts a graceful shutdown, as [`crate::SctpStream::shutdown`].
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn shutdown(&self) -> Result<(), SctpError> {
        self.io.get_ref().shutdown()
    }

    /// Aborts the association and closes the socket, as [`crate::SctpStream::abort`].
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    pub fn abort(self) -> Result<(), SctpError> {
        self.io.into_inner().abort()
    }

    /// Returns the blocking stream underneath, for its setters.
    pub fn get_ref(&self) -> &crate::SctpStream {
        self.io.get_ref()
    }
}

/// A one-to-many socket on tokio.
#[derive(Debug)]
pub struct OneToManySocket {
    io: AsyncFd<crate::OneToManySocket>,
}

impl OneToManySocket {
    /// Binds to `addrs` and listens, like [`crate::OneToManySocket::bind`].
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::bind`], and [`SctpError::Register`] outside a tokio
    /// runtime.
    pub fn bind(addrs: &[SocketAddr]) -> Result<OneToManySocket, SctpError> {
        OneToManySocket::from_std(crate::OneToManySocket::bind(addrs)?)
    }

    /// Moves a blocking one-to-many socket onto tokio.
    ///
    /// # Errors
    ///
    /// Fails if the socket cannot be made non-blocking or registered.
    pub fn from_std(socket: crate::OneToManySocket) -> Result<OneToManySocket, SctpError> {
        socket.set_nonblocking(true)?;
        Ok(OneToManySocket {
            io: register(socket)?,
        })
    }

    /// Starts an association to the peer's addresses and returns its id without waiting for
    /// it to come up. Subscribe to [`Event::AssocChange`](crate::Event::AssocChange) to see it
    /// come up; messages sent before then are queued.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::connectx`].
    pub fn connectx(&self, addrs: &[SocketAddr]) -> Result<AssocId, SctpError> {
        self.io.get_ref().connectx(addrs)
    }

    /// Sends `data` on association `info.assoc_id`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is queued whole or not at all.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send`].
    pub async fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        async_op(&self.io, Interest::WRITABLE, |socket| {
            socket.send(data, info)
        })
        .await
    }

    /// Polls to send `data` on association `info.assoc_id`.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send`].
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        info: &SendInfo,
    ) -> Poll<Result<usize, SctpError>> {
        poll_op(&self.io, cx, Interest::WRITABLE, |socket| {
            socket.send(data, info)
        })
    }

    /// Sends `data` if the send buffer has room now.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send`]; a would-block error if the buffer is full.
    pub fn try_send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        self.io.get_ref().send(data, info)
    }

    /// Sends `data` to peer address `to`, setting up an association if there is none.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is queued whole or not at all.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send_to`].
    pub async fn send_to(
        &self,
        data: &[u8],
        to: SocketAddr,
        info: &SendInfo,
    ) -> Result<usize, SctpError> {
        async_op(&self.io, Interest::WRITABLE, |socket| {
            socket.send_to(data, to, info)
        })
        .await
    }

    /// Polls to send `data` to peer address `to`.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send_to`].
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        to: SocketAddr,
        info: &SendInfo,
    ) -> Poll<Result<usize, SctpError>> {
        poll_op(&self.io, cx, Interest::WRITABLE, |socket| {
            socket.send_to(data, to, info)
        })
    }

    /// Sends `data` to `to` if the send buffer has room now.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::send_to`]; a would-block error if the buffer is full.
    pub fn try_send_to(
        &self,
        data: &[u8],
        to: SocketAddr,
        info: &SendInfo,
    ) -> Result<usize, SctpError> {
        self.io.get_ref().send_to(data, to, info)
    }

    /// Receives a whole message or notification from any association.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: parts read before the future is dropped stay in the socket.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::recv`].
    pub async fn recv(&self) -> Result<Received, SctpError> {
        async_op(&self.io, Interest::READABLE, crate::OneToManySocket::recv).await
    }

    /// Polls to receive a whole message or notification.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::recv`].
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Received, SctpError>> {
        poll_op(
            &self.io,
            cx,
            Interest::READABLE,
            crate::OneToManySocket::recv,
        )
    }

    /// Receives a whole message if all of it is there now.
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::recv`]; a would-block error otherwise.
    pub fn try_recv(&self) -> Result<Received, SctpError> {
        self.io.get_ref().recv()
    }

    /// Starts a graceful shutdown of association `assoc_id`, as
    /// [`crate::OneToManySocket::shutdown`].
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn shutdown(&self, assoc_id: AssocId) -> Result<(), SctpError> {
        self.io.get_ref().shutdown(assoc_id)
    }

    /// Aborts association `assoc_id` with `reason`, as [`crate::OneToManySocket::abort`].
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn abort(&self, assoc_id: AssocId, reason: &[u8]) -> Result<(), SctpError> {
        self.io.get_ref().abort(assoc_id, reason)
    }

    /// Moves association `assoc_id` to its own tokio [`SctpStream`].
    ///
    /// # Errors
    ///
    /// As [`crate::OneToManySocket::peeloff`].
    pub fn peeloff(&self, assoc_id: AssocId) -> Result<SctpStream, SctpError> {
        SctpStream::from_std(self.io.get_ref().peeloff(assoc_id)?)
    }

    /// Returns the blocking socket underneath, for its setters.
    pub fn get_ref(&self) -> &crate::OneToManySocket {
        self.io.get_ref()
    }
}

macro_rules! async_fd_traits {
    ($($name:ty),*) => {$(
        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.io.get_ref().as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.io.as_raw_fd()
            }
        }

        impl Sealed for $name {}
        impl SctpOptions for $name {}
    )*};
}

async_fd_traits!(SctpListener, SctpStream, OneToManySocket);

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn async_types_are_send_and_sync() {
        assert_send_sync::<SctpListener>();
        assert_send_sync::<SctpStream>();
        assert_send_sync::<OneToManySocket>();
    }

    #[test]
    fn recv_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        // The future is never polled: only its type matters here.
        let future = async {
            let stream: SctpStream = unreachable_stream();
            stream.recv().await
        };
        assert_send(&future);
    }

    fn unreachable_stream() -> SctpStream {
        panic!("only used for its type")
    }
}
