//! An example service on idstore, written from its README alone: one database file
//! per user, an async handle for writes and a pool behind an async handle for
//! reads, bodies in the app's JSON, each unit of work one transaction, and every
//! error answered by its kind with a message fit for the client (the operator's
//! own message goes to the log).
//!
//! Routes (`{user}` names the file `ROOT/{user}.sqlite`, created and migrated on
//! first use):
//!
//! | route | does |
//! |---|---|
//! | `GET /users/{user}/settings` | the active identity's settings, as the app shows them |
//! | `PATCH /users/{user}/settings` | saves a change to the active identity's own row; answers what it now sees |
//! | `GET /users/{user}/active` | the active identity |
//! | `PUT /users/{user}/active` | `{"activeDid": DID or null}` switches it |
//! | `GET /users/{user}/accounts` | every identity, no secrets |
//! | `POST /users/{user}/accounts` | `{"account": NewAccount, "settings": change, "active": bool}`, all in one transaction |
//! | `DELETE /users/{user}/accounts/{did}` | deletes one (not the last) |

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idstore_repo::asynchronous::{AsyncDatabase, AsyncOptions};
use idstore_repo::domain::{Did, NewAccount, SettingsChange};
use idstore_repo::pool::{Pool, PoolOptions};
use idstore_repo::{Error, ErrorKind, MigrateOptions, OpenOptions, SettingsScope, WhenLast};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// A response: an HTTP status and a JSON body.
pub type Response = (u16, Value);

/// The HTTP status of an error of `kind`: the README's table ("Errors by kind").
pub fn status_of(kind: ErrorKind) -> u16 {
    use ErrorKind as K;
    match kind {
        K::UnknownAccount | K::NotFound | K::NotQuarantined => 404,
        K::InvalidSetting | K::InvalidDid | K::InvalidAccount | K::InvalidKey => 400,
        K::AccountExists
        | K::LastAccount
        | K::NoActiveIdentity
        | K::NeedsMigration
        | K::NeedsRepair
        | K::NewerDatabase => 409,
        K::Encrypted | K::WrongKey | K::NotEncrypted => 401,
        K::Locked | K::PoolTimeout | K::QueueFull | K::Cancelled | K::InUse => 503,
        K::DiskFull | K::ReadOnly => 507,
        _ => 500,
    }
}

/// One user's database: its writes on one connection, its reads on a pool's.
#[derive(Debug)]
pub struct UserDb {
    /// Writes, one at a time, on the file's own connection.
    pub writes: AsyncDatabase,
    /// Reads, in parallel, on a pool's connections.
    pub reads: AsyncDatabase,
}

/// The service: a folder of users' files, each opened on first use.
#[derive(Debug)]
pub struct Service {
    root: PathBuf,
    busy_timeout: Duration,
    users: Mutex<HashMap<String, Arc<OnceCell<Arc<UserDb>>>>>,
    log: Mutex<Vec<String>>,
}

/// A new account, as `POST /users/{user}/accounts` takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddAccount {
    account: NewAccount,
    #[serde(default)]
    settings: Option<SettingsChange>,
    #[serde(default)]
    active: bool,
}

/// An error of the service's own (not idstore's): a kind name and its words.
fn refuse(status: u16, kind: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        json!({ "error": { "kind": kind, "message": message.to_string() } }),
    )
}

