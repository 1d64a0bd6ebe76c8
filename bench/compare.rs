//! `cargo bench --bench compare -- [--quick | --scale F] [--runs N]
//! [--json FILE] [--filter NAME] [--kvc PATH]`
//!
//! Builds synthetic cache directories (bench/fixture.rs, bytes from
//! FORMAT.md), then for every case in bench/cases.rs runs kvc and each
//! reference command on the same data, warm cache (one untimed warm-up
//! run each), interleaving their timed runs so drift in machine load hits
//! both sides alike. Prints median wall time, the kvc/reference ratio and
//! each side's peak RSS as a table, and writes the same as JSON.

mod cases;
mod fixture;
mod remote;
mod runner;

use cases::{Case, Cmd, S3Root};
use clap::Parser;
use comfy_table::{presets, CellAlignment, Table};
use fixture::{DataSpec, Dataset, Payload};
use runner::{median, Sample};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `--quick`: a tenth of the data and three runs: a smoke test of the
/// whole pipeline in seconds, not a measurement to quote.
const QUICK_SCALE: f64 = 0.1;
const QUICK_RUNS: usize = 3;
const DEFAULT_RUNS: usize = 10;

#[derive(Debug, Parser)]
#[command(
    name = "compare",
    about = "kvc against reference tools on synthetic cache directories"
)]
struct Args {
    /// Shrink every dataset to a tenth and run each command 3 times
    #[arg(long)]
    quick: bool,
    /// Multiply dataset sizes (checkpoint counts, or big payloads) by F
    #[arg(long, value_name = "F")]
    scale: Option<f64>,
    /// Timed runs per command (after one warm-up run)
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Write the results as JSON here [default: bench/out/results.json]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only cases whose name contains this (repeatable)
    #[arg(long, value_name = "NAME")]
    filter: Vec<String>,
    /// The kvc binary to measure [default: the one cargo bench just built]
    #[arg(long, value_name = "PATH")]
    kvc: Option<PathBuf>,
    /// Where datasets, compiled references and scratch space go
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also run each case's kvc command with this binary, as one more
    /// reference interleaved with the others ("kvc baseline"): before and
    /// after in one run, under the same machine load
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Report peak RSS above a case's bound instead of failing the case
    /// (to measure a binary that is known to exceed it, e.g. --kvc old)
    #[arg(long)]
    no_bounds: bool,
    /// Text bytes per turn in every dataset (default per dataset)
    #[arg(long, value_name = "BYTES")]
    text_bytes: Option<usize>,
    /// Make every payload opaque, of this many bytes
    #[arg(long, value_name = "BYTES")]
    payload_bytes: Option<u64>,
    /// List the cases and exit
    #[arg(long)]
    list: bool,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Serialize)]
struct Stats {
    command: String,
    median_s: f64,
    min_s: f64,
    max_s: f64,
    samples_s: Vec<f64>,
    /// Median user + system CPU time.
    cpu_median_s: f64,
    /// Largest peak RSS over the runs, KiB.
    peak_rss_kib: u64,
}

impl Stats {
    fn of(command: String, samples: &[Sample]) -> Stats {
        let walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
        Stats {
            command,
            median_s: median(&walls).as_secs_f64(),
            min_s: walls
                .iter()
                .min()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
            max_s: walls
                .iter()
                .max()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
            samples_s: walls.iter().map(|d| d.as_secs_f64()).collect(),
            cpu_median_s: median(&samples.iter().map(|s| s.cpu).collect::<Vec<_>>()).as_secs_f64(),
            peak_rss_kib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
        }
    }
}

#[derive(Serialize)]
struct RefResult {
    name: String,
    /// Why it did not run (missing tool, compile error, failure).
    skipped: Option<String>,
    stats: Option<Stats>,
    /// kvc median / reference median.
    ratio: Option<f64>,
}

#[derive(Serialize)]
struct DataInfo {
    name: String,
    dir: String,
    files: usize,
    bytes: u64,
    spec: DataSpec,
}

#[derive(Serialize)]
struct CaseResult {
    name: String,
    about: String,
    data: DataInfo,
    runs: usize,
    /// Why kvc's side did not run; the references then did not either.
    error: Option<String>,
    kvc: Option<Stats>,
    references: Vec<RefResult>,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    logical_cpus: usize,
    memory_kib: Option<u64>,
    kernel: String,
}

#[derive(Serialize)]
struct Report {
    machine: Machine,
    kvc: String,
    kvc_version: String,
    scale: f64,
    runs: usize,
    /// Peak RSS of `true`, the measuring floor: what any process costs.
    spawn_rss_kib: Option<u64>,
    cases: Vec<CaseResult>,
}

