//! `encrypt`, `rekey` and `decrypt`: a file converted in place, under a new key or
//! none. The new key comes from the environment or a file, never a command line.

use idstore_repo::encryption::{ConvertOptions, Key};
use idstore_repo::{Database, Error, ErrorKind, OpenOptions};
use serde_json::json;

use crate::cli::{ConvertArgs, DecryptArgs};
use crate::context::Ctx;
use crate::output::shown_path;

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
    let options = target(ctx, args)?;
    convert(ctx, ctx.options(), &options, "encrypted")
}

pub(super) fn rekey(ctx: &Ctx, args: &ConvertArgs) -> Result<(), Error> {
    if ctx.key.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "rekey needs the current key (IDSTORE_KEY or --key-file); to encrypt a plain file, use encrypt",
        ));
    }
    let options = target(ctx, args)?;
    // --sqlcipher-compat names the format to write: the current one is found.
    let current = OpenOptions::new()
        .busy_timeout(ctx.busy_timeout)
        .key(ctx.key.clone());
    convert(ctx, current, &options, "re-keyed")
}

pub(super) fn decrypt(ctx: &Ctx, args: &DecryptArgs) -> Result<(), Error> {
    if ctx.key.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidKey,
            "decrypt needs the current key (IDSTORE_KEY or --key-file)",
        ));
    }
    let mut options = ConvertOptions::new(None);
    if !args.no_backup {
        options = options.backup_to(ctx.backup_path());
    }
    convert(ctx, ctx.options(), &options, "decrypted")
}

/// The conversion to the new key as the command line asks: the format to write,
/// the backup, the removal of plaintext copies.
fn target(ctx: &Ctx, args: &ConvertArgs) -> Result<ConvertOptions, Error> {
    let mut options = ConvertOptions::new(Some(new_key(args)?))
        .remove_plaintext_copies(args.remove_plaintext_copies);
    if let Some(version) = ctx.sqlcipher_compat {
        options = options.sqlcipher_compatibility(version);
    }
    if !args.no_backup {
        options = options.backup_to(ctx.backup_path());
    }
    Ok(options)
}

fn convert(
    ctx: &Ctx,
    current: OpenOptions,
    options: &ConvertOptions,
    done: &str,
) -> Result<(), Error> {
    let path = &ctx.db.path;
    let converted = Database::convert(path, &current, options)?;
    let format_change = match (converted.previous_format, converted.cipher_format) {
        (Some(before), Some(after)) if before != after => Some(format!(
            "its format changed from {before} to {after}, as --sqlcipher-compat asked: programs configured for {before} no longer open it"
        )),
        _ => None,
    };
    let backup_holds = match (
        &converted.backup,
        converted.encrypted,
        converted.backup_encrypted,
    ) {
        (None, ..) => None,
        (Some(_), true, _) => Some("encrypted with the new key"),
        (Some(_), false, true) => Some("encrypted with the key the file had"),
        (Some(_), false, false) => Some("plaintext"),
    };
    ctx.out.emit(
        json!({
            "database": path.display().to_string(),
            "encrypted": converted.encrypted,
            "sqlcipher_format": converted.cipher_format,
            "previous_format": converted.previous_format,
            "tables": converted.tables,
            "rows": converted.rows,
            "backup": converted.backup.as_ref().map(|p| p.display().to_string()),
            "backup_holds": backup_holds,
            "removed_plaintext_copies": converted.removed_copies.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "plaintext_copies": converted.plaintext_copies.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "not_removed": converted.not_removed.iter().map(|(p, why)| json!({"path": p.display().to_string(), "why": why})).collect::<Vec<_>>(),
            "page_size_changed": converted.page_size_changed.map(|(before, after)| json!({"before": before, "after": after})),
        }),
        || {
            let mut lines = Vec::new();
            if let (Some(b), Some(holds)) = (&converted.backup, backup_holds) {
                lines.push(format!("backup: {} ({holds})", shown_path(b)));
            }
            let format = match converted.cipher_format {
                Some(f) => format!(" ({f} format)"),
                None => String::new(),
            };
            lines.push(format!(
                "{done} {}{format}: {} tables, {} rows, every one checked",
                shown_path(path),
                converted.tables,
                converted.rows
            ));
            if let Some(change) = &format_change {
                lines.push(format!("note: {change}"));
            }
            if let Some((before, after)) = converted.page_size_changed {
                lines.push(format!(
                    "note: its page size changed from {before} to {after} bytes, the page size of its SQLCipher format (its key alone must open it); every row is kept"
                ));
            }
            for (name, why) in &converted.not_removed {
                lines.push(format!(
                    "left alone: {} ({}); nothing was written through it",
                    shown_path(name),
                    crate::output::Shown(why)
                ));
            }
            for removed in &converted.removed_copies {
                lines.push(format!("removed plaintext copy: {}", shown_path(removed)));
            }
            if !converted.removed_copies.is_empty() {
                lines.push(
                    "note: each was overwritten with zeros before it was deleted; on flash storage, copy-on-write filesystems and snapshots the old blocks may survive"
                        .to_owned(),
                );
            }
            lines.join("\n")
        },
    );
    if converted.encrypted && !converted.plaintext_copies.is_empty() && !ctx.out.quiet {
        let names: Vec<String> = converted
            .plaintext_copies
            .iter()
            .map(|p| shown_path(p))
            .collect();
        crate::output::note(&format!(
            "warning: plaintext copies of this database remain beside it, readable by anyone who can read the files: {}; --remove-plaintext-copies overwrites them with zeros and deletes them",
            names.join(", ")
        ));
    }
    Ok(())
}
