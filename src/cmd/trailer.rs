//! `kvc trailer`: see and rewrite the tool-id map trailers (FORMAT.md §5)
//! of checkpoints. Planning and rewriting are `kvc::trailer` (crash safety
//! in `kvc::trailer::rewrite`); this module turns flags into calls and
//! results into one report.

use crate::cli::{
    RewriteArgs, TrailerCommand, TrailerEditArgs, TrailerExportArgs, TrailerLsArgs, TrailerSetArgs,
};
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{anyhow, bail, Context, Result};
use comfy_table::Cell;
use indicatif::ProgressBar;
use kvc::code::Code;
use kvc::format::checkpoint::CheckpointFile;
use kvc::format::trailer::ToolMap;
use kvc::resolve;
use kvc::session::parent_dir;
use kvc::text::{self, sanitize_line};
use kvc::trailer::json::{self, ds4_reading, entry_to_json, EntryJson};
use kvc::trailer::rewrite::{self, Edit, Method, TrailerState};
use kvc::trailer::{self as trailers, key_of, Engines, FileResult, Op, Targets};
use serde::Serialize;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Characters of DSML a listing previews.
const PREVIEW_CHARS: usize = 60;

pub fn run(cmd: TrailerCommand) -> Result<Outcome> {
    match cmd {
        TrailerCommand::Ls(a) => ls(a),
        TrailerCommand::Export(a) => export(a),
        TrailerCommand::Set(a) => set(a),
        TrailerCommand::Prune(a) => edit_each(a, Op::Prune),
        TrailerCommand::Strip(a) => edit_each(a, Op::Strip),
    }
}

