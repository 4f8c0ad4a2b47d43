//! The settings value parser: never panics, refuses what does not fit the field, and
//! what it accepts survives being shown and parsed again.
#![no_main]

use idstore_domain::settings::MAX_SETTING_LEN;
use idstore_domain::{Settings, SettingsChange, SettingsField};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(value) = std::str::from_utf8(rest) else { return };
    let field = SettingsField::ALL[pick as usize % SettingsField::ALL.len()];
    let mut change = SettingsChange::default();
    match change.set_from_str(field, value) {
        Ok(()) => {
            assert!(value.len() <= MAX_SETTING_LEN);
            change.validate().unwrap();
            let mut settings = Settings::default();
            settings.apply(&change);
            let shown = settings.get_json(field);
            assert!(!shown.is_null());
            // The shown form parses back to the same value.
            let text = match &shown {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut again = SettingsChange::default();
            again.set_from_str(field, &text).unwrap();
            let mut settings2 = Settings::default();
            settings2.apply(&again);
            assert_eq!(settings2.get_json(field), shown);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
