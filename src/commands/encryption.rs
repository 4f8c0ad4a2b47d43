//! `encrypt`, `rekey` and `decrypt`: a file converted in place, under a new key or
//! none. The new key comes from the environment or a file, never a command line.

use idstore_repo::{Database, Error, ErrorKind, Key};
use serde_json::json;

use crate::cli::{ConvertArgs, DecryptArgs};
use crate::context::Ctx;
use crate::output::Shown;

fn new_key(args: &ConvertArgs) -> Result<Key, Error> {
    crate::keys::read_key(
        "IDSTORE_NEW_KEY",
        args.new_key_file.as_deref(),
        "--new-key-file",
    )?
    .ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidKey,
            "give the new key with IDSTORE_NEW_KEY or --new-key-file",
        )
    })
}

pub(super) fn encrypt(ctx: &Ctx, args: &ConvertArgs) -> Result<(), Error> {
    if ctx.key.is_some() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "encrypt takes a plain file, but a current key was given (IDSTORE_KEY or --key-file); to change a key, use rekey",
        ));
    }
    let key = new_key(args)?;
    convert(ctx, Some(&key), !args.no_backup, "encrypted")
}

pub(super) fn rekey(ctx: &Ctx, args: &ConvertArgs) -> Result<(), Error> {
    if ctx.key.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "rekey needs the current key (IDSTORE_KEY or --key-file); to encrypt a plain file, use encrypt",
        ));
    }
    let key = new_key(args)?;
    convert(ctx, Some(&key), !args.no_backup, "re-keyed")
}

pub(super) fn decrypt(ctx: &Ctx, args: &DecryptArgs) -> Result<(), Error> {
    if ctx.key.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "decrypt needs the current key (IDSTORE_KEY or --key-file)",
        ));
    }
    convert(ctx, None, !args.no_backup, "decrypted")
}

fn convert(ctx: &Ctx, new_key: Option<&Key>, with_backup: bool, done: &str) -> Result<(), Error> {
    let path = &ctx.db.path;
    let backup_path = if with_backup {
        // A copy of the file as it is, under its current key (or none).
        let path = ctx.backup_path();
        ctx.open_write()?.backup_to(&path)?;
        Some(path)
    } else {
        None
    };
    let converted = Database::convert(path, &ctx.options(), new_key)?;
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
                lines.push(format!("backup: {}", Shown(&b.display().to_string())));
            }
            lines.push(format!(
                "{done} {}: {} tables, {} rows, every one checked",
                Shown(&path.display().to_string()),
                converted.tables,
                converted.rows
            ));
            lines.join("\n")
        },
    );
    Ok(())
}
