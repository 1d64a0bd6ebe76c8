//! One pass over a checkpoint's bytes, made by export and install alike:
//! the BLAKE3 digest of the whole file, and what its dialect and name
//! checks need, gathered as the bytes stream by (nothing is read twice,
//! nothing held but a few small buffers).

use super::*;
use crate::format::checkpoint::{self, Defect, Key};
use crate::format::dialect::{self, Detected, DialectId, Lz4Framing, Lz4Walk, Probe};
use crate::format::identity;
use crate::format::trailer::{SessionTitle, TitleError, TitleReader};
use crate::format::{Header, HEADER_LEN, PREFIX_LEN};
use sha1::{Digest, Sha1};

/// Bytes at the start of a file that a dialect check may read: the 52-byte
/// prefix, and D13's longer header up to its text (length at 72, text at 76).
const HEAD_LEN: usize = 80;

/// The part of `[from, to)` that a buffer at `off` of `len` bytes covers, as
/// a range of that buffer.
fn overlap(off: u64, len: usize, from: u64, to: u64) -> Option<std::ops::Range<usize>> {
    let end = off.saturating_add(len as u64);
    let (a, b) = (off.max(from), end.min(to));
    (a < b).then(|| (a - off) as usize..(b - off) as usize)
}

/// SHA-1 of a fixed range of a stream.
struct RangeSha1 {
    at: u64,
    len: u64,
    sha: Sha1,
    fed: u64,
}

impl RangeSha1 {
    fn new(at: u64, len: u64) -> RangeSha1 {
        RangeSha1 {
            at,
            len,
            sha: Sha1::new(),
            fed: 0,
        }
    }

    fn feed(&mut self, off: u64, buf: &[u8]) {
        if let Some(r) = overlap(off, buf.len(), self.at, self.at.saturating_add(self.len)) {
            self.fed += r.len() as u64;
            self.sha.update(&buf[r]);
        }
    }

    /// `(at, len, digest)` when every byte of the range passed.
    fn finish(self) -> Option<(u64, u64, [u8; 20])> {
        (self.fed == self.len).then(|| (self.at, self.len, self.sha.finalize().into()))
    }
}

/// Four bytes at a fixed offset of a stream (D14/D15's tail magic).
struct Window {
    at: u64,
    buf: [u8; 4],
    got: usize,
}

impl Window {
    fn feed(&mut self, off: u64, buf: &[u8]) {
        if let Some(r) = overlap(off, buf.len(), self.at, self.at.saturating_add(4)) {
            let into = (off + r.start as u64 - self.at) as usize;
            self.got += r.len();
            self.buf[into..into + r.len()].copy_from_slice(&buf[r]);
        }
    }
}

/// The D8 chunk-framing walk ([`dialect::Lz4Walk`]), fed from a stream.
struct Lz4Feed {
    at: u64,
    len: u64,
    walk: Lz4Walk,
    /// The record being gathered across buffers.
    rec: Vec<u8>,
}

impl Lz4Feed {
    fn feed(&mut self, off: u64, buf: &[u8]) {
        while let Some((rel, n)) = self.walk.need() {
            let base = self.at.saturating_add(rel);
            let from = base.saturating_add(self.rec.len() as u64);
            let Some(r) = overlap(off, buf.len(), from, base.saturating_add(n as u64)) else {
                return;
            };
            self.rec.extend_from_slice(&buf[r]);
            if self.rec.len() < n {
                return;
            }
            let rec = std::mem::take(&mut self.rec);
            self.walk.supply(&rec);
        }
    }
}

/// What a dialect check or a name check may need from a file, gathered as
/// its bytes pass: set up once the prefix is known.
struct Regions {
    text: RangeSha1,
    /// D13's text, after its 72-byte header.
    d13_text: Option<RangeSha1>,
    tail: Window,
    lz4: Option<Lz4Feed>,
    title: Option<TitleReader>,
}

