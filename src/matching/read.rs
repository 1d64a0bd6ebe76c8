//! Reading stored texts as far as they agree with the prompt, through a
//! bounded buffer, and locating where they diverge in the chat.

use crate::format::{Header, HEADER_LEN, PREFIX_LEN, TEXT_OFFSET};
use crate::scan;
use crate::text::{ASSISTANT_MARKER, USER_MARKER};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Stored texts are compared with the prompt through a buffer of this size.
const CHUNK: usize = 32 << 10;
/// Bytes of context an excerpt shows on each side of a divergence.
pub(super) const EXCERPT_BYTES: usize = 40;

/// Where in the prompt's chat a byte offset lies (FORMAT.md §4 markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "part")]
pub enum Location {
    /// Offset 0: nothing is shared (another template, another BOS).
    FirstByte,
    /// Before the first `<｜User｜>`.
    SystemPrompt,
    /// In the n-th user turn (from its `<｜User｜>` on), 1-based.
    UserTurn { turn: usize },
    /// In the n-th assistant turn (from its `<｜Assistant｜>` on), 1-based.
    AssistantTurn { turn: usize },
    /// The prompt has no ds4 chat markers.
    Unmarked,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::FirstByte => f.write_str("at the very first byte"),
            Location::SystemPrompt => f.write_str("inside the system prompt"),
            Location::UserTurn { turn } => write!(f, "inside user turn {turn}"),
            Location::AssistantTurn { turn } => write!(f, "inside assistant turn {turn}"),
            Location::Unmarked => f.write_str("in a prompt without ds4 chat markers"),
        }
    }
}

/// The chat markers of a prompt, found once: locating an offset is then a
/// binary search.
pub(super) struct Markers {
    /// (offset, is a user marker), by offset.
    at: Vec<(usize, bool)>,
}

impl Markers {
    pub(super) fn of(prompt: &[u8]) -> Markers {
        let mut at: Vec<(usize, bool)> = memchr::memmem::find_iter(prompt, USER_MARKER)
            .map(|i| (i, true))
            .chain(memchr::memmem::find_iter(prompt, ASSISTANT_MARKER).map(|i| (i, false)))
            .collect();
        at.sort_unstable();
        Markers { at }
    }

    /// A marker that starts before `offset` owns it: a divergence inside
    /// `<｜User｜>` itself (where the stored text has `<｜Assistant｜>`)
    /// is at the start of that user turn.
    pub(super) fn locate(&self, offset: u64) -> Location {
        if offset == 0 {
            return Location::FirstByte;
        }
        if self.at.is_empty() {
            return Location::Unmarked;
        }
        let before = &self.at[..self.at.partition_point(|&(i, _)| (i as u64) < offset)];
        match before.last() {
            None => Location::SystemPrompt,
            Some(&(_, true)) => Location::UserTurn {
                turn: before.iter().filter(|m| m.1).count(),
            },
            Some(&(_, false)) => Location::AssistantTurn {
                turn: before.iter().filter(|m| !m.1).count(),
            },
        }
    }
}

/// Where a stored text first differs from the prompt, with raw excerpts
/// (sanitize before showing them): `before` is shared by both, `prompt`
/// and `stored` are each side from the split on. The split is `at` moved
/// back to the start of the UTF-8 character it falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub at: u64,
    pub location: Location,
    pub before: Vec<u8>,
    pub prompt: Vec<u8>,
    pub stored: Vec<u8>,
}

/// Bytes a stored text shares with the prompt, and where it diverges.
pub(super) type Compared = io::Result<(u64, Option<Divergence>)>;

/// Read `path`'s text as far as it agrees with `prompt`, up to `limit`
/// bytes: the number of leading bytes they share, and on a difference,
/// the excerpt around it. One open; the first read takes the 52-byte
/// prefix (to check the file is still the one scanned) with the first
/// chunk of text; then chunks of [`CHUNK`] bytes.
pub(super) fn compare(
    path: &Path,
    text_len: u32,
    prompt: &[u8],
    limit: u64,
    markers: &Markers,
) -> Compared {
    let file = scan::open_nofollow(path)?;
    let limit = limit.min(text_len as u64).min(prompt.len() as u64) as usize;
    let first = limit.min(CHUNK);
    // Later reads are at most CHUNK bytes too, and happen only when the
    // first one took a whole CHUNK.
    let mut buf = vec![0u8; PREFIX_LEN + first];
    file.read_exact_at(&mut buf[..PREFIX_LEN + first], 0)?;
    let h = Header::decode(buf[..HEADER_LEN].try_into().expect("48 bytes"));
    let tl = u32::from_le_bytes(buf[HEADER_LEN..PREFIX_LEN].try_into().expect("4 bytes"));
    if h.check().is_err() || tl != text_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the file changed since the directory was scanned",
        ));
    }
    let mut pos = 0usize;
    let mut chunk: &[u8] = &buf[PREFIX_LEN..PREFIX_LEN + first];
    loop {
        let want = &prompt[pos..pos + chunk.len()];
        if chunk != want {
            let i = chunk
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .expect("unequal slices of one length differ somewhere");
            let at = pos + i;
            return Ok((
                at as u64,
                Some(divergence(&file, text_len, prompt, at, markers)?),
            ));
        }
        pos += chunk.len();
        if pos >= limit {
            return Ok((pos as u64, None));
        }
        let n = (limit - pos).min(CHUNK);
        file.read_exact_at(&mut buf[..n], TEXT_OFFSET + pos as u64)?;
        chunk = &buf[..n];
    }
}

