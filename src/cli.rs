//! The command line, defined once. The man pages in `man/` and the shell
//! completions in `completions/` are generated from these definitions
//! (`KVC_UPDATE_DOCS=1 cargo test --test docs`), as ripgrep does, so they cannot drift apart.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use kvc::code::{Code, Uses};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kvc",
    version,
    propagate_version = true,
    about = "Inspect and manage KV-cache checkpoint directories of local LLM inference engines",
    long_about = "Inspect and manage the <sha1>.kv prefix checkpoints that ds4-server \
(--kv-disk-dir), ds4-agent (~/.ds4/kvcache), ds4 forks and hanzo-engine keep on disk.\n\n\
Exit status: 0 success; 1 the command ran and found problems; 2 usage or I/O error; \
3 a writing command gave up waiting for another kvc's lock on a cache directory (--wait); \
4 a deleting command (evict, rm, gc) refused its plan and deleted nothing (over --max-delete or \
evict's own limit of 50% of the directory, or not confirmed on a terminal).",
    after_help = "Cache directory: the DIR argument (or --dir, the same), else $KVC_DIR, else ~/.ds4/kvcache when it exists."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
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
every problem with a stable code (listed in doc/GUIDE.md, section `kvc verify`).\n\n\
The default check reads each file's header, text and trailer, and the DSV4 payload header and \
row-count arrays (a few positioned reads), so truncation, key mismatches, bad trailers and \
payload header/size mismatches are found without reading the payload. --deep also streams every \
payload once through a 256 KiB buffer to check token ids and logits and that every byte is readable.\n\n\
Each file is judged by the rules of its dialect (FORMAT.md §9), read by its directory's engine \
(inferred from the files as `kvc ls` does, or --engine): hanzo-engine files may have 0 tokens and \
opaque payloads, ds4-agent sessions are named by their title, GLM-5.2 bodies are opaque. A file of a \
dialect kvc does not read is a `foreign` warning, never an error. Per directory, the summary also \
says which healthy checkpoints its engine never loads (they stay on disk until removed).\n\n\
Verify changes nothing unless --quarantine is given."
    )]
    Verify(VerifyArgs),
    /// Delete checkpoints until the cache fits a budget, next victim first
    Evict(EvictArgs),
    /// Remove named checkpoints
    Rm(RmArgs),
    /// Remove temp files left by crashed writers, and empty kvc state
    Gc(GcArgs),
    /// One screen about cache directories: what they hold, what was hit, what each command would free
    #[command(long_about = STATS_ABOUT, after_help = STATS_HELP)]
    Stats(StatsArgs),
    /// The prefix forest: which checkpoint's text extends which, with the bytes that hold no prefix of their own
    #[command(after_help = TREE_HELP)]
    Tree(TreeArgs),
    /// Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine's activity
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first
    Log(LogArgs),
    /// Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`
    Export(ExportArgs),
    /// Install the checkpoints of a bundle, verifying every byte before it becomes visible
    Import(ImportArgs),
    /// Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)
    #[command(subcommand)]
    Trailer(TrailerCommand),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Install, e.g.: kvc completions bash > ~/.local/share/bash-completion/completions/kvc\n\
zsh: kvc completions zsh > ~/.zfunc/_kvc (with fpath+=~/.zfunc); fish: kvc completions fish > ~/.config/fish/completions/kvc.fish\n\n\
Dynamic completion (keys of the cache directory, units for sizes), which asks kvc on every TAB: \
bash: echo 'source <(kvc completions --dynamic bash)' >> ~/.bashrc; zsh: the same into ~/.zshrc; \
fish: kvc completions --dynamic fish > ~/.config/fish/completions/kvc.fish. It is clap's \
completion protocol (COMPLETE=SHELL kvc), so regenerate it after upgrading kvc."
    )]
    Completions(CompletionsArgs),
    /// Write the man pages (kvc.1 and one per command) into DIR
    #[command(
        after_help = "Install, e.g.: kvc man ~/.local/share/man/man1 (then `man kvc-evict`); \
system-wide: sudo kvc man /usr/local/share/man/man1"
    )]
    Man(ManArgs),
    /// Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses
    #[command(
        long_about = "Explain a cache hit or miss offline: which checkpoint ds4 loads for a rendered \
prompt, and why every other checkpoint of the directory loses.\n\n\
kvc reproduces ds4 mainline's lookup from its code (ds4_kvstore.c at b030961: \
ds4_kvstore_find_text_prefix, then ds4_kvstore_try_load_text): the files mainline's reader \
accepts (<40 hex>.kv names, version 1, payload ABI 2, quant 2 or 4, tokens > 0, long enough); \
then, in this order, text longer than the prompt, tokens below the minimum, another model, a \
ctx larger than the live one, other quant bits (only with --reject-different-quant); then the \
SHA-1 of the prompt's prefix against the file name. The longest text wins, ties go to more \
tokens, then to the first in directory order. A pick whose stored text is not the prompt's \
prefix is a miss: the engine does not fall back. It does this whatever engine wrote the \
directory (hanzo-engine's prefix cache works differently; kvc says so).\n\n\
The prompt is read whole, as a C string: bytes after a NUL are ignored (and the output says so)."
    )]
    Match(MatchArgs),
    /// Upload checkpoints a remote (S3-compatible object storage) lacks, checked first
    #[command(long_about = PUSH_ABOUT, after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Download checkpoints from a remote into a cache, verifying every byte before it becomes visible
    #[command(long_about = PULL_ABOUT, after_help = PULL_HELP)]
    Pull(PullArgs),
    /// List, remove and trim a remote's checkpoints
    #[command(subcommand)]
    Remote(RemoteCommand),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
    /// Print the registration script of dynamic completion instead: it asks kvc itself, so keys complete from the cache directory (the --dir typed, else $KVC_DIR, else ~/.ds4/kvcache) and a number typed for a size to its units
    #[arg(long)]
    pub dynamic: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write kvc.1 and kvc-COMMAND.1 into (created if missing)
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: PathBuf,
}

/// `--json`: one flag, one meaning everywhere.
#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON (schema in doc/GUIDE.md) instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `--engine`: whose reading of the directory kvc reproduces.
#[derive(Debug, Args, Clone, Copy)]
pub struct EngineArg {
    /// Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineName {
    /// ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent
    Ds4,
    /// ds4 up to 2026-05-25, before the payload ABI byte
    #[value(name = "ds4-classic")]
    Ds4Classic,
    /// hanzo-engine's disk KV spill
    Hanzo,
}

impl From<EngineName> for kvc::format::Engine {
    fn from(e: EngineName) -> kvc::format::Engine {
        match e {
            EngineName::Ds4 => kvc::format::Engine::Ds4,
            EngineName::Ds4Classic => kvc::format::Engine::Ds4Classic,
            EngineName::Hanzo => kvc::format::Engine::Hanzo,
        }
    }
}

impl EngineArg {
    pub fn engine(self) -> Option<kvc::format::Engine> {
        self.engine.map(Into::into)
    }
}

/// The eviction policy, the engine it belongs to, and the clock.
#[derive(Debug, Args, Clone, Copy)]
pub struct PolicyArgs {
    /// Eviction order [default: the policy of the directory's engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)
    #[arg(long, value_enum)]
    pub policy: Option<PolicyName>,
    #[command(flatten)]
    pub engine: EngineArg,
    /// Evaluate scores and ages at this Unix time instead of now (reproducible output)
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<u64>,
}

