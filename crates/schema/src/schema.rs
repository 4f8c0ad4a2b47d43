// @generated automatically by Diesel CLI.

diesel::table! {
    accounts (id) {
        id -> Integer,
        dateCreated -> Text,
        derivationPath -> Nullable<Text>,
        did -> Text,
        identityEncrBase64 -> Nullable<Text>,
        mnemonicEncrBase64 -> Nullable<Text>,
        passkeyCredIdHex -> Nullable<Text>,
        publicKeyHex -> Text,
    }
}

diesel::table! {
    accounts_quarantine (id) {
        id -> Integer,
        dateCreated -> Text,
        derivationPath -> Nullable<Text>,
        did -> Text,
        identityEncrBase64 -> Nullable<Text>,
        mnemonicEncrBase64 -> Nullable<Text>,
        passkeyCredIdHex -> Nullable<Text>,
        publicKeyHex -> Text,
        keptAccountId -> Integer,
        reason -> Text,
        quarantinedAt -> Timestamp,
    }
}

diesel::table! {
    active_did_quarantine (id) {
        id -> Integer,
        activeDid -> Text,
        reason -> Text,
        quarantinedAt -> Timestamp,
    }
}

diesel::table! {
    active_identity (id) {
        id -> Integer,
        activeDid -> Nullable<Text>,
        lastUpdated -> Timestamp,
    }
}

diesel::table! {
    idstore_adopted_active_identity (id) {
        id -> Nullable<Binary>,
        activeDid -> Nullable<Binary>,
        lastUpdated -> Nullable<Binary>,
    }
}

diesel::table! {
    idstore_adoption (id) {
        id -> Integer,
        legacyActiveDid -> Nullable<Text>,
        pointerAfter -> Nullable<Text>,
    }
}

diesel::table! {
    idstore_original_schema (id) {
        id -> Integer,
        reason -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        name -> Text,
        tbl_name -> Text,
        sql -> Nullable<Text>,
        rowsSql -> Nullable<Text>,
    }
}

diesel::table! {
    quarantine_decisions (id) {
        id -> Integer,
        decidedAt -> Timestamp,
        decision -> Text,
        itemKind -> Text,
        itemId -> Integer,
        subject -> Text,
        keptAsideId -> Nullable<Integer>,
        previousActiveDid -> Nullable<Text>,
        exportPath -> Nullable<Text>,
    }
}

diesel::table! {
    settings (id) {
        id -> Integer,
        accountDid -> Nullable<Text>,
        apiServer -> Nullable<Text>,
        filterFeedByNearby -> Nullable<Bool>,
        filterFeedByVisible -> Nullable<Bool>,
        finishedOnboarding -> Nullable<Bool>,
        firstName -> Nullable<Text>,
        hideRegisterPromptOnNewContact -> Nullable<Bool>,
        isRegistered -> Nullable<Bool>,
        lastName -> Nullable<Text>,
        lastAckedOfferToUserJwtId -> Nullable<Text>,
        lastAckedOfferToUserProjectsJwtId -> Nullable<Text>,
        lastNotifiedClaimId -> Nullable<Text>,
        lastViewedClaimId -> Nullable<Text>,
        notifyingNewActivityTime -> Nullable<Text>,
        notifyingReminderMessage -> Nullable<Text>,
        notifyingReminderTime -> Nullable<Text>,
        partnerApiServer -> Nullable<Text>,
        passkeyExpirationMinutes -> Nullable<Integer>,
        profileImageUrl -> Nullable<Text>,
        searchBoxes -> Nullable<Text>,
        showContactGivesInline -> Nullable<Bool>,
        showGeneralAdvanced -> Nullable<Bool>,
        showShortcutBvc -> Nullable<Bool>,
        vapid -> Nullable<Text>,
        warnIfProdServer -> Nullable<Bool>,
        warnIfTestServer -> Nullable<Bool>,
        webPushServer -> Nullable<Text>,
        hasBackedUpSeed -> Nullable<Bool>,
    }
}

diesel::table! {
    settings_active_did_archive (settingsId) {
        settingsId -> Integer,
        activeDid -> Text,
        pointerWhenArchived -> Nullable<Text>,
        archivedAt -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    accounts_quarantine,
    active_did_quarantine,
    active_identity,
    idstore_adopted_active_identity,
    idstore_adoption,
    idstore_original_schema,
    quarantine_decisions,
    settings,
    settings_active_did_archive,
);
