//! The one list of idstore's migration steps. Each step is declared once, here:
//! its version, its folder under `migrations/` (its up and down SQL, which the
//! diesel CLI runs too), its summary and whether a rollout may pause after it. The
//! runner, the plan, rollback, `check`, `repair` and the app's export all read it
//! from here, and the SQL itself says the rest: what each step creates (parsed
//! from its text), what it refuses and why (its preflight, at its head), and the
//! messages of the guards it installs. idstore and the app's migration service run
//! the same text.
//!
//! Every refusal a step's SQL can raise starts with a stable token,
//! `idstore:<token>: `, followed by what happened and what to do
//! ([`refusals`] lists them all).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::error::{Detail, Error, ErrorKind};
use crate::sql::script::{Created, created_objects, statements};

/// The legacy baseline: `accounts` and `settings` as the app creates them.
pub(crate) const BASELINE_VERSION: &str = "00000000000000";
/// Creates `active_identity`, makes `accounts.did` unique, adopts the app's own
/// pointer, guards it, and keeps `settings.activeDid` in step for older app builds.
pub(crate) const ACTIVE_IDENTITY_VERSION: &str = "20261206000001";
/// Drops `settings.activeDid` and the transition triggers.
pub(crate) const CLEANUP_VERSION: &str = "20261206000002";

/// One of idstore's migration steps, as `migrations/` holds it.
#[derive(Debug)]
pub struct Step {
    version: &'static str,
    folder: &'static str,
    up: &'static str,
    down: &'static str,
    summary: &'static str,
    pause_point: bool,
}

macro_rules! step {
    ($version:expr, $folder:literal, $summary:literal, pause_point: $pause:literal) => {
        Step {
            version: $version,
            folder: $folder,
            up: include_str!(concat!("../../migrations/", $folder, "/up.sql")),
            down: include_str!(concat!("../../migrations/", $folder, "/down.sql")),
            summary: $summary,
            pause_point: $pause,
        }
    };
}

/// Every step, oldest first.
const STEPS: &[Step] = &[
    step!(
        BASELINE_VERSION,
        "00000000000000_legacy_baseline",
        "creates the legacy accounts and settings tables if missing (a legacy file's own are checked and kept)",
        pause_point: false
    ),
    step!(
        ACTIVE_IDENTITY_VERSION,
        "2026-12-06-000001_active_identity",
        "moves the active identity to active_identity (duplicates quarantined, the app's own pointer adopted, the pointer guarded) and keeps settings.activeDid in step for older app builds",
        pause_point: true
    ),
    step!(
        CLEANUP_VERSION,
        "2026-12-06-000002_drop_settings_active_did",
        "removes settings.activeDid and the transition triggers: app builds that still write settings.activeDid stop seeing the active identity",
        pause_point: false
    ),
];

/// The table the app's own migration service records each step's name in (`name`,
/// `applied_at`); idstore records there the steps it runs on the app's behalf,
/// never the baseline, when the file has one of that shape.
pub const APP_RECORDS: &str = super::runner_sql::app_service::TABLE;

/// Every step, oldest first.
pub fn all() -> &'static [Step] {
    STEPS
}

/// The step of that version.
pub(crate) fn step(version: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.version == version)
}

impl Step {
    /// Its version, as diesel records it in `__diesel_schema_migrations`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// Its folder under `migrations/`.
    pub fn folder(&self) -> &'static str {
        self.folder
    }

    /// Its name in the app's migration service: the folder's, prefixed so it can
    /// never meet one of the app's own names.
    pub fn app_name(&self) -> String {
        format!("idstore_{}", self.folder)
    }

    /// Its up SQL: the preflight, then the step.
    pub fn up_sql(&self) -> &'static str {
        self.up
    }

    /// Its down SQL: the preflight, then the exact reverse of the step.
    pub fn down_sql(&self) -> &'static str {
        self.down
    }

    /// What it does, in a sentence.
    pub fn summary(&self) -> &'static str {
        self.summary
    }

    /// Whether a phased rollout may stop after it: a file left there is served as a
    /// migrated one (older app builds still write `settings.activeDid`, and the
    /// transition triggers keep it and `active_identity` in step).
    pub fn is_pause_point(&self) -> bool {
        self.pause_point
    }

    /// The read-only queries of its up preflight, in the order it runs them: each
    /// returns a `token` column, one row per reason to refuse, the first being the
    /// one the step raises. (The second of a step reads the legacy tables' rows:
    /// run it once the first returns nothing.)
    pub fn preflight(&self) -> Vec<&'static str> {
        preflight_queries(self.up)
    }

    /// Its down preflight's queries, as [`Step::preflight`].
    pub(crate) fn down_preflight(&self) -> Vec<&'static str> {
        preflight_queries(self.down)
    }
}