impl Regions {
    /// From the first bytes of a file (at least the 52-byte prefix).
    fn new(head: &[u8]) -> Regions {
        let h = Header::decode(head[..HEADER_LEN].try_into().expect("48"));
        let text_len = u32::from_le_bytes(head[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
        let d13_text = (h.version == 2 && head.len() >= 76).then(|| {
            let len = u32::from_le_bytes(head[72..76].try_into().expect("4"));
            RangeSha1::new(76, len as u64)
        });
        let payload_at = crate::format::TEXT_OFFSET + text_len as u64;
        Regions {
            text: RangeSha1::new(crate::format::TEXT_OFFSET, text_len as u64),
            d13_text,
            tail: Window {
                at: h.payload_bytes,
                buf: [0; 4],
                got: 0,
            },
            lz4: (h.reserved[0] == dialect::CODEC_LZ4).then(|| Lz4Feed {
                at: payload_at,
                len: h.payload_bytes,
                walk: Lz4Walk::new(h.payload_bytes),
                rec: Vec::new(),
            }),
            title: h
                .ext_flags
                .has_session_title()
                .then(|| TitleReader::new(checkpoint::payload_end(&h, text_len), h.created)),
        }
    }

    fn feed(&mut self, off: u64, buf: &[u8]) {
        self.text.feed(off, buf);
        if let Some(d) = self.d13_text.as_mut() {
            d.feed(off, buf);
        }
        self.tail.feed(off, buf);
        if let Some(l) = self.lz4.as_mut() {
            l.feed(off, buf);
        }
        if let Some(t) = self.title.as_mut() {
            t.feed(off, buf);
        }
    }
}

/// What [`dialect::detect`] may read of a file, as a stream captured it:
/// the first [`HEAD_LEN`] bytes, the tail magic, the SHA-1 of the text
/// ranges and the chunk-framing walk. Anything else reads as missing.
#[derive(Clone, Debug)]
pub(crate) struct Streamed {
    size: u64,
    head: Vec<u8>,
    tail: Option<(u64, [u8; 4])>,
    sha1s: Vec<(u64, u64, [u8; 20])>,
    lz4: Option<(u64, u64, std::result::Result<Lz4Framing, String>)>,
}

impl Probe for Streamed {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        let end = off.saturating_add(buf.len() as u64);
        if end <= self.head.len() as u64 {
            buf.copy_from_slice(&self.head[off as usize..end as usize]);
            return true;
        }
        match self.tail {
            Some((at, t)) if off >= at && end <= at + 4 => {
                buf.copy_from_slice(&t[(off - at) as usize..(end - at) as usize]);
                true
            }
            _ => false,
        }
    }
    fn sha1_at(&self, off: u64, len: u64) -> Option<[u8; 20]> {
        self.sha1s
            .iter()
            .find(|(a, l, _)| (*a, *l) == (off, len))
            .map(|s| s.2)
    }
    fn lz4_framing(&self, at: u64, len: u64) -> std::result::Result<Lz4Framing, String> {
        match &self.lz4 {
            Some((a, l, r)) if (*a, *l) == (at, len) => r.clone(),
            _ => Err("the chunk framing was not read".into()),
        }
    }
}

/// What one pass over a checkpoint's bytes learns: the BLAKE3 digest of the
/// whole file, and what its dialect and name checks need (the prefix, the
/// SHA-1 of the text, a session title, a few bytes and walks for the fork
/// dialects). Both export and import feed every byte through it exactly
/// once, so neither side reads anything twice and nothing is held in memory
/// but a few small buffers.
pub(crate) struct StreamCheck {
    blake3: blake3::Hasher,
    head: [u8; HEAD_LEN],
    seen: u64,
    regions: Option<Regions>,
}

/// The result of a [`StreamCheck`].
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub(crate) blake3: String,
    pub(crate) size: u64,
    /// Header and text_len, when the 52-byte prefix was there.
    pub(crate) prefix: Option<(Header, u32)>,
    /// SHA-1 key of the text, when the whole text was there.
    pub(crate) text_key: Option<Key>,
    /// The session title, when ext bit 3 is set.
    pub(crate) title: Option<std::result::Result<SessionTitle, TitleError>>,
    pub(crate) probe: Streamed,
}

