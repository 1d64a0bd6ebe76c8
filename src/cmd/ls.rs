//! `kvc ls`: what is cached, how big, how used, what goes next.

use crate::cli::{LsArgs, SortKey};
use crate::config;
use crate::output::{self, CheckpointView, ForeignView, InvalidView, Report};
use crate::Outcome;
use anyhow::Result;
use comfy_table::Cell;
use kvc::policy::{self, PolicyFrom, RankOptions};
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

#[derive(Serialize)]
struct DirView {
    dir: String,
    /// The engine whose rules apply, how it was decided, and whether the
    /// directory also holds another engine's files.
    engine: kvc::format::dialect::EngineChoice,
    policy: &'static str,
    /// `--policy`, or `engine` when it is the engine's own.
    policy_from: &'static str,
    now: u64,
    checkpoints: Vec<CheckpointView>,
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
    let mut scan: Scan = scan::scan_dir(&dir, opts)?;
    let keep = |name: &str| only.is_none_or(|o| o == name);
    let engine = scan.engine.engine;
    let (policy, policy_from) = PolicyFrom::resolve(args.policy.policy(), engine);
    let rank = RankOptions {
        policy,
        now,
        reject_different_quant: args.quant.reject_different_quant,
    };
    // The engine ranks what its budget counts (not what it never loads,
    // nor sysprompt.kv); eviction never picks agent saves.
    let standings = policy::standings(
        &rank,
        &scan.checkpoints,
        |c| c.is_counted(engine),
        |c| c.is_agent_save(),
    );
    let rows: Vec<CheckpointView> = scan
        .checkpoints
        .iter()
        .zip(&standings)
        .filter(|(c, _)| keep(&c.file))
        .map(|(c, s)| {
            if args.no_title {
                CheckpointView::without_title(c, s, now)
            } else {
                CheckpointView::new(c, s, now)
            }
        })
        .collect();
    let rows = sort_rows(rows, args.sort, args.reverse);
    if only.is_some() {
        scan.checkpoints.retain(|c| keep(&c.file));
        scan.invalid.retain(|i| keep(&i.file));
        scan.foreign.retain(|f| keep(&f.file));
        scan.temp_files.retain(|t| keep(&t.file));
        scan.strays.retain(|t| keep(&t.file));
    }
    let (count, bytes) = scan.never_loaded();
    Ok(DirView {
        dir: dir.display().to_string(),
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
        checkpoints: rows,
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
    })
}

/// Rows in `by` order. Sorts indices and moves each row once: a row is a
/// few hundred bytes, and a sort that moves rows around was a visible part
/// of listing a large directory.
fn sort_rows(rows: Vec<CheckpointView>, by: SortKey, reverse: bool) -> Vec<CheckpointView> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let r = &rows;
    match by {
        SortKey::Used => order.sort_by(|&a, &b| r[b].last_used.cmp(&r[a].last_used)),
        SortKey::Created => order.sort_by(|&a, &b| r[b].created.cmp(&r[a].created)),
        SortKey::Size => order.sort_by(|&a, &b| r[b].size.cmp(&r[a].size)),
        SortKey::Tokens => order.sort_by(|&a, &b| r[b].tokens.cmp(&r[a].tokens)),
        SortKey::Hits => order.sort_by(|&a, &b| r[b].hits.cmp(&r[a].hits)),
        // Eviction order; protected agent saves (no rank) last.
        SortKey::Score => order.sort_by_key(|&i| (r[i].evict_rank.is_none(), r[i].evict_rank)),
        SortKey::Key => order.sort_by(|&a, &b| r[a].key.cmp(&r[b].key)),
    }
    if reverse {
        order.reverse();
    }
    let mut slots: Vec<Option<CheckpointView>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("a permutation takes each row once"))
        .collect()
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
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, Some(name)))
}

pub fn run(args: LsArgs) -> Result<Outcome> {
    let mut given: Vec<PathBuf> = args.dirs.clone();
    given.extend(args.dir.iter().cloned());
    let targets = if given.is_empty() {
        vec![(config::default_dir()?, None)]
    } else {
        given.into_iter().map(target).collect::<Result<Vec<_>>>()?
    };
    let now = config::now_or_clock(args.policy.now)?;
    let views = targets
        .into_iter()
        .map(|(d, only)| dir_view(d, only.as_deref(), &args, now))
        .collect::<Result<Vec<_>>>()?;
    if args.quiet {
        let mut out = io::BufWriter::new(io::stdout().lock());
        for c in views.iter().flat_map(|d| &d.checkpoints) {
            writeln!(out, "{}", c.key)?;
        }
        out.flush()?;
        return Ok(Outcome::Clean);
    }
    let report = LsReport {
        checkpoint_bytes: views.iter().map(|d| d.checkpoint_bytes).sum(),
        total_bytes: views.iter().map(|d| d.total_bytes).sum(),
        dirs: views,
        long: args.long,
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
        let mut t = output::table(&header);
        for c in &d.checkpoints {
            let key = if self.long {
                c.key.clone()
            } else {
                output::short_key(&c.key)
            };
            let mut row = vec![
                Cell::new(key),
                Cell::new(&c.reason),
                Cell::new(c.tokens),
                Cell::new(c.ctx_size),
                Cell::new(c.quant_bits),
            ];
            if self.long {
                let model = match c.model {
                    Some(name) => format!("{} {name}", c.model_id),
                    None => c.model_id.to_string(),
                };
                row.extend([
                    Cell::new(c.dialect),
                    Cell::new(model),
                    Cell::new(c.payload_abi),
                ]);
            }
            row.extend([Cell::new(output::size(c.size)), Cell::new(c.hits)]);
            if self.long {
                row.extend([
                    Cell::new(output::timestamp(c.created)),
                    Cell::new(output::timestamp(c.last_used)),
                ]);
            } else {
                row.push(Cell::new(output::ago(c.last_used, d.now)));
            }
            row.extend([
                Cell::new(c.flag_letters()),
                Cell::new(output::score(c.score)),
                Cell::new(c.evict_rank.map_or("-".to_string(), |r| r.to_string())),
            ]);
            if self.titles {
                row.push(Cell::new(c.title.as_deref().unwrap_or("")));
            }
            t.add_row(row);
        }
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
        output::fit(&mut t, &shrink, &expendable, numeric);
        if !d.checkpoints.is_empty() {
            output::write_table(out, &t)?;
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
        let warned: Vec<&CheckpointView> = d
            .checkpoints
            .iter()
            .filter(|c| !c.warnings.is_empty())
            .collect();
        if !warned.is_empty() {
            extra.push(format!("{} with warnings", warned.len()));
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
        if d.checkpoints.iter().any(|c| c.superseded) {
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
        for c in &warned {
            for w in &c.warnings {
                writeln!(out, "warning: {}: {}", c.file, w.message)?;
            }
        }
        if !d.invalid.is_empty()
            || !warned.is_empty()
            || !d.temp_files.is_empty()
            || !d.strays.is_empty()
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
