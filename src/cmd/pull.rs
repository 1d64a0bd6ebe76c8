//! `kvc pull`: download checkpoints into a cache, verified (rules in
//! `kvc::remote::pull`).

use super::export::Bar;
use super::import::{action_word, budget_policy, write_budget, Counts};
use crate::cli::PullArgs;
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use comfy_table::Cell;
use kvc::bundle::{BudgetOptions, Selection};
use kvc::matching::{Live, Prompt, DEFAULT_CTX, DEFAULT_MIN_TOKENS};
use kvc::remote::pull::{self, PullOptions, PullReport};
use serde::Serialize;
use std::io::{self, IsTerminal, Write};
use std::path::Path;

#[derive(Serialize)]
struct PullView {
    dir: String,
    #[serde(flatten)]
    report: PullReport,
    counts: Counts,
    /// Bytes written into the directory (installed and replaced).
    bytes_written: u64,
}

impl Report for PullView {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        if let Some(m) = &r.matched {
            match &m.chosen {
                Some(k) => writeln!(
                    out,
                    "match: {} of {} candidates is what ds4 mainline would load for the {}-byte prompt",
                    output::short_key(k),
                    m.candidates,
                    m.prompt_bytes
                )?,
                None => writeln!(
                    out,
                    "match: none of the remote's {} checkpoints would be loaded for the {}-byte prompt (a full prefill); nothing to pull",
                    m.candidates, m.prompt_bytes
                )?,
            }
        }
        let mut t = output::table(&["ACTION", "KEY", "NAMESPACE", "SIZE", "NOTE"]);
        for e in &r.entries {
            t.add_row(vec![
                Cell::new(action_word(e.action, r.dry_run)),
                Cell::new(output::short_key(&e.key)),
                Cell::new(&e.namespace),
                Cell::new(output::size(e.size)),
                Cell::new(e.message.as_deref().unwrap_or("")),
            ]);
        }
        align_right(&mut t, &[3]);
        if !r.entries.is_empty() {
            output::write_table(out, &t)?;
        }
        let c = &self.counts;
        if r.dry_run {
            // A real run says these on stderr as it meets them.
            for w in &r.warnings {
                writeln!(out, "warning: {w}")?;
            }
            write!(out, "dry run, nothing fetched or written: ")?;
        }
        writeln!(
            out,
            "{c}; {} {} {} from {}",
            output::size(self.bytes_written),
            if r.dry_run {
                "would be written to"
            } else {
                "written to"
            },
            self.dir,
            r.remote
        )?;
        if let Some(b) = &r.budget {
            write_budget(out, b, r.dry_run)?;
            if !b.met {
                writeln!(
                    out,
                    "budget not met: the pulled checkpoints and agent saves alone exceed it"
                )?;
            }
        }
        Ok(())
    }
}

fn read_prompt(path: &Path) -> Result<Prompt> {
    if path.as_os_str() == "-" {
        if io::stdin().is_terminal() {
            bail!("standard input is a terminal: give the prompt as a file, or pipe it in");
        }
        return Ok(Prompt::read(
            &mut io::stdin().lock(),
            Path::new("standard input"),
        )?);
    }
    Ok(Prompt::from_file(path)?)
}

pub fn run(args: PullArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.dir)?;
    let now = config::now_or_clock(args.policy.now)?;
    let namespace = args
        .model
        .as_deref()
        .map(kvc::remote::parse_namespace)
        .transpose()?;
    let prompt = match &args.prompt {
        Some(p) => {
            let model_id = match &args.model {
                Some(m) => kvc::format::model_from_name(m)
                    .with_context(|| format!("--model {m:?}: --match needs a model (flash, pro, glm-5.2, laguna, qwen3.8, or a number)"))?,
                None => kvc::matching::DEFAULT_MODEL_ID,
            };
            let live = Live {
                model_id,
                ctx: args.ctx.unwrap_or(DEFAULT_CTX),
                min_tokens: args
                    .min_tokens
                    .map_or(DEFAULT_MIN_TOKENS, |n| n.min(i32::MAX as u32) as i32),
                quant_bits: args.quant,
                reject_different_quant: args.quant.is_some(),
            };
            Some((read_prompt(p)?, live))
        }
        None => None,
    };
    let opts = PullOptions {
        keys: args.keys,
        all: args.all,
        prompt,
        filters: Selection {
            reasons: args.reason,
            min_tokens: args.min_tokens,
            used_within: args.used_within,
            quant: args.quant,
            ..Selection::default()
        },
        namespace,
        on_conflict: args.on_conflict.into(),
        include_agent: args.include_agent,
        reset_stats: args.reset_stats,
        budget: match args.budget {
            Some(bytes) => Some(BudgetOptions {
                bytes,
                policy: budget_policy(&dir, args.policy)?,
            }),
            None => None,
        },
        engine: args.policy.engine.engine(),
        now,
    };
    let remote = super::remote::connect(&args.remote)?;
    let plan = pull::plan(&remote, &dir, &opts)?;
    let report = if args.dry_run.dry_run {
        pull::dry_run(&remote, &plan)?
    } else {
        let mut session = config::session("pull", Some(now), args.wait.wait)?;
        pull::apply(&mut session, &remote, &plan, &mut Bar::new("pull"))?
    };
    let problems = report.has_problems();
    let view = PullView {
        dir: dir.display().to_string(),
        counts: Counts::of(|a| report.count(a)),
        bytes_written: report.bytes_written(),
        report,
    };
    output::emit(&view, args.output.json)?;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}
