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

/// Whether severities are coloured (`--color`, decided once in `main`).
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decide colour for the run: `always`, `never`, or `auto` = standard
/// output is a terminal, `$NO_COLOR` is unset or empty (no-color.org) and
/// `TERM` is not `dumb`.
pub fn set_color(when: crate::cli::ColorWhen) {
    use crate::cli::ColorWhen;
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                && io::IsTerminal::is_terminal(&io::stdout())
        }
    };
    COLOR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `text` in the colour of `severity` when colour is on: errors bold red,
/// warnings yellow; as it is otherwise.
pub fn paint(severity: kvc::code::Severity, text: &str) -> String {
    if !COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        return text.to_string();
    }
    let sgr = match severity {
        kvc::code::Severity::Error => "1;31",
        kvc::code::Severity::Warning => "33",
        kvc::code::Severity::Info => return text.to_string(),
    };
    format!("\x1b[{sgr}m{text}\x1b[0m")
}

/// A command's result, renderable both ways.
pub trait Report: Serialize {
    /// The human form, for a terminal.
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()>;

    /// The JSON form: the `Serialize` impl, pretty-printed, and a line
    /// break. Serialized into a buffer of its own, so serde's many small
    /// writes are not each a call through `out`.
    fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(OUTPUT_BUFFER, out);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
        self.serialize(&mut ser)?;
        writeln!(out)?;
        out.flush()
    }
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
        report.write_json(out)
    }
}

/// serde_json's pretty printer, byte for byte, writing each line break
/// and its indentation in one write instead of one write per level: a
/// listing row sits five levels deep, and those writes were a third of
/// `kvc ls --json`'s instructions (callgrind, 10,000 checkpoints).
#[derive(Default)]
pub struct Pretty {
    depth: usize,
    has_value: bool,
}

/// `,` then a line break then indentation for up to 63 levels.
const BREAK: &[u8; 2 + 126] = b",\n                                                                                                                              ";

impl Pretty {
    /// A line break and the indentation of the current depth, after a
    /// comma unless `first`.
    fn line<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        let start = usize::from(first);
        let end = 2 + 2 * self.depth;
        if end <= BREAK.len() {
            return w.write_all(&BREAK[start..end]);
        }
        w.write_all(&BREAK[start..2])?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, true)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.line(w, true)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
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

/// The display width of a cell: its length when it is printable ASCII
/// (nearly every cell; unicode-width's per-character lookup of every cell,
/// three times a row, was 8 % of `kvc ls`), else unicode-width's.
pub fn width(s: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    if s.bytes().fold(true, |ok, b| ok & (0x20..0x7f).contains(&b)) {
        s.len()
    } else {
        s.width()
    }
}

/// Narrowest a shrinking column may get before whole columns give way.
const MIN_SHRINK_WIDTH: usize = 16;
/// comfy-table's default cell padding, one space each side.
const CELL_PADDING: usize = 2;
/// Rows per comfy-table rendered at once by [`write_rows`]: memory stays
/// at this many rows (times the threads rendering) whatever the
/// listing's length.
const CHUNK_ROWS: usize = 1024;

/// The cells of row `i` of a table, built on demand (twice: to measure,
/// then to render), from any thread.
pub type RowFn<'a> = dyn Fn(usize) -> Vec<String> + Sync + 'a;

/// Each column's widest cell over the header and every row, measured in
/// parallel.
fn measure(header: &[&str], n: usize, row: &RowFn) -> Vec<usize> {
    use rayon::prelude::*;
    let head: Vec<usize> = header.iter().map(|h| width(h)).collect();
    (0..n)
        .into_par_iter()
        .fold(
            || head.clone(),
            |mut w, i| {
                for (c, cell) in row(i).iter().enumerate() {
                    if let Some(w) = w.get_mut(c) {
                        *w = (*w).max(width(cell));
                    }
                }
                w
            },
        )
        .reduce(
            || head.clone(),
            |a, b| a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect(),
        )
}

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
#[derive(Debug)]
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
/// held: every column is as wide as measured over all rows.
pub fn write_rows(
    out: &mut dyn Write,
    header: &[&str],
    n: usize,
    row: &RowFn,
    shrink: &[usize],
    expendable: &[usize],
    right: &[usize],
) -> io::Result<()> {
    let content = measure(header, n, row);
    let l = layout(&content, header, shrink, expendable);
    render_rows(out, header, n, row, &l, shrink, right)
}

