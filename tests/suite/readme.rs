//! The docs as a reader follows them. Every Markdown page of the repository (the
//! README and the pages beside it, `docs/`, and any page added later: they are found
//! by walking the repository, not listed here) is read, and:
//!
//! - **its shell blocks run**, page by page, each page in a fresh folder of its own
//!   where `APP_DB` names a legacy file as the app leaves it, with the `idstore`
//!   just built first on the `PATH`, as a user following that page would;
//! - **its relative links lead somewhere**: a file that exists, and a `#fragment`
//!   into a page to one of its headings;
//! - the lists and tables the code must agree with are the code's (the error kinds,
//!   the app's refusal tokens; the HTTP statuses are held by `examples/service`).
//!
//! Which blocks run is said per block, by its fence:
//!
//! - ```` ```sh ````: run. Each line starting with `idstore`, `cp`, `printf`, `chmod`
//!   or `mkdir` (an `idstore` line may start with environment variables,
//!   `IDSTORE_KEY=… idstore …`) runs with bash, in order, and must exit 0, or 1 when
//!   the line says `# exits 1`. `cargo` and `diesel` lines are CI's (`.ci/run` runs
//!   the set-up and the diesel CLI checks); comments and blank lines are skipped.
//!   Any other line fails this test: a block that cannot run here is marked.
//! - ```` ```sh no-run ````: shown, never run: it installs tools, takes minutes or
//!   reaches the network (the page says which).
//! - every other fence (` ```json `, ` ```toml `, ` ```rust `, ` ```text `, a bare
//!   ` ``` `) is not shell and never runs; ` ```bash `, ` ```shell ` and
//!   ` ```console ` are refused, so that no shell block is skipped unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin;
use serde_json::{Value, json};
use tempfile::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Markdown page, by its path from the repository's root (`docs/operator-guide.md`).
struct Page {
    name: String,
    text: String,
}

/// Folders that hold no page of the project's, wherever they are: build output and
/// installed engines (hidden folders, `.git` and `.venv`, are passed over too).
const NOT_DOCS_NAMED: &[&str] = &["target", "node_modules"];
/// The same, by path: the advisory snapshot (the RustSec database's own text).
const NOT_DOCS_AT: &[&str] = &["audit/advisory-db"];

/// Every `.md` file of the repository, the README first, then by path.
fn pages() -> Vec<Page> {
    page_names(&root())
        .into_iter()
        .map(|name| Page {
            text: std::fs::read_to_string(root().join(&name)).unwrap(),
            name,
        })
        .collect()
}

/// The paths of the Markdown pages under `root`, the README first, then by path.
fn page_names(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, found: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().unwrap();
            let passed_over = name.starts_with('.')
                || NOT_DOCS_NAMED.contains(&name.as_str())
                || NOT_DOCS_AT.contains(&rel.as_str());
            if kind.is_dir() && !passed_over {
                walk(&entry.path(), &rel, found);
            } else if kind.is_file() && name.ends_with(".md") {
                found.push(rel);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, "", &mut found);
    found.sort_by_key(|p| (p != "README.md", p.clone()));
    found
}

/// Pages are found wherever they are added, and nowhere that holds others' text.
#[test]
fn docs_pages_are_found_by_walking_the_repository() {
    let tree = TempDir::new().unwrap();
    for file in [
        "README.md",
        "CONTRIBUTING.md",
        "docs/guide.md",
        "docs/deeper/more.md",
        "examples/service/README.md",
        "tests/engines/node_modules/better-sqlite3/README.md",
        "fuzz/target/x/README.md",
        "target/doc/x.md",
        "audit/advisory-db/crates/tokio/RUSTSEC-2021-0072.md",
        ".git/x.md",
        "docs/notes.txt",
    ] {
        let path = tree.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "# x\n").unwrap();
    }
    assert_eq!(
        page_names(tree.path()),
        [
            "README.md",
            "CONTRIBUTING.md",
            "docs/deeper/more.md",
            "docs/guide.md",
            "examples/service/README.md"
        ]
    );
    let here = page_names(&root());
    for page in ["README.md", "docs/operator-guide.md", "RELIABILITY.md"] {
        assert!(here.iter().any(|p| p == page), "{page} in {here:?}");
    }
}

