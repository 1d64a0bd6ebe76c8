//! `kvc report`: one self-contained HTML file (`kvc::report`), written
//! atomically.

use crate::cli::ReportArgs;
use crate::cmd::stats::{budget_for, read_logs};
use crate::config;
use crate::Outcome;
use anyhow::{Context, Result};
use kvc::policy::PolicyFrom;
use kvc::report::{self, ReportInput};
use kvc::scan::{self, ScanOptions};
use kvc::stats::{self, StatsOptions};
use kvc::tree;
use std::io::Write;
use std::path::PathBuf;

pub fn run(args: ReportArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.get())?;
    let now = config::now_or_clock(args.policy.now)?;
    let log = read_logs(&args.log, now)?;
    let opts = StatsOptions {
        engine: args.policy.engine.engine(),
        policy: args.policy.policy(),
        now,
        budget: budget_for(&dir, args.budget, log.as_ref()),
        temp_age: args.temp_age.temp_age,
        reject_different_quant: args.quant.reject_different_quant,
    };
    let scan = scan::scan_dir(
        &dir,
        ScanOptions {
            read_text: false,
            engine: opts.engine,
        },
    )?;
    let policy = PolicyFrom::resolve(opts.policy, scan.engine.engine);
    let standings = stats::standings(&scan, policy.0, now, opts.reject_different_quant);
    let dir_stats = stats::of_scan(&scan, &standings, policy, &opts)?;
    let forest = tree::forest(&scan, &standings, true);
    let html = report::render(&ReportInput {
        scan: &scan,
        stats: &dir_stats,
        standings: &standings,
        forest: &forest,
        log: log.as_ref(),
        version: env!("CARGO_PKG_VERSION"),
    });
    write_atomically(&args.out_file, html.as_bytes())?;
    Ok(Outcome::Clean)
}

/// Temp file beside it, fsync, rename, fsync the directory: a reader (a
/// browser reloading, a web server) sees the old report or the new one.
/// Mode 0600: the titles are prompt text.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ctx = || path.display().to_string();
    let mut f = kvc::fsutil::AtomicFile::create(&dir, name).with_context(ctx)?;
    f.write_all(bytes).with_context(ctx)?;
    f.commit().with_context(ctx)?;
    Ok(())
}
