//! Text from a database shown to a person: [`Shown`] escapes every character a
//! terminal would act on (control characters, bidirectional overrides) and cuts a
//! very long value short, saying how long it was. JSON output needs none of this: it
//! prints values exactly, escaped by JSON itself.

use std::fmt::{self, Write};

/// How many characters of a value are shown before it is cut short.
pub const SHOWN_CHARS: usize = 200;

/// A value as text output shows it: control characters (`ESC`, `\r`, `\n`, C1
/// controls, DEL) and invisible bidirectional or zero-width characters written as
/// `\u{…}` escapes (`\n`, `\r`, `\t` as such), and values longer than
/// [`SHOWN_CHARS`] characters cut there, followed by `… (N bytes)`.
///
/// ```
/// use idstore_domain::display::Shown;
///
/// assert_eq!(Shown("did:ethr:0xab").to_string(), "did:ethr:0xab");
/// assert_eq!(Shown("a\u{1b}[2Jb\rc").to_string(), "a\\u{1b}[2Jb\\rc");
/// assert_eq!(Shown::quoted("x\"y").to_string(), "\"x\\\"y\"");
/// let long = "x".repeat(1000);
/// assert!(Shown(&long).to_string().ends_with("… (1000 bytes)"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl<'a> Shown<'a> {
    /// The value in double quotes (a quote inside escaped), as `{:?}` would show a
    /// string, with the same escapes and cap.
    pub fn quoted(value: &'a str) -> Quoted<'a> {
        Quoted(value)
    }
}

/// [`Shown`] in double quotes; see [`Shown::quoted`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

/// Whether a terminal would act on `c` or show nothing for it.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{FEFF}') // zero-width no-break space
}

fn write_shown(f: &mut fmt::Formatter<'_>, value: &str, quote: bool) -> fmt::Result {
    for (shown, c) in value.chars().enumerate() {
        if shown == SHOWN_CHARS {
            return write!(f, "… ({} bytes)", value.len());
        }
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '"' if quote => f.write_str("\\\"")?,
            '\\' if quote => f.write_str("\\\\")?,
            c if needs_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_shown(f, self.0, false)
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_shown(f, self.0, true)?;
        f.write_char('"')
    }
}

/// Bytes that are not valid UTF-8, shown as text: valid runs as [`Shown`] shows
/// them, each invalid byte as `\x{..}`.
///
/// ```
/// assert_eq!(idstore_domain::display::lossless(b"ab\xffc"), "ab\\x{ff}c");
/// ```
pub fn lossless(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&Shown(chunk.valid()).to_string());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{{{b:02x}}}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        for (raw, shown) in [
            ("\u{1b}]52;c;aGk=\u{7}", "\\u{1b}]52;c;aGk=\\u{7}"),
            ("a\u{202e}b", "a\\u{202e}b"),
            ("\u{9b}1m", "\\u{9b}1m"),
            ("tab\there", "tab\\there"),
            ("plain did:peer:0z6Mk", "plain did:peer:0z6Mk"),
        ] {
            assert_eq!(Shown(raw).to_string(), shown);
        }
    }

    #[test]
    fn long_values_are_capped_with_their_size() {
        let value = "é".repeat(SHOWN_CHARS + 1);
        let shown = Shown(&value).to_string();
        assert!(shown.starts_with(&"é".repeat(SHOWN_CHARS)));
        assert!(shown.ends_with(&format!("… ({} bytes)", value.len())));
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(Shown(&exact).to_string(), exact);
    }
}
