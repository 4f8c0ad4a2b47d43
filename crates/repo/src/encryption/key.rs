//! Keys of encrypted files (SQLCipher): a passphrase, or SQLCipher's raw form
//! `x'<64 hex digits>'`. A key is wiped from memory when dropped, never printed, and
//! reaches SQLCipher through its C API, never through SQL text.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// The key of an encrypted database. `Debug` shows no key material; the memory
/// holding it is wiped when it is dropped.
///
/// ```
/// let key = idstore_repo::encryption::Key::new("correct horse battery staple").unwrap();
/// assert_eq!(format!("{key:?}"), "Key(passphrase, redacted)");
/// assert!(idstore_repo::encryption::Key::new("").is_err(), "an empty key is no key");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// A key from its text: a passphrase, or a raw key `x'<64 hex digits>'` (96 with
    /// the salt). The text is moved in and wiped when the key is dropped. An empty
    /// text, or one that starts like a raw key but is not one, is refused
    /// ([`ErrorKind::InvalidKey`]).
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = Zeroizing::new(text.into());
        if text.is_empty() {
            return Err(Error::new(ErrorKind::InvalidKey, "the key is empty"));
        }
        if text.starts_with("x'") || text.starts_with("X'") {
            // The closing quote is checked first: it makes `len - 1` a char boundary.
            let ok = text.len() >= 3 && text.ends_with('\'') && {
                let hex = &text[2..text.len() - 1];
                (hex.len() == 64 || hex.len() == 96) && hex.bytes().all(|b| b.is_ascii_hexdigit())
            };
            if !ok {
                return Err(Error::new(
                    ErrorKind::InvalidKey,
                    "a raw key is x' followed by 64 hex digits (or 96, with the salt) and a closing '; this one is not",
                ));
            }
        }
        Ok(Key(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// A key from a key file's bytes, one trailing newline (`\n` or `\r\n`) dropped.
    /// The bytes must be UTF-8 text; they are wiped whether or not they make a key.
    pub fn from_file_content(content: Vec<u8>) -> Result<Self, Error> {
        let content = Zeroizing::new(content);
        let text = content
            .strip_suffix(b"\n")
            .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
            .unwrap_or(&content);
        match std::str::from_utf8(text) {
            Ok(text) => Key::new(text.to_owned()),
            Err(_) => Err(Error::new(
                crate::ErrorKind::InvalidKey,
                "the key is not UTF-8 text",
            )),
        }
    }

    /// Whether this is SQLCipher's raw form (used as the key itself, no derivation).
    pub fn is_raw(&self) -> bool {
        self.0.starts_with(b"x'") || self.0.starts_with(b"X'")
    }

    /// The key's text, for a bound parameter (`ATTACH … KEY ?`).
    #[cfg_attr(not(feature = "encryption"), allow(dead_code))]
    pub(crate) fn as_text(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a key is made from a String")
    }

    /// The key's bytes, as SQLCipher takes them.
    #[cfg_attr(not(feature = "encryption"), allow(dead_code))]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = if self.is_raw() { "raw" } else { "passphrase" };
        write!(f, "Key({form}, redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn raw_keys_are_checked_and_passphrases_taken_as_they_are() {
        let raw = format!("x'{}'", "ab".repeat(32));
        assert!(Key::new(raw.clone()).unwrap().is_raw());
        assert!(
            Key::new(format!("x'{}'", "ab".repeat(48)))
                .unwrap()
                .is_raw()
        );
        for bad in [
            "x'abc'",
            "x'",
            &format!("x'{}", "ab".repeat(32)),
            &format!("x'{}'", "zz".repeat(32)),
        ] {
            assert_eq!(
                Key::new(bad.to_owned()).unwrap_err().kind(),
                ErrorKind::InvalidKey,
                "{bad}"
            );
        }
        let pass = Key::new("x marks the spot").unwrap();
        assert!(!pass.is_raw());
        assert_eq!(pass.bytes(), b"x marks the spot");
    }

    #[test]
    fn a_key_files_trailing_newline_is_dropped_once() {
        let key = |s: &[u8]| Key::from_file_content(s.to_vec());
        assert_eq!(key(b"pass\n").unwrap().bytes(), b"pass");
        assert_eq!(key(b"pass\r\n").unwrap().bytes(), b"pass");
        assert_eq!(key(b"pass\n\n").unwrap().bytes(), b"pass\n");
        assert_eq!(key(b"\n").unwrap_err().kind(), ErrorKind::InvalidKey);
        assert_eq!(key(b"p\xffss").unwrap_err().kind(), ErrorKind::InvalidKey);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = Key::new("hunter2-secret").unwrap();
        let shown = format!("{key:?} {:?}", Some(key.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

/// An encrypted file's SQLCipher format: the page size, key derivation and HMAC its
/// key is used with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherFormat {
    /// SQLCipher 3: 1024-byte pages, 64,000 PBKDF2-SHA1 iterations, HMAC-SHA1.
    Sqlcipher3,
    /// SQLCipher 4's defaults: 4096-byte pages, 256,000 PBKDF2-SHA512 iterations,
    /// HMAC-SHA512.
    Sqlcipher4,
}

impl CipherFormat {
    /// The SQLCipher major version (`cipher_compatibility`): 3 or 4.
    pub fn version(self) -> u8 {
        match self {
            CipherFormat::Sqlcipher3 => 3,
            CipherFormat::Sqlcipher4 => 4,
        }
    }

    /// The format of SQLCipher major version `version`, if it is 3 or 4.
    pub fn from_version(version: u8) -> Option<Self> {
        match version {
            3 => Some(CipherFormat::Sqlcipher3),
            4 => Some(CipherFormat::Sqlcipher4),
            _ => None,
        }
    }
}

impl fmt::Display for CipherFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SQLCipher {}", self.version())
    }
}

/// As its version number, as the command's JSON shows it.
impl serde::Serialize for CipherFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.version())
    }
}
