//! The checks behind `check`: every problem of a file, found one at a time.

use diesel::connection::DefaultLoadingMode;
use diesel::dsl::count_star;
use diesel::prelude::*;
use idstore_domain::Did;
use idstore_schema::{active_identity, settings};

use super::{HealthReport, Problem, ProblemKind, problem};
use crate::error::{Error, ErrorKind};
use crate::fs::DbFile;
use crate::sql;
use crate::sql::queries::dangling_pointer;
use idstore_domain::display::Shown;
use idstore_domain::quarantine::QuarantineKind;

/// At the transition step (the legacy column still there), the master row's
/// `settings.activeDid` and the pointer when they disagree (`''` and NULL agree).
pub(super) fn legacy_pointer_out_of_step(
    conn: &mut SqliteConnection,
) -> QueryResult<Option<(Option<String>, Option<String>)>> {
    #[derive(QueryableByName)]
    struct Pair {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
        legacy: Option<sql::Lossless>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
        pointer: Option<sql::Lossless>,
    }
    if !sql::columns(conn, "settings")?
        .iter()
        .any(|c| c == "activeDid")
    {
        return Ok(None);
    }
    let pair = diesel::sql_query(
        "SELECT s.activeDid AS legacy, p.activeDid AS pointer
           FROM settings AS s LEFT JOIN active_identity AS p ON p.id = 1
          WHERE s.id = 1 AND nullif(s.activeDid, '') IS NOT p.activeDid",
    )
    .get_result::<Pair>(conn)
    .optional()?;
    Ok(pair.map(|p| (p.legacy.map(|l| l.0), p.pointer.map(|l| l.0))))
}

/// The pointer guard's triggers that the file lacks: those of the steps it has
/// (a file migrated by an idstore from before they existed, or a tool that dropped
/// one).
pub(super) fn missing_guards(conn: &mut SqliteConnection) -> QueryResult<Vec<&'static str>> {
    let applied = crate::migrations::applied_versions(conn)?;
    let mut missing = Vec::new();
    let expected = crate::migrations::steps::guard_triggers()
        .filter(|(_, step)| applied.iter().any(|a| a == step))
        .map(|(name, _)| name);
    for name in expected {
        if !sql::object_exists(conn, "trigger", name)? {
            missing.push(name);
        }
    }
    Ok(missing)
}

/// Whether a UNIQUE index covers exactly `accounts(did)`.
pub(super) fn has_unique_did_index(conn: &mut SqliteConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM pragma_index_list('accounts') AS il
          WHERE il.\"unique\" = 1
            AND (SELECT group_concat(name) FROM pragma_index_info(il.name)) = 'did'",
    )
    .get_result::<N>(conn)
    .map(|r| r.n > 0)
}

/// Duplicate and invalid DIDs among the accounts (the same on a legacy file).
fn account_problems(conn: &mut SqliteConnection, emit: &mut dyn FnMut(Problem)) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Dup {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        did: sql::Lossless,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct IdDid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        did: sql::Lossless,
    }
    let dups = diesel::sql_query(
        "SELECT did, count(*) AS n FROM accounts GROUP BY did HAVING count(*) > 1",
    )
    .load_iter::<Dup, DefaultLoadingMode>(conn)?;
    for dup in dups {
        let Dup { did, n } = dup?;
        emit(problem(
            ProblemKind::DuplicateDid,
            format!("{n} accounts have DID {}", Shown(&did.0)),
        ));
    }
    let all = diesel::sql_query("SELECT id, did FROM accounts ORDER BY id")
        .load_iter::<IdDid, DefaultLoadingMode>(conn)?;
    for row in all {
        let IdDid { id, did } = row?;
        let did = did.0;
        if let Err(e) = Did::parse(&did) {
            emit(problem(
                ProblemKind::InvalidDid,
                format!("account {id} has DID {}: {e}", Shown::quoted(&did)),
            ));
        }
    }
    Ok(())
}

/// The health of any database: a migrated one (or one stopped at a pause point) gets
/// every check; one that still needs migrating gets `integrity_check`, a
/// [`ProblemKind::NeedsMigration`] problem, and what `migrate` will have to
/// quarantine (duplicate DIDs, a pointer naming no account). Reads only.
pub(crate) fn check(conn: &mut SqliteConnection, file: &DbFile) -> Result<HealthReport, Error> {
    let mut report = HealthReport::default();
    check_each(conn, file, |p| report.add(p))?;
    Ok(report)
}

