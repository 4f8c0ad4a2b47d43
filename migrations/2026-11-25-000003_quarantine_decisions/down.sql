-- Reverting drops the decision log. A restore decision whose replaced account still
-- waits in accounts_quarantine would be silently undone by a later migrate (the
-- active-identity migration keeps the lowest id of a DID again), so the revert is
-- refused while one exists. `idstore rollback --forget-decisions` removes those log
-- rows first, on purpose. Discards stay done either way: the rows are gone (exported
-- or forgotten by an explicit choice), and rolling back does not bring them back.
CREATE TEMP TABLE idstore_decisions_revert_guard (
    restores INTEGER NOT NULL,
    CONSTRAINT refusing_to_forget_restore_decisions_that_a_later_migrate_would_undo CHECK (restores = 0)
);

INSERT INTO idstore_decisions_revert_guard (restores)
SELECT count(*) FROM quarantine_decisions AS d
 WHERE d.decision = 'restore' AND d.itemKind = 'account'
   AND EXISTS (SELECT 1 FROM accounts_quarantine AS q WHERE q.id = d.keptAsideId);

DROP TABLE temp.idstore_decisions_revert_guard;

DROP TABLE quarantine_decisions;
