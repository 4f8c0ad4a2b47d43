//! The async handle: calls run on the connection's own thread, a bounded queue
//! refuses what it cannot hold, a call whose future is dropped never starts or is
//! interrupted and rolled back, a panic comes back as an error, and waiting calls
//! hold no thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use idstore_domain::{Did, NewAccount, SettingsChange, SettingsField};
use idstore_repo::asynchronous::{AsyncDatabase, AsyncOptions};
use idstore_repo::pool::{Pool, PoolOptions};
use idstore_repo::testing::TestDatabase;
use idstore_repo::{Database, Error, ErrorKind, OpenOptions, SettingsScope};

use crate::common::*;

/// A new, migrated test database and an async handle on it with default options.
async fn opened() -> (TestDatabase, AsyncDatabase) {
    let test = TestDatabase::new().unwrap();
    let db = AsyncDatabase::open(test.path(), OpenOptions::new())
        .await
        .unwrap();
    (test, db)
}

/// Polls `fut` once, as a runtime first would: a call is queued then.
fn poll_once<F: Future>(fut: &mut Pin<Box<F>>) -> Poll<F::Output> {
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// A call that holds the connection's thread until `release` is sent to, queued
/// and, once `running` has heard from it, running.
struct Blocker<F> {
    call: Pin<Box<F>>,
    release: mpsc::Sender<()>,
    running: mpsc::Receiver<()>,
}

fn blocker(db: &AsyncDatabase) -> Blocker<impl Future<Output = Result<(), Error>>> {
    let (release, wait) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel::<()>();
    let mut call = Box::pin(db.run(move |_| {
        started.send(()).unwrap();
        wait.recv().unwrap();
        Ok(())
    }));
    assert!(poll_once(&mut call).is_pending());
    Blocker {
        call,
        release,
        running,
    }
}

fn account(did: &str) -> NewAccount {
    NewAccount::new(Did::parse(did).unwrap(), "02ab", "2024-03-01T12:00:00.000Z")
}

/// The DIDs of the file's accounts, read by a connection of its own.
fn dids_in(test: &TestDatabase) -> Vec<String> {
    test.open()
        .unwrap()
        .store()
        .unwrap()
        .accounts()
        .unwrap()
        .map(|a| a.unwrap().did.to_string())
        .collect()
}

/// How many accounts the file holds, read by a connection of its own.
fn accounts_in(test: &TestDatabase) -> usize {
    dids_in(test).len()
}

/// A statement that never ends on its own: only an interruption stops it.
fn endless(c: &mut diesel::SqliteConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    )
    .execute(c)
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_dropped_before_it_starts_never_runs() {
    let (test, db) = opened().await;
    let Blocker {
        call: blocked,
        release,
        running,
    } = blocker(&db);
    running.recv().unwrap();
    let (ran, heard) = mpsc::channel::<&str>();
    // Queued behind the blocker, then dropped: it never runs.
    let queued = ran.clone();
    let mut call = Box::pin(db.run(move |db| {
        queued.send("queued").unwrap();
        db.store()?.add_account(&account(DID_A)).map(drop)
    }));
    assert!(poll_once(&mut call).is_pending());
    drop(call);
    // Never polled: never queued.
    let never = ran.clone();
    drop(db.run(move |_| {
        never.send("never polled").unwrap();
        Ok(())
    }));
    release.send(()).unwrap();
    blocked.await.unwrap();
    let last = ran.clone();
    db.run(move |_| {
        last.send("after").unwrap();
        Ok(())
    })
    .await
    .unwrap();
    drop(ran);
    assert_eq!(heard.iter().collect::<Vec<_>>(), ["after"]);
    assert_eq!(accounts_in(&test), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_call_dropped_is_interrupted_and_rolled_back() {
    let (test, db) = opened().await;
    let (started, running) = mpsc::channel::<()>();
    let (ended, end) = mpsc::channel::<ErrorKind>();
    let mut call = Box::pin(db.transaction(move |store| {
        store.add_account(&account(DID_A))?;
        started.send(()).unwrap();
        let endless = store.read_only(endless);
        ended.send(endless.as_ref().unwrap_err().kind()).unwrap();
        endless.map(drop)
    }));
    assert!(poll_once(&mut call).is_pending());
    running.recv().unwrap();
    drop(call);
    let ended = end.recv_timeout(Duration::from_secs(120));
    assert_eq!(ended, Ok(ErrorKind::Cancelled), "interrupted");
    // The account it added went with its transaction, and the handle goes on.
    db.run(|db| db.store()?.add_account(&account(DID_B)).map(drop))
        .await
        .unwrap();
    assert_eq!(dids_in(&test), [DID_B]);
}

/// Dropped between two statements of a call, when nothing runs to interrupt:
/// the call's next statement stops at once all the same. (`sqlite3_interrupt`
/// alone is forgotten there: the next statement to start clears it.)
#[tokio::test(flavor = "current_thread")]
async fn a_call_dropped_between_two_statements_stops_at_the_next() {
    let (test, db) = opened().await;
    let (between, reached) = mpsc::channel::<()>();
    let (dropped, go) = mpsc::channel::<()>();
    let (ended, end) = mpsc::channel::<ErrorKind>();
    let mut call = Box::pin(db.transaction(move |store| {
        store.add_account(&account(DID_A))?;
        let endless = store.read_only(|c| {
            // No statement runs while the call's future is dropped, and the
            // library's own looks for a cancellation are behind.
            between.send(()).unwrap();
            go.recv().unwrap();
            endless(c)
        });
        ended.send(endless.as_ref().unwrap_err().kind()).unwrap();
        endless.map(drop)
    }));
    assert!(poll_once(&mut call).is_pending());
    reached.recv().unwrap();
    drop(call);
    dropped.send(()).unwrap();
    let ended = end.recv_timeout(Duration::from_secs(60));
    assert_eq!(ended, Ok(ErrorKind::Cancelled), "stopped");
    db.run(|db| db.store()?.add_account(&account(DID_B)).map(drop))
        .await
        .unwrap();
    assert_eq!(dids_in(&test), [DID_B], "only the call after it wrote");
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_a_dropped_call_begins_afterwards_is_written() {
    let (test, db) = opened().await;
    let (wrote, first_done) = mpsc::channel::<()>();
    let (go, resume) = mpsc::channel::<()>();
    let (second, outcome) = mpsc::channel::<Option<ErrorKind>>();
    let mut call = Box::pin(db.run(move |db| {
        let mut store = db.store()?;
        store.add_account(&account(DID_A))?;
        wrote.send(()).unwrap();
        resume.recv().unwrap();
        let next = store.add_account(&account(DID_B));
        second.send(next.as_ref().err().map(Error::kind)).unwrap();
        next.map(drop)
    }));
    assert!(poll_once(&mut call).is_pending());
    first_done.recv().unwrap();
    drop(call);
    go.send(()).unwrap();
    assert_eq!(outcome.recv().unwrap(), Some(ErrorKind::Cancelled));
    // What it committed before the drop stays; nothing after it.
    assert_eq!(dids_in(&test), [DID_A]);
    db.run(|db| db.store()?.add_account(&account(DID_B)).map(drop))
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_refuses_at_once_and_runs_nothing_of_the_call() {
    let test = TestDatabase::new().unwrap();
    let db = AsyncDatabase::open_with(
        test.path(),
        OpenOptions::new(),
        AsyncOptions::new().queue(2),
    )
    .await
    .unwrap();
    let Blocker {
        call: blocked,
        release,
        running,
    } = blocker(&db);
    running.recv().unwrap();
    let (ran, heard) = mpsc::channel::<usize>();
    let mut waiting = Vec::new();
    for n in 0..2 {
        let ran = ran.clone();
        let mut call = Box::pin(db.run(move |_| {
            ran.send(n).unwrap();
            Ok(())
        }));
        assert!(poll_once(&mut call).is_pending(), "queued");
        waiting.push(call);
    }
    let extra = ran.clone();
    let mut refused = Box::pin(db.run(move |_| {
        extra.send(99).unwrap();
        Ok(())
    }));
    let Poll::Ready(Err(err)) = poll_once(&mut refused) else {
        panic!("a third waiting call was taken");
    };
    assert_eq!(err.kind(), ErrorKind::QueueFull);
    assert!(
        err.to_string().contains("2 calls are already waiting"),
        "{err}"
    );
    assert!(
        !err.public_message().contains('/'),
        "{}",
        err.public_message()
    );
    release.send(()).unwrap();
    blocked.await.unwrap();
    for call in waiting {
        call.await.unwrap();
    }
    drop(ran);
    assert_eq!(heard.iter().collect::<Vec<_>>(), [0, 1]);
}

/// The scenario: another program holds the write lock for longer than the
/// clients wait; ten requests time out. The one that was waiting for the lock
/// stops waiting (a read behind it is served while the lock is still held, though
/// the handle would wait an hour), and once the lock goes, none of them writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_timed_out_behind_a_lock_write_nothing_afterwards() {
    let test = TestDatabase::seeded().unwrap();
    let hour = Duration::from_secs(3600);
    let db = AsyncDatabase::open(test.path(), OpenOptions::new().busy_timeout(hour))
        .await
        .unwrap();
    let before = accounts_in(&test);
    let mut holder = test.open().unwrap();
    holder.raw().batch_execute("BEGIN IMMEDIATE").unwrap();
    let mut requests = Vec::new();
    for n in 0..10 {
        let db = db.clone();
        requests.push(tokio::spawn(async move {
            let did = format!("did:ethr:0x{n:040x}");
            let call = db.run(move |db| db.store()?.add_account(&account(&did)).map(drop));
            tokio::time::timeout(Duration::from_millis(300), call).await
        }));
    }
    for request in requests {
        assert!(request.await.unwrap().is_err(), "every client gave up");
    }
    // (The bound only turns a hang into a failure.)
    let read = db.run(|db| db.store()?.settings(SettingsScope::Master).map(drop));
    let served = tokio::time::timeout(Duration::from_secs(120), read).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
    holder.raw().batch_execute("COMMIT").unwrap();
    assert_eq!(accounts_in(&test), before, "no timed-out request wrote");
}

/// Sixty calls waiting behind a busy connection hold no thread each (the handle
/// they queue on has one thread, whatever waits). Counted in a process of its own:
/// the test runs itself again, alone.
#[test]
fn waiting_calls_hold_no_thread() {
    if !alone("asynchronous::waiting_calls_hold_no_thread") {
        return;
    }
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_test, db) = opened().await;
        let Blocker {
            call: blocked,
            release,
            running,
        } = blocker(&db);
        running.recv().unwrap();
        let idle = threads();
        let mut waiting = Vec::new();
        for n in 0..60 {
            let mut call = Box::pin(db.run(move |_| Ok(n)));
            assert!(poll_once(&mut call).is_pending());
            waiting.push(call);
        }
        assert_eq!(threads(), idle, "sixty waiting calls, no more threads");
        release.send(()).unwrap();
        blocked.await.unwrap();
        for (n, call) in waiting.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), n);
        }
    });
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_comes_back_as_an_error_and_rolls_back() {
    let (test, db) = opened().await;
    let err = db
        .transaction(|store| -> Result<(), Error> {
            store.add_account(&account(DID_A))?;
            panic!("the service's own bug");
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.to_string().contains("the service's own bug"), "{err}");
    assert_eq!(accounts_in(&test), 0, "rolled back");
    // The handle goes on: a write, then a panic outside any transaction.
    db.run(|db| db.store()?.add_account(&account(DID_A)).map(drop))
        .await
        .unwrap();
    let err = db
        .run(|_| -> Result<(), Error> { panic!("again") })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(
        db.run(|db| Ok(db.store()?.accounts()?.count()))
            .await
            .unwrap(),
        1
    );
}

/// A call that leaves its connection with a transaction open (begun by hand through
/// the connection `read_only` lends) does not hold the file: the handle's own
/// connection is rolled back before the next call, a pooled one closed.
#[tokio::test(flavor = "current_thread")]
async fn a_connection_a_call_left_in_a_transaction_is_not_lent_again() {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let test = TestDatabase::seeded().unwrap();
    let pool = Pool::open_with(
        test.path(),
        OpenOptions::new(),
        PoolOptions::new().max_size(1),
    )
    .unwrap();
    let pooled = AsyncDatabase::pooled(pool, AsyncOptions::new());
    let own = AsyncDatabase::open(test.path(), OpenOptions::new())
        .await
        .unwrap();
    for db in [&pooled, &own] {
        db.run(|db| {
            db.store()?.read_only(|c| {
                AnsiTransactionManager::begin_transaction(c)?;
                // A read in the transaction: it holds the file's shared lock.
                diesel::sql_query("SELECT count(*) FROM accounts")
                    .execute(c)
                    .map(drop)
            })
        })
        .await
        .unwrap();
        // Another connection writes: no lock is left. (It waits a little: the pool
        // opens a connection in place of the one it closed, in the background,
        // and that open reads the file. A lock left behind would make it wait in
        // vain.)
        let mut other = test
            .open_with(OpenOptions::new().busy_timeout(Duration::from_secs(5)))
            .unwrap();
        let mut change = SettingsChange::new();
        change
            .set_from_str(SettingsField::LastName, "after")
            .unwrap();
        other.store().unwrap().save_settings(&change).unwrap();
        let view = db
            .run(|db| db.store()?.settings(SettingsScope::Master))
            .await
            .unwrap();
        assert_eq!(view.settings.last_name.as_deref(), Some("after"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn pooled_calls_run_in_parallel_on_the_pools_connections() {
    let test = TestDatabase::seeded().unwrap();
    let pool = Pool::open_with(
        test.path(),
        OpenOptions::new(),
        PoolOptions::new().max_size(2),
    )
    .unwrap();
    let reads = AsyncDatabase::pooled(pool, AsyncOptions::new());
    // Each call waits to hear from the other: both finish only if both run at once.
    let (a_in, a_heard) = mpsc::channel::<()>();
    let (b_in, b_heard) = mpsc::channel::<()>();
    let meet = |tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>| {
        move |db: &mut Database| {
            tell.send(()).unwrap();
            let met = hear.recv_timeout(Duration::from_secs(30)).is_ok();
            Ok((met, db.store()?.active_identity()?.active_did.is_some()))
        }
    };
    let (a, b) = tokio::join!(
        reads.run(meet(a_in, b_heard)),
        reads.run(meet(b_in, a_heard))
    );
    assert_eq!((a.unwrap(), b.unwrap()), ((true, true), (true, true)));
}

#[tokio::test(flavor = "current_thread")]
async fn calls_run_off_the_runtime_and_their_errors_keep_their_kind() {
    let (test, db) = opened().await;
    // A current-thread runtime: work done on its one thread would block it; the
    // call runs on another.
    let here = std::thread::current().id();
    let there = db.run(|_| Ok(std::thread::current().id())).await.unwrap();
    assert_ne!(here, there);
    let err = db
        .run(|db| {
            let unknown = Did::parse(UNKNOWN)?;
            db.store()?.set_active_did(Some(&unknown))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownAccount);
    let missing = AsyncDatabase::open(
        test.path().with_file_name("missing.sqlite"),
        OpenOptions::new().create(false),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}
