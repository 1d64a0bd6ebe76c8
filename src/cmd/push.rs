//! `kvc push`: upload what a remote lacks (rules in `kvc::remote::push`).

use super::export::Bar;
use crate::cli::PushArgs;
use crate::config;
use crate::output::{self, align_right, InvalidView, Report};
use crate::Outcome;
use anyhow::Result;
use comfy_table::Cell;
use kvc::bundle::Selection;
use kvc::remote::push::{self, PushAction, PushOptions, PushReport};
use kvc::remote::TextFilter;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct Counts {
    pushed: usize,
    present: usize,
    excluded: usize,
    rejected: usize,
    failed: usize,
    planned: usize,
}

#[derive(Serialize)]
struct PushView {
    dir: String,
    #[serde(flatten)]
    report: PushReport,
    invalid: Vec<InvalidView>,
    counts: Counts,
    bytes_sent: u64,
}

pub(crate) fn action_word(a: PushAction) -> &'static str {
    match a {
        PushAction::Pushed => "pushed",
        PushAction::Present => "present",
        PushAction::Excluded => "excluded",
        PushAction::Rejected => "rejected",
        PushAction::Failed => "failed",
        PushAction::Planned => "would push",
    }
}

impl Report for PushView {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        let mut t = output::table(&["ACTION", "KEY", "NAMESPACE", "SIZE", "NOTE"]);
        for e in &r.entries {
            t.add_row(vec![
                Cell::new(action_word(e.action)),
                Cell::new(output::short_key(&e.key)),
                Cell::new(&e.namespace),
                Cell::new(output::size(e.size)),
                Cell::new(e.message.as_deref().unwrap_or("")),
            ]);
        }
        align_right(&mut t, &[3]);
        if !r.entries.is_empty() {
            output::write_table(out, &t)?;
        }
        for i in &self.invalid {
            writeln!(out, "invalid: {}: {} (not pushed)", i.file, i.error)?;
        }
        for f in &r.foreign {
            writeln!(
                out,
                "foreign: {}: {} {} (kvc pushes only what it can verify)",
                f.file, f.dialect, f.what
            )?;
        }
        for w in &r.warnings {
            writeln!(out, "warning: {w}")?;
        }
        let c = &self.counts;
        if r.dry_run {
            writeln!(
                out,
                "dry run, nothing sent: {} would be pushed, {} present, {} excluded, {} rejected ({} to send to {})",
                c.planned,
                c.present,
                c.excluded,
                c.rejected,
                output::size(
                    r.entries
                        .iter()
                        .filter(|e| e.action == PushAction::Planned)
                        .map(|e| e.size)
                        .sum()
                ),
                r.remote
            )
        } else {
            writeln!(
                out,
                "{} pushed, {} present, {} excluded, {} rejected, {} failed; {} sent to {}",
                c.pushed,
                c.present,
                c.excluded,
                c.rejected,
                c.failed,
                output::size(self.bytes_sent),
                r.remote
            )
        }
    }
}

pub fn run(args: PushArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.dir)?;
    let now = config::now_or_clock(args.clock.now)?;
    let exclude_text = if args.exclude_text.is_empty() {
        None
    } else {
        Some(
            TextFilter::new(&args.exclude_text)
                .map_err(|e| anyhow::anyhow!("--exclude-text: {e}"))?,
        )
    };
    let opts = PushOptions {
        selection: Selection {
            keys: args.keys,
            all: args.all,
            reasons: args.reason,
            min_tokens: args.min_tokens,
            used_within: args.used_within,
            quant: args.quant,
        },
        exclude_text,
        now,
        engine: args.engine.engine(),
    };
    let remote = super::remote::connect(&args.remote)?;
    let plan = push::plan(&dir, &opts)?;
    let mut bar = Bar::new("push");
    let report = if args.dry_run.dry_run {
        push::dry_run(&remote, &plan, &mut bar)?
    } else {
        let mut session = config::session("push", Some(now), args.wait.wait)?;
        push::apply(&mut session, &remote, &plan, &mut bar)?
    };
    let problems = report.has_problems();
    let view = PushView {
        dir: dir.display().to_string(),
        invalid: report.invalid.iter().map(InvalidView::from).collect(),
        counts: Counts {
            pushed: report.count(PushAction::Pushed),
            present: report.count(PushAction::Present),
            excluded: report.count(PushAction::Excluded),
            rejected: report.count(PushAction::Rejected),
            failed: report.count(PushAction::Failed),
            planned: report.count(PushAction::Planned),
        },
        bytes_sent: report.bytes_sent(),
        report,
    };
    output::emit(&view, args.output.json)?;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