/// A file `--all` leaves alone, and why (a note, not an error).
#[derive(Serialize)]
struct SkippedView {
    key: String,
    file: String,
    path: String,
    why: String,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn shown_path(path: &Path) -> String {
    sanitize_line(path.as_os_str().as_encoded_bytes())
}

/// The one file a KEY names (`resolve::locate`, the one resolver).
fn locate(key: &str, dir: Option<PathBuf>) -> Result<PathBuf> {
    Ok(resolve::locate(key, dir.as_deref(), config::default_dir)?.path)
}

/// Open a checkpoint to read its trailer; a vanished file is an error here
/// (the user named it a moment ago), and so is a file without ds4's
/// tool-id map (a ds4-agent session, a hanzo-engine file, a foreign one).
fn open_for_reading(path: &Path) -> Result<CheckpointFile> {
    let cf = rewrite::open_checkpoint(path, false)?
        .ok_or_else(|| anyhow!("{}: no such file (removed meanwhile?)", path.display()))?;
    let engine = Engines::default().of(parent_dir(path));
    rewrite::tool_map_dialect(&cf, engine).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(cf)
}

/// The state of a file's trailer, for `ls` and `export`, read entry header
/// by entry header: a broken trailer is an error naming the file.
fn read_state(cf: &CheckpointFile) -> Result<TrailerState> {
    let state = TrailerState::read(cf).with_context(|| cf.path.display().to_string())?;
    if let TrailerState::Broken { bytes, error } = &state {
        bail!(
            "{}: ext bit 0 is set but the {bytes} bytes after the payload are not a tool-id map ({error}); `kvc trailer strip` removes them",
            cf.path.display()
        );
    }
    Ok(state)
}

// ---------------------------------------------------------------------------
// ls
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct EntryView {
    /// Position in the map, from 1.
    index: usize,
    /// Sanitized for display; `kvc trailer export` has the exact bytes.
    id: String,
    id_bytes: usize,
    dsml_bytes: usize,
    in_text: bool,
    /// What ds4 makes of the entry when it loads the map: `used`,
    /// `shadowed` (a later entry has the same id: the last one wins) or
    /// `dropped` (its id or DSML starts with a NUL byte).
    ds4: &'static str,
    /// For `shadowed`: the entry ds4 uses instead (its `index`).
    shadowed_by: Option<usize>,
    /// How ds4 reads the id or DSML other than it is stored (a NUL byte
    /// ends them: ds4 reads C strings).
    note: Option<String>,
    /// The DSML block's start, white space folded, sanitized.
    preview: String,
}

#[derive(Serialize)]
struct LsReport {
    key: String,
    file: String,
    path: String,
    /// `none`, `map` or `stray` (a broken trailer is an error, exit 2).
    state: &'static str,
    /// Ext bit 0.
    flag: bool,
    /// Bytes after the payload.
    trailer_bytes: u64,
    entries: Vec<EntryView>,
    /// For `stray`: how many entries the ignored bytes decode to, if they
    /// form a map.
    stray_entries: Option<usize>,
}

/// The start of a DSML block on one line: runs of white space folded to one
/// space (blocks start with blank lines), then sanitized and cut.
fn preview(dsml: &[u8]) -> String {
    let mut folded = Vec::with_capacity(dsml.len().min(PREVIEW_CHARS * 4));
    let mut space = false;
    for &b in dsml {
        if b.is_ascii_whitespace() {
            space = !folded.is_empty();
            continue;
        }
        if space {
            folded.push(b' ');
            space = false;
        }
        folded.push(b);
        // Enough bytes for PREVIEW_CHARS characters whatever their width.
        if folded.len() > PREVIEW_CHARS * 4 {
            break;
        }
    }
    // More than PREVIEW_CHARS * 4 bytes always make more than PREVIEW_CHARS
    // characters, so a cut input is always marked.
    let s = sanitize_line(&folded);
    let mut chars = s.chars();
    let cut: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn ls(args: TrailerLsArgs) -> Result<Outcome> {
    let path = locate(&args.key, args.dir.get())?;
    let cf = open_for_reading(&path)?;
    let state = read_state(&cf)?;
    let mut entries = Vec::new();
    if let TrailerState::Map(_) = &state {
        // Held to list it (up to a cap); its blocks looked for in the text
        // in one pass.
        let map = rewrite::read_active_map(&cf)?.unwrap_or_default();
        let found = rewrite::in_text(&cf, &map).with_context(|| path.display().to_string())?;
        for (i, ((e, used), in_text)) in map.entries.iter().zip(map.uses()).zip(found).enumerate() {
            let (ds4, shadowed_by, note) = ds4_reading(e, used);
            entries.push(EntryView {
                index: i + 1,
                id: sanitize_line(&e.id),
                id_bytes: e.id.len(),
                dsml_bytes: e.dsml.len(),
                in_text,
                ds4,
                shadowed_by,
                note,
                preview: preview(&e.dsml),
            });
        }
    }
    let report = LsReport {
        key: key_of(&path),
        file: sanitize_line(file_name(&path).as_bytes()),
        path: shown_path(&path),
        state: state.name(),
        flag: cf.header.ext_flags.has_tool_map(),
        trailer_bytes: cf.trailer_len(),
        entries,
        stray_entries: match &state {
            TrailerState::Stray { entries, .. } => *entries,
            _ => None,
        },
    };
    output::emit(&report, args.output.json)?;
    Ok(Outcome::Clean)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Report for LsReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        match self.state {
            "map" => writeln!(
                out,
                "{}: tool-id map, {}, {} after the payload",
                self.file,
                plural(self.entries.len(), "entry", "entries"),
                output::size(self.trailer_bytes)
            )?,
            "stray" => {
                writeln!(
                    out,
                    "{}: no tool-id map (ext bit 0 clear); ds4 ignores the {} after the payload",
                    self.file,
                    output::size(self.trailer_bytes)
                )?;
                let what = match self.stray_entries {
                    Some(n) => format!(
                        "they hold a map of {} (an interrupted rewrite?)",
                        plural(n, "entry", "entries")
                    ),
                    None => "they are not a map".to_string(),
                };
                writeln!(out, "{what}; `kvc trailer strip` removes them")?;
            }
            _ => writeln!(out, "{}: no tool-id map", self.file)?,
        }
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut t = output::table(&["#", "ID", "DSML", "IN TEXT", "DS4", "PREVIEW"]);
        for e in &self.entries {
            let ds4 = match e.shadowed_by {
                Some(by) => format!("shadowed by #{by}"),
                None => e.ds4.to_string(),
            };
            t.add_row(vec![
                Cell::new(e.index),
                Cell::new(&e.id),
                Cell::new(output::size(e.dsml_bytes as u64)),
                Cell::new(if e.in_text { "yes" } else { "no" }),
                Cell::new(ds4),
                Cell::new(&e.preview),
            ]);
        }
        align_right(&mut t, &[0, 2]);
        output::write_table(out, &t)?;
        for e in &self.entries {
            if let Some(n) = &e.note {
                writeln!(out, "#{}: {n}", e.index)?;
            }
        }
        let count = |ds4: &str| self.entries.iter().filter(|e| e.ds4 == ds4).count();
        let stale = (self.entries.iter())
            .filter(|e| !e.in_text && e.ds4 == "used")
            .count();
        let mut parts = Vec::new();
        if stale > 0 {
            parts.push(format!(
                "{} not in the text",
                plural(stale, "entry", "entries")
            ));
        }
        let shadowed = count("shadowed");
        if shadowed > 0 {
            parts.push(format!(
                "{} shadowed by a later entry with the same id (ds4 uses the last)",
                plural(shadowed, "entry", "entries")
            ));
        }
        let dropped = count("dropped");
        if dropped > 0 {
            parts.push(format!(
                "{} that ds4 drops (a NUL byte first)",
                plural(dropped, "entry", "entries")
            ));
        }
        if !parts.is_empty() {
            writeln!(out, "{}: `kvc trailer prune` drops them", parts.join("; "))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The JSON form of a map (export, set)
// ---------------------------------------------------------------------------

/// JSON for a terminal: serde_json already escapes C0 controls, quotes
/// and backslashes; also escape DEL, C1 controls (U+009B is a one-byte CSI)
/// and bidi controls, so exporting a hostile DSML block to a terminal
/// cannot drive it. `\uXXXX` is lossless: parsing gives back the same text.
/// Outside strings serde_json writes only ASCII punctuation, digits,
/// spaces and newlines, so every character replaced is inside a string.
fn terminal_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c != '\n' && text::is_dangerous(c) {
            // All of them are in the Basic Multilingual Plane.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn export(args: TrailerExportArgs) -> Result<Outcome> {
    let path = locate(&args.key, args.dir.get())?;
    let cf = open_for_reading(&path)?;
    // Only the map ds4 would load: stray bytes after a clear bit 0 are not one.
    let entries: Vec<EntryJson> = match read_state(&cf)? {
        TrailerState::Map(_) => {
            let m = rewrite::read_active_map(&cf)?.unwrap_or_default();
            (m.entries.iter())
                .zip(m.uses())
                .map(|(e, u)| entry_to_json(e, u))
                .collect()
        }
        _ => Vec::new(),
    };
    let json = serde_json::to_string_pretty(&entries)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", terminal_safe_json(&json))?;
    out.flush()?;
    Ok(Outcome::Clean)
}

// ---------------------------------------------------------------------------
// set, prune, strip
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct DroppedView {
    /// Position in the map before, from 1.
    index: usize,
    id: String,
    reason: rewrite::DropReason,
}

#[derive(Serialize)]
struct FileView {
    key: String,
    file: String,
    path: String,
    /// `rewritten`, `would-rewrite` (dry run), `unchanged`, `vanished`.
    result: Code,
    /// Trailer state before: `none`, `map`, `stray`, `broken`.
    before: &'static str,
    entries_before: Option<usize>,
    entries_after: usize,
    trailer_bytes_before: u64,
    trailer_bytes_after: u64,
    /// Entries prune drops.
    dropped: Vec<DroppedView>,
    /// Entries set stores although their DSML block is not in the text
    /// (`--allow-missing`).
    not_in_text: usize,
    /// `in-place`, `clone`, `copy`; null unless rewritten.
    method: Option<&'static str>,
    /// What the journal records as the reason.
    why: String,
    /// How it was written, when that is worth a word (a hard-linked file
    /// copied rather than rewritten in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize)]
struct ErrorView {
    path: String,
    error: String,
}

#[derive(Serialize)]
struct RewriteReport {
    command: &'static str,
    dry_run: bool,
    files: Vec<FileView>,
    /// Files `--all` met and left alone (ds4-agent sessions, hanzo-engine
    /// files, foreign files), with why: notes, not errors.
    skipped: Vec<SkippedView>,
    errors: Vec<ErrorView>,
}

fn entries_of(state: &TrailerState) -> Option<usize> {
    match state {
        TrailerState::Map(m) => Some(m.entries),
        _ => None,
    }
}

fn view(path: &Path, r: &FileResult) -> FileView {
    let mut v = FileView {
        key: key_of(path),
        file: sanitize_line(file_name(path).as_bytes()),
        path: shown_path(path),
        result: r.code,
        before: "none",
        entries_before: None,
        entries_after: 0,
        trailer_bytes_before: 0,
        trailer_bytes_after: 0,
        dropped: Vec::new(),
        not_in_text: 0,
        method: r.used.map(|u| u.name()),
        why: r.why.clone(),
        note: r.note.clone(),
    };
    if let Some(plan) = &r.plan {
        let (before_bytes, after_bytes) = plan.trailer_bytes();
        v.before = plan.before.name();
        v.entries_before = entries_of(&plan.before);
        v.entries_after = plan.after.entries.len();
        v.trailer_bytes_before = before_bytes;
        v.trailer_bytes_after = after_bytes;
        v.not_in_text = plan.missing.len();
        v.dropped = plan
            .dropped
            .iter()
            .map(|d| DroppedView {
                index: d.index + 1,
                id: sanitize_line(&d.entry.id),
                reason: d.reason,
            })
            .collect();
    }
    v
}

/// The progress bar of a rewrite (`output::progress_bytes`: on a terminal
/// only), over the bytes of the files planned: a copy advances it chunk
/// by chunk (a multi-GiB checkpoint takes a while), a clone or an in-place
/// rewrite file by file.
struct Bar {
    bar: Option<ProgressBar>,
    /// Bytes of the files done, and of the one being copied so far.
    done: u64,
    in_file: u64,
    sizes: std::collections::HashMap<PathBuf, u64>,
}

impl trailers::Hooks for Bar {
    fn copied(&mut self, _path: &Path, bytes: u64) {
        self.in_file += bytes;
        if let Some(b) = &self.bar {
            b.set_position(self.done + self.in_file);
        }
    }
    fn file_done(&mut self, path: &Path) {
        self.done += self.sizes.get(path).copied().unwrap_or(self.in_file);
        self.in_file = 0;
        if let Some(b) = &self.bar {
            b.set_position(self.done);
            b.set_message(file_name(path).chars().take(16).collect::<String>());
        }
    }
}

/// Plan every file, and unless it is a dry run apply the plan in the write
/// session; a file that fails is reported on its own line and the others
/// are still done (exit 2 at the end).
fn rewrite_all(
    op: Op,
    edit: Edit<'_>,
    args: RewriteArgs,
    targets: Targets,
    json: bool,
) -> Result<Outcome> {
    let n = targets.paths.len();
    let skipped: Vec<SkippedView> = targets
        .skipped
        .iter()
        .map(|s| SkippedView {
            key: key_of(&s.path),
            file: sanitize_line(file_name(&s.path).as_bytes()),
            path: shown_path(&s.path),
            why: s.why.clone(),
        })
        .collect();
    let plan = trailers::plan(targets, op, edit);
    let results = if args.dry_run.dry_run {
        plan.files
    } else {
        let method: Method = args.method.into();
        let mut session = config::session("trailer", args.clock.now, args.wait.wait)?;
        let sizes: std::collections::HashMap<PathBuf, u64> = plan
            .files
            .iter()
            .filter_map(|(p, r)| {
                let size = r.as_ref().ok()?.plan.as_ref()?.size();
                Some((p.clone(), size))
            })
            .collect();
        let total = sizes.values().sum();
        let mut hooks = Bar {
            bar: output::progress_bytes(op.name(), Some(total)),
            done: 0,
            in_file: 0,
            sizes,
        };
        let r = trailers::apply(&mut session, plan, method, &mut hooks)?;
        if let Some(b) = &hooks.bar {
            b.finish_and_clear();
        }
        r
    };
    let mut report = RewriteReport {
        command: op.name(),
        dry_run: args.dry_run.dry_run,
        files: Vec::new(),
        skipped,
        errors: Vec::new(),
    };
    for (p, r) in results {
        match r {
            Ok(r) => report.files.push(view(&p, &r)),
            Err(e) => {
                let error = e.to_string();
                eprintln!("kvc: {error}");
                report.errors.push(ErrorView {
                    path: shown_path(&p),
                    error,
                });
            }
        }
    }
    output::emit(&report, json)?;
    if !report.errors.is_empty() {
        bail!(
            "{} of {} not rewritten",
            report.errors.len(),
            plural(n, "checkpoint", "checkpoints")
        );
    }
    Ok(Outcome::Clean)
}

impl Report for RewriteReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.files {
            let key = output::short_key(&f.key);
            match f.result {
                Code::Rewritten => writeln!(
                    out,
                    "{key}  {}: {} [{}]",
                    self.command,
                    f.why,
                    f.method.unwrap_or("-")
                )?,
                Code::WouldRewrite => writeln!(out, "{key}  would {}: {}", self.command, f.why)?,
                Code::Unchanged => writeln!(out, "{key}  unchanged ({})", f.why)?,
                _ => writeln!(
                    out,
                    "{key}  vanished: removed or replaced by an engine meanwhile; left alone"
                )?,
            }
            if let Some(n) = &f.note {
                writeln!(out, "    {n}")?;
            }
            for d in &f.dropped {
                writeln!(
                    out,
                    "    drop entry {} (id \"{}\"): {}",
                    d.index,
                    d.id,
                    d.reason.describe()
                )?;
            }
        }
        for s in &self.skipped {
            writeln!(out, "{}  skipped: {}", output::short_key(&s.key), s.why)?;
        }
        if self.files.is_empty() && self.errors.is_empty() {
            writeln!(out, "nothing to {}", self.command)?;
        }
        writeln!(out, "{}", self.summary())?;
        Ok(())
    }
}

impl RewriteReport {
    /// The last line: `strip: 3 rewritten (2 in-place, 1 copy), 1
    /// unchanged, 2 skipped` (a dry run: `would be rewritten`, and that
    /// nothing was written).
    fn summary(&self) -> String {
        let count = |c: Code| self.files.iter().filter(|f| f.result == c).count();
        let mut methods: Vec<(&str, usize)> = Vec::new();
        for m in self.files.iter().filter_map(|f| f.method) {
            match methods.iter_mut().find(|(n, _)| *n == m) {
                Some(e) => e.1 += 1,
                None => methods.push((m, 1)),
            }
        }
        let mut parts = vec![if self.dry_run {
            format!("{} would be rewritten", count(Code::WouldRewrite))
        } else if methods.is_empty() {
            format!("{} rewritten", count(Code::Rewritten))
        } else {
            let how: Vec<String> = methods.iter().map(|(m, n)| format!("{n} {m}")).collect();
            format!("{} rewritten ({})", count(Code::Rewritten), how.join(", "))
        }];
        for (n, what) in [
            (count(Code::Unchanged), "unchanged"),
            (count(Code::Vanished), "vanished"),
            (self.skipped.len(), "skipped"),
            (self.errors.len(), "failed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut line = format!("{}: {}", self.command, parts.join(", "));
        if self.dry_run {
            line.push_str(" (dry run: nothing was written)");
        }
        line
    }
}

/// The map's JSON, from a file or standard input, at most
/// [`json::MAX_INPUT`] bytes (a `--from /dev/zero` is an error, not a
/// machine out of memory).
fn read_input(from: &Path) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    let (name, n) = if from.as_os_str() == "-" {
        let n = io::stdin()
            .lock()
            .take(json::MAX_INPUT + 1)
            .read_to_end(&mut b)
            .context("standard input")?;
        ("standard input".to_string(), n)
    } else {
        let f = fs::File::open(from).with_context(|| from.display().to_string())?;
        let n = f
            .take(json::MAX_INPUT + 1)
            .read_to_end(&mut b)
            .with_context(|| from.display().to_string())?;
        (from.display().to_string(), n)
    };
    if n as u64 > json::MAX_INPUT {
        bail!(
            "{name}: more than {} of JSON; not a tool-id map kvc reads",
            output::size(json::MAX_INPUT)
        );
    }
    Ok(b)
}

fn set(args: TrailerSetArgs) -> Result<Outcome> {
    let input = read_input(&args.from)?;
    let source = if args.from.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        args.from.display().to_string()
    };
    let map: ToolMap = json::parse_map(&input).map_err(|e| anyhow!("{source}: {e}"))?;
    let (keys, dir) = config::keys_and_dir(args.keys, args.dir.dir, false)?;
    let targets = trailers::targets_of_keys(&keys, dir.as_deref(), config::default_dir)?;
    let edit = Edit::Set {
        map: &map,
        allow_missing: args.allow_missing,
    };
    rewrite_all(Op::Set, edit, args.rewrite, targets, args.output.json)
}

/// `prune` and `strip`: the same walk over the selected files, with the
/// edit and the `--all` selection that fit the operation.
fn edit_each(args: TrailerEditArgs, op: Op) -> Result<Outcome> {
    let edit = match op {
        Op::Prune => Edit::Prune,
        Op::Strip => Edit::Strip,
        Op::Set => unreachable!("set takes a map: see `set`"),
    };
    let all = args.targets.all;
    let (keys, dir) = config::keys_and_dir(args.targets.keys, args.dir.dir, all)?;
    let targets = if all {
        if !keys.is_empty() {
            bail!(
                "--all takes no KEY, only the cache directory: {}",
                keys.join(" ")
            );
        }
        trailers::targets_all(&config::dir_or_default(dir)?, op)?
    } else {
        trailers::targets_of_keys(&keys, dir.as_deref(), config::default_dir)?
    };
    rewrite_all(op, edit, args.rewrite, targets, args.output.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_json_escapes_c1_and_bidi_losslessly() {
        let s = "a\u{9b}2J\u{202e}b\u{7f}";
        let json = serde_json::to_string_pretty(&vec![s]).unwrap();
        let safe = terminal_safe_json(&json);
        assert!(!safe.contains('\u{9b}') && !safe.contains('\u{202e}') && !safe.contains('\u{7f}'));
        assert!(safe.contains("\\u009b") && safe.contains("\\u202e"));
        let back: Vec<String> = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, [s]);
    }

    #[test]
    fn preview_folds_blank_lines_and_cuts() {
        assert_eq!(preview(b"\n\n<a>\n  <b>"), "<a> <b>");
        let long = "x".repeat(200);
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        assert_eq!(preview(b"\x1b[2J"), "\\e[2J");
    }
}
