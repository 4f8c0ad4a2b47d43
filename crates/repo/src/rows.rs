//! Diesel row types for the settings table and their conversion to domain types.
//! Field lists follow the generated schema's column order.

use diesel::prelude::*;
use idstore_domain::settings::{parse_search_boxes, search_boxes_json};
use idstore_domain::{Change, Settings, SettingsChange, SettingsError};
use idstore_schema::settings;

/// Every `settings` column, in the generated schema's order (the order of
/// [`SettingsRow`]'s fields).
pub(crate) const SETTINGS_COLUMNS: [&str; 29] = [
    "id",
    "accountDid",
    "apiServer",
    "filterFeedByNearby",
    "filterFeedByVisible",
    "finishedOnboarding",
    "firstName",
    "hideRegisterPromptOnNewContact",
    "isRegistered",
    "lastName",
    "lastAckedOfferToUserJwtId",
    "lastAckedOfferToUserProjectsJwtId",
    "lastNotifiedClaimId",
    "lastViewedClaimId",
    "notifyingNewActivityTime",
    "notifyingReminderMessage",
    "notifyingReminderTime",
    "partnerApiServer",
    "passkeyExpirationMinutes",
    "profileImageUrl",
    "searchBoxes",
    "showContactGivesInline",
    "showGeneralAdvanced",
    "showShortcutBvc",
    "vapid",
    "warnIfProdServer",
    "warnIfTestServer",
    "webPushServer",
    "hasBackedUpSeed",
];

/// A `settings` row as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = settings, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SettingsRow {
    // `id` and `accountDid` are read so the row matches `settings::all_columns`,
    // which the override half of `account_settings` selects positionally.
    #[allow(dead_code)]
    pub id: i32,
    #[allow(dead_code)]
    #[diesel(column_name = accountDid)]
    pub account_did: Option<String>,
    #[diesel(column_name = apiServer)]
    pub api_server: Option<String>,
    #[diesel(column_name = filterFeedByNearby)]
    pub filter_feed_by_nearby: Option<bool>,
    #[diesel(column_name = filterFeedByVisible)]
    pub filter_feed_by_visible: Option<bool>,
    #[diesel(column_name = finishedOnboarding)]
    pub finished_onboarding: Option<bool>,
    #[diesel(column_name = firstName)]
    pub first_name: Option<String>,
    #[diesel(column_name = hideRegisterPromptOnNewContact)]
    pub hide_register_prompt_on_new_contact: Option<bool>,
    #[diesel(column_name = isRegistered)]
    pub is_registered: Option<bool>,
    #[diesel(column_name = lastName)]
    pub last_name: Option<String>,
    #[diesel(column_name = lastAckedOfferToUserJwtId)]
    pub last_acked_offer_to_user_jwt_id: Option<String>,
    #[diesel(column_name = lastAckedOfferToUserProjectsJwtId)]
    pub last_acked_offer_to_user_projects_jwt_id: Option<String>,
    #[diesel(column_name = lastNotifiedClaimId)]
    pub last_notified_claim_id: Option<String>,
    #[diesel(column_name = lastViewedClaimId)]
    pub last_viewed_claim_id: Option<String>,
    #[diesel(column_name = notifyingNewActivityTime)]
    pub notifying_new_activity_time: Option<String>,
    #[diesel(column_name = notifyingReminderMessage)]
    pub notifying_reminder_message: Option<String>,
    #[diesel(column_name = notifyingReminderTime)]
    pub notifying_reminder_time: Option<String>,
    #[diesel(column_name = partnerApiServer)]
    pub partner_api_server: Option<String>,
    #[diesel(column_name = passkeyExpirationMinutes)]
    pub passkey_expiration_minutes: Option<i32>,
    #[diesel(column_name = profileImageUrl)]
    pub profile_image_url: Option<String>,
    #[diesel(column_name = searchBoxes)]
    pub search_boxes: Option<String>,
    #[diesel(column_name = showContactGivesInline)]
    pub show_contact_gives_inline: Option<bool>,
    #[diesel(column_name = showGeneralAdvanced)]
    pub show_general_advanced: Option<bool>,
    #[diesel(column_name = showShortcutBvc)]
    pub show_shortcut_bvc: Option<bool>,
    #[diesel(column_name = vapid)]
    pub vapid: Option<String>,
    #[diesel(column_name = warnIfProdServer)]
    pub warn_if_prod_server: Option<bool>,
    #[diesel(column_name = warnIfTestServer)]
    pub warn_if_test_server: Option<bool>,
    #[diesel(column_name = webPushServer)]
    pub web_push_server: Option<String>,
    #[diesel(column_name = hasBackedUpSeed)]
    pub has_backed_up_seed: Option<bool>,
}

