//! Code the file carries that idstore did not write: triggers and views of other
//! programs (or idstore's own, changed), and foreign keys of other tables that act
//! when a parent row goes. A migration or rollback runs only with them proven
//! harmless: none may fire on the writes the run makes, else the run refuses,
//! naming them, before anything is written.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::steps::idstore_definition;
use crate::sql::from_file::{Event, trigger_event};
use crate::sql::{SchemaObject, schema_objects as objects};

/// One write a run makes to a table that already holds the file's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Write {
    pub table: &'static str,
    pub event: Event,
    /// For an update, the columns it sets.
    pub columns: &'static [&'static str],
}

impl Write {
    pub const fn insert(table: &'static str) -> Write {
        Write {
            table,
            event: Event::Insert,
            columns: &[],
        }
    }

    pub const fn delete(table: &'static str) -> Write {
        Write {
            table,
            event: Event::Delete,
            columns: &[],
        }
    }

    pub const fn update(table: &'static str, columns: &'static [&'static str]) -> Write {
        Write {
            table,
            event: Event::Update,
            columns,
        }
    }
}

/// Something of the file's that is code idstore did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Foreign {
    /// Its name in the schema (the table's, for a foreign key).
    pub name: String,
    /// As a person reads it: `trigger "evil" AFTER DELETE ON accounts`.
    pub description: String,
    /// What fires it: a trigger's table and event (`None`: it fires on any write of
    /// the table it names, for all that can be read of it), a foreign key's parent
    /// table and its action on delete; a view fires on nothing.
    fires: Fires,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fires {
    Trigger {
        table: String,
        event: Option<(Event, Vec<String>)>,
    },
    ParentDelete {
        parent: String,
    },
    Nothing,
}

impl Foreign {
    /// Whether it would act on `write`.
    pub(super) fn fires_on(&self, write: &Write) -> bool {
        match &self.fires {
            Fires::Trigger { table, event } => {
                table.eq_ignore_ascii_case(write.table)
                    && match event {
                        None => true,
                        Some((event, columns)) => {
                            *event == write.event
                                && (columns.is_empty()
                                    || write.columns.is_empty()
                                    || columns.iter().any(|c| {
                                        write.columns.iter().any(|w| c.eq_ignore_ascii_case(w))
                                    }))
                        }
                    }
            }
            Fires::ParentDelete { parent } => {
                write.event == Event::Delete && parent.eq_ignore_ascii_case(write.table)
            }
            Fires::Nothing => false,
        }
    }
}

/// Tables whose rows and definitions are idstore's (their foreign keys are its own).
const IDSTORE_TABLES: &[&str] = &[
    "__diesel_schema_migrations",
    "accounts_quarantine",
    "active_identity",
    "active_did_quarantine",
    "quarantine_decisions",
    "idstore_original_schema",
    "settings_active_did_archive",
    "idstore_adopted_active_identity",
    "idstore_adoption",
];

/// Every trigger and view of the file that is not idstore's own as idstore wrote it,
/// and every foreign key of another program's table that acts when a parent row
/// is deleted (`CASCADE`, `SET NULL`, `SET DEFAULT`).
pub(crate) fn foreign_objects(conn: &mut SqliteConnection) -> QueryResult<Vec<Foreign>> {
    let present: BTreeMap<String, SchemaObject> = objects(conn)?;
    let mut found = Vec::new();
    for o in present.values() {
        let sql = o.sql.as_deref().unwrap_or_default();
        let quoted = idstore_domain::display::Shown::quoted(&o.name);
        match o.kind.as_str() {
            "trigger" if idstore_definition(&o.name).is_none_or(|ours| !same_text(ours, sql)) => {
                let event = trigger_event(sql);
                let what = match &event {
                    Some(e) => format!(
                        "{}{} ON {}",
                        format!("{:?}", e.event).to_uppercase(),
                        if e.columns.is_empty() {
                            String::new()
                        } else {
                            format!(" OF {}", e.columns.join(", "))
                        },
                        e.table
                    ),
                    None => format!("ON {}", o.tbl_name),
                };
                found.push(Foreign {
                    name: o.name.clone(),
                    description: format!("trigger {quoted} ({what})"),
                    fires: Fires::Trigger {
                        table: event
                            .as_ref()
                            .map_or_else(|| o.tbl_name.clone(), |e| e.table.clone()),
                        event: event.map(|e| (e.event, e.columns)),
                    },
                });
            }
            "view" if idstore_definition(&o.name).is_none() => found.push(Foreign {
                name: o.name.clone(),
                description: format!("view {quoted}"),
                fires: Fires::Nothing,
            }),
            "table" if !IDSTORE_TABLES.contains(&o.name.as_str()) => {
                for (parent, action) in deleting_foreign_keys(conn, &o.name)? {
                    found.push(Foreign {
                        name: o.name.clone(),
                        description: format!(
                            "the foreign key of table {quoted} on {parent} (ON DELETE {action})"
                        ),
                        fires: Fires::ParentDelete { parent },
                    });
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Whether two definitions say the same, spaces aside.
fn same_text(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The foreign keys of `table` that change or delete its rows when a parent row is
/// deleted: each parent table with its action.
fn deleting_foreign_keys(
    conn: &mut SqliteConnection,
    table: &str,
) -> QueryResult<Vec<(String, String)>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        parent: String,
        #[diesel(sql_type = Text)]
        on_delete: String,
    }
    Ok(diesel::sql_query(
        "SELECT DISTINCT \"table\" AS parent, on_delete FROM pragma_foreign_key_list(?)
          WHERE on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT')",
    )
    .bind::<Text, _>(table)
    .load::<Key>(conn)?
    .into_iter()
    .map(|k| (k.parent, k.on_delete))
    .collect())
}

/// Those of `found` that would act on one of `writes`.
pub(super) fn acting_on(found: &[Foreign], writes: &[Write]) -> Vec<String> {
    found
        .iter()
        .filter(|f| writes.iter().any(|w| f.fires_on(w)))
        .map(|f| f.description.clone())
        .collect()
}

/// The refusal of an `operation` (`migration`, `rollback`) that `objects` would act
/// inside.
pub(super) fn refusal(operation: &str, objects: &[String]) -> crate::error::Error {
    let (an, them) = if objects.len() == 1 {
        ("an object", "it")
    } else {
        ("objects", "them")
    };
    crate::error::Error::new(
        crate::error::ErrorKind::ForeignObjects,
        format!(
            "the file carries {an} that would run inside this {operation}: {}; idstore runs no program's code but its own, so nothing was changed: make a copy, drop {them} (the app does not create such objects), and retry",
            objects.join("; ")
        ),
    )
}
