-- Baseline: the legacy app's `accounts` and `settings` tables, exactly as the app
-- creates them (see LEGACY_SCHEMA.md). Harmless on a file that already has them:
-- every statement is IF NOT EXISTS / OR IGNORE, so adopting a legacy file changes
-- nothing but a missing master settings row.
--
-- `NOT NULL` on the INTEGER PRIMARY KEY columns only states what SQLite already
-- enforces for a rowid alias, so `diesel print-schema` does not emit `Nullable<Integer>`.

CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    dateCreated TEXT NOT NULL,
    derivationPath TEXT,
    did TEXT NOT NULL,
    identityEncrBase64 TEXT,
    mnemonicEncrBase64 TEXT,
    passkeyCredIdHex TEXT,
    publicKeyHex TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_accounts_did ON accounts(did);

CREATE TABLE IF NOT EXISTS settings (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    accountDid TEXT,
    activeDid TEXT,
    apiServer TEXT,
    filterFeedByNearby BOOLEAN,
    filterFeedByVisible BOOLEAN,
    finishedOnboarding BOOLEAN,
    firstName TEXT,
    hideRegisterPromptOnNewContact BOOLEAN,
    isRegistered BOOLEAN,
    lastName TEXT,
    lastAckedOfferToUserJwtId TEXT,
    lastAckedOfferToUserProjectsJwtId TEXT,
    lastNotifiedClaimId TEXT,
    lastViewedClaimId TEXT,
    notifyingNewActivityTime TEXT,
    notifyingReminderMessage TEXT,
    notifyingReminderTime TEXT,
    partnerApiServer TEXT,
    passkeyExpirationMinutes INTEGER,
    profileImageUrl TEXT,
    searchBoxes TEXT,
    showContactGivesInline BOOLEAN,
    showGeneralAdvanced BOOLEAN,
    showShortcutBvc BOOLEAN,
    vapid TEXT,
    warnIfProdServer BOOLEAN,
    warnIfTestServer BOOLEAN,
    webPushServer TEXT,
    hasBackedUpSeed BOOLEAN DEFAULT FALSE
);

CREATE INDEX IF NOT EXISTS idx_settings_accountDid ON settings(accountDid);

-- The master row (the app's MASTER_SETTINGS_KEY "1"), seeded as the app seeds it.
INSERT OR IGNORE INTO settings (id, apiServer) VALUES (1, 'https://api.endorser.ch');
