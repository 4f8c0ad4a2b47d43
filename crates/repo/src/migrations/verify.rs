//! Validation: after the steps (whose own preflight checked their input before the
//! first write) and inside the same transaction, every b-tree the run wrote and the row-level
//! promises (no account lost, the active identity the old data implied, no
//! dangling foreign key). Any failure rolls the whole run back.

use diesel::prelude::*;

use super::inspect;
use super::plan::MigrationPlan;
use super::run::{ExtraCheck, Integrity};
use crate::error::{Detail, Error, ErrorKind};
use crate::migrations::report::MigrationReport;
use crate::sql;

/// The failure of a run whose result did not validate; `report` holds the errors.
pub(super) fn validation_failed(report: MigrationReport) -> Error {
    Error::new(
        ErrorKind::ValidationFailed,
        format!(
            "validation failed, everything was rolled back: {}",
            report.errors.join("; ")
        ),
    )
    .with_detail(Detail::Report(Box::new(report)))
}

/// Validates the run's result; the errors found go into the report.
pub(super) fn verify(
    conn: &mut SqliteConnection,
    plan: &MigrationPlan,
    report: &mut MigrationReport,
    integrity: Integrity,
    extra_check: Option<ExtraCheck<'_>>,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    match integrity {
        Integrity::Full => errors.extend(sql::integrity_problems(conn)?),
        Integrity::Written => {
            for table in &plan.written_tables {
                errors.extend(sql::table_integrity_problems(conn, table)?);
            }
            for table in &plan.rewritten_tables {
                // Every row read back whole: SQLite checks each page it loads and
                // each record it decodes, and refuses a damaged one.
                match sql::read_every_row(conn, table) {
                    Err(diesel::result::Error::DatabaseError(_, info)) => {
                        errors.push(format!("{table}: {}", info.message()));
                    }
                    other => other?,
                }
            }
        }
    }
    // The foreign keys of what the run wrote (with `Full`, of the whole file).
    let violations = match integrity {
        Integrity::Full => sql::foreign_key_violations(conn)?,
        Integrity::Written => sql::foreign_key_violations_of(
            conn,
            plan.written_tables
                .iter()
                .chain(&plan.rewritten_tables)
                .map(String::as_str),
        )?,
    };
    errors.extend(violations.iter().map(ToString::to_string));
    if report.active_did != plan.expected_active_did {
        errors.push(format!(
            "the active identity is {:?} but the old data predicted {:?}",
            report.active_did, plan.expected_active_did
        ));
    }
    let accounts_after = inspect::account_rows(conn)?;
    if accounts_after != plan.account_rows {
        errors.push(format!(
            "{} account rows before, {accounts_after} kept or quarantined after",
            plan.account_rows
        ));
    } else if let Some(before) = &plan.accounts
        && before.again(conn)? != *before
    {
        errors.push(
            "an account row changed (its id, DID or key material is not what it was); nothing of the run explains it"
                .to_owned(),
        );
    }
    if let Some(Err(e)) = extra_check.map(|check| check(conn)) {
        errors.push(e.to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        report.errors = errors;
        Err(validation_failed(std::mem::take(report)))
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::migrations::inspect::Inspection;

    /// A legacy file with two accounts and a pointer, migrated inside a transaction
    /// that `damage` then harms before validation runs; the transaction is rolled back.
    fn validate_after(damage: &str) -> Result<(), Error> {
        let dir = tempfile::tempdir().unwrap();
        // A plain connection, not idstore's: the damage below needs `writable_schema`,
        // which idstore's defensive connections refuse.
        let path = dir.path().join("t.sqlite");
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute("PRAGMA foreign_keys = ON;").unwrap();
        conn.batch_execute(super::super::LEGACY_APP_SCHEMA).unwrap();
        conn.batch_execute(
            "INSERT INTO accounts (dateCreated, did, publicKeyHex) VALUES
                ('2024', 'did:example:a', '02aa'), ('2024', 'did:example:b', '02bb');
             INSERT INTO settings (id, activeDid) VALUES (1, 'did:example:b');",
        )
        .unwrap();
        let outcome = conn.transaction::<_, Error, _>(|conn| {
            let mut plan = MigrationPlan::decide(Inspection::read(conn)?, None)?;
            plan.accounts = Some(inspect::AccountDigest::read(conn)?);
            let mut report = super::super::run::execute(conn, &plan, None)?;
            conn.batch_execute(damage)?;
            verify(conn, &plan, &mut report, Integrity::Written, None)?;
            Err(Error::new(crate::ErrorKind::Other, "success")) // roll back
        });
        match outcome {
            Err(e) if e.to_string() == "success" => Ok(()),
            other => other,
        }
    }

    #[test]
    fn an_undamaged_run_passes() {
        validate_after("SELECT 1;").unwrap();
    }

    #[test]
    fn an_account_row_changed_during_the_run_is_refused() {
        for damage in [
            "UPDATE accounts SET mnemonicEncrBase64 = 'ATTACKER' WHERE did = 'did:example:a';",
            "UPDATE accounts SET id = id + 100 WHERE did = 'did:example:b';",
            "UPDATE accounts SET derivationPath = x'00' WHERE did = 'did:example:a';",
        ] {
            let err = validate_after(damage).unwrap_err();
            let report = err.report().unwrap_or_else(|| panic!("{damage}: {err}"));
            assert!(
                report
                    .errors
                    .iter()
                    .any(|e| e.contains("an account row changed")),
                "{damage}: {:?}",
                report.errors
            );
        }
    }

    #[test]
    fn a_damaged_index_the_run_built_is_refused() {
        // An index the run built now claims to index another column than the one
        // its entries hold: its entry disagrees with its row.
        let err = validate_after(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_master
                SET sql = 'CREATE INDEX idx_active_identity_activeDid ON active_identity(lastUpdated)'
              WHERE name = 'idx_active_identity_activeDid';
             PRAGMA writable_schema = RESET;",
        )
        .unwrap_err();
        let Some(report) = err.report() else {
            panic!("{err}");
        };
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains("idx_active_identity_activeDid")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_damaged_row_in_a_new_table_is_refused() {
        // A row of a table the run created that breaks a NOT NULL constraint.
        let err = validate_after(
            "UPDATE active_identity SET activeDid = NULL;
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master
                SET sql = replace(sql, 'activeDid TEXT', 'activeDid TEXT NOT NULL')
              WHERE name = 'active_identity';
             PRAGMA writable_schema = RESET;",
        )
        .unwrap_err();
        let Some(report) = err.report() else {
            panic!("{err}");
        };
        assert!(
            report.errors.iter().any(|e| e.contains("active_identity")),
            "{:?}",
            report.errors
        );
    }
}