/// The statement that feeds a preflight, which this prefix starts: what follows is
/// a read-only `SELECT`.
const PREFLIGHT_INSERT: &str = "INSERT INTO temp.idstore_preflight (token)";

fn preflight_queries(script: &'static str) -> Vec<&'static str> {
    statements(script)
        .unwrap_or_else(|e| panic!("idstore's own SQL tokenizes: {e}"))
        .into_iter()
        .filter_map(|s| s.strip_prefix(PREFLIGHT_INSERT))
        .map(str::trim)
        .collect()
}

/// One read-only query over a file that says, for each of idstore's steps in
/// order, what running it now would do: a row `(step, token)` with the name the
/// app's service records it under, and the first token its preflight raises (NULL:
/// it runs, adopting what it finds; `already_applied`: the file has it). Later steps
/// are judged on the file as it is now, before the earlier ones run (a step after
/// the next one may say `missing_step`). Needs the legacy `accounts` and `settings`
/// tables (the app's own first steps create them).
pub fn preflight_query() -> String {
    let arms: Vec<String> = STEPS
        .iter()
        .map(|s| {
            let firsts: Vec<String> = s
                .preflight()
                .iter()
                .map(|q| format!("(SELECT token FROM ({q}) LIMIT 1)"))
                .collect();
            let token = match firsts.as_slice() {
                [] => "NULL".to_owned(),
                [one] => one.clone(),
                _ => format!("coalesce({})", firsts.join(",\n         ")),
            };
            format!(
                "SELECT '{}' AS step,\n       {token} AS token",
                s.app_name()
            )
        })
        .collect();
    format!("{};", arms.join("\nUNION ALL\n"))
}

/// A refusal one of idstore's steps can raise: its token, with the message after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable token (`already_applied`); the message starts with `idstore:` and it.
    pub token: &'static str,
    /// What the step says after the token: what happened and what to do.
    pub message: &'static str,
    /// Where it is raised: `up` or `down` (a step's preflight), or `guard` (a trigger
    /// the step installs, raised on a write of the app's or another program's).
    pub raised_by: &'static str,
    /// The version of the step whose SQL raises it.
    pub step: &'static str,
}

/// Every refusal idstore's steps can raise, in the order their SQL states them
/// (one entry per distinct token and message).
pub fn refusals() -> &'static [Refusal] {
    static ALL: OnceLock<Vec<Refusal>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<Refusal> = Vec::new();
        for s in STEPS {
            for (script, way) in [(s.up, "up"), (s.down, "down")] {
                for statement in statements(script).expect("idstore's own SQL tokenizes") {
                    let raised_by = if statement.contains("TEMP TRIGGER idstore_preflight_refuse") {
                        way
                    } else {
                        "guard"
                    };
                    for (token, message) in raised(statement) {
                        if !all.iter().any(|r| r.token == token && r.message == message) {
                            all.push(Refusal {
                                token,
                                message,
                                raised_by,
                                step: s.version,
                            });
                        }
                    }
                }
            }
        }
        all
    })
}

/// Every `RAISE(ABORT, 'idstore:<token>: <message>')` of a statement.
fn raised(statement: &'static str) -> Vec<(&'static str, &'static str)> {
    const OPEN: &str = "RAISE(ABORT, 'idstore:";
    let mut found = Vec::new();
    let mut rest = statement;
    while let Some(at) = rest.find(OPEN) {
        let text = &rest[at + OPEN.len()..];
        // The literal ends at a quote that is not doubled.
        let mut end = 0;
        let bytes = text.as_bytes();
        while end < bytes.len() {
            if bytes[end] == b'\'' {
                if bytes.get(end + 1) == Some(&b'\'') {
                    end += 2;
                    continue;
                }
                break;
            }
            end += 1;
        }
        let literal = &text[..end];
        if let Some((token, message)) = literal.split_once(": ") {
            // Read once, for the life of the process: the literal, unquoted.
            let message: &'static str = Box::leak(message.replace("''", "'").into_boxed_str());
            found.push((token, message));
        }
        rest = &text[end..];
    }
    found
}

