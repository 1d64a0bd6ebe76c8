//! Findings: one problem with one file, with a stable code. `kvc ls` shows
//! the header warnings below; `kvc verify` adds everything that needs more
//! than the header to see.

use crate::format::{ExtFlags, Header};
use serde::Serialize;
use std::fmt;

/// Clock skew tolerated before a timestamp counts as "in the future":
/// hosts that share a cache over NFS are rarely more than minutes apart.
pub const FUTURE_SLACK_SECS: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, documented code (`bad-quant`, `truncated`, …).
    pub code: &'static str,
    pub severity: Severity,
    /// One line, without the file name (the caller prefixes it).
    pub message: String,
}

impl Finding {
    pub fn error(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// Quant bits ds4 loads; hanzo-engine writes 0.
pub const DS4_QUANT_BITS: [u8; 2] = [2, 4];
pub const HANZO_QUANT_BITS: u8 = 0;

/// Warnings visible in the header alone: values an engine would skip or
/// not understand, and timestamps from the future.
pub fn header_warnings(h: &Header, now: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    if !DS4_QUANT_BITS.contains(&h.quant_bits) {
        let msg = if h.quant_bits == HANZO_QUANT_BITS {
            "quant_bits 0: written by hanzo-engine; ds4 would skip this file".to_string()
        } else {
            format!(
                "quant_bits {}: ds4 loads only 2 or 4 and hanzo-engine writes 0, so no engine loads it",
                h.quant_bits
            )
        };
        out.push(Finding::warning("bad-quant", msg));
    }
    if h.reason.known_name().is_none() {
        out.push(Finding::warning(
            "unknown-reason",
            format!(
                "reason {} is not defined (ds4 reads it as unknown)",
                h.reason.0
            ),
        ));
    }
    let unknown = h.ext_flags.unknown_bits();
    if unknown != 0 {
        out.push(Finding::warning(
            "unknown-flags",
            format!(
                "ext_flags has unassigned bits {:?}",
                ExtFlags(unknown).names()
            ),
        ));
    }
    for (name, t) in [("created", h.created), ("last_used", h.last_used)] {
        if t > now.saturating_add(FUTURE_SLACK_SECS) {
            out.push(Finding::warning(
                "future-timestamp",
                format!("{name} {t} is {}s in the future", t - now),
            ));
        }
    }
    out
}
