-- Quarantine decisions: a log of what a person decided about each value idstore kept
-- aside (an account row in accounts_quarantine, a pointer value in
-- active_did_quarantine). Rows are only ever appended; no secret is ever written here.
CREATE TABLE quarantine_decisions (
    id INTEGER NOT NULL PRIMARY KEY,
    decidedAt TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- restore: the item became the account for its DID (or the active identity);
    -- discard_export / discard_forget: the item was deleted, with or without an export.
    decision TEXT NOT NULL CHECK (decision IN ('restore', 'discard_export', 'discard_forget')),
    itemKind TEXT NOT NULL CHECK (itemKind IN ('account', 'pointer')),
    itemId INTEGER NOT NULL,
    -- The item's DID (an account) or value (a pointer).
    subject TEXT NOT NULL,
    -- A restored account: the id of the account it replaced, now in accounts_quarantine.
    keptAsideId INTEGER,
    -- A restored pointer: the active identity it replaced.
    previousActiveDid TEXT,
    -- discard_export: where the row was written.
    exportPath TEXT
);
