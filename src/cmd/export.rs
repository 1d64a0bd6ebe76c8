//! `kvc export`: selected checkpoints out as one bundle (format and
//! guarantees in `kvc::bundle`). Read-only for the cache.

use crate::cli::ExportArgs;
use crate::config;
use crate::output::{self, Exporter, HumanExporter, InvalidView, JsonExporter, Report};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use kvc::bundle::{self, EntryRecord, Excluded, LeftForeign, Selection, StreamOut};
use kvc::fsutil::AtomicFile;
use kvc::resolve;
use serde::Serialize;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The byte-counting progress bar of `export` and `import`
/// (`output::progress_bytes`: on a terminal only), made when the total is
/// known.
pub(crate) struct Bar {
    label: &'static str,
    bar: Option<ProgressBar>,
}

impl Bar {
    pub(crate) fn new(label: &'static str) -> Bar {
        Bar { label, bar: None }
    }
}

impl bundle::Progress for Bar {
    fn begin(&mut self, total: Option<u64>) {
        self.bar = output::progress_bytes(self.label, total);
    }
    fn entry(&mut self, name: &str) {
        if let Some(b) = &self.bar {
            b.set_message(name.chars().take(16).collect::<String>());
        }
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn warn(&mut self, message: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("kvc: warning: {message}")),
            None => eprintln!("kvc: warning: {message}"),
        }
    }
    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[derive(Serialize)]
struct ExportView {
    dir: String,
    /// The bundle file, or `-` for standard output.
    output: String,
    exported_at: u64,
    /// Checkpoints in the bundle, as their digest records.
    entries: Vec<EntryRecord>,
    bytes: u64,
    excluded: Vec<Excluded>,
    vanished: Vec<String>,
    /// Files named by a KEY argument that are not valid checkpoints.
    invalid: Vec<InvalidView>,
    /// Files of dialects kvc does not read, left out: named by a KEY
    /// (`named`: an error) or met by `--all` or a filter (a note).
    foreign: Vec<LeftForeign>,
}

impl Report for ExportView {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = self.entries.len();
        writeln!(
            out,
            "exported {n} checkpoint{} ({}) to {}",
            if n == 1 { "" } else { "s" },
            output::size(self.bytes),
            if self.output == "-" {
                "standard output"
            } else {
                &self.output
            }
        )?;
        for e in &self.excluded {
            let where_ = if e.in_bundle {
                " (its bytes were already sent: marked excluded, import rejects them)"
            } else {
                " (left out of the bundle)"
            };
            writeln!(out, "excluded: {}: {}{where_}", e.file, e.problem)?;
        }
        for v in &self.vanished {
            writeln!(out, "vanished: {v} (evicted or consumed meanwhile)")?;
        }
        for i in &self.invalid {
            writeln!(out, "invalid: {}: {} (not exported)", i.file, i.error)?;
        }
        for f in &self.foreign {
            writeln!(
                out,
                "foreign: {}: {} (not exported: kvc exports only checkpoints it can verify)",
                f.file, f.what
            )?;
        }
        Ok(())
    }
}

/// Where `-o` sends the bundle.
enum Dest {
    /// `-o -` (refused on a terminal).
    Stdout,
    /// An existing device, FIFO or socket (`-o /dev/null`, `-o >(ssh …)`):
    /// written into as it is, as tar does. Renaming a temp file over it
    /// would replace a device node with a regular file.
    Stream(File),
    /// A regular file (new or existing) or a symlink to one: written as a
    /// temp file beside it and renamed into place, so a half-written bundle
    /// never carries the name. A symlink's target is replaced, not the link.
    Atomic(PathBuf),
}

fn destination(out: &Path) -> Result<Dest> {
    if out.as_os_str() == "-" {
        if io::stdout().is_terminal() {
            bail!(
                "refusing to write a bundle to a terminal: redirect standard output or use -o FILE"
            );
        }
        return Ok(Dest::Stdout);
    }
    match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => bail!("{}: is a directory; -o takes a file name", out.display()),
        Ok(m) if !m.is_file() => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .with_context(|| format!("{}: cannot open for writing", out.display()))?;
            if file.metadata().is_ok_and(|m| m.is_file()) {
                bail!("{}: changed while being opened", out.display());
            }
            Ok(Dest::Stream(file))
        }
        Ok(_) => Ok(Dest::Atomic(
            std::fs::canonicalize(out).with_context(|| out.display().to_string())?,
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Dest::Atomic(out.to_path_buf())),
        Err(e) => Err(e).with_context(|| out.display().to_string()),
    }
}