impl StreamCheck {
    pub(crate) fn new() -> StreamCheck {
        StreamCheck {
            blake3: blake3::Hasher::new(),
            head: [0; HEAD_LEN],
            seen: 0,
            regions: None,
        }
    }

    pub(crate) fn update(&mut self, buf: &[u8]) {
        self.blake3.update(buf);
        let start = self.seen;
        let end = start + buf.len() as u64;
        let hl = HEAD_LEN as u64;
        if start < hl {
            let n = (hl - start).min(buf.len() as u64) as usize;
            self.head[start as usize..start as usize + n].copy_from_slice(&buf[..n]);
        }
        self.seen = end;
        match self.regions.as_mut() {
            Some(r) => r.feed(start, buf),
            None if end >= hl => {
                // The head is complete: set up, replay it, then the rest.
                let mut r = Regions::new(&self.head);
                r.feed(0, &self.head);
                r.feed(hl, &buf[(hl - start) as usize..]);
                self.regions = Some(r);
            }
            None => {}
        }
    }

    pub(crate) fn finish(self) -> Checked {
        let have = (self.seen as usize).min(HEAD_LEN);
        let head = self.head[..have].to_vec();
        let regions = match self.regions {
            Some(r) => Some(r),
            None if have >= PREFIX_LEN => {
                let mut r = Regions::new(&head);
                r.feed(0, &head);
                Some(r)
            }
            None => None,
        };
        let prefix = (have >= PREFIX_LEN).then(|| {
            let h = Header::decode(head[..HEADER_LEN].try_into().expect("48"));
            let tl = u32::from_le_bytes(head[HEADER_LEN..PREFIX_LEN].try_into().expect("4"));
            (h, tl)
        });
        let mut probe = Streamed {
            size: self.seen,
            head,
            tail: None,
            sha1s: Vec::new(),
            lz4: None,
        };
        let (mut text_key, mut title) = (None, None);
        if let Some(r) = regions {
            if let Some(t) = r.text.finish() {
                text_key = Some(Key::from_digest(&t.2));
                probe.sha1s.push(t);
            }
            probe.sha1s.extend(r.d13_text.and_then(RangeSha1::finish));
            probe.tail = (r.tail.got == 4).then_some((r.tail.at, r.tail.buf));
            probe.lz4 = r.lz4.map(|l| (l.at, l.len, l.walk.result()));
            title = r.title.map(|t| t.finish(self.seen));
        }
        Checked {
            blake3: self.blake3.finalize().to_hex().to_string(),
            size: self.seen,
            prefix,
            text_key,
            title,
            probe,
        }
    }
}

/// Why a file's bytes are not a checkpoint that may be exported or
/// installed under its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The checks a scan makes: envelope, zero tokens.
    Defect(Defect),
    /// The name is not what the content says (`key-mismatch`).
    Name { rule: &'static str, actual: Key },
    /// ext bit 3 over a session title that cannot be read: the name cannot
    /// be checked.
    Title(TitleError),
    /// A dialect kvc does not read (FORMAT.md §9): what was recognised.
    Foreign(String),
}

impl Problem {
    /// The message, with `verb` ("install", "export") for a foreign file.
    pub(crate) fn describe(&self, verb: &str) -> String {
        match self {
            Problem::Defect(d) => format!("not a valid checkpoint: {d}"),
            Problem::Name { rule, actual } => format!(
                "not a valid checkpoint (key-mismatch): its {rule} is {actual}, not the file name"
            ),
            Problem::Title(e) => {
                format!("not a valid checkpoint: {e}; its name (the session identity) cannot be checked")
            }
            Problem::Foreign(what) => {
                format!("foreign dialect {what}: kvc does not {verb} files it cannot verify")
            }
        }
    }
}

