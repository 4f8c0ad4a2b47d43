//! `idstore rehearse`, as an operator runs it on copies of real users' files.
//!
//! - A corpus of 200 generated files of mixed states (legacy with duplicates,
//!   dangling and empty pointers, at the transition step, migrated, killed
//!   mid-write with a hot journal, encrypted, not databases) in two shards and a
//!   rerun: each file reported once, no original written.
//! - The report: a FIFO, a link or another user's file at its path refused at once;
//!   shards writing it at once; an identical second run refused; a line cut short
//!   by a kill healed; a run killed at a chosen write.
//! - Outcomes: planted faults fire their triggers; a failing engine fires one and
//!   says it is the engine's; problems the file already had fire none.
//! - Copies: a writer holding the file's lock is waited for, a writer's live
//!   journal is not taken for an interrupted write, a file written during its
//!   copies is never torn, a file too large is refused.
//! - Nothing left behind after SIGINT, SIGTERM or SIGKILL.
//! - The walk: links, FIFOs, sockets and devices refused as such (a writer blocked
//!   on a FIFO stays blocked), names kept as bytes and escaped on the terminal, a
//!   folder swapped for a link not followed, side files without their database and
//!   the report itself named; as another user, an unreadable folder or file is one
//!   record and the run goes on.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use diesel::connection::SimpleConnection;
use idstore_repo::{Database, MigrateOptions};
use serde_json::Value;
use tempfile::TempDir;

const PASSPHRASE: &str = "rehearsal passphrase";

/// A test's folders: the corpus, a temporary folder of its own (`TMPDIR`, where
/// the work folders go) and the report's path.
struct Setup {
    dir: TempDir,
    corpus: PathBuf,
    tmp: PathBuf,
    report: PathBuf,
}

fn setup() -> Setup {
    let dir = TempDir::new().unwrap();
    let corpus = dir.path().join("corpus");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let report = dir.path().join("report.jsonl");
    Setup {
        dir,
        corpus,
        tmp,
        report,
    }
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("idstore")
}

/// `idstore rehearse CORPUS --report REPORT EXTRA --json`, in the setup's `TMPDIR`.
fn command(s: &Setup, report: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("rehearse")
        .arg(&s.corpus)
        .arg("--report")
        .arg(report)
        .args(extra)
        .arg("--json")
        .env("TMPDIR", &s.tmp)
        .env("IDSTORE_KEY", PASSPHRASE)
        .env_remove("IDSTORE_DB")
        .env_remove("IDSTORE_BUSY_TIMEOUT_MS")
        .stdin(Stdio::null());
    cmd
}

fn summary_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs the rehearsal; returns whether it exited 0, and its summary.
fn rehearse(s: &Setup, extra: &[&str]) -> (bool, Value) {
    let out = command(s, &s.report, extra).output().unwrap();
    (out.status.success(), summary_of(&out))
}

/// The report's records; every line must be one.
fn records(report: &Path) -> Vec<Value> {
    std::fs::read_to_string(report)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a line that is not a record: {e}: {l}"))
        })
        .collect()
}

/// The records by file, asserting each file has exactly one.
fn by_file(report: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in records(report) {
        let file = r["file"].as_str().unwrap().to_owned();
        assert!(
            out.insert(file.clone(), r).is_none(),
            "{file} reported twice"
        );
    }
    out
}

fn demo(path: &Path) {
    idstore_repo::testing::write_legacy_demo(path).unwrap();
}

/// A FIFO at `path`, and a writer blocked opening it until someone reads it.
fn fifo_with_a_writer(path: &Path) -> Child {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("echo written > '{}'", path.display()))
        .spawn()
        .unwrap()
}

/// Waits (up to a minute: a bound, not a measure) for `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to a minute) for `child` to exit.
fn finish(mut child: Child) -> Output {
    wait_until("the rehearsal to end", || {
        child.try_wait().unwrap().is_some()
    });
    child.wait_with_output().unwrap()
}

/// An engine that says it started (its pid in `started`) and waits until `go`
/// exists; then it gives back idstore's own migration of the copy (so it matches).
fn pausing_engine(dir: &Path) -> (String, PathBuf, PathBuf) {
    let started = dir.join("engine-started");
    let go = dir.join("engine-go");
    let script = dir.join("engine.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nwhile [ ! -e '{}' ]; do sleep 0.02; done\ncp \"$1\" \"$2\" && '{}' --db \"$2\" migrate -q --no-backup\n",
            started.display(),
            go.display(),
            bin().display()
        ),
    )
    .unwrap();
    executable(&script);
    (script.display().to_string(), started, go)
}

fn executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An engine script of `body` (given the copy as `$1`, the output path as `$2`).
fn engine_script(dir: &Path, name: &str, body: &str) -> String {
    let script = dir.join(name);
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    executable(&script);
    script.display().to_string()
}

