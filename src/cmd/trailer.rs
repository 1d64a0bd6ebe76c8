//! `kvc trailer`: see and rewrite the tool-id map trailers (FORMAT.md §5)
//! of checkpoints. The rewriting itself, and why it is crash-safe, is in
//! `kvc::rewrite`.

use crate::cli::{
    KeysOrAll, RewriteArgs, TrailerCommand, TrailerEditArgs, TrailerExportArgs, TrailerLsArgs,
    TrailerSetArgs,
};
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{anyhow, bail, Context, Result};
use comfy_table::Cell;
use indicatif::ProgressBar;
use kvc::format::checkpoint::{CheckpointFile, Key};
use kvc::format::dialect::Engine;
use kvc::format::trailer::{c_string, EntryUse, NulField, ToolMap, ToolMapEntry};
use kvc::journal::{self, Record};
use kvc::lock::DirLock;
use kvc::resolve::{looks_like_path, resolve};
use kvc::rewrite::{self, Applied, Edit, Method, Plan, Step, TrailerState};
use kvc::scan::{self, ScanOptions};
use kvc::text::{self, sanitize_line};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Test-only hook, compiled in on purpose so the crash test exercises the
/// real binary: `KVC_TEST_KILL_AT_STEP=N` makes kvc SIGKILL itself at the
/// N-th step of its rewrites (`kvc::rewrite::Step`), i.e. between two
/// writes. Nobody else has a reason to set it; all it can do is kill kvc.
pub const KILL_AT_STEP_ENV: &str = "KVC_TEST_KILL_AT_STEP";

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

// ---------------------------------------------------------------------------
// Finding the files
// ---------------------------------------------------------------------------

/// The directory keys are looked up in, computed only when a key needs it
/// (paths do not).
struct Dir {
    given: Option<PathBuf>,
    resolved: Option<PathBuf>,
}

impl Dir {
    fn new(given: Option<PathBuf>) -> Dir {
        Dir {
            given,
            resolved: None,
        }
    }

    fn get(&mut self) -> Result<PathBuf> {
        if self.resolved.is_none() {
            self.resolved = Some(config::dir_or_default(self.given.clone())?);
        }
        Ok(self.resolved.clone().expect("just set"))
    }

    fn resolve(&mut self, arg: &str) -> Result<PathBuf> {
        let dir = if looks_like_path(arg) {
            PathBuf::new()
        } else {
            self.get()?
        };
        Ok(resolve(&dir, arg)?)
    }
}

