//! SQL text read from a file, read as data: a tokenizer after SQLite's own, and what
//! it lets idstore check without running anything. Is a stored definition exactly
//! one `CREATE` statement for the object it claims to be? What does a trigger fire
//! on? What rows did an older idstore keep as `INSERT` text?
//!
//! Nothing here touches a database.

use std::fmt;

/// One token; whitespace and comments are dropped.
#[derive(Debug, Clone, PartialEq)]
enum Token {
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
    fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The name this token gives, when it can be one (a bare word or a quoted name;
    /// SQLite also takes a string literal as a name in most places).
    fn name(&self) -> Option<&str> {
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

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// Splits `sql` into tokens as SQLite's tokenizer would.
fn tokenize(sql: &str) -> Result<Vec<Token>, Refusal> {
    Ok(tokenize_spans(sql)?.into_iter().map(|(t, _)| t).collect())
}

/// [`tokenize`], each token with the byte range of `sql` it came from.
fn tokenize_spans(sql: &str) -> Result<Vec<(Token, std::ops::Range<usize>)>, Refusal> {
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

/// What kind of object a stored definition must create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Table,
    Index,
    Trigger,
}

impl Kind {
    /// The kind as `sqlite_master.type` names it.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "table" => Some(Kind::Table),
            "index" => Some(Kind::Index),
            "trigger" => Some(Kind::Trigger),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Table => "TABLE",
            Kind::Index => "INDEX",
            Kind::Trigger => "TRIGGER",
        }
    }
}

/// A cursor over tokens.
struct Tokens {
    toks: Vec<Token>,
    at: usize,
}

impl Tokens {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A (possibly `main.`-qualified) object name.
    fn object_name(&mut self) -> Result<String, Refusal> {
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

/// Checks that `sql` is exactly one `CREATE` statement making the object `kind`
/// named `name` in the main schema (on table `on`, for an index or a trigger), so
/// running it can do nothing else. The refusal says why not.
pub(crate) fn check_create(
    sql: &str,
    kind: Kind,
    name: &str,
    on: Option<&str>,
) -> Result<(), Refusal> {
    let toks = tokenize(sql)?;
    let mut t = Tokens { toks, at: 0 };
    if !t.eat("CREATE") {
        return refuse("it is not a CREATE statement");
    }
    if t.eat("TEMP") || t.eat("TEMPORARY") {
        return refuse("it creates a temporary object");
    }
    if kind == Kind::Index {
        t.eat("UNIQUE");
    }
    if !t.eat(kind.word()) {
        return refuse(format!(
            "it does not create a {}",
            kind.word().to_lowercase()
        ));
    }
    if t.eat("IF") && !(t.eat("NOT") && t.eat("EXISTS")) {
        return refuse("it is not valid SQL");
    }
    let named = t.object_name()?;
    if !named.eq_ignore_ascii_case(name) {
        return refuse(format!("it creates {named:?}, not {name:?}"));
    }
    match kind {
        Kind::Table => {
            if t.peek().is_some_and(|x| x.is_word("AS")) {
                return refuse("it creates the table from a query");
            }
            single_statement_end(&mut t)
        }
        Kind::Index => {
            if !t.eat("ON") {
                return refuse("it names no table");
            }
            check_on(&mut t, on)?;
            single_statement_end(&mut t)
        }
        Kind::Trigger => {
            // Up to ON: the time and the event.
            while let Some(tok) = t.peek() {
                if tok.is_word("ON") {
                    break;
                }
                if tok == &Token::Semicolon {
                    return refuse("it is more than one statement");
                }
                t.at += 1;
            }
            if !t.eat("ON") {
                return refuse("it names no table");
            }
            check_on(&mut t, on)?;
            trigger_body_end(&mut t)
        }
    }
}

fn check_on(t: &mut Tokens, on: Option<&str>) -> Result<(), Refusal> {
    let table = t.object_name()?;
    match on {
        Some(expected) if !table.eq_ignore_ascii_case(expected) => {
            refuse(format!("it is on {table:?}, not on {expected:?}"))
        }
        _ => Ok(()),
    }
}

/// The rest of a statement without a body: balanced parentheses, no `;` but one
/// at the very end.
fn single_statement_end(t: &mut Tokens) -> Result<(), Refusal> {
    let mut depth = 0i32;
    while let Some(tok) = t.next() {
        match tok {
            Token::Punct(p) if p == "(" => depth += 1,
            Token::Punct(p) if p == ")" => {
                depth -= 1;
                if depth < 0 {
                    return refuse("its parentheses do not balance");
                }
            }
            Token::Semicolon => {
                return if t.peek().is_none() && depth == 0 {
                    Ok(())
                } else {
                    refuse("it is more than one statement")
                };
            }
            _ => {}
        }
    }
    if depth == 0 {
        Ok(())
    } else {
        refuse("its parentheses do not balance")
    }
}

/// A trigger's `BEGIN … END`: statements separated by `;`, ended by `END` where a
/// statement would start (a `CASE … END` inside one does not end it); nothing but
/// one `;` may follow.
fn trigger_body_end(t: &mut Tokens) -> Result<(), Refusal> {
    while let Some(tok) = t.next() {
        if tok == Token::Semicolon {
            return refuse("it is more than one statement");
        }
        if tok.is_word("BEGIN") {
            break;
        }
    }
    let mut at_start = true;
    let mut depth = 0i32;
    while let Some(tok) = t.next() {
        match tok {
            Token::Punct(p) if p == "(" => depth += 1,
            Token::Punct(p) if p == ")" => depth -= 1,
            Token::Semicolon if depth == 0 => {
                at_start = true;
                continue;
            }
            ref w if at_start && depth == 0 && w.is_word("END") => {
                if t.peek() == Some(&Token::Semicolon) {
                    t.at += 1;
                }
                return if t.peek().is_none() {
                    Ok(())
                } else {
                    refuse("it is more than one statement")
                };
            }
            _ => {}
        }
        at_start = false;
    }
    refuse("its body has no END")
}

/// What writes fire a trigger: its table, its event, and for `UPDATE OF`, the
/// columns (empty: any update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TriggerEvent {
    pub table: String,
    pub event: Event,
    pub columns: Vec<String>,
}

/// A trigger's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Insert,
    Update,
    Delete,
}

/// What fires the trigger `sql` defines (`None` when the text does not say, which
/// its callers treat as "anything").
pub(crate) fn trigger_event(sql: &str) -> Option<TriggerEvent> {
    let toks = tokenize(sql).ok()?;
    let mut t = Tokens { toks, at: 0 };
    if t.eat("CREATE") && !t.eat("TEMP") {
        t.eat("TEMPORARY");
    }
    if !t.eat("TRIGGER") {
        return None;
    }
    if t.eat("IF") {
        t.eat("NOT");
        t.eat("EXISTS");
    }
    t.object_name().ok()?;
    let _ = t.eat("BEFORE") || t.eat("AFTER") || (t.eat("INSTEAD") && t.eat("OF"));
    let event = if t.eat("INSERT") {
        Event::Insert
    } else if t.eat("DELETE") {
        Event::Delete
    } else if t.eat("UPDATE") {
        Event::Update
    } else {
        return None;
    };
    let mut columns = Vec::new();
    if event == Event::Update && t.eat("OF") {
        loop {
            columns.push(t.next()?.name()?.to_owned());
            match t.peek() {
                Some(Token::Punct(p)) if p == "," => t.at += 1,
                _ => break,
            }
        }
    }
    if !t.eat("ON") {
        return None;
    }
    let table = t.object_name().ok()?;
    Some(TriggerEvent {
        table,
        event,
        columns,
    })
}

/// A literal value in an `INSERT` an older idstore kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One row an older idstore kept as `INSERT INTO "t" ("c", …) VALUES (…);`: its
/// columns and values.
pub(crate) type KeptRow = (Vec<String>, Vec<Literal>);

/// Reads the rows an older idstore kept for `table` as `INSERT` text, literal by
/// literal, without running any of it: anything but `INSERT INTO table (columns)
/// VALUES (literals);` is refused.
pub(crate) fn parse_inserts(text: &str, table: &str) -> Result<Vec<KeptRow>, Refusal> {
    let toks = tokenize(text)?;
    let mut t = Tokens { toks, at: 0 };
    let mut rows = Vec::new();
    while t.peek().is_some() {
        if !(t.eat("INSERT") && t.eat("INTO")) {
            return refuse("it is not an INSERT statement");
        }
        let named = t.object_name()?;
        if !named.eq_ignore_ascii_case(table) {
            return refuse(format!("it inserts into {named:?}, not {table:?}"));
        }
        let columns = list(&mut t, |tok| tok.name().map(str::to_owned))?;
        if !t.eat("VALUES") {
            return refuse("it has no VALUES");
        }
        let values = list_literals(&mut t)?;
        if columns.len() != values.len() {
            return refuse("its columns and values do not match");
        }
        if t.next() != Some(Token::Semicolon) {
            return refuse("a statement does not end with ;");
        }
        rows.push((columns, values));
    }
    Ok(rows)
}

/// `( item, item, … )` of single tokens.
fn list<T>(t: &mut Tokens, item: impl Fn(&Token) -> Option<T>) -> Result<Vec<T>, Refusal> {
    if !matches!(t.next(), Some(Token::Punct(p)) if p == "(") {
        return refuse("a list does not start with (");
    }
    let mut out = Vec::new();
    loop {
        let tok = t
            .next()
            .ok_or_else(|| Refusal("a list is cut short".into()))?;
        out.push(item(&tok).ok_or_else(|| Refusal("a list holds something else".into()))?);
        match t.next() {
            Some(Token::Punct(p)) if p == "," => {}
            Some(Token::Punct(p)) if p == ")" => return Ok(out),
            _ => return refuse("a list is not closed"),
        }
    }
}

/// `( literal, … )`, a literal being NULL, a (signed) number, a string or a blob.
fn list_literals(t: &mut Tokens) -> Result<Vec<Literal>, Refusal> {
    if !matches!(t.next(), Some(Token::Punct(p)) if p == "(") {
        return refuse("VALUES does not start with (");
    }
    let mut out = Vec::new();
    loop {
        let mut tok = t
            .next()
            .ok_or_else(|| Refusal("VALUES is cut short".into()))?;
        let negative = matches!(&tok, Token::Punct(p) if p == "-");
        if negative {
            tok = t
                .next()
                .ok_or_else(|| Refusal("VALUES is cut short".into()))?;
        }
        let value = match tok {
            Token::Word(w) if w.eq_ignore_ascii_case("NULL") && !negative => Literal::Null,
            Token::Text(s) if !negative => Literal::Text(s),
            Token::Blob(b) if !negative => Literal::Blob(b),
            Token::Number(n) => {
                let n = if negative { format!("-{n}") } else { n };
                match n.parse::<i64>() {
                    Ok(i) => Literal::Integer(i),
                    Err(_) => Literal::Real(
                        n.parse::<f64>()
                            .map_err(|_| Refusal(format!("{n:?} is not a number")))?,
                    ),
                }
            }
            _ => return refuse("VALUES holds something that is not a literal"),
        };
        out.push(value);
        match t.next() {
            Some(Token::Punct(p)) if p == "," => {}
            Some(Token::Punct(p)) if p == ")" => return Ok(out),
            _ => return refuse("VALUES is not closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_create_statement_for_the_named_object_passes() {
        for (sql, kind, name, on) in [
            (
                "CREATE TABLE active_identity (id INTEGER PRIMARY KEY CHECK (id = 1), activeDid TEXT REFERENCES accounts(did) ON DELETE SET NULL)",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TABLE \"settings\" (id INTEGER);",
                Kind::Table,
                "settings",
                None,
            ),
            (
                "CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts (did)",
                Kind::Index,
                "idx_accounts_did_unique",
                Some("accounts"),
            ),
            (
                "CREATE TRIGGER app_settings_touch AFTER UPDATE OF firstName ON settings\n BEGIN UPDATE settings SET lastName = CASE WHEN 1 THEN lastName END WHERE id = NEW.id; SELECT 1; END",
                Kind::Trigger,
                "app_settings_touch",
                Some("settings"),
            ),
            (
                "CREATE TRIGGER t AFTER INSERT ON main.settings BEGIN SELECT ';'; END;",
                Kind::Trigger,
                "t",
                Some("settings"),
            ),
        ] {
            assert_eq!(check_create(sql, kind, name, on), Ok(()), "{sql}");
        }
    }

    #[test]
    fn anything_more_or_other_is_refused() {
        for (sql, kind, name, on) in [
            (
                "CREATE TABLE active_identity (id INTEGER); ATTACH DATABASE '/elsewhere/x.db' AS p; CREATE TABLE p.t(a); INSERT INTO p.t VALUES (1);",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TABLE other (id INTEGER)",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TEMP TABLE active_identity (id)",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TABLE p.active_identity (id)",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TABLE active_identity AS SELECT * FROM accounts",
                Kind::Table,
                "active_identity",
                None,
            ),
            ("DROP TABLE accounts", Kind::Table, "accounts", None),
            (
                "CREATE INDEX i ON accounts(did)",
                Kind::Index,
                "i",
                Some("settings"),
            ),
            (
                "CREATE TRIGGER t AFTER INSERT ON settings BEGIN SELECT 1; END; DELETE FROM accounts",
                Kind::Trigger,
                "t",
                Some("settings"),
            ),
            (
                "CREATE TRIGGER t AFTER INSERT ON settings BEGIN SELECT 1; END; CREATE TRIGGER u AFTER INSERT ON settings BEGIN SELECT 1; END",
                Kind::Trigger,
                "t",
                Some("settings"),
            ),
            (
                "CREATE TABLE active_identity (id TEXT DEFAULT 'x",
                Kind::Table,
                "active_identity",
                None,
            ),
            (
                "CREATE TABLE active_identity (id) /* ; */ ; SELECT 1",
                Kind::Table,
                "active_identity",
                None,
            ),
        ] {
            assert!(check_create(sql, kind, name, on).is_err(), "{sql}");
        }
    }

    #[test]
    fn a_triggers_event_is_read() {
        assert_eq!(
            trigger_event(
                "CREATE TRIGGER x AFTER UPDATE OF firstName, \"lastName\" ON settings BEGIN SELECT 1; END"
            ),
            Some(TriggerEvent {
                table: "settings".into(),
                event: Event::Update,
                columns: vec!["firstName".into(), "lastName".into()],
            })
        );
        assert_eq!(
            trigger_event("CREATE TRIGGER IF NOT EXISTS evil BEFORE DELETE ON main.accounts BEGIN SELECT 1; END")
                .map(|e| (e.table, e.event)),
            Some(("accounts".into(), Event::Delete))
        );
        assert_eq!(
            trigger_event("create trigger t insert on accounts begin select 1; end")
                .map(|e| e.event),
            Some(Event::Insert)
        );
    }

    #[test]
    fn kept_insert_text_is_read_as_literals_and_nothing_else() {
        let rows = parse_inserts(
            "INSERT INTO \"active_identity\" (\"id\", \"activeDid\", \"n\", \"r\", \"b\") VALUES (1, 'it''s', -5, 1.5e3, X'00ff');\nINSERT INTO \"active_identity\" (\"id\", \"activeDid\", \"n\", \"r\", \"b\") VALUES (2, NULL, NULL, NULL, NULL);",
            "active_identity",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].1,
            vec![
                Literal::Integer(1),
                Literal::Text("it's".into()),
                Literal::Integer(-5),
                Literal::Real(1500.0),
                Literal::Blob(vec![0, 255])
            ]
        );
        for bad in [
            "INSERT INTO \"active_identity\" (\"id\") VALUES (1); ATTACH DATABASE 'x' AS p;",
            "INSERT INTO \"accounts\" (\"id\") VALUES (1);",
            "INSERT INTO \"active_identity\" (\"id\") VALUES (abs(1));",
            "INSERT INTO \"active_identity\" (\"id\") SELECT 1;",
            "INSERT INTO \"active_identity\" (\"id\") VALUES (1)",
        ] {
            assert!(parse_inserts(bad, "active_identity").is_err(), "{bad}");
        }
    }
}

/// A `CREATE` statement of a script: the kind of object (`table`, `index`,
/// `trigger`, `view`), its name, and its text as `sqlite_master` keeps it (from
/// `CREATE` to its end, without the `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    pub kind: &'static str,
    pub name: String,
    /// The table it is on (its own name, for a table).
    pub tbl_name: String,
    pub sql: String,
}

/// The statements of `script` (one of idstore's own migrations), in order: each
/// statement's tokens, as ranges of `tokens`, with its text (from its first token to
/// the one before its `;`; a trigger's runs to its `END`).
fn split_statements(
    script: &str,
    tokens: &[(Token, std::ops::Range<usize>)],
) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let start = i;
        let is_trigger = tokens[i].0.is_word("CREATE")
            && tokens[i..]
                .iter()
                .take(4)
                .any(|(t, _)| t.is_word("TRIGGER"));
        let mut end = i;
        while end < tokens.len() {
            if tokens[end].0 == Token::Semicolon
                && (!is_trigger || (end > 0 && tokens[end - 1].0.is_word("END")))
            {
                break;
            }
            end += 1;
        }
        if end > start {
            let text = tokens[start].1.start..tokens[end - 1].1.end;
            debug_assert!(text.end <= script.len());
            found.push((start..end, text));
        }
        i = end + 1;
    }
    found
}