/// The work folders of runs in the setup's `TMPDIR`.
fn work_folders(s: &Setup) -> Vec<String> {
    let base = s.tmp.join(format!("idstore-rehearse-{}", rustix_uid()));
    match std::fs::read_dir(&base) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("run-"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether the process `pid` (read from `file`) is gone (or a zombie).
fn gone(file: &Path) -> bool {
    let pid = std::fs::read_to_string(file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    stat.is_empty() || stat.contains(") Z ")
}

fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Each file's category, by name.
fn mixed_corpus(dir: &Path) -> BTreeMap<String, &'static str> {
    let mut kinds = BTreeMap::new();
    let mut add = |name: String, kind: &'static str| {
        kinds.insert(name, kind);
    };
    std::fs::create_dir_all(dir.join("legacy")).unwrap();
    for i in 0..80 {
        let name = format!("legacy/{i:03}.sqlite");
        let path = dir.join(&name);
        demo(&path);
        let (kind, sql) = match i % 4 {
            0 => ("legacy-duplicate", ""),
            1 => ("legacy-clean", "DELETE FROM accounts WHERE id = 4;"),
            2 => (
                "legacy-dangling",
                "DELETE FROM accounts WHERE id = 4; UPDATE settings SET activeDid = 'did:ethr:0x00000000000000000000000000000000DeadBeef' WHERE id = 1;",
            ),
            _ => (
                "legacy-empty-pointer",
                "DELETE FROM accounts WHERE id = 4; UPDATE settings SET activeDid = '' WHERE id = 1;",
            ),
        };
        raw(&path).batch_execute(sql).unwrap();
        add(name, kind);
    }
    for i in 0..30 {
        let name = format!("migrated-{i:02}.sqlite");
        let path = dir.join(&name);
        demo(&path);
        Database::open(&path)
            .unwrap()
            .migrate(&MigrateOptions::new())
            .unwrap();
        add(name, "migrated");
    }
    for i in 0..20 {
        let name = format!("transition-{i:02}.sqlite");
        let path = dir.join(&name);
        demo(&path);
        Database::open(&path)
            .unwrap()
            .migrate(&MigrateOptions::new().to("20261206000001"))
            .unwrap();
        add(name, "transition");
    }
    let source = dir.join("hot-source.sqlite.src");
    demo(&source);
    for i in 0..30 {
        let name = format!("hot-{i:02}.sqlite");
        killed_mid_write(&source, &dir.join(&name));
        add(name, "hot-journal");
    }
    std::fs::remove_file(&source).unwrap();
    for i in 0..20 {
        let name = format!("encrypted-{i:02}.sqlite");
        let path = dir.join(&name);
        demo(&path);
        idstore(&path)
            .env("IDSTORE_NEW_KEY", PASSPHRASE)
            .args(["encrypt", "--no-backup", "-q"])
            .assert()
            .success();
        add(name, "encrypted");
    }
    for i in 0..10 {
        let name = format!("notes-{i:02}.sqlite");
        std::fs::write(dir.join(&name), format!("not a database {i}\n")).unwrap();
        add(name, "not-a-database");
        let name = format!("empty-{i:02}.sqlite");
        std::fs::write(dir.join(&name), b"").unwrap();
        add(name, "not-a-database");
    }
    kinds
}

/// Every file under `dir` (side files included) with its bytes, mode and times.
fn everything(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let stamp = format!("{:o} {} {}", m.mode(), m.mtime_nsec(), m.mtime());
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), stamp));
            }
        }
    }
    out
}

#[test]
fn a_rehearsal_over_200_files_reports_each_once_and_writes_no_original() {
    let s = setup();
    let kinds = mixed_corpus(&s.corpus);
    assert_eq!(kinds.len(), 200);
    let before = everything(&s.corpus);

    // Two shards, as two jobs would run them, into one report.
    let (ok1, first) = rehearse(&s, &["--shard", "1/2"]);
    let (ok2, second) = rehearse(&s, &["--shard", "2/2"]);
    assert!(ok1 && ok2, "{first} {second}");
    let now = |v: &Value| v["rehearsed_now"].as_u64().unwrap();
    assert_eq!(now(&first) + now(&second), 200);
    assert!(now(&first) > 50 && now(&second) > 50, "{first} {second}");
    // A rerun skips every file already reported.
    let (ok, again) = rehearse(&s, &[]);
    assert!(ok);
    assert_eq!(again["rehearsed_now"], 0);
    assert_eq!(again["files"], 200);

    let all = by_file(&s.report);
    assert_eq!(all.len(), 200, "one record a file");
    for (file, r) in &all {
        let kind = kinds[file];
        let outcome = r["outcome"].as_str().unwrap();
        assert!(r["triggers"].as_array().unwrap().is_empty(), "{r}");
        match kind {
            "migrated" => assert_eq!(outcome, "up_to_date", "{r}"),
            "not-a-database" => {
                assert_eq!(outcome, "refused", "{r}");
                assert!(r["error_kind"].is_string(), "{r}");
                assert_eq!(r["whose"], "file", "{r}");
                assert!(
                    r["error"].as_str().unwrap().contains(file.as_str()),
                    "names the file: {r}"
                );
            }
            _ => {
                assert_eq!(outcome, "migrated", "{kind}: {r}");
                assert_eq!(r["data_intact"], true, "{kind}: {r}");
                assert!(r["durations"]["migrate_ms"].as_f64().unwrap() > 0.0);
            }
        }
        assert_eq!(r["encrypted"], kind == "encrypted", "{r}");
        let (accounts, pointers) = match kind {
            "legacy-duplicate" | "hot-journal" | "encrypted" | "transition" => (1, 0),
            "legacy-dangling" => (0, 1),
            "legacy-clean" | "legacy-empty-pointer" | "migrated" | "not-a-database" => (0, 0),
            other => panic!("{other}"),
        };
        if kind != "transition" && kind != "hot-journal" {
            assert_eq!(r["quarantined_accounts"], accounts, "{kind}: {r}");
            assert_eq!(r["quarantined_pointers"], pointers, "{kind}: {r}");
        }
    }
    let outcomes = &again["outcomes"];
    assert_eq!(outcomes["up_to_date"], 30);
    assert_eq!(outcomes["refused"], 20);
    assert_eq!(outcomes["migrated"], 150);
    assert_eq!(again["triggers"], serde_json::json!({}));
    let d = &again["duration_ms"];
    assert!(d["p50"].as_f64() <= d["p95"].as_f64() && d["p95"].as_f64() <= d["max"].as_f64());

    assert!(
        everything(&s.corpus) == before,
        "the originals were never written (bytes, mode, times), nothing was added"
    );
    assert!(work_folders(&s).is_empty(), "no work folder left");
}

