//! A service written against the public surface alone, as its docs describe it:
//! create or open, migrate, read, switch, save, roll back, map every error to an
//! HTTP status by its kind, share a pool among threads, and open an encrypted file.
//! Nothing here reaches for a raw connection or a fixture.

use std::path::Path;

use idstore_domain::{Did, NewAccount, Secret, SettingsChange, SettingsField};
use idstore_repo::encryption::Key;
use idstore_repo::migrations::RollbackOptions;
use idstore_repo::pool::{Pool, PoolOptions};
use idstore_repo::{
    Database, Error, ErrorKind, MigrateOptions, OpenOptions, SettingsScope, WhenLast,
};

const ALICE: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
const BOB: &str = "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

/// How a service answers each kind: the whole point of one kind enum.
fn http_status(e: &Error) -> u16 {
    match e.kind() {
        ErrorKind::UnknownAccount | ErrorKind::NotQuarantined | ErrorKind::NotFound => 404,
        ErrorKind::AccountExists | ErrorKind::LastAccount => 409,
        ErrorKind::InvalidAccount
        | ErrorKind::InvalidSetting
        | ErrorKind::InvalidDid
        | ErrorKind::InvalidKey => 400,
        ErrorKind::Locked | ErrorKind::PoolTimeout => 503,
        ErrorKind::DiskFull | ErrorKind::ReadOnly => 507,
        ErrorKind::NeedsMigration | ErrorKind::NewerDatabase => 409,
        ErrorKind::Encrypted | ErrorKind::WrongKey => 401,
        _ => 500,
    }
}

/// Alice added to a migrated database, and made the active identity.
fn add_active_alice(db: &mut Database) -> Result<(), Error> {
    let alice = Did::parse(ALICE)?;
    let mut store = db.store()?;
    store.add_account(&NewAccount::new(
        alice.clone(),
        "02ab",
        "2024-03-01T12:00:00Z",
    ))?;
    store.set_active_did(Some(&alice))
}

/// A service's start-up: open (creating), migrate, and hand back the database.
fn start(path: &Path, options: OpenOptions) -> Result<Database, Error> {
    let mut db = options.open(path)?;
    db.migrate(&MigrateOptions::new())?;
    Ok(db)
}

#[test]
fn a_service_opens_migrates_serves_and_rolls_back() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.sqlite");
    let mut db = start(&path, OpenOptions::new())?;
    assert!(db.created());
    let alice = Did::parse(ALICE)?;
    let mut store = db.store()?;
    store.add_account(
        &NewAccount::new(alice.clone(), "02ab", "2024-03-01T12:00:00.000Z")
            .mnemonic(Secret::new("bW5lbW9uaWM=".into())),
    )?;
    store.set_active_did(Some(&alice))?;
    let mut change = SettingsChange::default();
    change.set_from_str(SettingsField::FirstName, "Ada")?;
    store.save_account_settings(&alice, &change)?;
    let view = store.settings(SettingsScope::Merged(None))?;
    assert_eq!(view.settings.first_name.as_deref(), Some("Ada"));
    assert_eq!(view.active_did.as_ref(), Some(&alice));
    let listed: Vec<_> = store.accounts()?.collect::<Result<_, _>>()?;
    assert_eq!(listed.len(), 1);
    assert!(db.check()?.ok());

    // Each failure is answered by its kind alone.
    let bob = Did::parse(BOB)?;
    let mut store = db.store()?;
    let cases: Vec<(Error, u16)> = vec![
        (store.set_active_did(Some(&bob)).unwrap_err(), 404),
        (
            store
                .add_account(&NewAccount::new(
                    alice.clone(),
                    "02ab",
                    "2024-03-01T12:00:00Z",
                ))
                .unwrap_err(),
            409,
        ),
        (
            store
                .add_account(&NewAccount::new(
                    bob.clone(),
                    "not hex",
                    "2024-03-01T12:00:00Z",
                ))
                .unwrap_err(),
            400,
        ),
        (
            store.delete_account(&alice, WhenLast::Refuse).unwrap_err(),
            409,
        ),
        (
            Did::parse("did:none:HIDDEN")
                .map_err(Error::from)
                .unwrap_err(),
            400,
        ),
        (
            SettingsChange::default()
                .set_from_str(SettingsField::IsRegistered, "maybe")
                .map_err(Error::from)
                .unwrap_err(),
            400,
        ),
    ];
    for (err, status) in &cases {
        assert_eq!(http_status(err), *status, "{err} ({:?})", err.kind());
        assert!(!err.to_string().is_empty());
    }

    // Back to the transition step, and up again.
    let report = db.rollback(
        &RollbackOptions::new().target(idstore_repo::migrations::RollbackTarget::Steps(1)),
    )?;
    assert_eq!(report.reverted.len(), 1);
    assert!(db.status()?.paused_at().is_some());
    assert_eq!(
        db.store()?.active_identity()?.active_did.as_ref(),
        Some(&alice),
        "a paused file is served"
    );
    db.migrate(&MigrateOptions::new())?;
    assert!(!db.status()?.needs_migration());
    Ok(())
}

