//! SQL text read from a file, read as data, never run: is a stored definition
//! exactly one `CREATE` statement for the object it claims to be? What does a
//! trigger fire on? What rows did an older idstore keep as `INSERT` text? Each
//! answered from the tokens alone (see `tokens.rs`). Nothing here touches a
//! database.

use super::tokens::{Refusal, Token, Tokens, refuse, tokenize};

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