/// The triggers fire when their fault is planted: a limit no migration meets, and
/// an "engine" that gives back the file unmigrated.
#[test]
fn planted_faults_fire_their_rollback_triggers() {
    let s = setup();
    for i in 0..3 {
        demo(&s.corpus.join(format!("{i}.sqlite")));
    }
    let slow = s.dir.path().join("slow.jsonl");
    let out = command(&s, &slow, &["--slow-ms", "0"]).output().unwrap();
    assert!(!out.status.success(), "a trigger fired: exit 1");
    assert_eq!(
        summary_of(&out)["triggers"]["performance_regression"]["files"],
        3
    );

    let engine = s.dir.path().join("engine.jsonl");
    let out = command(&s, &engine, &["--engine", "cp"]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        summary_of(&out)["triggers"]["platform_inconsistency"]["files"],
        3
    );
    for r in records(&engine) {
        assert_eq!(r["engine_matches"], false, "{r}");
        assert_eq!(r["outcome"], "failed", "{r}");
        assert_eq!(r["whose"], "engine", "{r}");
    }
}

/// With the app's web engine as the other engine, its run of the exported steps
/// gives idstore's file.
#[test]
fn another_engine_running_the_export_matches() {
    let test = "another_engine_running_the_export_matches";
    let engines = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines");
    if !tool_available(
        test,
        "node",
        runs("node", &["--version"]),
        "Debian's nodejs",
    ) || !tool_available(
        test,
        "sql.js in tests/engines/node_modules",
        engines.join("node_modules/sql.js").is_dir(),
        "run `npm ci` in tests/engines",
    ) {
        return;
    }
    let s = setup();
    demo(&s.corpus.join("demo.sqlite"));
    let cmd = format!(
        "node {} --as-engine sqljs",
        engines.join("run_app_suite.mjs").display()
    );
    let (ok, summary) = rehearse(&s, &["--engine", &cmd]);
    assert!(ok, "{summary}");
    assert_eq!(records(&s.report)[0]["engine_matches"], true);
}

