//! `kvc stats`: one screen about cache directories (`kvc::stats`), and
//! with `--log` about what the engine did (`kvc::enginelog`). Rendered as
//! a table, JSON, or the Prometheus text format for node_exporter.

use crate::cli::{EngineLogArgs, StatsArgs};
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{Context, Result};
use comfy_table::Cell;
use kvc::enginelog::{self, LogOptions, LogReader, LogStats};
use kvc::stats::{self, BudgetSource, DirStats, Row, StatsOptions, Tally};
use kvc::text::sanitize_line;
use serde::Serialize;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Version of the JSON schema (doc/GUIDE.md, `kvc stats`): bumped when a
/// field changes meaning or goes away; new fields may appear.
pub const SCHEMA_VERSION: u32 = 1;

/// Read every `--log` input in one streaming pass each.
pub fn read_logs(args: &EngineLogArgs, now: u64) -> Result<Option<LogStats>> {
    if args.logs.is_empty() {
        return Ok(None);
    }
    let mut opts = LogOptions::new(now);
    let bound = |s: &Option<String>, end| {
        s.as_deref()
            .map(|v| enginelog::parse_bound(v, now, end))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    opts.since = bound(&args.since, false).context("--since")?;
    opts.until = bound(&args.until, true).context("--until")?;
    let mut reader = LogReader::new(opts);
    for path in &args.logs {
        if path.as_os_str() == "-" {
            reader
                .read(io::stdin().lock())
                .context("reading the log from standard input")?;
        } else {
            let f = fs::File::open(path).with_context(|| path.display().to_string())?;
            reader
                .read(io::BufReader::with_capacity(256 << 10, f))
                .with_context(|| path.display().to_string())?;
        }
    }
    let mut log = reader.finish();
    for s in &mut log.unparsed_samples {
        *s = sanitize_line(s.as_bytes());
    }
    for b in &mut log.budgets {
        b.dir = sanitize_line(b.dir.as_bytes());
    }
    Ok(Some(log))
}

/// The budget for `dir`: `--budget`, else the last one the engine logged
/// for that directory.
pub fn budget_for(
    dir: &Path,
    given: Option<u64>,
    log: Option<&LogStats>,
) -> Option<(u64, BudgetSource)> {
    if let Some(b) = given {
        return Some((b, BudgetSource::Given));
    }
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let want = canon(dir);
    log?.budgets
        .iter()
        .rev()
        .find(|b| canon(Path::new(&b.dir)) == want)
        .map(|b| (b.budget, BudgetSource::Log { day: b.day.clone() }))
}

/// Sums over every directory.
#[derive(Serialize, Default)]
struct Totals {
    checkpoints: Tally,
    total_bytes: u64,
    reclaimable_bytes: u64,
}

#[derive(Serialize)]
struct StatsReport {
    version: u32,
    now: u64,
    dirs: Vec<DirStats>,
    totals: Totals,
    log: Option<LogStats>,
}

pub fn run(args: StatsArgs) -> Result<Outcome> {
    let mut dirs = args.dirs.clone();
    dirs.extend(args.dir.iter().cloned());
    if dirs.is_empty() {
        dirs.push(config::default_dir()?);
    }
    let now = config::now_or_clock(args.policy.now)?;
    let log = read_logs(&args.log, now)?;
    let mut views = Vec::new();
    for dir in dirs {
        let opts = StatsOptions {
            engine: args.policy.engine.engine(),
            policy: args.policy.policy(),
            now,
            budget: budget_for(&dir, args.budget, log.as_ref()),
            temp_age: args.temp_age.temp_age,
            reject_different_quant: args.quant.reject_different_quant,
        };
        views.push(stats::dir_stats(&dir, &opts)?);
    }
    let mut totals = Totals::default();
    for d in &views {
        totals.checkpoints.merge(d.checkpoints);
        totals.total_bytes += d.total_bytes;
        totals.reclaimable_bytes += d.reclaimable.iter().map(|r| r.bytes).sum::<u64>();
    }
    let report = StatsReport {
        version: SCHEMA_VERSION,
        now,
        dirs: views,
        totals,
        log,
    };
    if let Some(path) = &args.prometheus_file {
        write_prometheus_file(path, &prometheus(&report))?;
    } else if args.prometheus {
        let mut out = io::stdout().lock();
        out.write_all(prometheus(&report).as_bytes())?;
        out.flush()?;
    } else {
        output::emit(&report, args.output.json)?;
    }
    Ok(Outcome::Clean)
}

/// Write the textfile atomically: node_exporter reads the directory at
/// any moment, and must see the old file or the new one, never half of
/// one. The temp name (`<name>.tmp.<pid>`) does not end in `.prom`, so
/// node_exporter ignores it. Mode 0644, not kvc's usual 0600: the
/// collector runs as another user, and the metrics hold no prompt text
/// (directory paths, reasons, counts).
fn write_prometheus_file(path: &Path, text: &str) -> Result<()> {
    kvc::fsutil::replace_file(path, text.as_bytes(), 0o644).map_err(|e| kvc::Error::io(path, e))?;
    Ok(())
}

// --- Prometheus text exposition format (version 0.0.4) ---

/// A label value: `\`, `"` and newline escaped, as the format requires.
fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Metric families in order, each with its samples.
struct Families {
    out: String,
}

impl Families {
    fn family(&mut self, name: &str, help: &str, samples: &[(Vec<(&str, String)>, f64)]) {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} gauge");
        for (labels, v) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (k, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{k}=\"{}\"", label_value(val));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {v}");
        }
    }
}

