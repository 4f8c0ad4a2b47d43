//! The example service measured against the points of issue 34 ("a service takes
//! idstore on without writing a wrapper around it"), each a test, with idstore's
//! test helper: the points a wrapper was to make up for, each met by the library.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use idstore_example_service::{Service, serve, status_of};
use idstore_repo::testing::{ALICE, BOB, CAROL, TestDatabase};
use idstore_repo::{Database, Error, ErrorKind};
use serde_json::{Value, json};

/// A service over the folder of `test`'s file, and that file's user name; a lock
/// is waited for 50 ms.
fn service_of(test: &TestDatabase) -> (Service, String) {
    let path = test.path();
    let user = path.file_stem().unwrap().to_str().unwrap().to_owned();
    let service = Service::new(path.parent().unwrap()).busy_timeout(Duration::from_millis(50));
    (service, user)
}

/// Polls `fut` once, as a runtime first would: a request reaches the queue then.
fn poll_once<F: std::future::Future>(
    fut: &mut std::pin::Pin<Box<F>>,
) -> std::task::Poll<F::Output> {
    let waker = std::task::Waker::noop();
    fut.as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
}

fn new_account(did: &str) -> Value {
    json!({ "did": did, "publicKeyHex": "02ab", "dateCreated": "2024-03-01T12:00:00.000Z" })
}

