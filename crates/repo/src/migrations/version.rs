//! [`Version`]: which migration, as diesel records it.

use std::borrow::Borrow;
use std::fmt;

/// A migration's version, as diesel records it in `__diesel_schema_migrations`: the
/// digits of its folder's date prefix (`20261206000001` for
/// `2026-12-06-000001_active_identity`).
///
/// Versions order as diesel orders them, as text. One read from a file that this
/// build does not know (a newer idstore's, or another program's) is kept as found,
/// shown escaped when it is not UTF-8.
///
/// ```
/// use idstore_repo::migrations::Version;
///
/// let v = Version::new("20261206000001");
/// assert_eq!(v, "20261206000001");
/// assert!(Version::new("00000000000000") < v);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Version(String);

impl Version {
    /// A version from its text (`20261206000001`); whether a migration has it is
    /// checked where it is used.
    pub fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }

    /// The version's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl From<&str> for Version {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Version {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> Self {
        v.0
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Version {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Version {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Version {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Version {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Version> for String {
    fn eq(&self, other: &Version) -> bool {
        *self == other.0
    }
}

impl PartialEq<Version> for &str {
    fn eq(&self, other: &Version) -> bool {
        *self == other.0
    }
}

impl PartialEq<Version> for str {
    fn eq(&self, other: &Version) -> bool {
        self == other.0
    }
}
