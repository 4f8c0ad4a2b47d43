//! The fuzz target's entry point: every reader of SQL text run on one input. It uses
//! nothing but its sibling readers (`super::tokens`, `super::from_file`,
//! `super::script`) and `std`, so the fuzz target (`fuzz/fuzz_targets/sqltext.rs`)
//! compiles these four files alone, without the crate, Diesel or SQLite; the
//! property tests reach it through `fixtures::fuzz_sqltext`.

use super::from_file::{Kind, check_create, parse_inserts, trigger_event};
use super::script::{created_objects, statements};
use super::tokens::{tokenize, tokenize_spans};

/// Every reader of SQL text run on `input`: none may panic, every token's span lies
/// inside the input on character boundaries, and a definition accepted as one
/// `CREATE` starts with `CREATE`.
pub(crate) fn every_reader(input: &str) {
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
