//! Settings: the master row, per-identity override rows, and the merge rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::did::{Did, DidError};

/// The API server the app seeds the master row with.
pub const DEFAULT_API_SERVER: &str = "https://api.endorser.ch";

/// Longest text accepted for one setting, in bytes (the app's values are short URLs,
/// names, JWT ids and small JSON; anything this big is a mistake).
pub const MAX_SETTING_LEN: usize = 64 * 1024;

/// One saved map area of the feed filter (an element of `searchBoxes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchBox {
    /// The name the user gave it.
    pub name: String,
    /// Its bounds.
    pub bbox: BoundingBox,
}

/// Geographic bounds of a [`SearchBox`], in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundingBox {
    /// Eastern longitude.
    pub east_long: f64,
    /// Northern latitude.
    pub max_lat: f64,
    /// Southern latitude.
    pub min_lat: f64,
    /// Western longitude.
    pub west_long: f64,
}

/// A partial update of one field: leave it, set it, or clear it to NULL.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Change<T> {
    /// Leave the field as it is.
    #[default]
    Keep,
    /// Store this value.
    Set(T),
    /// Store NULL (for an override row: fall through to the master value).
    Clear,
}

impl<T> Change<T> {
    /// True when this change leaves the field alone.
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// Applies the change to a stored optional value.
    pub fn apply_to(&self, value: &mut Option<T>)
    where
        T: Clone,
    {
        match self {
            Change::Keep => {}
            Change::Set(v) => *value = Some(v.clone()),
            Change::Clear => *value = None,
        }
    }
}

/// Why a setting or its value was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// No setting has this name.
    #[error("unknown setting `{name}`; valid settings are: {}", SettingsField::names().join(", "))]
    UnknownField {
        /// The name given.
        name: String,
    },
    /// The value does not parse as the setting's type.
    #[error("`{field}` takes {expected}; got {got:?}")]
    InvalidValue {
        /// The setting.
        field: SettingsField,
        /// What it takes.
        expected: &'static str,
        /// What was given (shortened when long).
        got: String,
    },
    /// The value is longer than [`MAX_SETTING_LEN`].
    #[error("`{field}` is at most {max} bytes; got {len}")]
    TooLong {
        /// The setting.
        field: SettingsField,
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value cannot be stored and read back as it is.
    #[error("`{field}` cannot be stored: {reason}")]
    Unstorable {
        /// The setting.
        field: SettingsField,
        /// Why.
        reason: String,
    },
    /// The active identity in a settings change is not a valid DID.
    #[error("activeDid: {0}")]
    ActiveDid(DidError),
    /// A settings change given as JSON is not an object of settings.
    #[error("a settings change is a JSON object of settings by their legacy names; got {got}")]
    NotAnObject {
        /// What was given (shortened when long).
        got: String,
    },
    /// `searchBoxes` as stored is not the JSON the app writes.
    #[error("stored searchBoxes is not a JSON list of search boxes: {0}")]
    StoredSearchBoxes(String),
    /// A DID in a change (the active identity) is not valid.
    #[error(transparent)]
    Did(#[from] DidError),
}

/// A type a setting can hold, with how it is written on a command line.
pub trait SettingValue: Sized + Clone {
    /// What the value looks like, for error messages.
    const EXPECTED: &'static str;
    /// Parses the command-line form.
    fn parse_value(s: &str) -> Option<Self>;
    /// The value as JSON, as the app would show it.
    fn to_json(&self) -> serde_json::Value;
    /// The value from JSON, as a service receives it (`None`: not this type).
    fn from_json(value: &serde_json::Value) -> Option<Self>;
    /// Bytes the value takes when stored (checked against [`MAX_SETTING_LEN`]).
    fn stored_len(&self) -> usize {
        0
    }
    /// Why the value cannot be stored and read back as it is, if it cannot.
    fn unstorable(&self) -> Option<String> {
        None
    }
}

impl SettingValue for String {
    const EXPECTED: &'static str = "text";
    fn parse_value(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.clone())
    }
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
    fn stored_len(&self) -> usize {
        self.len()
    }
}

