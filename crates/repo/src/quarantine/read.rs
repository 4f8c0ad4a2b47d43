//! The reads behind the quarantine: summaries (compared inside SQLite, so no key
//! material is loaded to list them), whole rows, and the decision log.

use std::path::PathBuf;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable};
use idstore_domain::Secret;
use idstore_schema::{accounts_quarantine, quarantine_decisions};

use super::{
    COMPARED_ACCOUNT_FIELDS, Decision, DecisionKind, QuarantinedAccount, QuarantinedDetail,
    QuarantinedItem, QuarantinedPointer,
};
use crate::error::{Error, ErrorKind};
use crate::sql::Lossless;
use crate::sql::queries::account_exists;
use idstore_domain::quarantine::{QuarantineKind, QuarantineRef};

#[derive(QueryableByName)]
struct AccountSummaryRow {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    did: Lossless,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    reason: Lossless,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    quarantined_at: NaiveDateTime,
    #[diesel(sql_type = Nullable<Integer>)]
    kept_id: Option<i32>,
    #[diesel(sql_type = Bool)]
    waiting: bool,
    #[diesel(sql_type = Nullable<Bool>)]
    d0: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    d1: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    d2: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    d3: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    d4: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    d5: Option<bool>,
}

impl AccountSummaryRow {
    fn into_item(self) -> QuarantinedItem {
        let flags = [self.d0, self.d1, self.d2, self.d3, self.d4, self.d5];
        QuarantinedItem {
            item: QuarantineRef {
                kind: QuarantineKind::Account,
                id: self.id,
            },
            value: self.did.0,
            reason: self.reason.0,
            quarantined_at: self.quarantined_at,
            waiting: self.waiting,
            kept_account_id: self.kept_id,
            differs_from_kept: COMPARED_ACCOUNT_FIELDS
                .iter()
                .zip(flags)
                .filter(|(_, differs)| *differs == Some(true))
                .map(|(name, _)| *name)
                .collect(),
            names_account: false,
        }
    }
}

/// The summary query of quarantined accounts: every comparison runs inside SQLite, so
/// no key material is read into memory to list them.
pub(super) fn account_summaries(
    conn: &mut SqliteConnection,
    only: Option<i32>,
) -> QueryResult<Vec<QuarantinedItem>> {
    let mut items = Vec::new();
    each_account_summary(conn, only, &mut |i| items.push(i))?;
    Ok(items)
}

/// [`account_summaries`], each handed to `visit` as it is read (memory flat however
/// many there are).
pub(super) fn each_account_summary(
    conn: &mut SqliteConnection,
    only: Option<i32>,
    visit: &mut dyn FnMut(QuarantinedItem),
) -> QueryResult<()> {
    let differs: Vec<String> = COMPARED_ACCOUNT_FIELDS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!("CASE WHEN a.id IS NULL THEN NULL ELSE q.\"{c}\" IS NOT a.\"{c}\" END AS d{i}")
        })
        .collect();
    let sql = format!(
        "SELECT q.id AS id, q.did AS did, q.reason AS reason, q.quarantinedAt AS quarantined_at,
                a.id AS kept_id, NOT ({kept_aside}) AS waiting, {differs}
           FROM accounts_quarantine AS q
           LEFT JOIN accounts AS a ON a.did = q.did
          WHERE ?1 IS NULL OR q.id = ?1
          ORDER BY q.id",
        // A file without the log (see `repair`) has no decisions yet: everything waits.
        kept_aside = if crate::sql::table_exists(conn, crate::migrations::steps::DECISION_LOG)? {
            KEPT_ASIDE_BY_DECISION
        } else {
            "0"
        },
        differs = differs.join(", ")
    );
    for row in diesel::sql_query(sql)
        .bind::<Nullable<Integer>, _>(only)
        .load_iter::<AccountSummaryRow, diesel::connection::DefaultLoadingMode>(conn)?
    {
        visit(row?.into_item());
    }
    Ok(())
}

/// True for the quarantined account `q` that a restore decision replaced and kept
/// aside: it is no longer waiting for a decision.
pub(super) const KEPT_ASIDE_BY_DECISION: &str = "EXISTS (SELECT 1 FROM quarantine_decisions AS d
         WHERE d.decision = 'restore' AND d.itemKind = 'account' AND d.keptAsideId = q.id)";

