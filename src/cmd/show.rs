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
use kvc::format::dialect::{DialectId, Engine};
use kvc::format::dsv4::{self, Dsv4Header};
use kvc::format::trailer::{self as trailers, SessionTitle};
use kvc::policy::{Policy, PolicyFrom, RankOptions, Standing};
use kvc::resolve;
use kvc::scan::{self, Checkpoint, ScanOptions};
use kvc::text::{self, sanitize_line, sanitize_text};
use kvc::verify::{self, VerifyOptions};
use serde::Serialize;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
    /// `tool-map` (ext bit 0), `session-title` (ext bit 3), or `none`
    /// (bytes no flag announces).
    kind: &'static str,
    /// Whether ext bit 0 announces a tool-id map.
    flagged: bool,
    /// The session title (sanitized), for `session-title`.
    title: Option<String>,
    /// Why the bytes do not decode as one KTM section, when they do not.
    error: Option<String>,
    entries: Vec<ToolMapEntryView>,
}

#[derive(Serialize)]
struct PayloadView {
    /// `dsv4` (judged), `dsv4-header` (a DSV4 header over a body kvc does
    /// not judge, e.g. GLM-5.2) or `opaque`.
    kind: &'static str,
    /// Why the body is not judged.
    why_opaque: Option<String>,
    dsv4: Option<Dsv4Header>,
    /// The layer schedule the exact size was computed with.
    schedule: Option<dsv4::Schedule>,
    n_comp: Option<Vec<u32>>,
    n_index: Option<Vec<u32>>,
    /// The payload size its DSV4 layout implies.
    exact_size: Option<u64>,
}

#[derive(Serialize)]
struct ShowReport {
    #[serde(flatten)]
    checkpoint: CheckpointView,
    /// The engine that reads the directory, and how kvc decided it.
    engine: String,
    /// The policy the score and rank are computed with.
    policy: &'static str,
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

fn locate(args: &ShowArgs) -> Result<resolve::Located> {
    resolve::locate(&args.key, args.dir.get().as_deref(), config::default_dir)
}

/// What the file's directory says about it: the engine that reads the
/// directory, and the file's own entry in the scan (dialect, population,
/// standing), when the directory can be scanned.
struct InDir {
    scan: Option<scan::Scan>,
    standings: Vec<Standing>,
    policy: Policy,
}

impl InDir {
    fn of(path: &Path, args: &ShowArgs, now: u64) -> InDir {
        let dir = kvc::session::parent_dir(path);
        let opts = ScanOptions::headers(args.policy.engine.engine());
        let Ok(scan) = scan::scan_dir(dir, opts) else {
            let engine = args.policy.engine.engine().unwrap_or(Engine::Ds4);
            return InDir {
                scan: None,
                standings: Vec::new(),
                policy: PolicyFrom::resolve(args.policy.policy(), engine).0,
            };
        };
        let engine = scan.engine.engine;
        let (policy, _) = PolicyFrom::resolve(args.policy.policy(), engine);
        let rank = RankOptions {
            policy,
            now,
            reject_different_quant: args.quant.reject_different_quant,
        };
        let standings = scan.standings(&rank);
        InDir {
            scan: Some(scan),
            standings,
            policy,
        }
    }

    fn engine(&self, args: &ShowArgs) -> Engine {
        self.scan
            .as_ref()
            .map(|s| s.engine.engine)
            .or(args.policy.engine.engine())
            .unwrap_or(Engine::Ds4)
    }

    fn position(&self, path: &Path) -> Option<usize> {
        let scan = self.scan.as_ref()?;
        let name = path.file_name()?.to_str()?;
        scan.checkpoints.iter().position(|c| c.is_named(name))
    }

