//! `kvc ls`: what is cached, how big, how used, what goes next.

use crate::cli::{LsArgs, SortKey};
use crate::config;
use crate::output::{self, CheckpointRow, ForeignView, InvalidView, Report};
use crate::Outcome;
use anyhow::Result;
use kvc::policy::{PolicyFrom, RankOptions, Standing};
use kvc::scan::{self, Scan, ScanOptions};
use kvc::sys::pid_alive;
use kvc::text::sanitize_line;
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

#[derive(Serialize)]
struct TempView {
    file: String,
    /// `null` for a name without one (ds4-agent's mkstemp names).
    pid: Option<u32>,
    /// `false` when `pid` may be a ds4-agent mkstemp suffix of six digits.
    pid_certain: bool,
    writer: scan::TempWriter,
    /// The pid in the name is running (`ls` does not look for processes
    /// holding the file open; `kvc gc --dry-run` does).
    writer_alive: bool,
    size: u64,
    modified: Option<u64>,
}

#[derive(Serialize)]
struct StrayView {
    file: String,
    size: u64,
    is_dir: bool,
    /// A known other store's file (`D16`, `D17`), else null.
    known: Option<&'static str>,
}

/// Checkpoints the directory's engine never loads, counts or evicts.
#[derive(Serialize)]
struct NeverLoaded {
    count: usize,
    bytes: u64,
}

/// One directory's listing. Its rows are not held as views: each is built
/// from the scan when it is written (JSON or table) and dropped, so memory
/// is the scan's records, not the output's size.
struct DirView {
    dir: String,
    /// The engine whose rules apply, how it was decided, and whether the
    /// directory also holds another engine's files.
    engine: kvc::format::dialect::EngineChoice,
    policy: &'static str,
    /// `--policy`, or `engine` when it is the engine's own.
    policy_from: &'static str,
    now: u64,
    titles: bool,
    /// The listed checkpoints and their standings, index-aligned.
    checkpoints: Vec<kvc::Checkpoint>,
    standings: Vec<Standing>,
    /// Display order: indices into `checkpoints`.
    order: Vec<usize>,
    /// (file, warnings) of the checkpoints with header warnings.
    warned: Vec<(String, Vec<kvc::finding::Finding>)>,
    any_superseded: bool,
    temp_files: Vec<TempView>,
    invalid: Vec<InvalidView>,
    foreign: Vec<ForeignView>,
    strays: Vec<StrayView>,
    /// Bytes of the readable checkpoints.
    checkpoint_bytes: u64,
    /// Bytes of the checkpoints the engine loads and counts.
    loadable_bytes: u64,
    never_loaded: NeverLoaded,
    /// Bytes of foreign files and their companions.
    foreign_bytes: u64,
    /// Bytes of every entry listed.
    total_bytes: u64,
}

impl DirView {
    /// The `i`-th listed row: its record and standing, for JSON and table.
    fn row(&self, i: usize) -> CheckpointRow<'_> {
        let j = self.order[i];
        CheckpointRow {
            checkpoint: &self.checkpoints[j],
            standing: &self.standings[j],
            now: self.now,
            title: self.titles,
        }
    }
}

/// `checkpoints` of a [`DirView`] as a JSON array written row by row.
struct Rows<'a>(&'a DirView);

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.order.len()))?;
        for i in 0..self.0.order.len() {
            seq.serialize_element(&self.0.row(i))?;
        }
        seq.end()
    }
}

impl Serialize for DirView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("DirView", 15)?;
        st.serialize_field("dir", &self.dir)?;
        st.serialize_field("engine", &self.engine)?;
        st.serialize_field("policy", self.policy)?;
        st.serialize_field("policy_from", self.policy_from)?;
        st.serialize_field("now", &self.now)?;
        st.serialize_field("checkpoints", &Rows(self))?;
        st.serialize_field("temp_files", &self.temp_files)?;
        st.serialize_field("invalid", &self.invalid)?;
        st.serialize_field("foreign", &self.foreign)?;
        st.serialize_field("strays", &self.strays)?;
        st.serialize_field("checkpoint_bytes", &self.checkpoint_bytes)?;
        st.serialize_field("loadable_bytes", &self.loadable_bytes)?;
        st.serialize_field("never_loaded", &self.never_loaded)?;
        st.serialize_field("foreign_bytes", &self.foreign_bytes)?;
        st.serialize_field("total_bytes", &self.total_bytes)?;
        st.end()
    }
}