/// An engine that fails in any way fires `engine_failed`, exits 1, and says the
/// failure is the engine's, never that the file is missing or wrong: one that
/// exits 0 writing nothing, one that writes garbage, one that exits 3, one that
/// hangs past its time limit (stopped with what it started), one that prints
/// without end (only the end of it kept).
#[test]
fn a_failing_engine_fires_a_trigger_and_is_named_as_the_cause() {
    let s = setup();
    demo(&s.corpus.join("a.sqlite"));
    let d = s.dir.path();
    let pid_file = d.join("sleeper.pid");
    let engines = [
        (
            "silent",
            engine_script(d, "silent.sh", "exit 0"),
            "wrote no database",
        ),
        (
            "garbage",
            engine_script(d, "garbage.sh", "printf 'not a database at all' > \"$2\""),
            "is not a database idstore can open",
        ),
        (
            "exit 3",
            engine_script(d, "three.sh", "echo 'the engine broke' >&2; exit 3"),
            "the engine broke",
        ),
        (
            "hangs",
            engine_script(
                d,
                "hangs.sh",
                &format!("sleep 300 & echo $! > '{}'; wait", pid_file.display()),
            ),
            "time limit (1 s)",
        ),
        (
            "prints",
            engine_script(
                d,
                "prints.sh",
                "head -c 50000000 /dev/zero | tr '\\0' x >&2; exit 1",
            ),
            "exited with",
        ),
    ];
    for (what, engine, says) in engines {
        let report = d.join(format!("{}.jsonl", what.replace(' ', "-")));
        // Only the hanging one is meant to meet its limit.
        let limit = if what == "hangs" { "1" } else { "600" };
        let out = command(
            &s,
            &report,
            &["--engine", &engine, "--engine-timeout-s", limit],
        )
        .output()
        .unwrap();
        assert!(!out.status.success(), "{what}: exit 1");
        let summary = summary_of(&out);
        assert_eq!(
            summary["triggers"]["engine_failed"]["files"], 1,
            "{what}: {summary}"
        );
        let r = &records(&report)[0];
        assert_eq!(r["outcome"], "failed", "{what}: {r}");
        assert_eq!(r["whose"], "engine", "{what}: {r}");
        assert_eq!(r["stage"], "engine", "{what}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains(says), "{what}: {error}");
        assert!(
            error.contains("the engine's failure, not the file's"),
            "{what}: {error}"
        );
        let blames_the_file = format!("no database at {}", s.corpus.display());
        assert!(!error.contains(&blames_the_file), "{what}: {error}");
        assert!(
            error.len() < 1024,
            "{what}: the engine's output is cut to its end"
        );
    }
    // The hung engine's own child was stopped with it.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let alive = Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the engine's `sleep` outlived its time limit");
}

/// `user_version` is compared: an engine that gives idstore's own file matches, the
/// same file with another `user_version` does not, and the record says so.
#[test]
fn the_engines_user_version_is_compared() {
    let s = setup();
    demo(&s.corpus.join("a.sqlite"));
    let d = s.dir.path();
    let migrate = format!(
        "cp \"$1\" \"$2\" && '{}' --db \"$2\" migrate -q --no-backup",
        bin().display()
    );
    let same = engine_script(d, "same.sh", &migrate);
    let (ok, summary) = rehearse(&s, &["--engine", &same]);
    assert!(ok, "idstore's own steps match: {summary}");
    assert_eq!(records(&s.report)[0]["engine_matches"], true);

    let python = format!(
        "{migrate} && python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"PRAGMA user_version = 7\"); c.commit()' \"$2\""
    );
    let other = engine_script(d, "other.sh", &python);
    let report = d.join("other.jsonl");
    let out = command(&s, &report, &["--engine", &other])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let r = &records(&report)[0];
    assert_eq!(r["engine_matches"], false, "{r}");
    assert_eq!(
        r["triggers"],
        serde_json::json!(["platform_inconsistency"]),
        "{r}"
    );
    assert!(
        r["error"].as_str().unwrap().contains("user_version 7"),
        "{r}"
    );
}

/// A malformed DID, or a settings row with no account, that the file already had is
/// reported as pre-existing and fires nothing: the round trip changed nothing.
#[test]
fn problems_the_file_already_had_fire_no_trigger() {
    let s = setup();
    let bad_did = s.corpus.join("bad-did.sqlite");
    demo(&bad_did);
    raw(&bad_did)
        .batch_execute("UPDATE accounts SET did = 'not a did' WHERE id = 4;")
        .unwrap();
    let extra = s.corpus.join("extra-row.sqlite");
    demo(&extra);
    raw(&extra)
        .batch_execute("INSERT INTO settings (id, accountDid) VALUES (77, NULL);")
        .unwrap();
    let (ok, summary) = rehearse(&s, &[]);
    assert!(ok, "{summary}");
    let all = by_file(&s.report);
    for (file, kind) in [
        ("bad-did.sqlite", "invalid_did"),
        ("extra-row.sqlite", "extra_null_account_row"),
    ] {
        let r = &all[file];
        assert_eq!(r["outcome"], "migrated", "{r}");
        assert_eq!(r["check_problems"], 0, "{r}");
        assert_eq!(r["pre_existing"][kind], 1, "{r}");
        assert_eq!(r["data_intact"], true, "{r}");
    }
}

/// A FIFO, a link (to `/dev/zero`, or to a file of one's own), a file with a second
/// link, or another user's file at the report's path is refused at once, before a
/// byte is read or written: the run neither hangs nor eats memory, a writer
/// blocked on the FIFO stays blocked, and the file behind the name is unchanged.
#[test]
fn a_fifo_a_link_or_another_users_file_at_the_report_path_is_refused_at_once() {
    let s = setup();
    demo(&s.corpus.join("a.sqlite"));
    let d = s.dir.path();
    let victim = d.join("victim.jsonl");
    std::fs::write(
        &victim,
        b"{\"file\":\"a.sqlite\",\"outcome\":\"migrated\",\"triggers\":[]}\n",
    )
    .unwrap();
    let victim_bytes = std::fs::read(&victim).unwrap();

    let fifo = d.join("fifo.jsonl");
    let mut writer = fifo_with_a_writer(&fifo);
    let zero = d.join("zero.jsonl");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let link = d.join("link.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let hard = d.join("hard.jsonl");
    std::fs::hard_link(&victim, &hard).unwrap();

    for (path, says) in [
        (&fifo, "is a FIFO"),
        (&zero, "is a symlink"),
        (&link, "is a symlink"),
        (&hard, "with 2 links"),
    ] {
        let child = command(&s, path, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish(child);
        assert!(!out.status.success(), "{}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.contains("refused"), "{err}");
    }
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the FIFO's writer was never let through"
    );
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), victim_bytes);

    if can_switch_users("a_fifo_a_link_or_another_users_file_at_the_report_path_is_refused_at_once")
    {
        // As root, the report another user left, a record forged in it.
        give(&victim, USER_B, 0o666);
        let out = command(&s, &victim, &[]).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("another user's file (uid {USER_B})")),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            victim_bytes,
            "never written"
        );
    }
}

