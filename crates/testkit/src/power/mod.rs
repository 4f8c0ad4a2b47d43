//! Power cuts, simulated. A run is recorded step by step (SQLite's own writes
//! through the crash VFS, idstore's own file steps through its seam); then, at a
//! chosen crash point, each state a power cut could leave is rebuilt in a folder of
//! its own: what was synced is there, and what was not may be lost, kept, or torn.
//!
//! A file's data is durable once the file is synced; a create, rename, link or
//! removal once its folder is. The states of a crash after step `k`:
//!
//! - `Kept`: every step's effect, synced or not (what a killed process leaves);
//! - `Dropped`: only what was synced: names as of their folder's last sync, data as
//!   of its file's last sync;
//! - `Torn`: as `Kept`, but the last unsynced write cut at a 512-byte boundary;
//! - `NamesUndone`: data as `Kept`, names as `Dropped` (metadata lost, data kept);
//! - `DataDropped`: names as `Kept`, data as `Dropped` (metadata kept, data lost).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

pub mod vfs;

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new, empty file.
    Create { path: PathBuf },
    /// Data written at an offset.
    Write {
        path: PathBuf,
        offset: u64,
        data: Vec<u8>,
    },
    /// A file cut to a length.
    Truncate { path: PathBuf, len: u64 },
    /// A file's data synced.
    Sync {
        path: PathBuf,
        protects: &'static str,
    },
    /// A folder synced: its names so far are durable.
    SyncFolder {
        path: PathBuf,
        protects: &'static str,
    },
    /// A rename (replacing the target).
    Rename { from: PathBuf, to: PathBuf },
    /// A second name for a file.
    Link { from: PathBuf, to: PathBuf },
    /// A name removed.
    Remove { path: PathBuf },
}

impl Step {
    /// Whether this step is a sync (of a file or a folder).
    pub fn is_sync(&self) -> bool {
        matches!(self, Step::Sync { .. } | Step::SyncFolder { .. })
    }

    /// Whether this step writes data.
    pub fn is_write(&self) -> bool {
        matches!(self, Step::Write { .. } | Step::Truncate { .. })
    }
}

thread_local! {
    static RECORDING: RefCell<Option<Vec<Step>>> = const { RefCell::new(None) };
}

/// Adds a step to this thread's recording, if one is on.
pub(crate) fn note(step: impl FnOnce() -> Step) {
    RECORDING.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut()
            && let Some(steps) = r.as_mut()
        {
            steps.push(step());
        }
    });
}

fn from_seam(step: &idstore_repo::fixtures::FileStep) -> Option<Step> {
    use idstore_repo::fixtures::FileStep as F;
    let protects = |p: &idstore_repo::fixtures::Protects| -> &'static str {
        Box::leak(format!("{p:?}").into_boxed_str())
    };
    Some(match step {
        F::Create { path } => Step::Create { path: path.clone() },
        F::Write { path, offset, data } => Step::Write {
            path: path.clone(),
            offset: *offset,
            data: data.clone(),
        },
        F::Truncate { path, len } => Step::Truncate {
            path: path.clone(),
            len: *len,
        },
        F::Sync { path, protects: p } => Step::Sync {
            path: path.clone(),
            protects: protects(p),
        },
        F::SyncFolder { path, protects: p } => Step::SyncFolder {
            path: path.clone(),
            protects: protects(p),
        },
        F::Rename { from, to } => Step::Rename {
            from: from.clone(),
            to: to.clone(),
        },
        F::Link { from, to } => Step::Link {
            from: from.clone(),
            to: to.clone(),
        },
        F::Remove { path } => Step::Remove { path: path.clone() },
        _ => return None,
    })
}

/// A recorded run: the folder's files before it, and every step it took there.
#[derive(Debug, Clone)]
pub struct Recording {
    root: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
    /// The steps, in order (those on files outside the folder left out).
    pub steps: Vec<Step>,
}

