//! Round trips as properties: generated legacy databases (random accounts with
//! duplicates, random settings rows, pointers valid, empty, NULL or dangling, random
//! NUL-free unicode) migrated up and rolled all the way back are identical row for
//! row, and once migrated they pass `check` (bar what the data itself holds).

use crate::common::*;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};
use idstore_repo::MigrateOptions;
use idstore_repo::health::ProblemKind;
use idstore_repo::migrations::RollbackOptions;
use proptest::prelude::*;
use tempfile::TempDir;

/// Four DIDs to draw from, so duplicates are common.
const POOL: [&str; 4] = [
    DID_A,
    DID_B,
    DID_C,
    "did:ethr:0x5555555555555555555555555555555555555555",
];

#[derive(Debug, Clone)]
struct AccountSpec {
    did: usize,
    identity: Option<String>,
    public_key: String,
}

#[derive(Debug, Clone)]
enum Owner {
    Account(usize),
    Stranger(String),
    Nobody,
}

#[derive(Debug, Clone)]
struct SettingsSpec {
    owner: Owner,
    first_name: Option<String>,
    registered: Option<bool>,
    minutes: Option<i32>,
    stray_active: Option<String>,
}

#[derive(Debug, Clone)]
enum Pointer {
    Valid(usize),
    Empty,
    Null,
    Dangling(String),
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,24}"
}

fn accounts() -> impl Strategy<Value = Vec<AccountSpec>> {
    prop::collection::vec(
        (0..POOL.len(), prop::option::of(text()), "[0-9a-f]{2,16}").prop_map(
            |(did, identity, public_key)| AccountSpec {
                did,
                identity,
                public_key,
            },
        ),
        0..8,
    )
}

fn settings_rows() -> impl Strategy<Value = Vec<SettingsSpec>> {
    let owner = prop_oneof![
        (0..POOL.len()).prop_map(Owner::Account),
        text().prop_map(Owner::Stranger),
        Just(Owner::Nobody),
    ];
    prop::collection::vec(
        (
            owner,
            prop::option::of(text()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<i32>()),
            prop::option::of(text()),
        )
            .prop_map(|(owner, first_name, registered, minutes, stray_active)| {
                SettingsSpec {
                    owner,
                    first_name,
                    registered,
                    minutes,
                    stray_active,
                }
            }),
        0..6,
    )
}

fn pointer() -> impl Strategy<Value = Pointer> {
    prop_oneof![
        (0..POOL.len()).prop_map(Pointer::Valid),
        Just(Pointer::Empty),
        Just(Pointer::Null),
        text().prop_map(Pointer::Dangling),
    ]
}

/// Writes the generated legacy file with bound parameters (values are data, never SQL).
fn build(
    dir: &TempDir,
    accounts: &[AccountSpec],
    rows: &[SettingsSpec],
    master: bool,
    pointer: &Pointer,
) -> std::path::PathBuf {
    let path = legacy_file(dir.path(), "gen.sqlite", true, "");
    let mut conn = raw(&path);
    exec(&mut conn, "PRAGMA foreign_keys = OFF;");
    for (i, a) in accounts.iter().enumerate() {
        diesel::sql_query(
            "INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex) VALUES (?, ?, ?, ?)",
        )
        .bind::<Text, _>(format!("2024-01-{:02}T00:00:00.000Z", i + 1))
        .bind::<Text, _>(POOL[a.did])
        .bind::<Nullable<Text>, _>(&a.identity)
        .bind::<Text, _>(&a.public_key)
        .execute(&mut conn)
        .unwrap();
    }
    if master {
        let active = match pointer {
            Pointer::Valid(i) => Some(POOL[*i].to_owned()),
            Pointer::Empty => Some(String::new()),
            Pointer::Null => None,
            Pointer::Dangling(s) => Some(s.clone()),
        };
        diesel::sql_query("INSERT INTO settings (id, activeDid, apiServer) VALUES (1, ?, 'https://api.endorser.ch')")
            .bind::<Nullable<Text>, _>(active)
            .execute(&mut conn)
            .unwrap();
    }
    for r in rows {
        let owner = match &r.owner {
            Owner::Account(i) => Some(POOL[*i].to_owned()),
            Owner::Stranger(s) => Some(s.clone()),
            Owner::Nobody => None,
        };
        diesel::sql_query(
            "INSERT INTO settings (accountDid, activeDid, firstName, isRegistered, passkeyExpirationMinutes) VALUES (?, ?, ?, ?, ?)",
        )
        .bind::<Nullable<Text>, _>(owner)
        .bind::<Nullable<Text>, _>(&r.stray_active)
        .bind::<Nullable<Text>, _>(&r.first_name)
        .bind::<Nullable<diesel::sql_types::Bool>, _>(r.registered)
        .bind::<Nullable<Integer>, _>(r.minutes)
        .execute(&mut conn)
        .unwrap();
    }
    path
}