type Samples<'a> = Vec<(Vec<(&'a str, String)>, f64)>;

fn per_dir<'a>(
    dirs: &'a [DirStats],
    f: impl Fn(&'a DirStats) -> Vec<(Vec<(&'a str, String)>, f64)>,
) -> Samples<'a> {
    dirs.iter()
        .flat_map(|d| {
            let dir = d.dir.display().to_string();
            f(d).into_iter().map(move |(mut l, v)| {
                l.insert(0, ("dir", dir.clone()));
                (l, v)
            })
        })
        .collect()
}

fn rows<'a>(rows: &'a [Row], label: &'a str, bytes: bool) -> Samples<'a> {
    rows.iter()
        .map(|r| {
            let v = if bytes { r.bytes } else { r.count } as f64;
            (vec![(label, r.label.clone())], v)
        })
        .collect()
}

/// The report in the text exposition format. Every metric is a gauge: a
/// snapshot of the directory, or totals over the log window read this
/// time (not counters: a rotated log would make them go down).
fn prometheus(r: &StatsReport) -> String {
    let mut f = Families { out: String::new() };
    let d = &r.dirs;
    f.family(
        "kvc_stats_timestamp_seconds",
        "Unix time the stats were computed at (--now).",
        &[(vec![], r.now as f64)],
    );
    f.family(
        "kvc_checkpoints",
        "Readable checkpoints, by the reason in their header.",
        &per_dir(d, |d| rows(&d.by_reason, "reason", false)),
    );
    f.family(
        "kvc_checkpoint_bytes",
        "Bytes of readable checkpoints, by reason.",
        &per_dir(d, |d| rows(&d.by_reason, "reason", true)),
    );
    f.family(
        "kvc_dialect_bytes",
        "Bytes of readable checkpoints, by dialect (FORMAT.md section 9).",
        &per_dir(d, |d| rows(&d.by_dialect, "dialect", true)),
    );
    f.family(
        "kvc_model_bytes",
        "Bytes of readable checkpoints, by model.",
        &per_dir(d, |d| rows(&d.by_model, "model", true)),
    );
    f.family(
        "kvc_age_bytes",
        "Bytes of readable checkpoints, by time since last use (last_used, else created).",
        &per_dir(d, |d| rows(&d.by_age, "age", true)),
    );
    f.family(
        "kvc_size_checkpoints",
        "Readable checkpoints, by file size.",
        &per_dir(d, |d| rows(&d.by_size, "size", false)),
    );
    let hit_rows = |d: &DirStats| {
        let h = &d.hits;
        [
            ("never", h.never),
            ("1d", h.within_1d),
            ("1d-7d", h.within_1d_7d),
            ("gt-7d", h.before_7d),
        ]
    };
    f.family(
        "kvc_hit_bytes",
        "Bytes of readable checkpoints by their last hit: never hit, within a day, one to seven days, longer ago.",
        &per_dir(d, |d| {
            hit_rows(d)
                .into_iter()
                .map(|(l, t)| (vec![("last_hit", l.to_string())], t.bytes as f64))
                .collect()
        }),
    );
    let kinds = |d: &DirStats| {
        [
            ("checkpoint", d.checkpoints),
            ("invalid", d.invalid),
            ("foreign", d.foreign),
            ("temp", d.temp_files),
            ("stray", d.strays),
        ]
    };
    f.family(
        "kvc_entries",
        "Directory entries by kind (checkpoint, invalid, foreign, temp, stray).",
        &per_dir(d, |d| {
            kinds(d)
                .into_iter()
                .map(|(k, t)| (vec![("kind", k.to_string())], t.count as f64))
                .collect()
        }),
    );
    f.family(
        "kvc_entry_bytes",
        "Bytes of directory entries by kind; they add up to kvc_total_bytes.",
        &per_dir(d, |d| {
            kinds(d)
                .into_iter()
                .map(|(k, t)| (vec![("kind", k.to_string())], t.bytes as f64))
                .collect()
        }),
    );
    f.family(
        "kvc_total_bytes",
        "Bytes of every entry of the directory.",
        &per_dir(d, |d| vec![(vec![], d.total_bytes as f64)]),
    );
    let pop = |d: &DirStats| {
        [
            ("loadable", d.loadable),
            ("counted", d.counted),
            ("never-loaded", d.never_loaded),
            ("agent-save", d.agent_saves),
        ]
    };
    f.family(
        "kvc_population_bytes",
        "Bytes of readable checkpoints the engine loads, its budget counts (as kvc evict counts them: with a foreign file ds4's reader accepts, or under hanzo-engine every *.kv entry), it never loads, and ds4-agent's saves.",
        &per_dir(d, |d| {
            pop(d)
                .into_iter()
                .map(|(k, t)| (vec![("kind", k.to_string())], t.bytes as f64))
                .collect()
        }),
    );
    f.family(
        "kvc_reclaimable_bytes",
        "Bytes the matching kvc command would free: unloadable (evict --include-unloadable), superseded (rm of superseded waypoints), stale-temps (gc).",
        &per_dir(d, |d| {
            d.reclaimable
                .iter()
                .map(|x| (vec![("kind", x.kind.name().to_string())], x.bytes as f64))
                .collect()
        }),
    );
    f.family(
        "kvc_reclaimable_files",
        "Files the matching kvc command would delete, by kind.",
        &per_dir(d, |d| {
            d.reclaimable
                .iter()
                .map(|x| (vec![("kind", x.kind.name().to_string())], x.count as f64))
                .collect()
        }),
    );
    f.family(
        "kvc_kept_apart_bytes",
        "Bytes kvc never reclaims: foreign files (dialects it does not fully read) and their companions.",
        &per_dir(d, |d| {
            vec![(vec![("kind", "foreign".to_string())], d.foreign.bytes as f64)]
        }),
    );
    let budgets = |f: fn(&stats::BudgetUse) -> f64| {
        per_dir(d, move |d| {
            d.budget
                .iter()
                .map(|b| {
                    let source = match &b.source {
                        BudgetSource::Given => "given",
                        BudgetSource::Log { .. } => "log",
                    };
                    (vec![("source", source.to_string())], f(b))
                })
                .collect()
        })
    };
    f.family(
        "kvc_budget_bytes",
        "The budget (--budget, or the engine's logged one).",
        &budgets(|b| b.budget as f64),
    );
    f.family(
        "kvc_budget_counted_bytes",
        "Bytes the engine's budget counts.",
        &budgets(|b| b.counted_bytes as f64),
    );
    f.family(
        "kvc_budget_usage_ratio",
        "Counted bytes divided by the budget.",
        &budgets(|b| b.usage),
    );
    f.family(
        "kvc_budget_evict_bytes",
        "Bytes kvc evict --budget would delete to meet the budget.",
        &budgets(|b| b.evict.bytes as f64),
    );
    if let Some(log) = &r.log {
        log_families(&mut f, log);
    }
    f.out
}