/// The text of each statement of `script` (one of idstore's own migrations), in
/// order, without its `;`.
pub(crate) fn statements(script: &str) -> Result<Vec<&str>, Refusal> {
    let tokens = tokenize_spans(script)?;
    Ok(split_statements(script, &tokens)
        .into_iter()
        .map(|(_, text)| &script[text])
        .collect())
}

/// Every object `script` (one of idstore's own migrations) leaves in the file's main
/// schema, in the order of its `CREATE TABLE`, `INDEX`, `TRIGGER` and `VIEW`
/// statements: `TEMP` objects are left out, and so is an object a later `DROP` of
/// the same script removes again.
pub(crate) fn created_objects(script: &str) -> Result<Vec<Created>, Refusal> {
    let tokens = tokenize_spans(script)?;
    let mut found: Vec<Created> = Vec::new();
    for (range, _) in split_statements(script, &tokens) {
        let (start, end) = (range.start, range.end);
        let words: Vec<&Token> = tokens[start..end].iter().map(|(t, _)| t).collect();
        if words[0].is_word("DROP") {
            let mut k = 2;
            if words.get(k).is_some_and(|w| w.is_word("IF")) {
                k += 2;
            }
            if let Some(Token::Word(n) | Token::Quoted(n)) = words.get(k) {
                found.retain(|c| !c.name.eq_ignore_ascii_case(n));
            }
            continue;
        }
        if !words[0].is_word("CREATE") {
            continue;
        }
        let mut k = 1;
        let mut temp = false;
        while let Some(w) = words.get(k) {
            if w.is_word("TEMP") || w.is_word("TEMPORARY") {
                temp = true;
            } else if !w.is_word("UNIQUE") {
                break;
            }
            k += 1;
        }
        let kind = match words.get(k) {
            Some(w) if w.is_word("TABLE") => "table",
            Some(w) if w.is_word("INDEX") => "index",
            Some(w) if w.is_word("TRIGGER") => "trigger",
            Some(w) if w.is_word("VIEW") => "view",
            _ => continue,
        };
        if temp {
            continue;
        }
        k += 1;
        let if_not_exists = words.get(k).is_some_and(|w| w.is_word("IF"));
        if if_not_exists {
            k += 3;
        }
        let name = match words.get(k) {
            Some(Token::Word(n) | Token::Quoted(n)) => n.clone(),
            _ => return refuse("a CREATE statement names no object"),
        };
        if if_not_exists && found.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
            continue;
        }
        let unique = words[1..k].iter().any(|w| w.is_word("UNIQUE"));
        let name_at = tokens[start + k].1.start;
        let tbl_name = if kind == "table" || kind == "view" {
            name.clone()
        } else {
            match words
                .iter()
                .position(|w| w.is_word("ON"))
                .and_then(|at| words.get(at + 1))
            {
                Some(Token::Word(t) | Token::Quoted(t)) => t.clone(),
                _ => return refuse("an index or trigger names no table"),
            }
        };
        // SQLite keeps `CREATE [UNIQUE] KIND` and the text from the name on
        // (`IF NOT EXISTS` and `TEMP` dropped, the keywords as it spells them).
        let sql = format!(
            "CREATE {}{} {}",
            if unique { "UNIQUE " } else { "" },
            kind.to_uppercase(),
            &script[name_at..tokens[end - 1].1.end]
        );
        found.push(Created {
            kind,
            name,
            tbl_name,
            sql,
        });
    }
    Ok(found)
}

/// Every reader here run on `input`, for the fuzz target (feature `fuzzing`): none
/// may panic, every token's span lies inside the input on character boundaries,
/// and a definition accepted as one `CREATE` starts with `CREATE`.
#[cfg(feature = "fuzzing")]
pub fn fuzz(input: &str) {
    if let Ok(spans) = tokenize_spans(input) {
        for (token, r) in &spans {
            assert!(
                r.start <= r.end && r.end <= input.len(),
                "{token:?} spans {r:?} of {} bytes",
                input.len()
            );
            assert!(input.is_char_boundary(r.start) && input.is_char_boundary(r.end));
        }
    }
    for kind in [Kind::Table, Kind::Index, Kind::Trigger] {
        if check_create(input, kind, "t", Some("t")).is_ok() {
            let toks = tokenize(input).expect("an accepted definition tokenizes");
            assert!(
                toks.first().is_some_and(|t| t.is_word("CREATE")),
                "{input:?}"
            );
        }
    }
    let _ = trigger_event(input);
    let _ = parse_inserts(input, "t");
    let _ = created_objects(input);
    let _ = statements(input);
}
