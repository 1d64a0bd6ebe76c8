//! `kvc log [DIR]`: the journal of what kvc deleted, installed, moved or
//! rewrote, newest first, filtered by op, key and time. Damaged records (a
//! torn last append, a failed checksum) are skipped and counted, never
//! fatal.

use crate::cli::LogArgs;
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use comfy_table::Cell;
use kvc::session::journal::{self, Op, Record};
use kvc::text::sanitize_line;
use serde::Serialize;
use std::fs;
use std::io::{self, Write};

/// One record, every string sanitized: the journal is a file anyone with
/// access to the directory can write.
#[derive(Serialize)]
struct RecordView {
    time: u64,
    op: String,
    key: String,
    bytes: u64,
    tokens: u32,
    hits: u32,
    reason: String,
    score: Option<f64>,
    policy: Option<String>,
    why: String,
}

impl RecordView {
    fn new(r: &Record) -> RecordView {
        let s = |t: &str| sanitize_line(t.as_bytes());
        RecordView {
            time: r.time,
            op: s(&r.op),
            key: s(&r.key),
            bytes: r.bytes,
            tokens: r.tokens,
            hits: r.hits,
            reason: s(&r.reason),
            score: r.score,
            policy: r.policy.as_deref().map(s),
            why: s(&r.why),
        }
    }
}

/// Records and bytes of one op (`totals` in the JSON).
#[derive(Serialize, Default)]
struct Total {
    records: usize,
    bytes: u64,
}

#[derive(Serialize)]
struct LogReport {
    dir: String,
    /// Unix seconds of `--since`'s start, when given.
    since: Option<u64>,
    /// `--op`, `--key` and `--limit` as given.
    ops: Vec<String>,
    key: Option<String>,
    limit: Option<usize>,
    /// Records that pass the filters, before `--limit`.
    matched: usize,
    /// `newest-first` (the default) or `oldest-first` (`-r`).
    order: &'static str,
    records: Vec<RecordView>,
    /// Per op, by name: an import adds bytes, an eviction
    /// frees them; one total of both would mean nothing.
    totals: std::collections::BTreeMap<String, Total>,
    /// Bytes the listed records took out of the cache: `evict`, `rm`,
    /// `gc` and `quarantine` records only.
    freed_bytes: u64,
    /// Records skipped as torn or failing their checksum (whole journal).
    damaged: usize,
    /// Bytes at the start of a journal larger than kvc log reads (16 MiB)
    /// that were not read.
    skipped_bytes: u64,
    #[serde(skip)]
    long: bool,
    /// The clock (`--now`), for the ages of the table.
    #[serde(skip)]
    now: u64,
}

/// A key cut to the listing width unless `--long`; file names (gc) stay whole.
fn short_key(key: &str, long: bool) -> String {
    if long {
        key.to_string()
    } else {
        output::short_key(key)
    }
}

impl Report for LogReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        if !self.records.is_empty() {
            let mut t = output::table(&[
                "TIME", "OP", "KEY", "SIZE", "TOKENS", "HITS", "REASON", "SCORE", "POLICY", "WHY",
            ]);
            for r in &self.records {
                t.add_row([
                    Cell::new(if self.long {
                        output::timestamp(r.time)
                    } else {
                        output::ago(r.time, self.now)
                    }),
                    Cell::new(&r.op),
                    Cell::new(short_key(&r.key, self.long)),
                    Cell::new(output::size(r.bytes)),
                    Cell::new(r.tokens),
                    Cell::new(r.hits),
                    Cell::new(if r.reason.is_empty() { "-" } else { &r.reason }),
                    Cell::new(output::score(r.score)),
                    Cell::new(r.policy.as_deref().unwrap_or("-")),
                    Cell::new(&r.why),
                ]);
            }
            align_right(&mut t, &[3, 4, 5]);
            output::write_table(out, &t)?;
        }
        let n = self.records.len();
        write!(out, "{n} {}", if n == 1 { "record" } else { "records" },)?;
        if n < self.matched {
            write!(out, " (the newest of {} matching)", self.matched)?;
        }
        write!(out, ", {} freed", output::size(self.freed_bytes))?;
        let parts: Vec<String> = self
            .totals
            .iter()
            .map(|(op, t)| format!("{} {op} ({})", t.records, output::size(t.bytes)))
            .collect();
        if !parts.is_empty() {
            write!(out, ": {}", parts.join(", "))?;
        }
        if self.skipped_bytes > 0 {
            write!(
                out,
                "; the oldest {} of the journal not read (kvc log reads its newest 16 MiB)",
                output::size(self.skipped_bytes)
            )?;
        }
        if self.damaged > 0 {
            write!(
                out,
                "; {} damaged {} skipped (torn or failing the checksum)",
                self.damaged,
                if self.damaged == 1 {
                    "record"
                } else {
                    "records"
                }
            )?;
        }
        writeln!(out)
    }
}

pub fn run(args: LogArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.get())?;
    let meta = fs::metadata(&dir).with_context(|| dir.display().to_string())?;
    if !meta.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    // A regular file only, never through a link, its newest 16 MiB.
    let read = journal::read(&dir)?;
    let since = match &args.since {
        Some(w) => {
            let now = config::now_or_clock(args.clock.now)?;
            let t = kvc::enginelog::parse_bound(w, now, false)
                .map_err(|e| anyhow::anyhow!("--since {e}"))?;
            Some(u64::try_from(t).unwrap_or(0))
        }
        None => None,
    };
    let key = args.key.as_deref().map(str::to_ascii_lowercase);
    let wanted = |r: &Record| {
        since.is_none_or(|s| r.time >= s)
            && (args.op.is_empty() || args.op.contains(&r.op))
            && key
                .as_deref()
                .is_none_or(|k| r.key.to_ascii_lowercase().starts_with(k))
    };
    // Numbered in append order, so that equal times keep it.
    let mut records: Vec<(usize, &Record)> = read
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| wanted(r))
        .collect();
    // Appends are in time order unless the clock stepped back: newest
    // first by time, then the later append first.
    records.sort_by_key(|&(i, r)| std::cmp::Reverse((r.time, i)));
    let matched = records.len();
    if let Some(n) = args.limit {
        records.truncate(n);
    }
    if args.reverse {
        records.reverse();
    }
    let records: Vec<&Record> = records.into_iter().map(|(_, r)| r).collect();
    let mut totals: std::collections::BTreeMap<String, Total> = Default::default();
    let mut freed_bytes = 0;
    for r in &records {
        let t = totals.entry(sanitize_line(r.op.as_bytes())).or_default();
        t.records += 1;
        t.bytes += r.bytes;
        if Op::from_name(&r.op).is_some_and(Op::frees) {
            freed_bytes += r.bytes;
        }
    }
    let report = LogReport {
        dir: dir.display().to_string(),
        since,
        ops: args.op.clone(),
        key: args.key.as_deref().map(|k| sanitize_line(k.as_bytes())),
        limit: args.limit,
        matched,
        order: if args.reverse {
            "oldest-first"
        } else {
            "newest-first"
        },
        records: records.into_iter().map(RecordView::new).collect(),
        totals,
        freed_bytes,
        damaged: read.damaged,
        skipped_bytes: read.skipped_bytes,
        long: args.long,
        now: config::now_or_clock(args.clock.now)?,
    };
    output::emit(&report, args.output.json)?;
    Ok(Outcome::Clean)
}