#[derive(Serialize)]
struct LsReport {
    dirs: Vec<DirView>,
    checkpoint_bytes: u64,
    total_bytes: u64,
    #[serde(skip)]
    long: bool,
    #[serde(skip)]
    titles: bool,
}

/// Scan a directory and rank its checkpoints as `kvc evict` would; with
/// `only`, keep just that file's entry (the directory still decides the
/// engine and the ranks).
fn dir_view(dir: PathBuf, only: Option<&str>, args: &LsArgs, now: u64) -> Result<DirView> {
    let opts = ScanOptions {
        read_text: !args.no_title,
        engine: args.policy.engine.engine(),
    };
    let scan: Scan = scan::scan_dir(&dir, opts)?;
    Ok(view_of(dir.display().to_string(), scan, only, args, now))
}

/// The listing of a scan, shown as `dir` (a path, or a remote's namespace).
fn view_of(dir: String, mut scan: Scan, only: Option<&str>, args: &LsArgs, now: u64) -> DirView {
    let keep = |name: &str| only.is_none_or(|o| o == name);
    let keep_cp = |c: &kvc::Checkpoint| only.is_none_or(|o| c.is_named(o));
    let engine = scan.engine.engine;
    let (policy, policy_from) = PolicyFrom::resolve(args.policy.policy(), engine);
    let rank = RankOptions {
        policy,
        now,
        reject_different_quant: args.quant.reject_different_quant,
    };
    let mut standings = scan.standings(&rank);
    if only.is_some() {
        let mut k = 0;
        standings.retain(|_| {
            k += 1;
            keep_cp(&scan.checkpoints[k - 1])
        });
        scan.checkpoints.retain(keep_cp);
        scan.invalid.retain(|i| keep(&i.file));
        scan.foreign.retain(|f| keep(&f.file));
        scan.temp_files.retain(|t| keep(&t.file));
        scan.strays.retain(|t| keep(&t.file));
    }
    let order = sort_order(
        &scan.checkpoints,
        &standings,
        args.rows.sort,
        args.rows.reverse,
    );
    let warned = scan
        .checkpoints
        .iter()
        .filter_map(|c| {
            let mut w = kvc::finding::header_warnings(&c.header, c.dialect.spec(), now);
            if let Some(actual) = &c.content_key {
                let d = kvc::Defect::KeyMismatch {
                    actual: actual.to_string(),
                };
                w.insert(0, kvc::finding::Finding::error(d.code(), d.to_string()));
            }
            (!w.is_empty()).then(|| (c.file().into_owned(), w))
        })
        .collect();
    let any_superseded = standings.iter().any(|s| s.superseded);
    let (count, bytes) = scan.never_loaded();
    DirView {
        dir,
        engine: scan.engine.clone(),
        policy: policy.name(),
        policy_from: policy_from.name(),
        now,
        checkpoint_bytes: scan.checkpoint_bytes(),
        loadable_bytes: scan.loadable_bytes(),
        never_loaded: NeverLoaded { count, bytes },
        foreign_bytes: scan.foreign_bytes(),
        foreign: scan.foreign.iter().map(ForeignView::from).collect(),
        total_bytes: scan.total_bytes(),
        titles: !args.no_title,
        order,
        warned,
        any_superseded,
        standings,
        temp_files: scan
            .temp_files
            .iter()
            .map(|t| TempView {
                file: sanitize_line(t.file.as_bytes()),
                pid: t.kind.pid,
                pid_certain: t.kind.pid_certain,
                writer: t.kind.writer,
                writer_alive: t.kind.pid.is_some_and(pid_alive),
                size: t.size,
                modified: t
                    .modified
                    .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            })
            .collect(),
        invalid: scan.invalid.iter().map(InvalidView::from).collect(),
        strays: scan
            .strays
            .iter()
            .map(|s| StrayView {
                file: sanitize_line(s.file.as_bytes()),
                size: s.size,
                is_dir: s.is_dir,
                known: s.known.map(|d| d.as_str()),
            })
            .collect(),
        checkpoints: scan.checkpoints,
    }
}

