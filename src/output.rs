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

/// The width a table must fit: `$COLUMNS` when set (as `ls` honours it),
/// else the terminal's when standard output is one, else none (a pipe gets
/// whole rows, for grep and cut).
pub fn output_width() -> Option<u16> {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
    {
        return Some(c);
    }
    if io::IsTerminal::is_terminal(&io::stdout()) {
        return comfy_table::Table::new().width();
    }
    None
}

/// Narrowest a shrinking column may get before whole columns give way.
const MIN_SHRINK_WIDTH: usize = 16;
/// comfy-table's default cell padding, one space each side.
const CELL_PADDING: usize = 2;
/// Rows per comfy-table rendered at once by [`write_rows`]: memory stays
/// at this many rows whatever the listing's length.
const CHUNK_ROWS: usize = 1024;

/// `s` cut to `width` display columns, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// How a table's columns are shown: which are left out, each one's width,
/// and the width the shrinking columns' cells are cut to.
struct Layout {
    keep: Vec<usize>,
    widths: Vec<usize>,
    budget: Option<usize>,
}

/// Decide a [`Layout`] from each column's widest cell (`content`, header
/// included): whole rows when there is no width or they fit; else the
/// `shrink` columns give way first, down to a few characters, then the
/// `expendable` ones (least useful first) are left out.
fn layout(content: &[usize], header: &[&str], shrink: &[usize], expendable: &[usize]) -> Layout {
    use unicode_width::UnicodeWidthStr;
    let columns = content.len();
    let all = Layout {
        keep: (0..columns).collect(),
        widths: content.to_vec(),
        budget: None,
    };
    let Some(width) = output_width().map(usize::from) else {
        return all;
    };
    let needed = |hidden: &[usize], shrunk: bool| -> usize {
        (0..columns)
            .filter(|c| !hidden.contains(c))
            .map(|c| {
                let w = if shrunk && shrink.contains(&c) {
                    content[c].min(MIN_SHRINK_WIDTH)
                } else {
                    content[c]
                };
                w + CELL_PADDING
            })
            .sum()
    };
    if needed(&[], false) <= width {
        return all;
    }
    let mut hidden: Vec<usize> = Vec::new();
    for &c in expendable {
        if needed(&hidden, true) <= width {
            break;
        }
        hidden.push(c);
    }
    let fixed: usize = (0..columns)
        .filter(|c| !hidden.contains(c) && !shrink.contains(c))
        .map(|c| content[c] + CELL_PADDING)
        .sum();
    let n_shrink = shrink.iter().filter(|c| !hidden.contains(c)).count().max(1);
    let header_min = shrink
        .iter()
        .filter_map(|&c| header.get(c))
        .map(|h| h.width())
        .max()
        .unwrap_or(1);
    let budget = (width.saturating_sub(fixed) / n_shrink)
        .saturating_sub(CELL_PADDING)
        .max(header_min);
    let widths = (0..columns)
        .map(|c| {
            if shrink.contains(&c) {
                content[c].min(budget)
            } else {
                content[c]
            }
        })
        .collect();
    Layout {
        keep: (0..columns).filter(|c| !hidden.contains(c)).collect(),
        widths,
        budget: Some(budget),
    }
}

/// Write a table of `n` rows produced by `row(i)`, fitted to
/// [`output_width`] as [`layout`] decides (`right`: numeric columns).
/// Rows are built twice, once to measure and once to write, and never all
/// held: comfy-table lays out [`CHUNK_ROWS`] at a time with every column at
/// the width measured over all rows, so the chunks line up as one table.
pub fn write_rows(
    out: &mut dyn Write,
    header: &[&str],
    n: usize,
    row: &dyn Fn(usize) -> Vec<String>,
    shrink: &[usize],
    expendable: &[usize],
    right: &[usize],
) -> io::Result<()> {
    use unicode_width::UnicodeWidthStr;
    let mut content: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for i in 0..n {
        for (c, cell) in row(i).iter().enumerate() {
            if let Some(w) = content.get_mut(c) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let l = layout(&content, header, shrink, expendable);
    let pick = |cells: Vec<String>| -> Vec<String> {
        let mut cells: Vec<Option<String>> = cells.into_iter().map(Some).collect();
        l.keep
            .iter()
            .map(|&c| {
                let s = cells.get_mut(c).and_then(Option::take).unwrap_or_default();
                match l.budget {
                    Some(b) if shrink.contains(&c) => cut(&s, b),
                    _ => s,
                }
            })
            .collect()
    };
    let total_width: usize = l.keep.iter().map(|&c| l.widths[c] + CELL_PADDING).sum();
    let chunk_table = |with_header: bool| {
        let mut t = Table::new();
        t.load_style(presets::NOTHING);
        if with_header {
            t.set_header(pick(header.iter().map(|h| h.to_string()).collect()));
        }
        t
    };
    let finish = |t: &mut Table| {
        // Every column exactly as wide as measured over all rows: the
        // chunks then line up as one table.
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(u16::try_from(total_width).unwrap_or(u16::MAX));
        for (i, &c) in l.keep.iter().enumerate() {
            if let Some(col) = t.column_mut(i) {
                col.set_constraint(comfy_table::ColumnConstraint::Absolute(
                    comfy_table::Width::Fixed(
                        u16::try_from(l.widths[c] + CELL_PADDING).unwrap_or(u16::MAX),
                    ),
                ));
                if right.contains(&c) {
                    col.set_cell_alignment(CellAlignment::Right);
                }
            }
        }
    };
    let mut start = 0;
    loop {
        let end = (start + CHUNK_ROWS).min(n);
        let mut t = chunk_table(start == 0);
        for i in start..end {
            t.add_row(pick(row(i)));
        }
        if start == 0 || end > start {
            finish(&mut t);
            write_table(out, &t)?;
        }
        if end >= n {
            return Ok(());
        }
        start = end;
    }
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

/// A score in a column: the score per MiB on disk (tokens kept per MiB,
/// weighted by recent hits and the policy's factors), with three
/// significant digits and a k/M suffix, never an exponent. JSON keeps the
/// raw per-byte score.
pub fn score(s: Option<f64>) -> String {
    let Some(s) = s else {
        return "-".into();
    };
    let per_mib = s * (1u64 << 20) as f64;
    let (v, suffix) = if per_mib >= 999_500.0 {
        (per_mib / 1e6, "M")
    } else if per_mib >= 999.5 {
        (per_mib / 1e3, "k")
    } else {
        (per_mib, "")
    };
    let digits = if v >= 99.95 {
        0
    } else if v >= 9.995 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{suffix}")
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
            file: c.file().into_owned(),
            path: c.display_path().to_string(),
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
                c.title().map(sanitize_line)
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
    fn scores_are_per_mib_in_fixed_notation() {
        let mib = (1u64 << 20) as f64;
        assert_eq!(score(None), "-");
        assert_eq!(score(Some(0.5 / mib)), "0.50");
        assert_eq!(score(Some(42.0 / mib)), "42.0");
        assert_eq!(score(Some(312.4 / mib)), "312");
        assert_eq!(score(Some(48_455.0 / mib)), "48.5k");
        assert_eq!(score(Some(6_620_000.0 / mib)), "6.62M");
        assert!(!score(Some(1e-9)).contains('e'));
    }

    #[test]
    fn ages_are_coarse_and_directional() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 100 + 3 * 3600 + 5), "3h ago");
        assert_eq!(ago(100 + 300, 100), "in 5m");
        assert_eq!(ago(0, 100), "never");
        assert_eq!(ago(1, 1 + 3 * 86_400), "3d ago");
    }
}
