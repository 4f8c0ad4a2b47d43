//! Keys of encrypted files (SQLCipher): a passphrase, or SQLCipher's raw form
//! `x'<64 hex digits>'`. A key is wiped from memory when dropped, never printed, and
//! reaches SQLCipher through its C API, never through SQL text.

use std::fmt;

use zeroize::Zeroizing;

/// The key of an encrypted database. `Debug` shows no key material.
///
/// ```
/// let key = idstore_repo::Key::new("correct horse battery staple").unwrap();
/// assert_eq!(format!("{key:?}"), "Key(passphrase, redacted)");
/// assert!(idstore_repo::Key::new("").is_err(), "an empty key is no key");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Zeroizing<Vec<u8>>);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is empty.
    #[error("the key is empty")]
    Empty,
    /// The key starts like SQLCipher's raw form but is not one.
    #[error(
        "a raw key is x' followed by 64 hex digits (or 96, with the salt) and a closing '; this one is not"
    )]
    BadRawKey,
}

impl Key {
    /// A key from its text: a passphrase, or a raw key `x'<64 hex digits>'` (96 with
    /// the salt). The text is moved in and wiped when the key is dropped.
    pub fn new(text: impl Into<String>) -> Result<Self, KeyError> {
        let text = Zeroizing::new(text.into());
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if text.starts_with("x'") || text.starts_with("X'") {
            // The closing quote is checked first: it makes `len - 1` a char boundary.
            let ok = text.len() >= 3 && text.ends_with('\'') && {
                let hex = &text[2..text.len() - 1];
                (hex.len() == 64 || hex.len() == 96) && hex.bytes().all(|b| b.is_ascii_hexdigit())
            };
            if !ok {
                return Err(KeyError::BadRawKey);
            }
        }
        Ok(Key(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// A key read from a file's content, one trailing newline (`\n` or `\r\n`) dropped.
    pub fn from_file_content(content: Zeroizing<String>) -> Result<Self, KeyError> {
        let text = content
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&content);
        Key::new(text.to_owned())
    }

    /// Whether this is SQLCipher's raw form (used as the key itself, no derivation).
    pub fn is_raw(&self) -> bool {
        self.0.starts_with(b"x'") || self.0.starts_with(b"X'")
    }

    /// The key's text, for a bound parameter (`ATTACH … KEY ?`).
    pub(crate) fn as_text(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a key is made from a String")
    }

    /// The key's bytes, as SQLCipher takes them.
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
            assert_eq!(Key::new(bad.to_owned()), Err(KeyError::BadRawKey), "{bad}");
        }
        let pass = Key::new("x marks the spot").unwrap();
        assert!(!pass.is_raw());
        assert_eq!(pass.bytes(), b"x marks the spot");
    }

    #[test]
    fn a_key_files_trailing_newline_is_dropped_once() {
        let key = |s: &str| Key::from_file_content(Zeroizing::new(s.to_owned()));
        assert_eq!(key("pass\n").unwrap().bytes(), b"pass");
        assert_eq!(key("pass\r\n").unwrap().bytes(), b"pass");
        assert_eq!(key("pass\n\n").unwrap().bytes(), b"pass\n");
        assert_eq!(key("\n"), Err(KeyError::Empty));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = Key::new("hunter2-secret").unwrap();
        let shown = format!("{key:?} {:?}", Some(key.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