/// [`write_rows`] for a table as [`table`] lays it out: every column as
/// wide as its widest cell, whatever the terminal's width (`kvc tree`).
/// Streamed the same way: rows built twice and never all held (a table
/// of 100,000 rows in comfy-table held 310 MB).
pub fn write_rows_unfitted(
    out: &mut dyn Write,
    header: &[&str],
    n: usize,
    row: &dyn Fn(usize) -> Vec<String>,
    right: &[usize],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for i in 0..n {
        for (c, cell) in row(i).iter().enumerate() {
            if let Some(w) = widths.get_mut(c) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let l = Layout {
        keep: (0..header.len()).collect(),
        widths,
        budget: None,
    };
    let chunks = Chunks::new(header, n, &l, &[], right);
    for k in 0..chunks.count {
        out.write_all(&chunks.render(k, row)?)?;
    }
    Ok(())
}

/// The cells of one row as the layout shows them: the kept columns, the
/// shrinking ones cut to the budget.
fn pick(l: &Layout, shrink: &[usize], cells: Vec<String>) -> Vec<String> {
    // Every column kept, nothing cut (a pipe, or a wide terminal): the
    // row as it is, no second vector of it.
    let whole = l.budget.is_none()
        && l.keep.len() == cells.len()
        && l.keep.iter().enumerate().all(|(i, &c)| i == c);
    if whole {
        return cells;
    }
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
}

/// Write the rows through comfy-table, [`CHUNK_ROWS`] at a time, every
/// column exactly as wide as the layout says, so the chunks line up as one
/// table. Chunks are rendered in parallel, one per thread, and written in
/// order: memory stays at that many chunks. (comfy-table splits, measures
/// and pads every cell again; writing each line by hand halved `kvc ls`'s
/// instructions over 10,000 checkpoints, callgrind, but the project does
/// not hand-roll table layout: see doc/PERFORMANCE.md.)
fn render_rows(
    out: &mut dyn Write,
    header: &[&str],
    n: usize,
    row: &RowFn,
    l: &Layout,
    shrink: &[usize],
    right: &[usize],
) -> io::Result<()> {
    use rayon::prelude::*;
    let chunks = Chunks::new(header, n, l, shrink, right);
    let batch = rayon::current_num_threads().max(1);
    for first in (0..chunks.count).step_by(batch) {
        let texts: Vec<io::Result<Vec<u8>>> = (first..(first + batch).min(chunks.count))
            .into_par_iter()
            .map(|k| chunks.render(k, row))
            .collect();
        for text in texts {
            out.write_all(&text?)?;
        }
    }
    Ok(())
}

/// A table of `n` rows as chunks of [`CHUNK_ROWS`], each rendered alone.
struct Chunks<'a> {
    n: usize,
    /// At least one: an empty table still has its header.
    count: usize,
    l: &'a Layout,
    shrink: &'a [usize],
    widths: Vec<usize>,
    right: Vec<bool>,
    head: Vec<String>,
}

impl<'a> Chunks<'a> {
    fn new(
        header: &[&str],
        n: usize,
        l: &'a Layout,
        shrink: &'a [usize],
        right: &[usize],
    ) -> Chunks<'a> {
        Chunks {
            n,
            count: n.div_ceil(CHUNK_ROWS).max(1),
            l,
            shrink,
            widths: l.keep.iter().map(|&c| l.widths[c]).collect(),
            right: l.keep.iter().map(|c| right.contains(c)).collect(),
            head: pick(l, shrink, header.iter().map(|h| h.to_string()).collect()),
        }
    }

    /// Chunk `k`'s lines (the header's too for the first).
    fn render(&self, k: usize, row: &dyn Fn(usize) -> Vec<String>) -> io::Result<Vec<u8>> {
        let start = k * CHUNK_ROWS;
        let rows = (start..(start + CHUNK_ROWS).min(self.n))
            .map(|i| pick(self.l, self.shrink, row(i)))
            .collect();
        let with_header = (k == 0).then_some(&self.head);
        let mut text = Vec::new();
        write_table(
            &mut text,
            &comfy_chunk(with_header, rows, &self.widths, &self.right),
        )?;
        Ok(text)
    }
}

