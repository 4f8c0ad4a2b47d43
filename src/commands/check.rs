//! `check` and `repair`.

use idstore_repo::Error;
use idstore_repo::health::{HealthReport, Problem, ProblemKind};
use serde_json::json;

use super::quarantine::resolve_hint;
use crate::context::Ctx;
use crate::output::error_line;

/// `check`: works on any database, migrated or not; `Ok(false)` when problems exist
/// or decisions wait. With `all`, every problem is printed as it is found.
pub(super) fn check(ctx: &Ctx, all: bool) -> Result<bool, Error> {
    let mut db = ctx.open_read()?;
    // (problems, decisions waiting)
    let (problems, decisions) = if all {
        // Streamed as found: only the two counts are kept, so memory stays flat.
        let (mut problems, mut decisions) = (0u64, 0u64);
        db.check_each(|p| {
            if ctx.out.json {
                ctx.out.line(&serde_json::to_string(&p).unwrap_or_default());
            } else if !ctx.out.quiet {
                ctx.out.line(&problem_line("", &p));
            }
            if p.is_decision() {
                decisions += 1;
            } else if !p.kind.is_notice() {
                problems += 1;
            }
        })?;
        (problems, decisions)
    } else {
        let report = db.check()?;
        emit_health(ctx, &report);
        (report.damage(), report.decisions())
    };
    if problems + decisions > 0 && !ctx.out.json {
        let mut parts = Vec::new();
        if problems > 0 {
            parts.push(format!(
                "{problems} problem(s) found; `idstore repair` fixes those that can be fixed without losing data"
            ));
        }
        if decisions > 0 {
            parts.push(format!(
                "{decisions} quarantined item(s) wait for a decision; `idstore quarantine list` shows them"
            ));
        }
        error_line(&parts.join("; "));
    }
    Ok(problems + decisions == 0)
}

/// One problem as `check` and `repair` print it: a decision waiting names the
/// commands that resolve it. (The detail already shows values from the file escaped.)
fn problem_line(prefix: &str, p: &Problem) -> String {
    match p.item {
        Some(item) => format!(
            "{prefix}decision waiting ({}): {}\n  resolve: {}",
            p.kind.as_str(),
            p.detail,
            resolve_hint(item)
        ),
        None if p.kind == ProblemKind::NeedsMigration => format!(
            "{prefix}{}: {}; run `idstore migrate`",
            p.kind.as_str(),
            p.detail
        ),
        None if p.kind.is_notice() => format!(
            "{prefix}notice ({}): {}; left by the app's ordinary use, harmless",
            p.kind.as_str(),
            p.detail
        ),
        None => format!("{prefix}{}: {}", p.kind.as_str(), p.detail),
    }
}

fn emit_health(ctx: &Ctx, report: &HealthReport) {
    ctx.out.emit(
        json!({ "ok": report.ok(), "problems": report.problems, "omitted": report.omitted }),
        || {
            if report.problems.is_empty() {
                return "ok: no problems found".to_owned();
            }
            let mut lines: Vec<String> = report
                .problems
                .iter()
                .map(|p| problem_line("", p))
                .collect();
            lines.extend(report.omitted.iter().map(|(kind, n)| {
                format!(
                    "… and {n} more {} problem(s) (`idstore check --all` lists every one)",
                    kind.as_str()
                )
            }));
            if report.ok() {
                lines.push(format!(
                    "ok: no problems found ({} notice(s) only)",
                    report.notices()
                ));
            }
            lines.join("\n")
        },
    );
}

pub(super) fn repair(ctx: &Ctx) -> Result<(), Error> {
    let mut db = ctx.open_write()?;
    let report = db.repair()?;
    ctx.out.emit(
        json!({ "fixed": report.fixed, "left": report.left, "left_omitted": report.left_omitted }),
        || {
            let mut lines: Vec<String> = report
                .fixed
                .iter()
                .map(|p| format!("fixed {}: {}", p.kind.as_str(), p.detail))
                .collect();
            let decisions = report.left.iter().filter(|p| p.is_decision()).count();
            if report.fixed.is_empty() {
                lines.push(if decisions > 0 {
                    format!("nothing repair can fix; {decisions} quarantined item(s) wait for your decision:")
                } else {
                    "nothing to fix".to_owned()
                });
            }
            lines.extend(report.left.iter().map(|p| problem_line("left ", p)));
            lines.extend(report.left_omitted.iter().map(|(kind, n)| {
                format!(
                    "… and {n} more {} left (`idstore check --all` lists every one)",
                    kind.as_str()
                )
            }));
            lines.join("\n")
        },
    );
    Ok(())
}
