//! Async handles for services (feature `tokio`): [`AsyncDatabase`], one thread per
//! connection fed by a bounded queue, as tokio-rusqlite does; and
//! [`AsyncOptions`], how long that queue may grow.
//!
//! A call is a closure, run whole on the connection's own thread, never on the
//! runtime's workers. What a service can rely on:
//!
//! - **Back-pressure.** At most [`AsyncOptions::queue`] calls wait per handle; one
//!   more is refused at once with [`ErrorKind::QueueFull`], and nothing of it runs.
//!   A waiting call holds no thread: only its closure, in the queue. (A call
//!   whose future was dropped keeps its place until the connection's thread
//!   reaches it and passes over it, at once.)
//! - **Cancellation.** Dropping a call's future (a request cancelled, a timeout, a
//!   `select!` that went the other way) before the call starts means it never
//!   runs. Dropped while it runs, the statement running is interrupted
//!   (`sqlite3_interrupt`, and SQLite's progress handler for one that starts after
//!   the drop), a wait for a lock ends, the transaction open is rolled
//!   back, and any transaction the closure begins or would commit after the drop
//!   fails with [`ErrorKind::Cancelled`]; what the closure committed before the
//!   drop stays (use [`AsyncDatabase::transaction`] for all or nothing). A drop
//!   that comes while COMMIT itself runs cannot undo it.
//! - **Panics.** A panic in a closure rolls its transaction back and comes back as
//!   [`ErrorKind::Panicked`]; the handle goes on serving. A connection a call left
//!   with a transaction open is rolled back (or reopened) before the next call; a
//!   pooled one is handed back to the [`Pool`](crate::pool::Pool), which closes it.
//!
//! The handle needs no particular runtime: its futures wait on a channel.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::database::{Database, OpenOptions};
use crate::error::{Error, ErrorKind};
use crate::store::Store;

/// How an [`AsyncDatabase`] queues its calls: at most 64 waiting by default.
///
/// ```
/// use idstore_repo::asynchronous::AsyncOptions;
///
/// let options = AsyncOptions::new().queue(16); // a 17th waiting call is refused
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AsyncOptions {
    queue: usize,
}

impl Default for AsyncOptions {
    fn default() -> Self {
        AsyncOptions { queue: 64 }
    }
}

impl AsyncOptions {
    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many calls wait for a connection; one more fails at once with
    /// [`ErrorKind::QueueFull`] (0: a call is taken only when a connection is free).
    pub fn queue(mut self, calls: usize) -> Self {
        self.queue = calls;
        self
    }
}

/// A database for async code (feature `tokio`): each call runs a whole unit of
/// work, its closure, on the connection's own thread, after the calls queued before
/// it; see [the module](self) for back-pressure, cancellation and panics. Clones
/// share the connection and its queue. For reads in parallel,
/// [`AsyncDatabase::pooled`] serves calls from a [`Pool`](crate::pool::Pool)'s
/// connections, one thread each.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// use idstore_repo::{MigrateOptions, OpenOptions, SettingsScope};
/// use idstore_repo::asynchronous::AsyncDatabase;
///
/// let db = AsyncDatabase::open(path, OpenOptions::new()).await?;
/// db.run(|db| db.migrate(&MigrateOptions::new()).map(drop)).await?;
/// let settings = db.run(|db| db.store()?.settings(SettingsScope::Master)).await?;
/// # let _ = settings;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncDatabase {
    shared: Arc<Shared>,
}

/// What the clones of a handle share: the sending end of its queue.
struct Shared {
    queue: SyncSender<Job>,
    path: PathBuf,
    limit: usize,
    connections: u32,
}

impl std::fmt::Debug for AsyncDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDatabase")
            .field("path", &self.shared.path)
            .field("connections", &self.shared.connections)
            .field("queue", &self.shared.limit)
            .finish_non_exhaustive()
    }
}

/// One queued call: its closure (which answers the call's future itself, given a
/// connection or the error that kept it from having one) and what the future and
/// the thread running it share.
struct Job {
    ticket: Arc<Ticket>,
    work: Work,
}

/// A call's closure, as queued: it runs the caller's closure and gives back how
/// to deliver the answer, which the connection's thread does once the connection
/// is settled (no transaction of the call left open, no lock held).
type Work = Box<dyn FnOnce(Result<&mut Database, Error>) -> Deliver + Send>;

/// Sends a call's answer to its future.
type Deliver = Box<dyn FnOnce() + Send>;