fn read_proc(path: &str, key: &str) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn machine() -> Machine {
    Machine {
        cpu: read_proc("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_kib: read_proc("/proc/meminfo", "MemTotal")
            .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// `'…'` for sh, with embedded single quotes closed and escaped.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Values for the placeholders of bench/cases.rs.
struct Ctx {
    kvc: PathBuf,
    dir: PathBuf,
    texts: Option<PathBuf>,
    prompt: Option<PathBuf>,
    scratch: PathBuf,
    work: PathBuf,
    /// The dataset's bytes, for `{bytes:P%}`.
    data_bytes: u64,
    bench_src: PathBuf,
    bin_dir: PathBuf,
    /// This executable (`{bench}`).
    bench_exe: PathBuf,
    /// `--no-bounds` not given: a run above the case's RSS bound fails it.
    enforce_bounds: bool,
}

/// Replace every `{bytes:P%}` in `s` with P percent of `total`, as `<n>B`
/// (kvc's sizes refuse a bare number).
fn subst_bytes(s: &str, total: u64) -> String {
    const OPEN: &str = "{bytes:";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let Some(j) = after.find("%}") else { break };
        let Ok(pct) = after[..j].parse::<f64>() else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(&format!("{}B", (total as f64 * pct / 100.0) as u64));
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

impl Ctx {
    fn subst(&self, s: &str, quote: bool) -> String {
        let q = |p: &Path| {
            let s = p.display().to_string();
            if quote {
                sh_quote(&s)
            } else {
                s
            }
        };
        let texts = self
            .texts
            .as_deref()
            .unwrap_or(Path::new("/nonexistent-texts-dir"));
        let s = s
            .replace("{kvc}", &q(&self.kvc))
            .replace("{dir}", &q(&self.dir))
            .replace("{texts}", &q(texts))
            .replace(
                "{prompt}",
                &q(self
                    .prompt
                    .as_deref()
                    .unwrap_or(Path::new("/nonexistent-prompt"))),
            )
            .replace("{bench}", &q(&self.bench_exe))
            .replace("{scratch}", &q(&self.scratch))
            .replace("{work}", &q(&self.work));
        subst_bytes(&s, self.data_bytes)
    }

    /// The argv to run, or why it cannot run here.
    fn resolve(&self, cmd: &Cmd) -> Result<(Vec<OsString>, String), String> {
        let uses = |s: &str| s.contains("{texts}") && self.texts.is_none();
        let no_prompt = |s: &str| s.contains("{prompt}") && self.prompt.is_none();
        let script = match cmd {
            Cmd::Argv(a) => a.join(" "),
            Cmd::Shell(s) => s.clone(),
            Cmd::C { args, .. } => args.join(" "),
        };
        if no_prompt(&script) {
            return Err("dataset has no prompt (use .with_prompt(bytes))".into());
        }
        let argv: Vec<String> = match cmd {
            Cmd::Argv(a) => {
                if a.iter().any(|s| uses(s)) {
                    return Err("dataset has no texts directory (use .with_texts())".into());
                }
                let a: Vec<String> = a.iter().map(|s| self.subst(s, false)).collect();
                if runner::which(&a[0]).is_none() {
                    return Err(format!("`{}` not found", a[0]));
                }
                a
            }
            Cmd::Shell(script) => {
                if uses(script) {
                    return Err("dataset has no texts directory (use .with_texts())".into());
                }
                vec!["sh".into(), "-c".into(), self.subst(script, true)]
            }
            Cmd::C { src, args } => {
                let exe = runner::compile_c(&self.bench_src.join(src), &self.bin_dir)?;
                let mut a = vec![exe.display().to_string()];
                a.extend(args.iter().map(|s| self.subst(s, false)));
                a
            }
        };
        let shown = match cmd {
            Cmd::Shell(_) => argv[2].clone(),
            _ => argv.join(" "),
        };
        Ok((argv.into_iter().map(OsString::from).collect(), shown))
    }

    /// Empty `{scratch}` before a run. When the last run wrote into it,
    /// also `sync`, untimed: deleting gigabytes queues work for the disk,
    /// which the next run (kvc or a reference, whichever comes next in the
    /// interleaving) would otherwise pay for.
    fn reset_scratch(&self) -> std::io::Result<()> {
        let wrote = fs::read_dir(&self.scratch).is_ok_and(|mut d| d.next().is_some());
        empty_dir(&self.scratch)?;
        if wrote {
            std::process::Command::new("sync").status()?;
        }
        Ok(())
    }
}

/// Make `dir` exist and be empty.
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::create_dir_all(dir)
}

/// One command of a case, ready to run.
struct Runnable {
    argv: Vec<OsString>,
    shown: String,
    ok_codes: Vec<i32>,
    samples: Vec<Sample>,
}

impl Runnable {
    /// Run once; `stdout` is where output goes. Err on a bad exit status.
    fn run_once(&self, ctx: &Ctx, stdout: &Path, stderr: &Path) -> Result<Sample, String> {
        ctx.reset_scratch().map_err(|e| format!("scratch: {e}"))?;
        let result = stderr.with_extension("result");
        let f = runner::run(&self.argv, stdout, stderr, &result)
            .map_err(|e| format!("{}: {e}", self.shown))?;
        let ok = f.status.code().is_some_and(|c| self.ok_codes.contains(&c));
        if !ok {
            return Err(format!(
                "`{}` exited with {}: {}",
                self.shown,
                f.status,
                runner::head(stderr, 2000)
            ));
        }
        Ok(f.sample)
    }
}

fn fmt_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn fmt_rss(kib: u64) -> String {
    if kib >= 1024 * 1024 {
        format!("{:.2} GiB", kib as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

/// Run a case's setup commands, once, untimed, in a fresh `{work}`.
fn setup(case: &Case, ctx: &Ctx, work: &Path) -> Result<(), String> {
    empty_dir(&ctx.work).map_err(|e| format!("{}: {e}", ctx.work.display()))?;
    for cmd in &case.setup {
        let (argv, shown) = ctx.resolve(cmd)?;
        let r = Runnable {
            argv,
            shown,
            ok_codes: vec![0],
            samples: Vec::new(),
        };
        r.run_once(ctx, Path::new("/dev/null"), &work.join("stderr"))
            .map_err(|e| format!("setup: {e}"))?;
    }
    Ok(())
}

/// The case's memory bound, if it has one, held on this run.
fn rss_within(case: &Case, ctx: &Ctx, s: &Sample) -> Result<(), String> {
    match case.max_rss_kib {
        Some(max) if s.max_rss_kib > max && !ctx.enforce_bounds => {
            eprintln!(
                "  {}: peak RSS {} exceeds the case's bound of {} (--no-bounds)",
                case.name,
                fmt_rss(s.max_rss_kib),
                fmt_rss(max)
            );
            Ok(())
        }
        Some(max) if s.max_rss_kib > max => Err(format!(
            "peak RSS {} exceeds the case's bound of {}",
            fmt_rss(s.max_rss_kib),
            fmt_rss(max)
        )),
        _ => Ok(()),
    }
}

fn run_case(case: &Case, data: &Dataset, ctx: &Ctx, runs: usize, work: &Path) -> CaseResult {
    let info = DataInfo {
        name: data.spec.name.clone(),
        dir: data.dir.display().to_string(),
        files: data.files,
        bytes: data.bytes,
        spec: data.spec.clone(),
    };
    let mut result = CaseResult {
        name: case.name.to_string(),
        about: case.about.to_string(),
        data: info,
        runs,
        error: None,
        kvc: None,
        references: Vec::new(),
    };
    // A remote case's server runs for the whole case, in this process.
    let _server = match case.s3 {
        Some(root) => {
            let base = match root {
                S3Root::Scratch => &ctx.scratch,
                S3Root::Work => &ctx.work,
            };
            match remote::start_server(&base.join("s3")) {
                Ok(s) => Some(s),
                Err(e) => {
                    result.error = Some(format!("starting the S3 server: {e}"));
                    return result;
                }
            }
        }
        None => None,
    };
    // A push journals in the dataset's directory: leave it as it was.
    let state = data.dir.join(".kvc");
    let had_state = state.exists();
    let result = run_case_steps(case, data, ctx, runs, work, result);
    if case.s3.is_some() && !had_state {
        let _ = fs::remove_dir_all(&state);
    }
    result
}

fn run_case_steps(
    case: &Case,
    data: &Dataset,
    ctx: &Ctx,
    runs: usize,
    work: &Path,
    mut result: CaseResult,
) -> CaseResult {
    let out_file = work.join("stdout");
    let err_file = work.join("stderr");
    let null = Path::new("/dev/null");
    if let Err(e) = setup(case, ctx, work) {
        result.error = Some(e);
        return result;
    }
    let mut kvc = match ctx.resolve(&case.kvc) {
        Ok((argv, shown)) => Runnable {
            argv,
            shown,
            ok_codes: case.ok_codes.to_vec(),
            samples: Vec::new(),
        },
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    // Warm-up: fills the page cache, and its output is checked.
    let warm = kvc
        .run_once(ctx, &out_file, &err_file)
        .and_then(|s| rss_within(case, ctx, &s))
        .and_then(|_| match case.check {
            Some(check) => check(data, &fs::read(&out_file).unwrap_or_default()),
            None => Ok(()),
        });
    if let Err(e) = warm {
        result.error = Some(e);
        return result;
    }
    let mut refs: Vec<(String, Result<Runnable, String>)> = Vec::new();
    for (name, cmd) in &case.refs {
        let r = ctx.resolve(cmd).and_then(|(argv, shown)| {
            let r = Runnable {
                argv,
                shown,
                ok_codes: vec![0],
                samples: Vec::new(),
            };
            r.run_once(ctx, null, &err_file).map(|_| r)
        });
        if let Err(e) = &r {
            eprintln!("  {}: skipping reference {name}: {e}", case.name);
        }
        refs.push((name.to_string(), r));
    }
    for i in 0..runs {
        let k = kvc
            .run_once(ctx, null, &err_file)
            .and_then(|s| rss_within(case, ctx, &s).map(|_| s));
        match k {
            Ok(s) => kvc.samples.push(s),
            Err(e) => {
                result.error = Some(format!("run {i}: {e}"));
                return result;
            }
        }
        for (_, r) in refs.iter_mut() {
            let failed = match r {
                Ok(run) => match run.run_once(ctx, null, &err_file) {
                    Ok(s) => {
                        run.samples.push(s);
                        None
                    }
                    Err(e) => Some(e),
                },
                Err(_) => None,
            };
            if let Some(e) = failed {
                *r = Err(format!("run {i}: {e}"));
            }
        }
    }
    let kstats = Stats::of(kvc.shown.clone(), &kvc.samples);
    for (name, r) in refs {
        result.references.push(match r {
            Ok(run) => {
                let s = Stats::of(run.shown.clone(), &run.samples);
                RefResult {
                    name,
                    skipped: None,
                    ratio: (s.median_s > 0.0).then(|| kstats.median_s / s.median_s),
                    stats: Some(s),
                }
            }
            Err(e) => RefResult {
                name,
                skipped: Some(e),
                stats: None,
                ratio: None,
            },
        });
    }
    result.kvc = Some(kstats);
    result
}

fn print_table(report: &Report) {
    let mut t = Table::new();
    t.load_style(presets::UTF8_BORDERS_ONLY).set_header(vec![
        "case",
        "files",
        "kvc",
        "kvc CPU",
        "reference",
        "ref",
        "ref CPU",
        "kvc/ref",
        "kvc RSS",
        "ref RSS",
    ]);
    for c in &report.cases {
        let files = c.data.files.to_string();
        let Some(k) = &c.kvc else {
            t.add_row(vec![
                c.name.clone(),
                files,
                format!("error: {}", c.error.as_deref().unwrap_or("?")),
            ]);
            continue;
        };
        let mut rows: Vec<Vec<String>> = c
            .references
            .iter()
            .map(|r| match &r.stats {
                Some(s) => vec![
                    r.name.clone(),
                    fmt_time(s.median_s),
                    fmt_time(s.cpu_median_s),
                    r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
                    fmt_rss(s.peak_rss_kib),
                ],
                None => vec![
                    r.name.clone(),
                    "skipped".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ],
            })
            .collect();
        if rows.is_empty() {
            rows.push(vec!["-".into(); 5]);
        }
        for r in rows {
            t.add_row(vec![
                c.name.clone(),
                files.clone(),
                fmt_time(k.median_s),
                fmt_time(k.cpu_median_s),
                r[0].clone(),
                r[1].clone(),
                r[2].clone(),
                r[3].clone(),
                fmt_rss(k.peak_rss_kib),
                r[4].clone(),
            ]);
        }
    }
    for col in [1, 2, 3, 5, 6, 7, 8, 9] {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    println!("{t}");
    println!(
        "median wall and CPU (user+sys) time of {} warm runs each; kvc/ref is the wall-time ratio, \
         < 1 means kvc is faster; RSS of `true` measured the same way: {}.\n{} ({} logical CPUs), Linux {}",
        report.runs,
        report.spawn_rss_kib.map_or("?".into(), fmt_rss),
        report.machine.cpu,
        report.machine.logical_cpus,
        report.machine.kernel
    );
}

fn main() {
    let raw: Vec<OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == runner::LAUNCH_FLAG) {
        runner::launcher_main(&raw[2..]);
    }
    for flag in [remote::RAW_PUT, remote::RAW_GET] {
        if raw.get(1).is_some_and(|a| a == flag) {
            remote::raw_main(flag, &raw[2..]);
        }
    }
    let args = Args::parse();
    let all = cases::all();
    if args.list {
        for c in &all {
            println!("{:28} {}", c.name, c.about);
        }
        return;
    }
    let scale = args
        .scale
        .unwrap_or(if args.quick { QUICK_SCALE } else { 1.0 });
    let runs = args
        .runs
        .unwrap_or(if args.quick { QUICK_RUNS } else { DEFAULT_RUNS })
        .max(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = args.out.clone().unwrap_or_else(|| root.join("bench/out"));
    let kvc = args
        .kvc
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kvc")));
    let kvc = fs::canonicalize(&kvc).unwrap_or(kvc);
    let baseline = args
        .baseline
        .as_ref()
        .map(|b| fs::canonicalize(b).unwrap_or_else(|_| b.clone()));
    let selected: Vec<Case> = all
        .into_iter()
        .filter(|c| {
            args.filter.is_empty() || args.filter.iter().any(|f| c.name.contains(f.as_str()))
        })
        .map(|c| match &baseline {
            Some(b) => c.with_baseline(b),
            None => c,
        })
        .collect();
    if selected.is_empty() {
        eprintln!("no case matches {:?} (see --list)", args.filter);
        std::process::exit(2);
    }
    let work = out.join("run");
    fs::create_dir_all(&work).expect("create bench/out/run");

    // Build each dataset once, however many cases share it.
    let mut datasets: BTreeMap<String, Dataset> = BTreeMap::new();
    for c in &selected {
        let mut spec = c.data.scaled(scale);
        if let Some(t) = args.text_bytes {
            spec.text_bytes = t;
        }
        if let Some(b) = args.payload_bytes {
            spec.payload = Payload::Opaque { bytes: b };
        }
        if let Some(d) = datasets.get(&spec.name) {
            assert_eq!(
                d.spec, spec,
                "two cases define dataset {} differently",
                spec.name
            );
            continue;
        }
        let t = Instant::now();
        eprint!(
            "dataset {}: {} checkpoints ... ",
            spec.name, spec.checkpoints
        );
        let d = fixture::ensure(&out.join("data"), &spec)
            .unwrap_or_else(|e| panic!("building dataset {}: {e}", spec.name));
        eprintln!(
            "{} files, {:.1} MiB, ready in {:.1} s",
            d.files,
            d.bytes as f64 / (1 << 20) as f64,
            t.elapsed().as_secs_f64()
        );
        datasets.insert(spec.name.clone(), d);
    }

    let kvc_version = std::process::Command::new(&kvc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kvc.display()));
    let spawn_rss_kib = runner::which("true")
        .and_then(|t| {
            let (null, err) = (Path::new("/dev/null"), work.join("stderr"));
            runner::run(&[t.into_os_string()], null, &err, &work.join("result")).ok()
        })
        .map(|f| f.sample.max_rss_kib);

    let mut results = Vec::new();
    for c in &selected {
        let data = &datasets[&c.data.scaled(scale).name];
        let ctx = Ctx {
            kvc: kvc.clone(),
            dir: data.dir.clone(),
            texts: data.texts_dir.clone(),
            prompt: data.prompt.clone(),
            scratch: work.join("scratch"),
            work: work.join("case"),
            data_bytes: data.bytes,
            bench_src: root.join("bench"),
            bin_dir: out.join("bin"),
            bench_exe: std::env::current_exe().expect("the benchmark's own path"),
            enforce_bounds: !args.no_bounds,
        };
        let n = c.runs.map_or(runs, |r| r.min(runs)).max(1);
        eprintln!("case {} ({n} runs) ...", c.name);
        let r = run_case(c, data, &ctx, n, &work);
        // Scratch and setup outputs can be gigabytes: not kept between cases.
        let _ = fs::remove_dir_all(&ctx.scratch);
        let _ = fs::remove_dir_all(&ctx.work);
        if let Some(e) = &r.error {
            eprintln!("  {}: kvc failed: {e}", c.name);
        }
        results.push(r);
    }

    let report = Report {
        machine: machine(),
        kvc: kvc.display().to_string(),
        kvc_version,
        scale,
        runs,
        spawn_rss_kib,
        cases: results,
    };
    print_table(&report);
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| out.join("results.json"));
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    match fs::write(&json_path, json + "\n") {
        Ok(()) => eprintln!("results written to {}", json_path.display()),
        Err(e) => {
            eprintln!("cannot write {}: {e}", json_path.display());
            std::process::exit(2);
        }
    }
    if report.cases.iter().any(|c| c.error.is_some()) {
        std::process::exit(1);
    }
}