/// [`check`], handing every problem to `visit` as it is found, however many there
/// are: memory stays flat as the file grows.
pub(crate) fn check_each(
    conn: &mut SqliteConnection,
    file: &DbFile,
    mut visit: impl FnMut(Problem),
) -> Result<(), Error> {
    crate::connection::transaction::read(conn, &file.path, |conn| {
        let st = crate::migrations::status(conn)?;
        st.refuse_unknown()?;
        for table in crate::store::undecodable::READ_TABLES {
            crate::store::undecodable::scan(conn, table, &mut |u| {
                visit(problem(
                    ProblemKind::InvalidStoredValue,
                    format!("{}: {}", u.place(), u.why),
                ))
            })?;
        }
        for leftover in crate::fs::leftovers::leftovers(file) {
            let shown = leftover.path.display().to_string();
            visit(match &leftover.untrusted {
                None => problem(
                    ProblemKind::LeftoverCopy,
                    format!(
                        "{} was left by an interrupted conversion and may hold the data unencrypted; a repair (or the next conversion) removes it",
                        Shown(&shown)
                    ),
                ),
                Some(why) => problem(
                    ProblemKind::UntrustedFile,
                    format!(
                        "{} is where a conversion's copy goes, but it is not idstore's ({}): nothing is written through it; a repair removes it unless it is another user's file",
                        Shown(&shown),
                        Shown(why)
                    ),
                ),
            });
        }
        for f in crate::migrations::foreign::foreign_objects(conn)? {
            visit(problem(
                ProblemKind::ForeignObject,
                format!(
                    "{} is not idstore's: migrate and rollback refuse to run while it would act on their writes; drop it if nothing needs it",
                    f.description
                ),
            ));
        }
        if st.servable() {
            find_problems(conn, &mut visit)
        } else {
            unmigrated_problems(conn, &st, &mut visit)
        }
    })
}

/// What [`check`] finds in a file that still needs migrating.
fn unmigrated_problems(
    conn: &mut SqliteConnection,
    st: &crate::migrations::MigrationStatus,
    emit: &mut dyn FnMut(Problem),
) -> Result<(), Error> {
    for d in sql::integrity_problems(conn)? {
        emit(problem(ProblemKind::Integrity, d));
    }
    emit(problem(
        ProblemKind::NeedsMigration,
        format!("pending migrations {}", st.pending.join(", ")),
    ));
    if sql::table_exists(conn, "accounts")? {
        tolerate(account_problems(conn, emit).map_err(Error::from))?;
        let dangling = match &st.active_did {
            Some(did) if !crate::sql::queries::account_exists(conn, did)? => Some(did),
            _ => None,
        };
        if let Some(did) = dangling {
            emit(problem(
                ProblemKind::DanglingPointer,
                format!(
                    "the active identity {} names no account; migrate will clear it and keep it in active_did_quarantine",
                    Shown::quoted(did)
                ),
            ));
        }
    }
    Ok(())
}

