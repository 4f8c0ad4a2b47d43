//! The errors a service meets through the API, provoked one by one: each has its
//! kind, names the file it is about, and says what to do next. (The storage faults,
//! the pool's timeout and the quarantine's refusals have their own tests.)

// The key errors are provoked only where the `encryption` feature is on.
#![cfg_attr(not(feature = "encryption"), allow(unused_imports))]

use std::path::{Path, PathBuf};
use std::time::Duration;

use idstore_domain::{Did, NewAccount};
use idstore_repo::encryption::Key;
use idstore_repo::migrations::{RollbackOptions, RollbackTarget};
use idstore_repo::{Database, Error, ErrorKind, MigrateOptions, OpenOptions, WhenLast};

use crate::common::*;

/// A migrated database with one account, at `dir/name`.
fn migrated(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let mut db = Database::open(&path).unwrap();
    db.migrate(&MigrateOptions::new()).unwrap();
    db.store().unwrap().add_account(&alice()).unwrap();
    path
}

fn did(s: &str) -> Did {
    Did::parse(s).unwrap()
}

fn alice() -> NewAccount {
    NewAccount::new(did(DID_A), "02ab", "2024-03-01T12:00:00.000Z")
}

/// One provoked error: its kind, the file it must name, and words of the next step
/// its message must give.
struct Case {
    err: Error,
    kind: ErrorKind,
    file: Option<PathBuf>,
    next: &'static str,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut case = |err: Error, kind: ErrorKind, file: &Path, next: &'static str| {
        out.push(Case {
            err,
            kind,
            file: Some(file.to_owned()),
            next,
        });
    };

    // Opening.
    let missing = dir.join("missing.sqlite");
    let err = OpenOptions::new().create(false).open(&missing).unwrap_err();
    case(err, ErrorKind::NotFound, &missing, "check the path");
    let err = Database::open(dir).unwrap_err();
    case(
        err,
        ErrorKind::IsDirectory,
        dir,
        "pass the path of a database file",
    );
    let no_folder = dir.join("no-such-folder/app.sqlite");
    let err = Database::open(&no_folder).unwrap_err();
    case(err, ErrorKind::MissingFolder, &no_folder, "create it first");
    let junk = dir.join("junk.sqlite");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = Database::open(&junk).unwrap_err();
    case(err, ErrorKind::NotADatabase, &junk, "check the path");
    let fifo = dir.join("fifo.sqlite");
    assert!(runs("mkfifo", &[fifo.to_str().unwrap()]), "mkfifo");
    let err = Database::open(&fifo).unwrap_err();
    case(err, ErrorKind::NotAFile, &fifo, "");

    // Serving.
    let legacy = legacy_file(dir, "legacy.sqlite", true, &account_sql(1, DID_A, "a"));
    let mut db = Database::open(&legacy).unwrap();
    let err = db.store().map(drop).unwrap_err();
    case(err, ErrorKind::NeedsMigration, &legacy, "migrate it first");
    drop(db);

    let path = migrated(dir, "served.sqlite");
    let mut db = Database::open(&path).unwrap();
    let mut store = db.store().unwrap();
    let err = store.set_active_did(Some(&did(UNKNOWN))).unwrap_err();
    case(
        err,
        ErrorKind::UnknownAccount,
        &path,
        "lists the known ones",
    );
    let err = store.add_account(&alice()).unwrap_err();
    case(err, ErrorKind::AccountExists, &path, "delete it first");
    let err = store
        .delete_account(&did(DID_A), WhenLast::Refuse)
        .unwrap_err();
    case(err, ErrorKind::LastAccount, &path, "WhenLast::Delete");
    let err = db
        .migrate(&MigrateOptions::new().to("19990101000000"))
        .unwrap_err();
    case(
        err,
        ErrorKind::UnknownVersion,
        &path,
        "give one of the known versions",
    );
    let err = db
        .rollback(&RollbackOptions::new().target(RollbackTarget::Everything))
        .unwrap_err();
    case(
        err,
        ErrorKind::BaselineNotIncluded,
        &path,
        "asked for explicitly",
    );
    let err = db.backup_to(&legacy).unwrap_err();
    case(err, ErrorKind::Exists, &legacy, "never overwrites");
    drop(db);

    let mut reader = OpenOptions::new().read_only(true).open(&path).unwrap();
    let err = reader.store().unwrap().set_active_did(None).unwrap_err();
    case(err, ErrorKind::ReadOnly, &path, "open it read-write");
    drop(reader);

    // Locked: another connection holds the write lock past the busy timeout.
    let mut holder = raw(&path);
    exec(
        &mut holder,
        "BEGIN IMMEDIATE; UPDATE settings SET firstName = 'x';",
    );
    let mut waiting = OpenOptions::new()
        .busy_timeout(Duration::from_millis(50))
        .open(&path)
        .unwrap();
    let err = waiting.store().unwrap().set_active_did(None).unwrap_err();
    case(err, ErrorKind::Locked, &path, "retry once it is done");
    exec(&mut holder, "ROLLBACK;");
    drop((holder, waiting));

