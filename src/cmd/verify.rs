//! `kvc verify`: check directories and files, print one line per finding
//! and a summary, optionally quarantine the files with errors.

use crate::cli::VerifyArgs;
use crate::config;
use crate::output::{self, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use indicatif::ProgressBar;
use kvc::finding::Finding;
use kvc::format::dialect::EngineChoice;
use kvc::session::quarantine::{self, Quarantined};
use kvc::text::sanitize_line;
use kvc::verify::{self, EntryKind, FileReport, Progress, Unloadable, VerifyOptions, VerifyReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A finding as shown: the message sanitized once more, as everything that
/// reaches a terminal or a JSON consumer is.
#[derive(Serialize)]
struct FindingView {
    code: kvc::code::Code,
    severity: kvc::finding::Severity,
    message: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> FindingView {
        FindingView {
            code: f.code,
            severity: f.severity,
            message: sanitize_line(f.message.as_bytes()),
        }
    }
}

#[derive(Serialize)]
struct DirView {
    dir: String,
    /// The engine whose rules judged the files, and how it was decided.
    engine: EngineChoice,
    /// Checkpoints whose bytes could be D1 or D20, read by the engine's rule.
    assumed: usize,
    /// Healthy checkpoints the engine never loads, counts or evicts.
    unloadable: UnloadableView,
    findings: Vec<FindingView>,
    /// Findings of the codes `--allow` names: not counted.
    allowed: Vec<FindingView>,
}

#[derive(Serialize)]
struct UnloadableView {
    files: usize,
    bytes: u64,
    why: Vec<WhyView>,
}

#[derive(Serialize)]
struct WhyView {
    why: String,
    files: usize,
    bytes: u64,
}

impl From<&Unloadable> for UnloadableView {
    fn from(u: &Unloadable) -> UnloadableView {
        UnloadableView {
            files: u.files,
            bytes: u.bytes,
            why: u
                .why
                .iter()
                .map(|(why, files, bytes)| WhyView {
                    why: why.clone(),
                    files: *files,
                    bytes: *bytes,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct FileView {
    file: String,
    kind: EntryKind,
    key: Option<String>,
    /// The FORMAT.md §9 id, `"foreign"` for a KVC file no row describes,
    /// `null` when not identified (not a checkpoint, or no KVC header).
    dialect: Option<&'static str>,
    /// The bytes could be D1 or D20: the directory's engine decided.
    dialect_assumed: bool,
    /// Why the directory's engine never loads it, when it does not.
    not_loaded: Option<String>,
    size: u64,
    /// The payload was read whole.
    deep: bool,
    bytes_read: u64,
    findings: Vec<FindingView>,
    /// Findings of the codes `--allow` names: not counted.
    allowed: Vec<FindingView>,
    quarantined_to: Option<String>,
}

#[derive(Serialize)]
struct Summary {
    dirs: usize,
    files: usize,
    /// Entries that read as checkpoints, as `kvc ls` counts them.
    checkpoints: usize,
    /// Checkpoint names that are not usable checkpoints (`ls`'s invalid).
    invalid: usize,
    /// Files of dialects kvc does not read.
    foreign: usize,
    deep_checked: usize,
    errors: usize,
    warnings: usize,
    /// Findings set apart by `--allow`.
    allowed: usize,
    /// The codes `--allow` named.
    allow: Vec<kvc::code::Code>,
    files_with_errors: usize,
    bytes_read: u64,
    /// Healthy checkpoints their directory's engine never loads.
    unloadable_files: usize,
    unloadable_bytes: u64,
    quarantined: usize,
    strict: bool,
    ok: bool,
}

impl FileView {
    fn of(f: &FileReport, quarantined_to: Option<String>) -> FileView {
        FileView {
            file: show_path(&f.path),
            kind: f.kind,
            key: f.key.as_ref().map(|k| k.to_string()),
            dialect: dialect_label(f),
            dialect_assumed: f.assumed,
            not_loaded: f.not_loaded.as_ref().map(|n| n.to_string()),
            size: f.size,
            deep: f.deep,
            bytes_read: f.bytes_read,
            findings: f.findings.iter().map(FindingView::from).collect(),
            allowed: f.allowed.iter().map(FindingView::from).collect(),
            quarantined_to,
        }
    }
}

/// The files of a report, each view built as it is written and dropped:
/// memory is the report's, not a second copy of it as views (16 MB of
/// views and 12 MB of their strings at 100,000 files).
struct Files<'a> {
    report: &'a VerifyReport,
    /// Where `--quarantine` moved a file, by its index in the report.
    moved: &'a BTreeMap<usize, String>,
}

impl<'a> Files<'a> {
    /// The view of every file, in order.
    fn views(&self) -> impl Iterator<Item = FileView> + 'a {
        let moved = self.moved;
        (self.report.files.iter().enumerate())
            .map(move |(i, f)| FileView::of(f, moved.get(&i).cloned()))
    }
}

impl Serialize for Files<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.report.files.len()))?;
        for v in self.views() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct VerifyView<'a> {
    dirs: Vec<DirView>,
    files: Files<'a>,
    summary: Summary,
    #[serde(skip)]
    quarantine_dir: Option<String>,
    #[serde(skip)]
    left_in_place: Vec<(String, String)>,
}

fn show_path(p: &Path) -> String {
    sanitize_line(p.as_os_str().as_encoded_bytes())
}

fn dialect_label(f: &FileReport) -> Option<&'static str> {
    match (f.dialect, f.foreign) {
        (Some(d), _) => Some(d.as_str()),
        (None, true) => Some("foreign"),
        (None, false) => None,
    }
}

/// The progress bar of `--deep` on a terminal (`output::progress_bytes`):
/// bytes read of the payloads to read, files done in the message.
struct Bar {
    bar: ProgressBar,
    done: AtomicU64,
    total: AtomicU64,
}

impl Bar {
    fn new(bar: ProgressBar) -> Bar {
        Bar {
            bar,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl Progress for Bar {
    fn start(&self, files: u64, deep_bytes: u64) {
        self.total.store(files, Ordering::Relaxed);
        self.bar.set_length(deep_bytes);
    }
    fn read(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn file_done(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        self.bar.set_message(format!("{n}/{total} files"));
    }
}

pub fn run(args: VerifyArgs) -> Result<Outcome> {
    let mut paths = args.paths.clone();
    paths.extend(args.dir.iter().cloned());
    if paths.is_empty() {
        paths.push(config::default_dir()?);
    }
    let now = config::now_or_clock(args.clock.now)?;
    let opts = VerifyOptions {
        deep: args.deep || args.sample.is_some(),
        sample_percent: args.sample.unwrap_or(100.0),
        temp_age: args.temp_age.temp_age,
        all: args.all,
        now,
        engine: args.engine.engine(),
    };
    let bar = opts
        .deep
        .then(|| output::progress_bytes("verify", Some(0)))
        .flatten();
    let mut report = if let Some(bar) = bar {
        let bar = Bar::new(bar);
        let r = verify::verify_paths(&paths, &opts, &bar);
        bar.bar.finish_and_clear();
        r?
    } else {
        verify::verify_paths(&paths, &opts, &verify::NoProgress)?
    };
    report.allow(&args.allow);
    let mut moved: BTreeMap<usize, String> = BTreeMap::new();
    let mut left = Vec::new();
    let mut failed = Vec::new();
    let mut unsynced = Vec::new();
    if let Some(dest) = &args.quarantine {
        // Moving is a write: a plan of what has errors, applied in the
        // write session (locks, identity checks, journal).
        let plan = quarantine::plan(&report, dest)?;
        let mut session = config::session("verify", Some(now), args.wait.wait)?;
        for (i, q) in quarantine::apply(&mut session, &plan, &mut quarantine::NoHooks)? {
            let file = show_path(&report.files[i].path);
            match q {
                Quarantined::Moved {
                    to, unsynced: u, ..
                } => {
                    if let Some(e) = u {
                        unsynced.push(format!(
                            "{file}: moved to {}, but not durable yet: the directory's fsync failed ({e})",
                            show_path(&to)
                        ));
                    }
                    moved.insert(i, show_path(&to));
                }
                Quarantined::LeftInPlace { why } => left.push((file, why)),
                Quarantined::Failed { error } => failed.push(error),
            }
        }
    }
    let view = build_view(&report, &moved, left, &args);
    output::emit(&view, args.output.json)?;
    if !failed.is_empty() {
        for e in &failed[1..] {
            eprintln!("kvc: could not quarantine: {e}");
        }
        bail!(
            "could not quarantine {} file(s): {}",
            failed.len(),
            failed[0]
        );
    }
    for u in &unsynced {
        eprintln!("kvc: {u}");
    }
    Ok(if view.summary.ok && unsynced.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

fn build_view<'a>(
    report: &'a VerifyReport,
    moved: &'a BTreeMap<usize, String>,
    left_in_place: Vec<(String, String)>,
    args: &VerifyArgs,
) -> VerifyView<'a> {
    let errors = report.errors();
    let warnings = report.warnings();
    let quarantined = moved.len();
    let files = Files { report, moved };
    VerifyView {
        dirs: report
            .dirs
            .iter()
            .map(|d| DirView {
                dir: show_path(&d.dir),
                engine: EngineChoice {
                    how: match &d.engine.how {
                        kvc::format::dialect::EngineHow::Inferred(from) => {
                            kvc::format::dialect::EngineHow::Inferred(sanitize_line(
                                from.as_bytes(),
                            ))
                        }
                        how => how.clone(),
                    },
                    ..d.engine.clone()
                },
                assumed: d.assumed,
                unloadable: UnloadableView::from(&d.unloadable),
                findings: d.findings.iter().map(FindingView::from).collect(),
                allowed: d.allowed.iter().map(FindingView::from).collect(),
            })
            .collect(),
        files,
        summary: Summary {
            dirs: report.dirs.len(),
            files: report.files.len(),
            checkpoints: report.checkpoints(),
            invalid: report.invalid(),
            foreign: report.foreign(),
            deep_checked: report.deep_checked(),
            errors,
            warnings,
            allowed: report.allowed(),
            allow: args.allow.clone(),
            files_with_errors: report.files_with_errors(),
            bytes_read: report.bytes_read(),
            unloadable_files: report.unloadable().0,
            unloadable_bytes: report.unloadable().1,
            quarantined,
            strict: args.strict,
            ok: errors == 0 && !(args.strict && warnings > 0),
        },
        quarantine_dir: args.quarantine.as_deref().map(show_path),
        left_in_place,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line per directory holding healthy checkpoints its engine never
/// loads: they stay on disk until removed by hand (FORMAT.md §7).
fn write_unloadable(out: &mut dyn Write, d: &DirView) -> io::Result<()> {
    let u = &d.unloadable;
    if u.files == 0 {
        return Ok(());
    }
    let why: Vec<String> = match u.why.as_slice() {
        [one] => vec![one.why.clone()],
        all => all
            .iter()
            .map(|w| format!("{} with {}", w.files, w.why))
            .collect(),
    };
    writeln!(
        out,
        "never loaded: {} in {}, {} ({}): {} never loads, counts or evicts {}",
        plural(u.files, "checkpoint", "checkpoints"),
        d.dir,
        output::size(u.bytes),
        why.join(", "),
        d.engine.describe(),
        if u.files == 1 { "it" } else { "them" },
    )
}

fn write_finding(out: &mut dyn Write, name: &str, f: &FindingView) -> io::Result<()> {
    let tag = output::paint(f.severity, &format!("{}[{}]", f.severity, f.code));
    writeln!(out, "{tag} {name}: {}", f.message)
}

impl Report for VerifyView<'_> {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        for d in &self.dirs {
            for f in &d.findings {
                write_finding(out, &d.dir, f)?;
            }
        }
        let files = self.files.report.files.iter().enumerate();
        // Only files with something to say get a view.
        let shown =
            files.filter(|(i, f)| !f.findings.is_empty() || self.files.moved.contains_key(i));
        for (i, f) in shown {
            let file = FileView::of(f, self.files.moved.get(&i).cloned());
            for f in &file.findings {
                write_finding(out, &file.file, f)?;
            }
            if let Some(to) = &file.quarantined_to {
                writeln!(out, "quarantined {} -> {to}", file.file)?;
            }
        }
        for (file, why) in &self.left_in_place {
            writeln!(out, "not quarantined {file}: {why}")?;
        }
        for d in &self.dirs {
            write_unloadable(out, d)?;
        }
        let s = &self.summary;
        let mut what = plural(s.checkpoints, "checkpoint", "checkpoints");
        if s.invalid > 0 {
            what.push_str(&format!(", {} invalid", s.invalid));
        }
        if s.foreign > 0 {
            what.push_str(&format!(", {} foreign", s.foreign));
        }
        if s.deep_checked > 0 {
            what.push_str(&format!(", {} read in full", s.deep_checked));
        }
        write!(
            out,
            "{} checked ({what}) in {}: ",
            plural(s.files, "file", "files"),
            plural(s.dirs, "directory", "directories"),
        )?;
        if s.errors == 0 && s.warnings == 0 {
            write!(out, "no problems")?;
        } else {
            if s.errors > 0 {
                write!(
                    out,
                    "{} in {}, ",
                    plural(s.errors, "error", "errors"),
                    plural(s.files_with_errors, "file", "files"),
                )?;
            } else {
                write!(out, "no errors, ")?;
            }
            write!(out, "{}", plural(s.warnings, "warning", "warnings"))?;
            if s.strict && s.warnings > 0 {
                write!(out, " (--strict: warnings fail)")?;
            }
        }
        if s.allowed > 0 {
            let codes: Vec<&str> = s.allow.iter().map(|c| c.name()).collect();
            write!(
                out,
                "; {} not counted (--allow {})",
                plural(s.allowed, "finding", "findings"),
                codes.join(", ")
            )?;
        }
        writeln!(out, "; {} read", output::size(s.bytes_read))?;
        if let (Some(dir), true) = (&self.quarantine_dir, s.quarantined > 0) {
            writeln!(
                out,
                "{} moved to {dir}; the findings of each are in <name>.why beside it",
                plural(s.quarantined, "file", "files")
            )?;
        }
        Ok(())
    }
}
