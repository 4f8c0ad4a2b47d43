//! A corpus file's name as the report keeps it: its exact bytes, written as text
//! that gives them back (so `u\xFE.sqlite` and `u\xFF.sqlite` stay two files), and
//! the shard a name belongs to.

/// A relative path's bytes in the report's form: UTF-8 text as it is (JSON escapes
/// what it must), a backslash doubled, and each byte that is not UTF-8 written
/// `\x{hh}`. Two different names never give the same text.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{{{b:02x}}}"));
        }
    }
    out
}

/// The bytes [`escape`] wrote `text` from; `None` for text it cannot have written.
#[cfg(test)]
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("\\\\") {
            out.push(b'\\');
            rest = after;
        } else {
            let hex = rest.strip_prefix("\\x{")?.get(..3)?;
            let (digits, close) = hex.split_at(2);
            if close != "}" {
                return None;
            }
            out.push(u8::from_str_radix(digits, 16).ok()?);
            rest = &rest[6..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Some(out)
}

/// Which of `count` shards (from 0) the file named `name` (its report form) is
/// in: a hash of the name (64-bit FNV-1a, the same on every machine and every
/// run), so shards cover every file exactly once, in any walk order.
pub fn shard_of(name: &str, count: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_by_a_byte_stay_apart_and_come_back_exactly() {
        let names: [&[u8]; 7] = [
            b"u\xfe.sqlite",
            b"u\xff.sqlite",
            b"u\\x{fe}.sqlite",
            b"a\\b",
            b"plain/d\xc3\xa9j\xc3\xa0.sqlite",
            b"\x1b]0;title\x07.sqlite",
            b"trail\\",
        ];
        let escaped: Vec<String> = names.iter().map(|n| escape(n)).collect();
        for (name, text) in names.iter().zip(&escaped) {
            assert_eq!(unescape(text).as_deref(), Some(*name), "{text}");
        }
        let distinct: std::collections::BTreeSet<&String> = escaped.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{escaped:?}");
        assert_eq!(escape(b"u\xfe.sqlite"), "u\\x{fe}.sqlite");
        assert_eq!(escape("déjà".as_bytes()), "déjà");
    }

    #[test]
    fn shards_are_stable_and_cover_every_name_once() {
        assert_eq!(shard_of("a.sqlite", 8), shard_of("a.sqlite", 8));
        let mut seen = [0usize; 3];
        for i in 0..300 {
            seen[shard_of(&format!("f{i}.sqlite"), 3)] += 1;
        }
        assert_eq!(seen.iter().sum::<usize>(), 300);
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