/// The same rows laid out by comfy-table, every column exactly as wide as
/// measured (the chunks then line up as one table).
fn comfy_chunk(
    header: Option<&Vec<String>>,
    rows: Vec<Vec<String>>,
    widths: &[usize],
    right: &[bool],
) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    if let Some(h) = header {
        t.set_header(h.clone());
    }
    for r in rows {
        t.add_row(r);
    }
    let total_width: usize = widths.iter().map(|w| w + CELL_PADDING).sum();
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(total_width).unwrap_or(u16::MAX));
    for (i, &w) in widths.iter().enumerate() {
        if let Some(col) = t.column_mut(i) {
            col.set_constraint(comfy_table::ColumnConstraint::Absolute(
                comfy_table::Width::Fixed(u16::try_from(w + CELL_PADDING).unwrap_or(u16::MAX)),
            ));
            if right[i] {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
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

/// `3h ago`, `in 5m`, `just now`: coarse on purpose, for a column. The one
/// relative time of every table (`kvc::text::span`): `--long` shows RFC
/// 3339 ([`timestamp`]), JSON Unix seconds.
pub fn ago(then: u64, now: u64) -> String {
    if then == 0 {
        return "never".into();
    }
    let (secs, future) = if now >= then {
        (now - then, false)
    } else {
        (then - now, true)
    };
    if secs < 10 {
        return "just now".into();
    }
    let amount = kvc::text::span(secs);
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// The one progress style of every long command: on standard error, only
/// when it is a terminal (`None` otherwise, so pipes and cron logs never
/// see one), with percent, rate and ETA. `total`: bytes to go, or `None`
/// when unknown (a stream): a spinner, the bytes so far and the rate.
pub fn progress_bytes(label: &str, total: Option<u64>) -> Option<indicatif::ProgressBar> {
    let template = match total {
        Some(_) => {
            "{prefix} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        }
        None => "{prefix} {spinner} {binary_bytes} {binary_bytes_per_sec} {msg}",
    };
    progress(label, total.unwrap_or(0), template)
}

/// [`progress_bytes`] for a count of items (files).
pub fn progress_items(label: &str, total: u64) -> Option<indicatif::ProgressBar> {
    progress(
        label,
        total,
        "{prefix} [{bar:30}] {percent:>3}% {pos}/{len} files {per_sec} ETA {eta} {msg}",
    )
}

fn progress(label: &str, total: u64, template: &str) -> Option<indicatif::ProgressBar> {
    if !io::IsTerminal::is_terminal(&io::stderr()) {
        return None;
    }
    // Set up hidden, then shown: no frame is drawn before the first
    // progress (a bar of length 0 would read 100%).
    let bar = indicatif::ProgressBar::hidden();
    bar.set_length(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(bar)
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

/// A value serde writes as a string through its `Display` (serde_json
/// escapes it as it is formatted: no `String` in between).
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Permission bits as `ls --json` shows them: `"0600"`.
struct Mode(u32);

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// D11's fingerprint bytes, hex.
struct Fingerprint([u8; 3]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

/// The names of the set ext flags, as [`kvc::ExtFlags::names`] lists them.
struct FlagNames(kvc::ExtFlags);

impl Serialize for FlagNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let bits = self.0 .0;
        let mut seq = s.serialize_seq(Some(bits.count_ones() as usize))?;
        for b in (0..8).filter(|b| bits & (1 << b) != 0) {
            match b {
                0 => seq.serialize_element("tool-map")?,
                1 => seq.serialize_element("responses-visible")?,
                2 => seq.serialize_element("thinking-visible")?,
                3 => seq.serialize_element("session-title")?,
                _ => seq.serialize_element(&Shown(format_args!("bit{b}")))?,
            }
        }
        seq.end()
    }
}

/// The one-letter flags of the `ls` column (legend in `kvc ls --help`).
fn flag_letters(
    f: kvc::ExtFlags,
    superseded: bool,
    agent_save: bool,
    loadable: bool,
    warned: bool,
) -> String {
    let mut s = String::new();
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
    if superseded {
        s.push('s');
    }
    if agent_save {
        s.push('a');
    }
    if !loadable {
        s.push('x');
    }
    if warned {
        s.push('!');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// The JSON of one checkpoint as `ls` writes it: exactly the fields of a
/// [`CheckpointView`], written straight from the scan's record and its
/// standing, with no row built (issue 16: building a view per row was
/// 14 % of `kvc ls --json --no-title`'s instructions, its Strings more).
pub struct CheckpointRow<'a> {
    pub checkpoint: &'a Checkpoint,
    pub standing: &'a Standing,
    pub now: u64,
    /// Show its title (`--no-title`: null).
    pub title: bool,
}

impl CheckpointRow<'_> {
    /// Mainline's model name, for dialects that follow mainline's
    /// numbering (as [`CheckpointView::model`]).
    pub fn model(&self) -> Option<&'static str> {
        let c = self.checkpoint;
        c.dialect
            .spec()
            .mainline_models
            .then(|| kvc::format::model_name(c.header.model_id))
            .flatten()
    }

    /// The title as shown (sanitized), when titles are shown.
    pub fn title(&self) -> Option<String> {
        self.title
            .then(|| self.checkpoint.title().map(sanitize_line))
            .flatten()
    }

    /// The one-letter flags of the `ls` column.
    pub fn flag_letters(&self) -> String {
        let c = self.checkpoint;
        let warned = c.content_key.is_some()
            || !header_warnings(&c.header, c.dialect.spec(), self.now).is_empty();
        flag_letters(
            c.header.ext_flags,
            self.standing.superseded,
            c.is_agent_save(),
            c.is_loadable(),
            warned,
        )
    }
}

impl Serialize for CheckpointRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (c, standing) = (self.checkpoint, self.standing);
        let h = &c.header;
        let spec = c.dialect.spec();
        let mut st = s.serialize_struct("CheckpointView", 32)?;
        st.serialize_field("key", c.key.as_str())?;
        st.serialize_field("file", &Shown(c.file_name()))?;
        st.serialize_field("path", &Shown(c.display_path()))?;
        st.serialize_field("size", &c.size)?;
        st.serialize_field("mode", &Shown(Mode(c.mode)))?;
        st.serialize_field("reason", &*h.reason.name())?;
        st.serialize_field("reason_code", &h.reason.0)?;
        st.serialize_field("quant_bits", &h.quant_bits)?;
        st.serialize_field("tokens", &h.tokens)?;
        st.serialize_field("hits", &h.hits)?;
        st.serialize_field("ctx_size", &h.ctx_size)?;
        st.serialize_field("model_id", &h.model_id)?;
        st.serialize_field("payload_abi", &h.payload_abi)?;
        st.serialize_field("ext_flags", &h.ext_flags.0)?;
        st.serialize_field("flags", &FlagNames(h.ext_flags))?;
        st.serialize_field("dialect", c.dialect.as_str())?;
        st.serialize_field("dialect_assumed", &c.assumed)?;
        let model = spec
            .mainline_models
            .then(|| kvc::format::model_name(h.model_id))
            .flatten();
        st.serialize_field("model", &model)?;
        let fingerprint = spec.fingerprint.then_some(Shown(Fingerprint(h.reserved)));
        st.serialize_field("fingerprint", &fingerprint)?;
        st.serialize_field("loadable", &c.is_loadable())?;
        st.serialize_field("not_loaded", &c.loadable.as_ref().err().map(Shown))?;
        st.serialize_field("created", &h.created)?;
        st.serialize_field("last_used", &h.last_used)?;
        st.serialize_field("payload_bytes", &h.payload_bytes)?;
        st.serialize_field("text_bytes", &c.text_len)?;
        let title = self.title.then(|| c.title().map(sanitize_line)).flatten();
        st.serialize_field("title", &title)?;
        st.serialize_field("score", &standing.score)?;
        st.serialize_field("evict_rank", &standing.rank)?;
        st.serialize_field("superseded", &standing.superseded)?;
        st.serialize_field("agent_save", &c.is_agent_save())?;
        st.serialize_field("warnings", &header_warnings(h, spec, self.now))?;
        st.serialize_field(
            "content_key",
            &c.content_key.as_deref().map(kvc::Key::as_str),
        )?;
        st.end()
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
    /// The key the content says when it is not the name (`key-mismatch`,
    /// known when the text was read): still a checkpoint the engine counts.
    pub content_key: Option<String>,
}

impl CheckpointView {
    /// `standing` is the checkpoint's place in the eviction order (rank 1 =
    /// first victim, no rank for agent saves, which eviction leaves alone).
    pub fn new(c: &Checkpoint, standing: &Standing, now: u64) -> CheckpointView {
        Self::build(c, standing, now, true)
    }

    /// [`new`](Self::new) without the title (`ls --no-title`, which
    /// writes `CheckpointRow`s: compared with them in tests).
    #[cfg(test)]
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
            content_key: c.content_key.as_ref().map(|k| k.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unfitted table written chunk by chunk is one comfy-table laid
    /// out with `table()` (no width to fit), byte for byte.
    #[test]
    fn unfitted_lines_are_comfy_tables() {
        let pieces = [
            "",
            "a",
            "│  └─ ",
            "12345",
            "漢字",
            "e\u{301}",
            "x\u{3000}",
            "trail ",
            "…",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..200 {
            let cols = 1 + next(5);
            let header: Vec<&str> = (0..cols)
                .map(|_| ["KEY", "TOKENS", "TITLE", "漢"][next(4)])
                .collect();
            let n = [1, 2, 5, CHUNK_ROWS + 3][next(4)];
            let mut rows: Vec<Vec<String>> = Vec::new();
            for _ in 0..n {
                let mut r = Vec::new();
                for _ in 0..cols {
                    let mut s = String::new();
                    for _ in 0..next(3) {
                        s.push_str(pieces[next(pieces.len())]);
                    }
                    r.push(s);
                }
                rows.push(r);
            }
            let right: Vec<usize> = (0..cols).filter(|_| next(2) == 0).collect();
            let mut t = table(&header);
            for r in &rows {
                t.add_row(r.clone());
            }
            align_right(&mut t, &right);
            let mut want = Vec::new();
            write_table(&mut want, &t).unwrap();
            let mut got = Vec::new();
            let row = |i: usize| rows[i].clone();
            write_rows_unfitted(&mut got, &header, rows.len(), &row, &right).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "round {round}: {header:?}"
            );
        }
    }

    /// Chunks rendered in parallel come out in order: a table of several
    /// chunks (and one of none) written by `render_rows` is the one
    /// written chunk after chunk on one thread.
    #[test]
    fn parallel_chunks_are_written_in_order() {
        let header = ["N", "KEY", "TITLE"];
        for n in [0, 1, CHUNK_ROWS, 3 * CHUNK_ROWS + 5] {
            let rows: Vec<Vec<String>> = (0..n)
                .map(|i| vec![i.to_string(), format!("{:x}", i * 7919), "漢".repeat(i % 5)])
                .collect();
            let row = |i: usize| rows[i].clone();
            let mut one_thread = Vec::new();
            write_rows_unfitted(&mut one_thread, &header, n, &row, &[0]).unwrap();
            let l = Layout {
                keep: (0..header.len()).collect(),
                widths: measure(&header, n, &row),
                budget: None,
            };
            let mut parallel = Vec::new();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .build()
                .unwrap();
            pool.install(|| render_rows(&mut parallel, &header, n, &row, &l, &[], &[0]))
                .unwrap();
            assert_eq!(
                String::from_utf8(parallel).unwrap(),
                String::from_utf8(one_thread).unwrap(),
                "{n} rows"
            );
        }
    }

    /// `ls` writes a checkpoint from the record (`CheckpointRow`); `show`
    /// builds a `CheckpointView`. Same JSON, on
    /// every fixture checkpoint, with and without titles.
    #[test]
    fn a_row_is_a_view() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut n = 0;
        for dir in std::fs::read_dir(fixtures).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for read_text in [false, true] {
                let opts = kvc::ScanOptions {
                    read_text,
                    engine: None,
                };
                let scan = kvc::scan_dir(&dir, opts).unwrap();
                let rank = kvc::policy::RankOptions {
                    policy: kvc::Policy::Ds4,
                    now: 1_763_710_000,
                    reject_different_quant: false,
                };
                let st = kvc::policy::standings(
                    &rank,
                    &scan.checkpoints,
                    |_| true,
                    |c| c.is_agent_save(),
                );
                for (c, s) in scan.checkpoints.iter().zip(&st) {
                    let view = if read_text {
                        CheckpointView::new(c, s, rank.now)
                    } else {
                        CheckpointView::without_title(c, s, rank.now)
                    };
                    let row = CheckpointRow {
                        checkpoint: c,
                        standing: s,
                        now: rank.now,
                        title: read_text,
                    };
                    let want = serde_json::to_string_pretty(&view).unwrap();
                    assert_eq!(serde_json::to_string_pretty(&row).unwrap(), want);
                    n += 1;
                }
            }
        }
        assert!(n > 20, "{n} checkpoints compared");
    }

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
