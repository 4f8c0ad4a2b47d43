//! `rehearse`: the rollout rehearsed over a corpus of files, one JSON Lines record a
//! file, then a summary of every record the report holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use idstore_repo::{Error, ErrorKind, RehearsalOptions, WorkFolder, rehearse as rehearse_one};
use serde_json::{Value, json};

use crate::cli::RehearseArgs;
use crate::context::Ctx;
use crate::output::shown_path;

pub(super) fn rehearse(ctx: &Ctx, args: &RehearseArgs) -> Result<bool, Error> {
    let mut files = Vec::new();
    corpus(&args.corpus, &mut files)?;
    files.sort();
    if let Some(shard) = args.shard {
        files = files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index - 1)
            .map(|(_, f)| f)
            .collect();
    }
    let done: BTreeSet<String> = records(&args.report)?
        .iter()
        .filter_map(|r| r["file"].as_str().map(str::to_owned))
        .collect();
    let todo: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| !done.contains(&relative(&args.corpus, f)))
        .collect();

    let mut report = open_report(&args.report)?;
    let bar = (!ctx.out.json && !ctx.out.quiet() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(todo.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "[{pos}/{len}] {wide_bar} {msg} ({elapsed}, {eta} left)",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    });
    let engine_cmd = args.engine.clone();
    let engine = move |input: &Path, output: &Path| -> Result<(), String> {
        let cmd = engine_cmd.as_deref().unwrap_or_default();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} \"$@\""))
            .arg("sh")
            .arg(input)
            .arg(output)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("could not run {cmd}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{}: {}",
                out.status,
                stderr.lines().last().unwrap_or("")
            ))
        }
    };
    let options = RehearsalOptions::new()
        .key(ctx.key.clone())
        .slow(Some(Duration::from_millis(args.slow_ms)))
        .engine(
            args.engine
                .is_some()
                .then_some(&engine as idstore_repo::RehearsalEngine<'_>),
        );
    for file in &todo {
        let name = relative(&args.corpus, file);
        if let Some(bar) = &bar {
            bar.set_message(name.clone());
        }
        let work = WorkFolder::new(&std::env::temp_dir())?;
        let rehearsal = rehearse_one(file, work.path(), &options);
        drop(work);
        let mut record = json!({ "file": name });
        if let (Value::Object(map), Ok(Value::Object(fields))) =
            (&mut record, serde_json::to_value(&rehearsal))
        {
            map.extend(fields);
        }
        writeln!(report, "{record}")
            .and_then(|()| report.flush())
            .map_err(|e| Error::io(&args.report, e))?;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report.sync_data().map_err(|e| Error::io(&args.report, e))?;

    let all = records(&args.report)?;
    let summary = summarize(&all, todo.len());
    let fired = summary["triggers"]
        .as_object()
        .is_some_and(|t| !t.is_empty());
    ctx.out
        .emit(summary.clone(), || summary_text(&summary, &args.report));
    Ok(!fired)
}

/// Every database file under `dir`, side files left to their database.
fn corpus(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_dir() {
            corpus(&path, files)?;
        } else if !["-journal", "-wal", "-shm"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            // Links, FIFOs and the like are listed too: each is refused on its own.
            files.push(path);
        }
    }
    Ok(())
}

fn relative(corpus: &Path, file: &Path) -> String {
    file.strip_prefix(corpus)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// The report's records; a line cut short by a killed run is left out (the file is
/// rehearsed again).
fn records(path: &Path) -> Result<Vec<Value>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["file"].is_string())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The report, opened to append without following a link; a last line cut short by
/// a killed run is ended first, so the next record starts on a line of its own.
fn open_report(path: &Path) -> Result<std::fs::File, Error> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .read(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::NotAFile,
            format!(
                "{} is not a regular file: give a report file",
                shown_path(path)
            ),
        ));
    }
    if meta.len() > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| Error::io(path, e))?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(file)
}

/// Counts by outcome and error kind, durations, and which triggers fired, over
/// every record.
fn summarize(records: &[Value], this_run: usize) -> Value {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut triggers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut durations: Vec<f64> = Vec::new();
    let (mut accounts, mut pointers) = (0u64, 0u64);
    for r in records {
        let outcome = r["outcome"].as_str().unwrap_or("unknown").to_owned();
        *outcomes.entry(outcome).or_default() += 1;
        if let Some(kind) = r["error_kind"].as_str() {
            *kinds.entry(kind.to_owned()).or_default() += 1;
        }
        for t in r["triggers"].as_array().into_iter().flatten() {
            if let (Some(t), Some(f)) = (t.as_str(), r["file"].as_str()) {
                triggers.entry(t.to_owned()).or_default().push(f.to_owned());
            }
        }
        durations.extend(r["durations"]["total_ms"].as_f64());
        accounts += r["quarantined_accounts"].as_u64().unwrap_or(0);
        pointers += r["quarantined_pointers"].as_u64().unwrap_or(0);
    }
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        if durations.is_empty() {
            return 0.0;
        }
        let i = ((q * durations.len() as f64).ceil() as usize).clamp(1, durations.len());
        durations[i - 1]
    };
    json!({
        "files": records.len(),
        "rehearsed_now": this_run,
        "outcomes": outcomes,
        "error_kinds": kinds,
        "quarantined_accounts": accounts,
        "quarantined_pointers": pointers,
        "duration_ms": { "p50": at(0.5), "p95": at(0.95), "max": at(1.0) },
        "triggers": triggers,
    })
}

fn summary_text(summary: &Value, report: &Path) -> String {
    let mut lines = vec![format!(
        "{} file(s) in {} ({} rehearsed now)",
        summary["files"],
        shown_path(report),
        summary["rehearsed_now"]
    )];
    let counts = |v: &Value| {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    lines.push(format!("outcomes: {}", counts(&summary["outcomes"])));
    if summary["error_kinds"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        lines.push(format!("error kinds: {}", counts(&summary["error_kinds"])));
    }
    lines.push(format!(
        "quarantined: {} account(s), {} pointer value(s)",
        summary["quarantined_accounts"], summary["quarantined_pointers"]
    ));
    let d = &summary["duration_ms"];
    lines.push(format!(
        "duration per file: p50 {} ms, p95 {} ms, max {} ms",
        d["p50"], d["p95"], d["max"]
    ));
    match summary["triggers"].as_object() {
        Some(t) if !t.is_empty() => {
            for (trigger, files) in t {
                let files: Vec<&str> = files
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                lines.push(format!(
                    "ROLLBACK TRIGGER {trigger}: {} file(s), first {}",
                    files.len(),
                    files.first().copied().unwrap_or("")
                ));
            }
        }
        _ => lines.push("no rollback trigger fired".to_owned()),
    }
    lines.join("\n")
}
