//! The one line on top: why the prompt is (not) a hit, most specific
//! reason first.

use super::read::{Location, Markers};
use super::verdict::{Difference, KeyKind, NotLoadable, Verdict};
use super::{Entry, Outcome, Prompt};
use crate::format::ExtFlags;
use std::fmt;

/// A prefix the filters removed, longer than what the engine loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    pub text_bytes: u64,
    pub verdict: Verdict,
}

/// The one-line answer to "why (not) a hit?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diagnosis {
    Hit {
        key: String,
        text_bytes: u64,
        prompt_bytes: u64,
        /// The longest full prefix the filters removed, if longer.
        skipped: Option<Skipped>,
    },
    /// The lookup's pick fails to load; `fallback` is kvc's extra.
    PickFails {
        key: String,
        verdict: Verdict,
        fallback: Option<(String, u64)>,
    },
    NoCheckpoints,
    /// The prompt is empty as ds4 reads it.
    EmptyPrompt {
        nul_at: Option<u64>,
    },
    /// Full prefixes exist, and the filters (or the reader) removed them.
    FullPrefixSkipped {
        key: String,
        text_bytes: u64,
        verdict: Verdict,
        others: usize,
    },
    /// A stored text is a prefix, but its name is not its hash.
    MisnamedPrefix {
        key: String,
        text_bytes: u64,
        identity_named: bool,
    },
    /// Nothing passes mainline's reader.
    NoneLoadable {
        files: usize,
        example: NotLoadable,
    },
    /// No prefix at all: the nearest miss.
    LongestShared {
        key: String,
        shared: u64,
        location: Location,
        /// The prompt is a prefix of the stored text (which is longer).
        prompt_is_prefix: bool,
        kind: KeyKind,
        flags: ExtFlags,
    },
    /// No stored text shares even the first byte.
    NothingShared {
        files: usize,
    },
}

impl Diagnosis {
    pub fn code(&self) -> &'static str {
        match self {
            Diagnosis::Hit { .. } => "hit",
            Diagnosis::PickFails { .. } => "pick-fails",
            Diagnosis::NoCheckpoints => "no-checkpoints",
            Diagnosis::EmptyPrompt { .. } => "empty-prompt",
            Diagnosis::FullPrefixSkipped { .. } => "full-prefix-skipped",
            Diagnosis::MisnamedPrefix { .. } => "misnamed-prefix",
            Diagnosis::NoneLoadable { .. } => "none-loadable",
            Diagnosis::LongestShared { .. } => "longest-shared-prefix",
            Diagnosis::NothingShared { .. } => "nothing-shared",
        }
    }
}

/// `18,342`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "100%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::Hit {
                key,
                text_bytes,
                prompt_bytes,
                skipped,
            } => {
                write!(
                    f,
                    "hit: the engine loads {key}, which covers {} of {} prompt bytes ({}), and prefills the remaining {}",
                    thousands(*text_bytes),
                    thousands(*prompt_bytes),
                    percent(*text_bytes, *prompt_bytes),
                    thousands(prompt_bytes - text_bytes)
                )?;
                if let Some(s) = skipped {
                    write!(
                        f,
                        "; a longer prefix, {} ({} bytes), was skipped: {}",
                        s.key,
                        thousands(s.text_bytes),
                        s.verdict
                    )?;
                }
                Ok(())
            }
            Diagnosis::PickFails {
                key,
                verdict,
                fallback,
            } => {
                write!(f, "miss: the lookup picks {key} by its name, but ")?;
                match verdict {
                    Verdict::TextMismatch { diverges_at } => write!(
                        f,
                        "its stored text differs from the prompt at byte {}, so the load fails and the engine does not fall back",
                        thousands(*diverges_at)
                    )?,
                    other => write!(f, "{other}")?,
                }
                match fallback {
                    Some((k, n)) => write!(
                        f,
                        "; without that file it would load {k} ({} bytes) (kvc's extra information)",
                        thousands(*n)
                    ),
                    None => f.write_str("; without that file nothing else would match either"),
                }
            }
            Diagnosis::NoCheckpoints => {
                f.write_str("miss: the directory holds no checkpoints")
            }
            Diagnosis::EmptyPrompt { nul_at: Some(0) } => f.write_str(
                "miss: the prompt starts with a NUL byte, and ds4 reads it as a C string: it looks up an empty prompt",
            ),
            Diagnosis::EmptyPrompt { .. } => f.write_str("miss: the prompt is empty"),
            Diagnosis::FullPrefixSkipped {
                key,
                text_bytes,
                verdict,
                others,
            } => {
                if *others == 0 {
                    write!(
                        f,
                        "miss: the only full-prefix checkpoint, {key} ({} bytes), is skipped: {verdict}",
                        thousands(*text_bytes)
                    )
                } else {
                    write!(
                        f,
                        "miss: the longest of {} full-prefix checkpoints, {key} ({} bytes), is skipped: {verdict} (and so {} the shorter)",
                        others + 1,
                        thousands(*text_bytes),
                        if *others == 1 { "is" } else { "are" }
                    )
                }
            }
            Diagnosis::MisnamedPrefix {
                key,
                text_bytes,
                identity_named,
            } => {
                let why = if *identity_named {
                    "it is named by its agent session identity, not its text"
                } else {
                    "its name is not that text's SHA-1"
                };
                write!(
                    f,
                    "miss: {key}'s text ({} bytes) is a prefix of the prompt, but {why}, so the lookup never finds it",
                    thousands(*text_bytes)
                )
            }
            Diagnosis::NoneLoadable { files: 1, example } => write!(
                f,
                "miss: the only checkpoint file is not loadable by ds4 mainline: {example}"
            ),
            Diagnosis::NoneLoadable { files, example } => write!(
                f,
                "miss: none of the {files} checkpoint files is loadable by ds4 mainline (e.g. {example})"
            ),
            Diagnosis::LongestShared {
                key,
                shared,
                location,
                prompt_is_prefix,
                kind,
                flags,
            } => {
                if *prompt_is_prefix {
                    write!(
                        f,
                        "miss: the prompt is itself a prefix of {key}'s longer text; the engine loads only checkpoints no longer than the prompt"
                    )?;
                } else {
                    write!(
                        f,
                        "miss: no stored text is a prefix of the prompt; the longest shared prefix is {} bytes with {key}, which diverges {location}",
                        thousands(*shared)
                    )?;
                }
                if *kind == KeyKind::VisibleTranscript {
                    write!(
                        f,
                        " (its key is {}: render the prompt the same way)",
                        kind.describe(*flags)
                    )?;
                }
                Ok(())
            }
            Diagnosis::NothingShared { files: 1 } => {
                f.write_str("miss: the only stored text does not share even the first byte with the prompt")
            }
            Diagnosis::NothingShared { files } => write!(
                f,
                "miss: none of the {files} stored texts shares even the first byte with the prompt"
            ),
        }
    }
}

