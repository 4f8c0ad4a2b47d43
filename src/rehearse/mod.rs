//! `idstore rehearse`: the rollout rehearsed over a corpus of files, one JSON Lines
//! record a file, then a summary of every record the report holds. Exits 1 when a
//! trigger fired.
//!
//! - [`report`]: the report, opened safely and shared by runs under a lock.
//! - [`index`]: what the report holds, indexed in a private file, in flat memory.
//! - [`corpus`]: the walk, from folder descriptors.
//! - [`one`]: one file rehearsed on private copies, and its record.
//! - [`contents`]: every table summed up, for the comparisons.
//! - [`engine`]: the other engine, bounded.
//! - [`work`]: the work folders, removed on signals and after a kill.
//! - [`names`]: names as bytes, and shards.
//!
//! **Rule:** no original is ever written: each file is copied once, consistently
//! (`OpenOptions::snapshot`), and worked on through private scratch copies in a
//! work folder of the run's own ([`work`]), which nothing outlives; every outcome
//! but a clean round trip or a clear refusal fires a named trigger that says whose
//! failure it is; memory stays flat however large the corpus and the report.

mod contents;
mod corpus;
mod engine;
mod index;
mod names;
mod one;
mod report;
mod work;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use idstore_repo::Error;
use serde_json::{Value, json};

use crate::cli::RehearseArgs;
use crate::context::Ctx;
use crate::output::{Shown, shown_path};
use corpus::{Found, Walk};
use index::Index;
use one::Record;
use report::Report;

/// What this run did besides writing records, for the summary.
#[derive(Default)]
struct Run {
    rehearsed: u64,
    /// Records not written because another run reported the file meanwhile.
    reported_elsewhere: u64,
    torn_bytes: u64,
    overlong: u64,
}