/// Runs `run` on this thread with every file step in `root` recorded (SQLite's
/// through the crash VFS, which must be [`vfs::install`]ed before the connections
/// `run` uses are opened; idstore's through its seam).
pub fn record<T>(root: &Path, run: impl FnOnce() -> T) -> (T, Recording) {
    vfs::install();
    let root = root.canonicalize().unwrap();
    let before = snapshot(&root);
    RECORDING.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let guard = idstore_repo::fixtures::observe_file_steps(|step| {
        if let Some(step) = from_seam(step) {
            note(|| step);
        }
    });
    let done = run();
    drop(guard);
    let steps = RECORDING
        .with(|r| r.borrow_mut().take())
        .unwrap_or_default();
    let steps = steps
        .into_iter()
        .filter(|s| step_paths(s).iter().all(|p| p.starts_with(&root)))
        .collect();
    (
        done,
        Recording {
            root,
            before,
            steps,
        },
    )
}

fn step_paths(s: &Step) -> Vec<&Path> {
    match s {
        Step::Create { path }
        | Step::Write { path, .. }
        | Step::Truncate { path, .. }
        | Step::Sync { path, .. }
        | Step::SyncFolder { path, .. }
        | Step::Remove { path } => vec![path],
        Step::Rename { from, to } | Step::Link { from, to } => vec![from, to],
    }
}

/// Every regular file under `root`, by path (`-shm` files left out: shared memory
/// is rebuilt, never durable state).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let t = entry.file_type().unwrap();
            let path = entry.path();
            if t.is_dir() {
                dirs.push(path);
            } else if t.is_file() && !path.to_string_lossy().ends_with("-shm") {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// What a power cut leaves of unsynced state (see the module's description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loss {
    Kept,
    Dropped,
    Torn,
    NamesUndone,
    DataDropped,
}

/// Every kind of loss.
pub const LOSSES: [Loss; 5] = [
    Loss::Kept,
    Loss::Dropped,
    Loss::Torn,
    Loss::NamesUndone,
    Loss::DataDropped,
];

/// A file's content: what is durable, and the unsynced changes after it.
#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    pending: Vec<Change>,
}

#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

fn apply(content: &mut Vec<u8>, change: &Change, torn: bool) {
    match change {
        Change::Write { offset, data } => {
            let data = if torn {
                // Only whole 512-byte sectors of the first half reach the disk.
                let keep = (data.len() / 2) / 512 * 512;
                &data[..keep]
            } else {
                &data[..]
            };
            let end = *offset as usize + data.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[*offset as usize..end].copy_from_slice(data);
        }
        Change::Truncate(len) => content.resize(*len as usize, 0),
    }
}

/// The file system as the steps so far left it: inodes, and names per folder both
/// as they are and as their folder's last sync made them durable.
#[derive(Debug, Clone)]
struct Model {
    inodes: Vec<Inode>,
    live: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    /// The inode of the last unsynced write, and the write's place in its list.
    last_unsynced: Option<(usize, usize)>,
}

