//! `kvc show`: every header field with its meaning, the trailer, the DSV4
//! payload header, and notes on anything inconsistent.
//!
//! `show` works on broken files too: it displays whatever can be read and
//! says what is wrong (the findings of `kvc verify`), instead of refusing.

use crate::cli::ShowArgs;
use crate::config;
use crate::output::{self, CheckpointView, Report};
use crate::Outcome;
use anyhow::{Context, Result};
use comfy_table::Cell;
use kvc::finding::Finding;
use kvc::format::checkpoint::{CheckpointFile, Key, OpenError};
use kvc::format::dsv4::Dsv4Header;
use kvc::format::trailer::ToolMap;
use kvc::policy::{self, Policy, Standing};
use kvc::resolve;
use kvc::scan::{self, Checkpoint, ScanOptions};
use kvc::text::{self, sanitize_line, sanitize_text};
use kvc::verify::{self, VerifyOptions};
use serde::Serialize;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Serialize)]
struct ToolMapEntryView {
    id: String,
    dsml_bytes: usize,
    in_text: bool,
}

#[derive(Serialize)]
struct TrailerView {
    /// Bytes after the payload.
    bytes: u64,
    /// Whether ext bit 0 announces a tool-id map.
    flagged: bool,
    /// Why the bytes do not decode as one KTM section, when they do not.
    error: Option<String>,
    entries: Vec<ToolMapEntryView>,
}

#[derive(Serialize)]
struct PayloadView {
    /// `dsv4` or `opaque`.
    kind: &'static str,
    dsv4: Option<Dsv4Header>,
    n_comp: Option<Vec<u32>>,
    n_index: Option<Vec<u32>>,
    /// The payload size its DSV4 layout implies.
    exact_size: Option<u64>,
}