impl SettingValue for bool {
    const EXPECTED: &'static str = "a boolean (true/false, 1/0)";
    fn parse_value(s: &str) -> Option<Self> {
        match s {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Bool(*self)
    }
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        // The app stores booleans as 0/1; either form is taken.
        match value {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        }
    }
}

impl SettingValue for i32 {
    const EXPECTED: &'static str = "a 32-bit integer";
    fn parse_value(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::from(*self)
    }
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        value.as_i64().and_then(|n| i32::try_from(n).ok())
    }
}

impl SettingValue for Vec<SearchBox> {
    const EXPECTED: &'static str = r#"a JSON list of {"name": text, "bbox": {"eastLong", "maxLat", "minLat", "westLong": numbers}}"#;
    fn parse_value(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
    fn stored_len(&self) -> usize {
        search_boxes_json(self).len()
    }
    fn unstorable(&self) -> Option<String> {
        // JSON has no NaN or infinity: serde_json would store `null`, which no later
        // read could parse back.
        self.iter().find_map(|b| {
            let c = b.bbox;
            [c.east_long, c.max_lat, c.min_lat, c.west_long]
                .iter()
                .any(|v| !v.is_finite())
                .then(|| {
                    format!(
                        "search box {:?} has a coordinate that is not a finite number",
                        b.name
                    )
                })
        })
    }
}

/// Parses the JSON text stored in `settings.searchBoxes`.
pub fn parse_search_boxes(json: &str) -> Result<Vec<SearchBox>, SettingsError> {
    serde_json::from_str(json).map_err(|e| SettingsError::StoredSearchBoxes(e.to_string()))
}

/// The JSON text stored in `settings.searchBoxes` for `boxes`.
pub fn search_boxes_json(boxes: &[SearchBox]) -> String {
    serde_json::to_string(boxes).expect("search boxes always serialize")
}

macro_rules! settings_fields {
    ($( $field:ident, $variant:ident, $column:ident, $ty:ty; )*) => {
        /// Every legacy setting but `activeDid` (which lives in `active_identity`), typed.
        /// Every field is optional: in an override row `None` falls through to the master
        /// row's value; in the master row it means "not set".
        ///
        /// The app adds settings over time, so this struct is `#[non_exhaustive]`:
        /// start from `Settings::default()` and set fields, or read them.
        #[non_exhaustive]
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct Settings {
            $(
                #[doc = concat!("`", stringify!($column), "`")]
                pub $field: Option<$ty>,
            )*
        }

        /// A partial update of [`Settings`]: each field can be kept, set or cleared.
        /// `id` and `accountDid` are not fields, so a change cannot move a row.
        ///
        /// `#[non_exhaustive]`, since the app adds settings: start from
        /// [`SettingsChange::new`] and use [`set_from_str`](SettingsChange::set_from_str),
        /// [`set_json`](SettingsChange::set_json), [`clear`](SettingsChange::clear) or the
        /// fields. It deserializes from the JSON a service receives: a setting's
        /// legacy name with a value sets it, with `null` clears it, and a name left
        /// out is kept (`{"firstName": "Ada", "lastName": null}`; `activeDid` too).
        #[non_exhaustive]
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct SettingsChange {
            $(
                #[doc = concat!("Change of `", stringify!($column), "`.")]
                pub $field: Change<$ty>,
            )*
            /// Change of the active identity; stored in `active_identity`, not in settings.
            pub active_did: Change<Did>,
        }

        /// The name of one setting, as the legacy app spells it (the app may add
        /// settings: match with a wildcard arm, or iterate [`SettingsField::ALL`]).
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum SettingsField {
            $(
                #[doc = concat!("`", stringify!($column), "`")]
                $variant,
            )*
        }

        impl SettingsField {
            /// Every setting, in the legacy column order.
            pub const ALL: &'static [SettingsField] = &[$(SettingsField::$variant,)*];

            /// The legacy (column) name.
            pub fn name(self) -> &'static str {
                match self {
                    $(SettingsField::$variant => stringify!($column),)*
                }
            }

            /// What a value of this setting looks like.
            pub fn expected(self) -> &'static str {
                match self {
                    $(SettingsField::$variant => <$ty as SettingValue>::EXPECTED,)*
                }
            }

            /// Every legacy name, in column order.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|f| f.name()).collect()
            }
        }

        impl FromStr for SettingsField {
            type Err = SettingsError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|f| f.name() == s)
                    .ok_or_else(|| SettingsError::UnknownField { name: s.to_owned() })
            }
        }

        impl Settings {
            /// The override-merge rule: each field of `over` that is set wins over `self`
            /// (the master row); unset fields fall through to the master value.
            pub fn merged_with(&self, over: &Settings) -> Settings {
                Settings {
                    $($field: over.$field.clone().or_else(|| self.$field.clone()),)*
                }
            }

            /// Applies the settings part of `change` (the active identity is not a setting).
            pub fn apply(&mut self, change: &SettingsChange) {
                $(change.$field.apply_to(&mut self.$field);)*
            }

            /// The value of `field` as JSON (`null` when unset).
            pub fn get_json(&self, field: SettingsField) -> serde_json::Value {
                match field {
                    $(SettingsField::$variant => self.$field.as_ref()
                        .map_or(serde_json::Value::Null, SettingValue::to_json),)*
                }
            }
        }

        impl SettingsChange {
            /// A change that keeps every field.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets `field` from a JSON value (`null` clears it), checking type and size.
            pub fn set_json(&mut self, field: SettingsField, value: &serde_json::Value) -> Result<(), SettingsError> {
                if value.is_null() {
                    self.clear(field);
                    return Ok(());
                }
                match field {
                    $(SettingsField::$variant => {
                        self.$field = Change::Set(<$ty as SettingValue>::from_json(value).ok_or_else(|| {
                            SettingsError::InvalidValue { field, expected: field.expected(), got: shorten(&value.to_string()) }
                        })?);
                    })*
                }
                self.validate()
            }

            /// Sets `field` from its command-line text form, checking type and size.
            pub fn set_from_str(&mut self, field: SettingsField, value: &str) -> Result<(), SettingsError> {
                if value.len() > MAX_SETTING_LEN {
                    return Err(SettingsError::TooLong { field, len: value.len(), max: MAX_SETTING_LEN });
                }
                match field {
                    $(SettingsField::$variant => {
                        self.$field = Change::Set(<$ty as SettingValue>::parse_value(value).ok_or_else(|| {
                            SettingsError::InvalidValue { field, expected: field.expected(), got: shorten(value) }
                        })?);
                    })*
                }
                Ok(())
            }

            /// Clears `field` (stores NULL).
            pub fn clear(&mut self, field: SettingsField) {
                match field {
                    $(SettingsField::$variant => self.$field = Change::Clear,)*
                }
            }

            /// Checks every value to be set against [`MAX_SETTING_LEN`].
            pub fn validate(&self) -> Result<(), SettingsError> {
                $(
                    if let Change::Set(v) = &self.$field {
                        let len = SettingValue::stored_len(v);
                        if len > MAX_SETTING_LEN {
                            return Err(SettingsError::TooLong { field: SettingsField::$variant, len, max: MAX_SETTING_LEN });
                        }
                        if let Some(reason) = SettingValue::unstorable(v) {
                            return Err(SettingsError::Unstorable { field: SettingsField::$variant, reason });
                        }
                    }
                )*
                Ok(())
            }

            /// True when the change touches no setting and not the active identity.
            pub fn is_empty(&self) -> bool {
                $(self.$field.is_keep() &&)* self.active_did.is_keep()
            }
        }
    };
}

