//! `kvc tree`: the prefix forest of a cache directory (`kvc::tree`), as a
//! table, JSON or Graphviz DOT.

use crate::cli::TreeArgs;
use crate::config;
use crate::output::{self, align_right, Report};
use crate::Outcome;
use anyhow::Result;
use comfy_table::Cell;
use kvc::format::dialect::EngineChoice;
use kvc::scan::Scan;
use kvc::text::sanitize_line;
use kvc::tree::{self, Forest, Link, TreeOptions};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct NodeView {
    key: String,
    file: String,
    /// The parent's key; `null` for a root.
    parent: Option<String>,
    /// `root`, `prefix` (the parent's text is the longest stored proper
    /// prefix of this one's) or `equal` (the same text).
    link: Link,
    depth: u32,
    /// Index into `chains`.
    chain: usize,
    tokens: u32,
    text_bytes: u32,
    size: u64,
    reason: String,
    model_id: u8,
    hits: u32,
    last_used: u64,
    superseded: bool,
    evict_rank: Option<usize>,
    /// Another checkpoint extends or repeats its text.
    covered: bool,
    /// Its text could not be read again (changed since the scan).
    unread: bool,
    title: Option<String>,
}

#[derive(Serialize)]
struct ChainView {
    root: String,
    checkpoints: u64,
    bytes: u64,
    depth: u32,
    leaves: u64,
    /// Checkpoints whose text another one of the chain extends or repeats
    /// (no prefix of their own), and their bytes.
    covered: u64,
    covered_bytes: u64,
}

/// Nodes (or chains) serialized one by one as they are built: the views
/// of 100,000 nodes at once would be some 30 MB.
struct Lazy<'a, T, F: Fn(usize) -> T> {
    len: usize,
    at: F,
    _t: std::marker::PhantomData<&'a T>,
}

impl<'a, T: Serialize, F: Fn(usize) -> T> Serialize for Lazy<'a, T, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len))?;
        for i in 0..self.len {
            seq.serialize_element(&(self.at)(i))?;
        }
        seq.end()
    }
}

struct TreeReport<'a> {
    dir: String,
    engine: EngineChoice,
    policy: &'static str,
    policy_from: &'static str,
    now: u64,
    scan: &'a Scan,
    forest: &'a Forest,
    covered_bytes: u64,
    checkpoint_bytes: u64,
}

impl TreeReport<'_> {
    fn node(&self, i: usize) -> NodeView {
        node_view(self.scan, self.forest, self.forest.preorder[i])
    }

    fn chain(&self, i: usize) -> ChainView {
        let c = &self.forest.chains[i];
        ChainView {
            root: self.scan.checkpoints[c.root].key.to_string(),
            checkpoints: c.nodes,
            bytes: c.bytes,
            depth: c.depth,
            leaves: c.leaves,
            covered: c.covered,
            covered_bytes: c.covered_bytes,
        }
    }
}

impl Serialize for TreeReport<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TreeReport", 9)?;
        st.serialize_field("dir", &self.dir)?;
        st.serialize_field("engine", &self.engine)?;
        st.serialize_field("policy", self.policy)?;
        st.serialize_field("policy_from", self.policy_from)?;
        st.serialize_field("now", &self.now)?;
        st.serialize_field(
            "chains",
            &Lazy {
                len: self.forest.chains.len(),
                at: |i| self.chain(i),
                _t: std::marker::PhantomData,
            },
        )?;
        st.serialize_field(
            "nodes",
            &Lazy {
                len: self.forest.preorder.len(),
                at: |i| self.node(i),
                _t: std::marker::PhantomData,
            },
        )?;
        st.serialize_field("covered_bytes", &self.covered_bytes)?;
        st.serialize_field("checkpoint_bytes", &self.checkpoint_bytes)?;
        st.end()
    }
}