/// The key a file's name denotes, or the name itself, for showing.
fn key_of(path: &Path) -> String {
    let name = file_name(path);
    Key::from_file_name(&name)
        .map(|k| k.to_string())
        .unwrap_or_else(|| sanitize_line(name.as_bytes()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn shown_path(path: &Path) -> String {
    sanitize_line(path.as_os_str().as_encoded_bytes())
}

/// The directory a file lives in (its lock and journal are there).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Which files `--all` picks.
#[derive(Clone, Copy)]
enum AllSelects {
    /// Bit 0 set: there is a map (or a broken one) to prune.
    Flagged,
    /// Bit 0 set, or bytes after the payload: something to strip.
    FlaggedOrStray,
}

/// The engine that reads each directory (it decides whether a pre-ABI ds4
/// file is that or a hanzo-engine file): one scan per directory, taken
/// when first needed.
#[derive(Default)]
struct Engines(BTreeMap<PathBuf, Engine>);

impl Engines {
    fn of(&mut self, dir: &Path) -> Engine {
        let id = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        *self.0.entry(id).or_insert_with(|| {
            // A directory that cannot be listed leaves kvc's default reading.
            scan::scan_dir(dir, ScanOptions::default()).map_or(Engine::Ds4, |s| s.engine.engine)
        })
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

/// The files a command works on.
struct Targets {
    paths: Vec<PathBuf>,
    /// What `--all` met and leaves alone: ds4-agent sessions, hanzo-engine
    /// files, foreign files.
    skipped: Vec<SkippedView>,
}

fn skipped(path: &Path, why: String) -> SkippedView {
    SkippedView {
        key: key_of(path),
        file: sanitize_line(file_name(path).as_bytes()),
        path: shown_path(path),
        why,
    }
}

fn targets(
    t: &KeysOrAll,
    dir: &mut Dir,
    select: AllSelects,
    engines: &mut Engines,
) -> Result<Targets> {
    if !t.all {
        return Ok(Targets {
            paths: keys_to_paths(&t.keys, dir)?,
            skipped: Vec::new(),
        });
    }
    let d = dir.get()?;
    let scan = scan::scan_dir(&d, ScanOptions::default())?;
    let id = fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
    engines.0.insert(id, scan.engine.engine);
    let mut out = Targets {
        paths: Vec::new(),
        skipped: Vec::new(),
    };
    for c in scan.checkpoints {
        let wanted = c.header.ext_flags.has_tool_map()
            || matches!(select, AllSelects::FlaggedOrStray)
                && c.size > kvc::format::checkpoint::payload_end(&c.header, c.text_len);
        if !wanted {
            continue;
        }
        match rewrite::tool_map_rule(c.dialect, &c.header) {
            Ok(()) => out.paths.push(c.path),
            Err(why) => out.skipped.push(skipped(&c.path, why.to_string())),
        }
    }
    // A foreign file whose flag byte has bit 0 set would look like a
    // candidate to a reader of ds4's rules: say why it is left alone.
    for f in scan.foreign {
        if f.header.ext_flags.has_tool_map() {
            let why = rewrite::NotToolMap::Foreign(f.what.clone()).to_string();
            out.skipped.push(skipped(&f.path, why));
        }
    }
    out.skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// Resolve every key before touching anything: a typo stops the command
/// before the first rewrite. The same file named twice is rewritten once.
fn keys_to_paths(keys: &[String], dir: &mut Dir) -> Result<Vec<PathBuf>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for k in keys {
        let p = dir.resolve(k)?;
        let id = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(id) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Open a checkpoint to read its trailer; a vanished file is an error here
/// (the user named it a moment ago), and so is a file without ds4's
/// tool-id map (a ds4-agent session, a hanzo-engine file, a foreign one).
fn open_for_reading(path: &Path) -> Result<CheckpointFile> {
    let cf = rewrite::open_checkpoint(path, false)?
        .ok_or_else(|| anyhow!("{}: no such file (removed meanwhile?)", path.display()))?;
    let engine = Engines::default().of(&dir_of(path));
    rewrite::tool_map_dialect(&cf, engine).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(cf)
}

/// The state of a file's trailer, for `ls` and `export`: a broken trailer
/// is an error naming the file.
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

/// What ds4 makes of an entry, for `ls` and `export`: its `ds4` word, the
/// entry that shadows it (from 1), and a note on NUL bytes.
fn ds4_reading(e: &ToolMapEntry, used: EntryUse) -> (&'static str, Option<usize>, Option<String>) {
    let cut = |what: &str, b: &[u8]| {
        let n = c_string(b).len();
        (n > 0 && n < b.len()).then(|| {
            format!("ds4 reads the {what} as a C string: only its first {n} of {} bytes (a NUL follows)", b.len())
        })
    };
    match used {
        EntryUse::Used => (
            "used",
            None,
            cut("id", &e.id).or_else(|| cut("DSML", &e.dsml)),
        ),
        EntryUse::Shadowed { by } => ("shadowed", Some(by + 1), cut("id", &e.id)),
        EntryUse::Dropped(f) => (
            "dropped",
            None,
            Some(format!(
                "its {} starts with a NUL byte: ds4 drops the entry",
                match f {
                    NulField::Id => "id",
                    NulField::Dsml => "DSML",
                }
            )),
        ),
    }
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
    let mut dir = Dir::new(args.dir.dir);
    let path = dir.resolve(&args.key)?;
    let cf = open_for_reading(&path)?;
    let state = read_state(&cf)?;
    let mut entries = Vec::new();
    if let TrailerState::Map(map) = &state {
        let text = cf.read_text().with_context(|| path.display().to_string())?;
        for (i, (e, used)) in map.entries.iter().zip(map.uses()).enumerate() {
            let (ds4, shadowed_by, note) = ds4_reading(e, used);
            entries.push(EntryView {
                index: i + 1,
                id: sanitize_line(&e.id),
                id_bytes: e.id.len(),
                dsml_bytes: e.dsml.len(),
                in_text: text::contains(&text, &e.dsml),
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
            TrailerState::Stray { map, .. } => map.as_ref().map(|m| m.entries.len()),
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

/// One entry as `export` writes it and `set` reads it. Ids and DSML blocks
/// are bytes; a field that is valid UTF-8 is a JSON string (`id`, `dsml`),
/// one that is not is written as hex (`id_hex`, `dsml_hex`), so a map
/// survives export → set byte for byte.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsml: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsml_hex: Option<String>,
    /// Written by `export` for an entry ds4 never uses because a later
    /// entry (this index, from 1) has the same id; ignored by `set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shadowed_by: Option<usize>,
    /// Written by `export` for an entry ds4 drops (its id or DSML starts
    /// with a NUL byte); ignored by `set`, which refuses NUL bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped_by_ds4: Option<String>,
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A byte field as a string, or as hex when it is not UTF-8.
fn split_field(b: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(b) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(to_hex(b))),
    }
}

fn entry_to_json(e: &ToolMapEntry, used: EntryUse) -> EntryJson {
    let (id, id_hex) = split_field(&e.id);
    let (dsml, dsml_hex) = split_field(&e.dsml);
    let (_, shadowed_by, note) = ds4_reading(e, used);
    EntryJson {
        id,
        id_hex,
        dsml,
        dsml_hex,
        shadowed_by,
        dropped_by_ds4: note.filter(|_| matches!(used, EntryUse::Dropped(_))),
    }
}

fn field(text: Option<String>, hex: Option<String>, name: &str, index: usize) -> Result<Vec<u8>> {
    match (text, hex) {
        (Some(s), None) => Ok(s.into_bytes()),
        (None, Some(h)) => from_hex(&h).ok_or_else(|| {
            anyhow!(
                "entry {}: `{name}_hex` is not an even number of hex digits",
                index + 1
            )
        }),
        (None, None) => bail!("entry {}: `{name}` (or `{name}_hex`) is missing", index + 1),
        (Some(_), Some(_)) => bail!(
            "entry {}: give `{name}` or `{name}_hex`, not both",
            index + 1
        ),
    }
}

/// Parse and check a map given to `set`: JSON shape, then ds4's limits.
fn parse_map(bytes: &[u8]) -> Result<ToolMap> {
    let raw: Vec<EntryJson> = serde_json::from_slice(bytes)
        .map_err(|e| anyhow!("not a tool-id map ([{{\"id\": ..., \"dsml\": ...}}, ...]): {e}"))?;
    let mut map = ToolMap::default();
    for (i, e) in raw.into_iter().enumerate() {
        map.entries.push(ToolMapEntry {
            id: field(e.id, e.id_hex, "id", i)?,
            dsml: field(e.dsml, e.dsml_hex, "dsml", i)?,
        });
    }
    let problems = rewrite::check_limits(&map);
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {})", plural(n - 1, "more problem", "more problems")),
        };
        bail!("{first}{more}");
    }
    Ok(map)
}

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
    let mut dir = Dir::new(args.dir.dir);
    let path = dir.resolve(&args.key)?;
    let cf = open_for_reading(&path)?;
    // Only the map ds4 would load: stray bytes after a clear bit 0 are not one.
    let entries: Vec<EntryJson> = match read_state(&cf)? {
        TrailerState::Map(m) => (m.entries.iter())
            .zip(m.uses())
            .map(|(e, u)| entry_to_json(e, u))
            .collect(),
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Prune,
    Strip,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Prune => "prune",
            Op::Strip => "strip",
        }
    }

    /// The journal's `op`.
    fn journal_op(self) -> &'static str {
        match self {
            Op::Set => "trailer-set",
            Op::Prune => "trailer-prune",
            Op::Strip => "trailer-strip",
        }
    }
}

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
    result: &'static str,
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
        TrailerState::Map(m) => Some(m.entries.len()),
        _ => None,
    }
}

/// The journal's `why`, and the summary a person reads.
fn why(op: Op, plan: &Plan) -> String {
    let (before_bytes, _) = plan.trailer_bytes();
    let was = match &plan.before {
        TrailerState::None => "no map".to_string(),
        TrailerState::Map(m) => plural(m.entries.len(), "entry", "entries"),
        TrailerState::Stray { bytes, .. } => format!("{bytes} stray bytes"),
        TrailerState::Broken { .. } => "a broken trailer".to_string(),
    };
    match op {
        Op::Set => {
            let mut s = format!(
                "{} set (was {was})",
                plural(plan.after.entries.len(), "entry", "entries")
            );
            if !plan.missing.is_empty() {
                s.push_str(&format!(
                    "; {} not in the text (--allow-missing)",
                    plan.missing.len()
                ));
            }
            s
        }
        Op::Prune if plan.dropped.is_empty() => match &plan.before {
            TrailerState::Map(m) => format!(
                "nothing to drop, {} kept",
                plural(m.entries.len(), "entry", "entries")
            ),
            _ => "no map".to_string(),
        },
        Op::Prune => {
            let count =
                |r: rewrite::DropReason| plan.dropped.iter().filter(|d| d.reason == r).count();
            let stale = count(rewrite::DropReason::NotInText);
            let dups = count(rewrite::DropReason::DuplicateId);
            let nul = count(rewrite::DropReason::NulStart);
            let mut parts = Vec::new();
            if stale > 0 {
                parts.push(format!("{stale} not in the text"));
            }
            if dups > 0 {
                parts.push(plural(dups, "duplicate id", "duplicate ids"));
            }
            if nul > 0 {
                parts.push(format!("{nul} starting with a NUL byte"));
            }
            let mut s = format!("{} dropped", plural(plan.dropped.len(), "entry", "entries"));
            if !parts.is_empty() {
                s.push_str(&format!(": {}", parts.join(", ")));
            }
            if plan.after.entries.is_empty() && !plan.dropped.is_empty() {
                s.push_str("; map removed");
            }
            s
        }
        Op::Strip => match &plan.before {
            TrailerState::Map(m) => format!(
                "map of {} removed",
                plural(m.entries.len(), "entry", "entries")
            ),
            TrailerState::Broken { error, .. } => {
                format!("broken trailer removed ({before_bytes} bytes: {error})")
            }
            TrailerState::Stray { bytes, .. } => {
                format!("{bytes} stray bytes after the payload removed")
            }
            TrailerState::None => "no map".to_string(),
        },
    }
}

/// The hook of [`KILL_AT_STEP_ENV`]; does nothing unless it is set.
fn step_hook() -> impl FnMut(Step) {
    let kill_at: Option<u64> = std::env::var(KILL_AT_STEP_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let mut count = 0u64;
    move |_step| {
        count += 1;
        if kill_at == Some(count) {
            // SAFETY: raising a signal has no memory-safety preconditions.
            unsafe {
                libc::raise(libc::SIGKILL);
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One lock per directory, held until the command ends (taking the same
/// directory's lock twice in one process would wait for itself).
#[derive(Default)]
struct Locks(BTreeMap<PathBuf, DirLock>);

impl Locks {
    fn hold(&mut self, dir: &Path) -> Result<()> {
        let id = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if let std::collections::btree_map::Entry::Vacant(slot) = self.0.entry(id) {
            slot.insert(DirLock::acquire(dir)?);
        }
        Ok(())
    }
}

struct Rewriter<'a> {
    op: Op,
    edit: Edit<'a>,
    args: RewriteArgs,
    locks: Locks,
    engines: Engines,
    hook: Box<dyn FnMut(Step)>,
}

impl Rewriter<'_> {
    fn one(&mut self, path: &Path) -> Result<FileView> {
        let dry_run = self.args.dry_run.dry_run;
        let method: Method = self.args.method.into();
        let dir = dir_of(path);
        if !dry_run {
            self.locks.hold(&dir)?;
        }
        // Read (again) under the lock: what was planned is what is on disk.
        let opened = rewrite::open_checkpoint(path, !dry_run && method.writes_in_place())?;
        let mut view = FileView {
            key: key_of(path),
            file: sanitize_line(file_name(path).as_bytes()),
            path: shown_path(path),
            result: "vanished",
            before: "none",
            entries_before: None,
            entries_after: 0,
            trailer_bytes_before: 0,
            trailer_bytes_after: 0,
            dropped: Vec::new(),
            not_in_text: 0,
            method: None,
            why: String::new(),
        };
        let Some(cf) = opened else {
            return Ok(view);
        };
        let plan = rewrite::plan(&cf, self.edit, self.engines.of(&dir))?;
        let (before_bytes, after_bytes) = plan.trailer_bytes();
        view.before = plan.before.name();
        view.entries_before = entries_of(&plan.before);
        view.entries_after = plan.after.entries.len();
        view.trailer_bytes_before = before_bytes;
        view.trailer_bytes_after = after_bytes;
        view.not_in_text = plan.missing.len();
        view.dropped = plan
            .dropped
            .iter()
            .map(|d| DroppedView {
                index: d.index + 1,
                id: sanitize_line(&d.entry.id),
                reason: d.reason,
            })
            .collect();
        view.why = why(self.op, &plan);
        if !plan.changes {
            view.result = "unchanged";
            if self.op == Op::Set {
                view.why = "the file already has this map".to_string();
            }
            return Ok(view);
        }
        if dry_run {
            view.result = "would-rewrite";
            return Ok(view);
        }
        match rewrite::apply(&cf, &plan, method, &mut *self.hook)? {
            Applied::Unchanged => view.result = "unchanged",
            Applied::Vanished => view.result = "vanished",
            Applied::Rewritten { used, size } => {
                view.result = "rewritten";
                view.method = Some(used.name());
                // The journal is appended once the file is durable: a crash
                // in between loses a record, never invents one.
                journal::append(
                    &dir,
                    &[Record {
                        time: now(),
                        op: self.op.journal_op().to_string(),
                        key: view.key.clone(),
                        bytes: size,
                        tokens: cf.header.tokens,
                        hits: cf.header.hits,
                        reason: cf.header.reason.name().into_owned(),
                        score: None,
                        policy: None,
                        why: view.why.clone(),
                    }],
                )?;
            }
        }
        Ok(view)
    }
}

/// Rewrite every file; a file that fails is reported on its own line and
/// the others are still done (exit 2 at the end).
fn rewrite_all(
    op: Op,
    edit: Edit<'_>,
    args: RewriteArgs,
    targets: Targets,
    engines: Engines,
    json: bool,
) -> Result<Outcome> {
    let Targets { paths, skipped } = targets;
    let mut rw = Rewriter {
        op,
        edit,
        args,
        locks: Locks::default(),
        engines,
        hook: Box::new(step_hook()),
    };
    let bar = if paths.len() > 1 && io::stderr().is_terminal() {
        ProgressBar::new(paths.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let mut report = RewriteReport {
        command: op.name(),
        dry_run: args.dry_run.dry_run,
        files: Vec::new(),
        skipped,
        errors: Vec::new(),
    };
    for p in &paths {
        match rw.one(p) {
            Ok(v) => report.files.push(v),
            Err(e) => {
                let error = format!("{e:#}");
                bar.suspend(|| eprintln!("kvc: {error}"));
                report.errors.push(ErrorView {
                    path: shown_path(p),
                    error,
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    output::emit(&report, json)?;
    if !report.errors.is_empty() {
        bail!(
            "{} of {} not rewritten",
            report.errors.len(),
            plural(paths.len(), "checkpoint", "checkpoints")
        );
    }
    Ok(Outcome::Clean)
}

impl Report for RewriteReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.files {
            let key = output::short_key(&f.key);
            match f.result {
                "rewritten" => writeln!(
                    out,
                    "{key}  {}: {} [{}]",
                    self.command,
                    f.why,
                    f.method.unwrap_or("-")
                )?,
                "would-rewrite" => writeln!(out, "{key}  would {}: {}", self.command, f.why)?,
                "unchanged" => writeln!(out, "{key}  unchanged ({})", f.why)?,
                _ => writeln!(
                    out,
                    "{key}  vanished: removed or replaced by an engine meanwhile; left alone"
                )?,
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
        if self.dry_run {
            writeln!(out, "dry run: nothing was written")?;
        }
        Ok(())
    }
}

fn read_input(from: &Path) -> Result<Vec<u8>> {
    if from.as_os_str() == "-" {
        let mut b = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut b)
            .context("standard input")?;
        Ok(b)
    } else {
        fs::read(from).with_context(|| from.display().to_string())
    }
}

fn set(args: TrailerSetArgs) -> Result<Outcome> {
    let input = read_input(&args.from)?;
    let source = if args.from.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        args.from.display().to_string()
    };
    let map = parse_map(&input).with_context(|| source)?;
    let mut dir = Dir::new(args.dir.dir);
    let targets = Targets {
        paths: keys_to_paths(&args.keys, &mut dir)?,
        skipped: Vec::new(),
    };
    let edit = Edit::Set {
        map: &map,
        allow_missing: args.allow_missing,
    };
    rewrite_all(
        Op::Set,
        edit,
        args.rewrite,
        targets,
        Engines::default(),
        args.output.json,
    )
}

/// `prune` and `strip`: the same walk over the selected files, with the
/// edit and the `--all` selection that fit the operation.
fn edit_each(args: TrailerEditArgs, op: Op) -> Result<Outcome> {
    let (edit, select) = match op {
        Op::Prune => (Edit::Prune, AllSelects::Flagged),
        Op::Strip => (Edit::Strip, AllSelects::FlaggedOrStray),
        Op::Set => unreachable!("set takes a map: see `set`"),
    };
    let mut dir = Dir::new(args.dir.dir);
    let mut engines = Engines::default();
    let targets = targets(&args.targets, &mut dir, select, &mut engines)?;
    rewrite_all(op, edit, args.rewrite, targets, engines, args.output.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_fields_round_trip_and_reject_odd_input() {
        let b = [0u8, 0xff, 0x7f, b'a'];
        assert_eq!(from_hex(&to_hex(&b)).unwrap(), b);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(split_field(b"ok"), (Some("ok".into()), None));
        assert_eq!(split_field(b"\xff"), (None, Some("ff".into())));
    }

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