impl Checked {
    /// The dialect of these bytes under the name `key` (`resolve` decides
    /// between a pre-ABI ds4 file and a hanzo-engine file, whose headers
    /// can be identical: the directory's engine does), or why they are not a checkpoint a scan of a
    /// directory would list under that name: a dialect kvc does not read,
    /// the envelope, zero tokens (where the dialect does not allow them),
    /// and the name the dialect's identity rule gives the content
    /// ([`identity::expected_key`], the rule the scan applies).
    pub(crate) fn verdict(
        &self,
        key: &Key,
        resolve: impl FnOnce(&Detected) -> Option<DialectId>,
    ) -> std::result::Result<DialectId, Problem> {
        let Some((h, tl)) = &self.prefix else {
            return Err(Problem::Defect(if self.size == 0 {
                Defect::Empty
            } else {
                Defect::ShortHeader { size: self.size }
            }));
        };
        let detected = dialect::detect(h, *tl, Some(key), &self.probe);
        if let Detected::NotKvc = detected {
            return Err(Problem::Defect(Defect::Header(
                crate::format::HeaderError::BadMagic(h.magic),
            )));
        }
        if dialect::is_foreign(&detected) {
            let payload_at = crate::format::TEXT_OFFSET + *tl as u64;
            return Err(Problem::Foreign(dialect::describe_foreign(
                &detected,
                h,
                &self.probe,
                payload_at,
            )));
        }
        let dialect = resolve(&detected).expect("a dialect kvc reads is known");
        checkpoint::check_envelope(h, *tl, self.size).map_err(Problem::Defect)?;
        if h.tokens == 0 && !dialect.spec().zero_tokens_valid {
            return Err(Problem::Defect(Defect::ZeroTokens));
        }
        match identity::expected_key(dialect, h, key, self.text_key.as_ref(), self.title.as_ref()) {
            Ok(Some(want)) if want != *key => Err(Problem::Name {
                rule: identity::describe_rule(dialect, h),
                actual: want,
            }),
            Ok(_) => Ok(dialect),
            Err(e) => Err(Problem::Title(e)),
        }
    }

