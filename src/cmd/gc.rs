//! `kvc gc`: remove temp files of crashed writers, and empty kvc state
//! (`kvc::gc`).

use crate::cli::GcArgs;
use crate::config;
use crate::confirm::{self, LimitView};
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use comfy_table::Cell;
use kvc::code::Code;
use kvc::gc::{self, GcFate, GcOptions, GcPlan, Temp, Verdict};
use kvc::guard::Deletion;
use kvc::scan::TempWriter;
use kvc::text::sanitize_line;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

#[derive(Serialize)]
struct TempView {
    file: String,
    /// `null` for a name without one (ds4-agent's mkstemp names,
    /// hanzo-engine's `<key>.kv.tmp`).
    pid: Option<u32>,
    /// `false` when `pid` may be a ds4-agent mkstemp suffix of six digits.
    pid_certain: bool,
    writer: TempWriter,
    size: u64,
    /// Unix seconds.
    modified: Option<u64>,
    /// Seconds since the last modification.
    age: Option<u64>,
    /// `stale`, `writer-alive`, `recent`, `not-a-file`, `held-open`,
    /// `holders-unknown` (at planning).
    verdict: Verdict,
    /// `planned` (dry run, stale), `kept`, `removed`, `vanished`, `failed`.
    outcome: Code,
    detail: Option<String>,
}

impl TempView {
    fn new(t: &Temp, fate: Option<&GcFate>, dry_run: bool) -> TempView {
        let (outcome, detail) = match fate {
            Some(f @ GcFate::Kept(v)) => (f.code(), Some(format!("{} now", v.describe()))),
            Some(f @ GcFate::Failed(e)) => (f.code(), Some(e.clone())),
            Some(f @ GcFate::RemovedUnsynced(e)) => (
                f.code(),
                Some(format!(
                    "removed, but not durable yet: the directory's fsync failed ({e})"
                )),
            ),
            Some(f) => (f.code(), None),
            None if dry_run && t.verdict == Verdict::Stale => (Code::Planned, None),
            None => (Code::Kept, t.unseen.map(|u| u.describe())),
        };
        TempView {
            file: sanitize_line(t.file.file.as_bytes()),
            pid: t.file.kind.pid,
            pid_certain: t.file.kind.pid_certain,
            writer: t.file.kind.writer,
            size: t.file.size,
            modified: t
                .file
                .modified
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            age: t.age.map(|a| a.as_secs()),
            verdict: t.verdict,
            outcome,
            detail,
        }
    }
}

#[derive(Serialize)]
struct GcReport {
    dir: String,
    dry_run: bool,
    /// `--temp-age` in seconds.
    temp_age: u64,
    temp_files: Vec<TempView>,
    /// Bytes removed, or that would be.
    freed_bytes: u64,
    /// The clock of the run (`--now`), for the ages shown.
    #[serde(skip)]
    now: u64,
    /// `.kvc/` holds nothing worth keeping (no journal).
    empty_state: bool,
    removed_state: bool,
    /// `--max-delete`, the share of the directory the stale temp files
    /// are, and whether that is within it; `null` without `--max-delete`.
    limit: Option<LimitView>,
}

impl GcReport {
    fn new(plan: &GcPlan, temp_age: Duration, dry_run: bool, now: u64) -> GcReport {
        GcReport {
            now,
            dir: plan.dir.display().to_string(),
            dry_run,
            temp_age: temp_age.as_secs(),
            temp_files: Vec::new(),
            freed_bytes: 0,
            empty_state: plan.empty_state,
            removed_state: false,
            limit: None,
        }
    }
}