/// The token of an error message one of idstore's steps raised, and the rest.
pub(crate) fn token_of(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("idstore:")?;
    let (token, rest) = rest.split_once(": ")?;
    refusals()
        .iter()
        .any(|r| r.token == token)
        .then_some((token, rest))
}

/// How the library reports a step's refusal, by its token.
pub(crate) fn kind_of(token: &str) -> ErrorKind {
    match token {
        "already_applied" => ErrorKind::AlreadyApplied,
        "unknown_columns" => ErrorKind::UnknownColumns,
        "legacy_shape" | "missing_app_step" | "no_autoincrement" => ErrorKind::LegacyShape,
        "name_collision" => ErrorKind::NameCollision,
        "foreign_objects" => ErrorKind::ForeignObjects,
        "damaged_input" => ErrorKind::DamagedInput,
        "decisions_would_be_undone" => ErrorKind::DecisionsWouldBeUndone,
        "quarantine_waiting" => ErrorKind::QuarantineWaiting,
        "holds_user_data" => ErrorKind::HoldsUserData,
        // preview_build, missing_step, not_applied, later_step_applied,
        // needs_idstore_rollback: states idstore's own runner never leaves a step
        // to find (it brings a preview build's file to these steps, runs and
        // reverts them in order, and puts adopted objects back itself); and the
        // guard's tokens, which no step's own writes meet.
        _ => ErrorKind::MigrationFailed,
    }
}

/// The error of a refusal with `token`, in the words the steps' SQL gives it, with
/// `detail` (what idstore's inspection found, when it says more) after them.
pub(crate) fn refused(token: &str, detail: &[String]) -> Error {
    let known = refusals().iter().find(|r| r.token == token);
    let message = known.map_or(token, |r| r.message);
    let text = if detail.is_empty() {
        format!("idstore:{token}: {message}")
    } else {
        format!("idstore:{token}: {message} ({})", detail.join("; "))
    };
    let error = Error::new(kind_of(token), text);
    match known {
        Some(r) => error.with_detail(Detail::Token(r.token)),
        None => error,
    }
}

/// Every object each step leaves in the file, by version, with its definition as
/// `sqlite_master` keeps it.
pub(crate) fn created() -> &'static BTreeMap<&'static str, Vec<Created>> {
    static CREATED: OnceLock<BTreeMap<&'static str, Vec<Created>>> = OnceLock::new();
    CREATED.get_or_init(|| {
        STEPS
            .iter()
            .map(|s| {
                let objects = created_objects(s.up)
                    .unwrap_or_else(|e| panic!("migration {} parses: {}", s.version, e.0));
                (s.version, objects)
            })
            .collect()
    })
}

/// The object of that name one of idstore's steps creates, when one does.
pub(crate) fn object(name: &str) -> Option<&'static Created> {
    created().values().flatten().find(|o| o.name == name)
}

/// The table of recorded quarantine decisions, which the active-identity step
/// creates (and `repair` re-creates from its definition here).
pub(crate) const DECISION_LOG: &str = "quarantine_decisions";

/// The definition of idstore's own object `name` as one of its steps creates it
/// and `sqlite_master` keeps it: what `repair` re-creates a missing one from, so
/// there is one definition. Panics for a name no step creates.
pub(crate) fn definition(name: &str) -> &'static str {
    idstore_definition(name).unwrap_or_else(|| panic!("one of idstore's steps creates {name}"))
}

/// The definition idstore's own object `name` has, as one of its steps creates it
/// (`None`: idstore makes no object of that name), as `sqlite_master` keeps it.
pub(crate) fn idstore_definition(name: &str) -> Option<&'static str> {
    object(name).map(|o| o.sql.as_str())
}

/// Every name one of idstore's steps creates (a table, index or trigger).
pub(crate) fn names_created_by_steps() -> std::collections::BTreeSet<&'static str> {
    created()
        .values()
        .flatten()
        .map(|o| o.name.as_str())
        .collect()
}

/// The tables whose b-trees `step` writes when it creates what it creates (a table,
/// or an index on a table), each with the name of the object created.
pub(crate) fn tables_created_by(step: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    created()
        .get(step)
        .into_iter()
        .flatten()
        .filter(|o| o.kind == "table" || o.kind == "index")
        .map(|o| (o.name.as_str(), o.tbl_name.as_str()))
}

