//! Objects of the active-identity migration that `repair` can put back: the pointer
//! guard (the triggers that keep `active_identity.activeDid` naming an account for
//! every writer, foreign keys on or off) and the `quarantine_decisions` log. `check`
//! reports any that is missing (a file migrated by an idstore from before they
//! existed, or a tool that dropped one) and `repair` re-creates it from the very SQL
//! the migration runs, so there is one definition.

use crate::migrations::Version;

/// The guard's triggers a file at the steps `applied` must have.
pub(crate) fn guard_triggers(applied: &[Version]) -> impl Iterator<Item = &'static str> + '_ {
    crate::migrations::steps::guard_triggers()
        .filter(|(_, step)| applied.iter().any(|a| a == step))
        .map(|(name, _)| name)
}

/// The table of recorded quarantine decisions.
pub(crate) const DECISION_LOG: &str = "quarantine_decisions";

/// The `CREATE TRIGGER` statement of one guard trigger, as the migration has it
/// (and `sqlite_master` keeps it).
pub(crate) fn create_sql(name: &str) -> &'static str {
    definition(name)
}

/// The `CREATE TABLE quarantine_decisions` statement, as the migration has it.
pub(crate) fn create_decision_log_sql() -> &'static str {
    definition(DECISION_LOG)
}

fn definition(name: &str) -> &'static str {
    crate::migrations::steps::object(name)
        .map(|o| o.sql.as_str())
        .unwrap_or_else(|| panic!("one of idstore's steps creates {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guard_trigger_is_named_by_the_migration() {
        for (name, step) in crate::migrations::steps::guard_triggers() {
            let sql = create_sql(name);
            assert!(sql.starts_with(&format!("CREATE TRIGGER {name}\n")));
            assert!(sql.ends_with("\nEND"));
            assert_eq!(sql.matches("CREATE TRIGGER").count(), 1, "{sql}");
            let made_by = crate::migrations::steps::created()
                .iter()
                .find(|(_, objects)| objects.iter().any(|o| o.name == name))
                .map(|(v, _)| *v);
            assert_eq!(made_by, Some(step), "{name}");
        }
        let log = create_decision_log_sql();
        assert!(log.starts_with("CREATE TABLE quarantine_decisions ("));
        assert!(log.ends_with("exportPath TEXT\n)"), "{log}");
    }
}
