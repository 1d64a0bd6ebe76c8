//! What the lookup makes of one file: its verdict, in the issue's
//! vocabulary and the engine's order, and the kind of key its name is.

use super::diagnosis::thousands;
use crate::format::checkpoint::Key;
use crate::format::dialect::{DialectId, NotLoaded};
use crate::format::{model_name, ExtFlags, Header};
use serde::Serialize;
use std::fmt;

/// What a checkpoint's name is the hash of (FORMAT.md §2, §3 ext flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// SHA-1 of the text, which is the tokenizer-decoded token text.
    Text,
    /// SHA-1 of the text, which is a client-visible transcript (ext bit 1
    /// responses-visible or bit 2 thinking-visible): it matches a prompt
    /// rendered the same way, not the token text.
    VisibleTranscript,
    /// ext bit 3: named by the ds4-agent session identity
    /// (SHA-1(title ‖ created)), not by its text: never a lookup hit.
    SessionIdentity,
    /// `sysprompt.kv`: a fixed name.
    FixedName,
}

impl KeyKind {
    pub(super) fn of(key: &Key, h: &Header, dialect: Option<DialectId>) -> KeyKind {
        let ext_bits = dialect.is_none_or(|d| d.spec().ext_bits);
        if *key == Key::Sysprompt {
            KeyKind::FixedName
        } else if ext_bits && h.ext_flags.has_session_title() {
            KeyKind::SessionIdentity
        } else if ext_bits && h.ext_flags.visible_transcript() {
            KeyKind::VisibleTranscript
        } else {
            KeyKind::Text
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            KeyKind::Text => "text",
            KeyKind::VisibleTranscript => "visible-transcript",
            KeyKind::SessionIdentity => "session-identity",
            KeyKind::FixedName => "fixed-name",
        }
    }

    /// Which visible transcript, from the ext bits, in words.
    pub fn describe(self, flags: ExtFlags) -> &'static str {
        match self {
            KeyKind::Text => "the token text",
            KeyKind::VisibleTranscript => {
                let r = flags.0 & ExtFlags::RESPONSES_VISIBLE != 0;
                let k = flags.0 & ExtFlags::THINKING_VISIBLE != 0;
                match (r, k) {
                    (true, false) => "the responses-visible transcript",
                    (false, true) => "the thinking-visible transcript",
                    _ => "a client-visible transcript",
                }
            }
            KeyKind::SessionIdentity => "the agent session's identity, not its text",
            KeyKind::FixedName => "a fixed name",
        }
    }
}

/// Why a file is outside the population the lookup looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotLoadable {
    /// Mainline's reader skips its header.
    Reader(NotLoaded),
    /// `sysprompt.kv`: ds4-agent loads it by its path; the lookup lists
    /// only `<40 hex>.kv` names.
    FixedName,
    /// Not a usable checkpoint (a scan's invalid file).
    Invalid { code: &'static str, error: String },
    /// A dialect kvc does not fully read, outside mainline's population.
    Foreign { what: String, why: String },
    /// The pick, a foreign dialect whose header passes mainline's reader
    /// (D8 version 1): its payload is not mainline's, so the load fails.
    ForeignPayload { dialect: DialectId },
    /// The pick's text could not be read now (it changed or vanished
    /// since the scan).
    Unreadable { error: String },
}

impl fmt::Display for NotLoadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLoadable::Reader(n) => {
                write!(f, "mainline's reader skips it: {n}")?;
                match n {
                    NotLoaded::Abi { abi: 0 } => {
                        f.write_str(" (written before 2026-05-26, or by hanzo-engine)")
                    }
                    NotLoaded::Version { .. } => f.write_str(" (a fork's envelope)"),
                    _ => Ok(()),
                }
            }
            NotLoadable::FixedName => f.write_str(
                "sysprompt.kv is ds4-agent's, loaded by its fixed path; the lookup lists only <40 hex>.kv names",
            ),
            NotLoadable::Invalid { code, error } => {
                write!(f, "{code}: {error}")?;
                if *code == "symlink" {
                    f.write_str(" (ds4 follows links: if it points at a checkpoint, the engine may load that)")?;
                }
                Ok(())
            }
            NotLoadable::Foreign { what, why } => write!(f, "foreign, {what}; {why}"),
            NotLoadable::ForeignPayload { dialect } => write!(
                f,
                "picked (its header passes mainline's reader), but its payload is {dialect}'s ({}), which mainline cannot load: a miss, with no fallback",
                dialect.spec().writer
            ),
            NotLoadable::Unreadable { error } => {
                write!(f, "picked, but kvc could not read its text: {error}")
            }
        }
    }
}

/// How a tie between two prefixes of the same length was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tie {
    /// The pick has more tokens.
    FewerTokens,
    /// Same length and tokens: the pick comes first in directory order.
    LaterInDirectory,
}

/// How the text of a `not-a-prefix` file compares with the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The stored text first differs from the prompt at this byte.
    At(u64),
    /// The stored text is a prefix of the prompt; only the name is not its
    /// SHA-1: misnamed, or (`identity_named`) an agent session named by its
    /// identity (ext bit 3).
    NameOnly { identity_named: bool },
    /// The text could not be read (it changed or vanished since the scan).
    Unknown,
}