#[test]
fn a_file_that_needs_migrating_or_a_missing_one_is_answered_by_kind() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let missing = OpenOptions::new()
        .create(false)
        .open(&dir.path().join("none.sqlite"))
        .unwrap_err();
    assert_eq!(http_status(&missing), 404);
    let mut fresh = Database::open(&dir.path().join("fresh.sqlite"))?;
    assert_eq!(http_status(&fresh.store().unwrap_err()), 409);
    Ok(())
}

/// The pool's checkout timeout is the service's to set: a request that finds every
/// connection taken fails with `pool_timeout`, naming the wait it gave up after.
#[test]
fn a_pools_checkout_timeout_is_the_services_to_set() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pooled.sqlite");
    drop(start(&path, OpenOptions::new())?);
    let pool = Pool::open_with(
        &path,
        OpenOptions::new(),
        PoolOptions::new()
            .max_size(1)
            .checkout_timeout(std::time::Duration::from_millis(150)),
    )?;
    let held = pool.get()?;
    let err = pool.get().expect_err("the one connection is taken");
    assert_eq!(err.kind(), ErrorKind::PoolTimeout);
    assert_eq!(http_status(&err), 503);
    assert!(err.to_string().contains("150 ms"), "{err}");
    drop(held);
    pool.get()?.store()?.settings(SettingsScope::Master)?;
    Ok(())
}

#[test]
fn a_pool_serves_several_threads() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pooled.sqlite");
    let mut db = start(&path, OpenOptions::new())?;
    let alice = Did::parse(ALICE)?;
    db.store()?.add_account(&NewAccount::new(
        alice.clone(),
        "02ab",
        "2024-03-01T12:00:00Z",
    ))?;
    drop(db);
    let pool = Pool::open(&path, OpenOptions::new(), 4)?;
    std::thread::scope(|s| -> Result<(), Error> {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let pool = &pool;
                let alice = &alice;
                s.spawn(move || -> Result<(), Error> {
                    for n in 0..20 {
                        let mut conn = pool.get()?;
                        let mut store = conn.store()?;
                        store.set_active_did(if n % 2 == 0 { Some(alice) } else { None })?;
                        let mut change = SettingsChange::default();
                        change.set_from_str(SettingsField::LastName, &format!("{i}-{n}"))?;
                        store.save_settings(&change)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("no worker panicked")?;
        }
        Ok(())
    })?;
    let mut conn = pool.get()?;
    let last = conn
        .store()?
        .settings(SettingsScope::Master)?
        .settings
        .last_name;
    assert!(last.is_some_and(|l| l.ends_with("-19")));
    Ok(())
}

#[test]
#[cfg(feature = "encryption")]
fn an_encrypted_file_is_served_with_its_key_and_refused_without() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.sqlite");
    let key = || Key::new("x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'");
    let mut db = start(&path, OpenOptions::new().key(Some(key()?)))?;
    assert_eq!(
        db.cipher_format(),
        Some(idstore_repo::encryption::CipherFormat::Sqlcipher4)
    );
    assert!(db.store()?.active_identity()?.active_did.is_none());
    drop(db);
    assert!(Database::is_encrypted(&path)?);
    let refused = Database::open(&path).unwrap_err();
    assert_eq!(
        (refused.kind(), http_status(&refused)),
        (ErrorKind::Encrypted, 401)
    );
    let wrong = OpenOptions::new()
        .key(Some(Key::new("not the key")?))
        .open(&path)
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::WrongKey);
    let pool = Pool::open(&path, OpenOptions::new().key(Some(key()?)), 2)?;
    assert!(pool.get()?.store()?.active_identity()?.active_did.is_none());
    Ok(())
}