impl SettingsRow {
    /// The typed settings of this row (`searchBoxes` parsed from its JSON).
    pub fn into_settings(self) -> Result<Settings, SettingsError> {
        Ok(Settings {
            api_server: self.api_server,
            filter_feed_by_nearby: self.filter_feed_by_nearby,
            filter_feed_by_visible: self.filter_feed_by_visible,
            finished_onboarding: self.finished_onboarding,
            first_name: self.first_name,
            hide_register_prompt_on_new_contact: self.hide_register_prompt_on_new_contact,
            is_registered: self.is_registered,
            last_name: self.last_name,
            last_acked_offer_to_user_jwt_id: self.last_acked_offer_to_user_jwt_id,
            last_acked_offer_to_user_projects_jwt_id: self.last_acked_offer_to_user_projects_jwt_id,
            last_notified_claim_id: self.last_notified_claim_id,
            last_viewed_claim_id: self.last_viewed_claim_id,
            notifying_new_activity_time: self.notifying_new_activity_time,
            notifying_reminder_message: self.notifying_reminder_message,
            notifying_reminder_time: self.notifying_reminder_time,
            partner_api_server: self.partner_api_server,
            passkey_expiration_minutes: self.passkey_expiration_minutes,
            profile_image_url: self.profile_image_url,
            search_boxes: self
                .search_boxes
                .as_deref()
                .map(parse_search_boxes)
                .transpose()?,
            show_contact_gives_inline: self.show_contact_gives_inline,
            show_general_advanced: self.show_general_advanced,
            show_shortcut_bvc: self.show_shortcut_bvc,
            vapid: self.vapid,
            warn_if_prod_server: self.warn_if_prod_server,
            warn_if_test_server: self.warn_if_test_server,
            web_push_server: self.web_push_server,
            has_backed_up_seed: self.has_backed_up_seed,
        })
    }
}

/// An update of the settings columns: `None` leaves a column, `Some(None)` stores NULL.
/// `id` and `accountDid` are not here, so no change can move a row.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = settings)]
pub(crate) struct SettingsChangeset {
    #[diesel(column_name = apiServer)]
    api_server: Option<Option<String>>,
    #[diesel(column_name = filterFeedByNearby)]
    filter_feed_by_nearby: Option<Option<bool>>,
    #[diesel(column_name = filterFeedByVisible)]
    filter_feed_by_visible: Option<Option<bool>>,
    #[diesel(column_name = finishedOnboarding)]
    finished_onboarding: Option<Option<bool>>,
    #[diesel(column_name = firstName)]
    first_name: Option<Option<String>>,
    #[diesel(column_name = hideRegisterPromptOnNewContact)]
    hide_register_prompt_on_new_contact: Option<Option<bool>>,
    #[diesel(column_name = isRegistered)]
    is_registered: Option<Option<bool>>,
    #[diesel(column_name = lastName)]
    last_name: Option<Option<String>>,
    #[diesel(column_name = lastAckedOfferToUserJwtId)]
    last_acked_offer_to_user_jwt_id: Option<Option<String>>,
    #[diesel(column_name = lastAckedOfferToUserProjectsJwtId)]
    last_acked_offer_to_user_projects_jwt_id: Option<Option<String>>,
    #[diesel(column_name = lastNotifiedClaimId)]
    last_notified_claim_id: Option<Option<String>>,
    #[diesel(column_name = lastViewedClaimId)]
    last_viewed_claim_id: Option<Option<String>>,
    #[diesel(column_name = notifyingNewActivityTime)]
    notifying_new_activity_time: Option<Option<String>>,
    #[diesel(column_name = notifyingReminderMessage)]
    notifying_reminder_message: Option<Option<String>>,
    #[diesel(column_name = notifyingReminderTime)]
    notifying_reminder_time: Option<Option<String>>,
    #[diesel(column_name = partnerApiServer)]
    partner_api_server: Option<Option<String>>,
    #[diesel(column_name = passkeyExpirationMinutes)]
    passkey_expiration_minutes: Option<Option<i32>>,
    #[diesel(column_name = profileImageUrl)]
    profile_image_url: Option<Option<String>>,
    #[diesel(column_name = searchBoxes)]
    search_boxes: Option<Option<String>>,
    #[diesel(column_name = showContactGivesInline)]
    show_contact_gives_inline: Option<Option<bool>>,
    #[diesel(column_name = showGeneralAdvanced)]
    show_general_advanced: Option<Option<bool>>,
    #[diesel(column_name = showShortcutBvc)]
    show_shortcut_bvc: Option<Option<bool>>,
    #[diesel(column_name = vapid)]
    vapid: Option<Option<String>>,
    #[diesel(column_name = warnIfProdServer)]
    warn_if_prod_server: Option<Option<bool>>,
    #[diesel(column_name = warnIfTestServer)]
    warn_if_test_server: Option<Option<bool>>,
    #[diesel(column_name = webPushServer)]
    web_push_server: Option<Option<String>>,
    #[diesel(column_name = hasBackedUpSeed)]
    has_backed_up_seed: Option<Option<bool>>,
}