fn key_of(e: &Entry) -> String {
    e.short().to_string()
}

/// The one line on top, most specific first.
pub(super) fn diagnose(
    entries: &[Entry],
    outcome: &Outcome,
    prompt: &Prompt,
    markers: &Markers,
) -> Diagnosis {
    // Full prefixes the filters or the reader removed, longest first.
    let mut skipped: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.full_prefix == Some(true))
        .filter(|e| {
            !matches!(
                e.verdict,
                Verdict::Chosen
                    | Verdict::ShorterPrefix { .. }
                    | Verdict::TextMismatch { .. }
                    | Verdict::NotLoadable(
                        NotLoadable::ForeignPayload { .. } | NotLoadable::Unreadable { .. }
                    )
            )
        })
        .collect();
    skipped.sort_by(|a, b| {
        b.text_bytes()
            .cmp(&a.text_bytes())
            .then(a.order.cmp(&b.order))
    });
    match outcome {
        Outcome::Hit { chosen, .. } => {
            let c = &entries[*chosen];
            let longer = skipped.first().filter(|s| s.text_bytes() > c.text_bytes());
            return Diagnosis::Hit {
                key: key_of(c),
                text_bytes: c.text_bytes(),
                prompt_bytes: prompt.len(),
                skipped: longer.map(|s| Skipped {
                    key: key_of(s),
                    text_bytes: s.text_bytes(),
                    verdict: s.verdict.clone(),
                }),
            };
        }
        Outcome::Miss {
            pick: Some(pk),
            fallback,
        } => {
            return Diagnosis::PickFails {
                key: key_of(&entries[*pk]),
                verdict: entries[*pk].verdict.clone(),
                fallback: fallback.map(|f| (key_of(&entries[f]), entries[f].text_bytes())),
            };
        }
        Outcome::Miss { pick: None, .. } => {}
    }
    if entries.is_empty() {
        return Diagnosis::NoCheckpoints;
    }
    if prompt.is_empty() && skipped.is_empty() {
        return Diagnosis::EmptyPrompt {
            nul_at: prompt.nul_at(),
        };
    }
    if let Some(s) = skipped.first() {
        return Diagnosis::FullPrefixSkipped {
            key: key_of(s),
            text_bytes: s.text_bytes(),
            verdict: s.verdict.clone(),
            others: skipped.len() - 1,
        };
    }
    let misnamed = entries
        .iter()
        .filter_map(|e| match e.verdict {
            Verdict::NotAPrefix(Difference::NameOnly { identity_named }) if e.text_bytes() > 0 => {
                Some((e, identity_named))
            }
            _ => None,
        })
        .max_by(|a, b| {
            a.0.text_bytes()
                .cmp(&b.0.text_bytes())
                .then(b.0.order.cmp(&a.0.order))
        });
    if let Some((m, identity_named)) = misnamed {
        return Diagnosis::MisnamedPrefix {
            key: key_of(m),
            text_bytes: m.text_bytes(),
            identity_named,
        };
    }
    let loadable = entries
        .iter()
        .filter(|e| !matches!(e.verdict, Verdict::NotLoadable(_)))
        .count();
    if loadable == 0 {
        let example = entries
            .iter()
            .find_map(|e| match &e.verdict {
                Verdict::NotLoadable(n) => Some(n.clone()),
                _ => None,
            })
            .expect("no loadable file means a not-loadable one");
        return Diagnosis::NoneLoadable {
            files: entries.len(),
            example,
        };
    }
    // The nearest miss among the files the lookup looks at (loadable ones).
    let near = entries
        .iter()
        .filter(|e| !matches!(e.verdict, Verdict::NotLoadable(_)))
        .filter_map(|e| e.shared_prefix.map(|s| (s, e)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.order.cmp(&a.1.order)));
    match near {
        Some((shared, e)) if shared > 0 => Diagnosis::LongestShared {
            key: key_of(e),
            shared,
            location: e
                .divergence
                .as_ref()
                .map_or_else(|| markers.locate(shared), |d| d.location),
            prompt_is_prefix: shared == prompt.len() && e.text_bytes() > prompt.len(),
            kind: e.key_kind.unwrap_or(KeyKind::Text),
            flags: e.header.as_ref().map_or(ExtFlags(0), |h| h.ext_flags),
        },
        _ => Diagnosis::NothingShared { files: loadable },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(18_342), "18,342");
        assert_eq!(thousands(1_048_576), "1,048,576");
    }
}
