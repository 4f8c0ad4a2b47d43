//! The SQL tokenizer and every reader built on it (what idstore checks of SQL text
//! read from a file, without running it): no input may panic them.
//!
//! The readers are idstore-repo's own source files, compiled here alone: they use
//! nothing but each other and `std` (`crates/repo/src/sql/fuzz.rs` says so), so
//! the target builds without the crate, Diesel or SQLite.
#![no_main]

#[path = "../../crates/repo/src/sql/from_file.rs"]
#[allow(dead_code)]
mod from_file;
#[path = "../../crates/repo/src/sql/fuzz.rs"]
mod fuzz;
#[path = "../../crates/repo/src/sql/script.rs"]
#[allow(dead_code)]
mod script;
#[path = "../../crates/repo/src/sql/tokens.rs"]
#[allow(dead_code)]
mod tokens;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        fuzz::every_reader(text);
    }
});