    // Written by a newer idstore.
    let newer = migrated(dir, "newer.sqlite");
    exec(
        &mut raw(&newer),
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
    );
    let err = Database::open(&newer)
        .unwrap()
        .store()
        .map(drop)
        .unwrap_err();
    case(err, ErrorKind::NewerDatabase, &newer, "upgrade idstore");

    // Cut short.
    let damaged = migrated(dir, "damaged.sqlite");
    let len = std::fs::metadata(&damaged).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&damaged)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = Database::open(&damaged)
        .and_then(|mut db| {
            db.store()
                .and_then(|mut s| s.accounts().map(|a| a.count()))
                .map(drop)
        })
        .unwrap_err();
    case(err, ErrorKind::Damaged, &damaged, "");

    // Keys.
    #[cfg(feature = "encryption")]
    {
        let plain = migrated(dir, "plain.sqlite");
        let err = OpenOptions::new()
            .key(Some(Key::new("correct horse").unwrap()))
            .open(&plain)
            .map(drop)
            .unwrap_err();
        case(
            err,
            ErrorKind::NotEncrypted,
            &plain,
            "open it without a key",
        );
        let secret = migrated(dir, "secret.sqlite");
        let key = |k: &str| Some(Key::new(k).unwrap());
        idstore_repo::Database::convert(
            &secret,
            &OpenOptions::new(),
            &idstore_repo::encryption::ConvertOptions::new(key("the passphrase")),
        )
        .unwrap();
        let err = Database::open(&secret).map(drop).unwrap_err();
        case(err, ErrorKind::Encrypted, &secret, "needs its key");
        let err = OpenOptions::new()
            .key(key("another passphrase"))
            .open(&secret)
            .map(drop)
            .unwrap_err();
        case(err, ErrorKind::WrongKey, &secret, "give its own key");
    }
    out
}

#[test]
fn every_error_names_its_file_and_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    for Case {
        err,
        kind,
        file,
        next,
    } in &cases
    {
        let shown = err.to_string();
        assert_eq!(err.kind(), *kind, "{shown}");
        if let Some(file) = file {
            assert_eq!(err.path(), Some(file.as_path()), "{kind}: {shown}");
            assert!(
                shown.contains(&file.display().to_string()),
                "{kind} does not name its file: {shown}"
            );
        }
        assert!(
            shown.contains(next),
            "{kind} does not say what to do next ({next:?}): {shown}"
        );
    }
    let kinds: std::collections::BTreeSet<_> = cases.iter().map(|c| c.kind).collect();
    assert_eq!(kinds.len(), cases.len(), "one case per kind");
}

/// What a client may be shown names no file, no process and no API.
fn assert_public(err: &Error) {
    let said = err.public_message();
    for leak in ["/", "pid", "::", "(", "_", "Options", "sqlite", "SQLite"] {
        assert!(!said.contains(leak), "{}: {leak:?} in {said:?}", err.kind());
    }
}

#[test]
fn every_error_has_a_message_fit_for_a_client() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path()) {
        assert_public(&case.err);
    }
    for kind in ErrorKind::ALL {
        assert_public(&Error::new(
            *kind,
            "/data/app.sqlite: open in app (pid 412)",
        ));
    }
    // Input the caller gave is said back, what was wrong with it.
    let err = Error::from(Did::parse("did:ethr:0x12").unwrap_err());
    assert_eq!(
        err.public_message(),
        "the DID is not valid: a did:ethr DID is `did:ethr:0x` followed by 40 hex digits"
    );
}

/// One provoked error in one API shape: what it must say.
struct Shaped {
    shape: &'static str,
    err: Error,
    kind: ErrorKind,
    says: Vec<String>,
}