fn log_families(f: &mut Families, log: &LogStats) {
    let t = &log.total;
    let one = |v: f64| vec![(vec![], v)];
    f.family(
        "kvc_log_lines",
        "Log lines read: all, kv-cache lines, unparsed kv-cache lines, outside the window.",
        &[
            (vec![("kind", "read".to_string())], log.lines as f64),
            (vec![("kind", "kv".to_string())], log.kv_lines as f64),
            (vec![("kind", "unparsed".to_string())], log.unparsed as f64),
            (
                vec![("kind", "outside-window".to_string())],
                log.outside_window as f64,
            ),
        ],
    );
    f.family(
        "kvc_log_hits",
        "Checkpoint loads (kv cache hit).",
        &one(t.hits as f64),
    );
    f.family(
        "kvc_log_hit_load_seconds",
        "Sum of the logged load times of the hits.",
        &one(t.hit_load_ms / 1000.0),
    );
    let by_reason = |g: fn(&enginelog::Stores) -> f64| -> Samples<'static> {
        t.stored
            .iter()
            .map(|(r, s)| (vec![("reason", r.clone())], g(s)))
            .collect()
    };
    f.family(
        "kvc_log_stored",
        "Checkpoints stored, by reason.",
        &by_reason(|s| s.count as f64),
    );
    f.family(
        "kvc_log_stored_bytes",
        "Bytes written by stores, by reason (sizes as logged, to 0.01 MiB).",
        &by_reason(|s| s.bytes as f64),
    );
    f.family(
        "kvc_log_save_seconds",
        "Sum of the logged save times, by reason.",
        &by_reason(|s| s.save_ms / 1000.0),
    );
    f.family(
        "kvc_log_evicted",
        "Checkpoints evicted by the engine's budget pass.",
        &one(t.evicted.count as f64),
    );
    f.family(
        "kvc_log_evicted_bytes",
        "Bytes evicted by the engine's budget pass.",
        &one(t.evicted.bytes as f64),
    );
    f.family(
        "kvc_log_evicted_unread",
        "Checkpoints evicted with hits=0: written and never read.",
        &one(t.evicted.unread.count as f64),
    );
    f.family(
        "kvc_log_evicted_unread_bytes",
        "Bytes evicted with hits=0 (wasted writes).",
        &one(t.evicted.unread.bytes as f64),
    );
    let by_hits: Samples<'static> = t
        .evicted
        .by_hits
        .iter()
        .map(|(h, x)| (vec![("hits", h.to_string())], x.count as f64))
        .collect();
    f.family(
        "kvc_log_evicted_by_hits",
        "Evictions by the hits the evicted file had (0, 1, 2-4, 5-15, 16+).",
        &by_hits,
    );
    let skipped: Samples<'static> = t
        .skipped
        .iter()
        .map(|(c, n)| (vec![("cause", c.to_string())], *n as f64))
        .collect();
    f.family("kvc_log_skipped", "Stores skipped, by cause.", &skipped);
    f.family(
        "kvc_log_failures",
        "Failed loads, discarded payloads (corrupt, prefill-failed), failed stores, incompatible files replaced.",
        &[
            (vec![("kind", "load-failed".to_string())], t.load_failed as f64),
            (
                vec![("kind", "discarded-corrupt".to_string())],
                t.discarded_corrupt as f64,
            ),
            (
                vec![("kind", "discarded-prefill-failed".to_string())],
                t.discarded_prefill_failed as f64,
            ),
            (vec![("kind", "store-failed".to_string())], t.store_failed as f64),
            (
                vec![("kind", "replaced-incompatible".to_string())],
                t.replaced_incompatible as f64,
            ),
        ],
    );
    let unread: Samples<'static> = log
        .followed
        .evicted_unread
        .iter()
        .map(|(r, x)| (vec![("reason", r.clone())], x.bytes as f64))
        .collect();
    f.family(
        "kvc_log_stored_evicted_unread_bytes",
        "Bytes stored in the window and evicted in it without a hit, by store reason.",
        &unread,
    );
}

