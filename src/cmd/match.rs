//! `kvc match`: which checkpoint ds4 loads for a prompt, and why every
//! other one loses. The work is `kvc::matching`'s; this turns its result
//! into one report, as a table or as JSON.

use crate::cli::MatchArgs;
use crate::config;
use crate::output::{self, Report};
use crate::Outcome;
use anyhow::{bail, Result};
use kvc::format::dialect::EngineChoice;
use kvc::format::model_name;
use kvc::matching::{
    self, thousands, Divergence, Entry, Live, Location, MatchResult, Prompt, Verdict,
};
use kvc::text::sanitize_line;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::Path;

/// How many nearest misses the table form shows with excerpts.
const NEAREST: usize = 3;

/// The live settings, and which of them are ds4-server's defaults.
#[derive(Serialize)]
struct LiveView {
    model_id: u8,
    model: Option<&'static str>,
    ctx: u32,
    min_tokens: i32,
    /// `null`: any (no quant filter).
    quant_bits: Option<u8>,
    reject_different_quant: bool,
    /// The settings not given on the command line, taken from ds4-server's
    /// defaults.
    defaults: Vec<&'static str>,
}

/// The checkpoint the engine loads (or, for `fallback`, would load).
#[derive(Serialize)]
struct ChoiceView {
    key: String,
    file: String,
    text_bytes: u64,
    tokens: u32,
    reason: String,
    key_kind: &'static str,
    model_id: u8,
    ctx_size: u32,
    quant_bits: u8,
    hits: u32,
    /// text_bytes / prompt_bytes.
    share: f64,
    /// Prompt bytes the engine prefills after loading it.
    prefill_bytes: u64,
    /// The first bytes of what is prefilled (sanitized; hits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    prefill_head: Option<String>,
}

#[derive(Serialize)]
struct ExcerptView {
    /// Shared by both sides, just before the split.
    before: String,
    prompt: String,
    stored: String,
}

#[derive(Serialize)]
struct CandidateView {
    key: Option<String>,
    file: String,
    verdict: &'static str,
    why: String,
    /// Position in the directory listing (the lookup's order).
    order: u32,
    text_bytes: Option<u32>,
    tokens: Option<u32>,
    reason: Option<String>,
    model_id: Option<u8>,
    ctx_size: Option<u32>,
    quant_bits: Option<u8>,
    payload_abi: Option<u8>,
    dialect: Option<&'static str>,
    key_kind: Option<&'static str>,
    /// The name is the SHA-1 of the prompt's first text_bytes bytes.
    full_prefix: Option<bool>,
    shared_prefix_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diverges_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diverges_in: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<ExcerptView>,
    /// The lookup's pick, whose load fails (a miss).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    engine_pick: bool,
}

#[derive(Serialize)]
struct MatchReport {
    dir: String,
    /// Whose lookup kvc reproduces.
    lookup: &'static str,
    /// The engine the directory's files point to.
    engine: EngineChoice,
    engine_note: Option<&'static str>,
    /// `-` for standard input.
    prompt_source: String,
    /// strlen: the bytes ds4 looks up.
    prompt_bytes: u64,
    /// Bytes read, NUL and after included.
    prompt_read_bytes: u64,
    prompt_nul_at: Option<u64>,
    live: LiveView,
    hit: bool,
    chosen: Option<ChoiceView>,
    /// kvc's extra information: what the engine would load without its
    /// failing pick (ds4 does not fall back).
    fallback: Option<ChoiceView>,
    candidates: Vec<CandidateView>,
    /// Files per verdict code, the chosen one included.
    counts: BTreeMap<&'static str, usize>,
    diagnosis: String,
    diagnosis_code: &'static str,
}

fn live(args: &MatchArgs) -> (Live, Vec<&'static str>) {
    let d = Live::default();
    let mut defaults = Vec::new();
    let model_id = args.model_id.or(args.model).unwrap_or_else(|| {
        defaults.push("model_id");
        d.model_id
    });
    let ctx = args.ctx.unwrap_or_else(|| {
        defaults.push("ctx");
        d.ctx
    });
    let min_tokens = args.min_tokens.unwrap_or_else(|| {
        defaults.push("min_tokens");
        d.min_tokens
    });
    if args.quant.is_none() {
        defaults.push("quant_bits");
    }
    let live = Live {
        model_id,
        ctx,
        min_tokens,
        quant_bits: args.quant,
        reject_different_quant: args.reject_different_quant,
    };
    (live, defaults)
}

