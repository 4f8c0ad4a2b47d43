//! Who has a database file open: other processes (Linux: from `/proc`), and this
//! process's own idstore connections (counted here, since `/proc` shows a process
//! once however many connections it has).

use super::{Entry, entry_at};

/// The other processes that have the file `entry` describes open (Linux: their
/// open file descriptors on the same device and inode, from `/proc`), each as
/// `name (pid N)`. Processes of other users are seen only by root; elsewhere
/// nothing can be told.
#[cfg(target_os = "linux")]
pub(crate) fn other_holders(entry: &Entry) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut holders = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let holds = std::fs::read_dir(proc_entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| entry_at(&fd.path()).is_ok_and(|e| e.same_file(entry)));
        if holds {
            let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
            holders.push(format!("{} (pid {pid})", name.trim()));
        }
    }
    holders
}

/// The other processes that have the file open (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub(crate) fn other_holders(_entry: &Entry) -> Vec<String> {
    Vec::new()
}

/// How many idstore connections this process has open to each file (device,
/// inode): another process is found through `/proc`, another connection of this
/// one only here.
static OPEN_HERE: std::sync::Mutex<Vec<((u64, u64), usize)>> = std::sync::Mutex::new(Vec::new());

/// Counts one idstore connection of this process to the file `entry` describes,
/// until the guard is dropped.
pub(crate) fn register_open(entry: &Entry) -> OpenHere {
    let id = (entry.dev, entry.ino);
    let mut open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
    match open.iter_mut().find(|(k, _)| *k == id) {
        Some((_, n)) => *n += 1,
        None => open.push((id, 1)),
    }
    OpenHere(id)
}

/// How many idstore connections this process has open to the file `entry`
/// describes.
pub(crate) fn open_here(entry: &Entry) -> usize {
    let open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
    open.iter()
        .find(|(k, _)| *k == (entry.dev, entry.ino))
        .map_or(0, |(_, n)| *n)
}

/// One connection counted by [`register_open`].
#[derive(Debug)]
pub(crate) struct OpenHere((u64, u64));

impl Drop for OpenHere {
    fn drop(&mut self) {
        let mut open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = open.iter().position(|(k, _)| *k == self.0) {
            open[i].1 -= 1;
            if open[i].1 == 0 {
                open.swap_remove(i);
            }
        }
    }
}