// --- the human screen ---

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn tally(t: Tally) -> String {
    format!("{} ({})", t.count, output::size(t.bytes))
}

/// The breakdowns as one table: a section name on its first row, empty
/// buckets left out.
fn breakdowns(out: &mut dyn Write, d: &DirStats) -> io::Result<()> {
    let whole = d.checkpoints.bytes;
    let mut t = output::table(&["BY", "", "CHECKPOINTS", "BYTES", "SHARE"]);
    let sections: [(&str, &[Row]); 5] = [
        ("reason", &d.by_reason),
        ("dialect", &d.by_dialect),
        ("model", &d.by_model),
        ("last use", &d.by_age),
        ("size", &d.by_size),
    ];
    for (name, rows) in sections {
        for (i, r) in rows.iter().filter(|r| r.count > 0).enumerate() {
            t.add_row([
                Cell::new(if i == 0 { name } else { "" }),
                Cell::new(sanitize_line(r.label.as_bytes())),
                Cell::new(r.count),
                Cell::new(output::size(r.bytes)),
                Cell::new(pct(r.bytes, whole)),
            ]);
        }
    }
    align_right(&mut t, &[2, 3, 4]);
    output::write_table(out, &t)
}

fn write_dir(d: &DirStats, out: &mut dyn Write) -> io::Result<()> {
    let policy = if d.policy_from == kvc::policy::PolicyFrom::Engine {
        format!("policy {} (the engine's)", d.policy)
    } else {
        format!("policy {} (--policy)", d.policy)
    };
    writeln!(
        out,
        "{}",
        sanitize_line(d.dir.display().to_string().as_bytes())
    )?;
    writeln!(out, "engine: {}; {policy}", d.engine.describe())?;
    writeln!(
        out,
        "checkpoints: {}; the engine loads {}, its budget counts {}, never loaded {}",
        tally(d.checkpoints),
        tally(d.loadable),
        tally(d.counted),
        tally(d.never_loaded)
    )?;
    writeln!(
        out,
        "other entries: agent saves {}, invalid {}, temp files {}, strays {}, foreign {} (kept apart)",
        tally(d.agent_saves),
        tally(d.invalid),
        tally(d.temp_files),
        tally(d.strays),
        tally(d.foreign)
    )?;
    writeln!(out, "on disk: {}", output::size(d.total_bytes))?;
    if d.checkpoints.count > 0 {
        let whole = d.checkpoints.bytes;
        writeln!(out)?;
        breakdowns(out, d)?;
        let h = &d.hits;
        let week = Tally {
            count: h.within_1d.count + h.within_1d_7d.count,
            bytes: h.within_1d.bytes + h.within_1d_7d.bytes,
        };
        writeln!(out)?;
        writeln!(
            out,
            "hits: never hit {} = {} of the bytes; hit in the last day {}; in the last week {}; last hit earlier {}",
            tally(h.never),
            pct(h.never.bytes, whole),
            tally(h.within_1d),
            tally(week),
            tally(h.before_7d)
        )?;
    }
    writeln!(out)?;
    let mut t = output::table(&["RECLAIMABLE", "FILES", "BYTES", "FREED BY"]);
    for r in &d.reclaimable {
        t.add_row([
            Cell::new(r.kind.name()),
            Cell::new(r.count),
            Cell::new(output::size(r.bytes)),
            Cell::new(r.command),
        ]);
    }
    t.add_row([
        Cell::new("foreign"),
        Cell::new(d.foreign.count),
        Cell::new(output::size(d.foreign.bytes)),
        Cell::new("nothing: kvc never deletes foreign files on its own (kept apart)"),
    ]);
    align_right(&mut t, &[1, 2]);
    output::write_table(out, &t)?;
    if d.superseded_at_rest {
        writeln!(
            out,
            "note: superseded = ds4's test applied at rest, every longer stored checkpoint in the role of the one ds4 is saving (kvc's extension, FORMAT.md §8)"
        )?;
    }
    match &d.budget {
        Some(b) => {
            let from = match &b.source {
                BudgetSource::Given => "--budget".to_string(),
                BudgetSource::Log { day } => format!(
                    "the engine's log{}",
                    day.as_ref().map_or(String::new(), |d| format!(", {d}"))
                ),
            };
            writeln!(
                out,
                "budget: {} ({from}); the engine's budget counts {} = {:.1}%{}; kvc evict --budget would delete {}{}",
                output::size(b.budget),
                output::size(b.counted_bytes),
                b.usage * 100.0,
                if b.over_by > 0 {
                    format!(", over by {}", output::size(b.over_by))
                } else {
                    String::new()
                },
                tally(b.evict),
                if b.budget_met { "" } else { " and still not meet it (what it keeps exceeds it)" }
            )?;
        }
        None => writeln!(
            out,
            "budget: unknown (give --budget, or --log with the engine's log)"
        )?,
    }
    Ok(())
}