fn page(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fenced block: its info string, the line of its opening fence (from 1), and its
/// lines with the fence's indentation removed, each with its own line number.
struct Block {
    info: String,
    at: usize,
    lines: Vec<(usize, String)>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        match open.take() {
            None if t.starts_with("```") => {
                let block = Block {
                    info: t.trim_start_matches('`').trim().to_owned(),
                    at: i + 1,
                    lines: Vec::new(),
                };
                open = Some((block, indent));
            }
            None => {}
            Some((block, _)) if t.starts_with("```") => found.push(block),
            Some((mut block, indent)) => {
                let cut = line.len() - line.trim_start().len();
                block
                    .lines
                    .push((i + 1, line[cut.min(indent)..].to_owned()));
                open = Some((block, indent));
            }
        }
    }
    found
}

/// What this test does with a line of a ` ```sh ` block.
#[derive(Debug, PartialEq)]
enum Line {
    Run,
    /// `cargo` or `diesel`: CI runs those.
    Ci,
    Skip,
    /// Anything else: the block should be marked `no-run`.
    Unknown,
}

/// The first word of a shell line, after any `NAME=value` assignments before it.
fn command_word(line: &str) -> &str {
    let mut rest = line.trim_start();
    loop {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let Some(eq) = rest[..word_end].find('=') else {
            break;
        };
        let name = &rest[..eq];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            break;
        }
        // The value: up to the matching quote, or to the next space.
        let value = &rest[eq + 1..];
        let len = match value.chars().next() {
            Some(q @ ('\'' | '"')) => value[1..].find(q).map_or(value.len(), |e| e + 2),
            _ => value.find(char::is_whitespace).unwrap_or(value.len()),
        };
        rest = value[len..].trim_start();
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn classify(line: &str) -> Line {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Line::Skip;
    }
    match command_word(t) {
        "idstore" | "cp" | "printf" | "chmod" | "mkdir" => Line::Run,
        "cargo" | "diesel" => Line::Ci,
        _ => Line::Unknown,
    }
}

/// A block's lines joined where one ends with `\`, each with its first line number.
fn logical_lines(block: &Block) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in &block.lines {
        let (at, mut text) = pending.take().unwrap_or((*n, String::new()));
        text.push_str(line.trim());
        match text.strip_suffix('\\') {
            Some(head) => pending = Some((at, format!("{} ", head.trim_end()))),
            None => out.push((at, text)),
        }
    }
    out.extend(pending);
    out
}

/// The lines of `page` this test runs, in order, each with the fence's line and its
/// own; or why a block cannot be read that way.
fn runnable(page: &Page) -> Result<Vec<(usize, usize, String)>, String> {
    let mut lines = Vec::new();
    for block in blocks(&page.text) {
        let mut words = block.info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let marks: Vec<&str> = words.collect();
        match (lang, marks.as_slice()) {
            ("sh", []) => {}
            ("sh", ["no-run"]) => continue,
            ("sh", _) => {
                return Err(format!(
                    "{}:{}: ```{}: the only mark a sh block takes is `no-run`",
                    page.name, block.at, block.info
                ));
            }
            ("bash" | "shell" | "console" | "shell-session", _) => {
                return Err(format!(
                    "{}:{}: ```{}: fence a shell block ```sh (it runs) or ```sh no-run (shown only)",
                    page.name, block.at, block.info
                ));
            }
            _ => continue,
        }
        for (n, line) in logical_lines(&block) {
            match classify(&line) {
                Line::Run => lines.push((block.at, n, line)),
                Line::Ci | Line::Skip => {}
                Line::Unknown => {
                    return Err(format!(
                        "{}:{}: the ```sh block's line {n}, `{line}`, is neither one this test runs \
                         (idstore, cp, printf, chmod, mkdir) nor CI's (cargo, diesel): \
                         fence the block ```sh no-run if it cannot run here",
                        page.name, block.at
                    ));
                }
            }
        }
    }
    Ok(lines)
}

/// Where a page's walk-through ends, as the page says: `status --json` of a file it
/// made, and the least number of its lines that must have run (so that a page whose
/// blocks lost their fence is noticed).
fn ends_where_it_says(page: &str) -> (usize, Vec<(&'static str, &'static str, Value)>) {
    match page {
        "README.md" => (5, vec![("demo.sqlite", "/pending", json!([]))]),
        "docs/operator-guide.md" => (
            20,
            vec![
                // The walk-through ends with the duplicate decided on (its last
                // `check` exited 0), the copy migrated, the phased file paused.
                ("demo.sqlite", "/pending", json!([])),
                ("copy.sqlite", "/pending", json!([])),
                ("phased.sqlite", "/paused_at", json!("20261206000001")),
            ],
        ),
        "docs/encrypted-files.md" => (
            8,
            vec![
                // Encrypted, re-keyed and decrypted again.
                ("secret.sqlite", "/encrypted", json!(false)),
                ("secret.sqlite", "/pending", json!([])),
            ],
        ),
        _ => (0, Vec::new()),
    }
}