/// Export into a stream that cannot be taken back (a pipe or a device).
fn stream(
    selected: &bundle::Selected,
    file: File,
    label: &Path,
    now: u64,
    bar: &mut Bar,
) -> Result<bundle::ExportReport> {
    match bundle::export(&selected.checkpoints, StreamOut(file), label, now, bar) {
        Ok((report, _)) => Ok(report),
        // `main` treats a broken pipe as a reader that had enough (`kvc
        // ls | head`). Here the reader is the other end of a transfer: the
        // bundle did not arrive, so say so without the io::Error that would
        // turn it into exit 0.
        Err(kvc::Error::Io { err, .. }) if err.kind() == io::ErrorKind::BrokenPipe => {
            bail!(
                "{}: closed before the bundle was complete: nothing usable was sent",
                label.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// KEY arguments through the one resolver (`kvc::resolve::locate`): keys
/// and prefixes stay as they are (they resolve among the directory's
/// names), a path or a `<key>.kv` name becomes its key. A bundle holds the
/// checkpoints of one directory: without a directory given, the one the
/// first path names; every path must be in it.
fn export_keys(keys: Vec<String>, dir: Option<PathBuf>) -> Result<(Vec<String>, PathBuf)> {
    let is_path = |k: &str| k.contains('/') || k.ends_with(".kv");
    let mut dir = dir;
    let mut out = Vec::with_capacity(keys.len());
    let mut from_paths: Option<PathBuf> = None;
    for k in keys {
        if !is_path(&k) {
            out.push(k);
            continue;
        }
        let located = resolve::locate(&k, dir.as_deref(), config::default_dir)?;
        let path = located.path;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(key) = kvc::Key::from_file_name(&name) else {
            bail!(
                "{}: not a checkpoint name (<40 hex digits>.kv or sysprompt.kv)",
                path.display()
            );
        };
        let parent = kvc::session::parent_dir(&path).to_path_buf();
        let canonical = std::fs::canonicalize(&parent).map_err(|e| kvc::Error::io(&parent, e))?;
        match &from_paths {
            None => from_paths = Some(canonical),
            Some(first) if *first != canonical => bail!(
                "{}: not in {}: a bundle holds the checkpoints of one directory",
                path.display(),
                first.display()
            ),
            Some(_) => {}
        }
        if dir.is_none() {
            dir = Some(parent);
        }
        out.push(key.to_string());
    }
    let dir = config::dir_or_default(dir)?;
    if let Some(first) = from_paths {
        let canonical = std::fs::canonicalize(&dir).map_err(|e| kvc::Error::io(&dir, e))?;
        if canonical != first {
            bail!(
                "{}: the checkpoints named are in {}: a bundle holds the checkpoints of one directory",
                dir.display(),
                first.display()
            );
        }
    }
    Ok((out, dir))
}

pub fn run(args: ExportArgs) -> Result<Outcome> {
    let filtered = !args.reason.is_empty()
        || args.min_tokens.is_some()
        || args.used_within.is_some()
        || args.quant.is_some();
    let (keys, dir) = config::keys_and_dir(args.keys, args.dir.dir, args.all || filtered)?;
    if args.all && !keys.is_empty() {
        bail!(
            "--all takes no KEY, only the cache directory: {}",
            keys.join(" ")
        );
    }
    let (keys, dir) = export_keys(keys, dir)?;
    let now = config::now_or_clock(args.clock.now)?;
    let sel = Selection {
        keys,
        all: args.all,
        reasons: args.reason,
        min_tokens: args.min_tokens,
        used_within: args.used_within,
        quant: args.quant,
    };
    let dest = destination(&args.out_file)?;
    let to_stdout = matches!(dest, Dest::Stdout);
    let selected = bundle::select(&dir, &sel, now)?;
    let mut bar = Bar::new("export");
    let report = match dest {
        Dest::Stdout => {
            // Our own descriptor for stdout: unbuffered by std, so the
            // bundle goes out in the library's large writes, not line by line.
            let fd = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("standard output")?;
            kvc::fsutil::grow_pipe(fd.as_fd());
            stream(
                &selected,
                File::from(fd),
                Path::new("standard output"),
                now,
                &mut bar,
            )?
        }
        Dest::Stream(file) => stream(&selected, file, &args.out_file, now, &mut bar)?,
        Dest::Atomic(path) => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a usable file name", path.display()))?;
            let parent = kvc::session::parent_dir(&path);
            let tmp = AtomicFile::create(parent, name)
                .with_context(|| format!("{}: cannot create", parent.join(name).display()))?;
            let (report, tmp) = bundle::export(&selected.checkpoints, tmp, &path, now, &mut bar)?;
            tmp.commit()
                .with_context(|| format!("{}: cannot write", path.display()))?;
            report
        }
    };
    let problems = !report.excluded.is_empty()
        || !selected.invalid.is_empty()
        || selected.foreign.iter().any(|f| f.named);
    let view = ExportView {
        dir: dir.display().to_string(),
        output: args.out_file.display().to_string(),
        exported_at: report.exported_at,
        bytes: report.bytes,
        entries: report.entries,
        excluded: report.excluded,
        vanished: report.vanished,
        invalid: selected.invalid.iter().map(InvalidView::from).collect(),
        foreign: selected.foreign,
    };
    if to_stdout {
        // Standard output carries the bundle: the report goes to stderr.
        let mut err = io::stderr().lock();
        if args.output.json {
            JsonExporter.export(&view, &mut err)?;
        } else {
            HumanExporter.export(&view, &mut err)?;
        }
    } else {
        output::emit(&view, args.output.json)?;
    }
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
