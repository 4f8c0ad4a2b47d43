//! The domain rules: DID validation, the override-merge rule, typed setting changes,
//! secret redaction and the migration report's shape.

use idstore_domain::settings::{MAX_SETTING_LEN, merge, parse_search_boxes, search_boxes_json};
use idstore_domain::{
    Account, BoundingBox, Change, Did, DidError, SearchBox, Secret, Settings, SettingsChange,
    SettingsError, SettingsField, did::MAX_DID_LEN,
};

const ETHR: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
const PEER: &str = "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

#[test]
fn accepts_the_formats_the_app_stores() {
    assert_eq!(ETHR.len(), 51);
    for ok in [ETHR, PEER, "did:web:example.com", "did:key:z6Mk%20x:y"] {
        let did = Did::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(did.as_str(), ok, "kept exactly as stored, case included");
    }
    assert_eq!(Did::parse(ETHR).unwrap().method(), "ethr");
    assert_ne!(
        Did::parse(ETHR).unwrap(),
        Did::parse(&ETHR.to_lowercase()).unwrap(),
        "case-sensitive"
    );
}

#[test]
fn rejects_bad_dids_saying_why() {
    let long = format!("did:web:{}", "a".repeat(MAX_DID_LEN));
    let cases: Vec<(&str, DidError)> = vec![
        ("", DidError::Empty),
        (" did:web:x", DidError::Whitespace { at: 0 }),
        ("did:web:a b", DidError::Whitespace { at: 9 }),
        (
            "did:web:a\u{0}",
            DidError::ControlCharacter { at: 9, code: 0 },
        ),
        (
            "did:web:a\n",
            DidError::ControlCharacter { at: 9, code: 10 },
        ),
        (
            "did:none:HIDDEN",
            DidError::Placeholder("did:none:HIDDEN".into()),
        ),
        (
            &long,
            DidError::TooLong {
                len: long.len(),
                max: MAX_DID_LEN,
            },
        ),
        ("ethr:0x12", DidError::Syntax),
        ("did:ethr", DidError::Syntax),
        ("did:ETHR:0x1", DidError::Syntax),
        ("did:web:x';DROP/**/TABLE/**/accounts;--", DidError::Syntax),
        ("did:ethr:0x123", DidError::EthrAddress),
        (
            "did:ethr:0xZZcdEf0123456789aBcDeF0123456789AbCdEf01",
            DidError::EthrAddress,
        ),
        ("did:peer:0z", DidError::PeerIdentifier),
        ("did:peer:0z0OIl", DidError::PeerIdentifier),
    ];
    for (input, expected) in cases {
        assert_eq!(Did::parse(input), Err(expected.clone()), "{input:?}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn did_serde_validates() {
    let did: Did = serde_json::from_str(&format!("\"{ETHR}\"")).unwrap();
    assert_eq!(serde_json::to_string(&did).unwrap(), format!("\"{ETHR}\""));
    assert!(serde_json::from_str::<Did>("\"did:none:HIDDEN\"").is_err());
}

fn sample(first: Option<&str>, registered: Option<bool>, minutes: Option<i32>) -> Settings {
    let mut s = Settings::default();
    s.first_name = first.map(str::to_owned);
    s.is_registered = registered;
    s.passkey_expiration_minutes = minutes;
    s.api_server = Some("https://api.endorser.ch".into());
    s
}

#[test]
fn merge_lets_set_overrides_win_and_null_fall_through() {
    let master = sample(Some("Master"), Some(false), Some(15));
    let over = {
        let mut s = Settings::default();
        s.first_name = Some("Override".into());
        s.is_registered = None;
        s
    };
    let merged = merge(&master, &over);
    assert_eq!(
        merged.first_name.as_deref(),
        Some("Override"),
        "a set override wins"
    );
    assert_eq!(merged.is_registered, Some(false), "NULL falls through");
    assert_eq!(merged.passkey_expiration_minutes, Some(15));
    assert_eq!(
        merged.api_server.as_deref(),
        Some("https://api.endorser.ch")
    );
    // `false` is a value, not "unset": it must win over a master `true`.
    let over = {
        let mut s = Settings::default();
        s.is_registered = Some(false);
        s
    };
    assert_eq!(
        merge(&sample(None, Some(true), None), &over).is_registered,
        Some(false)
    );
}

#[test]
fn merge_holds_field_by_field_for_every_field() {
    // Master sets every field; an override setting exactly one field changes only it.
    let mut all_set = SettingsChange::default();
    let mut other = SettingsChange::default();
    for &field in SettingsField::ALL {
        let (a, b) = match field.expected() {
            e if e.starts_with("a boolean") => ("true", "false"),
            e if e.starts_with("a 32-bit") => ("1", "2"),
            e if e.starts_with("a JSON") => (
                "[]",
                r#"[{"name":"n","bbox":{"eastLong":1,"maxLat":2,"minLat":0,"westLong":-1}}]"#,
            ),
            _ => ("master", "override"),
        };
        all_set.set_from_str(field, a).unwrap();
        other.set_from_str(field, b).unwrap();
    }
    let mut master = Settings::default();
    master.apply(&all_set);
    let mut full_override = Settings::default();
    full_override.apply(&other);
    for &field in SettingsField::ALL {
        let mut one = SettingsChange::default();
        one.set_from_str(
            field,
            &full_override
                .get_json(field)
                .to_string()
                .trim_matches('"')
                .replace("\\\"", "\""),
        )
        .unwrap_or_else(|e| panic!("{field}: {e}"));
        let mut over = Settings::default();
        over.apply(&one);
        let merged = merge(&master, &over);
        for &g in SettingsField::ALL {
            let want = if g == field {
                full_override.get_json(g)
            } else {
                master.get_json(g)
            };
            assert_eq!(merged.get_json(g), want, "override of {field}, field {g}");
        }
    }
    assert_eq!(
        merge(&master, &Settings::default()),
        master,
        "an empty override changes nothing"
    );
}

#[test]
fn changes_are_typed_and_bounded() {
    let mut change = SettingsChange::default();
    assert!(change.is_empty());
    change
        .set_from_str(SettingsField::IsRegistered, "1")
        .unwrap();
    change
        .set_from_str(SettingsField::PasskeyExpirationMinutes, "-5")
        .unwrap();
    change.clear(SettingsField::FirstName);
    assert_eq!(change.is_registered, Change::Set(true));
    assert_eq!(change.passkey_expiration_minutes, Change::Set(-5));
    assert_eq!(change.first_name, Change::Clear);
    assert!(!change.is_empty());

    let err = change
        .set_from_str(SettingsField::IsRegistered, "yes")
        .unwrap_err();
    assert!(matches!(
        err,
        SettingsError::InvalidValue {
            field: SettingsField::IsRegistered,
            ..
        }
    ));
    assert!(err.to_string().contains("a boolean"), "{err}");
    assert!(
        change
            .set_from_str(SettingsField::PasskeyExpirationMinutes, "99999999999")
            .is_err()
    );
    assert!(
        change
            .set_from_str(SettingsField::SearchBoxes, "[{\"name\":1}]")
            .is_err()
    );
    let huge = "x".repeat(MAX_SETTING_LEN + 1);
    assert!(matches!(
        change.set_from_str(SettingsField::FirstName, &huge),
        Err(SettingsError::TooLong { len, .. }) if len == MAX_SETTING_LEN + 1
    ));
    assert_eq!(
        change.is_registered,
        Change::Set(true),
        "a refused value leaves the change as it was"
    );

    let err = "activeDid".parse::<SettingsField>().unwrap_err();
    assert!(
        err.to_string().contains("valid settings are: apiServer"),
        "{err}"
    );
    assert_eq!(
        "hasBackedUpSeed".parse::<SettingsField>().unwrap(),
        SettingsField::HasBackedUpSeed
    );
    assert_eq!(SettingsField::ALL.len(), 27);

    let mut s = sample(Some("A"), Some(false), None);
    s.apply(&change);
    assert_eq!(
        (s.first_name, s.is_registered, s.passkey_expiration_minutes),
        (None, Some(true), Some(-5))
    );
}

#[test]
fn search_boxes_round_trip_as_the_app_writes_them() {
    let json =
        r#"[{"name":"home","bbox":{"eastLong":1.5,"maxLat":2.0,"minLat":1.0,"westLong":0.5}}]"#;
    let boxes = parse_search_boxes(json).unwrap();
    assert_eq!(
        boxes,
        vec![SearchBox {
            name: "home".into(),
            bbox: BoundingBox {
                east_long: 1.5,
                max_lat: 2.0,
                min_lat: 1.0,
                west_long: 0.5
            }
        }]
    );
    assert_eq!(
        parse_search_boxes(&search_boxes_json(&boxes)).unwrap(),
        boxes
    );
    assert!(matches!(
        parse_search_boxes("{not json"),
        Err(SettingsError::StoredSearchBoxes(_))
    ));
}

#[test]
fn account_debug_never_shows_secret_material() {
    let account = Account {
        id: 1,
        date_created: "2024-03-01T12:00:00.000Z".into(),
        derivation_path: Some("m/0".into()),
        did: Did::parse(ETHR).unwrap(),
        identity_encr_base64: Some(Secret::new("SUPER-SECRET-IDENTITY".into())),
        mnemonic_encr_base64: Some(Secret::new("SUPER-SECRET-MNEMONIC".into())),
        passkey_cred_id_hex: None,
        public_key_hex: "02ab".into(),
    };
    let shown = format!("{account:?} {account:#?}");
    assert!(!shown.contains("SUPER-SECRET"), "{shown}");
    assert!(shown.contains("<redacted>") && shown.contains(ETHR));
    assert_eq!(
        account.identity_encr_base64.as_ref().unwrap().expose(),
        "SUPER-SECRET-IDENTITY"
    );
}

#[test]
fn coordinates_survive_storage_bit_for_bit() {
    // Found by fuzzing settings_value: without serde_json's exact float parsing, a
    // stored coordinate read back as a neighbouring float.
    let json = r#"[{"name":"far","bbox":{"eastLong":5,"maxLat":-1,"minLat":18,"westLong":2.2222222222222223e+92}}]"#;
    let boxes = parse_search_boxes(json).unwrap();
    assert_eq!(
        boxes[0].bbox.west_long.to_bits(),
        2.2222222222222223e+92f64.to_bits()
    );
    assert_eq!(
        parse_search_boxes(&search_boxes_json(&boxes)).unwrap(),
        boxes
    );
    for x in [
        0.1f64,
        -179.999_999_999_999_97,
        1e-300,
        f64::MAX,
        40.123_456_789_012_345,
    ] {
        let b = vec![SearchBox {
            name: "x".into(),
            bbox: BoundingBox {
                east_long: x,
                max_lat: x,
                min_lat: x,
                west_long: x,
            },
        }];
        let back = parse_search_boxes(&search_boxes_json(&b)).unwrap();
        assert_eq!(back[0].bbox.east_long.to_bits(), x.to_bits(), "{x}");
    }
}

/// Settings serialize under the legacy field names, every field present: the JSON
/// the command prints comes from this derive.
#[test]
fn settings_serialize_with_every_legacy_field_name() {
    let json = serde_json::to_value(idstore_domain::Settings::default()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut names: Vec<&str> = idstore_domain::SettingsField::names();
    names.sort_unstable();
    assert_eq!(keys, names);
}

/// A settings update as a service receives it: a value sets, `null` clears, a name
/// left out is kept; unknown names and wrong types are refused, naming them.
#[test]
fn a_settings_change_deserializes_from_the_json_a_service_receives() {
    use idstore_domain::{Change, SettingsChange};
    let change: SettingsChange = serde_json::from_str(
        r#"{"firstName": "Ada", "isRegistered": 1, "lastName": null,
            "passkeyExpirationMinutes": 15, "activeDid": "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01",
            "searchBoxes": [{"name": "Home", "bbox": {"eastLong": 1, "maxLat": 2, "minLat": 0, "westLong": 0}}]}"#,
    )
    .unwrap();
    assert_eq!(change.first_name, Change::Set("Ada".to_owned()));
    assert_eq!(change.is_registered, Change::Set(true));
    assert_eq!(change.last_name, Change::Clear);
    assert_eq!(change.passkey_expiration_minutes, Change::Set(15));
    assert!(matches!(change.search_boxes, Change::Set(ref b) if b.len() == 1));
    assert!(matches!(change.active_did, Change::Set(_)));
    assert_eq!(change.vapid, Change::Keep, "a name left out is kept");

    let cleared: SettingsChange = serde_json::from_str(r#"{"activeDid": null}"#).unwrap();
    assert_eq!(cleared.active_did, Change::Clear);
    assert!(SettingsChange::new().is_empty());

    for (bad, says) in [
        (r#"{"noSuch": 1}"#, "noSuch"),
        (r#"{"isRegistered": "maybe"}"#, "isRegistered"),
        (
            r#"{"passkeyExpirationMinutes": 1e20}"#,
            "passkeyExpirationMinutes",
        ),
        (r#"{"activeDid": "not a did"}"#, "activeDid"),
        (r#"["firstName"]"#, "object"),
    ] {
        let err = serde_json::from_str::<SettingsChange>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// The types a service sends speak the app's names, and times carry their offset.
#[test]
fn accounts_and_the_active_identity_serialize_by_the_apps_names() {
    use idstore_domain::{AccountInfo, ActiveIdentity, chrono};
    let info = AccountInfo {
        id: 1,
        date_created: "2024-03-01T12:00:00.000Z".into(),
        derivation_path: None,
        did: Did::parse(ETHR).unwrap(),
        passkey_cred_id_hex: None,
        public_key_hex: "02ab".into(),
    };
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        serde_json::json!({
            "id": 1, "dateCreated": "2024-03-01T12:00:00.000Z", "derivationPath": null,
            "did": ETHR, "passkeyCredIdHex": null, "publicKeyHex": "02ab"
        })
    );
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T21:22:51.443Z")
        .unwrap()
        .to_utc();
    let active = ActiveIdentity {
        active_did: Some(Did::parse(ETHR).unwrap()),
        last_updated: Some(at),
    };
    let json = serde_json::to_value(&active).unwrap();
    assert_eq!(json["activeDid"], ETHR);
    let shown = json["lastUpdated"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(shown).unwrap(),
        at,
        "RFC 3339 with an offset: {shown}"
    );
}

/// A new account reads from the JSON a client sends, checked as the API checks it.
#[test]
fn a_new_account_deserializes_with_the_apis_checks() {
    use idstore_domain::NewAccount;
    let read = |json: serde_json::Value| serde_json::from_value::<NewAccount>(json);
    let new = read(serde_json::json!({
        "did": ETHR, "publicKeyHex": "02ab", "dateCreated": "2024-03-01T12:00:00.000Z",
        "derivationPath": "m/0", "mnemonicEncrBase64": "bW5lbW9uaWM="
    }))
    .unwrap();
    assert_eq!(
        new,
        NewAccount::new(
            Did::parse(ETHR).unwrap(),
            "02ab",
            "2024-03-01T12:00:00.000Z"
        )
        .derivation_path("m/0")
        .mnemonic(Secret::new("bW5lbW9uaWM=".into()))
    );
    for (json, says) in [
        (
            serde_json::json!({"did": ETHR, "publicKeyHex": "zz", "dateCreated": "2024-03-01T12:00:00Z"}),
            "hex digits",
        ),
        (
            serde_json::json!({"did": ETHR, "publicKeyHex": "02", "dateCreated": "yesterday"}),
            "RFC 3339",
        ),
        (
            serde_json::json!({"did": "did:ethr:0x12", "publicKeyHex": "02", "dateCreated": "2024-03-01T12:00:00Z"}),
            "40 hex digits",
        ),
        (
            serde_json::json!({"did": ETHR, "dateCreated": "2024-03-01T12:00:00Z"}),
            "publicKeyHex",
        ),
        (
            serde_json::json!({"id": 7, "did": ETHR, "publicKeyHex": "02", "dateCreated": "2024-03-01T12:00:00Z"}),
            "unknown field `id`",
        ),
    ] {
        let err = read(json.clone()).unwrap_err().to_string();
        assert!(err.contains(says), "{json}: {err}");
    }
}

/// What a settings view serializes can be read back as a change: its own keys
/// (`accountDid`, `hasOverride`) are passed over, every setting and `activeDid` kept.
#[test]
fn a_settings_view_sent_back_reads_as_a_change() {
    let view = serde_json::json!({
        "firstName": "Ada", "lastName": null, "activeDid": ETHR,
        "accountDid": ETHR, "hasOverride": true
    });
    let change: SettingsChange = serde_json::from_value(view).unwrap();
    assert_eq!(change.first_name, Change::Set("Ada".to_owned()));
    assert_eq!(change.last_name, Change::Clear);
    assert_eq!(change.active_did, Change::Set(Did::parse(ETHR).unwrap()));
    assert!(change.api_server.is_keep());
}