/// Problems a migration would be to blame for; the rest describe the data itself
/// (quarantined rows, override rows naming no account, stray NULL-owner rows).
const MIGRATION_FAULTS: [ProblemKind; 8] = [
    ProblemKind::Integrity,
    ProblemKind::ForeignKey,
    ProblemKind::DanglingPointer,
    ProblemKind::MissingPointerRow,
    ProblemKind::MissingMasterRow,
    ProblemKind::DuplicateDid,
    ProblemKind::MissingDidIndex,
    ProblemKind::NeedsMigration,
];

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=5000 for a long run.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128),
        // Integration tests have no lib.rs to keep regressions beside; a failure
        // prints its minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn up_then_all_the_way_down_is_identical_and_up_passes_check(
        accounts in accounts(),
        rows in settings_rows(),
        master in any::<bool>(),
        pointer in pointer(),
    ) {
        let dir = TempDir::new().unwrap();
        let path = build(&dir, &accounts, &rows, master, &pointer);
        let mut conn = open(&path).unwrap();
        // Compare from the baseline: adopting seeds a missing master row, by design.
        migrate(&mut conn, MigrateOptions::new().to(BASELINE_VERSION)).unwrap();
        let before = dump(&mut conn);

        let report = migrate(&mut conn, MigrateOptions::new()).unwrap();
        prop_assert_eq!(&report.applied, &[ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION]);
        let expected_active = match &pointer {
            Pointer::Valid(i) if master && accounts.iter().any(|a| a.did == *i) => Some(POOL[*i].to_owned()),
            _ => None,
        };
        prop_assert_eq!(&report.active_did, &expected_active);
        let distinct: std::collections::BTreeSet<usize> = accounts.iter().map(|a| a.did).collect();
        let health = conn.check().unwrap();
        for p in &health.problems {
            prop_assert!(!MIGRATION_FAULTS.contains(&p.kind), "{:?}", p);
        }
        let quarantined = health.problems.iter().filter(|p| p.kind == ProblemKind::QuarantinedAccount).count();
        prop_assert_eq!(quarantined, accounts.len() - distinct.len());

        rollback(&mut conn, &RollbackOptions::new()).unwrap();
        prop_assert_eq!(dump(&mut conn), before);
    }
}

/// The SQL tokenizer's fuzz target (`fuzz/fuzz_targets/sqltext.rs`), run here on
/// arbitrary text and on the migrations' own SQL cut and spliced at random: no input
/// panics any reader of SQL text (CI also runs the target under libFuzzer).
mod sqltext_fuzz {
    use super::*;

    const SEEDS: &[&str] = &[
        include_str!("../../migrations/2026-12-06-000001_active_identity/up.sql"),
        include_str!("../../migrations/2026-12-06-000002_drop_settings_active_did/down.sql"),
        "CREATE TRIGGER t AFTER UPDATE OF a, \"b\" ON t BEGIN SELECT 1; END",
        "INSERT INTO \"t\" (\"a\", [b]) VALUES (X'00ff', -1.5e3, 'it''s', NULL);",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_text_panics_no_reader(text in "\\PC{0,200}") {
            idstore_repo::fixtures::fuzz_sqltext(&text);
        }

        #[test]
        fn spliced_migration_sql_panics_no_reader(
            seed in 0..SEEDS.len(),
            cut in any::<prop::sample::Index>(),
            len in 0usize..400,
            insert in "[\"'`\\[\\];()*/\\-xX0-9a-zA-Z ]{0,8}",
        ) {
            let s = SEEDS[seed];
            let at = cut.index(s.len() + 1);
            let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            let end = (at + len).min(s.len());
            let end = (end..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
            let text = format!("{}{insert}{}", &s[..at], &s[end..]);
            idstore_repo::fixtures::fuzz_sqltext(&text);
        }
    }
}
