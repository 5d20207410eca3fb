//! [`Netlink`]: a blocking rtnetlink session bound to one network namespace.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::{Netns, NetnsError};

/// A job for the session thread: it gets the runtime and the rtnetlink handle.
type Job = Box<dyn FnOnce(&tokio::runtime::Runtime, &rtnetlink::Handle) + Send>;

/// The session thread went away (it panicked while running a request).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("netlink session thread is gone")]
pub struct SessionClosed;

/// A route netlink session inside one network namespace, with a blocking API.
///
/// The session owns a thread that entered the namespace (when one is given) and runs a
/// current-thread tokio runtime which drives an `rtnetlink` connection. Requests from any
/// thread go to it through a channel, so callers need no runtime and their threads never
/// change namespace. Clones share the thread; it ends when the last clone is dropped.
///
/// The link, address, route and sysctl operations hang off it: [`Netlink::links`],
/// [`Netlink::addresses`], [`Netlink::routes`], [`Netlink::sysctl`].
#[derive(Clone)]
pub struct Netlink {
    inner: Arc<Session>,
}

struct Session {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    netns: String,
    /// A descriptor of the session's namespace, so callers can name it as the target of a
    /// move without a trip to the session thread. `None` when it could not be opened at
    /// start (no `/proc`), and then [`Netlink::open_netns`] opens it on the session thread.
    handle: Option<Netns>,
}

impl Netlink {
    /// Opens a session in the caller's namespace.
    pub fn current() -> Result<Netlink, NetnsError> {
        Self::start(None, Netns::current().ok(), "current".to_owned())
    }

    /// Opens a session inside `netns`.
    pub fn in_netns(netns: &Netns) -> Result<Netlink, NetnsError> {
        Self::start(
            Some(netns.try_clone()?),
            Some(netns.try_clone()?),
            netns.to_string(),
        )
    }

    fn start(
        netns: Option<Netns>,
        handle: Option<Netns>,
        label: String,
    ) -> Result<Netlink, NetnsError> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), NetnsError>>();
        let thread_label = label.clone();
        let thread = std::thread::Builder::new()
            .name("telco-netlink".to_owned())
            .spawn(move || serve(netns, &thread_label, &ready_tx, &job_rx))
            .map_err(|source| NetnsError::SpawnThread {
                netns: label.clone(),
                source,
            })?;
        let ready = ready_rx.recv().unwrap_or(Err(NetnsError::SpawnThread {
            netns: label.clone(),
            source: std::io::Error::other("netlink thread ended during start"),
        }));
        if let Err(error) = ready {
            let _ = thread.join();
            return Err(error);
        }
        Ok(Netlink {
            inner: Arc::new(Session {
                jobs: Mutex::new(Some(job_tx)),
                thread: Mutex::new(Some(thread)),
                netns: label,
                handle,
            }),
        })
    }

    /// The namespace this session works in, for messages: its name, path or `current`.
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// Opens a second handle to the namespace this session works in, for example to move a
    /// link into it from another session. Duplicates a descriptor kept since the session
    /// started, so it needs no trip to the session thread.
    pub fn open_netns(&self) -> Result<Netns, NetnsError> {
        match &self.inner.handle {
            Some(handle) => handle.try_clone(),
            None => self.run_inside(Netns::current).map_err(|closed| {
                NetnsError::syscall(
                    "open /proc/thread-self/ns/net",
                    self.netns(),
                    io::Error::other(closed),
                )
            })?,
        }
    }

    /// Runs an async rtnetlink request on the session thread and waits for its result.
    pub(crate) fn call<R, F, Fut>(&self, request: F) -> Result<R, SessionClosed>
    where
        R: Send + 'static,
        F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
        Fut: Future<Output = R>,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |runtime, handle| {
            let result = runtime.block_on(request(handle.clone()));
            let _ = tx.send(result);
        });
        self.submit(job)?;
        rx.recv().map_err(|_| SessionClosed)
    }

    /// Runs a blocking closure on the session thread, which is inside the session's
    /// namespace: for system calls that act on the caller's namespace, such as opening
    /// `/dev/net/tun` or `/proc/sys/net`.
    pub fn run_inside<R, F>(&self, f: F) -> Result<R, SessionClosed>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |_, _| {
            let _ = tx.send(f());
        });
        self.submit(job)?;
        rx.recv().map_err(|_| SessionClosed)
    }

    fn submit(&self, job: Job) -> Result<(), SessionClosed> {
        let jobs = self.inner.jobs.lock().map_err(|_| SessionClosed)?;
        jobs.as_ref()
            .ok_or(SessionClosed)?
            .send(job)
            .map_err(|_| SessionClosed)
    }
}

/// The body of the session thread: enter the namespace, connect, then run jobs until every
/// sender is gone.
fn serve(
    netns: Option<Netns>,
    label: &str,
    ready: &mpsc::Sender<Result<(), NetnsError>>,
    jobs: &mpsc::Receiver<Job>,
) {
    let started = (|| {
        if let Some(netns) = &netns {
            netns.enter_current_thread()?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| NetnsError::syscall("build tokio runtime", label, source))?;
        let handle = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()
                .map_err(|source| NetnsError::syscall("socket(NETLINK_ROUTE)", label, source))?;
            tokio::spawn(connection);
            Ok::<_, NetnsError>(handle)
        })?;
        Ok((runtime, handle))
    })();
    drop(netns);
    let (runtime, handle) = match started {
        Ok(session) => {
            let _ = ready.send(Ok(()));
            session
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    while let Ok(job) = jobs.recv() {
        job(&runtime, &handle);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut thread) = self.thread.lock()
            && let Some(thread) = thread.take()
        {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink")
            .field("netns", &self.inner.netns)
            .finish()
    }
}

impl Netns {
    /// Opens a netlink session inside this namespace; see [`Netlink`].
    pub fn netlink(&self) -> Result<Netlink, NetnsError> {
        Netlink::in_netns(self)
    }
}

/// The positive errno of a netlink NACK, or `None` for other rtnetlink errors.
pub(crate) fn errno_of(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) if message.raw_code() != 0 => {
            Some(message.raw_code().abs())
        }
        _ => None,
    }
}