/// Standard input, unless it is a terminal: a prompt is bytes from a pipe
/// or a file, never typed.
fn read_stdin() -> Result<Prompt> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        bail!(
            "standard input is a terminal: give the rendered prompt as a file (kvc match PROMPT) or pipe it in"
        );
    }
    Ok(Prompt::read(
        &mut stdin.lock(),
        Path::new("standard input"),
    )?)
}

pub fn run(args: MatchArgs) -> Result<Outcome> {
    // `kvc match DIR` (the prompt on standard input): a directory where
    // the PROMPT goes is the cache directory.
    let mut prompt_arg = args.prompt.clone();
    let mut dir = args.dir.get();
    if dir.is_none() && prompt_arg.as_ref().is_some_and(|p| p.is_dir()) {
        dir = prompt_arg.take();
    }
    let dir = config::dir_or_default(dir)?;
    let (live, defaults) = live(&args);
    let (prompt, source) = match &prompt_arg {
        Some(p) if p.as_os_str() != "-" => (Prompt::from_file(p)?, p.display().to_string()),
        _ => (read_stdin()?, "-".to_string()),
    };
    let m = matching::match_dir(&dir, &prompt, &live)?;
    let report = MatchReport::new(&m, &prompt, source, defaults);
    output::emit(&report, args.output.json)?;
    Ok(if m.is_hit() {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

fn choice(e: &Entry, prompt: &Prompt, head: Option<&[u8]>) -> ChoiceView {
    let h = e.header.as_ref().expect("a chosen file has a header");
    let text = e.text_len.unwrap_or(0) as u64;
    ChoiceView {
        key: e.key.as_ref().map(|k| k.to_string()).unwrap_or_default(),
        file: sanitize_line(e.file.as_bytes()),
        text_bytes: text,
        tokens: h.tokens,
        reason: h.reason.name().into_owned(),
        key_kind: e.key_kind.map_or("text", |k| k.code()),
        model_id: h.model_id,
        ctx_size: h.ctx_size,
        quant_bits: h.quant_bits,
        hits: h.hits,
        share: if prompt.is_empty() {
            1.0
        } else {
            text as f64 / prompt.len() as f64
        },
        prefill_bytes: prompt.len() - text,
        prefill_head: head.map(sanitize_line),
    }
}

fn excerpt(d: &Divergence) -> ExcerptView {
    ExcerptView {
        before: sanitize_line(&d.before),
        prompt: sanitize_line(&d.prompt),
        stored: sanitize_line(&d.stored),
    }
}

fn candidate(e: &Entry, pick: bool) -> CandidateView {
    let h = e.header.as_ref();
    CandidateView {
        key: e.key.as_ref().map(|k| k.to_string()),
        file: sanitize_line(e.file.as_bytes()),
        verdict: e.verdict.code(),
        why: sanitize_line(e.verdict.to_string().as_bytes()),
        order: e.order,
        text_bytes: e.text_len,
        tokens: h.map(|h| h.tokens),
        reason: h.map(|h| h.reason.name().into_owned()),
        model_id: h.map(|h| h.model_id),
        ctx_size: h.map(|h| h.ctx_size),
        quant_bits: h.map(|h| h.quant_bits),
        payload_abi: h.map(|h| h.payload_abi),
        dialect: e.dialect.map(|d| d.as_str()),
        key_kind: e.key_kind.map(|k| k.code()),
        full_prefix: e.full_prefix,
        shared_prefix_bytes: e.shared_prefix,
        diverges_at: e.divergence.as_ref().map(|d| d.at),
        diverges_in: e.divergence.as_ref().map(|d| d.location),
        excerpt: e.divergence.as_ref().map(excerpt),
        engine_pick: pick,
    }
}

impl MatchReport {
    fn new(
        m: &MatchResult,
        prompt: &Prompt,
        source: String,
        defaults: Vec<&'static str>,
    ) -> MatchReport {
        let (chosen, pick, fallback) = match &m.outcome {
            matching::Outcome::Hit {
                chosen,
                prefill_head,
            } => (
                Some(choice(&m.entries[*chosen], prompt, Some(prefill_head))),
                None,
                None,
            ),
            matching::Outcome::Miss { pick, fallback } => (
                None,
                *pick,
                fallback.map(|f| choice(&m.entries[f], prompt, None)),
            ),
        };
        let chosen_idx = match m.outcome {
            matching::Outcome::Hit { chosen, .. } => Some(chosen),
            _ => None,
        };
        // The engine's pick first, then full prefixes (longest first),
        // then by how much of the prompt each shares.
        let mut order: Vec<usize> = (0..m.entries.len())
            .filter(|&i| Some(i) != chosen_idx)
            .collect();
        let rank = |i: usize| {
            let e = &m.entries[i];
            (
                Some(i) != pick,
                e.full_prefix != Some(true),
                std::cmp::Reverse(e.shared_prefix.unwrap_or(0)),
            )
        };
        // Entries are in name order already: a stable sort keeps it.
        order.sort_by_key(|&i| rank(i));
        let mut counts = BTreeMap::new();
        for e in &m.entries {
            *counts.entry(e.verdict.code()).or_insert(0) += 1;
        }
        let l = &m.live;
        MatchReport {
            dir: m.dir.display().to_string(),
            lookup: matching::PROVENANCE,
            engine: m.engine.clone(),
            engine_note: m.engine_note(),
            prompt_source: sanitize_line(source.as_bytes()),
            prompt_bytes: m.prompt_bytes,
            prompt_read_bytes: m.prompt_read_bytes,
            prompt_nul_at: m.nul_at,
            live: LiveView {
                model_id: l.model_id,
                model: model_name(l.model_id),
                ctx: l.ctx,
                min_tokens: l.min_tokens,
                quant_bits: l.quant_bits,
                reject_different_quant: l.reject_different_quant,
                defaults,
            },
            hit: m.is_hit(),
            chosen,
            fallback,
            candidates: order
                .into_iter()
                .map(|i| candidate(&m.entries[i], Some(i) == pick))
                .collect(),
            counts,
            diagnosis: sanitize_line(m.diagnosis.to_string().as_bytes()),
            diagnosis_code: m.diagnosis.code(),
        }
    }

    fn write_settings(&self, out: &mut dyn Write) -> io::Result<()> {
        let l = &self.live;
        let tag = |name: &str, flag: &str| {
            if l.defaults.contains(&name) {
                " (default)".to_string()
            } else {
                format!(" ({flag})")
            }
        };
        let model = match l.model {
            Some(n) => format!("{} {n}", l.model_id),
            None => l.model_id.to_string(),
        };
        let quant = match (l.quant_bits, l.reject_different_quant) {
            (Some(q), true) => format!("{q}, other quant skipped (--reject-different-quant)"),
            (Some(q), false) => format!("{q}, any accepted (no --reject-different-quant)"),
            (None, _) => "any (no --reject-different-quant)".to_string(),
        };
        writeln!(out, "lookup: {}", self.lookup)?;
        writeln!(
            out,
            "live:   model {model}{}, ctx {}{}, min tokens {}{}, quant {quant}",
            tag("model_id", "--model"),
            l.ctx,
            tag("ctx", "--ctx"),
            l.min_tokens,
            tag("min_tokens", "--min-tokens"),
        )?;
        let source = if self.prompt_source == "-" {
            "standard input".to_string()
        } else {
            self.prompt_source.clone()
        };
        writeln!(
            out,
            "prompt: {} bytes from {source}",
            thousands(self.prompt_bytes)
        )?;
        if let Some(n) = self.prompt_nul_at {
            writeln!(
                out,
                "note: the prompt has a NUL byte at offset {}; ds4 reads the prompt as a C string, so the {} bytes from there on are ignored",
                thousands(n),
                thousands(self.prompt_read_bytes - n)
            )?;
        }
        writeln!(
            out,
            "dir:    {} (engine: {})",
            self.dir,
            self.engine.describe()
        )?;
        if let Some(note) = self.engine_note {
            writeln!(out, "note: {note}")?;
        }
        Ok(())
    }

    fn write_choice(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.chosen {
            Some(c) => {
                writeln!(
                    out,
                    "chosen: {} ({}, {} tokens, key: {}), covers {} of {} bytes ({:.1}%); the engine prefills {} bytes from \"{}\"",
                    output::short_key(&c.key),
                    c.reason,
                    c.tokens,
                    c.key_kind,
                    thousands(c.text_bytes),
                    thousands(self.prompt_bytes),
                    c.share * 100.0,
                    thousands(c.prefill_bytes),
                    c.prefill_head.as_deref().unwrap_or("")
                )?;
            }
            None => writeln!(
                out,
                "chosen: none: the engine prefills all {} bytes",
                thousands(self.prompt_bytes)
            )?,
        }
        if let Some(f) = &self.fallback {
            writeln!(
                out,
                "fallback (kvc's extra information; ds4 does not fall back): {} ({} tokens, {} bytes, {:.1}%) would load once the failing pick is gone",
                output::short_key(&f.key),
                f.tokens,
                thousands(f.text_bytes),
                f.share * 100.0
            )?;
        }
        Ok(())
    }

    fn write_nearest(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut near: Vec<&CandidateView> = self
            .candidates
            .iter()
            .filter(|c| c.excerpt.is_some() && c.verdict != "not-loadable")
            .collect();
        near.sort_by_key(|c| std::cmp::Reverse(c.diverges_at));
        if near.is_empty() {
            return Ok(());
        }
        writeln!(out, "nearest misses:")?;
        for c in near.into_iter().take(NEAREST) {
            let (Some(at), Some(x)) = (c.diverges_at, &c.excerpt) else {
                continue;
            };
            let where_ = c.diverges_in.map(|l| format!(", {l}")).unwrap_or_default();
            writeln!(
                out,
                "  {} ({}, key: {}) diverges at byte {}{where_}:",
                display_key(c),
                c.verdict,
                c.key_kind.unwrap_or("-"),
                thousands(at)
            )?;
            writeln!(out, "    shared  \"…{}\"", x.before)?;
            writeln!(out, "    prompt  \"{}…\"", x.prompt)?;
            writeln!(out, "    stored  \"{}…\"", x.stored)?;
        }
        Ok(())
    }
}

fn display_key(c: &CandidateView) -> String {
    match &c.key {
        Some(k) => output::short_key(k),
        None => c.file.clone(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl Report for MatchReport {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.diagnosis)?;
        self.write_settings(out)?;
        self.write_choice(out)?;
        if !self.hit {
            self.write_nearest(out)?;
        }
        if !self.candidates.is_empty() {
            let cands = &self.candidates;
            let row = |i: usize| {
                let c = &cands[i];
                vec![
                    display_key(c),
                    c.verdict.to_string(),
                    c.key_kind.unwrap_or("-").to_string(),
                    opt(c.text_bytes),
                    opt(c.shared_prefix_bytes),
                    opt(c.tokens),
                    opt(c.ctx_size),
                    opt(c.model_id),
                    opt(c.quant_bits),
                    c.why.clone(),
                ]
            };
            output::write_rows(
                out,
                &[
                    "KEY", "VERDICT", "KIND", "TEXT", "SHARED", "TOKENS", "CTX", "MODEL", "Q",
                    "WHY",
                ],
                cands.len(),
                &row,
                &[9],
                &[6, 8, 7, 2],
                &[3, 4, 5, 6, 7, 8],
            )?;
        }
        let files: usize = self.counts.values().sum();
        let counts: Vec<String> = Verdict::CODES
            .iter()
            .filter_map(|code| self.counts.get(code).map(|n| format!("{n} {code}")))
            .collect();
        writeln!(
            out,
            "{} checkpoint file{}: {}",
            files,
            if files == 1 { "" } else { "s" },
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            }
        )
    }
}