#[derive(Serialize)]
struct ShowReport {
    #[serde(flatten)]
    checkpoint: CheckpointView,
    trailer: Option<TrailerView>,
    payload: Option<PayloadView>,
    /// Everything inconsistent, one line each: the messages of `findings`,
    /// plus a note when the file name is not a checkpoint name.
    notes: Vec<String>,
    /// What `kvc verify` (default mode) finds in this file.
    findings: Vec<Finding>,
    /// The sanitized full text, with `--text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

fn locate(args: &ShowArgs) -> Result<PathBuf> {
    if resolve::looks_like_path(&args.key) {
        return Ok(resolve::resolve(Path::new("."), &args.key)?);
    }
    let dir = config::dir_or_default(args.dir.dir.clone())?;
    Ok(resolve::resolve(&dir, &args.key)?)
}

/// The checkpoint's score and rank among its directory's checkpoints.
fn standing_in_dir(path: &Path, key: &Key, policy: Policy, now: u64) -> Standing {
    let unranked = Standing {
        score: None,
        superseded: false,
        rank: None,
    };
    let Some(dir) = path.parent() else {
        return unranked;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(mut scan) = scan::scan_dir(dir, ScanOptions::default()) else {
        return unranked;
    };
    policy::load_needed_texts(policy, &mut scan.checkpoints);
    let standings = policy::standings(policy, &scan.checkpoints, now, |c| c.is_agent_save());
    scan.checkpoints
        .iter()
        .position(|c| &c.key == key && c.path.file_name() == path.file_name())
        .map_or(unranked, |i| standings[i])
}

/// What follows the payload, for display (what is wrong with it comes
/// from `kvc verify`'s checks).
fn trailer_view(cf: &CheckpointFile, text: Option<&[u8]>) -> Result<Option<TrailerView>> {
    let len = cf.trailer_len();
    if len == 0 {
        return Ok(None);
    }
    let bytes = cf
        .read_trailer()
        .with_context(|| cf.path.display().to_string())?;
    let mut view = TrailerView {
        bytes: len,
        flagged: cf.header.ext_flags.has_tool_map(),
        error: None,
        entries: Vec::new(),
    };
    match ToolMap::decode(&bytes) {
        Ok(map) => {
            view.entries = map
                .entries
                .iter()
                .map(|e| ToolMapEntryView {
                    id: sanitize_line(&e.id),
                    dsml_bytes: e.dsml.len(),
                    in_text: text.is_some_and(|t| text::contains(t, &e.dsml)),
                })
                .collect();
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    Ok(Some(view))
}

/// The DSV4 header and count arrays, for display.
fn payload_view(cf: &CheckpointFile) -> Result<PayloadView> {
    let layout = cf
        .read_dsv4()
        .with_context(|| cf.path.display().to_string())?;
    let Some(layout) = layout else {
        return Ok(PayloadView {
            kind: "opaque",
            dsv4: None,
            n_comp: None,
            n_index: None,
            exact_size: None,
        });
    };
    let exact_size = layout.exact_size();
    let (n_comp, n_index) = layout.counts.unzip();
    Ok(PayloadView {
        kind: "dsv4",
        dsv4: Some(layout.header),
        n_comp,
        n_index,
        exact_size,
    })
}

pub fn run(args: ShowArgs) -> Result<Outcome> {
    let path = locate(&args)?;
    let policy: Policy = args.policy.policy.into();
    let now = config::now_or_clock(args.policy.now)?;
    let cf = match CheckpointFile::open_unchecked(&path) {
        Ok(cf) => cf,
        Err(OpenError::Io(e)) => return Err(e).context(path.display().to_string()),
        Err(OpenError::Defect(d)) => anyhow::bail!("{}: {d}", path.display()),
    };
    // What is wrong is what `kvc verify` finds: one definition of every
    // check, so show and verify never disagree about a file.
    let verify_opts = VerifyOptions {
        now,
        ..VerifyOptions::default()
    };
    let findings = verify::check_file(&path, &verify_opts)
        .with_context(|| format!("{}: vanished while being read", path.display()))?
        .findings;
    let mut notes: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    let envelope_ok = cf.check_envelope().is_ok();
    let text = match cf.check_envelope() {
        Err(kvc::Defect::TextLength { .. }) => None,
        _ => Some(cf.read_text().with_context(|| path.display().to_string())?),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = match (Key::from_file_name(&name), &text) {
        (Some(k), _) => k,
        (None, Some(t)) => {
            notes.push("the file name is not <sha1>.kv or sysprompt.kv: engines ignore it".into());
            Key::of_text(t)
        }
        (None, None) => anyhow::bail!(
            "{}: not a checkpoint name and no readable text",
            path.display()
        ),
    };
    let (trailer, payload) = if envelope_ok {
        (
            trailer_view(&cf, text.as_deref())?,
            Some(payload_view(&cf)?),
        )
    } else {
        (None, None)
    };
    let mode = std::fs::metadata(&path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0);
    let standing = if envelope_ok {
        standing_in_dir(&path, &key, policy, now)
    } else {
        Standing {
            score: None,
            superseded: false,
            rank: None,
        }
    };
    let checkpoint = Checkpoint {
        key,
        file: name,
        path: path.clone(),
        size: cf.size,
        mode,
        header: cf.header.clone(),
        text_len: cf.text_len,
        text,
    };
    let view = CheckpointView::new(&checkpoint, &standing, now);
    let report = ShowReport {
        text: if args.text {
            checkpoint.text.as_deref().map(sanitize_text)
        } else {
            None
        },
        checkpoint: view,
        trailer,
        payload,
        notes,
        findings,
    };
    output::emit(&report, args.output.json)?;
    Ok(Outcome::Clean)
}

impl Report for ShowReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.checkpoint;
        let mut t = output::table(&["FIELD", "VALUE", "MEANING"]);
        let mut row = |f: &str, v: String, m: &str| {
            t.add_row(vec![Cell::new(f), Cell::new(v), Cell::new(m)]);
        };
        row(
            "file",
            c.path.clone(),
            &format!("{}, mode {}", output::size(c.size), c.mode),
        );
        row(
            "key",
            c.key.clone(),
            "SHA-1 of the text (sysprompt: fixed name)",
        );
        row(
            "dialect",
            c.dialect.clone(),
            "writer, guessed from field values",
        );
        row(
            "reason",
            format!("{} ({})", c.reason, c.reason_code),
            "why the engine saved it",
        );
        row(
            "quant_bits",
            c.quant_bits.to_string(),
            "routed-expert quant bits (ds4: 2 or 4; hanzo-engine: 0)",
        );
        row(
            "ext_flags",
            format!("0x{:02x} {}", c.ext_flags, c.flags.join(",")),
            "bit 0 tool-map, bit 1 responses-visible, bit 2 thinking-visible",
        );
        row(
            "model_id",
            c.model_id.to_string(),
            "0 in ds4 and hanzo-engine; a model id in forks",
        );
        row("tokens", c.tokens.to_string(), "tokens in the checkpoint");
        row("hits", c.hits.to_string(), "times the engine loaded it");
        row(
            "ctx_size",
            c.ctx_size.to_string(),
            "context size it was written for",
        );
        row(
            "payload_abi",
            c.payload_abi.to_string(),
            "0 in ds4; payload ABI in forks",
        );
        row(
            "created",
            format!("{} ({})", output::timestamp(c.created), c.created),
            "Unix seconds",
        );
        row(
            "last_used",
            format!("{} ({})", output::timestamp(c.last_used), c.last_used),
            "Unix seconds",
        );
        row(
            "payload_bytes",
            c.payload_bytes.to_string(),
            "engine payload length",
        );
        row(
            "text_bytes",
            c.text_bytes.to_string(),
            "stored prompt text length",
        );
        row(
            "title",
            c.title.clone().unwrap_or_default(),
            "first user turn, sanitized",
        );
        row(
            "score",
            output::score(c.score),
            "eviction score (lower goes first)",
        );
        row(
            "evict_rank",
            c.evict_rank.map_or("-".into(), |r| r.to_string()),
            if c.agent_save {
                "agent save: not evicted"
            } else {
                "1 = evicted first in its directory"
            },
        );
        output::write_table(out, &t)?;
        if let Some(tr) = &self.trailer {
            writeln!(out, "\ntrailer: {} bytes after the payload", tr.bytes)?;
            if let Some(e) = &tr.error {
                writeln!(out, "  not a tool-id map: {e}")?;
            }
            if !tr.entries.is_empty() {
                let mut t = output::table(&["ID", "DSML BYTES", "IN TEXT"]);
                for e in &tr.entries {
                    t.add_row(vec![
                        Cell::new(&e.id),
                        Cell::new(e.dsml_bytes),
                        Cell::new(if e.in_text { "yes" } else { "no" }),
                    ]);
                }
                output::align_right(&mut t, &[1]);
                output::write_table(out, &t)?;
            }
        }
        if let Some(p) = &self.payload {
            match &p.dsv4 {
                None => writeln!(out, "\npayload: opaque (no DSV4 magic)")?,
                Some(d) => {
                    writeln!(
                        out,
                        "\npayload: DSV4 v{} ctx {} tokens {} layers {} head_dim {} indexer_head_dim {} vocab {}",
                        d.version, d.ctx, d.tokens, d.layers, d.head_dim, d.indexer_head_dim, d.vocab
                    )?;
                    writeln!(
                        out,
                        "  prefill_chunk {} raw_cap {} raw_window {} raw_live {} comp_cap {}",
                        d.prefill_chunk, d.raw_cap, d.raw_window, d.raw_live, d.comp_cap
                    )?;
                    if let (Some(c), Some(i)) = (&p.n_comp, &p.n_index) {
                        writeln!(out, "  n_comp {c:?} n_index {i:?}")?;
                    }
                    if let Some(s) = p.exact_size {
                        writeln!(out, "  exact size {s} bytes")?;
                    }
                }
            }
        }
        if self.notes.is_empty() {
            writeln!(out, "\nnotes: none, the checkpoint is consistent")?;
        } else {
            writeln!(out, "\nnotes:")?;
            for n in &self.notes {
                writeln!(out, "  - {n}")?;
            }
        }
        if let Some(t) = &self.text {
            writeln!(out, "\ntext:\n{t}")?;
        }
        Ok(())
    }
}
