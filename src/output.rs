//! Rendering. Every command builds one report value; the same value is
//! rendered as a table for people or as JSON for pipelines, by one
//! exporter per format behind one interface (as hyperfine does).
//!
//! Prompt text is untrusted: every piece of it that reaches this module has
//! been through `kvc::text::sanitize_*`, in tables and in JSON alike.

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use humansize::{format_size, BINARY};
use kvc::finding::{header_warnings, Finding};
use kvc::policy::Standing;
use kvc::scan::Checkpoint;
use kvc::text::sanitize_line;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

/// A command's result, renderable both ways.
pub trait Report: Serialize {
    /// The human form, for a terminal.
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// One way of writing a report.
pub trait Exporter {
    fn export<R: Report>(&self, report: &R, out: &mut dyn Write) -> io::Result<()>;
}

pub struct HumanExporter;
pub struct JsonExporter;

impl Exporter for HumanExporter {
    fn export<R: Report>(&self, report: &R, out: &mut dyn Write) -> io::Result<()> {
        report.write_human(out)
    }
}

impl Exporter for JsonExporter {
    fn export<R: Report>(&self, report: &R, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}

const OUTPUT_BUFFER: usize = 64 * 1024;

/// Write `report` to stdout as JSON or as a table.
pub fn emit<R: Report>(report: &R, json: bool) -> io::Result<()> {
    let stdout = io::stdout();
    // A listing of a large directory is megabytes of JSON: write it in
    // large pieces, not 8 KiB system calls.
    let mut out = io::BufWriter::with_capacity(OUTPUT_BUFFER, stdout.lock());
    if json {
        JsonExporter.export(report, &mut out)?;
    } else {
        HumanExporter.export(report, &mut out)?;
    }
    out.flush()
}

/// A borderless table, like `ls -l` or `docker ps`.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    t
}

/// Right-align the given columns (numbers).
pub fn align_right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Write a table without the trailing spaces comfy-table pads lines with.
pub fn write_table(out: &mut dyn Write, t: &Table) -> io::Result<()> {
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A key as a table column shows it: the first 12 hex digits of a SHA-1
/// key; `sysprompt` and anything else (a temp file name in the journal)
/// whole.
pub fn short_key(key: &str) -> String {
    let is_hash = key.len() == kvc::format::checkpoint::KEY_HEX_LEN
        && key.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash {
        key[..kvc::format::checkpoint::SHORT_KEY_LEN].to_string()
    } else {
        key.to_string()
    }
}

/// Print one stderr line per file a command could not remove (`name`,
/// `why`) and return how many there were, for the command's exit.
pub fn report_removal_failures<'a>(
    failed: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> usize {
    let mut n = 0;
    for (name, why) in failed {
        eprintln!("kvc: {name}: cannot remove: {}", why.unwrap_or_default());
        n += 1;
    }
    n
}

/// Files removed whose directory's fsync then failed, one line each on
/// stderr: removed, not durable yet. Returns how many.
pub fn report_unsynced<'a>(removed: impl IntoIterator<Item = (&'a str, &'a str)>) -> usize {
    let mut n = 0;
    for (name, detail) in removed {
        eprintln!("kvc: {name}: {detail}");
        n += 1;
    }
    n
}

/// `19.87 KiB`.
pub fn size(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

/// `3h ago`, `in 5m`, `just now`: coarse on purpose, for a column.
pub fn ago(then: u64, now: u64) -> String {
    if then == 0 {
        return "never".into();
    }
    let (secs, future) = if now >= then {
        (now - then, false)
    } else {
        (then - now, true)
    };
    let amount = match secs {
        0..=9 => return "just now".into(),
        10..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// RFC 3339 UTC, or `never` for 0.
pub fn timestamp(secs: u64) -> String {
    if secs == 0 {
        return "never".into();
    }
    // RFC 3339 ends at 9999-12-31T23:59:59Z (humantime panics past it); a
    // header can hold any u64, so show such a time as the number it is.
    const RFC3339_MAX: u64 = 253_402_300_799;
    if secs > RFC3339_MAX {
        return format!("{secs} (past year 9999)");
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A score in a column: three significant digits.
pub fn score(s: Option<f64>) -> String {
    match s {
        Some(s) => format!("{s:.3e}"),
        None => "-".into(),
    }
}

/// A file with a checkpoint name that is not a usable checkpoint, as `ls`
/// and `export` report it.
#[derive(Clone, Debug, Serialize)]
pub struct InvalidView {
    pub file: String,
    pub code: kvc::code::Code,
    pub error: String,
    pub size: u64,
}

impl From<&kvc::scan::Invalid> for InvalidView {
    fn from(i: &kvc::scan::Invalid) -> InvalidView {
        InvalidView {
            file: sanitize_line(i.file.as_bytes()),
            code: i.code,
            error: i.error.clone(),
            size: i.size,
        }
    }
}

/// A file of a dialect kvc does not fully read (FORMAT.md §9), in `ls`.
#[derive(Clone, Debug, Serialize)]
pub struct ForeignView {
    pub file: String,
    /// The §9 id, when a row describes it.
    pub dialect: Option<&'static str>,
    pub version: u8,
    pub payload_abi: u8,
    /// What was recognised.
    pub what: String,
    /// Bytes of the file and its companions.
    pub size: u64,
    pub companions: Vec<String>,
}

impl From<&kvc::scan::Foreign> for ForeignView {
    fn from(f: &kvc::scan::Foreign) -> ForeignView {
        ForeignView {
            file: sanitize_line(f.file.as_bytes()),
            dialect: f.dialect.map(|d| d.as_str()),
            version: f.header.version,
            payload_abi: f.header.payload_abi,
            what: sanitize_line(f.what.as_bytes()),
            size: f.total_size(),
            companions: f
                .companions
                .iter()
                .map(|c| sanitize_line(c.0.as_bytes()))
                .collect(),
        }
    }
}

/// The JSON of one checkpoint, shared by `ls` and `show`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointView {
    pub key: String,
    pub file: String,
    pub path: String,
    pub size: u64,
    pub mode: String,
    pub reason: String,
    pub reason_code: u8,
    pub quant_bits: u8,
    pub tokens: u32,
    pub hits: u32,
    pub ctx_size: u32,
    pub model_id: u8,
    pub payload_abi: u8,
    pub ext_flags: u8,
    pub flags: Vec<String>,
    /// FORMAT.md §9 id: `D1`, `D3`, …
    pub dialect: &'static str,
    /// The bytes could be D1 or D20: the directory's engine decided.
    pub dialect_assumed: bool,
    /// Mainline's model name (`flash`, `pro`, `glm-5.2`, …) for dialects
    /// that follow mainline's numbering.
    pub model: Option<&'static str>,
    /// D11's 24-bit weights fingerprint (bytes 21-23), hex.
    pub fingerprint: Option<String>,
    /// Whether the directory's engine loads, counts and may evict it.
    pub loadable: bool,
    /// Why not, when it does not.
    pub not_loaded: Option<String>,
    pub created: u64,
    pub last_used: u64,
    pub payload_bytes: u64,
    pub text_bytes: u32,
    pub title: Option<String>,
    pub score: Option<f64>,
    pub evict_rank: Option<usize>,
    pub superseded: bool,
    pub agent_save: bool,
    /// Header warnings (`bad-quant`, `unknown-reason`, `unknown-flags`,
    /// `future-timestamp`); `kvc verify` checks everything else.
    pub warnings: Vec<Finding>,
}

impl CheckpointView {
    /// `standing` is the checkpoint's place in the eviction order (rank 1 =
    /// first victim, no rank for agent saves, which eviction leaves alone).
    pub fn new(c: &Checkpoint, standing: &Standing, now: u64) -> CheckpointView {
        Self::build(c, standing, now, true)
    }

    /// [`new`](Self::new) without the title (`ls --no-title`): the policy
    /// may have read the text, but taking a title from it is wasted work.
    pub fn without_title(c: &Checkpoint, standing: &Standing, now: u64) -> CheckpointView {
        Self::build(c, standing, now, false)
    }

    fn build(c: &Checkpoint, standing: &Standing, now: u64, title: bool) -> CheckpointView {
        let h = &c.header;
        CheckpointView {
            key: c.key.to_string(),
            file: c.file.clone(),
            path: c.path.display().to_string(),
            size: c.size,
            mode: format!("{:04o}", c.mode),
            reason: h.reason.name().into_owned(),
            reason_code: h.reason.0,
            quant_bits: h.quant_bits,
            tokens: h.tokens,
            hits: h.hits,
            ctx_size: h.ctx_size,
            model_id: h.model_id,
            payload_abi: h.payload_abi,
            ext_flags: h.ext_flags.0,
            flags: h.ext_flags.names(),
            dialect: c.dialect.as_str(),
            dialect_assumed: c.assumed,
            model: c
                .dialect
                .spec()
                .mainline_models
                .then(|| kvc::format::model_name(h.model_id))
                .flatten(),
            fingerprint: c.dialect.spec().fingerprint.then(|| {
                format!(
                    "{:02x}{:02x}{:02x}",
                    h.reserved[0], h.reserved[1], h.reserved[2]
                )
            }),
            loadable: c.is_loadable(),
            not_loaded: c.loadable.as_ref().err().map(|e| e.to_string()),
            created: h.created,
            last_used: h.last_used,
            payload_bytes: h.payload_bytes,
            text_bytes: c.text_len,
            title: if title {
                c.title().map(|t| sanitize_line(&t))
            } else {
                None
            },
            score: standing.score,
            evict_rank: standing.rank,
            superseded: standing.superseded,
            agent_save: c.is_agent_save(),
            warnings: header_warnings(h, c.dialect.spec(), now),
        }
    }

    /// The one-letter flags of the `ls` column (legend in `kvc ls --help`).
    pub fn flag_letters(&self) -> String {
        let mut s = String::new();
        let f = kvc::ExtFlags(self.ext_flags);
        if f.has_tool_map() {
            s.push('t');
        }
        if f.0 & kvc::ExtFlags::RESPONSES_VISIBLE != 0 {
            s.push('r');
        }
        if f.0 & kvc::ExtFlags::THINKING_VISIBLE != 0 {
            s.push('k');
        }
        if f.unknown_bits() != 0 {
            s.push('?');
        }
        if self.superseded {
            s.push('s');
        }
        if self.agent_save {
            s.push('a');
        }
        if !self.loadable {
            s.push('x');
        }
        if !self.warnings.is_empty() {
            s.push('!');
        }
        if s.is_empty() {
            s.push('-');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_coarse_and_directional() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 100 + 3 * 3600 + 5), "3h ago");
        assert_eq!(ago(100 + 300, 100), "in 5m");
        assert_eq!(ago(0, 100), "never");
        assert_eq!(ago(1, 1 + 3 * 86_400), "3d ago");
    }
}