pub(super) fn pointer_summaries(
    conn: &mut SqliteConnection,
    only: Option<i32>,
) -> QueryResult<Vec<(QuarantinedPointer, QuarantinedItem)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        id: i32,
        #[diesel(sql_type = diesel::sql_types::Binary, column_name = activeDid)]
        active_did: Lossless,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        reason: Lossless,
        #[diesel(sql_type = diesel::sql_types::Timestamp, column_name = quarantinedAt)]
        quarantined_at: NaiveDateTime,
    }
    let rows = diesel::sql_query(
        "SELECT id, activeDid, reason, quarantinedAt FROM active_did_quarantine
          WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
    )
    .bind::<Nullable<Integer>, _>(only)
    .load::<Row>(conn)?;
    rows.into_iter()
        .map(|r| {
            let (id, active_did, reason, quarantined_at) =
                (r.id, r.active_did.0, r.reason.0, r.quarantined_at);
            let names_account = account_exists(conn, &active_did)?;
            let item = QuarantinedItem {
                item: QuarantineRef {
                    kind: QuarantineKind::Pointer,
                    id,
                },
                value: active_did.clone(),
                reason: reason.clone(),
                quarantined_at,
                waiting: true,
                kept_account_id: None,
                differs_from_kept: Vec::new(),
                names_account,
            };
            Ok((
                QuarantinedPointer {
                    id,
                    active_did,
                    reason,
                    quarantined_at,
                },
                item,
            ))
        })
        .collect()
}

type AccountRow = (
    i32,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i32,
    String,
    NaiveDateTime,
);

fn quarantined_account_row(
    conn: &mut SqliteConnection,
    id: i32,
) -> QueryResult<Option<QuarantinedAccount>> {
    let row: Option<AccountRow> = accounts_quarantine::table
        .find(id)
        .select((
            accounts_quarantine::id,
            accounts_quarantine::dateCreated,
            accounts_quarantine::derivationPath,
            accounts_quarantine::did,
            accounts_quarantine::identityEncrBase64,
            accounts_quarantine::mnemonicEncrBase64,
            accounts_quarantine::passkeyCredIdHex,
            accounts_quarantine::publicKeyHex,
            accounts_quarantine::keptAccountId,
            accounts_quarantine::reason,
            accounts_quarantine::quarantinedAt,
        ))
        .get_result(conn)
        .optional()?;
    Ok(row.map(
        |(
            id,
            date_created,
            derivation_path,
            did,
            identity,
            mnemonic,
            passkey,
            public_key_hex,
            kept,
            reason,
            at,
        )| {
            QuarantinedAccount {
                id,
                date_created,
                derivation_path,
                did,
                identity_encr_base64: identity.map(Secret::new),
                mnemonic_encr_base64: mnemonic.map(Secret::new),
                passkey_cred_id_hex: passkey,
                public_key_hex,
                kept_account_id: kept,
                reason,
                quarantined_at: at,
            }
        },
    ))
}

/// Refuses a decision on a file whose decision log is missing.
pub(super) fn require_log(conn: &mut SqliteConnection) -> Result<(), Error> {
    if crate::sql::table_exists(conn, crate::migrations::steps::DECISION_LOG)? {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NeedsRepair,
            "this file has no quarantine_decisions log to record the decision in; a repair re-creates it",
        ))
    }
}

pub(super) fn detail(
    conn: &mut SqliteConnection,
    item: QuarantineRef,
) -> Result<QuarantinedDetail, Error> {
    let not_found = || {
        Error::new(
            ErrorKind::NotQuarantined,
            format!("{item} is not in the quarantine (it may have been decided already)"),
        )
    };
    match item.kind {
        QuarantineKind::Account => {
            let row = quarantined_account_row(conn, item.id)?.ok_or_else(not_found)?;
            let summary = account_summaries(conn, Some(item.id))?
                .pop()
                .ok_or_else(not_found)?;
            Ok(QuarantinedDetail::Account { row, summary })
        }
        QuarantineKind::Pointer => {
            let (row, summary) = pointer_summaries(conn, Some(item.id))?
                .pop()
                .ok_or_else(not_found)?;
            Ok(QuarantinedDetail::Pointer { row, summary })
        }
    }
}

type DecisionRow = (
    i32,
    NaiveDateTime,
    String,
    String,
    i32,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
);

pub(super) fn decisions(
    conn: &mut SqliteConnection,
    only: Option<i32>,
) -> QueryResult<Vec<Decision>> {
    let mut query = quarantine_decisions::table
        .order(quarantine_decisions::id)
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(quarantine_decisions::id.eq(id));
    }
    let rows: Vec<DecisionRow> = query
        .select((
            quarantine_decisions::id,
            quarantine_decisions::decidedAt,
            quarantine_decisions::decision,
            quarantine_decisions::itemKind,
            quarantine_decisions::itemId,
            quarantine_decisions::subject,
            quarantine_decisions::keptAsideId,
            quarantine_decisions::previousActiveDid,
            quarantine_decisions::exportPath,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, decided_at, decision, kind, item_id, value, kept, previous, export)| {
                // The CHECK constraints allow nothing else; a foreign writer's row is skipped.
                let decision = DecisionKind::parse(&decision)?;
                let kind = match kind.as_str() {
                    "account" => QuarantineKind::Account,
                    "pointer" => QuarantineKind::Pointer,
                    _ => return None,
                };
                Some(Decision {
                    id,
                    decided_at,
                    decision,
                    item: QuarantineRef { kind, id: item_id },
                    value,
                    kept_aside: kept.map(|id| QuarantineRef {
                        kind: QuarantineKind::Account,
                        id,
                    }),
                    previous_active_did: previous,
                    export_path: export.map(PathBuf::from),
                })
            },
        )
        .collect())
}