/// Each kind a service meets, provoked in every shape of the API it can come
/// from (a direct call, an iterator, a pooled connection, an async handle, an
/// open), keeps its cause: the same kind and the same words in every shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_keeps_its_cause_in_every_shape() {
    use idstore_repo::asynchronous::{AsyncDatabase, AsyncOptions};
    use idstore_repo::pool::{Pool, PoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = migrated(dir.path(), "shapes.sqlite");
    let shown = path.display().to_string();
    let quick = || OpenOptions::new().busy_timeout(Duration::from_millis(50));
    let pool_of = |options: OpenOptions| {
        Pool::open_with(&path, options, PoolOptions::new().max_size(1)).unwrap()
    };
    let mut out: Vec<Shaped> = Vec::new();
    let mut saw = |shape, err: Error, kind, says: &[&str]| {
        let says = says.iter().map(|s| (*s).to_owned()).collect();
        out.push(Shaped {
            shape,
            err,
            kind,
            says,
        });
    };

    // Locked: another connection holds an exclusive lock (no reader gets in).
    let mut direct = quick().open(&path).unwrap();
    let pool = pool_of(quick());
    let mut pooled = pool.get().unwrap();
    let asynchronous = AsyncDatabase::open(&path, quick()).await.unwrap();
    // Each found servable first (a check made once, on the first call).
    direct.store().unwrap();
    pooled.store().unwrap();
    asynchronous.run(|db| db.store().map(drop)).await.unwrap();
    let mut holder = raw(&path);
    exec(&mut holder, "BEGIN EXCLUSIVE;");
    let lock = ["stayed locked by", "busy timeout (50 ms)", shown.as_str()];
    let err = direct.store().unwrap().set_active_did(None).unwrap_err();
    saw("direct", err, ErrorKind::Locked, &lock);
    let err = match direct.store().unwrap().accounts() {
        Err(e) => e,
        Ok(mut rows) => rows.next().unwrap().unwrap_err(),
    };
    saw("iterator", err, ErrorKind::Locked, &lock);
    let err = pooled.store().unwrap().set_active_did(None).unwrap_err();
    saw("pooled", err, ErrorKind::Locked, &lock);
    let err = asynchronous
        .run(|db| db.store()?.set_active_did(None))
        .await
        .unwrap_err();
    saw("async", err, ErrorKind::Locked, &lock);
    let err = quick().open(&path).unwrap_err();
    saw("open", err, ErrorKind::Locked, &lock);
    let err = Pool::open(&path, quick(), 1).unwrap_err();
    saw("pool open", err, ErrorKind::Locked, &lock);
    let err = AsyncDatabase::open(&path, quick()).await.unwrap_err();
    saw("async open", err, ErrorKind::Locked, &lock);
    exec(&mut holder, "ROLLBACK;");
    drop(holder);

    // An unknown account.
    let unknown = [UNKNOWN, "lists the known ones"];
    let err = pooled
        .store()
        .unwrap()
        .set_active_did(Some(&did(UNKNOWN)))
        .unwrap_err();
    saw("pooled", err, ErrorKind::UnknownAccount, &unknown);
    let err = asynchronous
        .run(|db| db.store()?.set_active_did(Some(&Did::parse(UNKNOWN)?)))
        .await
        .unwrap_err();
    saw("async", err, ErrorKind::UnknownAccount, &unknown);

    // A panic in a closure.
    let panic = ["panicked (boom)", "rolled back"];
    let boom = |_: &mut idstore_repo::Store<'_>| -> Result<(), Error> { panic!("boom") };
    let err = direct.transaction(boom).unwrap_err();
    saw("direct", err, ErrorKind::Panicked, &panic);
    let err = pooled.transaction(boom).unwrap_err();
    saw("pooled", err, ErrorKind::Panicked, &panic);
    let err = asynchronous.transaction(boom).await.unwrap_err();
    saw("async", err, ErrorKind::Panicked, &panic);
    drop(pooled);

    // A write on a connection opened read-only.
    let read_only = ["was opened read-only", shown.as_str()];
    let readers = pool_of(OpenOptions::new().read_only(true));
    let err = readers
        .get()
        .unwrap()
        .store()
        .unwrap()
        .set_active_did(None)
        .unwrap_err();
    saw("pooled", err, ErrorKind::ReadOnly, &read_only);
    let reader = AsyncDatabase::pooled(readers, AsyncOptions::new());
    let err = reader
        .run(|db| db.store()?.set_active_did(None))
        .await
        .unwrap_err();
    saw("async", err, ErrorKind::ReadOnly, &read_only);

    // A stored DID that is not one, met while listing.
    exec(
        &mut raw(&path),
        "INSERT INTO accounts (dateCreated, did, publicKeyHex) VALUES ('2024-03-02T00:00:00Z', 'not a did', '02');",
    );
    let stored = ["accounts row 2, column did", shown.as_str()];
    let mut direct = Database::open(&path).unwrap();
    let err = direct
        .store()
        .unwrap()
        .accounts()
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    saw("iterator", err, ErrorKind::InvalidStoredValue, &stored);
    let err = asynchronous
        .run(|db| db.store()?.accounts()?.collect::<Result<Vec<_>, _>>())
        .await
        .unwrap_err();
    saw("async", err, ErrorKind::InvalidStoredValue, &stored);

    // A file that needs migrating.
    let legacy = legacy_file(
        dir.path(),
        "legacy.sqlite",
        true,
        &account_sql(1, DID_A, "a"),
    );
    let migrate_first = ["migrate it first", "legacy.sqlite"];
    let err = Pool::open(&legacy, OpenOptions::new(), 1).unwrap_err();
    saw("pool open", err, ErrorKind::NeedsMigration, &migrate_first);
    let legacy_async = AsyncDatabase::open(&legacy, OpenOptions::new())
        .await
        .unwrap();
    let err = legacy_async
        .run(|db| db.store().map(drop))
        .await
        .unwrap_err();
    saw("async", err, ErrorKind::NeedsMigration, &migrate_first);

    let mut wrong = Vec::new();
    for Shaped {
        shape,
        err,
        kind,
        says,
    } in &out
    {
        let message = err.to_string();
        if err.kind() != *kind || says.iter().any(|w| !message.contains(w.as_str())) {
            wrong.push(format!("{shape} {kind}: {:?}: {message}", err.kind()));
        }
        assert_public(err);
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
