//! `active`, `active set DID`, `active clear`.

use idstore_repo::Error;
use serde_json::json;

use crate::cli::{ActiveArgs, ActiveCommand};
use crate::context::Ctx;
use crate::output::Shown;

pub(super) fn active(ctx: &Ctx, args: &ActiveArgs) -> Result<(), Error> {
    let mut db = match args.action {
        Some(_) => ctx.open_write()?,
        None => ctx.open_read()?,
    };
    let mut store = db.store()?;
    match &args.action {
        Some(ActiveCommand::Set { did }) => store.set_active_did(Some(did))?,
        Some(ActiveCommand::Clear) => store.set_active_did(None)?,
        None => {}
    }
    let now = store.active_identity()?;
    let last_updated = now.last_updated.map(|t| t.to_rfc3339());
    ctx.out.emit(
        json!({ "active_did": now.active_did, "last_updated": last_updated }),
        || match &now.active_did {
            Some(d) => format!("active identity: {}", Shown(d.as_str())),
            None => "no active identity".to_owned(),
        },
    );
    Ok(())
}