/// A database the open created is a database from the start: dropped before any
/// migration, or after a dry run, the next open serves it instead of refusing an
/// empty file.
#[test]
fn a_new_database_left_unmigrated_opens_again() -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let untouched = dir.path().join("untouched.sqlite");
    assert!(Database::open(&untouched)?.created());
    let mut again = Database::open(&untouched)?;
    assert!(!again.created());
    assert_eq!(again.status()?.pending.len(), 3);

    let dry = dir.path().join("dry.sqlite");
    Database::open(&dry)?.migrate(&MigrateOptions::new().dry_run(true))?;
    let mut db = Database::open(&dry)?;
    assert!(db.status()?.needs_migration());
    db.migrate(&MigrateOptions::new())?;
    assert!(db.store().is_ok());
    Ok(())
}

/// `:memory:` is a private database that works like any other and leaves nothing
/// behind: no stray file named `:memory:`, and its folder goes with it.
#[test]
fn memory_databases_work_and_leave_nothing_behind() -> Result<(), Error> {
    let mut db = Database::open(Path::new(":memory:"))?;
    db.migrate(&MigrateOptions::new())?;
    add_active_alice(&mut db)?;
    assert!(db.check()?.ok());
    // Each `:memory:` database is its own, as in SQLite.
    let mut other = Database::open(Path::new(":memory:"))?;
    assert_eq!(other.store().unwrap_err().kind(), ErrorKind::NeedsMigration);
    let folder = db.path().parent().unwrap().to_owned();
    assert!(folder.is_dir());
    drop(db);
    drop(other);
    assert!(!folder.exists(), "its folder went with it");
    assert!(
        !Path::new(":memory:").exists(),
        "no stray file in the working folder"
    );
    Ok(())
}

/// The test helper: a migrated, seeded database in a folder of its own, shared by
/// a pool, and gone when dropped.
#[test]
fn the_test_helper_gives_a_seeded_database_and_removes_it() -> Result<(), Error> {
    use idstore_repo::testing::{ALICE as SEEDED, BOB as OTHER, TestDatabase};
    let test = TestDatabase::seeded()?;
    let path = test.path().to_owned();
    let pool = Pool::open_with(&path, OpenOptions::new(), PoolOptions::new().max_size(2))?;
    let mut conn = pool.get()?;
    let mut store = conn.store()?;
    assert_eq!(
        store
            .active_identity()?
            .active_did
            .map(|d| d.to_string())
            .as_deref(),
        Some(SEEDED)
    );
    let dids: Vec<String> = store
        .accounts()?
        .map(|a| a.map(|a| a.did.to_string()))
        .collect::<Result<_, _>>()?;
    assert_eq!(dids.len(), 2);
    assert!(dids.iter().any(|d| d == OTHER));
    let view = store.settings(SettingsScope::Master)?;
    assert_eq!(view.settings.first_name.as_deref(), Some("Test"));
    drop(conn);
    drop(pool);
    let empty = TestDatabase::new()?;
    assert_eq!(empty.open()?.store()?.accounts()?.count(), 0);
    drop(test);
    assert!(
        !path.exists() && !path.parent().unwrap().exists(),
        "removed with its folder"
    );
    Ok(())
}