/// The one list of settings, each as `field, Variant, column, Type;` in the
/// table's column order (`activeDid` is not a setting: it lives in
/// `active_identity`). Every other list is generated from it: here the typed
/// [`Settings`], [`SettingsChange`] and [`SettingsField`]; in the repository the
/// row types, column names, changeset and no-op check. `settings_list!(m)` expands
/// to `m! { … }` with the list.
///
/// Adding a setting: a migration that adds the column, `diesel print-schema`, and
/// one line here.
#[macro_export]
macro_rules! settings_list {
    ($callback:ident) => {
        $callback! {
            api_server, ApiServer, apiServer, String;
            filter_feed_by_nearby, FilterFeedByNearby, filterFeedByNearby, bool;
            filter_feed_by_visible, FilterFeedByVisible, filterFeedByVisible, bool;
            finished_onboarding, FinishedOnboarding, finishedOnboarding, bool;
            first_name, FirstName, firstName, String;
            hide_register_prompt_on_new_contact, HideRegisterPromptOnNewContact, hideRegisterPromptOnNewContact, bool;
            is_registered, IsRegistered, isRegistered, bool;
            last_name, LastName, lastName, String;
            last_acked_offer_to_user_jwt_id, LastAckedOfferToUserJwtId, lastAckedOfferToUserJwtId, String;
            last_acked_offer_to_user_projects_jwt_id, LastAckedOfferToUserProjectsJwtId, lastAckedOfferToUserProjectsJwtId, String;
            last_notified_claim_id, LastNotifiedClaimId, lastNotifiedClaimId, String;
            last_viewed_claim_id, LastViewedClaimId, lastViewedClaimId, String;
            notifying_new_activity_time, NotifyingNewActivityTime, notifyingNewActivityTime, String;
            notifying_reminder_message, NotifyingReminderMessage, notifyingReminderMessage, String;
            notifying_reminder_time, NotifyingReminderTime, notifyingReminderTime, String;
            partner_api_server, PartnerApiServer, partnerApiServer, String;
            passkey_expiration_minutes, PasskeyExpirationMinutes, passkeyExpirationMinutes, i32;
            profile_image_url, ProfileImageUrl, profileImageUrl, String;
            search_boxes, SearchBoxes, searchBoxes, Vec<$crate::settings::SearchBox>;
            show_contact_gives_inline, ShowContactGivesInline, showContactGivesInline, bool;
            show_general_advanced, ShowGeneralAdvanced, showGeneralAdvanced, bool;
            show_shortcut_bvc, ShowShortcutBvc, showShortcutBvc, bool;
            vapid, Vapid, vapid, String;
            warn_if_prod_server, WarnIfProdServer, warnIfProdServer, bool;
            warn_if_test_server, WarnIfTestServer, warnIfTestServer, bool;
            web_push_server, WebPushServer, webPushServer, String;
            has_backed_up_seed, HasBackedUpSeed, hasBackedUpSeed, bool;
        }
    };
}