/// The display order of `cps`: indices sorted by `by`, stable, so equal
/// keys keep the scan's (name) order.
fn sort_order(cps: &[kvc::Checkpoint], st: &[Standing], by: SortKey, reverse: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cps.len()).collect();
    let h = |i: usize| &cps[i].header;
    match by {
        SortKey::Used => order.sort_by_key(|&i| std::cmp::Reverse(h(i).last_used)),
        SortKey::Created => order.sort_by_key(|&i| std::cmp::Reverse(h(i).created)),
        SortKey::Size => order.sort_by_key(|&i| std::cmp::Reverse(cps[i].size)),
        SortKey::Tokens => order.sort_by_key(|&i| std::cmp::Reverse(h(i).tokens)),
        SortKey::Hits => order.sort_by_key(|&i| std::cmp::Reverse(h(i).hits)),
        // Eviction order; protected agent saves (no rank) last.
        SortKey::Score => order.sort_by_key(|&i| (st[i].rank.is_none(), st[i].rank)),
        SortKey::Key => order.sort_by(|&a, &b| cps[a].key.cmp(&cps[b].key)),
    }
    if reverse {
        order.reverse();
    }
    order
}

/// What one `ls` argument names: a directory, or one file in its
/// directory (`kvc ls some.kv` lists that file, ranked among its
/// neighbours).
fn target(p: PathBuf) -> Result<(PathBuf, Option<String>)> {
    let meta = std::fs::symlink_metadata(&p).map_err(|e| kvc::Error::io(&p, e))?;
    if meta.is_dir() {
        return Ok((p, None));
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("{}: not a directory or a file", p.display()))?;
    let dir = kvc::session::parent_dir(&p).to_path_buf();
    Ok((dir, Some(name)))
}

pub fn run(args: LsArgs) -> Result<Outcome> {
    let views = views(&args)?;
    emit(views, &args)
}

/// The listing of every directory (or file) the arguments name.
fn views(args: &LsArgs) -> Result<Vec<DirView>> {
    let mut given: Vec<PathBuf> = args.dirs.clone();
    given.extend(args.dir.iter().cloned());
    let targets = if given.is_empty() {
        vec![(config::default_dir()?, None)]
    } else {
        given.into_iter().map(target).collect::<Result<Vec<_>>>()?
    };
    let now = config::now_or_clock(args.policy.now)?;
    targets
        .into_iter()
        .map(|(d, only)| dir_view(d, only.as_deref(), args, now))
        .collect()
}

/// `kvc remote ls`: scans made from a remote's records (one per namespace,
/// shown as its URL), listed with `kvc ls`'s columns and JSON.
pub(crate) fn run_scans(scans: Vec<(String, Scan)>, args: &LsArgs) -> Result<Outcome> {
    let now = config::now_or_clock(args.policy.now)?;
    let views = scans
        .into_iter()
        .map(|(shown, scan)| view_of(shown, scan, None, args, now))
        .collect();
    emit(views, args)
}