fn avg_ms(sum: f64, n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{:.0} ms", sum / n as f64)
    }
}

fn write_log(log: &LogStats, out: &mut dyn Write) -> io::Result<()> {
    let span = match (&log.first_day, &log.last_day) {
        (Some(a), Some(b)) => format!("; {a} to {b}"),
        _ => String::new(),
    };
    writeln!(
        out,
        "engine log: {} lines, {} kv-cache lines ({} unparsed, {} outside the window, {} undated){span}",
        log.lines, log.kv_lines, log.unparsed, log.outside_window, log.undated
    )?;
    let mut t = output::table(&[
        "DAY",
        "HITS",
        "LOAD AVG",
        "STORED",
        "WRITTEN",
        "EVICTED",
        "UNREAD",
        "SKIPPED",
        "FAILED",
        "DISCARDED",
    ]);
    let mut row = |name: &str, a: &enginelog::Activity| {
        let stored: u64 = a.stored.values().map(|s| s.count).sum();
        t.add_row([
            Cell::new(name),
            Cell::new(a.hits),
            Cell::new(avg_ms(a.hit_load_ms, a.hits)),
            Cell::new(stored),
            Cell::new(output::size(a.written_bytes)),
            Cell::new(format!(
                "{} ({})",
                a.evicted.count,
                output::size(a.evicted.bytes)
            )),
            Cell::new(format!(
                "{} ({})",
                a.evicted.unread.count,
                output::size(a.evicted.unread.bytes)
            )),
            Cell::new(a.skipped.values().sum::<u64>()),
            Cell::new(a.load_failed + a.store_failed),
            Cell::new(a.discarded_corrupt + a.discarded_prefill_failed),
        ]);
    };
    for (day, a) in &log.days {
        row(day, a);
    }
    row("total", &log.total);
    align_right(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    output::write_table(out, &t)?;
    let t = &log.total;
    if !t.stored.is_empty() {
        let parts: Vec<String> = t
            .stored
            .iter()
            .map(|(r, s)| {
                format!(
                    "{} {} ({}, {} = {}, save avg {})",
                    sanitize_line(r.as_bytes()),
                    s.count,
                    output::size(s.bytes),
                    "of writes",
                    pct(s.bytes, t.written_bytes),
                    avg_ms(s.save_ms, s.count)
                )
            })
            .collect();
        writeln!(out, "stores by reason: {}", parts.join("; "))?;
    }
    if !t.skipped.is_empty() {
        let parts: Vec<String> = t.skipped.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(out, "skipped: {}", parts.join(", "))?;
    }
    let by_hits: Vec<String> = t
        .evicted
        .by_hits
        .iter()
        .map(|(h, x)| format!("{h} hits {}", tally(*x)))
        .collect();
    writeln!(
        out,
        "evicted: {} with {} hits in all ({}); {} never read ({}): wasted writes",
        tally(Tally {
            count: t.evicted.count,
            bytes: t.evicted.bytes
        }),
        t.evicted.hits,
        if by_hits.is_empty() {
            "none".to_string()
        } else {
            by_hits.join(", ")
        },
        t.evicted.unread.count,
        output::size(t.evicted.unread.bytes)
    )?;
    let f = &log.followed;
    let unread: Vec<String> = f
        .evicted_unread
        .iter()
        .map(|(r, x)| format!("{} {}", sanitize_line(r.as_bytes()), tally(*x)))
        .collect();
    writeln!(
        out,
        "stored then evicted without a hit: {} (tied {} by key, {} by tokens and size; {} evictions of files stored before the window; {} stores not evicted)",
        if unread.is_empty() {
            "none".to_string()
        } else {
            unread.join(", ")
        },
        f.matched_by_key,
        f.matched_by_shape,
        f.unmatched_evictions,
        f.not_evicted
    )?;
    writeln!(
        out,
        "failures: {} failed loads, {} corrupt payloads discarded, {} prefill-failed discarded, {} failed stores, {} incompatible files replaced",
        t.load_failed,
        t.discarded_corrupt,
        t.discarded_prefill_failed,
        t.store_failed,
        t.replaced_incompatible
    )?;
    for s in &log.unparsed_samples {
        writeln!(out, "unparsed: {s}")?;
    }
    Ok(())
}

impl Report for StatsReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, d) in self.dirs.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            write_dir(d, out)?;
        }
        if self.dirs.len() > 1 {
            writeln!(
                out,
                "\ntotal: {} checkpoints, {} on disk, {} reclaimable",
                self.totals.checkpoints.count,
                output::size(self.totals.total_bytes),
                output::size(self.totals.reclaimable_bytes)
            )?;
        }
        if let Some(log) = &self.log {
            writeln!(out)?;
            write_log(log, out)?;
        }
        Ok(())
    }
}