settings_list!(settings_fields);

/// The override-merge rule as a free function: `master` overlaid with `over`.
pub fn merge(master: &Settings, over: &Settings) -> Settings {
    master.merged_with(over)
}

impl fmt::Display for SettingsField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn shorten(s: &str) -> String {
    const KEEP: usize = 60;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// The keys a settings view has beside the settings and `activeDid` (the
/// repository's `SettingsView`): a change read from JSON passes over them, so a
/// view a client got can be sent back as a change.
pub const VIEW_KEYS: [&str; 2] = ["accountDid", "hasOverride"];

impl SettingsChange {
    /// The change a JSON object describes: a setting's legacy name with a value sets
    /// it, with `null` clears it, a name left out keeps it; `activeDid` names the
    /// active identity (`null` for none). The keys a settings view says of itself
    /// ([`VIEW_KEYS`]: `accountDid`, `hasOverride`) are passed over, so what a read
    /// returned can be sent back. An unknown name or a value of the wrong type is an
    /// error naming it.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, SettingsError> {
        let object = value
            .as_object()
            .ok_or_else(|| SettingsError::NotAnObject {
                got: shorten(&value.to_string()),
            })?;
        let mut change = SettingsChange::new();
        for (name, value) in object {
            // What a settings view says of itself: which row it read, and whether it
            // exists. Never a change: a change goes to the row its call names.
            if VIEW_KEYS.contains(&name.as_str()) {
                continue;
            }
            if name == "activeDid" {
                change.active_did = match value {
                    serde_json::Value::Null => Change::Clear,
                    serde_json::Value::String(s) => {
                        Change::Set(s.parse::<Did>().map_err(SettingsError::ActiveDid)?)
                    }
                    other => {
                        return Err(SettingsError::NotAnObject {
                            got: format!("activeDid: {}", shorten(&other.to_string())),
                        });
                    }
                };
                continue;
            }
            change.set_json(name.parse()?, value)?;
        }
        Ok(change)
    }
}

impl<'de> Deserialize<'de> for SettingsChange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        SettingsChange::from_json(&value).map_err(serde::de::Error::custom)
    }
}