impl Report for GcReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        if !self.temp_files.is_empty() {
            let mut t = output::table(&["OUTCOME", "FILE", "PID", "SIZE", "MODIFIED", "NOTE"]);
            for f in &self.temp_files {
                let note = f
                    .detail
                    .clone()
                    .unwrap_or_else(|| f.verdict.describe().to_string());
                t.add_row([
                    Cell::new(if f.outcome == Code::Planned {
                        "would remove"
                    } else {
                        f.outcome.name()
                    }),
                    Cell::new(&f.file),
                    Cell::new(match (f.pid, f.pid_certain) {
                        (Some(pid), true) => pid.to_string(),
                        // Maybe mkstemp's digits.
                        (Some(pid), false) => format!("{pid}?"),
                        (None, _) => "-".into(),
                    }),
                    Cell::new(output::size(f.size)),
                    Cell::new(f.age.map_or("-".into(), |a| {
                        output::ago(self.now.saturating_sub(a).max(1), self.now)
                    })),
                    Cell::new(note),
                ]);
            }
            align_right(&mut t, &[2, 3]);
            output::write_table(out, &t)?;
        }
        let n = self
            .temp_files
            .iter()
            .filter(|f| matches!(f.outcome, Code::Planned | Code::Removed))
            .count();
        writeln!(
            out,
            "{} {n} stale temp {}, {}",
            if self.dry_run {
                "would remove"
            } else {
                "removed"
            },
            if n == 1 { "file" } else { "files" },
            output::size(self.freed_bytes)
        )?;
        let blind = self
            .temp_files
            .iter()
            .filter(|f| f.verdict == Verdict::HoldersUnknown)
            .count();
        if blind > 0 {
            writeln!(
                out,
                "kept {blind} old temp {} without a certain pid: kvc could not see every process that may hold {} open (see NOTE)",
                if blind == 1 { "file" } else { "files" },
                if blind == 1 { "it" } else { "them" },
            )?;
        }
        if self.dry_run && self.empty_state {
            writeln!(
                out,
                "would remove empty kvc state ({})",
                kvc::scan::STATE_DIR
            )?;
        }
        if self.removed_state {
            writeln!(out, "removed empty kvc state ({})", kvc::scan::STATE_DIR)?;
        }
        Ok(())
    }
}

pub fn run(args: GcArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.get())?;
    let now = config::now_or_clock(args.clock.now)?;
    // Ages against the clock to the nanosecond, as mtimes are: in whole
    // seconds a file written a moment ago would look written in the future.
    let opts = GcOptions {
        temp_age: args.temp_age.temp_age,
        now: match args.clock.now {
            Some(n) => UNIX_EPOCH + Duration::from_secs(n),
            None => std::time::SystemTime::now(),
        },
    };
    let dry_run = args.write.dry_run.dry_run;
    // The plan is the dry run; applying it is the one write path.
    let plan = gc::plan_dir(&dir, &opts)?;
    let limit = confirm::limit(&args.write, None);
    let d = Deletion {
        files: plan.stale().count(),
        bytes: plan.bytes_to_free(),
        base: if plan.stale().next().is_some() {
            kvc::guard::dir_bytes(&dir)?
        } else {
            0
        },
    };
    let over = d.check(&dir, limit);
    if !dry_run {
        d.check(&dir, limit)?;
        confirm::confirm("gc", &dir, &d, &args.write)?;
    }
    let mut report = if dry_run {
        GcReport {
            temp_files: plan
                .temps
                .iter()
                .map(|t| TempView::new(t, None, true))
                .collect(),
            freed_bytes: plan.bytes_to_free(),
            ..GcReport::new(&plan, args.temp_age.temp_age, true, now)
        }
    } else {
        let mut session = config::session("gc", Some(now), args.write.wait.wait)?;
        let result = gc::apply(&mut session, plan, &opts, &mut gc::NoHooks)?;
        let temp_files = result
            .plan
            .temps
            .iter()
            .map(|t| {
                let fate = result
                    .handled
                    .iter()
                    .find(|(h, _)| h.file.path == t.file.path)
                    .map(|(_, f)| f);
                TempView::new(t, fate, false)
            })
            .collect();
        GcReport {
            temp_files,
            freed_bytes: result.freed_bytes(),
            removed_state: result.removed_state,
            ..GcReport::new(&result.plan, args.temp_age.temp_age, false, now)
        }
    };
    report.limit = LimitView::new(limit, &d);
    if !args.write.quiet {
        output::emit(&report, args.output.json)?;
    }
    let failed = output::report_removal_failures(
        report
            .temp_files
            .iter()
            .filter(|f| f.outcome == Code::Failed)
            .map(|f| (f.file.as_str(), f.detail.as_deref())),
    );
    if failed > 0 {
        bail!("{failed} stale temp files not removed");
    }
    if let (true, Err(e)) = (dry_run, over) {
        eprintln!("kvc: {e} (a real run would stop here)");
        return Ok(Outcome::Refused);
    }
    let unsynced = output::report_unsynced(
        report
            .temp_files
            .iter()
            .filter(|f| f.outcome == Code::Removed)
            .filter_map(|f| Some((f.file.as_str(), f.detail.as_deref()?))),
    );
    Ok(if unsynced > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
