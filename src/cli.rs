//! The command line, defined once. The man pages in `man/` and the shell
//! completions in `completions/` are generated from these definitions
//! (`kvc generate-docs .`), as ripgrep does, so they cannot drift apart.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kvc",
    version,
    about = "Inspect and manage KV-cache checkpoint directories of local LLM inference engines",
    long_about = "Inspect and manage the <sha1>.kv prefix checkpoints that ds4-server \
(--kv-disk-dir), ds4-agent (~/.ds4/kvcache), ds4 forks and hanzo-engine keep on disk.\n\n\
Exit status: 0 success; 1 the command ran and found problems; 2 usage or I/O error.",
    after_help = "Cache directory: DIR or --dir, else $KVC_DIR, else ~/.ds4/kvcache when it exists."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the checkpoints of cache directories, with their eviction rank
    Ls(LsArgs),
    /// Show every header field, the trailer and the payload header of one checkpoint
    Show(ShowArgs),
    /// Write the stored prompt text of a checkpoint, raw, to a pipe or file
    Cat(CatArgs),
    /// Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)
    #[command(
        long_about = "Check cache directories and checkpoint files against FORMAT.md and report \
every problem with a stable code (listed in README.md, section `kvc verify`).\n\n\
The default check reads each file's header, text and trailer, and the DSV4 payload header and \
row-count arrays (a few positioned reads), so truncation, key mismatches, bad trailers and \
payload header/size mismatches are found without reading the payload. --deep also streams every \
payload once through a 256 KiB buffer to check token ids and logits and that every byte is readable.\n\n\
Verify changes nothing unless --quarantine is given."
    )]
    Verify(VerifyArgs),
    /// Write man pages and shell completions generated from this definition
    #[command(hide = true)]
    GenerateDocs {
        /// Directory to write man/ and completions/ into
        out: PathBuf,
    },
}

/// `--json`: one flag, one meaning everywhere.
#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON (schema in README.md) instead of a table
    #[arg(long)]
    pub json: bool,
}

/// The eviction policy and the clock it is evaluated at.
#[derive(Debug, Args, Clone, Copy)]
pub struct PolicyArgs {
    /// Eviction policy: ds4 (forks: anchors and superseded waypoints), ds4-classic (upstream ds4), lru (hanzo-engine)
    #[arg(long, value_enum, default_value_t = PolicyName::Ds4)]
    pub policy: PolicyName,
    /// Evaluate scores and ages at this Unix time instead of now (reproducible output)
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    Ds4,
    #[value(name = "ds4-classic")]
    Ds4Classic,
    Lru,
}

impl From<PolicyName> for kvc::Policy {
    fn from(p: PolicyName) -> kvc::Policy {
        match p {
            PolicyName::Ds4 => kvc::Policy::Ds4,
            PolicyName::Ds4Classic => kvc::Policy::Ds4Classic,
            PolicyName::Lru => kvc::Policy::Lru,
        }
    }
}

/// `--dir` for commands that name checkpoints by key.
#[derive(Debug, Args, Clone)]
pub struct DirArg {
    /// Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(long, short = 'd', value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Last use, newest first
    Used,
    /// Creation time, newest first
    Created,
    /// File size, largest first
    Size,
    /// Token count, largest first
    Tokens,
    /// Hit count, largest first
    Hits,
    /// Eviction order: the next victim first
    Score,
    /// Key, ascending
    Key,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Flags column: t tool-map trailer, r responses-visible text, \
k thinking-visible text, ? unknown ext bits, s superseded waypoint, \
a agent save (never evicted without --include-agent), ! header warning (listed below the table)."
)]
pub struct LsArgs {
    /// Cache directories [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Order of the rows
    #[arg(long, value_enum, default_value_t = SortKey::Score)]
    pub sort: SortKey,
    /// Reverse the order
    #[arg(long, short = 'r')]
    pub reverse: bool,
    /// Full keys, absolute times, model id and payload ABI
    #[arg(long, short = 'l')]
    pub long: bool,
    /// Do not read the texts: no titles, no key check (reads 52 bytes a file)
    #[arg(long)]
    pub no_title: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    pub key: String,
    /// Also show the whole text, with control characters escaped
    #[arg(long)]
    pub text: bool,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    pub key: String,
    /// Write the raw text even when standard output is a terminal
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

/// `--sample`: a percentage in (0, 100], `%` optional.
fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not in (0, 100]"))
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 no error (warnings allowed), 1 at least one error (or, with --strict, \
a warning), 2 verify could not run."
)]
pub struct VerifyArgs {
    /// Cache directories and/or single .kv files [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also read every payload whole: token ids below vocab, finite logits, every byte readable
    #[arg(long)]
    pub deep: bool,
    /// Deep-check only this percentage of checkpoints, the same ones every run (implies --deep)
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub sample: Option<f64>,
    /// Also report stray files (names no engine reads)
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Treat warnings as errors for the exit status
    #[arg(long)]
    pub strict: bool,
    /// Age from which a temp file whose writer is gone is reported as stale (e.g. 30m, 1h, 2d)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub temp_age: humantime::Duration,
    /// Move every file with an error into DIR (created 0700) with a <name>.why file; never deletes
    #[arg(long, value_name = "DIR")]
    pub quarantine: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}