fn node_view(scan: &Scan, f: &Forest, i: usize) -> NodeView {
    let cps = &scan.checkpoints;
    let key = |i: usize| cps[i].key.to_string();
    let n = &f.nodes[i];
    let c = &cps[i];
    NodeView {
        key: c.key.to_string(),
        file: sanitize_line(c.file().as_bytes()),
        parent: n.parent().map(key),
        link: n.link,
        depth: n.depth,
        chain: n.chain as usize,
        tokens: c.header.tokens,
        text_bytes: c.text_len,
        size: c.size,
        reason: c.header.reason.name().into_owned(),
        model_id: c.header.model_id,
        hits: c.header.hits,
        last_used: c.header.last_used,
        superseded: n.superseded,
        evict_rank: n.rank(),
        covered: n.covered(),
        unread: n.unread,
        title: f.title(i).map(sanitize_line),
    }
}

pub fn run(args: TreeArgs) -> Result<Outcome> {
    let dir = config::dir_or_default(args.dir.get())?;
    let now = config::now_or_clock(args.policy.now)?;
    let opts = TreeOptions {
        engine: args.policy.engine.engine(),
        policy: args.policy.policy(),
        now,
        reject_different_quant: args.quant.reject_different_quant,
        titles: !args.no_title,
    };
    let (scan, (policy, from), forest) = tree::dir_forest(&dir, &opts)?;
    let report = TreeReport {
        dir: dir.display().to_string(),
        engine: scan.engine.clone(),
        policy: policy.name(),
        policy_from: from.name(),
        now,
        covered_bytes: forest.chains.iter().map(|c| c.covered_bytes).sum(),
        checkpoint_bytes: scan.checkpoint_bytes(),
        scan: &scan,
        forest: &forest,
    };
    if args.dot {
        let mut out = io::BufWriter::new(io::stdout().lock());
        write_dot(&report, &mut out)?;
        out.flush()?;
    } else {
        output::emit(&report, args.output.json)?;
    }
    Ok(Outcome::Clean)
}

/// A DOT string: `"` and `\` escaped (labels use `\n` for new lines).
fn dot_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn write_dot(r: &TreeReport<'_>, out: &mut dyn Write) -> io::Result<()> {
    let nodes = || (0..r.forest.preorder.len()).map(|i| r.node(i));
    writeln!(out, "digraph kvc {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(
        out,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    )?;
    for n in nodes() {
        let mut label = format!(
            "{}\\n{} tokens, {}\\n{}, {} hits",
            output::short_key(&n.key),
            n.tokens,
            dot_str(&output::size(n.size)),
            dot_str(&n.reason),
            n.hits
        );
        if let Some(t) = &n.title {
            label.push_str("\\n");
            label.push_str(&dot_str(t));
        }
        let mut attrs = format!("label=\"{label}\"");
        if n.superseded {
            attrs.push_str(", style=dashed");
        } else if n.covered {
            attrs.push_str(", style=filled, fillcolor=\"#eeeeee\"");
        }
        writeln!(out, "  \"{}\" [{attrs}];", dot_str(&n.key))?;
    }
    for n in nodes() {
        if let Some(p) = &n.parent {
            let style = if n.link == Link::Equal {
                " [style=dotted, label=\"equal\"]"
            } else {
                ""
            };
            writeln!(
                out,
                "  \"{}\" -> \"{}\"{style};",
                dot_str(p),
                dot_str(&n.key)
            )?;
        }
    }
    writeln!(out, "}}")
}

/// Deeper levels than this are not indented further (a chain can be
/// thousands deep): the depth is printed instead.
const MAX_INDENT: u32 = 24;

/// The tree's rules before each row's key, row after row: whether the
/// node at each depth is its parent's last child. Rows are asked for in
/// order (twice: to measure, to write); any other order is replayed from
/// the first row.
struct Rules {
    last_at: Vec<bool>,
    next: usize,
}

