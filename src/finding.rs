//! Findings: one problem with one file, with a stable code. `kvc ls` shows
//! the header warnings below; `kvc verify` adds everything that needs more
//! than the header to see.

use crate::code::Code;
use crate::format::dialect::{Dialect, DS4_QUANTS};
use crate::format::{ExtFlags, Header, Reason};
use serde::Serialize;

/// Clock skew tolerated before a timestamp counts as "in the future":
/// hosts that share a cache over NFS are rarely more than minutes apart.
pub(crate) const FUTURE_SLACK_SECS: u64 = 300;

pub use crate::code::Severity;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, documented code (`bad-quant`, `truncated`, …).
    pub code: Code,
    pub severity: Severity,
    /// One line, without the file name (the caller prefixes it).
    pub message: String,
}

impl Finding {
    pub fn error(code: Code, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// Warnings visible in the header alone, read by the rules of the file's
/// dialect: values its readers would skip or not understand, and timestamps
/// from the future. hanzo-engine reads neither the quant byte nor the ext
/// bits, so on its files neither is worth a word.
pub fn header_warnings(h: &Header, dialect: &Dialect, now: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    if dialect.quant_read && !DS4_QUANTS.contains(&h.quant_bits) {
        out.push(Finding::warning(
            Code::BadQuant,
            format!(
                "quant_bits {}: ds4 loads only 2 or 4, so its reader skips this file",
                h.quant_bits
            ),
        ));
    }
    let reason_known = match h.reason.0 {
        r if r <= Reason::DS4_MAX => true,
        7 => dialect.reason7,
        _ => false,
    };
    if !reason_known {
        out.push(Finding::warning(
            Code::UnknownReason,
            format!(
                "reason {} is not defined for {} (ds4 reads it as unknown)",
                h.reason.0, dialect.id
            ),
        ));
    }
    let unknown = h.ext_flags.unknown_bits();
    if dialect.ext_bits && unknown != 0 {
        out.push(Finding::warning(
            Code::UnknownFlags,
            format!(
                "ext_flags has unassigned bits {:?}",
                ExtFlags(unknown).names()
            ),
        ));
    }
    for (name, t) in [("created", h.created), ("last_used", h.last_used)] {
        if t > now.saturating_add(FUTURE_SLACK_SECS) {
            out.push(Finding::warning(
                Code::FutureTimestamp,
                format!("{name} {t} is {}s in the future", t - now),
            ));
        }
    }
    out
}