/// The DIDs `GET /accounts` lists.
async fn dids(service: &Service, user: &str) -> Vec<String> {
    let (status, body) = service
        .handle("GET", &format!("/users/{user}/accounts"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|a| a["did"].as_str().unwrap().to_owned())
        .collect()
}

/// Another program's write transaction on `path`, held until released.
struct Held {
    release: mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl Held {
    /// Ends the transaction and returns once it is rolled back and the lock gone
    /// (a request sent after this never meets it, however slow the machine).
    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

/// Starts another program's write transaction on `path`; returns once it holds the lock.
fn hold_write_lock(path: &std::path::Path) -> Held {
    let (release, wait) = mpsc::channel::<()>();
    let (held, locked) = mpsc::channel::<()>();
    let path = path.to_owned();
    let holder = std::thread::spawn(move || {
        let mut db = Database::open(&path).unwrap();
        db.transaction(|store| {
            store.set_active_did(None)?;
            held.send(()).unwrap();
            let _ = wait.recv();
            Err::<(), _>(Error::new(ErrorKind::Other, "let go"))
        })
        .unwrap_err();
    });
    locked.recv().unwrap();
    Held { release, holder }
}

/// Point 1: Writes group into one transaction: an account added, then its settings
/// refused, leaves no account.
#[tokio::test]
async fn point_1_writes_that_belong_together_commit_together() {
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    let carol = new_account(CAROL);
    let refused = json!({ "account": carol, "settings": { "firstName": "Carol", "activeDid": BOB }, "active": true });
    let (status, body) = service
        .handle(
            "POST",
            &format!("/users/{user}/accounts"),
            &refused.to_string(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (400, Some("invalid_setting"))
    );
    assert!(
        !dids(&service, &user).await.contains(&CAROL.to_owned()),
        "the account went too"
    );
    let fine = json!({ "account": carol, "settings": { "firstName": "Carol" }, "active": true });
    let (status, body) = service
        .handle(
            "POST",
            &format!("/users/{user}/accounts"),
            &fine.to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, active) = service
        .handle("GET", &format!("/users/{user}/active"), "")
        .await;
    assert_eq!(active["activeDid"], CAROL);
}

/// Point 2: Cancellation and back-pressure: behind a lock held longer than clients
/// wait, timed-out requests write nothing afterwards, and a full queue is
/// answered at once; requests waiting hold no thread each.
#[test]
fn point_2_timed_out_requests_write_nothing_and_waiting_ones_hold_no_thread() {
    // Threads are counted in a process of its own: the test runs itself again, alone.
    const NAME: &str = "point_2_timed_out_requests_write_nothing_and_waiting_ones_hold_no_thread";
    if std::env::var("IDSTORE_ALONE").as_deref() != Ok(NAME) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env("IDSTORE_ALONE", NAME)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("1 passed"),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let test = TestDatabase::seeded().unwrap();
        let path = test.path();
        let user = path.file_stem().unwrap().to_str().unwrap().to_owned();
        // A patient service: it would wait an hour for the lock.
        let service = Service::new(path.parent().unwrap()).busy_timeout(Duration::from_secs(3600));
        let service = Arc::new(service);
        let before = dids(&service, &user).await;
        let held = hold_write_lock(test.path());

        // Ten clients give up after 0.3 s, while the lock is held.
        let mut requests = Vec::new();
        for n in 0..10 {
            let (service, user) = (Arc::clone(&service), user.clone());
            requests.push(tokio::spawn(async move {
                let body = json!({ "account": new_account(&format!("did:ethr:0x{n:040x}")) });
                let route = format!("/users/{user}/accounts");
                let body = body.to_string();
                let call = service.handle("POST", &route, &body);
                tokio::time::timeout(Duration::from_millis(300), call).await
            }));
        }
        for request in requests {
            assert!(request.await.unwrap().is_err(), "every client gave up");
        }
        // The calls they left in the queue are passed over (the one waiting for the
        // lock stopped waiting): a call after them finds the queue empty.
        let db = service.user(&user).await.unwrap();
        db.writes.run(|_| Ok(())).await.unwrap();

        // Sixty more: 32 wait (one more may already be running), the rest are
        // refused at once; none holds a thread.
        let idle = threads();
        let route = format!("/users/{user}/settings");
        let bodies: Vec<String> = (0..60)
            .map(|n| json!({ "lastName": format!("n{n}") }).to_string())
            .collect();
        let mut waiting = Vec::new();
        let mut refused = 0;
        for body in &bodies {
            let mut call = Box::pin(service.handle("PATCH", &route, body));
            match poll_once(&mut call) {
                std::task::Poll::Ready((status, answer)) => {
                    let kind = answer["error"]["kind"].as_str();
                    assert_eq!((status, kind), (503, Some("queue_full")), "{answer}");
                    refused += 1;
                }
                std::task::Poll::Pending => waiting.push(call),
            }
        }
        assert!((27..=28).contains(&refused), "{refused} refused");
        assert_eq!(threads(), idle, "requests waiting, no more threads");
        // The waiting ones are served once the lock goes; the ones that gave up
        // never wrote.
        held.release();
        for call in waiting {
            let (status, answer) = call.await;
            assert_eq!(status, 200, "{answer}");
        }
        assert_eq!(
            dids(&service, &user).await,
            before,
            "no timed-out request wrote"
        );
    });
}

/// Point 3: A panic in the service's own code inside a call is an error of its own
/// kind; the same user is served on.
#[tokio::test]
async fn point_3_a_panic_is_answered_and_the_user_is_served_on() {
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    let db = service.user(&user).await.unwrap();
    let err = db
        .writes
        .transaction(|store| -> Result<(), Error> {
            store.set_active_did(None)?;
            panic!("the service's own bug")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), status_of(err.kind())),
        (ErrorKind::Panicked, 500)
    );
    let (status, active) = service
        .handle("GET", &format!("/users/{user}/active"), "")
        .await;
    assert_eq!(
        (status, active["activeDid"].as_str()),
        (200, Some(ALICE)),
        "rolled back"
    );
    let (status, body) = service
        .handle(
            "PATCH",
            &format!("/users/{user}/settings"),
            r#"{"firstName": "after"}"#,
        )
        .await;
    assert_eq!((status, body["firstName"].as_str()), (200, Some("after")));
}

/// Point 4: One JSON shape: what a GET returns is sent back as a change; times carry
/// their offset; a new account is read from JSON with the API's checks.
#[tokio::test]
async fn point_4_what_a_get_returns_can_be_sent_back() {
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    let route = format!("/users/{user}/settings");
    let (_, mut got) = service.handle("GET", &route, "").await;
    assert_eq!(
        (got["activeDid"].as_str(), got["firstName"].as_str()),
        (Some(ALICE), Some("Test"))
    );
    got["firstName"] = json!("Ada");
    let (status, saved) = service.handle("PATCH", &route, &got.to_string()).await;
    assert_eq!(status, 200, "{saved}");
    got["hasOverride"] = json!(true);
    assert_eq!(saved, got);
    assert_eq!(service.handle("GET", &route, "").await.1, got);
    let (_, active) = service
        .handle("GET", &format!("/users/{user}/active"), "")
        .await;
    let at = active["lastUpdated"].as_str().unwrap();
    assert!(
        idstore_repo::domain::chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{at}"
    );
    let bad = json!({ "account": { "did": CAROL, "publicKeyHex": "not hex", "dateCreated": "2024-03-01T12:00:00Z" } });
    let (status, body) = service
        .handle("POST", &format!("/users/{user}/accounts"), &bad.to_string())
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hex digits"),
        "{body}"
    );
}

/// Point 5: Answers carry the client's message: no path, no process, no API name; the
/// operator's log has the whole story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_5_answers_hold_no_path_and_the_log_holds_the_cause() {
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    let root = test.path().parent().unwrap().display().to_string();
    dids(&service, &user).await;
    let held = hold_write_lock(test.path());
    let route = format!("/users/{user}/settings");
    let (status, locked) = service
        .handle("PATCH", &route, r#"{"firstName": "x"}"#)
        .await;
    held.release();
    let kind = locked["error"]["kind"].as_str();
    assert_eq!((status, kind), (503, Some("locked")), "{locked}");
    let unknown =
        format!("/users/{user}/accounts/did:ethr:0x00000000000000000000000000000000DeadBeef");
    let (status, missing) = service.handle("DELETE", &unknown, "").await;
    let kind = missing["error"]["kind"].as_str();
    assert_eq!((status, kind), (404, Some("unknown_account")));
    for body in [&locked, &missing] {
        let said = body["error"]["message"].as_str().unwrap();
        assert!(
            !said.contains(&root) && !said.contains("pid") && !said.contains("::"),
            "{said}"
        );
    }
    let log = service.operator_log();
    assert!(
        log.iter()
            .any(|l| l.contains(&root) && l.contains("stayed locked by")),
        "the operator's log names the file and the lock: {log:?}"
    );
}

