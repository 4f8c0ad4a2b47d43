//! The `idstore` command's end-to-end tests, in one binary (each file under
//! `tests/` would be a binary of its own, linking SQLCipher again).

mod common;

mod architecture;
mod cli;
mod corpus;
mod encrypted;
mod engines;
mod faults;
mod field;
mod manage;
mod quarantine;
mod readme;
mod rehearse;
mod reliability;
mod shared;
mod sqlcipher;