/// A call's state, shared by its future and the connection's thread.
#[derive(Default)]
struct Ticket {
    /// Set when the future is dropped before it has its answer.
    cancelled: Arc<AtomicBool>,
    /// The connection running the call, while it runs. Held locked while it is
    /// interrupted, so the thread cannot go on to another call, or close it,
    /// meanwhile.
    running: Mutex<Option<crate::connection::ffi::RawDb>>,
}

impl Ticket {
    /// The call's future was dropped: a call not started never starts, one
    /// running is interrupted.
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(raw) = *running {
            raw.interrupt();
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn set_running(&self, raw: Option<crate::connection::ffi::RawDb>) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = raw;
    }
}

/// Cancels its call when dropped before [`Armed::disarm`]: the future of a call
/// holds one across its wait.
struct Armed(Option<Arc<Ticket>>);

impl Armed {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(ticket) = self.0.take() {
            ticket.cancel();
        }
    }
}

/// Where a connection thread gets its connection.
enum Source {
    /// Its own, for the handle's whole life.
    Own(Box<Database>),
    /// A pool's, checked out for each call.
    #[cfg(feature = "pool")]
    Pool(crate::pool::Pool),
}

impl AsyncDatabase {
    /// Wraps an open database: its connection moves to a thread of its own, with a
    /// queue of [`AsyncOptions::new`]'s length. Panics if the system cannot start a
    /// thread, as [`std::thread::spawn`] does.
    pub fn new(db: Database) -> Self {
        Self::with_options(db, AsyncOptions::new())
    }

    /// [`AsyncDatabase::new`], with a queue as `options` say.
    pub fn with_options(db: Database, options: AsyncOptions) -> Self {
        let path = db.path().to_owned();
        let (queue, jobs) = std::sync::mpsc::sync_channel(options.queue);
        spawn(move || serve(Source::Own(Box::new(db)), &Mutex::new(jobs)))
            .expect("the system starts the database's thread");
        Self::over(queue, path, options.queue, 1)
    }

    /// Opens `path` with `options` on the connection's own thread.
    pub async fn open(path: impl Into<PathBuf>, options: OpenOptions) -> Result<Self, Error> {
        Self::open_with(path, options, AsyncOptions::new()).await
    }