/// Shards running at once share one report, with a third run over every file
/// beside them: each record is one line, and each file is reported exactly once.
#[test]
fn shards_running_at_once_share_one_report_and_report_each_file_once() {
    let s = setup();
    for i in 0..40 {
        demo(&s.corpus.join(format!("f{i:02}.sqlite")));
    }
    for round in 0..2 {
        let runs: Vec<Child> = [&["--shard", "1/2"][..], &["--shard", "2/2"], &[]]
            .iter()
            .map(|extra| {
                command(&s, &s.report, extra)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut written = 0;
        for child in runs {
            let out = finish(child);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            written += summary_of(&out)["rehearsed_now"].as_u64().unwrap();
        }
        assert_eq!(written, if round == 0 { 40 } else { 0 }, "round {round}");
        let all = by_file(&s.report);
        assert_eq!(all.len(), 40);
        assert!(all.values().all(|r| r["outcome"] == "migrated"));
    }
    let (_, summary) = rehearse(&s, &[]);
    assert_eq!(summary["files"], 40);
}

/// A second run of the same shard into the same report, while the first runs, is
/// refused and writes nothing; another shard runs beside it.
#[test]
fn a_second_identical_run_is_refused_while_the_first_runs() {
    let s = setup();
    for i in 0..6 {
        demo(&s.corpus.join(format!("f{i}.sqlite")));
    }
    let (engine, started, go) = pausing_engine(s.dir.path());
    let first = command(&s, &s.report, &["--shard", "1/2", "--engine", &engine])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first run's engine", || started.exists());
    let before = std::fs::read(&s.report).unwrap_or_default();
    let second = command(&s, &s.report, &["--shard", "1/2"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another rehearsal of the same shard (1/2)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&s.report).unwrap_or_default(),
        before,
        "it wrote nothing"
    );
    let other = command(&s, &s.report, &["--shard", "2/2"])
        .output()
        .unwrap();
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    std::fs::write(&go, b"").unwrap();
    let out = finish(first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(by_file(&s.report).len(), 6);
}

/// A last line cut short (a run killed as it wrote it) is removed by the next run,
/// which says so and rehearses that file again: the report stays JSON Lines.
#[test]
fn a_line_cut_short_is_removed_and_its_file_rehearsed_again() {
    let s = setup();
    for i in 0..3 {
        demo(&s.corpus.join(format!("f{i}.sqlite")));
    }
    let (ok, _) = rehearse(&s, &[]);
    assert!(ok);
    let text = std::fs::read_to_string(&s.report).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = &lines[2][..lines[2].len() / 2];
    std::fs::write(&s.report, format!("{}\n{}\n{cut}", lines[0], lines[1])).unwrap();

    let out = command(&s, &s.report, &[]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line cut short ({} bytes", cut.len())),
        "{err}"
    );
    assert_eq!(summary_of(&out)["rehearsed_now"], 1);
    assert_eq!(
        summary_of(&out)["report"]["torn_line_bytes_removed"],
        cut.len()
    );
    assert_eq!(by_file(&s.report).len(), 3);
}

/// Lines that are not records (text, a line of megabytes) are left as they are,
/// counted, and read past in bounded memory.
#[test]
fn lines_that_are_not_records_are_counted_and_left() {
    let s = setup();
    demo(&s.corpus.join("a.sqlite"));
    let mut junk = b"not a record\n".to_vec();
    junk.extend(std::iter::repeat_n(b'x', 3 << 20));
    junk.push(b'\n');
    std::fs::write(&s.report, &junk).unwrap();
    let (ok, summary) = rehearse(&s, &[]);
    assert!(ok, "{summary}");
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["report"]["lines_not_records"], 1);
    assert_eq!(summary["report"]["lines_too_long"], 1);
    assert!(std::fs::read(&s.report).unwrap().starts_with(&junk));
}

/// A run killed at a chosen write to the report (strace's fault injection: SIGKILL
/// as the 2nd record is written), or one whose write fails (a full disk), leaves
/// only whole records; the rerun gives every file exactly one.
#[test]
fn a_run_killed_or_failing_at_a_chosen_write_leaves_whole_records() {
    if !tool_available(
        "a_run_killed_or_failing_at_a_chosen_write_leaves_whole_records",
        "strace",
        runs("strace", &["-V"]),
        "Debian's strace",
    ) {
        return;
    }
    let s = setup();
    for i in 0..4 {
        demo(&s.corpus.join(format!("f{i}.sqlite")));
    }
    for fault in ["signal=KILL", "error=ENOSPC"] {
        let _ = std::fs::remove_file(&s.report);
        std::fs::write(&s.report, b"").unwrap();
        let mut cmd = std::process::Command::new("strace");
        cmd.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=write"])
            .arg("-e")
            .arg(format!("inject=write:{fault}:when=2"))
            .arg("-P")
            .arg(&s.report)
            .arg(bin())
            .args(command(&s, &s.report, &[]).get_args())
            .env("TMPDIR", &s.tmp)
            .env_remove("IDSTORE_KEY");
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{fault}: the run stopped there");
        let kept = records(&s.report);
        assert_eq!(kept.len(), 1, "{fault}: the first record, whole");
        if fault == "error=ENOSPC" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("could not append a record to the report"),
                "{err}"
            );
        }
        let (ok, summary) = rehearse(&s, &[]);
        assert!(ok, "{fault}: {summary}");
        assert_eq!(by_file(&s.report).len(), 4, "{fault}");
    }
    assert!(
        work_folders(&s).len() <= 1,
        "at most the killed run's folder is left"
    );
}

/// A writer holding the file's write lock mid-transaction (its pages already in
/// the file) is waited for, up to the busy timeout, and the file then refused as
/// `locked`: no copy is taken of a state no one committed. A writer that only
/// holds RESERVED (its live journal beside the file) does not stop the copy, and
/// its journal is not taken for an interrupted write.
#[test]
fn a_copy_waits_for_a_writer_and_never_takes_a_live_journal() {
    let s = setup();
    let file = legacy_with_contacts(&s.corpus);
    let committed = keyed_rows(&file, None).unwrap();
    let mut app = raw(&file);
    app.batch_execute(
        "PRAGMA cache_size = 2; BEGIN IMMEDIATE; UPDATE contacts SET name = hex(randomblob(500));",
    )
    .unwrap();
    let out = command(&s, &s.report, &[])
        .env("IDSTORE_BUSY_TIMEOUT_MS", "300")
        .output()
        .unwrap();
    assert!(out.status.success(), "a refusal fires no trigger");
    let r = &records(&s.report)[0];
    assert_eq!(r["outcome"], "refused", "{r}");
    assert_eq!(r["error_kind"], "locked", "{r}");
    assert_eq!(r["whose"], "file", "{r}");
    app.batch_execute("ROLLBACK;").unwrap();

    // RESERVED only: the change is in the writer's cache and its journal.
    app.batch_execute(
        "PRAGMA cache_size = 2000; BEGIN IMMEDIATE; UPDATE accounts SET publicKeyHex = 'ff';",
    )
    .unwrap();
    assert!(
        beside(&file, "-journal").exists(),
        "the writer's live journal"
    );
    let report = s.dir.path().join("reserved.jsonl");
    let out = command(&s, &report, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &records(&report)[0];
    assert_eq!(r["outcome"], "migrated", "{r}");
    assert_eq!(r["data_intact"], true, "{r}");
    assert_eq!(
        r["bytes"],
        std::fs::metadata(&file).unwrap().len(),
        "the file alone was copied, not the live journal: {r}"
    );
    app.batch_execute("ROLLBACK;").unwrap();
    assert!(keyed_rows(&file, None).unwrap() == committed);
}

/// A file the app keeps writing during its copies (another process committing in
/// a loop, its pages spilling into the file mid-transaction): every copy is a
/// state the app committed, so no rehearsal of it fires a trigger its copy caused.
///
/// The copy waits up to a minute for its lock (the default is 5 s): the app commits
/// every millisecond, and on a loaded machine a reader can miss every gap for
/// seconds. That wait is not what is tested; what each copy holds is.
#[test]
fn a_file_written_during_its_copies_is_never_torn() {
    let s = setup();
    let file = legacy_with_contacts(&s.corpus);
    let stop = s.dir.path().join("stop");
    let counted = s.dir.path().join("commits");
    let app = "import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
c.execute('PRAGMA cache_size = 2')
n = 0
while not os.path.exists(sys.argv[2]):
    c.execute('BEGIN IMMEDIATE')
    c.execute('UPDATE contacts SET name = hex(randomblob(500))')
    c.execute('COMMIT')
    n += 1
    if n == 1:
        open(sys.argv[3] + '-started', 'w').close()
    time.sleep(0.001)
open(sys.argv[3], 'w').write(str(n))
";
    /// The app, killed if the test fails before it is told to stop.
    struct App(std::process::Child);
    impl Drop for App {
        fn drop(&mut self) {
            if self.0.try_wait().is_ok_and(|done| done.is_none()) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut writer = App(std::process::Command::new("python3")
        .args(["-c", app])
        .arg(&file)
        .arg(&stop)
        .arg(&counted)
        .spawn()
        .unwrap());
    let started = PathBuf::from(format!("{}-started", counted.display()));
    wait_until("the app's first commit", || started.exists());
    for round in 0..8 {
        let report = s.dir.path().join(format!("round-{round}.jsonl"));
        let out = command(&s, &report, &["--busy-timeout", "60000"])
            .output()
            .unwrap();
        let r = &records(&report)[0];
        assert!(out.status.success(), "round {round}: {r}");
        assert_eq!(r["outcome"], "migrated", "round {round}: {r}");
        assert_eq!(r["data_intact"], true, "round {round}: {r}");
    }
    std::fs::write(&stop, b"").unwrap();
    assert!(writer.0.wait().unwrap().success());
    let commits: u64 = std::fs::read_to_string(&counted).unwrap().parse().unwrap();
    assert!(commits > 8, "the app wrote during the copies: {commits}");
}

/// A file larger than `--max-mib` is refused without being copied, and one that
/// keeps growing is copied as it was at one instant: the run ends.
#[test]
fn a_file_too_large_is_refused_and_a_growing_one_is_copied_once() {
    let s = setup();
    std::fs::write(s.corpus.join("big.sqlite"), vec![7u8; 2 << 20]).unwrap();
    let growing = s.corpus.join("growing.sqlite");
    std::fs::write(&growing, b"").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (growing, stop) = (growing.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .unwrap();
            let chunk = vec![b'g'; 1 << 16];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&chunk).unwrap();
                if f.metadata().unwrap().len() > 256 << 20 {
                    f.set_len(0).unwrap();
                }
            }
        })
    };
    let out = command(&s, &s.report, &["--max-mib", "1"])
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = by_file(&s.report);
    assert_eq!(
        all["big.sqlite"]["error_kind"], "too_large",
        "{}",
        all["big.sqlite"]
    );
    assert_eq!(all["big.sqlite"]["bytes"], 0, "never copied");
    let g = &all["growing.sqlite"];
    assert_eq!(g["outcome"], "refused", "{g}");
    assert!(g["bytes"].as_u64().unwrap() <= 257 << 20, "{g}");
}