impl Model {
    fn new(before: &BTreeMap<PathBuf, Vec<u8>>) -> Model {
        let mut m = Model {
            inodes: Vec::new(),
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            last_unsynced: None,
        };
        for (path, bytes) in before {
            m.inodes.push(Inode {
                durable: bytes.clone(),
                pending: Vec::new(),
            });
            let id = m.inodes.len() - 1;
            m.live.insert(path.clone(), id);
            m.durable.insert(path.clone(), id);
        }
        m
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Create { path } => {
                self.inodes.push(Inode::default());
                self.live.insert(path.clone(), self.inodes.len() - 1);
            }
            Step::Write { path, offset, data } => {
                if let Some(&id) = self.live.get(path) {
                    self.inodes[id].pending.push(Change::Write {
                        offset: *offset,
                        data: data.clone(),
                    });
                    self.last_unsynced = Some((id, self.inodes[id].pending.len() - 1));
                }
            }
            Step::Truncate { path, len } => {
                if let Some(&id) = self.live.get(path) {
                    self.inodes[id].pending.push(Change::Truncate(*len));
                }
            }
            Step::Sync { path, .. } => {
                if let Some(&id) = self.live.get(path) {
                    let inode = &mut self.inodes[id];
                    for c in std::mem::take(&mut inode.pending) {
                        apply(&mut inode.durable, &c, false);
                    }
                    if self.last_unsynced.is_some_and(|(i, _)| i == id) {
                        self.last_unsynced = None;
                    }
                }
            }
            Step::SyncFolder { path, .. } => {
                self.durable
                    .retain(|p, _| p.parent() != Some(path.as_path()));
                for (p, id) in &self.live {
                    if p.parent() == Some(path.as_path()) {
                        self.durable.insert(p.clone(), *id);
                    }
                }
            }
            Step::Rename { from, to } => {
                if let Some(id) = self.live.remove(from) {
                    self.live.insert(to.clone(), id);
                }
            }
            Step::Link { from, to } => {
                if let Some(&id) = self.live.get(from) {
                    self.live.insert(to.clone(), id);
                }
            }
            Step::Remove { path } => {
                self.live.remove(path);
            }
        }
    }

    /// The files a power cut now leaves, by path.
    fn after_cut(&self, loss: Loss) -> BTreeMap<PathBuf, Vec<u8>> {
        let names = match loss {
            Loss::Kept | Loss::Torn | Loss::DataDropped => &self.live,
            Loss::Dropped | Loss::NamesUndone => &self.durable,
        };
        names
            .iter()
            .map(|(path, &id)| {
                let inode = &self.inodes[id];
                let mut content = inode.durable.clone();
                if matches!(loss, Loss::Kept | Loss::Torn | Loss::NamesUndone) {
                    for (i, c) in inode.pending.iter().enumerate() {
                        let torn = loss == Loss::Torn && self.last_unsynced == Some((id, i));
                        apply(&mut content, c, torn);
                    }
                }
                (path.clone(), content)
            })
            .collect()
    }
}

/// One state a power cut could leave: the folder rebuilt as it would be found.
#[derive(Debug)]
pub struct CutState {
    /// After how many steps the power went out.
    pub point: usize,
    /// What was lost.
    pub loss: Loss,
    /// The rebuilt folder (the recorded folder's files, under their relative paths).
    pub dir: tempfile::TempDir,
}

impl CutState {
    /// Where `path` (a path in the recorded folder) is in the rebuilt one.
    pub fn at(&self, recording: &Recording, path: &Path) -> PathBuf {
        let rel = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_owned())
            .strip_prefix(&recording.root)
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned());
        self.dir.path().join(rel)
    }
}

impl Recording {
    /// Every distinct state a power cut after `point` steps could leave, rebuilt
    /// (states equal to one already given at this point are left out).
    pub fn cut_at(&self, point: usize, skip: &dyn Fn(&Step) -> bool) -> Vec<CutState> {
        let mut model = Model::new(&self.before);
        for step in self.steps.iter().take(point) {
            if !skip(step) {
                model.step(step);
            }
        }
        let mut seen = HashSet::new();
        let mut states = Vec::new();
        for loss in LOSSES {
            let files = model.after_cut(loss);
            if !seen.insert(format!("{files:?}")) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            for (path, bytes) in &files {
                let rel = path.strip_prefix(&self.root).unwrap();
                let dest = dir.path().join(rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).unwrap();
                }
                std::fs::write(&dest, bytes).unwrap();
            }
            states.push(CutState { point, loss, dir });
        }
        states
    }

    /// The crash points worth trying: every point just before and just after a
    /// sync, the end, and one write point in `every` (every one with `every` 1).
    pub fn points(&self, every: usize) -> Vec<usize> {
        let mut points = std::collections::BTreeSet::new();
        let mut writes = 0;
        for (i, step) in self.steps.iter().enumerate() {
            if step.is_sync() {
                points.insert(i);
                points.insert(i + 1);
            }
            if step.is_write() {
                writes += 1;
                if writes % every.max(1) == 0 {
                    points.insert(i + 1);
                }
            }
        }
        points.insert(0);
        points.insert(self.steps.len());
        points.into_iter().collect()
    }

    /// How many syncs and writes the run made (SQLite's and idstore's).
    pub fn counts(&self) -> (usize, usize) {
        let syncs = self.steps.iter().filter(|s| s.is_sync()).count();
        let writes = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Write { .. }))
            .count();
        (syncs, writes)
    }
}