    /// [`AsyncDatabase::open`], with a queue as `queue` says.
    pub async fn open_with(
        path: impl Into<PathBuf>,
        options: OpenOptions,
        queue: AsyncOptions,
    ) -> Result<Self, Error> {
        let path = path.into();
        let (opened, ready) = oneshot::channel();
        let (sender, jobs) = std::sync::mpsc::sync_channel(queue.queue);
        let opening = path.clone();
        spawn(move || match options.open(&opening) {
            Ok(db) => {
                let _ = opened.send(Ok(()));
                serve(Source::Own(Box::new(db)), &Mutex::new(jobs));
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        })
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Other,
                "the system could not start the database's thread",
                e,
            )
        })?;
        ready.await.unwrap_or_else(|_| Err(stopped(&path)))?;
        Ok(Self::over(sender, path, queue.queue, 1))
    }

    /// Serves calls from `pool`'s connections, one thread per connection the pool
    /// may open ([`PoolOptions::max_size`](crate::pool::PoolOptions::max_size)), all fed
    /// from one queue as `options` say: calls run in parallel, each on a
    /// connection checked out for it (waiting up to the pool's checkout timeout,
    /// then [`ErrorKind::PoolTimeout`]). Panics if the system cannot start a
    /// thread, as [`std::thread::spawn`] does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), idstore_repo::Error> {
    /// # let test = idstore_repo::testing::TestDatabase::seeded()?;
    /// use idstore_repo::asynchronous::{AsyncDatabase, AsyncOptions};
    /// use idstore_repo::{OpenOptions, SettingsScope};
    /// use idstore_repo::pool::{Pool, PoolOptions};
    ///
    /// let pool = Pool::open_with(test.path(), OpenOptions::new(), PoolOptions::new().max_size(4))?;
    /// let reads = AsyncDatabase::pooled(pool, AsyncOptions::new().queue(32));
    /// let view = reads.run(|db| db.store()?.settings(SettingsScope::Merged(None))).await?;
    /// assert!(view.active_did.is_some());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "pool")]
    pub fn pooled(pool: crate::pool::Pool, options: AsyncOptions) -> Self {
        let (queue, jobs) = std::sync::mpsc::sync_channel(options.queue);
        let jobs = Arc::new(Mutex::new(jobs));
        let connections = pool.max_size();
        let path = pool.path().to_owned();
        for _ in 0..connections {
            let (pool, jobs) = (pool.clone(), Arc::clone(&jobs));
            spawn(move || serve(Source::Pool(pool), &jobs))
                .expect("the system starts the database's threads");
        }
        Self::over(queue, path, options.queue, connections)
    }

    fn over(queue: SyncSender<Job>, path: PathBuf, limit: usize, connections: u32) -> Self {
        AsyncDatabase {
            shared: Arc::new(Shared {
                queue,
                path,
                limit,
                connections,
            }),
        }
    }

    /// Queues `work` and returns what it returns, once a connection has run it
    /// (after the calls queued before it). Refused at once, nothing run, when the
    /// queue is full ([`ErrorKind::QueueFull`]). Each idstore call inside `work` is
    /// one transaction of its own; see [`AsyncDatabase::transaction`] for one
    /// around them all.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Database) -> Result<T, Error> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let ticket = Arc::new(Ticket::default());
        let job = Job {
            ticket: Arc::clone(&ticket),
            work: Box::new(move |db: Result<&mut Database, Error>| {
                let done = db.and_then(|db| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(db)))
                        .unwrap_or_else(|panic| Err(Error::panicked("the call's closure", panic)))
                });
                Box::new(move || {
                    let _ = answer.send(done);
                })
            }),
        };
        let shared = &self.shared;
        shared.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Error::at(
                ErrorKind::QueueFull,
                &shared.path,
                format!(
                    "{} calls are already waiting for {}: this one was not queued, and nothing of it ran; retry later, or allow a longer queue (AsyncOptions::queue)",
                    shared.limit,
                    shared.path.display()
                ),
            ),
            TrySendError::Disconnected(_) => stopped(&shared.path),
        })?;
        let armed = Armed(Some(ticket));
        let done = answered.await;
        armed.disarm();
        done.unwrap_or_else(|_| Err(stopped(&shared.path)))
    }

    /// Runs `work` as one unit of work ([`Database::transaction`]): everything it
    /// does through the [`Store`] commits together, or nothing does (an error, a
    /// panic, or the call's future dropped before the commit).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), idstore_repo::Error> {
    /// # let test = idstore_repo::testing::TestDatabase::new()?;
    /// use idstore_repo::domain::{Did, NewAccount};
    /// use idstore_repo::OpenOptions;
    /// use idstore_repo::asynchronous::AsyncDatabase;
    ///
    /// let db = AsyncDatabase::open(test.path(), OpenOptions::new()).await?;
    /// let alice = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
    /// db.transaction(move |store| {
    ///     store.add_account(&NewAccount::new(alice.clone(), "02ab", "2024-03-01T12:00:00.000Z"))?;
    ///     store.set_active_did(Some(&alice))
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.run(move |db| db.transaction(work)).await
    }
}

/// The refusal of a call whose connection thread is gone.
fn stopped(path: &Path) -> Error {
    Error::at(
        ErrorKind::Other,
        path,
        format!(
            "the connection to {} stopped: a call left it unusable and it could not be opened again; open the database again",
            path.display()
        ),
    )
}

/// Starts a connection's thread.
fn spawn(serve: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("idstore-db".to_owned())
        .spawn(serve)
        .map(drop)
}

/// A connection's thread: runs the queued calls one at a time until every handle
/// is gone (the queue closed), or the connection is lost for good.
fn serve(mut source: Source, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if job.ticket.cancelled() {
            continue;
        }
        // The answer goes once the connection is settled: a caller that has it
        // finds the file as the call left it, with no lock of the call's held.
        match &mut source {
            Source::Own(db) => {
                let deliver = run_job(db, job);
                let usable = db.settle_after_call() || db.reopen().is_ok();
                if let Some(deliver) = deliver {
                    deliver();
                }
                if !usable {
                    return;
                }
            }
            #[cfg(feature = "pool")]
            Source::Pool(pool) => match pool.get() {
                // A connection a call broke is closed by the pool when it comes back.
                Ok(mut db) => {
                    let deliver = run_job(&mut db, job);
                    drop(db);
                    if let Some(deliver) = deliver {
                        deliver();
                    }
                }
                Err(e) => (job.work)(Err(e))(),
            },
        }
    }
}

/// Runs one call on `db`, interruptible while it runs; its answer, to deliver, if
/// it ran.
fn run_job(db: &mut Database, job: Job) -> Option<Deliver> {
    let Job { ticket, work } = job;
    ticket.set_running(Some(db.raw()));
    // A drop between the check above and now found nothing running to interrupt.
    let deliver = (!ticket.cancelled()).then(|| {
        crate::connection::transaction::cancellable(Arc::clone(&ticket.cancelled), || work(Ok(db)))
    });
    ticket.set_running(None);
    deliver
}