/// SIGINT and SIGTERM remove the run's work folder (the copies of users' files)
/// and stop the engine it was running; after SIGKILL the folder stays, and the
/// next run removes it, and nothing else there.
#[test]
fn nothing_is_left_behind_after_sigint_sigterm_or_sigkill() {
    for signal in ["INT", "TERM", "KILL"] {
        let s = setup();
        for i in 0..3 {
            demo(&s.corpus.join(format!("f{i}.sqlite")));
        }
        let (engine, started, go) = pausing_engine(s.dir.path());
        let child = command(&s, &s.report, &["--engine", &engine])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the engine", || started.exists());
        assert_eq!(work_folders(&s).len(), 1, "{signal}: the run's folder");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = finish(child);
        assert!(!out.status.success(), "{signal}");
        if signal != "KILL" {
            assert!(
                work_folders(&s).is_empty(),
                "{signal}: the work folder went"
            );
            wait_until("the engine to be stopped", || gone(&started));
            continue;
        }
        std::fs::write(&go, b"").unwrap();
        assert_eq!(work_folders(&s).len(), 1, "SIGKILL leaves it");
        let base = s.tmp.join(format!("idstore-rehearse-{}", rustix_uid()));
        std::fs::write(base.join("run-a-file"), b"not a folder").unwrap();
        std::fs::create_dir(base.join("kept-folder")).unwrap();
        let out = command(&s, &s.report, &[]).output().unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("removed 1 work folder(s) left by rehearsals that were killed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(work_folders(&s), vec!["run-a-file".to_owned()]);
        assert!(base.join("kept-folder").is_dir());
        let locks = std::fs::read_dir(&base)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("lock-")
            })
            .count();
        assert_eq!(locks, 0, "the killed run's lock file went too");
        assert_eq!(by_file(&s.report).len(), 3);
    }
}