/// One file's fate in the lookup. The codes are the vocabulary;
/// the filters are listed in the engine's order, and a file failing
/// several gets the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The engine loads it.
    Chosen,
    /// Outside the reader's population (or, for the pick, failing to load
    /// beyond the text: a foreign payload, a text kvc cannot read).
    NotLoadable(NotLoadable),
    TextLongerThanPrompt {
        text_bytes: u32,
        prompt_bytes: u64,
    },
    /// `(int)tokens < min_tokens`: a header count of 2^31 or more is
    /// negative to ds4.
    TokensBelowMin {
        tokens: u32,
        min_tokens: i32,
    },
    OtherModel {
        model_id: u8,
        live: u8,
    },
    CtxLargerThanLive {
        ctx: u32,
        live: u32,
    },
    OtherQuant {
        quant_bits: u8,
        live: u8,
    },
    /// Past the filters, but its name is not the SHA-1 of the prompt's
    /// first `text_bytes` bytes; how its stored text compares.
    NotAPrefix(Difference),
    /// A prefix by its name, but the pick is longer (or won the tie).
    ShorterPrefix {
        text_bytes: u32,
        pick_bytes: u32,
        tie: Option<Tie>,
    },
    /// Picked by its name, but its stored text is not the prompt's prefix:
    /// `try_load_text` fails ("cached text hash mismatch") and the engine
    /// misses, with no fallback.
    TextMismatch {
        diverges_at: u64,
    },
}

impl Verdict {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Chosen => "chosen",
            Verdict::NotLoadable(_) => "not-loadable",
            Verdict::TextLongerThanPrompt { .. } => "text-longer-than-prompt",
            Verdict::TokensBelowMin { .. } => "tokens-below-min",
            Verdict::OtherModel { .. } => "other-model",
            Verdict::CtxLargerThanLive { .. } => "ctx-larger-than-live",
            Verdict::OtherQuant { .. } => "other-quant",
            Verdict::NotAPrefix { .. } => "not-a-prefix",
            Verdict::ShorterPrefix { .. } => "shorter-prefix",
            Verdict::TextMismatch { .. } => "text-mismatch",
        }
    }

    /// Every code, in the engine's order, for docs and tests.
    pub const CODES: [&'static str; 10] = [
        "chosen",
        "not-loadable",
        "text-longer-than-prompt",
        "tokens-below-min",
        "other-model",
        "ctx-larger-than-live",
        "other-quant",
        "not-a-prefix",
        "shorter-prefix",
        "text-mismatch",
    ];
}

fn model(id: u8) -> String {
    match model_name(id) {
        Some(n) => format!("{id} ({n})"),
        None => id.to_string(),
    }
}

impl fmt::Display for Verdict {
    /// Why, in a few words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Chosen => f.write_str("the engine loads it"),
            Verdict::NotLoadable(n) => n.fmt(f),
            Verdict::TextLongerThanPrompt {
                text_bytes,
                prompt_bytes,
            } => write!(
                f,
                "text of {} bytes is longer than the {}-byte prompt",
                thousands(*text_bytes as u64),
                thousands(*prompt_bytes)
            ),
            Verdict::TokensBelowMin { tokens, min_tokens } => {
                write!(f, "{tokens} tokens, below the minimum {min_tokens}")?;
                if *tokens > i32::MAX as u32 {
                    write!(f, " (ds4 reads the count as the int {})", *tokens as i32)?;
                }
                Ok(())
            }
            Verdict::OtherModel { model_id, live } => {
                write!(f, "model {}, live model {}", model(*model_id), model(*live))
            }
            Verdict::CtxLargerThanLive { ctx, live } => {
                write!(f, "written for ctx {ctx} > live {live}")
            }
            Verdict::OtherQuant { quant_bits, live } => write!(
                f,
                "quant {quant_bits}, live quant {live} (--reject-different-quant)"
            ),
            Verdict::NotAPrefix(Difference::At(d)) => {
                write!(f, "differs from the prompt at byte {}", thousands(*d))
            }
            Verdict::NotAPrefix(Difference::NameOnly {
                identity_named: true,
            }) => f.write_str(
                "its text is a prefix of the prompt, but it is named by its agent session identity (ext bit 3), not its text: the lookup never finds it",
            ),
            Verdict::NotAPrefix(Difference::NameOnly {
                identity_named: false,
            }) => f.write_str(
                "its text is a prefix of the prompt, but its name is not that text's SHA-1 (misnamed): the lookup never finds it",
            ),
            Verdict::NotAPrefix(Difference::Unknown) => f.write_str(
                "its name is not the SHA-1 of the prompt's prefix of its length (its text could not be read)",
            ),
            Verdict::ShorterPrefix {
                text_bytes,
                pick_bytes,
                tie: None,
            } => write!(
                f,
                "a prefix of {} bytes; the pick is longer ({} bytes)",
                thousands(*text_bytes as u64),
                thousands(*pick_bytes as u64)
            ),
            Verdict::ShorterPrefix {
                tie: Some(Tie::FewerTokens),
                ..
            } => f.write_str("a prefix as long as the pick, with fewer tokens"),
            Verdict::ShorterPrefix {
                tie: Some(Tie::LaterInDirectory),
                ..
            } => f.write_str(
                "a prefix as long as the pick with as many tokens; the pick comes first in directory order",
            ),
            Verdict::TextMismatch { diverges_at } => write!(
                f,
                "picked by its name, but its stored text differs from the prompt at byte {}: ds4 fails the load (\"cached text hash mismatch\") and misses, with no fallback",
                thousands(*diverges_at)
            ),
        }
    }
}
