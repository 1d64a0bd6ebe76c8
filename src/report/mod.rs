//! `kvc report`: one self-contained HTML file about a cache directory.
//!
//! No script, no style sheet or font from elsewhere, nothing loaded: the
//! charts are inline SVG ([`charts`], drawn by plotters), the rest tables.
//! The document is also well-formed XML (polyglot HTML5), so any XML
//! parser can check it, and its tests do.
//!
//! Every text taken from a checkpoint or a log (titles, file names,
//! directory names, log lines) goes through [`crate::text::sanitize_line`]
//! (no control characters, no bidi overrides) and then [`escape`].

pub mod charts;

use crate::enginelog::LogStats;
use crate::policy::Standing;
use crate::scan::Scan;
use crate::stats::{self, DirStats};
use crate::text::sanitize_line;
use crate::tree::Forest;
use std::fmt::Write as _;

/// The scatter shows at most this many checkpoints (an even sample by
/// eviction rank beyond): an SVG circle is about 100 bytes.
pub const MAX_POINTS: usize = 4000;
/// The forest drawing shows at most this many nodes (largest chains first).
pub const MAX_TREE_NODES: usize = 160;
/// The eviction table shows the first this many victims.
pub const MAX_VICTIMS: usize = 25;

/// HTML-escape (text and attribute values alike).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted bytes, made safe for the page: sanitized, then escaped.
pub fn untrusted(bytes: &[u8]) -> String {
    escape(&sanitize_line(bytes))
}