impl PolicyArgs {
    pub fn policy(self) -> Option<kvc::Policy> {
        self.policy.map(Into::into)
    }
}

/// `--reject-different-quant`: ds4-server's `--kv-cache-reject-different-quant`.
#[derive(Debug, Args, Clone, Copy)]
pub struct QuantArg {
    /// As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)
    #[arg(long)]
    pub reject_different_quant: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    /// ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)
    Ds4,
    /// ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size
    #[value(name = "ds4-classic")]
    Ds4Classic,
    /// hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB
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

/// The cache directory of a command that works on one: a positional DIR
/// or `--dir`, the same thing (both at once is an error).
#[derive(Debug, Args, Clone)]
pub struct CacheDir {
    /// Cache directory [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(id = "dir_arg", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub positional: Option<PathBuf>,
    /// Cache directory, as DIR
    #[arg(long = "dir", short = 'd', value_name = "DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "dir_arg")]
    pub flag: Option<PathBuf>,
}

impl CacheDir {
    /// The directory given, either way.
    pub fn get(&self) -> Option<PathBuf> {
        self.flag.clone().or_else(|| self.positional.clone())
    }
}

/// `--dir` of the commands whose KEYs are followed by an optional DIR
/// (`kvc rm KEY... [DIR]`): clap cannot place an optional positional after
/// a repeated one, so the binary takes a last KEY that names a directory
/// as DIR (`config::keys_and_dir`).
#[derive(Debug, Args, Clone)]
pub struct DirArg {
    /// Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(long, short = 'd', value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
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

const LS_HELP: &str = "Flags column: t tool-map trailer, r responses-visible text, \
k thinking-visible text, ? unknown ext bits, s superseded waypoint, \
a agent save (never evicted without --include-agent), x never loaded by the directory's engine, \
! header warning, or a name that is not what the content says (listed below the table).\n\
SCORE: tokens kept per MiB on disk, weighted by recently decayed hits and the policy's factors \
(ds4: x2 for cold/evict/shutdown, x0.05-0.5 for a superseded waypoint); lower is evicted first. \
JSON has the raw score per byte.\n\
Tables fit $COLUMNS, or the terminal's width: titles shrink first, then ctx, quant and other \
columns are left out; a pipe gets whole rows.";

#[derive(Debug, Args)]
#[command(
    after_help = LS_HELP,
    after_long_help = long_help(LS_HELP, &[("Invalid files (code: meaning)", &uses(Uses::INVALID))], "kvc ls --json: doc/GUIDE.md, section `kvc ls --json` (the CHECKPOINT object: section `JSON of ls and show`)")
)]
pub struct LsArgs {
    /// Cache directories, or .kv files to list alone [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(value_name = "DIR|FILE", value_hint = clap::ValueHint::AnyPath)]
    pub dirs: Vec<PathBuf>,
    /// A cache directory, as DIR (repeatable)
    #[arg(long = "dir", short = 'd', value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Vec<PathBuf>,
    /// Print only the full keys, one per line, in the listing's order (for pipes: `kvc ls -q | head -3`)
    #[arg(long, short = 'q', conflicts_with = "json")]
    pub quiet: bool,
    #[command(flatten)]
    pub rows: RowArgs,
    /// Do not read the texts: no titles, no key check (reads 52 bytes a file)
    #[arg(long)]
    pub no_title: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    #[arg(add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub key: String,
    /// Also show the whole text, with control characters escaped
    #[arg(long)]
    pub text: bool,
    #[command(flatten)]
    pub dir: CacheDir,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    #[arg(add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub key: String,
    /// Write the raw text even when standard output is a terminal
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub dir: CacheDir,
}

#[derive(Debug, Subcommand)]
pub enum TrailerCommand {
    /// List the entries of a checkpoint's tool-id map, and which of them ds4 uses (the last entry of an id wins)
    Ls(TrailerLsArgs),
    /// Write a checkpoint's tool-id map to standard output as JSON (shadowed entries marked)
    #[command(
        after_long_help = "JSON: doc/GUIDE.md, section `kvc trailer`, \"JSON\"; the same form is the input of `kvc trailer set`."
    )]
    Export(TrailerExportArgs),
    /// Replace the tool-id map of checkpoints with one given as JSON
    #[command(
        after_help = TRAILER_SET_HELP,
        after_long_help = trailer_long_help(TRAILER_SET_HELP)
    )]
    Set(TrailerSetArgs),
    /// Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text
    #[command(after_help = TRAILER_FILES_HELP, after_long_help = trailer_long_help(TRAILER_FILES_HELP))]
    Prune(TrailerEditArgs),
    /// Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)
    #[command(after_help = TRAILER_FILES_HELP, after_long_help = trailer_long_help(TRAILER_FILES_HELP))]
    Strip(TrailerEditArgs),
}

/// The codes with one of `uses`, in documentation order.
fn uses(uses: kvc::code::Uses) -> Vec<kvc::code::Code> {
    kvc::code::Code::used_as(uses).collect()
}

/// `--help` (and the man page) of a command: its short help, then each
/// table of the codes its output carries, with their meanings from
/// `kvc::code` (the registry kvc reports them from), then where its JSON
/// schema is.
fn long_help(short: &str, tables: &[(&str, &[kvc::code::Code])], json: &str) -> String {
    let mut s = short.to_string();
    for (title, codes) in tables {
        s.push_str(&format!("\n\n{title}:\n"));
        for c in codes.iter() {
            s.push_str(&format!(
                "\n  {}: {}\n",
                c.name(),
                c.meaning().replace('`', "")
            ));
        }
    }
    s.push_str(&format!(
        "\n\nJSON ({json}); field names are stable, new fields may be added."
    ));
    s
}

/// `kvc trailer set|prune|strip --help`: their outcomes and JSON.
fn trailer_long_help(short: &str) -> String {
    use kvc::code::Code;
    long_help(
        short,
        &[(
            "Outcomes (code: meaning)",
            &[
                Code::Rewritten,
                Code::WouldRewrite,
                Code::Unchanged,
                Code::Vanished,
            ],
        )],
        "kvc trailer --json: doc/GUIDE.md, section `kvc trailer`, \"JSON\"",
    )
}

/// `kvc trailer set --help`.
const TRAILER_SET_HELP: &str = "Input: the JSON `kvc trailer export` writes: [{\"id\": ..., \"dsml\": ...}], \
with `id_hex`/`dsml_hex` (hex bytes) in place of a field that is not UTF-8 (`shadowed_by` and \
`dropped_by_ds4`, which export adds, are ignored). An empty array removes the map. Refused as ds4's \
loader would read them otherwise: ids of 0 or more than 256 bytes, an id twice (ds4 uses the last), \
NUL bytes in an id or a DSML block (ds4 reads C strings).\n\n\
Only ds4's tool-id maps are rewritten: a ds4-agent session (ext bit 3: its trailer is its title), \
a file with ext bits 0 and 3, a hanzo-engine file and a foreign one are refused with one line.";

/// What `trailer prune` and `strip` leave alone, for their `--help`.
const TRAILER_FILES_HELP: &str = "Only ds4's tool-id maps are rewritten. Left alone: a ds4-agent \
session (ext bit 3: what follows its payload is its title), a file with ext bits 0 and 3, a \
hanzo-engine file (no trailers; its ext bits mean nothing) and a foreign dialect. --all lists them \
under `skipped` and goes on; a KEY naming one gets one line (exit 2).\n\n\
A rewrite changes ext bit 0 and the bytes after the payload, nothing else. An engine that writes \
the header it loaded back on a hit (hanzo-engine re-opens the file by path) can undo it or land on \
the new file: rewrite while the engines are idle.";