pub(crate) fn rehearse(ctx: &Ctx, args: &RehearseArgs) -> Result<bool, Error> {
    let mut report = Report::open(&args.report)?;
    let mut work = work::Run::start(&std::env::temp_dir())?;
    let shard = args.shard.map_or_else(
        || "all".to_owned(),
        |s| format!("{}-of-{}", s.index, s.count),
    );
    let _identity = work.identity_lock(report.id, &shard, &args.report)?;
    let mut index = Index::create(&work.path().join("report-index.sqlite"))?;
    let mut run = Run::default();
    report.locked(|report| {
        run.torn_bytes = report.heal()?;
        index.adding(|index| {
            run.overlong += report.read_new(|line| index.add(line))?.overlong;
            Ok(())
        })
    })?;
    if run.torn_bytes > 0 {
        crate::output::note(&format!(
            "note: {} ended in a line cut short ({} bytes, by a run killed while writing it); it was removed, and its file is rehearsed again",
            shown_path(&args.report),
            run.torn_bytes
        ));
    }
    if work.stale_removed > 0 && !ctx.out.quiet() {
        crate::output::note(&format!(
            "note: removed {} work folder(s) left by rehearsals that were killed",
            work.stale_removed
        ));
    }

    let in_shard = |rel: &str| {
        args.shard
            .is_none_or(|s| names::shard_of(rel, s.count) == s.index - 1)
    };
    let bar = (!ctx.out.json && !ctx.out.quiet() && std::io::stderr().is_terminal())
        .then(|| progress(&args.corpus, report.id, &in_shard, &mut index))
        .transpose()?;
    let engine = args.engine.as_ref().map(|command| engine::Engine {
        command: command.clone(),
        limit: Duration::from_secs(args.engine_timeout_s),
    });
    let options = one::Options {
        key: ctx.key.clone(),
        slow: Duration::from_millis(args.slow_ms),
        engine: engine.as_ref(),
        max_bytes: args.max_mib.saturating_mul(1024 * 1024),
        busy_timeout: ctx.busy_timeout,
    };
    let mut walk = Walk::open(&args.corpus, report.id)?;
    while let Some(found) = walk.next_found() {
        let rel = match &found {
            Found::File { rel, .. } | Found::Refused { rel, .. } => rel.clone(),
        };
        if !in_shard(&rel) || index.has(&rel)? {
            continue;
        }
        let shown = shown_in_corpus(&args.corpus, &rel);
        if let Some(bar) = &bar {
            bar.set_message(Shown(&rel).to_string());
        }
        let record = match found {
            Found::Refused { kind, message, .. } => {
                Record::refused_entry(&rel, kind, &message, &shown)
            }
            Found::File { path, bytes, .. } => {
                let folder = work.file_folder()?;
                let job = one::Job {
                    file: &rel,
                    shown: &shown,
                    source: &path,
                    bytes,
                    work: &folder.path,
                };
                one::rehearse(&job, &options)
            }
        };
        append(&mut report, &mut index, &record, &mut run)?;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report.locked(|report| {
        index.adding(|index| {
            run.overlong += report.read_new(|line| index.add(line))?.overlong;
            Ok(())
        })
    })?;
    let summary = summarize(&mut index, &walk.notes, &run, work.stale_removed)?;
    let fired = summary["triggers"]
        .as_object()
        .is_some_and(|t| !t.is_empty());
    ctx.out
        .emit(summary.clone(), || summary_text(&summary, &args.report));
    Ok(!fired)
}

/// Appends `record` unless another run reported its file meanwhile (read first,
/// under the lock), and indexes what was appended.
fn append(
    report: &mut Report,
    index: &mut Index,
    record: &Record,
    run: &mut Run,
) -> Result<(), Error> {
    let mut line = serde_json::to_vec(record).map_err(|e| {
        Error::with_source(
            idstore_repo::ErrorKind::Other,
            "could not write a record",
            e,
        )
    })?;
    line.push(b'\n');
    report.locked(|report| {
        index.adding(|index| {
            run.overlong += report.read_new(|l| index.add(l))?.overlong;
            if index.has(&record.file)? {
                run.reported_elsewhere += 1;
                return Ok(());
            }
            report.append(&line)?;
            run.rehearsed += 1;
            run.overlong += report.read_new(|l| index.add(l))?.overlong;
            Ok(())
        })
    })
}

/// The corpus file `rel` as the operator knows it, for messages.
fn shown_in_corpus(corpus: &Path, rel: &str) -> String {
    format!(
        "{}/{rel}",
        corpus.display().to_string().trim_end_matches('/')
    )
}

/// A progress bar over the files this run will rehearse, counted by a first walk.
fn progress(
    corpus: &Path,
    report: (u64, u64),
    in_shard: &dyn Fn(&str) -> bool,
    index: &mut Index,
) -> Result<indicatif::ProgressBar, Error> {
    let mut walk = Walk::open(corpus, report)?;
    let mut todo = 0u64;
    while let Some(found) = walk.next_found() {
        let (Found::File { rel, .. } | Found::Refused { rel, .. }) = &found;
        if in_shard(rel) && !index.has(rel)? {
            todo += 1;
        }
    }
    let bar = indicatif::ProgressBar::new(todo).with_style(
        indicatif::ProgressStyle::with_template(
            "[{pos}/{len}] {wide_bar} {msg} ({elapsed}, {eta} left)",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    Ok(bar)
}

/// The summary over every record of the report, and what this run saw besides.
fn summarize(
    index: &mut Index,
    notes: &corpus::Notes,
    run: &Run,
    stale_removed: usize,
) -> Result<Value, Error> {
    let totals = index.totals()?;
    let counts = |c: &[index::Count]| -> serde_json::Map<String, Value> {
        c.iter().map(|c| (c.name.clone(), json!(c.n))).collect()
    };
    let triggers: serde_json::Map<String, Value> = totals
        .triggers
        .iter()
        .map(|(c, first)| (c.name.clone(), json!({ "files": c.n, "first": first })))
        .collect();
    let [p50, p95, max] = totals.duration_ms;
    Ok(json!({
        "files": totals.files,
        "rehearsed_now": run.rehearsed,
        "outcomes": counts(&totals.outcomes),
        "error_kinds": counts(&totals.error_kinds),
        "quarantined_accounts": totals.quarantined.0,
        "quarantined_pointers": totals.quarantined.1,
        "duration_ms": { "p50": p50, "p95": p95, "max": max },
        "triggers": triggers,
        "not_rehearsed": {
            "side_files_without_database": notes.lone_side_files,
            "side_files_named": notes.lone_side_named,
            "report_in_corpus": notes.report_inside,
        },
        "report": {
            "lines_not_records": index.not_records,
            "lines_too_long": run.overlong,
            "torn_line_bytes_removed": run.torn_bytes,
            "reported_by_another_run": run.reported_elsewhere,
        },
        "stale_work_folders_removed": stale_removed,
    }))
}

/// The summary as text: every name from the corpus escaped for the terminal.
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
                    .map(|(k, n)| format!("{} {n}", Shown(k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let names = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| Shown(n).to_string())
            .collect::<Vec<_>>()
            .join(", ")
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
    let skipped = &summary["not_rehearsed"];
    if skipped["side_files_without_database"].as_u64() > Some(0) {
        lines.push(format!(
            "not rehearsed: {} -journal, -wal or -shm file(s) without their database ({})",
            skipped["side_files_without_database"],
            names(&skipped["side_files_named"])
        ));
    }
    if let Some(inside) = skipped["report_in_corpus"].as_str() {
        lines.push(format!(
            "not rehearsed: the report itself, inside the corpus ({})",
            Shown(inside)
        ));
    }
    let r = &summary["report"];
    for (key, said) in [
        (
            "lines_not_records",
            "line(s) of the report are not records (left as they are)",
        ),
        (
            "lines_too_long",
            "line(s) of the report are too long to be records (left as they are)",
        ),
    ] {
        if r[key].as_u64() > Some(0) {
            lines.push(format!("{} {said}", r[key]));
        }
    }
    match summary["triggers"].as_object() {
        Some(t) if !t.is_empty() => {
            for (trigger, fired) in t {
                lines.push(format!(
                    "ROLLBACK TRIGGER {trigger}: {} file(s), first {}",
                    fired["files"],
                    names(&fired["first"]).split(", ").next().unwrap_or("")
                ));
            }
        }
        _ => lines.push("no rollback trigger fired".to_owned()),
    }
    lines.join("\n")
}