/// The triggers of the pointer guard (they keep `active_identity.activeDid` naming
/// an account for every writer, foreign keys on or off): those a step creates whose
/// body refuses a write with one of the steps' tokens, or turns `''` into none,
/// each with the step that creates it. `check` reports a missing one and `repair`
/// re-creates it.
pub(crate) fn guard_triggers() -> impl Iterator<Item = (&'static str, &'static str)> {
    created().iter().flat_map(|(version, objects)| {
        objects
            .iter()
            .filter(|o| {
                o.kind == "trigger"
                    && (o.sql.contains("RAISE(ABORT, 'idstore:")
                        || o.name.starts_with("active_identity_empty_means_none"))
            })
            .map(move |o| (o.name.as_str(), *version))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_their_folders_do_and_are_the_folders_digits() {
        let mut by_folder: Vec<&Step> = STEPS.iter().collect();
        by_folder.sort_by_key(|s| s.folder);
        let mut by_version: Vec<&Step> = STEPS.iter().collect();
        by_version.sort_by_key(|s| s.version);
        assert_eq!(
            by_folder.iter().map(|s| s.version).collect::<Vec<_>>(),
            by_version.iter().map(|s| s.version).collect::<Vec<_>>()
        );
        for s in STEPS {
            let digits: String = s
                .folder
                .split('_')
                .next()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            assert_eq!(digits, s.version, "{}", s.folder);
        }
    }

    #[test]
    fn every_token_has_a_kind_and_every_refusal_says_what_to_do() {
        let tokens: Vec<&str> = refusals().iter().map(|r| r.token).collect();
        for needed in [
            "already_applied",
            "unknown_columns",
            "missing_app_step",
            "legacy_shape",
            "name_collision",
            "foreign_objects",
            "no_autoincrement",
            "damaged_input",
            "preview_build",
            "missing_step",
            "not_applied",
            "later_step_applied",
            "needs_idstore_rollback",
            "decisions_would_be_undone",
            "quarantine_waiting",
            "holds_user_data",
            "unknown_account",
            "active_account",
            "pointer_row",
        ] {
            assert!(tokens.contains(&needed), "{needed} is raised by no step");
        }
        for r in refusals() {
            assert!(
                r.token.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{r:?}"
            );
            assert!(
                r.message.contains(':') || r.message.contains(';'),
                "the message says what to do next: {r:?}"
            );
        }
        assert_eq!(kind_of("already_applied"), ErrorKind::AlreadyApplied);
        assert_eq!(
            token_of("idstore:holds_user_data: it holds data"),
            Some(("holds_user_data", "it holds data"))
        );
        assert_eq!(token_of("idstore:no_such_token: x"), None);
    }

    #[test]
    fn the_preflight_queries_are_the_steps_own_selects() {
        let active = step(ACTIVE_IDENTITY_VERSION).unwrap().preflight();
        assert_eq!(active.len(), 2, "{active:#?}");
        assert!(active.iter().all(|q| q.starts_with("SELECT token FROM (")));
        let query = preflight_query();
        for s in STEPS {
            assert!(query.contains(&format!("'{}' AS step", s.app_name())));
            for q in s.preflight() {
                assert!(query.contains(q));
            }
        }
    }

    /// The baseline runs the active-identity step's checks word for word, so a
    /// file that step would refuse is refused before the baseline writes anything.
    #[test]
    fn the_baseline_checks_what_the_active_identity_step_checks() {
        let baseline = step(BASELINE_VERSION).unwrap().preflight();
        let active = step(ACTIVE_IDENTITY_VERSION).unwrap().preflight();
        assert_eq!(baseline.len(), active.len());
        for (b, a) in baseline.iter().zip(&active) {
            let body = a
                .strip_prefix("SELECT token FROM (")
                .and_then(|a| a.strip_suffix(") ORDER BY rank"))
                .unwrap();
            assert!(b.contains(body), "{b}\n---\n{body}");
        }
        // And the same messages.
        let trigger = |v: &str| {
            statements(step(v).unwrap().up)
                .unwrap()
                .into_iter()
                .find(|s| s.starts_with("CREATE TEMP TRIGGER idstore_preflight_refuse"))
                .unwrap()
        };
        assert_eq!(trigger(BASELINE_VERSION), trigger(ACTIVE_IDENTITY_VERSION));
    }

    /// Every name the active-identity step creates is one its preflight knows (a
    /// collision) and one the cleanup's preflight leaves alone.
    #[test]
    fn the_preflights_know_every_name_the_active_identity_step_creates() {
        let up = step(ACTIVE_IDENTITY_VERSION).unwrap().up;
        let cleanup = step(CLEANUP_VERSION).unwrap().up;
        for o in &created()[ACTIVE_IDENTITY_VERSION] {
            let quoted = format!("'{}'", o.name);
            if o.name != "active_identity" && o.name != "idx_accounts_did_unique" {
                assert!(
                    up.contains(&quoted),
                    "the collision check misses {}",
                    o.name
                );
            }
            if o.kind != "table" && o.sql.contains("activeDid") {
                assert!(
                    cleanup.contains(&quoted),
                    "the cleanup's check misses {}",
                    o.name
                );
            }
        }
    }

    /// Every preflight query, up and down, reads as rows of one `token` column,
    /// on the file each runs on (up: the legacy tables; down: the step applied).
    #[test]
    fn every_preflight_query_reads_tokens() {
        use diesel::connection::SimpleConnection;
        use diesel::{Connection, QueryableByName, RunQueryDsl};
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            #[allow(dead_code)]
            token: String,
        }
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(super::super::LEGACY_APP_SCHEMA).unwrap();
        for s in STEPS {
            // (Naming the column outside the query finds it missing even when
            // the query returns no row.)
            for q in s.preflight() {
                diesel::sql_query(format!("SELECT token FROM ({q})"))
                    .load::<Row>(&mut conn)
                    .unwrap_or_else(|e| panic!("{} up: {e}\n{q}", s.version));
            }
            conn.batch_execute(
                "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE;",
            )
            .ok();
            conn.batch_execute(s.up).unwrap();
            for q in s.down_preflight() {
                diesel::sql_query(format!("SELECT token FROM ({q})"))
                    .load::<Row>(&mut conn)
                    .unwrap_or_else(|e| panic!("{} down: {e}\n{q}", s.version));
            }
            assert!(
                !s.down_preflight().is_empty(),
                "{} has a down preflight",
                s.version
            );
        }
    }

    #[test]
    fn the_guard_is_every_refusing_trigger() {
        let guard: Vec<&str> = guard_triggers().map(|(n, _)| n).collect();
        for name in [
            "active_identity_keep_row",
            "active_identity_guard_insert",
            "accounts_guard_active_replace",
            "active_identity_empty_means_none_on_update",
        ] {
            assert!(guard.contains(&name), "{name}: {guard:?}");
        }
        assert!(!guard.contains(&"active_identity_touch_last_updated"));
    }

    #[test]
    fn every_guard_trigger_is_named_by_the_migration() {
        for (name, step) in guard_triggers() {
            let sql = definition(name);
            assert!(sql.starts_with(&format!("CREATE TRIGGER {name}\n")));
            assert!(sql.ends_with("\nEND"));
            assert_eq!(sql.matches("CREATE TRIGGER").count(), 1, "{sql}");
            let made_by = created()
                .iter()
                .find(|(_, objects)| objects.iter().any(|o| o.name == name))
                .map(|(v, _)| *v);
            assert_eq!(made_by, Some(step), "{name}");
        }
        let log = definition(DECISION_LOG);
        assert!(log.starts_with("CREATE TABLE quarantine_decisions ("));
        assert!(log.ends_with("exportPath TEXT\n)"), "{log}");
    }

    /// What the steps' SQL says they create is what running them creates: the same
    /// objects, each with the definition `sqlite_master` keeps.
    #[test]
    fn the_parsed_steps_match_a_run_of_them() {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let mut before = crate::sql::schema_objects(&mut conn).unwrap();
        for step in all() {
            conn.batch_execute(step.up_sql())
                .unwrap_or_else(|e| panic!("{} runs on an empty database: {e}", step.version()));
            let after = crate::sql::schema_objects(&mut conn).unwrap();
            let mut ran: Vec<(String, String, String, Option<String>)> = after
                .values()
                .filter(|o| !before.contains_key(&o.name))
                .map(|o| {
                    (
                        o.kind.clone(),
                        o.name.clone(),
                        o.tbl_name.clone(),
                        o.sql.clone(),
                    )
                })
                .collect();
            let mut said: Vec<(String, String, String, Option<String>)> = created()[step.version()]
                .iter()
                .map(|o| {
                    (
                        o.kind.to_owned(),
                        o.name.clone(),
                        o.tbl_name.clone(),
                        Some(o.sql.clone()),
                    )
                })
                .collect();
            ran.sort();
            said.sort();
            assert_eq!(said, ran, "{}", step.version());
            before = after;
        }
    }
}