#[derive(Debug, Args)]
pub struct TrailerLsArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    #[arg(add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub key: String,
    #[command(flatten)]
    pub dir: CacheDir,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct TrailerExportArgs {
    /// Key, unique key prefix (4+ hex digits), `sysprompt`, or path to a .kv file
    #[arg(add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub key: String,
    #[command(flatten)]
    pub dir: CacheDir,
}

/// How a rewrite reaches the disk (doc/DESIGN.md: "Crash safety of trailer rewrites").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RewriteMethod {
    /// Clone where the filesystem can; else in place if that is strictly old-or-new (adding or removing a map), copy if not (replacing one)
    Auto,
    /// Ordered in-place writes and fsyncs, never a copy; replacing a map passes through a valid state without one
    #[value(name = "in-place")]
    InPlace,
    /// Reflink clone and swap; fails where the filesystem cannot clone
    Clone,
    /// Clone, else copy the whole file, then swap: never a state without the map
    Copy,
}

impl From<RewriteMethod> for kvc::trailer::rewrite::Method {
    fn from(m: RewriteMethod) -> kvc::trailer::rewrite::Method {
        match m {
            RewriteMethod::Auto => kvc::trailer::rewrite::Method::Auto,
            RewriteMethod::InPlace => kvc::trailer::rewrite::Method::InPlace,
            RewriteMethod::Clone => kvc::trailer::rewrite::Method::Clone,
            RewriteMethod::Copy => kvc::trailer::rewrite::Method::Copy,
        }
    }
}

/// `--wait`: how long a writing command waits for another kvc's lock.
#[derive(Debug, Args, Clone, Copy)]
pub struct WaitArg {
    /// Wait at most this long for another kvc's lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, default_value = "10m")]
    pub wait: Duration,
}

/// `--now` for commands without a policy: the clock of the run and of its
/// journal records.
#[derive(Debug, Args, Clone, Copy)]
pub struct ClockArg {
    /// Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<u64>,
}