/// Every entry of the corpus is classified before anything opens it: a link, a
/// FIFO, a socket and a device are each refused as what they are (a writer blocked
/// on the FIFO stays blocked); names that differ by a byte that is not UTF-8 are
/// two files, each rehearsed, named exactly; a `-wal` without its database and the
/// report kept inside the corpus are named in the summary, never rehearsed; and no
/// name reaches the terminal raw.
#[test]
fn the_walk_classifies_before_opening_and_keeps_every_name() {
    use std::ffi::OsStr;
    let s = setup();
    let c = &s.corpus;
    demo(&c.join("plain.sqlite"));
    for name in [&b"u\xfe.sqlite"[..], b"u\xff.sqlite"] {
        std::fs::copy(c.join("plain.sqlite"), c.join(OsStr::from_bytes(name))).unwrap();
    }
    let title = "\u{1b}]0;pwned\u{7}";
    let clear = "\u{1b}[2J";
    demo(&c.join(format!("{clear}slow.sqlite")));
    std::os::unix::fs::symlink(c.join("plain.sqlite"), c.join("link.sqlite")).unwrap();
    let fifo = c.join("fifo.sqlite");
    let mut writer = fifo_with_a_writer(&fifo);
    let socket = std::os::unix::net::UnixListener::bind(c.join("socket.sqlite")).unwrap();
    let root = rustix_uid() == 0;
    if root {
        let dev = c.join("null.sqlite");
        assert!(
            std::process::Command::new("mknod")
                .arg(&dev)
                .args(["c", "1", "3"])
                .status()
                .unwrap()
                .success()
        );
    }
    std::fs::write(c.join(format!("lone{title}.sqlite-wal")), b"frames").unwrap();
    let report = c.join("report.jsonl");

    let out = command(&s, &report, &["--slow-ms", "0"]).output().unwrap();
    let summary = summary_of(&out);
    assert!(
        !out.status.success(),
        "the performance trigger fired: {summary}"
    );
    let all = by_file(&report);
    for (file, kind) in [
        ("link.sqlite", "symlink"),
        ("fifo.sqlite", "fifo"),
        ("socket.sqlite", "socket"),
    ] {
        let r = &all[file];
        assert_eq!(r["outcome"], "refused", "{r}");
        assert_eq!(r["error_kind"], kind, "{r}");
        assert_eq!(r["whose"], "file", "{r}");
    }
    if root {
        assert_eq!(all["null.sqlite"]["error_kind"], "device");
    }
    for file in ["u\\x{fe}.sqlite", "u\\x{ff}.sqlite", "plain.sqlite"] {
        assert_eq!(all[file]["data_intact"], true, "{file}: {}", all[file]);
    }
    assert!(
        !all.contains_key("report.jsonl"),
        "the report is never rehearsed"
    );
    assert_eq!(summary["not_rehearsed"]["report_in_corpus"], "report.jsonl");
    assert_eq!(summary["not_rehearsed"]["side_files_without_database"], 1);
    assert_eq!(
        summary["not_rehearsed"]["side_files_named"][0],
        format!("lone{title}.sqlite-wal"),
        "exact in JSON"
    );
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the FIFO's writer is still blocked"
    );
    writer.kill().unwrap();
    writer.wait().unwrap();
    drop(socket);

    // The same summary as text: every name escaped.
    let args: Vec<_> = command(&s, &report, &[])
        .get_args()
        .filter(|a| *a != "--json")
        .map(|a| a.to_owned())
        .collect();
    let out = std::process::Command::new(bin())
        .args(args)
        .env("TMPDIR", &s.tmp)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("ROLLBACK TRIGGER performance_regression"),
        "{shown}"
    );
    assert!(
        shown.contains("\\u{1b}[2Jslow.sqlite") || shown.contains("u\\x{fe}"),
        "{shown}"
    );
    assert!(
        shown.contains("lone\\u{1b}]0;pwned\\u{7}.sqlite-wal"),
        "{shown}"
    );
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
}

/// On a terminal, the progress bar counts the files and names each one escaped:
/// a name that would retitle or clear the terminal is shown as text.
#[test]
fn a_progress_bar_shows_on_a_terminal_with_names_escaped() {
    if !has_script("a_progress_bar_shows_on_a_terminal_with_names_escaped") {
        return;
    }
    let s = setup();
    for i in 0..12 {
        demo(
            &s.corpus
                .join(format!("{i}\u{1b}]0;pwned\u{7}\u{1b}[2J.sqlite")),
        );
    }
    let args = format!(
        "rehearse {} --report {}",
        s.corpus.display(),
        s.report.display()
    );
    let (ok, shown) = on_terminal(&s.dir.path().join("unused.sqlite"), &args, ">/dev/null");
    assert!(ok, "{shown}");
    assert!(
        shown.contains("/12]"),
        "the bar counts the files: {shown:?}"
    );
    assert!(
        !shown.contains("\u{1b}]0;") && !shown.contains("\u{1b}[2J"),
        "{shown:?}"
    );
    assert_eq!(by_file(&s.report).len(), 12);
}