impl Rules {
    fn prefix(&mut self, report: &TreeReport, i: usize) -> String {
        if i != self.next {
            self.last_at.clear();
            self.next = 0;
        }
        while self.next < i {
            let n = &report.forest.nodes[report.forest.preorder[self.next]];
            self.step(n.depth, n.is_last_child());
        }
        let n = &report.forest.nodes[report.forest.preorder[i]];
        let (depth, is_last) = (n.depth, n.is_last_child());
        self.step(depth, is_last);
        let mut prefix = String::new();
        let shown = depth.min(MAX_INDENT) as usize;
        for &last in self.last_at.iter().take(shown).skip(1) {
            prefix.push_str(if last { "   " } else { "│  " });
        }
        if depth > 0 {
            prefix.push_str(if is_last { "└─ " } else { "├─ " });
        }
        if depth > MAX_INDENT {
            prefix.push_str(&format!("[{depth}] "));
        }
        prefix
    }

    fn step(&mut self, depth: u32, is_last: bool) {
        self.last_at.truncate(depth as usize);
        self.last_at.push(is_last);
        self.next += 1;
    }
}

impl Report for TreeReport<'_> {
    fn write_human(&self, out: &mut dyn Write) -> io::Result<()> {
        let header = [
            "KEY", "TOKENS", "SIZE", "REASON", "HITS", "FLAGS", "RANK", "TITLE",
        ];
        let rules = std::cell::RefCell::new(Rules {
            last_at: Vec::new(),
            next: 0,
        });
        // Rows built as they are measured and written, never all held.
        let row = |i: usize| -> Vec<String> {
            let n = &self.node(i);
            let prefix = rules.borrow_mut().prefix(self, i);
            let mut flags = String::new();
            if n.superseded {
                flags.push('s');
            }
            if n.covered {
                flags.push('c');
            }
            if n.link == Link::Equal {
                flags.push('=');
            }
            if n.unread {
                flags.push('?');
            }
            if flags.is_empty() {
                flags.push('-');
            }
            vec![
                format!("{prefix}{}", output::short_key(&n.key)),
                n.tokens.to_string(),
                output::size(n.size),
                n.reason.clone(),
                n.hits.to_string(),
                flags,
                n.evict_rank.map_or("-".to_string(), |r| r.to_string()),
                n.title.clone().unwrap_or_default(),
            ]
        };
        if !self.forest.preorder.is_empty() {
            let n = self.forest.preorder.len();
            output::write_rows_unfitted(out, &header, n, &row, &[1, 2, 4, 6])?;
        }
        let multi: Vec<ChainView> = (0..self.forest.chains.len())
            .filter(|&i| self.forest.chains[i].nodes > 1)
            .map(|i| self.chain(i))
            .collect();
        writeln!(
            out,
            "{} checkpoints in {} chains ({} of more than one); {} of {} held by checkpoints another one extends or repeats (flag c: no prefix of their own)",
            self.forest.preorder.len(),
            self.forest.chains.len(),
            multi.len(),
            output::size(self.covered_bytes),
            output::size(self.checkpoint_bytes)
        )?;
        if !multi.is_empty() {
            let mut t = output::table(&[
                "CHAIN ROOT",
                "CHECKPOINTS",
                "DEPTH",
                "BYTES",
                "COVERED BYTES",
            ]);
            for c in multi.iter().take(10) {
                t.add_row([
                    Cell::new(output::short_key(&c.root)),
                    Cell::new(c.checkpoints),
                    Cell::new(c.depth),
                    Cell::new(output::size(c.bytes)),
                    Cell::new(output::size(c.covered_bytes)),
                ]);
            }
            align_right(&mut t, &[1, 2, 3, 4]);
            output::write_table(out, &t)?;
            if multi.len() > 10 {
                writeln!(out, "({} more chains in --json)", multi.len() - 10)?;
            }
        }
        if self.forest.nodes.iter().any(|n| n.superseded) {
            writeln!(
                out,
                "note: s = ds4's superseded test applied at rest (kvc's extension, FORMAT.md §8)"
            )?;
        }
        Ok(())
    }
}
