//! `kvc remote ls|rm|gc`, and connecting to the remote every remote
//! command names (`--remote`, `$KVC_REMOTE`).

use crate::cli::{LsArgs, RemoteArgs, RemoteCommand, RemoteGcArgs, RemoteLsArgs, RemoteRmArgs};
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{anyhow, Result};
use comfy_table::Cell;
use kvc::code::Code;
use kvc::remote::trim::{self, GcOptions, TrimReport};
use kvc::remote::{ConnectOptions, Remote, RemoteUrl, REMOTE_ENV};
use serde::Serialize;
use std::io::{self, Write};

/// The remote `--remote` (or `$KVC_REMOTE`) names, connected with the
/// environment's credentials. Nothing is sent yet.
pub(crate) fn connect(args: &RemoteArgs) -> Result<Remote> {
    let url = args
        .remote
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            anyhow!("no remote: pass --remote s3://bucket/prefix or set ${REMOTE_ENV}")
        })?;
    let url = RemoteUrl::parse(url)?;
    Ok(Remote::connect(
        &url,
        &ConnectOptions {
            read_only: args.read_only,
            allow_http: args.allow_http,
        },
    )?)
}

pub fn run(cmd: RemoteCommand) -> Result<Outcome> {
    match cmd {
        RemoteCommand::Ls(args) => ls(args),
        RemoteCommand::Rm(args) => rm(args),
        RemoteCommand::Gc(args) => gc(args),
    }
}

fn namespace(model: Option<&str>) -> Result<Option<String>> {
    Ok(model.map(kvc::remote::parse_namespace).transpose()?)
}

fn ls(args: RemoteLsArgs) -> Result<Outcome> {
    let remote = connect(&args.remote)?;
    let ns = namespace(args.model.as_deref())?;
    let listing = remote.listing(ns.as_deref())?;
    let scans = listing.scans(remote.url(), args.policy.engine.engine());
    let ls_args = LsArgs {
        dirs: Vec::new(),
        dir: Vec::new(),
        quiet: args.quiet,
        rows: args.rows,
        no_title: args.no_title,
        policy: args.policy,
        quant: args.quant,
        output: args.output,
    };
    super::ls::run_scans(scans, &ls_args)
}

#[derive(Serialize)]
struct TrimView {
    #[serde(flatten)]
    report: TrimReport,
    removed: usize,
    aborted: usize,
    failed: usize,
    bytes_removed: u64,
    #[serde(skip)]
    gc: bool,
}

fn action_word(c: Code, dry_run: bool, upload: bool) -> &'static str {
    match (c, dry_run) {
        (Code::Planned, true) if upload => "would abort",
        (Code::Planned, _) => "would remove",
        (Code::Removed, _) => "removed",
        (Code::Aborted, _) => "aborted",
        (Code::Vanished, _) => "vanished",
        _ => "failed",
    }
}

impl Report for TrimView {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        let mut t = output::table(&["ACTION", "KEY", "NAMESPACE", "SIZE", "WHY"]);
        for (e, upload) in r
            .objects
            .iter()
            .map(|e| (e, false))
            .chain(r.uploads.iter().map(|e| (e, true)))
        {
            t.add_row(vec![
                Cell::new(action_word(e.action, r.dry_run, upload)),
                Cell::new(output::short_key(&e.key)),
                Cell::new(&e.namespace),
                Cell::new(if upload {
                    "upload".to_string()
                } else {
                    output::size(e.size)
                }),
                Cell::new(&e.why),
            ]);
        }
        align_right(&mut t, &[3]);
        if !r.objects.is_empty() || !r.uploads.is_empty() {
            output::write_table(out, &t)?;
        }
        let n =
            |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        if r.dry_run {
            write!(out, "dry run, nothing deleted: ")?;
            write!(
                out,
                "{} ({}) would be removed",
                n(r.objects.len(), "checkpoint", "checkpoints"),
                output::size(self.bytes_removed)
            )?;
            if self.gc {
                write!(
                    out,
                    ", {} would be aborted",
                    n(r.uploads.len(), "upload", "uploads")
                )?;
            }
        } else {
            write!(
                out,
                "{} removed ({})",
                n(self.removed, "checkpoint", "checkpoints"),
                output::size(self.bytes_removed)
            )?;
            if self.gc {
                write!(out, ", {} aborted", n(self.aborted, "upload", "uploads"))?;
            }
            if self.failed > 0 {
                write!(out, ", {} failed", self.failed)?;
            }
        }
        writeln!(
            out,
            "; {} of checkpoints {} on {}",
            output::size(r.bytes_after),
            if r.dry_run { "would remain" } else { "remain" },
            r.remote
        )?;
        if r.strays > 0 {
            writeln!(
                out,
                "{} under the prefix not kvc's: left alone",
                n(r.strays, "object", "objects")
            )?;
        }
        if let Some(note) = &r.uploads_note {
            writeln!(out, "note: {note}")?;
        }
        Ok(())
    }
}

fn emit(report: TrimReport, gc: bool, json: bool) -> Result<Outcome> {
    let problems = report.has_problems();
    let view = TrimView {
        removed: report.count(Code::Removed),
        aborted: report.count(Code::Aborted),
        failed: report.count(Code::Failed),
        bytes_removed: report.bytes_removed(),
        report,
        gc,
    };
    output::emit(&view, json)?;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

fn rm(args: RemoteRmArgs) -> Result<Outcome> {
    let remote = connect(&args.remote)?;
    let ns = namespace(args.model.as_deref())?;
    let plan = trim::plan_rm(&remote, &args.keys, ns.as_deref())?;
    let report = if args.dry_run.dry_run {
        plan.report
    } else {
        trim::apply(&remote, plan)?
    };
    emit(report, false, args.output.json)
}

fn gc(args: RemoteGcArgs) -> Result<Outcome> {
    let remote = connect(&args.remote)?;
    let ns = namespace(args.model.as_deref())?;
    let opts = GcOptions {
        max_age: args.max_age,
        max_size: args.max_size,
        upload_age: args.uploads_older_than,
        now: config::now_or_clock(args.clock.now)?,
    };
    trim::check_gc(&opts)?;
    let plan = trim::plan_gc(&remote, ns.as_deref(), &opts)?;
    let report = if args.dry_run.dry_run {
        plan.report
    } else {
        trim::apply(&remote, plan)?
    };
    emit(report, true, args.output.json)
}
