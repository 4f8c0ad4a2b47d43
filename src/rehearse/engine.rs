//! The other engine (`--engine COMMAND`), run bounded: in a process group of its
//! own, killed with everything it started once its time limit passes (or when a
//! signal ends the rehearsal), its output read as it comes with only the last
//! [`TAIL`] bytes of each stream kept, and without the key in its environment.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How many bytes of the engine's stdout and stderr are kept (the last ones).
const TAIL: usize = 2048;

/// How many characters of what it said a message quotes (the last ones).
const SAID: usize = 300;

/// The process group of the engine running now (0: none).
static RUNNING: AtomicI32 = AtomicI32::new(0);

/// How the engine is run.
pub struct Engine {
    /// The command (run by `sh -c`, given the input and output paths).
    pub command: String,
    /// Its time limit for one file.
    pub limit: Duration,
}

impl Engine {
    /// Runs the engine on the copy `input`, to write its file at `output`. `Err`
    /// says, in words, how it failed: it could not start, it ran out of time, or it
    /// exited with a failure (with the end of what it wrote to stderr).
    pub fn run(&self, input: &Path, output: &Path) -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("sh")
            .arg(input)
            .arg(output)
            // A key is not the engine's to have (it could end up in its output).
            .env_remove("IDSTORE_KEY")
            .env_remove("IDSTORE_NEW_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("it could not be started: {e}"))?;
        let group = i32::try_from(child.id()).unwrap_or(0);
        RUNNING.store(group, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(stream.map(tail).unwrap_or_default());
            });
        }
        drop(tx);
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= self.limit => break Err(()),
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    kill_running();
                    let _ = child.wait();
                    return Err(format!("it could not be waited for: {e}"));
                }
            }
        };
        // Whatever it left running goes with it.
        kill_running();
        let _ = child.wait();
        // The streams end once every process holding them is gone; one that left
        // its group keeps them open, and is not waited for.
        let mut tails = Vec::new();
        while let Ok(t) = rx.recv_timeout(Duration::from_secs(1)) {
            tails.push(t);
        }
        let said: String = tails
            .iter()
            .map(|t| {
                String::from_utf8_lossy(t)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        // The end of what it said, where an error usually is.
        let said = match said.char_indices().rev().nth(SAID - 1) {
            Some((at, _)) if at > 0 => format!("…{}", &said[at..]),
            _ => said,
        };
        match status {
            Err(()) => Err(format!(
                "it ran longer than its time limit ({} s) and was stopped{}",
                self.limit.as_secs_f64(),
                if said.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {said}")
                }
            )),
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!(
                "it exited with {status}{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {said}")
                }
            )),
        }
    }
}

/// Kills the engine running now, with everything in its process group.
pub fn kill_running() {
    let group = RUNNING.swap(0, Ordering::SeqCst);
    if let Some(pid) = rustix::process::Pid::from_raw(group) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Reads `stream` to its end, keeping only its last [`TAIL`] bytes.
fn tail(mut stream: Box<dyn Read + Send>) -> Vec<u8> {
    let mut kept: std::collections::VecDeque<u8> = std::collections::VecDeque::with_capacity(TAIL);
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    if kept.len() == TAIL {
                        kept.pop_front();
                    }
                    kept.push_back(b);
                }
            }
        }
    }
    kept.into_iter().collect()
}