/// The start of the UTF-8 character byte `i` of `b` falls in (at most
/// three bytes back).
pub(super) fn char_start(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j > 0 && j < b.len() && i - j < 3 && b[j] & 0xc0 == 0x80 {
        j -= 1;
    }
    j
}

/// `b` cut to at most `max` bytes, ending on a character boundary.
pub(super) fn cut(b: &[u8], max: usize) -> &[u8] {
    if b.len() <= max {
        return b;
    }
    &b[..char_start(b, max)]
}

/// The excerpts around a divergence at `at` (the stored side is read:
/// at most [`EXCERPT_BYTES`] plus a character).
fn divergence(
    file: &File,
    text_len: u32,
    prompt: &[u8],
    at: usize,
    markers: &Markers,
) -> io::Result<Divergence> {
    let split = char_start(prompt, at);
    let mut from = split.saturating_sub(EXCERPT_BYTES);
    while from < split && prompt[from] & 0xc0 == 0x80 {
        from += 1;
    }
    let want = (text_len as usize - split).min(EXCERPT_BYTES + 3);
    let mut stored = vec![0u8; want];
    file.read_exact_at(&mut stored, TEXT_OFFSET + split as u64)?;
    let stored = cut(&stored, EXCERPT_BYTES).to_vec();
    Ok(Divergence {
        at: at as u64,
        location: markers.locate(at as u64),
        before: prompt[from..split].to_vec(),
        prompt: cut(&prompt[split..], EXCERPT_BYTES).to_vec(),
        stored,
    })
}

/// The header of a foreign file whose header passes mainline's reader
/// (D8 version 1): its text length, when the file is long enough for
/// header, text and payload (the reader's overflow-checked test).
pub(super) fn foreign_text_len(path: &Path, h: &Header, size: u64) -> Option<u32> {
    let file = scan::open_nofollow(path).ok()?;
    let mut pre = [0u8; PREFIX_LEN];
    file.read_exact_at(&mut pre, 0).ok()?;
    if Header::decode(pre[..HEADER_LEN].try_into().expect("48 bytes")) != *h {
        return None;
    }
    let tl = u32::from_le_bytes(pre[HEADER_LEN..].try_into().expect("4 bytes"));
    let need = TEXT_OFFSET
        .checked_add(tl as u64)?
        .checked_add(h.payload_bytes)?;
    (need <= size).then_some(tl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_located_in_the_chat() {
        let p = "<｜begin▁of▁sentence｜>sys<｜User｜>hi<｜Assistant｜>yo<｜User｜>again";
        let m = Markers::of(p.as_bytes());
        let at = |s: &str| p.find(s).unwrap() as u64;
        assert_eq!(m.locate(0), Location::FirstByte);
        assert_eq!(m.locate(at("sys")), Location::SystemPrompt);
        assert_eq!(m.locate(at("hi")), Location::UserTurn { turn: 1 });
        assert_eq!(m.locate(at("yo")), Location::AssistantTurn { turn: 1 });
        assert_eq!(m.locate(at("again")), Location::UserTurn { turn: 2 });
        assert_eq!(Markers::of(b"plain").locate(3), Location::Unmarked);
    }

    #[test]
    fn excerpts_end_on_character_boundaries() {
        let s = "ab｜cd".as_bytes(); // `｜` is 3 bytes at 2..5
        assert_eq!(char_start(s, 3), 2);
        assert_eq!(char_start(s, 4), 2);
        assert_eq!(char_start(s, 5), 5);
        assert_eq!(cut(s, 4), b"ab");
        assert_eq!(cut(s, 5), "ab｜".as_bytes());
    }
}
