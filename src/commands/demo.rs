//! `demo legacy PATH`: a small database written as the legacy app writes one, to try
//! the rest on. Its schema, rows and identities are
//! those of `idstore_repo::testing`'s demo.

use std::path::Path;

use idstore_repo::diesel::connection::SimpleConnection;
use idstore_repo::diesel::{Connection, SqliteConnection};
use idstore_repo::testing::{ALICE, BOB, CAROL, LEGACY_APP_SCHEMA, LEGACY_DEMO_DATA};
use idstore_repo::{Error, ErrorKind};
use serde_json::json;

use crate::cli::DemoCommand;
use crate::context::{Ctx, NewFile};
use crate::output::shown_path;

/// The identities in the demo database.
const DEMO_DIDS: [&str; 3] = [ALICE, CAROL, BOB];

pub(super) fn demo(ctx: &Ctx, cmd: &DemoCommand) -> Result<(), Error> {
    let DemoCommand::Legacy { path } = cmd;
    write_demo(path)?;
    let dids = DEMO_DIDS;
    ctx.out.emit(
        json!({ "path": path.display().to_string(), "accounts": dids, "active_did": dids[1] }),
        || {
            format!(
                "wrote a legacy database to {} with {} identities ({} active, {} stored twice)\nnext: idstore --db {} migrate",
                shown_path(path),
                dids.len(),
                dids[1],
                dids[0],
                shown_path(path)
            )
        },
    );
    Ok(())
}

/// Writes the demo file as the legacy app would (a plain connection, no WAL, foreign
/// keys off), owner-only; refuses a path that exists, and leaves nothing on failure.
fn write_demo(path: &Path) -> Result<(), Error> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::CannotOpen,
            format!("could not write the demo database {}: {e}", path.display()),
        )
    };
    let new = NewFile::watch(path);
    if !new.is_new() {
        return Err(Error::new(
            ErrorKind::Exists,
            format!(
                "{} already exists; pass a path that does not",
                path.display()
            ),
        ));
    }
    create_private(path).map_err(|e| failed(&e))?;
    let uri = path
        .to_str()
        .ok_or_else(|| failed(&"the path is not UTF-8"))?;
    let mut conn = SqliteConnection::establish(uri).map_err(|e| failed(&e))?;
    conn.batch_execute("PRAGMA foreign_keys = OFF; BEGIN;")
        .and_then(|()| conn.batch_execute(LEGACY_APP_SCHEMA))
        .and_then(|()| conn.batch_execute(LEGACY_DEMO_DATA))
        .and_then(|()| conn.batch_execute("COMMIT;"))
        .map_err(|e| failed(&e))?;
    drop(conn);
    new.keep();
    Ok(())
}

fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}
