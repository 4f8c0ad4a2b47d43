//! `encrypt`, `rekey` and `decrypt`, and where keys come from: the environment or a
//! file, never a command-line value.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use idstore_repo::Key;
use serde_json::json;
use zeroize::Zeroizing;

use super::{Ctx, backup};
use crate::cli::{ConvertArgs, DecryptArgs};

/// The key from `--key-file` or `--new-key-file` (`file`), else from the variable
/// `var` (empty: no key). Both at once is refused, so there is never a doubt which
/// key was used. Nothing here ever shows the key.
pub(super) fn read_key(var: &str, file: Option<&Path>, file_flag: &str) -> Result<Option<Key>> {
    let from_env = std::env::var(var)
        .ok()
        .map(Zeroizing::new)
        .filter(|v| !v.is_empty());
    match (file, from_env) {
        (Some(_), Some(_)) => Err(anyhow!(
            "a key came from both {var} and {file_flag}; give it one way"
        )),
        (Some(path), None) => {
            let content = std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .with_context(|| format!("could not read the key file {}", path.display()))?;
            Key::from_file_content(content)
                .map(Some)
                .with_context(|| format!("the key file {} holds no usable key", path.display()))
        }
        (None, Some(text)) => Key::new(text.as_str())
            .map(Some)
            .with_context(|| format!("{var} holds no usable key")),
        (None, None) => Ok(None),
    }
}

fn new_key(args: &ConvertArgs) -> Result<Key> {
    read_key(
        "IDSTORE_NEW_KEY",
        args.new_key_file.as_deref(),
        "--new-key-file",
    )?
    .ok_or_else(|| anyhow!("give the new key with IDSTORE_NEW_KEY or --new-key-file"))
}

pub(super) fn encrypt(ctx: &Ctx, args: &ConvertArgs) -> Result<()> {
    if ctx.key.is_some() {
        return Err(anyhow!(
            "encrypt takes a plain file, but a current key was given (IDSTORE_KEY or --key-file); to change a key, use rekey"
        ));
    }
    let key = new_key(args)?;
    convert(ctx, Some(&key), !args.no_backup, "encrypted")
}

pub(super) fn rekey(ctx: &Ctx, args: &ConvertArgs) -> Result<()> {
    if ctx.key.is_none() {
        return Err(anyhow!(
            "rekey needs the current key (IDSTORE_KEY or --key-file); to encrypt a plain file, use encrypt"
        ));
    }
    let key = new_key(args)?;
    convert(ctx, Some(&key), !args.no_backup, "re-keyed")
}

pub(super) fn decrypt(ctx: &Ctx, args: &DecryptArgs) -> Result<()> {
    if ctx.key.is_none() {
        return Err(anyhow!(
            "decrypt needs the current key (IDSTORE_KEY or --key-file)"
        ));
    }
    convert(ctx, None, !args.no_backup, "decrypted")
}

fn convert(ctx: &Ctx, new_key: Option<&Key>, with_backup: bool, done: &str) -> Result<()> {
    let path = &ctx.db.path;
    let backup_path = if with_backup {
        // A copy of the file as it is, under its current key (or none).
        let mut conn = ctx.options().create(false).read_only(true).open(path)?;
        Some(backup(&mut conn, path)?)
    } else {
        None
    };
    let converted = idstore_repo::convert(path, &ctx.options(), new_key)?;
    ctx.out.emit(
        json!({
            "database": path.display().to_string(),
            "encrypted": converted.encrypted,
            "tables": converted.tables,
            "rows": converted.rows,
            "backup": backup_path.as_ref().map(|p| p.display().to_string()),
        }),
        || {
            let mut lines = Vec::new();
            if let Some(b) = &backup_path {
                lines.push(format!("backup: {}", b.display()));
            }
            lines.push(format!(
                "{done} {}: {} tables, {} rows, every one checked",
                path.display(),
                converted.tables,
                converted.rows
            ));
            lines.join("\n")
        },
    );
    Ok(())
}
