//! Identities held on the device.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::did::Did;

/// Encrypted key material. Its `Debug` never shows the content, and it has no
/// `Display` or `Serialize`, so it cannot reach a log or a JSON document by accident.
/// It deserializes from a JSON string (a new account's material, as a client sends
/// it).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps stored ciphertext.
    pub fn new(ciphertext: String) -> Self {
        Secret(ciphertext)
    }

    /// The stored (encrypted, base64) text. Call only where it is meant to leave.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One identity (`accounts` row). Secret material is held as [`Secret`], so neither
/// `Debug` nor logging can print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Surrogate key.
    pub id: i32,
    /// When the identity was created: RFC 3339 text as the app stores it
    /// (`2024-03-01T12:00:00.000Z`).
    pub date_created: String,
    /// HD derivation path, when the identity came from a seed.
    pub derivation_path: Option<String>,
    /// The identity.
    pub did: Did,
    /// Encrypted identity (private key) material.
    pub identity_encr_base64: Option<Secret>,
    /// Encrypted seed phrase.
    pub mnemonic_encr_base64: Option<Secret>,
    /// Passkey credential id, for passkey identities.
    pub passkey_cred_id_hex: Option<String>,
    /// Public key, hex (a COSE key for passkey identities).
    pub public_key_hex: String,
}

/// An identity without its secret material: what listings return. Get the secrets,
/// when they are really needed, with a separate call. In JSON, the app's column
/// names: `{"id": 1, "dateCreated": "…", "derivationPath": null, "did": "…",
/// "passkeyCredIdHex": null, "publicKeyHex": "02ab"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// Surrogate key.
    pub id: i32,
    /// When the identity was created: RFC 3339 text as the app stores it
    /// (`2024-03-01T12:00:00.000Z`).
    pub date_created: String,
    /// HD derivation path, when the identity came from a seed.
    pub derivation_path: Option<String>,
    /// The identity.
    pub did: Did,
    /// Passkey credential id, for passkey identities.
    pub passkey_cred_id_hex: Option<String>,
    /// Public key, hex (a COSE key for passkey identities).
    pub public_key_hex: String,
}

impl From<Account> for AccountInfo {
    fn from(a: Account) -> Self {
        AccountInfo {
            id: a.id,
            date_created: a.date_created,
            derivation_path: a.derivation_path,
            did: a.did,
            passkey_cred_id_hex: a.passkey_cred_id_hex,
            public_key_hex: a.public_key_hex,
        }
    }
}

/// The fields of a new account; `id` is assigned by the database. Build one with
/// [`NewAccount::new`] and the setters for the optional fields, or read it from
/// the JSON a client sends, by the app's column names (`did`, `publicKeyHex` and
/// `dateCreated` required; `derivationPath`, `identityEncrBase64`,
/// `mnemonicEncrBase64`, `passkeyCredIdHex` optional; any other name refused),
/// checked as [`NewAccount::validate`] checks it.
///
/// ```
/// use idstore_domain::NewAccount;
///
/// let new: NewAccount = serde_json::from_str(r#"{
///     "did": "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01",
///     "publicKeyHex": "02ab",
///     "dateCreated": "2024-03-01T12:00:00.000Z"
/// }"#)?;
/// assert_eq!(new.public_key_hex, "02ab");
/// let bad = serde_json::from_str::<NewAccount>(r#"{"did": "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01", "publicKeyHex": "not hex", "dateCreated": "2024-03-01T12:00:00.000Z"}"#);
/// assert!(bad.unwrap_err().to_string().contains("hex digits"));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// ```
/// use idstore_domain::{Did, NewAccount, Secret};
///
/// let did = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
/// let new = NewAccount::new(did, "02ab", "2024-03-01T12:00:00.000Z")
///     .derivation_path("m/84737769'/0'/0'/0'")
///     .mnemonic(Secret::new("bW5lbW9uaWM=".into()));
/// assert_eq!(new.public_key_hex, "02ab");
/// # Ok::<(), idstore_domain::DidError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "NewAccountFields")]
pub struct NewAccount {
    /// The identity.
    pub did: Did,
    /// Creation time, RFC 3339 (`2024-03-01T12:00:00.000Z`).
    pub date_created: String,
    /// HD derivation path.
    pub derivation_path: Option<String>,
    /// Encrypted identity material.
    pub identity_encr_base64: Option<Secret>,
    /// Encrypted seed phrase.
    pub mnemonic_encr_base64: Option<Secret>,
    /// Passkey credential id.
    pub passkey_cred_id_hex: Option<String>,
    /// Public key, hex.
    pub public_key_hex: String,
}