    pub(crate) fn summary(&self) -> Option<HeaderSummary> {
        self.prefix
            .as_ref()
            .map(|(h, tl)| HeaderSummary::of(h, *tl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dialect::Engine;

    #[test]
    fn stream_check_hashes_the_text_across_chunk_boundaries() {
        let text = b"hello world, this is the text";
        let mut file = Vec::new();
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(b"KVC");
        h[3] = 1;
        h[4] = 2; // quant
        h[8] = 1; // tokens
        h[16] = 1; // ctx
        h[40] = 5; // payload_bytes
        file.extend_from_slice(&h);
        file.extend_from_slice(&(text.len() as u32).to_le_bytes());
        file.extend_from_slice(text);
        file.extend_from_slice(b"12345");
        for step in [1, 3, 7, 50, 1000] {
            let mut c = StreamCheck::new();
            for chunk in file.chunks(step) {
                c.update(chunk);
            }
            let done = c.finish();
            assert_eq!(done.text_key, Some(Key::of_text(text)), "step {step}");
            assert_eq!(done.blake3, blake3::hash(&file).to_hex().to_string());
            let verdict = |k: &Key| done.verdict(k, |d| d.resolve(Engine::Ds4));
            assert_eq!(verdict(&Key::of_text(text)), Ok(DialectId::D1));
            assert!(matches!(
                verdict(&Key::of_text(b"other")),
                Err(Problem::Name { .. })
            ));
        }
    }

    /// A file's bytes with a header, text, payload and trailer.
    fn file(
        header: impl FnOnce(&mut [u8; HEADER_LEN]),
        text: &[u8],
        payload: &[u8],
        after: &[u8],
    ) -> Vec<u8> {
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(b"KVC");
        h[3] = 1;
        h[4] = 2;
        h[8] = 1; // tokens
        h[16] = 1; // ctx
        h[40..48].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header(&mut h);
        let mut f = h.to_vec();
        f.extend_from_slice(&(text.len() as u32).to_le_bytes());
        f.extend_from_slice(text);
        f.extend_from_slice(payload);
        f.extend_from_slice(after);
        f
    }

    #[test]
    fn a_stream_tells_the_dialect_as_a_file_read_at_random_does() {
        use crate::format::dialect::InMemory;
        let text = b"some text";
        let key = Key::of_text(text);
        // D8: LZ4 codec in byte 21, chunks of 2^12, a framing that adds up.
        let mut lz4 = Vec::new();
        lz4.extend_from_slice(&7u64.to_le_bytes());
        lz4.extend_from_slice(&2u32.to_le_bytes());
        for (raw, comp) in [(3u32, 2u32), (4, 1)] {
            lz4.extend_from_slice(&raw.to_le_bytes());
            lz4.extend_from_slice(&comp.to_le_bytes());
            lz4.extend(std::iter::repeat_n(9u8, comp as usize));
        }
        let d8 = |v: u8| {
            file(
                |h| {
                    h[3] = v;
                    h[20] = 2;
                    h[21] = 1;
                    h[22] = 12;
                },
                text,
                &lz4,
                b"",
            )
        };
        // The same bytes 21-22 without the framing: a D11 fingerprint.
        let d11 = file(
            |h| {
                h[20] = 2;
                h[21] = 1;
                h[22] = 12;
            },
            text,
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
            b"",
        );
        // D14: version 2, ABI 3, the u64 at 40 points at `TAIL`.
        let mut d14 = file(|h| h[3] = 2, text, b"", b"");
        let tail_at = d14.len() as u64 + 5;
        d14[20] = 3;
        d14[40..48].copy_from_slice(&tail_at.to_le_bytes());
        d14.extend_from_slice(b"xxxxxTAILmore");
        // A titled session, its title cut by a NUL for the identity.
        let title = b"Plan\0junk";
        let mut after = (title.len() as u32).to_le_bytes().to_vec();
        after.extend_from_slice(title);
        let session = file(
            |h| {
                h[6] = 8;
                h[20] = 2;
                h[24] = 42;
            },
            text,
            b"pay",
            &after,
        );
        let identity = crate::format::trailer::session_identity(b"Plan", 42);
        for (f, name) in [
            (d8(1), &key),
            (d8(2), &key),
            (d11, &key),
            (d14, &key),
            (session.clone(), &identity),
            (session, &key),
        ] {
            let h = Header::decode(f[..HEADER_LEN].try_into().unwrap());
            let tl = u32::from_le_bytes(f[HEADER_LEN..PREFIX_LEN].try_into().unwrap());
            let want = dialect::detect(&h, tl, Some(name), &InMemory(&f));
            for step in [1, 5, 13, 64, 4096] {
                let mut c = StreamCheck::new();
                for chunk in f.chunks(step) {
                    c.update(chunk);
                }
                let done = c.finish();
                assert_eq!(
                    dialect::detect(&h, tl, Some(name), &done.probe),
                    want,
                    "step {step}"
                );
                let verdict = done.verdict(name, |d| d.resolve(Engine::Ds4));
                match &want {
                    Detected::Known(DialectId::D8 | DialectId::D14) => {
                        assert!(matches!(verdict, Err(Problem::Foreign(_))), "{verdict:?}")
                    }
                    Detected::Known(DialectId::D3) if name == &key => {
                        assert!(matches!(verdict, Err(Problem::Name { .. })), "{verdict:?}")
                    }
                    Detected::Known(d) => assert_eq!(verdict, Ok(*d)),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
}