fn emit(views: Vec<DirView>, args: &LsArgs) -> Result<Outcome> {
    if args.quiet {
        let mut out = io::BufWriter::new(io::stdout().lock());
        for d in &views {
            for &j in &d.order {
                writeln!(out, "{}", d.checkpoints[j].key)?;
            }
        }
        out.flush()?;
        return Ok(Outcome::Clean);
    }
    let report = LsReport {
        checkpoint_bytes: views.iter().map(|d| d.checkpoint_bytes).sum(),
        total_bytes: views.iter().map(|d| d.total_bytes).sum(),
        dirs: views,
        long: args.rows.long,
        titles: !args.no_title,
    };
    output::emit(&report, args.output.json)?;
    Ok(Outcome::Clean)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl LsReport {
    fn write_dir(&self, d: &DirView, out: &mut dyn Write) -> io::Result<()> {
        let mut header = vec!["KEY", "REASON", "TOKENS", "CTX", "Q"];
        if self.long {
            header.extend(["DIALECT", "MODEL", "ABI"]);
        }
        header.extend(["SIZE", "HITS"]);
        if self.long {
            header.extend(["CREATED", "LAST USED"]);
        } else {
            header.push("USED");
        }
        header.extend(["FLAGS", "SCORE", "RANK"]);
        if self.titles {
            header.push("TITLE");
        }
        let long = self.long;
        let titles = self.titles;
        // Cells straight from the record (the row is built twice, to
        // measure and to write: no view with every JSON field each time).
        let row = |i: usize| -> Vec<String> {
            let r = d.row(i);
            let (c, s) = (r.checkpoint, r.standing);
            let h = &c.header;
            let mut row = Vec::with_capacity(16);
            row.extend([
                if long {
                    c.key.to_string()
                } else {
                    c.key.short().to_string()
                },
                h.reason.name().into_owned(),
                h.tokens.to_string(),
                h.ctx_size.to_string(),
                h.quant_bits.to_string(),
            ]);
            if long {
                let model = match r.model() {
                    Some(name) => format!("{} {name}", h.model_id),
                    None => h.model_id.to_string(),
                };
                row.extend([
                    c.dialect.as_str().to_string(),
                    model,
                    h.payload_abi.to_string(),
                ]);
            }
            row.extend([output::size(c.size), h.hits.to_string()]);
            if long {
                row.extend([output::timestamp(h.created), output::timestamp(h.last_used)]);
            } else {
                row.push(output::ago(h.last_used, d.now));
            }
            row.extend([
                r.flag_letters(),
                output::score(s.score),
                s.rank.map_or("-".to_string(), |r| r.to_string()),
            ]);
            if titles {
                row.push(r.title().unwrap_or_default());
            }
            row
        };
        let numeric: &[usize] = if self.long {
            &[2, 3, 4, 7, 8, 9, 13, 14]
        } else {
            &[2, 3, 4, 5, 6, 9, 10]
        };
        // On a narrow screen titles give way first, then the columns a
        // glance needs least: ctx, quant, hits, model, ABI, flags.
        let col = |name: &str| header.iter().position(|h| *h == name);
        let expendable: Vec<usize> = ["CTX", "Q", "ABI", "MODEL", "HITS", "FLAGS", "CREATED"]
            .iter()
            .filter_map(|n| col(n))
            .collect();
        let shrink: Vec<usize> = col("TITLE").into_iter().collect();
        if !d.order.is_empty() {
            output::write_rows(
                out,
                &header,
                d.order.len(),
                &row,
                &shrink,
                &expendable,
                numeric,
            )?;
        }
        write!(
            out,
            "{}, {}",
            plural(d.checkpoints.len(), "checkpoint", "checkpoints"),
            output::size(d.checkpoint_bytes)
        )?;
        let mut extra = Vec::new();
        if !d.temp_files.is_empty() {
            let live = d.temp_files.iter().filter(|t| t.writer_alive).count();
            extra.push(format!(
                "{} ({live} being written)",
                plural(d.temp_files.len(), "temp file", "temp files")
            ));
        }
        if !d.strays.is_empty() {
            extra.push(plural(d.strays.len(), "stray file", "stray files"));
        }
        if !d.invalid.is_empty() {
            extra.push(format!("{} invalid", d.invalid.len()));
        }
        if !d.foreign.is_empty() {
            extra.push(format!(
                "{} foreign ({})",
                d.foreign.len(),
                output::size(d.foreign_bytes)
            ));
        }
        let warned = &d.warned;
        let with = |s: kvc::code::Severity| {
            warned
                .iter()
                .filter(|(_, w)| w.iter().any(|f| f.severity == s))
                .count()
        };
        let errors = with(kvc::code::Severity::Error);
        if errors > 0 {
            extra.push(format!("{errors} with errors"));
        }
        let warnings = with(kvc::code::Severity::Warning);
        if warnings > 0 {
            extra.push(format!("{warnings} with warnings"));
        }
        if !extra.is_empty() {
            write!(out, "; {}", extra.join(", "))?;
        }
        writeln!(out)?;
        let engine = &d.engine;
        if !d.checkpoints.is_empty() || !d.foreign.is_empty() {
            let policy = if d.policy_from == "engine" {
                format!("policy {} (the engine's)", d.policy)
            } else {
                format!("policy {} (--policy)", d.policy)
            };
            writeln!(out, "engine: {}; {policy}", engine.describe())?;
        }
        if engine.mixed {
            writeln!(
                out,
                "warning: files of both ds4 and hanzo-engine in one directory: hanzo-engine zeroes bytes 7 and 20-23 of a ds4 file it loads (making it invisible to mainline); pass --engine to say which engine reads it"
            )?;
        }
        if d.never_loaded.count > 0 {
            writeln!(
                out,
                "never loaded: {}, {} that {} never loads, counts or evicts (flag x); kvc evict keeps them unless --include-unloadable",
                plural(d.never_loaded.count, "checkpoint", "checkpoints"),
                output::size(d.never_loaded.bytes),
                engine.engine.describe_short(),
            )?;
        }
        if d.any_superseded {
            writeln!(
                out,
                "note: s = a continued waypoint whose text a longer stored checkpoint extends; ds4 applies this only against the checkpoint it is saving, so ranking a directory at rest this way is kvc's extension (FORMAT.md §8)"
            )?;
        }
        for i in &d.invalid {
            writeln!(out, "invalid: {}: {}", i.file, i.error)?;
        }
        for f in &d.foreign {
            writeln!(out, "foreign: {}: {} (left alone)", f.file, f.what)?;
        }
        for (file, findings) in warned {
            for w in findings {
                let tag = output::paint(w.severity, &format!("{}:", w.severity));
                writeln!(out, "{tag} {file}: {}", w.message)?;
            }
        }
        // A remote's namespace (`kvc remote ls`) is not for `kvc verify`.
        let local = !d.dir.starts_with("s3://");
        if local
            && (!d.invalid.is_empty()
                || !warned.is_empty()
                || !d.temp_files.is_empty()
                || !d.strays.is_empty())
        {
            writeln!(out, "hint: run `kvc verify {}` for a full check", d.dir)?;
        }
        Ok(())
    }
}

impl Report for LsReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let many = self.dirs.len() > 1;
        for (i, d) in self.dirs.iter().enumerate() {
            if many {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{}:", d.dir)?;
            }
            self.write_dir(d, out)?;
        }
        if many {
            writeln!(
                out,
                "\ntotal: {} in checkpoints, {} in all",
                output::size(self.checkpoint_bytes),
                output::size(self.total_bytes)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The JSON `kvc ls` writes (through `output::Pretty`) is what
    /// serde_json's own pretty printer writes, byte for byte, on every
    /// fixture: titles or not, several directories, a file alone, every
    /// sort.
    #[test]
    fn the_listing_json_is_serde_jsons_pretty_output() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut dirs: Vec<String> = std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .map(|p| p.display().to_string())
            .collect();
        dirs.sort();
        let mut cases: Vec<Vec<String>> = Vec::new();
        for d in &dirs {
            for extra in [
                &[][..],
                &["--no-title"],
                &["--sort", "size", "-r"],
                &["--policy", "lru"],
            ] {
                let mut a = vec![d.clone()];
                a.extend(extra.iter().map(|s| s.to_string()));
                cases.push(a);
            }
        }
        cases.push(dirs.clone());
        let one = std::fs::read_dir(&dirs[0])
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "kv"))
            .unwrap();
        cases.push(vec![one.display().to_string()]);
        for case in cases {
            let mut argv = vec!["kvc", "ls", "--json", "--now", "1763710000"];
            argv.extend(case.iter().map(String::as_str));
            let crate::cli::Command::Ls(args) = crate::cli::Cli::parse_from(&argv).command else {
                panic!("not ls");
            };
            let report = LsReport {
                dirs: views(&args).unwrap(),
                checkpoint_bytes: 0,
                total_bytes: 0,
                long: false,
                titles: !args.no_title,
            };
            let mut written = Vec::new();
            report.write_json(&mut written).unwrap();
            let mut by_serde_json = Vec::new();
            serde_json::to_writer_pretty(&mut by_serde_json, &report).unwrap();
            by_serde_json.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&by_serde_json),
                "{argv:?}: serde_json's own pretty printer"
            );
        }
    }
}