/// The pages whose walk-throughs this test holds to where they end.
const WALKED: &[&str] = &[
    "README.md",
    "docs/operator-guide.md",
    "docs/encrypted-files.md",
];

#[test]
fn docs_every_shell_block_of_every_page_runs_as_written() {
    let bin_dir = cargo_bin("idstore").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pages = pages();
    for walked in WALKED {
        assert!(
            pages.iter().any(|p| p.name == *walked),
            "{walked} is one of the pages"
        );
    }
    let mut ran = BTreeMap::new();
    for page in &pages {
        let lines = runnable(page).unwrap_or_else(|e| panic!("{e}"));
        let (least, ends) = ends_where_it_says(&page.name);
        assert!(
            lines.len() >= least,
            "{}: {} of its lines ran, at least {least} expected: {lines:?}",
            page.name,
            lines.len()
        );
        if lines.is_empty() {
            continue;
        }
        // A fresh folder for each page: a page is followed on its own.
        let work = TempDir::new().unwrap();
        let app_db = crate::common::legacy(work.path(), "the-apps-file.sqlite");
        let original = std::fs::read(&app_db).unwrap();
        for (at, n, line) in &lines {
            let out = Command::new("bash")
                .arg("-c")
                .arg(line)
                .current_dir(work.path())
                .env("PATH", &path)
                .env("HOME", work.path())
                .env("XDG_DATA_HOME", work.path().join("data"))
                .env("APP_DB", &app_db)
                .env_remove("IDSTORE_DB")
                .env_remove("IDSTORE_KEY")
                .env_remove("IDSTORE_NEW_KEY")
                .env_remove("IDSTORE_BUSY_TIMEOUT_MS")
                .env_remove("IDSTORE_SQLCIPHER_COMPAT")
                .output()
                .unwrap();
            // The page says which lines exit 1 (a `check` that finds something).
            let expected = if line.contains("# exits 1") { 1 } else { 0 };
            assert_eq!(
                out.status.code(),
                Some(expected),
                "{}:{n} (the ```sh block at line {at}): `{line}` exited {:?}, the page says {expected}\n\
                 stdout: {}\nstderr: {}",
                page.name,
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (db, pointer, want) in ends {
            let out = Command::new(cargo_bin("idstore"))
                .args(["--db", db, "--json", "status"])
                .current_dir(work.path())
                .env_remove("IDSTORE_KEY")
                .output()
                .unwrap();
            let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{}: status of {db}: {e}: {}",
                    page.name,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            assert_eq!(
                status.pointer(pointer),
                Some(&want),
                "{}: {db}'s {pointer} where the page ends",
                page.name
            );
        }
        assert_eq!(
            std::fs::read(&app_db).unwrap(),
            original,
            "{}: the app's own file was only copied",
            page.name
        );
        ran.insert(page.name.clone(), lines.len());
    }
    for walked in WALKED {
        assert!(ran.contains_key(*walked), "{walked}'s lines ran: {ran:?}");
    }
}

/// The marks are read as this test says: a line is run, left to CI, or refused.
#[test]
fn docs_shell_lines_are_classified_as_the_rules_say() {
    assert_eq!(classify("idstore --db a.sqlite status"), Line::Run);
    assert_eq!(
        classify("IDSTORE_NEW_KEY='the passphrase' idstore --db s.sqlite encrypt   # x"),
        Line::Run
    );
    assert_eq!(
        classify("mkdir corpus && cp \"$APP_DB\" corpus/u.sqlite"),
        Line::Run
    );
    assert_eq!(classify("cargo run -- migrate"), Line::Ci);
    // An environment variable before cargo does not make it idstore's.
    assert_eq!(
        classify("IDSTORE_LONG=1 cargo test --release --test suite reliability::"),
        Line::Ci
    );
    assert_eq!(classify("hyperfine 'idstore status'"), Line::Unknown);
    assert_eq!(classify("  cp \"$f\" \"$work/x.sqlite\""), Line::Run);
    assert_eq!(classify("# a comment"), Line::Skip);
    let page = Page {
        name: "example.md".into(),
        text: "```sh no-run\nfor f in *; do cp \"$f\" x; done\n```\n\n```sh\nidstore status \\\n  --json\n```\n\n```\nhyperfine x\n```\n".into(),
    };
    let lines = runnable(&page).unwrap();
    assert_eq!(lines, vec![(5, 6, "idstore status --json".to_owned())]);
    let unmarked = Page {
        name: "example.md".into(),
        text: "```sh\nidstore demo legacy b.sqlite\nhyperfine 'idstore status'\n```\n".into(),
    };
    let err = runnable(&unmarked).unwrap_err();
    assert!(err.starts_with("example.md:1: "), "{err}");
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept,
/// spaces as `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings (`#`–`######`, outside fenced blocks), repeated
/// ones numbered as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeMap::<String, usize>::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if fenced || hashes == 0 || hashes > 6 || !t[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&t[hashes..]);
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a page's inline links (`[text](target)`), outside fenced blocks
/// and code spans, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans aside: every other backtick-delimited stretch.
        let prose: String = line
            .split('`')
            .enumerate()
            .map(|(k, part)| if k % 2 == 0 { part } else { "" })
            .collect();
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((i + 1, after[..end].trim().to_owned()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn docs_every_relative_link_leads_somewhere() {
    let pages = pages();
    let mut broken = Vec::new();
    for page in &pages {
        let dir = Path::new(&page.name).parent().unwrap_or(Path::new(""));
        for (n, target) in links(&page.text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, frag)) => (f, Some(frag)),
                None => (target.as_str(), None),
            };
            let rel = if file.is_empty() {
                PathBuf::from(&page.name)
            } else {
                normalize(&dir.join(file))
            };
            let full = root().join(&rel);
            if !full.exists() {
                broken.push(format!("{}:{n}: {target}: no such file", page.name));
                continue;
            }
            if let (Some(fragment), true) = (fragment, rel.extension() == Some("md".as_ref())) {
                let text = std::fs::read_to_string(&full).unwrap();
                if !anchors(&text).contains(fragment) {
                    broken.push(format!(
                        "{}:{n}: {target}: {} has no heading #{fragment}",
                        page.name,
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// `a/../b` as `b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn docs_anchors_are_githubs() {
    let text = "# idstore\n## The app's own migration service\n### Regenerating `schema.rs`\n```sh\n# not a heading\n```\n## Notes\n## Notes\n";
    let found = anchors(text);
    for a in [
        "idstore",
        "the-apps-own-migration-service",
        "regenerating-schemars",
        "notes",
        "notes-1",
    ] {
        assert!(found.contains(a), "{a} in {found:?}");
    }
    assert!(!found.contains("not-a-heading"));
    assert_eq!(
        links("see [the guide](docs/a.md#x) and `[not](a link)`"),
        vec![(1, "docs/a.md#x".to_owned())]
    );
}

/// The operator's guide lists every error kind the library has, and no other, in
/// `ErrorKind`'s order: they are the `kind` of `--json`'s error document.
#[test]
fn docs_the_operator_guide_lists_every_error_kind() {
    let text = page("docs/operator-guide.md");
    let start = text.find("<!-- kinds:begin -->").expect("the kinds list");
    let end = text.find("<!-- kinds:end -->").expect("its end");
    let listed: Vec<&str> = text[start..end].split('`').skip(1).step_by(2).collect();
    let kinds: Vec<&str> = idstore_repo::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        listed, kinds,
        "docs/operator-guide.md's list, in ErrorKind's order"
    );
}

/// A block's Rust as shown, `# ` lines (hidden by rustdoc) left out.
fn shown_rust(block: &Block) -> Vec<String> {
    block
        .lines
        .iter()
        .map(|(_, l)| l.clone())
        .filter(|l| !(l.trim_start().starts_with("# ") || l.trim() == "#"))
        .collect()
}

/// The README's library example is the library guide's first, whose Rust blocks
/// are compiled as idstore-repo's doctests: what a newcomer copies compiles.
#[test]
fn readme_library_example_is_the_library_guides_first() {
    let rust = |name: &str| -> Vec<Vec<String>> {
        blocks(&page(name))
            .iter()
            .filter(|b| b.info == "rust")
            .map(shown_rust)
            .collect()
    };
    let readme = rust("README.md");
    let guide = rust("docs/library-guide.md");
    assert_eq!(readme.len(), 1, "the README shows one Rust example");
    assert!(!guide.is_empty(), "the library guide has examples");
    assert_eq!(readme[0], guide[0]);
}

/// The app's integration page lists every token idstore's steps can raise, where
/// each is raised, and nothing else.
#[test]
fn docs_the_app_integration_page_lists_every_token() {
    let page = page("docs/app-integration.md");
    let start = page
        .find("<!-- tokens:begin -->")
        .expect("the tokens table");
    let end = page.find("<!-- tokens:end -->").expect("its end");
    let listed: BTreeMap<String, String> = page[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let token = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((token.to_owned(), cells[2].to_owned()))
        })
        .collect();
    let mut raised: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
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
