//! The repo crate's integration tests, in one binary (each file under `tests/`
//! would be a binary of its own, linking SQLCipher again).

mod common;

mod architecture;
mod asynchronous;
mod bookkeeping;
mod encryption;
mod errors;
mod json;
mod migrations;
mod power;
mod properties;
mod public_api;
mod quarantine;
mod rollout;
mod shared;
mod snapshot;
mod store;
mod units;
