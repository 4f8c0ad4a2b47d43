//! Decentralized identifiers as the app stores them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest DID accepted. Real ones are 51 (`did:ethr`) or about 119 (`did:peer`)
/// characters; anything near this bound is garbage or an attack.
pub const MAX_DID_LEN: usize = 1024;

/// Why a string is not a usable DID.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// The string is empty.
    #[error("a DID cannot be empty")]
    Empty,
    /// The string is longer than [`MAX_DID_LEN`].
    #[error("a DID is at most {max} bytes long; this one has {len}")]
    TooLong {
        /// Length of the rejected string, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The string contains whitespace.
    #[error("a DID cannot contain whitespace (found at byte {at})")]
    Whitespace {
        /// Byte offset of the first whitespace character.
        at: usize,
    },
    /// The string contains a control character.
    #[error("a DID cannot contain control characters (found U+{code:04X} at byte {at})")]
    ControlCharacter {
        /// Byte offset of the first control character.
        at: usize,
        /// Its code point.
        code: u32,
    },
    /// `did:none:…` is the app's placeholder for a hidden identity, never an account.
    #[error("`{0}` is the placeholder for a hidden identity, not an account's DID")]
    Placeholder(String),
    /// The string does not have the `did:<method>:<id>` shape.
    #[error("not a DID: expected `did:<method>:<identifier>`, for example did:ethr:0x…")]
    Syntax,
    /// A `did:ethr` DID whose address is not `0x` followed by 40 hex digits.
    #[error("a did:ethr DID is `did:ethr:0x` followed by 40 hex digits")]
    EthrAddress,
    /// A `did:peer` DID that is not `0z` followed by base58btc characters.
    #[error("a did:peer DID is `did:peer:0z` followed by base58btc characters")]
    PeerIdentifier,
}

/// A validated DID, compared case-sensitively exactly as stored.
///
/// Accepted: `did:ethr:0x` + 40 hex digits (EIP-55 case kept), `did:peer:0z` +
/// base58btc, and any other method following the W3C DID syntax. Rejected: empty,
/// whitespace, control characters, `did:none:*` and strings over [`MAX_DID_LEN`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Did(String);

impl Did {
    /// Parses and validates `s`.
    pub fn parse(s: &str) -> Result<Self, DidError> {
        validate(s)?;
        Ok(Did(s.to_owned()))
    }

    /// The DID as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DID method (`ethr`, `peer`, …).
    pub fn method(&self) -> &str {
        self.0["did:".len()..].split(':').next().unwrap_or_default()
    }

    /// Consumes the DID, returning its text.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn validate(s: &str) -> Result<(), DidError> {
    if s.is_empty() {
        return Err(DidError::Empty);
    }
    if s.len() > MAX_DID_LEN {
        return Err(DidError::TooLong {
            len: s.len(),
            max: MAX_DID_LEN,
        });
    }
    if let Some((at, c)) = s.char_indices().find(|(_, c)| c.is_control()) {
        return Err(DidError::ControlCharacter { at, code: c as u32 });
    }
    if let Some((at, _)) = s.char_indices().find(|(_, c)| c.is_whitespace()) {
        return Err(DidError::Whitespace { at });
    }
    let rest = s.strip_prefix("did:").ok_or(DidError::Syntax)?;
    let (method, id) = rest.split_once(':').ok_or(DidError::Syntax)?;
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        || id.is_empty()
    {
        return Err(DidError::Syntax);
    }
    match method {
        "none" => Err(DidError::Placeholder(s.to_owned())),
        "ethr" => {
            let hex = id.strip_prefix("0x").ok_or(DidError::EthrAddress)?;
            if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(DidError::EthrAddress)
            }
        }
        "peer" => {
            let b58 = id.strip_prefix("0z").ok_or(DidError::PeerIdentifier)?;
            if !b58.is_empty() && b58.bytes().all(is_base58btc) {
                Ok(())
            } else {
                Err(DidError::PeerIdentifier)
            }
        }
        _ if generic_method_id(id) => Ok(()),
        _ => Err(DidError::Syntax),
    }
}

fn is_base58btc(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

/// W3C DID Core: `method-specific-id = *( *idchar ":" ) 1*idchar`, where
/// `idchar = ALPHA / DIGIT / "." / "-" / "_" / pct-encoded`.
fn generic_method_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    if bytes.last() == Some(&b':') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let ok = bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                if !ok {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':') => i += 1,
            _ => return false,
        }
    }
    true
}

impl FromStr for Did {
    type Err = DidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Did::parse(s)
    }
}

impl TryFrom<String> for Did {
    type Error = DidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate(&s)?;
        Ok(Did(s))
    }
}

impl From<Did> for String {
    fn from(did: Did) -> Self {
        did.0
    }
}

impl AsRef<str> for Did {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({:?})", self.0)
    }
}
