//! SQLite's tokenizer, after its own rules (quotes, blob literals, comments,
//! operators), and a cursor over its tokens: what the readers of SQL text in
//! `from_file.rs` and `script.rs` are built on. Nothing here touches a database.

use std::fmt;

/// One token; whitespace and comments are dropped.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// A keyword or a bare identifier, as written.
    Word(String),
    /// A quoted identifier (`"x"`, `[x]`, `` `x` ``), unquoted.
    Quoted(String),
    /// A string literal, unquoted.
    Text(String),
    /// A blob literal `X'…'`, decoded.
    Blob(Vec<u8>),
    /// A number, as written.
    Number(String),
    /// `;`
    Semicolon,
    /// Any other punctuation or operator (one character, or `||`, `<=`…).
    Punct(String),
}

impl Token {
    pub(super) fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The name this token gives, when it can be one (a bare word or a quoted name;
    /// SQLite also takes a string literal as a name in most places).
    pub(super) fn name(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Quoted(w) | Token::Text(w) => Some(w),
            _ => None,
        }
    }
}

/// Why a text is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// Splits `sql` into tokens as SQLite's tokenizer would.
pub(super) fn tokenize(sql: &str) -> Result<Vec<Token>, Refusal> {
    Ok(tokenize_spans(sql)?.into_iter().map(|(t, _)| t).collect())
}

/// [`tokenize`], each token with the byte range of `sql` it came from.
pub(super) fn tokenize_spans(sql: &str) -> Result<Vec<(Token, std::ops::Range<usize>)>, Refusal> {
    let b = sql.as_bytes();
    let mut out: Vec<(Token, std::ops::Range<usize>)> = Vec::new();
    let mut starts_at = 0;
    let mut tokens_seen = 0;
    let mut i = 0;
    // The text between two byte positions (always at ASCII boundaries here).
    let text = |from: usize, to: usize| sql[from..to].to_owned();
    while i < b.len() {
        // Every token pushed in this round spans from here to where `i` ends up.
        if out.len() > tokens_seen {
            for t in &mut out[tokens_seen..] {
                t.1 = starts_at..i;
            }
            tokens_seen = out.len();
        }
        starts_at = i;
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").map_or(b.len(), |at| i + 2 + at + 2);
                i = end;
            }
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                let mut value = Vec::new();
                let mut j = i + 1;
                loop {
                    let Some(&d) = b.get(j) else {
                        return refuse("a quote is not closed");
                    };
                    if d == close {
                        if close != b']' && b.get(j + 1) == Some(&close) {
                            value.push(d);
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    value.push(d);
                    j += 1;
                }
                let value = String::from_utf8(value).map_err(|_| Refusal("not UTF-8".into()))?;
                push(
                    &mut out,
                    if c == b'\'' {
                        Token::Text(value)
                    } else {
                        Token::Quoted(value)
                    },
                );
                i = j + 1;
            }
            b'x' | b'X' if b.get(i + 1) == Some(&b'\'') => {
                let end = sql[i + 2..]
                    .find('\'')
                    .ok_or_else(|| Refusal("a blob literal is not closed".into()))?;
                let hex = &sql[i + 2..i + 2 + end];
                if !hex.len().is_multiple_of(2) || !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return refuse("a blob literal is not hex");
                }
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).expect("checked hex"))
                    .collect();
                push(&mut out, Token::Blob(bytes));
                i += 2 + end + 1;
            }
            b';' => {
                push(&mut out, Token::Semicolon);
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                push(&mut out, Token::Number(text(start, i)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                push(&mut out, Token::Word(text(start, i)));
            }
            _ => {
                let two = sql.get(i..i + 2);
                let len = match two {
                    Some("||" | "<=" | ">=" | "<>" | "!=" | "==" | "<<" | ">>" | "->") => 2,
                    _ => 1,
                };
                let end = (i + len).min(b.len());
                let piece = sql
                    .get(i..end)
                    .or_else(|| sql.get(i..i + sql[i..].chars().next().map_or(1, char::len_utf8)))
                    .ok_or_else(|| Refusal("unreadable text".into()))?;
                push(&mut out, Token::Punct(piece.to_owned()));
                i += piece.len();
            }
        }
    }
    for t in &mut out[tokens_seen..] {
        t.1 = starts_at..i;
    }
    Ok(out)
}

fn push(out: &mut Vec<(Token, std::ops::Range<usize>)>, token: Token) {
    out.push((token, 0..0));
}

/// A cursor over tokens.
pub(super) struct Tokens {
    pub toks: Vec<Token>,
    pub at: usize,
}

impl Tokens {
    pub(super) fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    pub(super) fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    pub(super) fn eat(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A (possibly `main.`-qualified) object name.
    pub(super) fn object_name(&mut self) -> Result<String, Refusal> {
        let first = self
            .next()
            .and_then(|t| t.name().map(str::to_owned))
            .ok_or_else(|| Refusal("no object name".into()))?;
        if matches!(self.peek(), Some(Token::Punct(p)) if p == ".") {
            self.at += 1;
            if !first.eq_ignore_ascii_case("main") {
                return refuse(format!("it names the schema {first:?}, not main"));
            }
            return self
                .next()
                .and_then(|t| t.name().map(str::to_owned))
                .ok_or_else(|| Refusal("no object name".into()));
        }
        Ok(first)
    }
}