/// A folder swapped for a link to a folder outside the corpus while the run is
/// under way is not followed: nothing outside is rehearsed or read.
#[test]
fn a_folder_swapped_for_a_link_mid_run_is_not_followed() {
    let s = setup();
    let (engine, started, go) = pausing_engine(s.dir.path());
    demo(&s.corpus.join("first.sqlite"));
    std::fs::create_dir(s.corpus.join("sub")).unwrap();
    demo(&s.corpus.join("sub/inner.sqlite"));
    let outside = s.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    demo(&outside.join("secret.sqlite"));
    let child = command(&s, &s.report, &["--engine", &engine])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the engine's first call", || started.exists());
    std::fs::rename(s.corpus.join("sub"), s.dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&outside, s.corpus.join("sub")).unwrap();
    std::fs::write(&go, b"").unwrap();
    let out = finish(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = by_file(&s.report);
    assert!(!all.contains_key("sub/secret.sqlite"), "{all:?}");
    if let Some(r) = all.get("sub") {
        assert_eq!(
            r["error_kind"], "symlink",
            "swapped before it was walked: {r}"
        );
    }
}

/// As another user, a folder and a file it cannot read are each one record of
/// their kind (`unreadable_folder`, `unreadable_file`), and the run goes on to the
/// rest of the corpus.
#[test]
fn an_unreadable_folder_or_file_is_one_record_and_the_run_goes_on() {
    if !can_switch_users("an_unreadable_folder_or_file_is_one_record_and_the_run_goes_on") {
        return;
    }
    let s = setup();
    give(s.dir.path(), USER_B, 0o755);
    give(&s.tmp, USER_B, 0o700);
    give(&s.corpus, USER_B, 0o755);
    let ok = s.corpus.join("ok.sqlite");
    demo(&ok);
    give(&ok, USER_B, 0o644);
    let locked = s.corpus.join("locked");
    std::fs::create_dir(&locked).unwrap();
    demo(&locked.join("hidden.sqlite"));
    give(&locked, 0, 0o700);
    let secret = s.corpus.join("secret.sqlite");
    demo(&secret);
    give(&secret, 0, 0o600);

    let mut cmd = as_user(USER_B, &bin());
    let args: Vec<_> = command(&s, &s.report, &[])
        .get_args()
        .map(|a| a.to_owned())
        .collect();
    let out = cmd
        .args(args)
        .env("TMPDIR", &s.tmp)
        .env_remove("IDSTORE_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = by_file(&s.report);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all["locked/"]["error_kind"], "unreadable_folder",
        "{}",
        all["locked/"]
    );
    assert_eq!(
        all["secret.sqlite"]["error_kind"], "unreadable_file",
        "{}",
        all["secret.sqlite"]
    );
    assert_eq!(
        all["ok.sqlite"]["outcome"], "migrated",
        "{}",
        all["ok.sqlite"]
    );
}

/// A file in WAL mode is copied as SQLite reads it, its log included: one the app
/// holds open (its `-wal` and `-shm` beside it) through SQLite's backup API, one
/// left by a crash (a `-wal` with frames and no `-shm`) byte for byte with its log.
/// Either way the copy holds the change that is only in the log, and nothing new
/// is left beside the original.
#[test]
fn a_file_in_wal_mode_is_copied_with_its_log() {
    let s = setup();
    let d = s.dir.path();
    let live = s.corpus.join("live.sqlite");
    demo(&live);
    let crashed_source = d.join("crashed-source.sqlite");
    demo(&crashed_source);
    let ready = d.join("ready");
    let stop = d.join("stop");
    let app = "import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode = WAL')
c.execute('PRAGMA wal_autocheckpoint = 0')
c.execute(\"UPDATE settings SET firstName = 'only in the log' WHERE id = 1\")
open(sys.argv[2], 'w').close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
";
    let mut holder = std::process::Command::new("python3")
        .args(["-c", app])
        .arg(&live)
        .arg(&ready)
        .arg(&stop)
        .spawn()
        .unwrap();
    wait_until("the app's write", || ready.exists());
    assert!(beside(&live, "-wal").exists() && beside(&live, "-shm").exists());
    // A crash leaves the log without its index: copy the three files, drop -shm.
    let crashed = s.corpus.join("crashed.sqlite");
    let mut other = std::process::Command::new("python3")
        .args(["-c", app])
        .arg(&crashed_source)
        .arg(d.join("ready-2"))
        .arg(d.join("stop-2"))
        .spawn()
        .unwrap();
    wait_until("the second app's write", || d.join("ready-2").exists());
    std::fs::copy(&crashed_source, &crashed).unwrap();
    std::fs::copy(beside(&crashed_source, "-wal"), beside(&crashed, "-wal")).unwrap();
    std::fs::write(d.join("stop-2"), b"").unwrap();
    assert!(other.wait().unwrap().success());

    let before: Vec<String> = std::fs::read_dir(&s.corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let kept = d.join("kept");
    std::fs::create_dir(&kept).unwrap();
    let engine = engine_script(
        d,
        "keeps.sh",
        &format!(
            "cp \"$1\" '{}'/$(basename \"$(dirname \"$1\")\").sqlite && cp \"$1\" \"$2\" && '{}' --db \"$2\" migrate -q --no-backup",
            kept.display(),
            bin().display()
        ),
    );
    let (ok, summary) = rehearse(&s, &["--engine", &engine]);
    let mut after: Vec<String> = std::fs::read_dir(&s.corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    std::fs::write(&stop, b"").unwrap();
    assert!(holder.wait().unwrap().success());
    assert!(ok, "{summary}");
    let all = by_file(&s.report);
    for file in ["live.sqlite", "crashed.sqlite"] {
        assert_eq!(all[file]["outcome"], "migrated", "{}", all[file]);
        assert_eq!(all[file]["data_intact"], true, "{}", all[file]);
    }
    for copy in std::fs::read_dir(&kept).unwrap() {
        let copy = copy.unwrap().path();
        let first = text_value(
            &mut raw(&copy),
            "SELECT firstName AS value FROM settings WHERE id = 1",
        );
        assert_eq!(
            first.as_deref(),
            Some("only in the log"),
            "{}",
            copy.display()
        );
    }
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 2);
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(after, before, "nothing new beside the originals");
}
