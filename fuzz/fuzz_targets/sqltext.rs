//! The SQL tokenizer and every reader built on it (what idstore checks of SQL text
//! read from a file, without running it): no input may panic them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        idstore_repo::fixtures::fuzz_sqltext(text);
    }
});