/// What a report is made of.
pub struct ReportInput<'a> {
    pub scan: &'a Scan,
    pub stats: &'a DirStats,
    /// Index-aligned with the scan's checkpoints.
    pub standings: &'a [Standing],
    pub forest: &'a Forest,
    pub log: Option<&'a LogStats>,
    /// kvc's version, for the footer.
    pub version: &'a str,
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}\
td.n,th.n{text-align:right}h2{margin-top:1.6em;border-bottom:2px solid #468}\
.note{color:#555;font-size:90%}svg{display:block;margin:0.5em 0}";

fn size(b: u64) -> String {
    humansize::format_size(b, humansize::BINARY)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// An SVG for the page (plotters writes no XML declaration; any would be
/// dropped), or a note saying why the chart is missing.
fn chart(out: &mut String, svg: Result<String, String>) {
    match svg {
        Ok(s) => {
            let s = match s.find("<svg") {
                Some(i) => &s[i..],
                None => &s,
            };
            out.push_str(s);
            out.push('\n');
        }
        Err(e) => {
            let _ = writeln!(out, "<p class=\"note\">chart not drawn: {}</p>", escape(&e));
        }
    }
}

/// A table: header cells (a leading `#` right-aligns the column) and rows
/// of already escaped cells.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let right: Vec<bool> = header.iter().map(|h| h.starts_with('#')).collect();
    out.push_str("<table>\n<tr>");
    for h in header {
        let (class, h) = match h.strip_prefix('#') {
            Some(h) => (" class=\"n\"", h),
            None => ("", *h),
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if right.get(i) == Some(&true) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{c}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// A bar chart of the MiB in each row of a breakdown.
fn bytes_chart(out: &mut String, title: &str, rows: &[stats::Row]) {
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let values: Vec<f64> = rows.iter().map(|r| r.bytes as f64 / 1048576.0).collect();
    chart(out, charts::bars(title, &labels, &values, "MiB"));
}

fn row_cells(r: &stats::Row, whole: u64) -> Vec<String> {
    vec![
        escape(&r.label),
        r.count.to_string(),
        escape(&size(r.bytes)),
        pct(r.bytes, whole),
    ]
}

/// Render the whole page.
pub fn render(input: &ReportInput<'_>) -> String {
    let s = input.stats;
    let cps = &input.scan.checkpoints;
    let dir = untrusted(s.dir.display().to_string().as_bytes());
    let mut out = String::with_capacity(64 << 10);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(out, "<title>kvc report: {dir}</title>");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>kvc report: {dir}</h1>");
    let _ = writeln!(
        out,
        "<p>Engine: {}; policy {} ({}). Evaluated at {} (Unix {}).</p>",
        escape(&s.engine.describe()),
        escape(s.policy.name()),
        escape(s.policy_from.name()),
        escape(
            &humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.now.min(253_402_300_799))
            )
            .to_string()
        ),
        s.now
    );

    out.push_str("<h2>Summary</h2>\n");
    let t = |x: stats::Tally| vec![x.count.to_string(), escape(&size(x.bytes))];
    let mut rows = Vec::new();
    for (name, x) in [
        ("checkpoints", s.checkpoints),
        ("the engine loads", s.loadable),
        ("its budget counts", s.counted),
        ("never loaded", s.never_loaded),
        ("agent saves", s.agent_saves),
        ("invalid", s.invalid),
        ("temp files", s.temp_files),
        ("strays", s.strays),
        ("foreign (kept apart)", s.foreign),
    ] {
        let mut r = vec![escape(name)];
        r.extend(t(x));
        rows.push(r);
    }
    rows.push(vec![
        "on disk".into(),
        String::new(),
        escape(&size(s.total_bytes)),
    ]);
    table(&mut out, &["", "#files", "#bytes"], &rows);
    if let Some(b) = &s.budget {
        let from = match &b.source {
            stats::BudgetSource::Given => "--budget".to_string(),
            stats::BudgetSource::Log { day } => format!(
                "the engine's log{}",
                day.as_deref().map_or(String::new(), |d| format!(", {d}"))
            ),
        };
        let _ = writeln!(
            out,
            "<p>Budget {} ({}): the engine's budget counts {} = {:.1}%; <code>kvc evict --budget</code> would delete {} files, {}.</p>",
            escape(&size(b.budget)),
            escape(&from),
            escape(&size(b.counted_bytes)),
            b.usage * 100.0,
            b.evict.count,
            escape(&size(b.evict.bytes))
        );
    }

    let whole = s.checkpoints.bytes;
    out.push_str("<h2>Bytes by reason</h2>\n");
    bytes_chart(&mut out, "Bytes by reason", &s.by_reason);
    let rows: Vec<Vec<String>> = s.by_reason.iter().map(|r| row_cells(r, whole)).collect();
    table(
        &mut out,
        &["reason", "#checkpoints", "#bytes", "#share"],
        &rows,
    );

    out.push_str("<h2>Bytes by last use</h2>\n");
    bytes_chart(&mut out, "Bytes by time since last use", &s.by_age);
    let rows: Vec<Vec<String>> = s
        .by_dialect
        .iter()
        .chain(&s.by_model)
        .chain(&s.by_size)
        .map(|r| row_cells(r, whole))
        .collect();
    table(
        &mut out,
        &["dialect / model / size", "#checkpoints", "#bytes", "#share"],
        &rows,
    );
    let h = &s.hits;
    let _ = writeln!(
        out,
        "<p>Never hit: {} files, {} ({}). Last hit within a day: {}; one to seven days ago: {}; earlier: {}.</p>",
        h.never.count,
        escape(&size(h.never.bytes)),
        pct(h.never.bytes, whole),
        escape(&size(h.within_1d.bytes)),
        escape(&size(h.within_1d_7d.bytes)),
        escape(&size(h.before_7d.bytes))
    );

    out.push_str("<h2>Size and last use, by eviction rank</h2>\n");
    let mut order: Vec<usize> = (0..cps.len()).collect();
    order.sort_by_key(|&i| (input.standings[i].rank.is_none(), input.standings[i].rank));
    let stride = order.len().div_ceil(MAX_POINTS).max(1);
    let points: Vec<charts::Point> = order
        .iter()
        .step_by(stride)
        .map(|&i| {
            let c = &cps[i];
            charts::Point {
                hours: s.now.saturating_sub(c.header.used_time()) as f64 / 3600.0,
                bytes: c.size,
                rank: input.standings[i].rank,
            }
        })
        .collect();
    chart(
        &mut out,
        charts::scatter("Size against time since last use", &points),
    );
    let _ = writeln!(
        out,
        "<p class=\"note\">Each dot a checkpoint{}, coloured by its place in {}'s eviction order (red: evicted first). Grey: not ranked (the engine never evicts it, or an agent save).</p>",
        if stride > 1 {
            format!(" (every {stride}th by rank: {} of {})", points.len(), cps.len())
        } else {
            String::new()
        },
        escape(s.policy.name())
    );
    let victims: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| input.standings[i].rank.is_some())
        .take(MAX_VICTIMS)
        .collect();
    if !victims.is_empty() {
        let rows: Vec<Vec<String>> = victims
            .iter()
            .map(|&i| {
                let c = &cps[i];
                let st = &input.standings[i];
                vec![
                    st.rank.map_or(String::new(), |r| r.to_string()),
                    escape(&c.key.to_string()[..c.key.to_string().len().min(12)]),
                    escape(&c.header.reason.name()),
                    c.header.tokens.to_string(),
                    escape(&size(c.size)),
                    c.header.hits.to_string(),
                    if st.superseded {
                        "s".into()
                    } else {
                        String::new()
                    },
                    input.forest.title(i).map_or(String::new(), untrusted),
                ]
            })
            .collect();
        out.push_str("<p>Next victims:</p>\n");
        table(
            &mut out,
            &[
                "#rank", "key", "reason", "#tokens", "#size", "#hits", "flags", "title",
            ],
            &rows,
        );
    }

    out.push_str("<h2>Reclaimable</h2>\n");
    let mut rows: Vec<Vec<String>> = s
        .reclaimable
        .iter()
        .map(|r| {
            vec![
                escape(r.kind.name()),
                r.count.to_string(),
                escape(&size(r.bytes)),
                format!("<code>{}</code>", escape(r.command)),
            ]
        })
        .collect();
    rows.push(vec![
        "foreign".into(),
        s.foreign.count.to_string(),
        escape(&size(s.foreign.bytes)),
        "nothing: kept apart, never deleted by kvc on its own".into(),
    ]);
    table(&mut out, &["kind", "#files", "#bytes", "freed by"], &rows);

    forest_section(&mut out, input);
    if let Some(log) = input.log {
        log_section(&mut out, log);
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Written by kvc {}. Every text from a checkpoint or a log is shown with control characters escaped.</p>\n</body>\n</html>",
        escape(input.version)
    );
    out
}

fn forest_section(out: &mut String, input: &ReportInput<'_>) {
    let f = input.forest;
    let cps = &input.scan.checkpoints;
    out.push_str("<h2>Prefix forest</h2>\n");
    let covered: u64 = f.chains.iter().map(|c| c.covered_bytes).sum();
    let multi = f.chains.iter().filter(|c| c.nodes > 1).count();
    let _ = writeln!(
        out,
        "<p>{} checkpoints in {} chains ({} of more than one). {} of {} are held by checkpoints whose text another one extends or repeats (no prefix of their own).</p>",
        f.nodes.len(),
        f.chains.len(),
        multi,
        escape(&size(covered)),
        escape(&size(input.stats.checkpoints.bytes))
    );
    // The largest chains first, whole, until the drawing is full.
    let mut drawn: Vec<usize> = Vec::new();
    let mut at = vec![usize::MAX; f.nodes.len()];
    let mut start = 0;
    for c in &f.chains {
        let n = c.nodes as usize;
        if c.nodes < 2 || drawn.len() + n > MAX_TREE_NODES {
            start += n;
            continue;
        }
        for &i in &f.preorder[start..start + n] {
            at[i] = drawn.len();
            drawn.push(i);
        }
        start += n;
    }
    if !drawn.is_empty() {
        let nodes: Vec<charts::TreeNode> = drawn
            .iter()
            .map(|&i| {
                let n = &f.nodes[i];
                let c = &cps[i];
                let key = c.key.to_string();
                charts::TreeNode {
                    depth: n.depth,
                    parent: n.parent().map(|p| at[p]).filter(|&p| p != usize::MAX),
                    label: format!(
                        "{}  {} tok  {}  {}{}",
                        &key[..key.len().min(12)],
                        c.header.tokens,
                        size(c.size),
                        c.header.reason.name(),
                        if n.superseded { "  superseded" } else { "" }
                    ),
                    superseded: n.superseded,
                    covered: n.covered(),
                }
            })
            .collect();
        chart(out, charts::forest("The largest prefix chains", &nodes));
        out.push_str("<p class=\"note\">Blue: holds a prefix of its own; grey: another checkpoint extends or repeats its text; orange: a superseded waypoint (ds4's test at rest).</p>\n");
    }
    let rows: Vec<Vec<String>> = f
        .chains
        .iter()
        .filter(|c| c.nodes > 1)
        .take(20)
        .map(|c| {
            let root = &cps[c.root];
            let key = root.key.to_string();
            vec![
                escape(&key[..key.len().min(12)]),
                c.nodes.to_string(),
                c.depth.to_string(),
                escape(&size(c.bytes)),
                escape(&size(c.covered_bytes)),
                f.title(c.root).map_or(String::new(), untrusted),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(
            out,
            &[
                "root",
                "#checkpoints",
                "#depth",
                "#bytes",
                "#covered bytes",
                "title",
            ],
            &rows,
        );
    }
}

fn log_section(out: &mut String, log: &LogStats) {
    out.push_str("<h2>Engine activity (log)</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} lines read, {} kv-cache lines, {} unparsed, {} outside the window.</p>",
        log.lines, log.kv_lines, log.unparsed, log.outside_window
    );
    let days: Vec<String> = log.days.keys().cloned().collect();
    let acts: Vec<&crate::enginelog::Activity> = log.days.values().collect();
    let written: Vec<f64> = acts
        .iter()
        .map(|a| a.written_bytes as f64 / 1048576.0)
        .collect();
    chart(
        out,
        charts::bars("Bytes written per day", &days, &written, "MiB"),
    );
    let series = [
        (
            "hits",
            acts.iter().map(|a| a.hits as f64).collect(),
            plotters::style::RGBColor(40, 140, 70),
        ),
        (
            "evictions",
            acts.iter().map(|a| a.evicted.count as f64).collect(),
            plotters::style::RGBColor(70, 110, 170),
        ),
        (
            "evicted unread",
            acts.iter().map(|a| a.evicted.unread.count as f64).collect(),
            plotters::style::RGBColor(215, 50, 40),
        ),
    ];
    chart(
        out,
        charts::lines("Hits and evictions per day", &days, &series),
    );
    let total = "total".to_string();
    let rows: Vec<Vec<String>> = log
        .days
        .iter()
        .chain(std::iter::once((&total, &log.total)))
        .map(|(day, a)| {
            vec![
                escape(day),
                a.hits.to_string(),
                a.stored.values().map(|s| s.count).sum::<u64>().to_string(),
                escape(&size(a.written_bytes)),
                a.evicted.count.to_string(),
                format!(
                    "{} ({})",
                    a.evicted.unread.count,
                    escape(&size(a.evicted.unread.bytes))
                ),
                a.skipped.values().sum::<u64>().to_string(),
                (a.load_failed + a.store_failed).to_string(),
                (a.discarded_corrupt + a.discarded_prefill_failed).to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "day",
            "#hits",
            "#stored",
            "#written",
            "#evicted",
            "#unread",
            "#skipped",
            "#failed",
            "#discarded",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = log
        .total
        .stored
        .iter()
        .map(|(r, st)| {
            let unread = log
                .followed
                .evicted_unread
                .get(r)
                .copied()
                .unwrap_or_default();
            vec![
                untrusted(r.as_bytes()),
                st.count.to_string(),
                escape(&size(st.bytes)),
                unread.count.to_string(),
                escape(&size(unread.bytes)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str("<p>Stores by reason, and how many of them were evicted in the window without a hit:</p>\n");
        table(
            out,
            &["reason", "#stored", "#written", "#evicted unread", "#bytes"],
            &rows,
        );
    }
    for s in &log.unparsed_samples {
        let _ = writeln!(
            out,
            "<p class=\"note\">unparsed: <code>{}</code></p>",
            untrusted(s.as_bytes())
        );
    }
}