fn change<T, U>(c: &Change<T>, f: impl Fn(&T) -> U) -> Option<Option<U>> {
    match c {
        Change::Keep => None,
        Change::Set(v) => Some(Some(f(v))),
        Change::Clear => Some(None),
    }
}

impl SettingsChangeset {
    /// The column updates of `c` (its active identity part is not a column).
    pub fn from_change(c: &SettingsChange) -> Self {
        SettingsChangeset {
            api_server: change(&c.api_server, Clone::clone),
            filter_feed_by_nearby: change(&c.filter_feed_by_nearby, Clone::clone),
            filter_feed_by_visible: change(&c.filter_feed_by_visible, Clone::clone),
            finished_onboarding: change(&c.finished_onboarding, Clone::clone),
            first_name: change(&c.first_name, Clone::clone),
            hide_register_prompt_on_new_contact: change(
                &c.hide_register_prompt_on_new_contact,
                Clone::clone,
            ),
            is_registered: change(&c.is_registered, Clone::clone),
            last_name: change(&c.last_name, Clone::clone),
            last_acked_offer_to_user_jwt_id: change(
                &c.last_acked_offer_to_user_jwt_id,
                Clone::clone,
            ),
            last_acked_offer_to_user_projects_jwt_id: change(
                &c.last_acked_offer_to_user_projects_jwt_id,
                Clone::clone,
            ),
            last_notified_claim_id: change(&c.last_notified_claim_id, Clone::clone),
            last_viewed_claim_id: change(&c.last_viewed_claim_id, Clone::clone),
            notifying_new_activity_time: change(&c.notifying_new_activity_time, Clone::clone),
            notifying_reminder_message: change(&c.notifying_reminder_message, Clone::clone),
            notifying_reminder_time: change(&c.notifying_reminder_time, Clone::clone),
            partner_api_server: change(&c.partner_api_server, Clone::clone),
            passkey_expiration_minutes: change(&c.passkey_expiration_minutes, Clone::clone),
            profile_image_url: change(&c.profile_image_url, Clone::clone),
            search_boxes: change(&c.search_boxes, |v| search_boxes_json(v)),
            show_contact_gives_inline: change(&c.show_contact_gives_inline, Clone::clone),
            show_general_advanced: change(&c.show_general_advanced, Clone::clone),
            show_shortcut_bvc: change(&c.show_shortcut_bvc, Clone::clone),
            vapid: change(&c.vapid, Clone::clone),
            warn_if_prod_server: change(&c.warn_if_prod_server, Clone::clone),
            warn_if_test_server: change(&c.warn_if_test_server, Clone::clone),
            web_push_server: change(&c.web_push_server, Clone::clone),
            has_backed_up_seed: change(&c.has_backed_up_seed, Clone::clone),
        }
    }

    /// True when no column changes (Diesel refuses an empty `SET`).
    pub fn is_noop(&self) -> bool {
        self.api_server.is_none()
            && self.filter_feed_by_nearby.is_none()
            && self.filter_feed_by_visible.is_none()
            && self.finished_onboarding.is_none()
            && self.first_name.is_none()
            && self.hide_register_prompt_on_new_contact.is_none()
            && self.is_registered.is_none()
            && self.last_name.is_none()
            && self.last_acked_offer_to_user_jwt_id.is_none()
            && self.last_acked_offer_to_user_projects_jwt_id.is_none()
            && self.last_notified_claim_id.is_none()
            && self.last_viewed_claim_id.is_none()
            && self.notifying_new_activity_time.is_none()
            && self.notifying_reminder_message.is_none()
            && self.notifying_reminder_time.is_none()
            && self.partner_api_server.is_none()
            && self.passkey_expiration_minutes.is_none()
            && self.profile_image_url.is_none()
            && self.search_boxes.is_none()
            && self.show_contact_gives_inline.is_none()
            && self.show_general_advanced.is_none()
            && self.show_shortcut_bvc.is_none()
            && self.vapid.is_none()
            && self.warn_if_prod_server.is_none()
            && self.warn_if_test_server.is_none()
            && self.web_push_server.is_none()
            && self.has_backed_up_seed.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_columns_follow_the_migrated_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::open(&dir.path().join("t.sqlite")).unwrap();
        crate::migrate(&mut conn, crate::MigrateOptions::default()).unwrap();
        assert_eq!(
            crate::sql::columns(&mut conn, "settings").unwrap(),
            SETTINGS_COLUMNS
        );
    }
}
