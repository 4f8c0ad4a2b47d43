//! The async handle: calls run off the runtime, one at a time, and a call's future
//! dropped at any of its await points leaves no transaction and no lock behind.

use std::future::Future;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::Duration;

use idstore_domain::{SettingsChange, SettingsField};
use idstore_repo::testing::TestDatabase;
use idstore_repo::{AsyncDatabase, ErrorKind, OpenOptions, SettingsScope};

/// Polls `fut` `polls` times (letting the runtime run in between), then drops it.
async fn cancel_after<F: Future>(fut: F, polls: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if fut.as_mut().poll(&mut cx).is_ready() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_at_any_await_point_leaves_no_transaction_or_lock() {
    let test = TestDatabase::seeded().unwrap();
    let db = AsyncDatabase::open(test.path(), OpenOptions::new())
        .await
        .unwrap();
    let (done, finished) = mpsc::channel::<String>();
    let mut started = 0;
    for polls in 0..5 {
        for i in 0..10 {
            let name = format!("{polls}-{i}");
            let done = done.clone();
            let call = db.run(move |db| {
                let mut change = SettingsChange::new();
                change.set_from_str(SettingsField::LastName, &name)?;
                db.store()?.save_settings(&change)?;
                done.send(name).unwrap();
                Ok(())
            });
            // Once polled, the work has been handed to a blocking thread and runs
            // to its end; never polled, it never starts.
            cancel_after(call, polls).await;
            started += usize::from(polls > 0);
        }
    }
    drop(done);
    let written: Vec<String> = finished.iter().collect();
    assert_eq!(
        written.len(),
        started,
        "each call handed over ran, once, whole"
    );
    assert!(
        written.iter().all(|n| !n.starts_with("0-")),
        "none never polled ran"
    );

    // No lock is held: another connection, waiting for nothing, writes at once.
    let mut other = test
        .open_with(OpenOptions::new().busy_timeout(Duration::ZERO))
        .unwrap();
    let mut change = SettingsChange::new();
    change
        .set_from_str(SettingsField::FirstName, "after")
        .unwrap();
    other.store().unwrap().save_settings(&change).unwrap();
    // And the handle goes on: what the last call wrote is there.
    let last = written.last().unwrap().clone();
    let view = db
        .run(|db| db.store()?.settings(SettingsScope::Master))
        .await
        .unwrap();
    assert_eq!(view.settings.last_name, Some(last));
    assert_eq!(view.settings.first_name.as_deref(), Some("after"));
}

#[tokio::test(flavor = "current_thread")]
async fn calls_run_off_the_runtime_and_their_errors_keep_their_kind() {
    let test = TestDatabase::new().unwrap();
    let db = AsyncDatabase::open(test.path(), OpenOptions::new())
        .await
        .unwrap();
    // A current-thread runtime: work done on its one thread would block it; the
    // call runs on another.
    let here = std::thread::current().id();
    let there = db.run(|_| Ok(std::thread::current().id())).await.unwrap();
    assert_ne!(here, there);
    let err = db
        .run(|db| {
            let unknown =
                idstore_domain::Did::parse("did:ethr:0x00000000000000000000000000000000DeadBeef")?;
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
