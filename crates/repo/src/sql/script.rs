//! idstore's own migration scripts (its `up.sql` and `down.sql`), read from their
//! tokens: their statements, one by one, and every object each leaves in the file,
//! with its definition as `sqlite_master` keeps it. Nothing here touches a
//! database.

use super::tokens::{Refusal, Token, refuse, tokenize_spans};

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
