//! What a checkpoint's name must be, given its content and its dialect
//! (FORMAT.md §2): one rule for every reader and writer of names — the
//! scan that lists a directory, and the export and import that move files
//! between directories.

use super::dialect::{DialectId, Identity};
use super::header::Header;
use super::trailer::{SessionTitle, TitleError};
use super::Key;

/// The key a checkpoint's content says its file name must carry:
///
/// - `sysprompt.kv` has a fixed name: nothing to compare (`Ok(None)`);
/// - a ds4-dialect file with ext bit 3 (a ds4-agent session since bfe070a)
///   is named by its identity, SHA-1(title ‖ created as u64 LE), the title
///   read as the agent reads it (a NUL ends it);
/// - every other file is named by the SHA-1 of its text, whatever its ext
///   bits say where they mean nothing (hanzo-engine).
///
/// `text_key` is the SHA-1 of the text and `title` the session title, each
/// when it was read; `Ok(None)` when what decides was not read. A title
/// that was read and is broken is `Err`: the name cannot be checked.
pub(crate) fn expected_key(
    dialect: DialectId,
    header: &Header,
    name: &Key,
    text_key: Option<&Key>,
    title: Option<&Result<SessionTitle, TitleError>>,
) -> Result<Option<Key>, TitleError> {
    if *name == Key::Sysprompt {
        return Ok(None);
    }
    match dialect.spec().identity {
        Identity::Ds4 if header.ext_flags.has_session_title() => match title {
            Some(Ok(t)) => Ok(Some(t.identity.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        },
        Identity::Ds4 | Identity::TextSha1 => Ok(text_key.cloned()),
        Identity::Unhashed => Ok(None),
    }
}

/// How a name was derived, for messages: `SHA-1 of the text` or `session
/// identity SHA-1(title ‖ created)`.
pub(crate) fn describe_rule(dialect: DialectId, header: &Header) -> &'static str {
    match dialect.spec().identity {
        Identity::Ds4 if header.ext_flags.has_session_title() => {
            "session identity SHA-1(title ‖ created)"
        }
        Identity::Unhashed => "name (not a hash kvc reads)",
        _ => "SHA-1 of the text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::header::{ExtFlags, Reason, MAGIC};
    use crate::format::trailer::session_identity;

    fn header(ext: u8) -> Header {
        Header {
            magic: MAGIC,
            version: 1,
            quant_bits: 2,
            reason: Reason::AGENT_SESSION,
            ext_flags: ExtFlags(ext),
            model_id: 0,
            tokens: 10,
            hits: 0,
            ctx_size: 4096,
            payload_abi: 2,
            reserved: [0; 3],
            created: 7,
            last_used: 7,
            payload_bytes: 0,
        }
    }

    fn title(t: &[u8]) -> Result<SessionTitle, TitleError> {
        Ok(SessionTitle {
            len: t.len() as u32,
            head: t.to_vec(),
            identity: session_identity(t, 7),
            trailing: 0,
        })
    }

    #[test]
    fn rules_by_dialect_and_bit3() {
        let text = Key::of_text(b"text");
        let name = Key::of_text(b"whatever");
        let t = title(b"Title");
        let e = |d, ext, tk: Option<&Key>, tt| expected_key(d, &header(ext), &name, tk, tt);
        // ds4 dialects: bit 3 names by identity, else by text.
        assert_eq!(
            e(DialectId::D3, 8, Some(&text), Some(&t)),
            Ok(Some(session_identity(b"Title", 7)))
        );
        assert_eq!(
            e(DialectId::D1, 0, Some(&text), None),
            Ok(Some(text.clone()))
        );
        // hanzo gives bit 3 no meaning.
        assert_eq!(
            e(DialectId::D20, 8, Some(&text), Some(&t)),
            Ok(Some(text.clone()))
        );
        // Not read: nothing to check; broken: an error.
        assert_eq!(e(DialectId::D3, 8, Some(&text), None), Ok(None));
        assert_eq!(
            e(DialectId::D3, 8, None, Some(&Err(TitleError::Short(1)))),
            Err(TitleError::Short(1))
        );
        assert_eq!(
            expected_key(
                DialectId::D3,
                &header(8),
                &Key::Sysprompt,
                Some(&text),
                Some(&t)
            ),
            Ok(None)
        );
    }
}