impl Service {
    /// A service keeping its users' files in `root`, waiting up to 5 s for another
    /// program's lock on one.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Service {
            root: root.into(),
            busy_timeout: Duration::from_secs(5),
            users: Mutex::default(),
            log: Mutex::default(),
        }
    }

    /// How long a request waits for another program's lock on a user's file.
    pub fn busy_timeout(mut self, wait: Duration) -> Self {
        self.busy_timeout = wait;
        self
    }

    /// What the service logged for its operator: each error's whole message.
    pub fn operator_log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The answer to a result: 200 and the value, or the error's status by kind and
    /// its client message (the operator's message logged).
    fn answer<T: serde::Serialize>(&self, ok: u16, result: Result<T, Error>) -> Response {
        match result {
            Ok(body) => (ok, serde_json::to_value(body).unwrap_or(Value::Null)),
            Err(e) => {
                let line = format!("{}: {e}", e.kind());
                eprintln!("{line}");
                self.log.lock().unwrap().push(line);
                let kind = e.kind().as_str();
                refuse(status_of(e.kind()), kind, e.public_message())
            }
        }
    }

    /// `user`'s database, opened (created, and migrated with a backup when there
    /// is something to migrate) on first use.
    pub async fn user(&self, user: &str) -> Result<Arc<UserDb>, Error> {
        let cell = Arc::clone(
            self.users
                .lock()
                .unwrap()
                .entry(user.to_owned())
                .or_default(),
        );
        let opened = cell.get_or_try_init(|| self.open_user(user)).await?;
        Ok(Arc::clone(opened))
    }

    async fn open_user(&self, user: &str) -> Result<Arc<UserDb>, Error> {
        let path = self.root.join(format!("{user}.sqlite"));
        let options = OpenOptions::new().busy_timeout(self.busy_timeout);
        let writes =
            AsyncDatabase::open_with(&path, options.clone(), AsyncOptions::new().queue(32)).await?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let backup = self.root.join(format!("{user}.backup-{stamp}.sqlite"));
        let pool = writes
            .run(move |db| {
                db.migrate(&MigrateOptions::new().backup_to(backup))?;
                Pool::open_with(
                    db.path(),
                    options,
                    PoolOptions::new()
                        .max_size(4)
                        .checkout_timeout(Duration::from_millis(500)),
                )
            })
            .await?;
        let reads = AsyncDatabase::pooled(pool, AsyncOptions::new().queue(64));
        Ok(Arc::new(UserDb { writes, reads }))
    }

    /// Handles one request.
    pub async fn handle(&self, method: &str, path: &str, body: &str) -> Response {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (user, rest) = match parts.as_slice() {
            ["users", user, rest @ ..] => (*user, rest),
            _ => return refuse(404, "no_route", "no such route"),
        };
        if user.is_empty()
            || user.len() > 64
            || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return refuse(
                400,
                "invalid_user",
                "a user is 1 to 64 letters, digits or dashes",
            );
        }
        let db = match self.user(user).await {
            Ok(db) => db,
            Err(e) => return self.answer::<()>(200, Err(e)),
        };
        match (method, rest) {
            ("GET", ["settings"]) => self.answer(
                200,
                db.reads
                    .run(|db| db.store()?.settings(SettingsScope::Merged(None)))
                    .await,
            ),
            ("PATCH", ["settings"]) => {
                let change: SettingsChange = match serde_json::from_str(body) {
                    Ok(change) => change,
                    Err(e) => return refuse(400, "invalid_setting", e),
                };
                let saved = db.writes.transaction(move |store| {
                    store.save_active_account_settings(&change)?;
                    store.settings(SettingsScope::Merged(None))
                });
                self.answer(200, saved.await)
            }
            ("GET", ["active"]) => {
                self.answer(200, db.reads.run(|db| db.store()?.active_identity()).await)
            }
            ("PUT", ["active"]) => {
                let did = match serde_json::from_str::<Value>(body)
                    .map_err(|e| e.to_string())
                    .and_then(|v| match &v["activeDid"] {
                        Value::Null => Ok(None),
                        Value::String(s) => Did::parse(s).map(Some).map_err(|e| e.to_string()),
                        _ => Err("activeDid is a DID or null".to_owned()),
                    }) {
                    Ok(did) => did,
                    Err(e) => return refuse(400, "invalid_did", e),
                };
                let switched = db.writes.transaction(move |store| {
                    store.set_active_did(did.as_ref())?;
                    store.active_identity()
                });
                self.answer(200, switched.await)
            }
            ("GET", ["accounts"]) => self.answer(
                200,
                db.reads
                    .run(|db| db.store()?.accounts()?.collect::<Result<Vec<_>, _>>())
                    .await,
            ),
            ("POST", ["accounts"]) => {
                let add: AddAccount = match serde_json::from_str(body) {
                    Ok(add) => add,
                    Err(e) => return refuse(400, "invalid_account", e),
                };
                let added = db.writes.transaction(move |store| {
                    let info = store.add_account(&add.account)?;
                    if let Some(change) = &add.settings {
                        store.save_account_settings(&info.did, change)?;
                    }
                    if add.active {
                        store.set_active_did(Some(&info.did))?;
                    }
                    Ok(info)
                });
                self.answer(201, added.await)
            }
            ("DELETE", ["accounts", did]) => {
                let did = match Did::parse(did) {
                    Ok(did) => did,
                    Err(e) => return self.answer::<()>(200, Err(e.into())),
                };
                self.answer(
                    200,
                    db.writes
                        .run(move |db| db.store()?.delete_account(&did, WhenLast::Refuse))
                        .await,
                )
            }
            _ => refuse(404, "no_route", "no such route"),
        }
    }
}

/// Serves HTTP/1.1 on `listener`, one connection at a time (one request each, a
/// JSON body with a `Content-Length`), each request handled on `runtime`: enough
/// HTTP for the example, not a server to deploy (a service would put axum or hyper
/// here; the handler stays the same).
pub fn serve(
    listener: &std::net::TcpListener,
    service: &Service,
    runtime: &tokio::runtime::Handle,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            continue;
        };
        let _ = answer_http(stream, service, runtime);
    }
}

/// Reads one request from `stream` and writes the service's answer.
fn answer_http(
    stream: std::net::TcpStream,
    service: &Service,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let (status, answer) =
        runtime.block_on(service.handle(method, path, &String::from_utf8_lossy(&body)));
    let text = answer.to_string();
    let mut stream = &stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if status < 400 { "OK" } else { "Error" },
        text.len()
    )
}
