//! Text as the file stores it, decoded in the file's own encoding: text that does
//! not decode (bytes that are not UTF-8, a UTF-16 code unit without its pair) is
//! kept as the bytes it is, to be named in an error or shown escaped, never a
//! bare decoding failure. Types only: no SQL runs here.

/// Text as the file stores it, decoded in the file's own encoding: SQLite hands
/// over a UTF-16 file's text converted to UTF-8, and a UTF-8 file's bytes as they
/// are, so text that does not decode (bytes that are not UTF-8, a UTF-16 code unit
/// without its pair) is kept as the bytes it is. Read with `sql_type = Binary`
/// (never `CAST(… AS BLOB)`, which gives a UTF-16 file's bytes undecoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredText {
    /// The text, decoded.
    Text(String),
    /// Bytes of a UTF-8 file that are not UTF-8, as stored.
    Undecodable(Vec<u8>),
    /// Code units of a UTF-16 file that do not pair up, as stored.
    BadUtf16(Vec<u8>),
}

impl StoredText {
    /// Why the text does not decode, in words with its first bytes shown; `None`
    /// for text that decodes.
    pub(crate) fn why_undecodable(&self) -> Option<String> {
        let shown = |b: &[u8]| idstore_domain::display::lossless(&b[..b.len().min(64)]);
        match self {
            StoredText::Text(_) => None,
            StoredText::Undecodable(b) => Some(format!(
                "its text is not UTF-8 (a bad byte at {}: {})",
                std::str::from_utf8(b).err().map_or(0, |e| e.valid_up_to()),
                shown(b)
            )),
            StoredText::BadUtf16(b) => Some(format!(
                "its text is not valid UTF-16, the file's encoding (a code unit without its pair: {})",
                shown(b)
            )),
        }
    }

    /// The text for a person: undecodable bytes written `\x{..}` (see
    /// [`idstore_domain::display::lossless`]).
    pub(crate) fn lossless(self) -> String {
        match self {
            StoredText::Text(t) => t,
            StoredText::Undecodable(b) | StoredText::BadUtf16(b) => {
                idstore_domain::display::lossless(&b)
            }
        }
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Binary, diesel::sqlite::Sqlite>
    for StoredText
{
    fn from_sql(
        mut value: <diesel::sqlite::Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> diesel::deserialize::Result<Self> {
        let text_value = value.value_type() == Some(diesel::sqlite::SqliteType::Text);
        let raw = value.read_blob().to_vec();
        if !text_value {
            // A number (as its text) or a blob: UTF-8 or not, byte for byte.
            return Ok(match String::from_utf8(raw) {
                Ok(t) => StoredText::Text(t),
                Err(e) => StoredText::Undecodable(e.into_bytes()),
            });
        }
        let converted = value.read_text().to_owned();
        Ok(if std::str::from_utf8(&raw) == Ok(converted.as_str()) {
            // A UTF-8 file's valid text.
            StoredText::Text(converted)
        } else if String::from_utf8_lossy(&raw) == converted {
            // A UTF-8 file's bytes that are not UTF-8 (SQLite converted nothing).
            StoredText::Undecodable(raw)
        } else if !converted.contains('\u{FFFD}') || utf16_decodes_to(&raw, &converted) {
            // A UTF-16 file's text, which SQLite converted.
            StoredText::Text(converted)
        } else {
            // A UTF-16 file's code units that do not pair up.
            StoredText::BadUtf16(raw)
        })
    }
}

/// Whether `raw`, read as UTF-16 in either byte order, is exactly `text`.
fn utf16_decodes_to(raw: &[u8], text: &str) -> bool {
    if !raw.len().is_multiple_of(2) {
        return false;
    }
    let units = |le: bool| {
        raw.chunks_exact(2).map(move |c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
    };
    [true, false].into_iter().any(|le| {
        char::decode_utf16(units(le))
            .collect::<Result<String, _>>()
            .is_ok_and(|t| t == text)
    })
}

impl diesel::Queryable<diesel::sql_types::Binary, diesel::sqlite::Sqlite> for StoredText {
    type Row = StoredText;

    fn build(row: StoredText) -> diesel::deserialize::Result<Self> {
        Ok(row)
    }
}

/// Text read from the file for a person or a report, whatever it holds: decoded in
/// the file's encoding, any byte that does not decode written `\x{..}` (see
/// [`StoredText`]). Read with `sql_type = Binary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lossless(pub String);

impl diesel::deserialize::FromSql<diesel::sql_types::Binary, diesel::sqlite::Sqlite> for Lossless {
    fn from_sql(
        value: <diesel::sqlite::Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> diesel::deserialize::Result<Self> {
        let stored: StoredText =
            diesel::deserialize::FromSql::<diesel::sql_types::Binary, _>::from_sql(value)?;
        Ok(Lossless(stored.lossless()))
    }
}

impl diesel::Queryable<diesel::sql_types::Binary, diesel::sqlite::Sqlite> for Lossless {
    type Row = Lossless;

    fn build(row: Lossless) -> diesel::deserialize::Result<Self> {
        Ok(row)
    }
}