impl NewAccount {
    /// A new account with its DID, public key (hex) and creation time (RFC 3339;
    /// [`format_date_created`] writes one); the optional fields unset.
    pub fn new(
        did: Did,
        public_key_hex: impl Into<String>,
        date_created: impl Into<String>,
    ) -> Self {
        NewAccount {
            did,
            date_created: date_created.into(),
            derivation_path: None,
            identity_encr_base64: None,
            mnemonic_encr_base64: None,
            passkey_cred_id_hex: None,
            public_key_hex: public_key_hex.into(),
        }
    }

    /// Sets the HD derivation path.
    pub fn derivation_path(mut self, path: impl Into<String>) -> Self {
        self.derivation_path = Some(path.into());
        self
    }

    /// Sets the encrypted identity (private key) material.
    pub fn identity(mut self, material: Secret) -> Self {
        self.identity_encr_base64 = Some(material);
        self
    }

    /// Sets the encrypted seed phrase.
    pub fn mnemonic(mut self, material: Secret) -> Self {
        self.mnemonic_encr_base64 = Some(material);
        self
    }

    /// Sets the passkey credential id (hex).
    pub fn passkey_cred_id_hex(mut self, id: impl Into<String>) -> Self {
        self.passkey_cred_id_hex = Some(id.into());
        self
    }

    /// Checks the fields a new account must have right: a public key of hex digits,
    /// at most [`MAX_PUBLIC_KEY_HEX`] of them, and an RFC 3339 `dateCreated`.
    ///
    /// ```
    /// use idstore_domain::{AccountError, Did, NewAccount};
    ///
    /// let did = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
    /// let bad = NewAccount::new(did, "not hex", "2024-03-01T12:00:00.000Z");
    /// assert_eq!(bad.validate(), Err(AccountError::PublicKeyNotHex));
    /// # Ok::<(), idstore_domain::DidError>(())
    /// ```
    pub fn validate(&self) -> Result<(), AccountError> {
        let key = &self.public_key_hex;
        if key.is_empty() {
            return Err(AccountError::MissingPublicKey);
        }
        if key.len() > MAX_PUBLIC_KEY_HEX {
            return Err(AccountError::PublicKeyTooLong {
                max: MAX_PUBLIC_KEY_HEX,
                len: key.len(),
            });
        }
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AccountError::PublicKeyNotHex);
        }
        if DateTime::parse_from_rfc3339(&self.date_created).is_err() {
            return Err(AccountError::DateCreated {
                given: self.date_created.chars().take(40).collect(),
            });
        }
        Ok(())
    }
}

/// A new account as JSON gives it, before [`NewAccount::validate`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccountFields {
    did: Did,
    date_created: String,
    #[serde(default)]
    derivation_path: Option<String>,
    #[serde(default)]
    identity_encr_base64: Option<Secret>,
    #[serde(default)]
    mnemonic_encr_base64: Option<Secret>,
    #[serde(default)]
    passkey_cred_id_hex: Option<String>,
    public_key_hex: String,
}

impl TryFrom<NewAccountFields> for NewAccount {
    type Error = AccountError;

    fn try_from(f: NewAccountFields) -> Result<Self, AccountError> {
        let new = NewAccount {
            did: f.did,
            date_created: f.date_created,
            derivation_path: f.derivation_path,
            identity_encr_base64: f.identity_encr_base64,
            mnemonic_encr_base64: f.mnemonic_encr_base64,
            passkey_cred_id_hex: f.passkey_cred_id_hex,
            public_key_hex: f.public_key_hex,
        };
        new.validate()?;
        Ok(new)
    }
}

/// Longest public key a new account may have, in hex digits (a COSE key is a few
/// hundred).
pub const MAX_PUBLIC_KEY_HEX: usize = 4096;

/// Why a [`NewAccount`] is not acceptable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The public key is empty.
    #[error("a public key is required")]
    MissingPublicKey,
    /// The public key holds something other than hex digits.
    #[error("the public key must be hex digits (0-9, a-f)")]
    PublicKeyNotHex,
    /// The public key is longer than [`MAX_PUBLIC_KEY_HEX`].
    #[error("the public key is {len} hex digits long; at most {max} are accepted")]
    PublicKeyTooLong {
        /// The longest accepted.
        max: usize,
        /// The length given.
        len: usize,
    },
    /// `dateCreated` is not RFC 3339.
    #[error("dateCreated {given:?} is not an RFC 3339 time such as 2024-03-01T12:00:00.000Z")]
    DateCreated {
        /// The value given (its first 40 characters).
        given: String,
    },
}

/// Formats a time the way the app writes `dateCreated`: `2024-03-01T12:00:00.000Z`.
pub fn format_date_created(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