/// Point 6: The service's statuses are the README's table, for every kind.
#[test]
fn point_6_every_kind_has_the_readmes_status() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/library-guide.md"
    ))
    .unwrap();
    let start = readme
        .find("| kinds | status |")
        .expect("the README's table");
    let mut table = std::collections::BTreeMap::new();
    let mut otherwise = None;
    for row in readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.trim_start().starts_with('|'))
    {
        let cells: Vec<&str> = row.trim().trim_matches('|').split('|').collect();
        let status: u16 = cells[1].trim().parse().unwrap();
        if cells[0].contains("anything else") {
            otherwise = Some(status);
        }
        // The kinds are the row's code spans outside its parentheses of prose.
        let mut kinds = String::new();
        let mut depth = 0;
        for c in cells[0].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                c if depth == 0 => kinds.push(c),
                _ => {}
            }
        }
        for kind in kinds.split('`').skip(1).step_by(2) {
            table.insert(kind.to_owned(), status);
        }
    }
    let otherwise = otherwise.expect("an 'anything else' row");
    let known: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    for kind in table.keys() {
        assert!(
            known.contains(&kind.as_str()),
            "the README names {kind}, which is no kind"
        );
    }
    for kind in ErrorKind::ALL {
        let documented = table.get(kind.as_str()).copied().unwrap_or(otherwise);
        assert_eq!(status_of(*kind), documented, "{kind}");
    }
    assert_eq!(status_of(ErrorKind::Panicked), 500);
}

/// Point 7: A lock met while listing is answered as a lock (503), not a database error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_7_a_lock_met_while_listing_is_a_lock() {
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    dids(&service, &user).await;
    // Another program (a plain SQLite client) holds an exclusive lock, which keeps
    // readers out too.
    let other = rusqlite::Connection::open(test.path()).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = service
        .handle("GET", &format!("/users/{user}/accounts"), "")
        .await;
    other.execute_batch("COMMIT").unwrap();
    let kind = body["error"]["kind"].as_str();
    assert_eq!((status, kind), (503, Some("locked")), "{body}");
    let log = service.operator_log();
    assert!(
        log.iter().any(|l| l.contains("stayed locked by")),
        "{log:?}"
    );
}

/// Point 8: A PATCH answers what was just saved, when the active identity has a row of
/// its own too (the demo's ALICE does).
#[tokio::test]
async fn point_8_a_patch_answers_what_was_saved() {
    let test = TestDatabase::legacy_demo().unwrap();
    let (service, user) = service_of(&test);
    let (status, body) = service
        .handle(
            "PUT",
            &format!("/users/{user}/active"),
            &json!({ "activeDid": ALICE }).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let route = format!("/users/{user}/settings");
    let (_, shown) = service.handle("GET", &route, "").await;
    assert_eq!(
        (shown["firstName"].as_str(), shown["hasOverride"].as_bool()),
        (Some("Work me"), Some(true))
    );
    let (status, saved) = service
        .handle("PATCH", &route, r#"{"firstName": "Ada"}"#)
        .await;
    assert_eq!((status, saved["firstName"].as_str()), (200, Some("Ada")));
    assert_eq!(service.handle("GET", &route, "").await.1, saved);
}

/// Point 9: The test helper covers adoption: the demo as the app left it is adopted on
/// first use, with a backup, and every handle shows in `Debug`.
#[tokio::test]
async fn point_9_a_legacy_file_is_adopted_and_the_handles_show() {
    let test = TestDatabase::legacy_demo().unwrap();
    let (service, user) = service_of(&test);
    assert!(test.open().unwrap().status().unwrap().legacy);
    let listed = dids(&service, &user).await;
    assert_eq!(listed.len(), 3, "the duplicate is quarantined: {listed:?}");
    let (_, active) = service
        .handle("GET", &format!("/users/{user}/active"), "")
        .await;
    assert_eq!(active["activeDid"], CAROL);
    let backups: Vec<_> = std::fs::read_dir(test.path().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "a backup before adopting");
    let db = service.user(&user).await.unwrap();
    let shown = format!("{db:?} {test:?}");
    assert!(
        shown.contains(&test.path().display().to_string()),
        "{shown}"
    );
}

/// The service over HTTP: a request and its answer on a socket.
#[test]
fn the_service_answers_over_http() {
    use std::io::{Read, Write};
    let test = TestDatabase::seeded().unwrap();
    let (service, user) = service_of(&test);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let handle = runtime.handle().clone();
    std::thread::spawn(move || serve(&listener, &service, &handle));
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = r#"{"firstName": "Over HTTP"}"#;
    let request = format!(
        "PATCH /users/{user}/settings HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["firstName"], "Over HTTP");
}
