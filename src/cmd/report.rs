//! `kvc report`: one self-contained HTML file (`kvc::report`), written
//! atomically.

use crate::cli::ReportArgs;
use crate::cmd::stats::{budget_for, read_logs};
use crate::config;
use crate::Outcome;
use anyhow::Result;
use kvc::policy::PolicyFrom;
use kvc::report::{self, ReportInput};
use kvc::scan::{self, ScanOptions};
use kvc::stats::{self, StatsOptions};
use kvc::tree;

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
    let scan = scan::scan_dir(&dir, ScanOptions::headers(opts.engine))?;
    let policy = PolicyFrom::resolve(opts.policy, scan.engine.engine);
    let standings = scan.standings(&kvc::policy::RankOptions {
        policy: policy.0,
        now,
        reject_different_quant: opts.reject_different_quant,
    });
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

/// Written atomically (a browser reloading, a web server serving it sees
/// the old report or the new one), mode 0600: the titles are prompt text.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    kvc::fsutil::replace_file(path, bytes, 0o600).map_err(|e| kvc::Error::io(path, e))?;
    Ok(())
}
