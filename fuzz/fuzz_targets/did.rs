//! DID parsing: never panics, and what it accepts keeps the promises `Did` makes.
#![no_main]

use idstore_domain::Did;
use idstore_domain::did::MAX_DID_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match Did::parse(s) {
        Ok(did) => {
            assert_eq!(did.as_str(), s, "kept exactly as given");
            assert!(s.len() <= MAX_DID_LEN);
            assert!(s.starts_with("did:") && !s.starts_with("did:none:"));
            assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
            assert!(!did.method().is_empty());
            let json = serde_json::to_string(&did).unwrap();
            assert_eq!(serde_json::from_str::<Did>(&json).unwrap(), did);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(serde_json::from_str::<Did>(&serde_json::to_string(s).unwrap()).is_err());
        }
    }
});