/// `--dry-run`, the same flag for every command that writes.
#[derive(Debug, Args, Clone, Copy)]
pub struct DryRunArg {
    /// Show what would be done and change nothing (no lock, not even kvc's own state)
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// `--temp-age`: when a temp file of a dead writer counts as stale.
#[derive(Debug, Args, Clone, Copy)]
pub struct TempAgeArg {
    /// Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other, default_value = "1h")]
    pub temp_age: Duration,
}

/// Flags every trailer rewrite shares.
#[derive(Debug, Args, Clone, Copy)]
pub struct RewriteArgs {
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub clock: ClockArg,
    /// How to write the new trailer
    #[arg(long, value_enum, default_value_t = RewriteMethod::Auto)]
    pub method: RewriteMethod,
}

/// Checkpoints to rewrite: keys, or `--all` of the directory.
#[derive(Debug, Args, Clone)]
pub struct KeysOrAll {
    /// Keys, unique key prefixes (4+ hex digits), `sysprompt`, or paths to .kv files; then, optionally, the cache directory
    #[arg(value_name = "KEY", required_unless_present = "all", add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub keys: Vec<String>,
    /// Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct TrailerSetArgs {
    /// Keys, unique key prefixes (4+ hex digits), `sysprompt`, or paths to .kv files; then, optionally, the cache directory
    #[arg(value_name = "KEY", required = true, add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub keys: Vec<String>,
    /// JSON file with the map, or `-` for standard input
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Store entries whose DSML block does not occur in the text
    #[arg(long)]
    pub allow_missing: bool,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `trailer prune` and `trailer strip`: which checkpoints, and how to write.
#[derive(Debug, Args)]
pub struct TrailerEditArgs {
    #[command(flatten)]
    pub targets: KeysOrAll,
    #[command(flatten)]
    pub rewrite: RewriteArgs,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--budget`: sizes need a unit (see `kvc::size`).
fn parse_size_arg(s: &str) -> Result<u64, String> {
    kvc::size::parse_size(s).map_err(|e| e.to_string())
}

/// `--budget` of the commands that evict: a size, and never 0, which ds4
/// reads as its default (`--kv-disk-space-mb 0` = 4096 MiB,
/// ds4_kvstore.c `ds4_kvstore_open`): kvc refuses rather than guess which
/// was meant.
fn parse_budget_arg(s: &str) -> Result<u64, String> {
    match parse_size_arg(s)? {
        0 => Err("a budget of 0 is refused: ds4 reads --kv-disk-space-mb 0 as its default of 4096 MiB, not as nothing; give the size meant (use `kvc rm` to delete checkpoints by name)".into()),
        n => Ok(n),
    }
}

/// `--older-than`, `--temp-age`, `--since`: `30d`, `12h`, `90m`.
fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (expected e.g. 30d, 12h, 90m)"))
}

/// `--max-delete`: a share, a size or a number of files.
fn parse_max_delete(s: &str) -> Result<kvc::guard::MaxDelete, String> {
    kvc::guard::MaxDelete::parse(s)
}

/// Flags of every command that deletes.
#[derive(Debug, Args, Clone, Copy)]
pub struct WriteArgs {
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub wait: WaitArg,
    /// Print nothing on success (for cron); problems still go to stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Delete at most this much in one run, else nothing (exit 4): a share of the directory's bytes (25%), a size (10GiB) or a number of files (100)
    #[arg(long, value_name = "LIMIT", value_parser = parse_max_delete, value_hint = clap::ValueHint::Other, add = clap_complete::ArgValueCompleter::new(complete_limit))]
    pub max_delete: Option<kvc::guard::MaxDelete>,
    /// Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `--include-agent`, for commands that delete checkpoints.
#[derive(Debug, Args, Clone, Copy)]
pub struct AgentArg {
    /// Also act on ds4-agent's explicit saves (sysprompt.kv, agent-session, agent-system)
    #[arg(long)]
    pub include_agent: bool,
}

const EVICT_HELP: &str = "Sizes: B, KiB, MiB, GiB, TiB (or K, M, G, T) are powers of 1024; kB, MB, GB, TB \
powers of 1000; any case (200gb). A bare number is refused: ds4's --kv-disk-space-mb counts MiB. --budget 0 is refused \
too: ds4 reads --kv-disk-space-mb 0 as its default, 4096 MiB, not as nothing.\n\n\
Population: the plan covers exactly what the directory's engine counts against its budget \
(--engine, else inferred from the files; the output says which). ds4 (mainline since e8e8779, \
2026-05-26, and ds4 up to 2026-05-25): <40 hex>.kv files its reader accepts (version 1, quant 2 or 4, \
tokens > 0; mainline also payload ABI 2), any model, any reason. Everything else a checkpoint name \
holds (other ABI or quant, sysprompt.kv, invalid, foreign) is kept and reported apart with its total; \
--include-unloadable deletes the readable checkpoints among it. hanzo-engine (disk_kv_cache.rs, \
c8bcee7d5): every *.kv entry it can stat, valid or not; kvc deletes the ones that are not readable \
checkpoints only with --include-unloadable (hanzo itself would), and never foreign files, links or \
directories. Temp files and other names are never counted and never deleted.\n\n\
Policies: ds4 = ds4 mainline since ec6a82a (2026-05-26), ds4-classic = ds4 up to 2026-05-25, \
lru = hanzo-engine (its default budget is 4096 MiB, its minimum 64 MiB: a smaller --budget is raised \
to 64 MiB and the output says so). Superseded waypoints are ds4's test applied at rest, with every \
longer stored checkpoint in the role of the one ds4 is saving: kvc's extension.\n\n\
Run it beside a live engine: a checkpoint the engine uses between planning and deletion is skipped \
and the cache planned again.\n\n\
Limit: evict deletes at most 50% of the directory's bytes in one run unless --max-delete or --yes \
says otherwise (a budget mistyped as 1GiB for 100GiB deletes nothing). Over the limit nothing is \
deleted and kvc exits 4; --dry-run prints the plan and exits 4 the same. On a terminal, deleting more \
than 10% of the directory asks first (--yes does not); without one (cron) nothing is asked.\n\n\
Exit status: 0 done (or nothing to do), 1 done with problems (budget not met, a file not removed), \
2 usage or I/O error, 3 gave up waiting for another kvc's lock, 4 refused: over the limit, or not \
confirmed; nothing deleted.";

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("criterion").args(["budget", "older_than", "include_unloadable"]).required(true).multiple(true)),
    after_help = EVICT_HELP,
    after_long_help = long_help(EVICT_HELP, &[("Outcomes of victims (code: meaning)", &[Code::Planned, Code::Removed, Code::Vanished, Code::Touched, Code::Invalid, Code::Failed]), ("Why an entry is kept (code: meaning)", &uses(Uses::KEPT))], "kvc evict --json: doc/GUIDE.md, section `kvc evict --json`")
)]
pub struct EvictArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    /// Evict until what the engine's budget counts takes at most SIZE (8GiB, 1.5G, 500MB)
    #[arg(long, value_name = "SIZE", value_parser = parse_budget_arg, value_hint = clap::ValueHint::Other, add = clap_complete::ArgValueCompleter::new(complete_size))]
    pub budget: Option<u64>,
    /// Also evict checkpoints unused for longer than DURATION (30d, 12h), budget or not
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other)]
    pub older_than: Option<Duration>,
    /// Also delete what the engine never loads: under ds4 the readable checkpoints outside its population (other payload ABI, quant, version; sysprompt.kv with --include-agent); under hanzo-engine the *.kv entries it counts that kvc cannot read. Never foreign files, links or directories
    #[arg(long)]
    pub include_unloadable: bool,
    /// Never evict this checkpoint (key, unique prefix, `sysprompt` or path); repeatable
    #[arg(long, value_name = "KEY", add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub protect: Vec<String>,
    #[command(flatten)]
    pub agent: AgentArg,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

const RM_HELP: &str = "A file with a checkpoint name that is not a valid checkpoint is removed too \
when named explicitly (the journal records it as invalid); kvc never deletes one on its own.\n\n\
Limit: --max-delete LIMIT (a share of the directory's bytes, a size or a number of files): over it, \
nothing is removed and kvc exits 4. On a terminal, removing more than 10% of a directory asks first \
(--yes does not); without one nothing is asked.";

#[derive(Debug, Args)]
#[command(
    after_help = RM_HELP,
    after_long_help = long_help(RM_HELP, &[("Outcomes (code: meaning)", &[Code::Planned, Code::Removed, Code::Vanished, Code::Changed, Code::Failed])], "kvc rm --json: doc/GUIDE.md, section `kvc rm KEY... [DIR]`")
)]
pub struct RmArgs {
    /// Keys, unique key prefixes (4+ hex digits), `sysprompt`, or paths to .kv files; then, optionally, the cache directory
    #[arg(value_name = "KEY", required = true, add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub agent: AgentArg,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

const GC_HELP: &str = "Temp files: <key>.kv.tmp.<pid> (ds4-server, kvc), <name>.kv.tmp.XXXXXX (ds4-agent: \
mkstemp, no pid), <key>.<pid>-<seq>.kv.tmp, <key>.<pid>.kv.tmp and <key>.kv.tmp (hanzo-engine). \
One is removed only when it was not modified for --temp-age, the pid in its name (if any) is \
not running, and no process holds it open (found through /proc/*/fd). Six digits may be a \
mkstemp suffix: a running pid keeps such a file, a dead one proves nothing. When kvc cannot \
inspect every process that may hold a file (no /proc, another user's file, or processes \
closed to it), temp files without a certain pid are kept, and gc says why. Run gc on the host \
(and in the pid namespace) of the engine that writes the directory; as root to see every \
process.\n\n\
Limit: --max-delete LIMIT (a share of the directory's bytes, a size or a number of files): over it, \
nothing is removed and kvc exits 4. On a terminal, removing more than 10% of the directory asks \
first (--yes does not); without one nothing is asked.";

#[derive(Debug, Args)]
#[command(
    after_help = GC_HELP,
    after_long_help = long_help(GC_HELP, &[("Verdicts (code: meaning)", &uses(Uses::VERDICT)), ("Outcomes (code: meaning)", &[Code::Planned, Code::Kept, Code::Removed, Code::Vanished, Code::Failed])], "kvc gc --json: doc/GUIDE.md, section `kvc gc [DIR]`")
)]
pub struct GcArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    #[command(flatten)]
    pub temp_age: TempAgeArg,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `kvc log --op`: an op the journal records.
fn parse_op(s: &str) -> Result<String, String> {
    use kvc::session::journal::Op;
    match Op::from_name(s) {
        Some(op) => Ok(op.name().to_string()),
        None => Err(format!(
            "unknown op {s:?} (one of {})",
            Op::ALL.map(Op::name).join(", ")
        )),
    }
}

const LOG_HELP: &str =
    "Records are listed newest first (earlier versions of kvc listed them oldest first; -r \
gives that order). Filters combine: --op, --key and --since narrow the records, then --limit \
keeps the newest N. The summary totals the records listed, per op, and counts only evict, rm, gc \
and quarantine records as freed.";

#[derive(Debug, Args)]
#[command(
    after_help = LOG_HELP,
    after_long_help = long_help(LOG_HELP, &[], "kvc log --json: doc/GUIDE.md, section `The journal and kvc log [DIR]`")
)]
pub struct LogArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    /// Only records of this op (repeatable: any of them): evict, rm, gc, quarantine, import, replace, trailer-set, trailer-prune, trailer-strip
    #[arg(long, value_name = "OP", value_parser = parse_op)]
    pub op: Vec<String>,
    /// Only records whose key starts with PREFIX (case-insensitive), or whose file name (gc's temp files) does
    #[arg(long, value_name = "PREFIX")]
    pub key: Option<String>,
    /// Only records from WHEN on: 2026-08-05, 2026-08-05T14:00 (UTC) or a duration back from now (30d, 12h)
    #[arg(long, value_name = "WHEN", value_hint = clap::ValueHint::Other)]
    pub since: Option<String>,
    /// Only the newest N records (after the other filters)
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Oldest first
    #[arg(long, short = 'r')]
    pub reverse: bool,
    /// Full keys
    #[arg(long, short = 'l')]
    pub long: bool,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_reason(s: &str) -> Result<kvc::Reason, String> {
    kvc::Reason::from_name(s).ok_or_else(|| {
        format!(
            "unknown reason {s:?} (one of {}, or a number)",
            kvc::Reason::all_names().join(", ")
        )
    })
}

const EXPORT_HELP: &str = "Examples:\n  kvc export -o ckpts.tar 3fa2 9c01\n  \
kvc export --all -o - | ssh gpu2 kvc import - --dir /var/cache/ds4-kv\n\n\
The bundle is a plain tar stream (GNU tar can list and extract it); each checkpoint is \
followed by a small JSON digest record, and MANIFEST.json comes last. Filters narrow the \
KEYs, or select from every checkpoint when no KEY and no --all is given.\n\n\
Each file is checked as it streams: its dialect, envelope and name (a ds4-agent session with \
ext bit 3 is named SHA-1(title ‖ created), others by the SHA-1 of their text). Files of \
dialects kvc does not read (`foreign` in kvc ls) are never exported: listed as a note with \
--all or a filter, an error (exit 1) when a KEY names one.";

#[derive(Debug, Args)]
#[command(after_help = EXPORT_HELP,
    after_long_help = long_help(EXPORT_HELP, &[], "kvc export --json: doc/GUIDE.md, section `Export JSON`; the bundle format: doc/DESIGN.md, section `The bundle format`"))]
pub struct ExportArgs {
    /// Keys, unique key prefixes (4+ hex digits), `sysprompt`, or paths to .kv files; then, optionally, the cache directory
    #[arg(value_name = "KEY", add = clap_complete::ArgValueCompleter::new(complete_key))]
    pub keys: Vec<String>,
    /// Every checkpoint of the directory (filters still apply; a KEY argument may then only be the directory)
    #[arg(long)]
    pub all: bool,
    /// Only checkpoints saved for this reason (repeatable: any of them)
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    pub reason: Vec<kvc::Reason>,
    /// Only checkpoints of at least N tokens
    #[arg(long, value_name = "N")]
    pub min_tokens: Option<u32>,
    /// Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other)]
    pub used_within: Option<Duration>,
    /// Only checkpoints with these routed-expert quant bits
    #[arg(long, value_name = "BITS")]
    pub quant: Option<u8>,
    /// Bundle file to write (atomically), or `-` for standard output (not a terminal)
    #[arg(long = "output", short = 'o', value_name = "FILE")]
    pub out_file: PathBuf,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `kvc import` does when the target already has the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnConflict {
    /// Keep the existing checkpoint
    Skip,
    /// Overwrite it
    Replace,
    /// Keep whichever has the later last_used (ties keep the existing)
    Newer,
}

impl From<OnConflict> for kvc::bundle::OnConflict {
    fn from(c: OnConflict) -> kvc::bundle::OnConflict {
        match c {
            OnConflict::Skip => kvc::bundle::OnConflict::Skip,
            OnConflict::Replace => kvc::bundle::OnConflict::Replace,
            OnConflict::Newer => kvc::bundle::OnConflict::Newer,
        }
    }
}

const IMPORT_HELP: &str = "Only regular files named <40 hex digits>.kv or sysprompt.kv at the top \
level are accepted, each only after its digest record confirmed every byte, and only of a \
dialect kvc reads, named as that dialect names its content (the text's SHA-1; a ds4-agent \
session's identity SHA-1(title ‖ created)); anything else, foreign dialects included, is \
rejected and listed. Bytes are installed as they came (--reset-stats changes hits and \
last_used only).\n\n\
Next to a running hanzo-engine, --on-conflict replace (and newer, when it replaces) is unsafe: \
on a hit hanzo-engine re-opens the file by path and writes back the header it loaded, onto \
the new file. kvc warns before the first replacement in a directory hanzo-engine reads; stop \
the engine first.\n\n\
Exit status: 1 when an entry was rejected, the stream was cut off, or \
--budget could not be met; 2 when the input is not a tar stream at all.";

#[derive(Debug, Args)]
#[command(
    after_help = IMPORT_HELP,
    after_long_help = long_help(IMPORT_HELP, &[("Outcomes (code: meaning)", &[Code::Installed, Code::Replaced, Code::Present, Code::Skipped, Code::Rejected])], "kvc import --json: doc/GUIDE.md, section `Import JSON`")
)]
pub struct ImportArgs {
    /// Bundle file, or `-` for standard input
    #[arg(value_name = "FILE")]
    pub source: PathBuf,
    /// When the target already has a checkpoint with the same key (identical bytes count as present; unsafe next to a running hanzo-engine, see below)
    #[arg(long, value_enum, default_value_t = OnConflict::Skip)]
    pub on_conflict: OnConflict,
    /// Zero the hit counts and set last_used to now in the installed copies
    #[arg(long)]
    pub reset_stats: bool,
    /// With replace or newer, also replace ds4-agent's explicit saves (sysprompt.kv, agent-system, agent-session), which are kept otherwise
    #[arg(long)]
    pub include_agent: bool,
    /// Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE (e.g. 40G, 512MiB), never evicting what was just imported
    #[arg(long, value_name = "SIZE", value_parser = parse_budget_arg, value_hint = clap::ValueHint::Other, add = clap_complete::ArgValueCompleter::new(complete_size))]
    pub budget: Option<u64>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub dir: CacheDir,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--model`: a mainline model name (or its number).
fn parse_model(s: &str) -> Result<u8, String> {
    kvc::format::model_from_name(s).ok_or_else(|| {
        let names: Vec<&str> = kvc::format::MODEL_NAMES.iter().map(|m| m.1).collect();
        format!(
            "unknown model {s:?} (one of {}, or a number)",
            names.join(", ")
        )
    })
}

/// `--quant`: ds4 runs with 2- or 4-bit routed experts.
fn parse_quant(s: &str) -> Result<u8, String> {
    match s {
        "2" => Ok(2),
        "4" => Ok(4),
        _ => Err(format!("{s:?}: ds4's quant bits are 2 or 4")),
    }
}

const MATCH_HELP: &str = "Live settings default to ds4-server's: --ctx 32768, --min-tokens 512 \
(--kv-cache-min-tokens), model 0 (flash), quant 2 and 4 both accepted. The output prints the \
settings it assumed.\n\n\
Verdicts: chosen, not-loadable, text-longer-than-prompt, tokens-below-min, other-model, \
ctx-larger-than-live, other-quant, not-a-prefix, shorter-prefix, text-mismatch (doc/GUIDE.md, \
`kvc match`).\n\n\
Exit status: 0 a hit, 1 a miss (a full prefill), 2 bad input (no prompt file, an unreadable \
directory, a terminal on standard input).";

#[derive(Debug, Args)]
#[command(
    after_help = MATCH_HELP,
    after_long_help = long_help(MATCH_HELP, &[], "kvc match --json: doc/GUIDE.md, section `kvc match --json`")
)]
pub struct MatchArgs {
    /// File of rendered prompt bytes, as the engine receives them; `-` or absent: standard input
    #[arg(value_name = "PROMPT")]
    pub prompt: Option<PathBuf>,
    #[command(flatten)]
    pub dir: CacheDir,
    /// Live context size, as ds4-server's --ctx [default: 32768]
    #[arg(long, value_name = "N")]
    pub ctx: Option<u32>,
    /// Live model id: 0 flash, 1 pro, 2 glm-5.2 [default: 0]
    #[arg(long, value_name = "N", conflicts_with = "model")]
    pub model_id: Option<u8>,
    /// Live model by name: flash, pro, glm-5.2, laguna, qwen3.8
    #[arg(long, value_name = "NAME", value_parser = parse_model)]
    pub model: Option<u8>,
    /// Live routed-expert quant bits (2 or 4); compared only with --reject-different-quant
    #[arg(long, value_name = "BITS", value_parser = parse_quant)]
    pub quant: Option<u8>,
    /// As ds4-server's --kv-cache-reject-different-quant: skip checkpoints of other quant bits
    #[arg(long, requires = "quant")]
    pub reject_different_quant: bool,
    /// Minimum checkpoint tokens, as ds4-server's --kv-cache-min-tokens [default: 512]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub min_tokens: Option<i32>,
    #[command(flatten)]
    pub output: OutputArgs,
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

/// `kvc verify -h`: the exit status.
const VERIFY_EXIT: &str = "Exit status: 0 no error (warnings and --allow'ed codes do not count), \
1 at least one error (or, with --strict, a warning), 2 verify could not run, 3 --quarantine gave \
up waiting for another kvc's lock (--wait).";

/// `kvc verify --help` and `man kvc-verify`: the exit status, every finding
/// code with its severity and meaning (from `kvc::code`, the registry kvc
/// reports them from), and where the JSON schema is.
fn verify_long_help() -> String {
    use kvc::code::{Code, Uses};
    let mut s = format!("{VERIFY_EXIT}\n\nFinding codes (severity, meaning):\n");
    for c in Code::used_as(Uses::FINDING) {
        s.push_str(&format!(
            "\n  {} ({}): {}\n",
            c.name(),
            c.severity(),
            c.meaning().replace('`', "")
        ));
    }
    s.push_str(
        "\nJSON (--json): {dirs: [{dir, engine, findings, allowed, unloadable}], files: [{file, kind, \
key, dialect, size, findings: [{code, severity, message}], allowed, quarantined_to}], summary: \
{checkpoints, invalid, foreign, errors, warnings, allowed, ok, ...}}; the full schema is in \
doc/GUIDE.md, section `kvc verify`, \"JSON (--json)\".",
    );
    s
}

/// `--allow CODE`: a finding code of the registry.
fn parse_finding_code(s: &str) -> Result<kvc::code::Code, String> {
    use kvc::code::{Code, Uses};
    match Code::from_name(s) {
        Some(c) if c.uses().contains(Uses::FINDING) => Ok(c),
        _ => Err(format!(
            "{s:?} is not a finding code (one of {})",
            Code::used_as(Uses::FINDING)
                .map(Code::name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXIT, after_long_help = verify_long_help())]
pub struct VerifyArgs {
    /// Cache directories and/or single .kv files [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,
    /// A cache directory, as PATH (repeatable)
    #[arg(long = "dir", short = 'd', value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Vec<PathBuf>,
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
    /// Findings of this code do not count for the exit status or --strict, and are not quarantined: listed apart, counted in the summary (repeatable; codes in --help)
    #[arg(long, value_name = "CODE", value_parser = parse_finding_code)]
    pub allow: Vec<kvc::code::Code>,
    #[command(flatten)]
    pub temp_age: TempAgeArg,
    #[command(flatten)]
    pub engine: EngineArg,
    /// Move every file with an error into DIR (created 0700) with a <name>.why file; never deletes
    #[arg(long, value_name = "DIR")]
    pub quarantine: Option<PathBuf>,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

// --- stats, tree, report ---

const STATS_ABOUT: &str =
    "One screen about cache directories, as `ccache -s` or `docker system df`: \
checkpoints and bytes by reason, dialect, model, age of last use and size; how much was ever hit; \
what each of kvc's commands would free (computed by that command's own plan, so the figure is what \
it frees); the budget and the usage against it.\n\n\
With --log, also what the engine did: ds4-server's `kv cache` log lines read for hits, stores by \
reason, evictions (and how many were never read), skips, failed loads and discarded payloads, per \
day.\n\n\
stats only reads: nothing in the cache is touched, no lock is taken.";

const STATS_HELP: &str = "Reclaimable: unloadable = `kvc evict --include-unloadable`; superseded = \
`kvc rm` of the waypoints `kvc ls` marks s (policy ds4; kvc's reading at rest); stale temps = \
`kvc gc` (with the same --temp-age). Foreign files are shown apart: kvc never deletes them on its own.\n\n\
Budget: --budget, else the budget ds4-server logged when it opened this directory (`KV disk cache \
DIR (budget=N MiB, …)`, with --log); kvc's journal records no budget.\n\n\
Logs: a line is recognised by `kv cache` and read by its key=value fields; anything before the \
phrase is ignored except a time stamp at the start of the line (ds4-server's `MMDD HH:MM:SS`, ISO \
8601, syslog's `Aug  5 14:03:22`). A line without one is counted under the day of the last dated \
line of its file, or `undated`. --since/--until take 2026-08-05, 2026-08-05T14:00 (the log's own \
clock) or a duration back from now (7d); --until with a date alone includes that day.\n\n\
--prometheus writes the node_exporter textfile format to standard output; --prometheus-file PATH \
writes it atomically (temp file, fsync, rename; mode 0644 so node_exporter can read it) and prints \
nothing else. Metrics are listed in doc/GUIDE.md (`kvc stats`).";

const TREE_HELP: &str = "Each checkpoint hangs under the checkpoint whose text is the longest \
stored proper prefix of its own (same model id), found by streaming prefix hashes: no text is held. \
An empty text stands alone; equal texts hang under the first by name, marked `=`. \
Flags: s superseded waypoint (ds4's test at rest), c covered (another checkpoint extends or repeats \
its text: it holds no prefix of its own), = equal text, ? text unreadable (changed since the scan). \
Per chain, the bytes of covered checkpoints are shown.";

const REPORT_HELP: &str = "The file holds no scripts and loads nothing: tables, and charts drawn \
as inline SVG (bytes by reason and by age of last use, size against last use coloured by eviction \
rank, the largest prefix chains, and with --log writes, hits and evictions per day). Every text \
taken from a checkpoint or a log is sanitized and HTML-escaped. It is written atomically, mode 0600 \
(titles are prompt text).";

/// `--log`, `--since`, `--until`: the engine's log lines.
#[derive(Debug, Args, Clone)]
pub struct EngineLogArgs {
    /// ds4-server log to read (repeatable; `-` for standard input)
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log's clock) or a duration back from now (7d)
    #[arg(long, value_name = "WHEN", requires = "logs")]
    pub since: Option<String>,
    /// Only log lines before WHEN (a date alone includes that day)
    #[arg(long, value_name = "WHEN", requires = "logs")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Cache directories [default: $KVC_DIR, else ~/.ds4/kvcache]
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dirs: Vec<PathBuf>,
    /// A cache directory, as DIR (repeatable)
    #[arg(long = "dir", short = 'd', value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Vec<PathBuf>,
    /// Compare what the engine's budget counts with SIZE, and say what `kvc evict --budget SIZE` would delete
    #[arg(long, value_name = "SIZE", value_parser = parse_budget_arg, add = clap_complete::ArgValueCompleter::new(complete_size))]
    pub budget: Option<u64>,
    #[command(flatten)]
    pub log: EngineLogArgs,
    #[command(flatten)]
    pub temp_age: TempAgeArg,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write the node_exporter textfile format (metrics kvc_…) to standard output
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    /// Write the node_exporter textfile format to PATH, atomically, mode 0644; print nothing else
    #[arg(long, value_name = "PATH", conflicts_with_all = ["json", "prometheus"])]
    pub prometheus_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    /// Write Graphviz DOT instead of a table (`kvc tree --dot | dot -Tsvg > tree.svg`)
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// Do not show titles (each text's first user turn)
    #[arg(long)]
    pub no_title: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    /// HTML file to write (atomically, mode 0600)
    #[arg(long = "output", short = 'o', value_name = "FILE")]
    pub out_file: PathBuf,
    /// Budget to show the usage against (as `kvc stats --budget`)
    #[arg(long, value_name = "SIZE", value_parser = parse_budget_arg, add = clap_complete::ArgValueCompleter::new(complete_size))]
    pub budget: Option<u64>,
    #[command(flatten)]
    pub log: EngineLogArgs,
    #[command(flatten)]
    pub temp_age: TempAgeArg,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
}

// --- dynamic completion (`COMPLETE=bash kvc`, `kvc completions --dynamic`) ---

/// The words of the command line being completed: what follows `--` in
/// clap's completion protocol (`COMPLETE=bash kvc -- kvc show 3fa2 -d
/// DIR`). clap gives a value completer only the word being completed, so
/// the `--dir` typed before (or after) it is read from here.
fn completed_words() -> Vec<String> {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The cache directory of the command line being completed: its `--dir`
/// or `-d`, else `$KVC_DIR`, else `~/.ds4/kvcache` (as the command would).
fn completion_dir() -> Option<PathBuf> {
    let words = completed_words();
    let mut given = None;
    for (i, w) in words.iter().enumerate() {
        if let Some(d) = w.strip_prefix("--dir=") {
            given = Some(PathBuf::from(d));
        } else if w == "--dir" || w == "-d" {
            if let Some(d) = words.get(i + 1) {
                given = Some(PathBuf::from(d));
            }
        }
    }
    given
        .filter(|d| d.is_dir())
        .or_else(kvc::resolve::default_dir)
}

/// KEY completion: the keys of the cache directory that start with what is
/// typed (any case), `sysprompt` when the directory has it; what looks like
/// a path (a `/`, a leading `.` or `~`) completes as a path.
fn complete_key(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    use clap_complete::engine::ValueCompleter;
    let Some(typed) = current.to_str() else {
        return Vec::new();
    };
    if typed.contains('/') || typed.starts_with('.') || typed.starts_with('~') {
        return clap_complete::PathCompleter::any().complete(current);
    }
    let Some(dir) = completion_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let wanted = typed.to_ascii_lowercase();
    let mut keys: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| kvc::Key::from_file_name(&e.file_name().to_string_lossy()))
        .map(|k| k.to_string())
        .filter(|k| k.starts_with(&wanted))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(clap_complete::CompletionCandidate::new)
        .collect()
}

/// The units a number typed for a size can take, binary first.
const SIZE_UNITS: [&str; 8] = ["KiB", "MiB", "GiB", "TiB", "kB", "MB", "GB", "TB"];

/// The number typed, when the word is one (`40`, `1.5`): what a size or a
/// limit completes from.
fn typed_number(current: &std::ffi::OsStr) -> Option<&str> {
    let t = current.to_str()?;
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        && t.chars().next().is_some_and(|c| c.is_ascii_digit());
    ok.then_some(t)
}

/// SIZE completion: a number completes to that number in each unit (a
/// bare number is refused: a unit is needed).
fn complete_size(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    let Some(n) = typed_number(current) else {
        return Vec::new();
    };
    SIZE_UNITS
        .iter()
        .map(|u| clap_complete::CompletionCandidate::new(format!("{n}{u}")))
        .collect()
}

/// `--max-delete` completion: a number completes to a share, a count of
/// files, or a size.
fn complete_limit(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    let Some(n) = typed_number(current) else {
        return Vec::new();
    };
    let mut out = vec![clap_complete::CompletionCandidate::new(format!("{n}%"))
        .help(Some("a share of the directory's bytes".into()))];
    if n.chars().all(|c| c.is_ascii_digit()) {
        out.push(clap_complete::CompletionCandidate::new(n).help(Some("files".into())));
    }
    out.extend(complete_size(current));
    out
}

// --- remotes: push, pull, remote ls|rm|gc ---

/// Where the checkpoints are shared, and what this host may do there.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)
    #[arg(long, value_name = "URL", env = "KVC_REMOTE", value_hint = clap::ValueHint::Url)]
    pub remote: Option<String>,
    /// Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull
    #[arg(long, env = "KVC_REMOTE_READ_ONLY")]
    pub read_only: bool,
    /// Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)
    #[arg(long)]
    pub allow_http: bool,
}

const REMOTE_ENV_HELP: &str = "Remote: --remote or $KVC_REMOTE, s3://bucket/prefix. Credentials, \
region and endpoint come from the environment as the AWS tools read it: AWS_ACCESS_KEY_ID, \
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (default us-east-1), AWS_ENDPOINT_URL for \
MinIO, Ceph RGW, R2 and other S3-compatible stores (path-style requests), web identity and container \
credentials. Profiles in ~/.aws are not read; on EC2 the instance role is used only with \
AWS_EC2_METADATA_DISABLED=false. Plain http:// endpoints are allowed on this host only, unless \
--allow-http.";

const PUSH_ABOUT: &str = "Upload the checkpoints a remote lacks: one object per checkpoint, \
<prefix>/<model or dialect>/<key>.kv, with a record (BLAKE3 digests, size, header, title, who \
pushed it and when) as its metadata.\n\n\
Every file is read once and checked as `kvc export` checks it (dialect, envelope, the name its \
content gives it) before anything is sent; --exclude-text patterns are matched against its text \
then. Files up to 8 MiB go as one conditional PUT; larger ones as a multipart upload of 8 MiB parts \
(two in flight: about 24 MiB of memory whatever the size), read a second time and checked to be the \
same bytes, completed only if no object has the name yet: when two hosts push one checkpoint, the \
first wins and the second reports it present. An interrupted upload resumes where it stopped on \
the next push (its state is in <cache>/.kvc/uploads/; `kvc remote gc` aborts uploads nobody \
resumed).\n\n\
Pushed checkpoints are journaled in the cache (`kvc log`: op push).";

const PUSH_HELP: &str = "Examples:\n  kvc push --all --remote s3://kv-fleet/prod\n  \
kvc push 3fa2 --exclude-text '(?i)api[_-]?key' --exclude-text '\\b\\d{3}-\\d{2}-\\d{4}\\b'\n\n\
--exclude-text takes the regex crate's syntax, matched anywhere in the stored text as it streams \
(any length of match, constant memory); `.` is a UTF-8 character, (?-u:.) any byte, (?i) ignores \
case. A match is `excluded` (exit 0): nothing of the file is sent.\n\n\
Exit status: 0 everything selected is on the remote or excluded; 1 a file was rejected, an upload \
failed (run push again: it resumes) or the pushes could not be journaled in the cache; 2 usage, \
remote or I/O error (e.g. no credentials).";

const PULL_ABOUT: &str = "Download checkpoints from a remote into a cache, each streamed into a \
temp file in the cache and renamed into place (0600, fsynced, under the cache's lock) only after \
its size, its BLAKE3 digests and its header agree with the record it was pushed with, and its \
bytes pass the checks `kvc import` makes (dialect, envelope, the name its content gives it). \
Anything else is rejected and leaves nothing behind.\n\n\
A checkpoint whose text, payload and trailers are already in the cache is `present` and not \
downloaded (hit counts may differ). Another copy under the key is kept or replaced per \
--on-conflict, as with import.";

const PULL_HELP: &str =
    "Examples:\n  kvc pull --all --remote s3://kv-fleet/prod -d /var/cache/ds4-kv\n  \
kvc pull --match prompt.txt --budget 40G\n\n\
--match PROMPT pulls the checkpoint ds4 mainline's lookup would load for the rendered prompt if \
the remote's checkpoints were in the cache (`kvc match`: its filters, then the longest text whose \
SHA-1 is the prompt's prefix); --model, --ctx, --min-tokens and --quant set the live engine's \
settings (defaults as ds4-server's: flash, 32768, 512, any). A prompt the remote has no checkpoint \
for is a miss: exit 1.\n\n\
Exit status: 0 everything selected is in the cache; 1 an object was rejected, --match missed, or \
--budget could not be met; 2 usage, remote or I/O error; 3 gave up waiting for the cache's lock.";

#[derive(Debug, Args)]
#[command(after_help = REMOTE_ENV_HELP)]
pub struct PushArgs {
    /// Keys, unique key prefixes (4+ hex digits) or `sysprompt`
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,
    /// Every checkpoint of the directory (filters still apply)
    #[arg(long, conflicts_with = "keys")]
    pub all: bool,
    /// Only checkpoints saved for this reason (repeatable: any of them)
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    pub reason: Vec<kvc::Reason>,
    /// Only checkpoints of at least N tokens
    #[arg(long, value_name = "N")]
    pub min_tokens: Option<u32>,
    /// Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other)]
    pub used_within: Option<Duration>,
    /// Only checkpoints with these routed-expert quant bits
    #[arg(long, value_name = "BITS")]
    pub quant: Option<u8>,
    /// Never send a checkpoint whose stored text matches REGEX (repeatable; checked before upload)
    #[arg(long = "exclude-text", value_name = "REGEX")]
    pub exclude_text: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub engine: EngineArg,
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").args(["keys", "all", "prompt"]).multiple(false)))]
pub struct PullArgs {
    /// Keys or unique key prefixes (4+ hex digits) of the remote's checkpoints, or `sysprompt`
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,
    /// Every checkpoint of the remote (filters still apply)
    #[arg(long)]
    pub all: bool,
    /// The checkpoint ds4 mainline would load for this rendered prompt (a file; `-` for standard input)
    #[arg(long = "match", value_name = "PROMPT")]
    pub prompt: Option<PathBuf>,
    /// Only this model's checkpoints (flash, pro, glm-5.2, …, or a dialect such as d20: the remote's namespaces); with --match, the live model
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Only checkpoints saved for this reason (repeatable: any of them)
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    pub reason: Vec<kvc::Reason>,
    /// Only checkpoints of at least N tokens (with --match: ds4-server's --kv-cache-min-tokens, default 512)
    #[arg(long, value_name = "N")]
    pub min_tokens: Option<u32>,
    /// Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other)]
    pub used_within: Option<Duration>,
    /// Only checkpoints with these routed-expert quant bits (with --match: as --kv-cache-reject-different-quant)
    #[arg(long, value_name = "BITS")]
    pub quant: Option<u8>,
    /// With --match: the live context size, as ds4-server's --ctx [default: 32768]
    #[arg(long, value_name = "N", requires = "prompt")]
    pub ctx: Option<u32>,
    /// When the cache already has another copy under the key (the same text, payload and trailers count as present)
    #[arg(long, value_enum, default_value_t = OnConflict::Skip)]
    pub on_conflict: OnConflict,
    /// Zero the hit counts and set last_used to now in the installed copies
    #[arg(long)]
    pub reset_stats: bool,
    /// With replace or newer, also replace ds4-agent's explicit saves (sysprompt.kv, agent-system, agent-session)
    #[arg(long)]
    pub include_agent: bool,
    /// Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE, never evicting what was just pulled
    #[arg(long, value_name = "SIZE", value_parser = parse_budget_arg, value_hint = clap::ValueHint::Other)]
    pub budget: Option<u64>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// List a remote's checkpoints with `kvc ls`'s columns and JSON, one table per namespace
    #[command(after_help = REMOTE_LS_HELP)]
    Ls(RemoteLsArgs),
    /// Delete checkpoints from a remote by key
    #[command(after_help = REMOTE_ENV_HELP)]
    Rm(RemoteRmArgs),
    /// Trim a remote by age and size, and abort abandoned multipart uploads
    #[command(after_help = REMOTE_GC_HELP)]
    Gc(RemoteGcArgs),
}

const REMOTE_LS_HELP: &str = "Each namespace (a model, or a dialect) is listed as `kvc ls` lists a \
cache directory, from the objects' records (a HEAD request per object, 16 at a time): the same \
columns, flags and JSON schema, with the object's URL as `path`. Score and rank are what the policy \
would give the checkpoints in a cache; nothing evicts a remote but `kvc remote gc`. Objects named \
as checkpoints whose record is missing or wrong are `invalid` (bad-record); other objects under \
the prefix are strays, never touched.";

const REMOTE_GC_HELP: &str = "As ccache's --trim-dir for a shared store: --max-age deletes \
checkpoints whose last sign of use (the later of their push and the last_used their header \
recorded) is older; --max-size then deletes the oldest until the rest fit. Only objects with a \
checkpoint name in a namespace are deleted, never other objects under the prefix.\n\n\
Multipart uploads of kvc objects initiated longer ago than --uploads-older-than are aborted (an \
interrupted push resumes its upload until then). On AWS, a lifecycle rule \
(AbortIncompleteMultipartUpload) does the same server-side.\n\n\
Pulls leave no trace on a remote: hosts that pull a checkpoint do not make it younger. Run gc \
from one host, e.g. daily from cron.";

/// How a listing orders and shows its rows: `kvc ls` and `kvc remote ls`.
#[derive(Clone, Copy, Debug, Args)]
pub struct RowArgs {
    /// Order of the rows
    #[arg(long, value_enum, default_value_t = SortKey::Score)]
    pub sort: SortKey,
    /// Reverse the order
    #[arg(long, short = 'r')]
    pub reverse: bool,
    /// Full keys, absolute times, model id and payload ABI
    #[arg(long, short = 'l')]
    pub long: bool,
}

#[derive(Debug, Args)]
pub struct RemoteLsArgs {
    /// Only this namespace (flash, pro, glm-5.2, …, or a dialect such as d20)
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Print only the full keys, one per line
    #[arg(long, short = 'q', conflicts_with = "json")]
    pub quiet: bool,
    #[command(flatten)]
    pub rows: RowArgs,
    /// Do not show titles
    #[arg(long)]
    pub no_title: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub quant: QuantArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RemoteRmArgs {
    /// Keys or unique key prefixes (4+ hex digits), or `sysprompt`: every namespace's object of that key
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// Only in this namespace (flash, pro, glm-5.2, …, d20)
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RemoteGcArgs {
    /// Delete checkpoints not seen in use for longer than DURATION (30d, 12h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other)]
    pub max_age: Option<Duration>,
    /// Then delete the oldest until the checkpoints take at most SIZE (500G, 1.5T)
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, value_hint = clap::ValueHint::Other)]
    pub max_size: Option<u64>,
    /// Abort multipart uploads started longer ago than DURATION
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, value_hint = clap::ValueHint::Other, default_value = "1d")]
    pub uploads_older_than: Duration,
    /// Only in this namespace (flash, pro, glm-5.2, …, d20)
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub dry_run: DryRunArg,
    #[command(flatten)]
    pub clock: ClockArg,
    #[command(flatten)]
    pub output: OutputArgs,
}
