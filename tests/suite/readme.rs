//! Runs every `idstore`, `cp`, `printf` and `chmod` line of the README's shell
//! blocks (an `idstore` line may start with environment variables), in order, in a
//! fresh folder, as a user following it would. (The `cargo` and `diesel` lines are
//! run by CI itself: see `.ci/run`.) Checks that the README's list of error kinds is
//! the library's, and its library example the crate's own doctest.

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::cargo_bin;
use tempfile::TempDir;

fn readme_shell_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        let runs = ["idstore ", "cp ", "printf ", "chmod ", "mkdir ", "IDSTORE_"];
        if in_sh && runs.iter().any(|r| t.starts_with(r)) {
            lines.push(t.to_owned());
        }
    }
    lines
}

#[test]
fn every_idstore_command_in_the_readme_works_as_described() {
    let lines = readme_shell_lines();
    assert!(
        lines.len() >= 15,
        "the README's quick start was found: {lines:?}"
    );
    let work = TempDir::new().unwrap();
    let app_db = crate::common::legacy(work.path(), "the-apps-file.sqlite");
    let original = std::fs::read(&app_db).unwrap();
    let bin_dir = cargo_bin("idstore").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in &lines {
        let out = Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(work.path())
            .env("PATH", &path)
            .env("HOME", work.path())
            .env("XDG_DATA_HOME", work.path().join("data"))
            .env("APP_DB", &app_db)
            .env_remove("IDSTORE_DB")
            .output()
            .unwrap();
        // The README says which lines exit 1 (a `check` that finds something).
        let expected = if line.contains("# exits 1") { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{line}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The walk-through ends where it says: the demo migrated with its duplicate
    // decided on (its last `check` exited 0), the copy migrated.
    let status = |db: &str| {
        let out = Command::new(cargo_bin("idstore"))
            .args(["--db", db, "--json", "status"])
            .current_dir(work.path())
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(status("demo.sqlite")["pending"], serde_json::json!([]));
    assert_eq!(status("copy.sqlite")["pending"], serde_json::json!([]));
    assert_eq!(status("phased.sqlite")["paused_at"], "20261206000001");
    // The encrypted copy was re-keyed and decrypted again.
    assert_eq!(status("secret.sqlite")["encrypted"], false);
    assert_eq!(status("secret.sqlite")["pending"], serde_json::json!([]));
    assert_eq!(
        std::fs::read(&app_db).unwrap(),
        original,
        "the app's own file was only copied"
    );
}

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The README lists every error kind the library has, and no other.
#[test]
fn the_readme_lists_every_error_kind() {
    let text = readme();
    let start = text.find("<!-- kinds:begin -->").expect("the kinds list");
    let end = text.find("<!-- kinds:end -->").expect("its end");
    let listed: Vec<&str> = text[start..end].split('`').skip(1).step_by(2).collect();
    let kinds: Vec<&str> = idstore_repo::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(listed, kinds, "the README's list, in ErrorKind's order");
}

/// The README's library example is the crate's own doctest, hidden lines aside.
#[test]
fn the_readme_library_example_is_the_crates_doctest() {
    let text = readme();
    let start = text.find("```rust\n").expect("a Rust block") + "```rust\n".len();
    let end = start + text[start..].find("```").unwrap();
    let shown: Vec<&str> = text[start..end].lines().collect();
    let lib = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/repo/src/lib.rs"),
    )
    .unwrap();
    let mut doc = Vec::new();
    let mut inside = false;
    for line in lib.lines().filter_map(|l| l.strip_prefix("//!")) {
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.trim() == "```" {
            if inside {
                break;
            }
            inside = true;
            continue;
        }
        if inside && !(line.starts_with("# ") || line == "#") {
            doc.push(line);
        }
    }
    assert_eq!(shown, doc);
}

/// The app's integration page lists every token idstore's steps can raise, where
/// each is raised, and nothing else.
#[test]
fn the_app_integration_page_lists_every_token() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/app-integration.md"),
    )
    .unwrap();
    let start = page
        .find("<!-- tokens:begin -->")
        .expect("the tokens table");
    let end = page.find("<!-- tokens:end -->").expect("its end");
    let listed: std::collections::BTreeMap<String, String> = page[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let token = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((token.to_owned(), cells[2].to_owned()))
        })
        .collect();
    let mut raised: std::collections::BTreeMap<String, std::collections::BTreeSet<&str>> =
        std::collections::BTreeMap::new();
    for r in idstore_repo::migrations::steps::refusals() {
        raised
            .entry(r.token.to_owned())
            .or_default()
            .insert(r.raised_by);
    }
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        raised.keys().collect::<Vec<_>>(),
        "docs/app-integration.md's tokens"
    );
    for (token, by) in raised {
        let mut order: Vec<&str> = by.into_iter().collect();
        order.sort_by_key(|w| ["up", "down", "guard"].iter().position(|x| x == w));
        assert_eq!(listed[&token], order.join(", "), "where {token} is raised");
    }
}