/// Every problem of a migrated file, handed to `emit` one at a time: nothing here
/// holds more than one row of a large table at once.
pub(super) fn find_problems(
    conn: &mut SqliteConnection,
    emit: &mut dyn FnMut(Problem),
) -> Result<(), Error> {
    for d in sql::integrity_problems(conn)? {
        emit(problem(ProblemKind::Integrity, d));
    }
    if has_unique_did_index(conn)? {
        // A dangling pointer is reported once, as such, not also as a foreign key row.
        for v in sql::foreign_key_violations(conn)? {
            if v.table != "active_identity" {
                emit(problem(ProblemKind::ForeignKey, v.to_string()));
            }
        }
    } else {
        // foreign_key_check itself fails ("foreign key mismatch") without the index.
        emit(problem(
            ProblemKind::MissingDidIndex,
            "no UNIQUE index on accounts(did): the active_identity foreign key cannot be checked or enforced".into(),
        ));
    }
    if let Some(value) = tolerate(dangling_pointer(conn).map_err(Error::from))? {
        emit(problem(
            ProblemKind::DanglingPointer,
            format!(
                "active_identity.activeDid {} names no account",
                Shown::quoted(&value)
            ),
        ));
    }
    let missing = missing_guards(conn)?;
    if !missing.is_empty() {
        emit(problem(
            ProblemKind::MissingPointerGuard,
            format!(
                "the pointer guard triggers {} are missing: a writer with foreign keys off could leave the active identity naming no account",
                missing.join(", ")
            ),
        ));
    }
    if let Some((legacy, pointer)) =
        tolerate(legacy_pointer_out_of_step(conn).map_err(Error::from))?
    {
        emit(problem(
            ProblemKind::LegacyPointerOutOfStep,
            format!(
                "settings.activeDid is {} but the active identity is {}: older app builds see another identity",
                shown_opt(legacy.as_deref()),
                shown_opt(pointer.as_deref())
            ),
        ));
    }
    for table in crate::migrations::missing_quarantine_tables(conn)? {
        emit(problem(
            ProblemKind::MissingQuarantineTable,
            format!(
                "idstore's table {table} is missing (another program dropped it): what it kept is gone, and nothing more can be kept there"
            ),
        ));
    }
    if !sql::table_exists(conn, crate::migrations::steps::DECISION_LOG)? {
        emit(problem(
            ProblemKind::MissingDecisionLog,
            "the quarantine_decisions log is missing: no quarantine decision can be recorded"
                .into(),
        ));
    }
    let pointer_rows: i64 = active_identity::table
        .select(count_star())
        .get_result(conn)?;
    if pointer_rows == 0 {
        emit(problem(
            ProblemKind::MissingPointerRow,
            "active_identity has no row".into(),
        ));
    }
    // Counted, not read: a master row whose values cannot be decoded still exists
    // (the scan above reports those values).
    let master_rows: i64 = settings::table
        .filter(settings::id.eq(1))
        .select(count_star())
        .get_result(conn)?;
    if master_rows == 0 {
        emit(problem(
            ProblemKind::MissingMasterRow,
            "settings has no master row (id = 1)".into(),
        ));
    }
    tolerate(account_problems(conn, emit).map_err(Error::from))?;
    tolerate(orphan_problems(conn, emit).map_err(Error::from))?;
    let extra = settings::table
        .filter(settings::id.ne(1))
        .filter(settings::accountDid.is_null())
        .select(settings::id)
        .order(settings::id)
        .load_iter::<i32, DefaultLoadingMode>(conn)?;
    for row in extra {
        let id = row?;
        emit(problem(
            ProblemKind::ExtraNullAccountRow,
            format!("settings row {id} has no accountDid and is not the master row"),
        ));
    }
    // Quarantined items wait for a person's decision (`quarantine restore/discard`);
    // an account a restore decision replaced and kept aside no longer waits.
    tolerate(crate::quarantine::each_item(conn, &mut |item| {
        if !item.waiting {
            return;
        }
        let kind = match item.item.kind {
            QuarantineKind::Account => ProblemKind::QuarantinedAccount,
            QuarantineKind::Pointer => ProblemKind::QuarantinedPointer,
        };
        let mut detail = format!(
            "{} ({}): {}",
            item.item,
            Shown(&item.value),
            Shown(&item.reason)
        );
        if !item.differs_from_kept.is_empty() {
            detail.push_str(&format!(
                "; differs from the kept account in {}",
                item.differs_from_kept.join(", ")
            ));
        }
        emit(Problem {
            kind,
            detail,
            item: Some(item.item),
        });
    }))?;
    Ok(())
}

/// Override rows naming no account.
fn orphan_problems(conn: &mut SqliteConnection, emit: &mut dyn FnMut(Problem)) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Orphan {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        did: sql::Lossless,
    }
    let orphans = diesel::sql_query(
        "SELECT s.id AS id, s.accountDid AS did FROM settings AS s
          WHERE s.id <> 1 AND s.accountDid IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = s.accountDid)
          ORDER BY s.id",
    )
    .load_iter::<Orphan, DefaultLoadingMode>(conn)?;
    for row in orphans {
        let Orphan { id, did } = row?;
        emit(problem(
            ProblemKind::OrphanOverride,
            format!(
                "settings row {id} overrides {} which is no account",
                Shown(&did.0)
            ),
        ));
    }
    Ok(())
}

/// A part of the check that could not read a value the scan of stored values has
/// already reported (as [`ProblemKind::InvalidStoredValue`]), or a table the check
/// reports missing: skipped, so the rest of the check still runs.
fn tolerate<T: Default>(result: Result<T, Error>) -> Result<T, Error> {
    match result {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidStoredValue | ErrorKind::NeedsRepair
            ) =>
        {
            Ok(T::default())
        }
        other => other,
    }
}

/// An optional value as text shows it: quoted and escaped, or `NULL`.
fn shown_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| Shown::quoted(v).to_string())
}

#[cfg(test)]
mod tests {
    use super::ProblemKind;

    #[test]
    fn kind_names_are_what_serde_writes() {
        // Every kind, from the list the enum is declared with: a new kind is
        // checked without being named here.
        for kind in ProblemKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!(ProblemKind::ALL.contains(&ProblemKind::QuarantinedPointer));
    }
}
