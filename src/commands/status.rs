//! `status`: where the file stands, read without writing anything.

use idstore_repo::migrations::Version;
use idstore_repo::{Database, Error};
use serde_json::json;

use crate::context::Ctx;
use crate::output::{Shown, shown_or_none};

pub(super) fn status(ctx: &Ctx) -> Result<(), Error> {
    let shown_path = crate::output::shown_path(&ctx.db.path);
    if ctx.key.is_none() && ctx.db.path.is_file() && Database::is_encrypted(&ctx.db.path)? {
        // All that can be told without the key.
        let leftovers = Database::leftover_copies(&ctx.db.path);
        ctx.out.emit(
            json!({
                "database": ctx.db.path.display().to_string(),
                "encrypted": true,
                "readable": false,
                "leftover_copies": leftovers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
            || {
                let mut text = format!(
                    "database:  {shown_path}\nencrypted: yes (or it is not an SQLite database at all); give its key with IDSTORE_KEY or --key-file to see the rest"
                );
                for copy in &leftovers {
                    text.push_str(&leftover_line(copy));
                }
                text
            },
        );
        return Ok(());
    }
    if ctx.db.default && !ctx.db.path.exists() {
        // A fresh machine: nothing to read, and a read creates nothing.
        ctx.out.emit(
            json!({
                "database": ctx.db.path.display().to_string(),
                "exists": false,
                "readable": false,
            }),
            || {
                format!(
                    "database: {shown_path}
not created yet: `idstore migrate` creates it"
                )
            },
        );
        return Ok(());
    }
    let mut db = ctx.open_read()?;
    let st = db.status()?;
    let format = db.cipher_format();
    let next = st
        .next_step()
        .map(|(version, does)| json!({ "version": version, "does": does }));
    let doc = json!({
        "database": ctx.db.path.display().to_string(),
        "exists": true,
        "applied": st.applied,
        "pending": st.pending,
        "unknown": st.unknown,
        "preview": st.preview,
        "legacy": st.legacy,
        "paused_at": st.paused_at(),
        "servable": st.servable(),
        "next_step": next,
        "active_did": st.active_did,
        "accounts": st.accounts,
        "foreign_objects": st.foreign_objects,
        "leftover_copies": st.leftover_copies.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "encrypted": format.is_some(),
        "sqlcipher_format": format,
        "readable": true,
    });
    ctx.out.emit(doc, || {
        let list = |v: &[Version]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(Version::as_str).collect::<Vec<_>>().join(", ")
            }
        };
        let mut lines = vec![
            format!("database: {shown_path}"),
            format!(
                "legacy:   {}",
                if st.legacy {
                    "yes (run `idstore migrate` to adopt it)"
                } else {
                    "no"
                }
            ),
            format!(
                "encrypted: {}",
                match format {
                    Some(v) => format!("yes ({v} format)"),
                    None => "no".to_owned(),
                }
            ),
            format!("applied:  {}", list(&st.applied)),
            format!("pending:  {}", list(&st.pending)),
        ];
        if !st.unknown.is_empty() {
            lines.push(format!(
                "unknown:  {} (written by a newer idstore)",
                Shown(&list(&st.unknown))
            ));
        }
        if !st.preview.is_empty() {
            lines.push(format!(
                "preview:  {} (a preview build of idstore's steps: `idstore migrate` brings the file to the current ones, every row kept)",
                list(&st.preview)
            ));
        }
        if let Some(at) = st.paused_at() {
            lines.push(format!(
                "step:     paused at {at}, the transition step: idstore serves the file, and settings.activeDid is kept in step for older app builds"
            ));
        }
        if let Some((v, does)) = st.next_step() {
            lines.push(format!("next:     {v} {does}"));
        }
        lines.push(format!(
            "active:   {}",
            shown_or_none(st.active_did.as_deref())
        ));
        lines.push(format!("accounts: {}", st.accounts));
        for o in &st.foreign_objects {
            lines.push(format!(
                "foreign:  {o}, not idstore's (migrate and rollback refuse while it would act on their writes)"
            ));
        }
        for copy in &st.leftover_copies {
            lines.push(leftover_line(copy).trim_start().to_owned());
        }
        lines.join("\n")
    });
    Ok(())
}

/// A line naming what an interrupted conversion left beside the file.
fn leftover_line(copy: &std::path::Path) -> String {
    format!(
        "\nleftover: {}, left by an interrupted conversion; it may hold the data unencrypted (the next command given the key removes it, or `idstore repair`)",
        crate::output::shown_path(copy)
    )
}