    fn foreign(&self, path: &Path) -> Option<&scan::Foreign> {
        let scan = self.scan.as_ref()?;
        scan.foreign
            .iter()
            .find(|f| f.path.file_name() == path.file_name())
    }
}

/// A text streamed once.
struct Streamed {
    key: Key,
    title: Option<Vec<u8>>,
    /// The text itself, only when asked (`--text`).
    whole: Option<Vec<u8>>,
}

fn streamed_text(cf: &CheckpointFile, keep: bool) -> std::io::Result<Streamed> {
    use sha1::Digest;
    let mut sha = sha1::Sha1::new();
    let mut title = text::TitleScanner::new();
    let mut whole = keep.then(Vec::new);
    cf.stream_text(&mut |piece| {
        sha.update(piece);
        title.feed(piece);
        if let Some(w) = whole.as_mut() {
            w.extend_from_slice(piece);
        }
        Ok(())
    })?;
    Ok(Streamed {
        key: Key::from_digest(&sha.finalize().into()),
        title: title.finish(),
        whole,
    })
}

/// What follows the payload, for display (what is wrong with it comes
/// from `kvc verify`'s checks). The map is walked entry header by entry
/// header and its DSML blocks looked for in the text (`text_ok`: the text
/// is there to search) in one pass; no block is held.
fn trailer_view(
    cf: &CheckpointFile,
    text_ok: bool,
    title: Option<&SessionTitle>,
) -> Result<Option<TrailerView>> {
    let len = cf.trailer_len();
    if len == 0 {
        return Ok(None);
    }
    if cf.header.ext_flags.has_session_title() && !cf.header.ext_flags.has_tool_map() {
        return Ok(Some(TrailerView {
            bytes: len,
            kind: "session-title",
            flagged: false,
            title: title.map(|t| sanitize_line(&t.head)),
            error: None,
            entries: Vec::new(),
        }));
    }
    let mut view = TrailerView {
        bytes: len,
        kind: if cf.header.ext_flags.has_tool_map() {
            "tool-map"
        } else {
            "none"
        },
        title: None,
        flagged: cf.header.ext_flags.has_tool_map(),
        error: None,
        entries: Vec::new(),
    };
    let mut ranges = Vec::new();
    let walked = trailers::walk(cf, cf.payload_end(), cf.size, &mut |e| {
        view.entries.push(ToolMapEntryView {
            id: sanitize_line(&e.id),
            dsml_bytes: e.dsml_len as usize,
            in_text: false,
        });
        ranges.push((e.dsml_at, e.dsml_len as u64));
    });
    match walked {
        Ok(_) if text_ok => {
            let found = kvc::search::occurring(
                kvc::search::Text {
                    probe: cf,
                    at: kvc::format::TEXT_OFFSET,
                    len: cf.text_len as u64,
                },
                &kvc::search::InFile { probe: cf, ranges },
            )
            .with_context(|| cf.path.display().to_string())?;
            for (v, f) in view.entries.iter_mut().zip(found.found) {
                v.in_text = f;
            }
        }
        Ok(_) => {}
        Err(trailers::WalkError::Bad(e)) => {
            view.entries.clear();
            view.error = Some(e.to_string());
        }
        Err(trailers::WalkError::Unreadable) => {
            anyhow::bail!("{}: the trailer could not be read", cf.path.display())
        }
    }
    Ok(Some(view))
}

/// The DSV4 header and count arrays, for display.
fn payload_view(cf: &CheckpointFile, dialect: DialectId) -> Result<PayloadView> {
    let opaque = |why: String| PayloadView {
        kind: "opaque",
        why_opaque: Some(why),
        dsv4: None,
        schedule: None,
        n_comp: None,
        n_index: None,
        exact_size: None,
    };
    if cf.header.payload_bytes == 0 {
        return Ok(opaque(
            "no payload (payload_bytes 0: a stripped agent session is rebuilt by prefill)".into(),
        ));
    }
    if dialect.spec().payload != kvc::format::dialect::PayloadRule::Dsv4 {
        return Ok(opaque(format!("{dialect} payloads are opaque to kvc")));
    }
    let layout = cf
        .read_dsv4()
        .with_context(|| cf.path.display().to_string())?;
    let Some(layout) = layout else {
        return Ok(opaque("no DSV4 magic".into()));
    };
    let schedule = match dsv4::judged(dialect, cf.header.model_id, layout.header.version) {
        Ok(s) => s,
        Err(why) => {
            return Ok(PayloadView {
                kind: "dsv4-header",
                why_opaque: Some(format!("body not judged: {why}")),
                dsv4: Some(layout.header),
                ..opaque(String::new())
            })
        }
    };
    let exact_size = layout.exact_size(schedule);
    let (n_comp, n_index) = layout.counts.unzip();
    Ok(PayloadView {
        kind: "dsv4",
        why_opaque: None,
        dsv4: Some(layout.header),
        schedule: Some(schedule),
        n_comp,
        n_index,
        exact_size,
    })
}

pub fn run(args: ShowArgs) -> Result<Outcome> {
    let located = locate(&args)?;
    let path = located.path;
    let now = config::now_or_clock(args.policy.now)?;
    let cf = match CheckpointFile::open_named(&path, !located.in_cache) {
        Ok(cf) => cf,
        Err(OpenError::Io(e)) => return Err(e).context(path.display().to_string()),
        Err(OpenError::Defect(d)) => anyhow::bail!("{}: {d}", path.display()),
    };
    // Without the magic no field means anything: a table of them would
    // only mislead (a zero-filled file shows "never", "unknown", 0).
    if let Err(e @ kvc::format::HeaderError::BadMagic(_)) = cf.header.check() {
        anyhow::bail!(
            "{}: not a kvc checkpoint: {e}; nothing to show",
            path.display()
        );
    }
    let in_dir = InDir::of(&path, &args, now);
    // What is wrong is what `kvc verify` finds: one definition of every
    // check, so show and verify never disagree about a file.
    let verify_opts = VerifyOptions {
        now,
        engine: args.policy.engine.engine(),
        ..VerifyOptions::default()
    };
    let findings = verify::check_file(&path, &verify_opts)
        .with_context(|| format!("{}: vanished while being read", path.display()))?
        .findings;
    let errors = findings
        .iter()
        .filter(|f| f.severity == kvc::code::Severity::Error)
        .count();
    let mut notes: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    let envelope_ok = cf.check_envelope().is_ok();
    // The text is streamed once: its SHA-1 (the key of a file its name
    // does not give one) and its title; it is held only for --text, which
    // asks to see it.
    let text = match cf.check_envelope() {
        Err(kvc::Defect::TextLength { .. }) => None,
        _ => Some(streamed_text(&cf, args.text).with_context(|| path.display().to_string())?),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = match (Key::from_file_name(&name), &text) {
        (Some(k), _) => k,
        (None, Some(t)) => {
            notes.push("the file name is not <sha1>.kv or sysprompt.kv: engines ignore it".into());
            t.key.clone()
        }
        (None, None) => anyhow::bail!(
            "{}: not a checkpoint name and no readable text",
            path.display()
        ),
    };
    let mode = std::fs::metadata(&path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0);
    let unranked = Standing {
        score: None,
        superseded: false,
        rank: None,
    };
    let (mut checkpoint, standing) = match in_dir.position(&path) {
        Some(i) => {
            let scan = in_dir.scan.as_ref().expect("position implies a scan");
            (scan.checkpoints[i].clone(), in_dir.standings[i])
        }
        None => (
            Checkpoint::from_header(
                key,
                path.clone(),
                cf.size,
                mode,
                cf.header.clone(),
                cf.text_len,
                in_dir.engine(&args),
            ),
            unranked,
        ),
    };
    checkpoint.text_title = text
        .as_ref()
        .and_then(|t| t.title.clone())
        .map(Vec::into_boxed_slice);
    if envelope_ok && cf.header.ext_flags.has_session_title() {
        checkpoint.session_title =
            trailers::read_session_title(&cf, cf.payload_end(), cf.header.created)
                .ok()
                .map(Box::new);
    }
    let foreign = in_dir.foreign(&path);
    let (trailer, payload) = if envelope_ok && foreign.is_none() {
        (
            trailer_view(&cf, text.is_some(), checkpoint.session_title.as_deref())?,
            Some(payload_view(&cf, checkpoint.dialect)?),
        )
    } else {
        (None, None)
    };
    if standing.superseded {
        let eff =
            kvc::policy::effective_hits(checkpoint.header.hits, checkpoint.header.used_time(), now);
        let h = if eff > 0.0 { eff / (eff + 1.0) } else { 0.0 };
        notes.push(format!(
            "superseded waypoint: a longer checkpoint of the same model, written for no larger a ctx, extends this text, so policy {} keeps {:.0}% of its score (0.05 + 0.45 x {h:.2} for its decayed hits); ds4 applies this only against the checkpoint it is saving, so ranking a directory at rest this way is kvc's extension (`kvc tree` shows which)",
            in_dir.policy.name(),
            (0.05 + 0.45 * h) * 100.0,
        ));
    }
    let mut view = CheckpointView::new(&checkpoint, &standing, now);
    if let Some(f) = foreign {
        view.dialect = f.dialect.map_or("foreign", |d| d.as_str());
        view.model = None;
        view.loadable = f.loadable.is_ok();
        view.not_loaded = f.loadable.as_ref().err().map(|e| e.to_string());
    }
    let report = ShowReport {
        text: if args.text {
            text.as_ref()
                .and_then(|t| t.whole.as_deref())
                .map(sanitize_text)
        } else {
            None
        },
        engine: in_dir
            .scan
            .as_ref()
            .map(|s| s.engine.describe())
            .unwrap_or_else(|| in_dir.engine(&args).to_string()),
        policy: in_dir.policy.name(),
        checkpoint: view,
        trailer,
        payload,
        notes,
        findings,
    };
    output::emit(&report, args.output.json)?;
    // As `kvc verify` would exit for this file (without --strict).
    Ok(if errors > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

impl Report for ShowReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.checkpoint;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row = |f: &str, v: String, m: &str| {
            rows.push(vec![f.to_string(), v, m.to_string()]);
        };
        row(
            "file",
            c.path.clone(),
            &format!("{}, mode {}", output::size(c.size), c.mode),
        );
        row(
            "key",
            c.key.clone(),
            if c.ext_flags & kvc::ExtFlags::SESSION_TITLE != 0 {
                "agent session identity: SHA-1(title + created as u64 LE)"
            } else {
                "SHA-1 of the text (sysprompt: fixed name)"
            },
        );
        let dialect_meaning = match DialectId::ALL.iter().find(|d| d.as_str() == c.dialect) {
            Some(d) => d.spec().writer,
            None => "a dialect kvc does not read (left alone)",
        };
        row(
            "dialect",
            if c.dialect_assumed {
                format!("{} (assumed from the directory's engine)", c.dialect)
            } else {
                c.dialect.to_string()
            },
            dialect_meaning,
        );
        row(
            "engine",
            self.engine.clone(),
            if c.loadable {
                "loads, counts and may evict this file".to_string()
            } else {
                format!(
                    "never loads, counts or evicts it ({})",
                    c.not_loaded.as_deref().unwrap_or("not read")
                )
            }
            .as_str(),
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
            "bit 0 tool-map, 1 responses-visible, 2 thinking-visible, 3 session title",
        );
        row(
            "model_id",
            match c.model {
                Some(m) => format!("{} ({m})", c.model_id),
                None => c.model_id.to_string(),
            },
            "mainline since 2026-05-25: 0 flash, 1 pro, 2 glm-5.2; forks reuse the numbers",
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
            "2 in mainline since 2026-05-26 (required by its reader); 0 before and in hanzo-engine; 3-4 in forks",
        );
        if let Some(fp) = &c.fingerprint {
            row(
                "fingerprint",
                fp.clone(),
                "D11: 24-bit weights fingerprint in bytes 21-23",
            );
        }
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
            &format!(
                "eviction score under policy {} (lower goes first)",
                self.policy
            ),
        );
        row(
            "evict_rank",
            c.evict_rank.map_or("-".into(), |r| r.to_string()),
            if c.agent_save {
                "agent save: not evicted"
            } else if !c.loadable {
                "not in the engine's population: not evicted"
            } else {
                "1 = evicted first in its directory"
            },
        );
        // The explanations give way first on a narrow screen.
        output::write_rows(
            out,
            &["FIELD", "VALUE", "MEANING"],
            rows.len(),
            &|i| rows[i].clone(),
            &[2],
            &[],
            &[],
        )?;
        if let Some(tr) = &self.trailer {
            writeln!(out, "\ntrailer: {} bytes after the payload", tr.bytes)?;
            if let Some(title) = &tr.title {
                writeln!(out, "  session title: {title}")?;
            }
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
                None => writeln!(
                    out,
                    "\npayload: opaque ({})",
                    p.why_opaque.as_deref().unwrap_or("not DSV4")
                )?,
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
                    if let Some(why) = &p.why_opaque {
                        writeln!(out, "  {why}")?;
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
