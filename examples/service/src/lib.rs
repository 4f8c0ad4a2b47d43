//! An example service on idstore, written from its docs alone: the async handle for
//! writes, a pool with a checkout timeout for reads, settings changes taken as JSON,
//! and every error answered by its kind.

use std::path::Path;
use std::time::Duration;

use idstore_domain::{Did, SettingsChange};
use idstore_repo::{
    AsyncDatabase, Error, ErrorKind, MigrateOptions, OpenOptions, Pool, PoolOptions, SettingsScope,
};
use serde_json::{Value, json};

/// A response: an HTTP status and a JSON body.
pub type Response = (u16, Value);

/// The service's state: one handle for writes, a pool for reads.
pub struct Service {
    writes: AsyncDatabase,
    reads: Pool,
}

/// The HTTP status of an error, by its kind.
pub fn status_of(e: &Error) -> u16 {
    match e.kind() {
        ErrorKind::UnknownAccount | ErrorKind::NotFound | ErrorKind::NotQuarantined => 404,
        ErrorKind::InvalidSetting | ErrorKind::InvalidDid | ErrorKind::InvalidAccount => 400,
        ErrorKind::AccountExists | ErrorKind::LastAccount => 409,
        ErrorKind::Locked | ErrorKind::PoolTimeout => 503,
        ErrorKind::DiskFull | ErrorKind::ReadOnly => 507,
        _ => 500,
    }
}

fn answer<T: serde::Serialize>(result: Result<T, Error>) -> Response {
    match result {
        Ok(body) => (200, serde_json::to_value(body).unwrap_or(Value::Null)),
        Err(e) => (
            status_of(&e),
            json!({ "error": { "kind": e.kind().as_str(), "message": e.to_string() } }),
        ),
    }
}

impl Service {
    /// Opens (creating) and migrates the file at `path`.
    pub async fn open(path: &Path) -> Result<Service, Error> {
        let writes = AsyncDatabase::open(path, OpenOptions::new()).await?;
        writes
            .run(|db| db.migrate(&MigrateOptions::new()).map(drop))
            .await?;
        let path = path.to_owned();
        let reads = tokio::task::spawn_blocking(move || {
            Pool::with_options(
                &path,
                OpenOptions::new(),
                PoolOptions::new()
                    .max_size(4)
                    .checkout_timeout(Duration::from_millis(500)),
            )
        })
        .await
        .expect("the pool opens")?;
        Ok(Service { writes, reads })
    }

    /// `GET /settings`: the merged settings of the active identity.
    pub async fn settings(&self) -> Response {
        let pool = self.reads.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut db = pool.get()?;
            let view = db.store()?.settings(SettingsScope::Merged(None))?;
            Ok(json!({ "activeDid": view.active_did.map(|d| d.to_string()), "settings": view.settings }))
        })
        .await
        .expect("the read did not panic");
        answer(read)
    }

    /// `PATCH /settings`: a change as the client sends it.
    pub async fn patch_settings(&self, body: &str) -> Response {
        let change: SettingsChange = match serde_json::from_str(body) {
            Ok(change) => change,
            Err(e) => {
                return (
                    400,
                    json!({ "error": { "kind": "invalid_setting", "message": e.to_string() } }),
                );
            }
        };
        answer(
            self.writes
                .run(move |db| db.store()?.save_settings(&change))
                .await,
        )
    }

    /// `PUT /active`: switch the active identity.
    pub async fn set_active(&self, did: &str) -> Response {
        let did = match Did::parse(did) {
            Ok(did) => did,
            Err(e) => return answer::<()>(Err(e.into())),
        };
        answer(
            self.writes
                .run(move |db| db.store()?.set_active_did(Some(&did)))
                .await,
        )
    }
}