/// Opening and serving a file leaves its journal mode as the app chose it (the
/// header's bytes 18 and 19: 1 for a rollback journal, 2 for WAL), unless the
/// service asks for another.
#[test]
fn serving_a_file_keeps_its_journal_mode_unless_asked() -> Result<(), Error> {
    use idstore_repo::connection::JournalMode;
    let header = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        (bytes[18], bytes[19])
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, wal) in [("delete.sqlite", false), ("wal.sqlite", true)] {
        let path = dir.path().join(name);
        let mut db = start(&path, OpenOptions::new())?;
        if wal {
            drop(db);
            db = OpenOptions::new()
                .journal_mode(JournalMode::Wal)
                .open(&path)?;
        }
        let expected = if wal { (2, 2) } else { (1, 1) };
        add_active_alice(&mut db)?;
        db.migrate(&MigrateOptions::new())?;
        db.check()?;
        drop(db);
        assert_eq!(header(&path), expected, "{name}: kept");
        let mut again = Database::open(&path)?;
        again.store()?.settings(SettingsScope::Master)?;
        drop(again);
        assert_eq!(header(&path), expected, "{name}: kept");
    }
    // Asked, it switches, for good.
    let path = dir.path().join("delete.sqlite");
    drop(
        OpenOptions::new()
            .journal_mode(JournalMode::Wal)
            .open(&path)?,
    );
    assert_eq!(header(&path), (2, 2));
    Ok(())
}

/// Adoption tested without the command: a copy of the app's own file, or the
/// demo, left as the app wrote it or migrated; the original only read.
#[test]
fn the_test_helper_copies_a_legacy_file_as_it_is_or_migrated() -> Result<(), Error> {
    use idstore_repo::testing::{ALICE as TWICE, CAROL, TestDatabase};
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("app.sqlite");
    idstore_repo::testing::write_legacy_demo(&original).unwrap();
    let bytes = std::fs::read(&original).unwrap();

    let as_is = TestDatabase::copy_of(&original)?;
    let mut db = as_is.open()?;
    assert_eq!(db.store().unwrap_err().kind(), ErrorKind::NeedsMigration);
    assert!(db.status()?.legacy);
    let report = db.migrate(&MigrateOptions::new())?;
    assert!(report.adopted_legacy && report.applied.len() == 3);
    drop(db);

    let migrated = TestDatabase::copy_of(&original)?.migrated()?;
    let demo = TestDatabase::legacy_demo()?.migrated()?;
    for test in [&migrated, &demo] {
        let mut db = test.open()?;
        let mut store = db.store()?;
        let active = store.active_identity()?.active_did.map(|d| d.to_string());
        assert_eq!(active.as_deref(), Some(CAROL));
        let waiting: Vec<_> = store
            .quarantined_items()?
            .into_iter()
            .filter(|i| i.waiting)
            .collect();
        assert_eq!((waiting.len(), waiting[0].value.as_str()), (1, TWICE));
    }
    let legacy = TestDatabase::legacy_demo()?;
    assert!(
        legacy.open()?.status()?.legacy,
        "the demo as the app left it"
    );
    assert_eq!(
        std::fs::read(&original).unwrap(),
        bytes,
        "the original was only read"
    );
    Ok(())
}

/// Every public handle shows in `Debug` which file it serves, and never a key.
#[tokio::test(flavor = "current_thread")]
async fn every_public_handle_has_debug() -> Result<(), Error> {
    use idstore_repo::asynchronous::AsyncDatabase;
    use idstore_repo::testing::TestDatabase;
    let test = TestDatabase::seeded()?;
    let shown = test.path().display().to_string();
    let mut db = OpenOptions::new().open(test.path())?;
    let pool = Pool::open(test.path(), OpenOptions::new(), 1)?;
    let pooled = pool.get()?;
    let asynchronous = AsyncDatabase::open(test.path(), OpenOptions::new()).await?;
    let keyed = OpenOptions::new().key(Some(Key::new("hunter2-passphrase")?));
    let shows = [
        format!("{test:?}"),
        format!("{pool:?}"),
        format!("{pooled:?}"),
        format!("{asynchronous:?}"),
        format!("{:?}", db.store()?),
        format!("{db:?}"),
    ];
    for s in &shows {
        assert!(s.contains(&shown), "{s}");
    }
    assert!(!format!("{keyed:?}").contains("hunter2"), "{keyed:?}");
    Ok(())
}
