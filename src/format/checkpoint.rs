//! Reading one `.kv` file: its name's key, the 52-byte prefix, and — only
//! when asked — the text, the trailer and the DSV4 payload header.
//!
//! Every length that comes from the file is checked against the size
//! `fstat` reported before it is used, so a 75-byte file that claims 4 GiB
//! of text costs 52 bytes of reading and no allocation.

use crate::format::dsv4::{self, Dsv4Header};
use crate::format::{Header, HeaderError, HEADER_LEN, PREFIX_LEN, TEXT_OFFSET};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Length of a key: 40 hex digits of SHA-1.
pub const KEY_HEX_LEN: usize = 40;
/// Characters of a key a listing shows.
pub const SHORT_KEY_LEN: usize = 12;
/// ds4-agent's system prompt checkpoint: a fixed name, no hash in it.
pub(crate) const SYSPROMPT_FILE: &str = "sysprompt.kv";
pub(crate) const SYSPROMPT_KEY: &str = "sysprompt";
pub(crate) const KV_EXT: &str = ".kv";

/// 40 lower-case hex digits, held inline: a key costs 41 bytes in a
/// checkpoint record instead of a 24-byte `String` and its 40-byte heap
/// block (issue 16: 100,000 keys were 8 MB of allocations). Derefs to
/// `str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexKey([u8; KEY_HEX_LEN]);

impl HexKey {
    /// `s` when it is 40 hex digits (either case), in lower case.
    pub fn parse(s: &str) -> Option<HexKey> {
        let b: &[u8; KEY_HEX_LEN] = s.as_bytes().try_into().ok()?;
        if !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        Some(HexKey(b.map(|c| c.to_ascii_lowercase())))
    }

    /// The hex digits of a SHA-1 digest.
    pub fn of_digest(d: &[u8; 20]) -> HexKey {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; KEY_HEX_LEN];
        for (i, b) in d.iter().enumerate() {
            out[2 * i] = DIGITS[(b >> 4) as usize];
            out[2 * i + 1] = DIGITS[(b & 15) as usize];
        }
        HexKey(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from hex digits (ASCII).
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }

    /// The 40 ASCII hex digits.
    pub fn as_bytes(&self) -> &[u8; KEY_HEX_LEN] {
        &self.0
    }

    /// The 20 bytes the digits spell.
    pub fn digest(&self) -> [u8; 20] {
        let v = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        };
        let mut out = [0u8; 20];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (v(self.0[2 * i]) << 4) | v(self.0[2 * i + 1]);
        }
        out
    }
}

impl std::ops::Deref for HexKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What names a checkpoint: the SHA-1 of its text, or ds4-agent's fixed
/// `sysprompt`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// 40 lower-case hex digits.
    Hash(HexKey),
    Sysprompt,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl Key {
    /// The key a file name denotes: `<40 hex>.kv` (any case, as ds4 accepts)
    /// or `sysprompt.kv`.
    pub fn from_file_name(name: &str) -> Option<Key> {
        if name == SYSPROMPT_FILE {
            return Some(Key::Sysprompt);
        }
        HexKey::parse(name.strip_suffix(KV_EXT)?).map(Key::Hash)
    }

    /// The key of 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Key> {
        HexKey::parse(s).map(Key::Hash)
    }

    /// Whether `name` is this key's own file name, `<key>.kv` in lower
    /// case (or `sysprompt.kv`): a scan then need not keep the name.
    pub fn is_file_name(&self, name: &str) -> bool {
        match self {
            Key::Hash(h) => {
                name.len() == KEY_HEX_LEN + KV_EXT.len()
                    && name.as_bytes()[..KEY_HEX_LEN] == h.0
                    && name.ends_with(KV_EXT)
            }
            Key::Sysprompt => name == SYSPROMPT_FILE,
        }
    }

    /// The key of a text: its SHA-1 (FORMAT.md §2).
    #[cfg(test)]
    pub(crate) fn of_text(text: &[u8]) -> Key {
        use sha1::{Digest, Sha1};
        Key::Hash(HexKey::of_digest(&Sha1::digest(text).into()))
    }

    /// The key a SHA-1 digest names.
    pub fn from_digest(d: &[u8; 20]) -> Key {
        Key::Hash(HexKey::of_digest(d))
    }

    /// `<key>.kv` in lower case, or `sysprompt.kv`.
    pub fn file_name(&self) -> String {
        match self {
            Key::Hash(h) => format!("{h}{KV_EXT}"),
            Key::Sysprompt => SYSPROMPT_FILE.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Key::Hash(h) => h.as_str(),
            Key::Sysprompt => SYSPROMPT_KEY,
        }
    }

    /// The first 12 hex digits, or `sysprompt`.
    pub fn short(&self) -> &str {
        match self {
            Key::Hash(h) => &h[..SHORT_KEY_LEN],
            Key::Sysprompt => SYSPROMPT_KEY,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a file with a checkpoint name cannot be used as a checkpoint.
/// `code()` is stable: it is the finding code `kvc verify` reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Defect {
    #[error("empty file")]
    Empty,
    #[error("{size}-byte file is shorter than the {PREFIX_LEN}-byte header")]
    ShortHeader { size: u64 },
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("text_len {text_len} runs past the end of the {size}-byte file")]
    TextLength { text_len: u32, size: u64 },
    #[error("file is {size} bytes, header and text_len need {need} (payload cut short)")]
    Truncated { need: u128, size: u64 },
    #[error("header says 0 tokens (ds4 skips such files)")]
    ZeroTokens,
    #[error("SHA-1 of the text is {actual}, not the file name")]
    KeyMismatch { actual: String },
}

impl Defect {
    pub fn code(&self) -> crate::code::Code {
        use crate::code::Code;
        match self {
            Defect::Empty => Code::Empty,
            Defect::ShortHeader { .. } => Code::ShortHeader,
            Defect::Header(HeaderError::BadMagic(_)) => Code::BadMagic,
            Defect::Header(HeaderError::BadVersion(_)) => Code::BadVersion,
            Defect::TextLength { .. } => Code::TextLength,
            Defect::Truncated { .. } => Code::Truncated,
            Defect::ZeroTokens => Code::ZeroTokens,
            Defect::KeyMismatch { .. } => Code::KeyMismatch,
        }
    }
}

/// Opening a checkpoint fails either on I/O or on a defect of the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Defect(#[from] Defect),
}

/// An open `.kv` file whose prefix has been read. Everything else is read
/// on demand with positioned reads, so nothing moves a shared offset.
#[derive(Debug)]
pub struct CheckpointFile {
    pub path: PathBuf,
    file: File,
    /// Size at open time (fstat).
    pub size: u64,
    pub header: Header,
    pub text_len: u32,
}

impl CheckpointFile {
    /// Open and read the 52-byte prefix, checking nothing but that it is
    /// there. Use this to show a file that may be broken. A path given
    /// here is followed, as a user's is, but never blocks on a FIFO and
    /// must be a regular file ([`open_named`](Self::open_named)).
    pub fn open_unchecked(path: &Path) -> Result<CheckpointFile, OpenError> {
        Self::open_named(path, true)
    }

    /// [`open_unchecked`](Self::open_unchecked) for a file a user named:
    /// never blocks on a FIFO (O_NONBLOCK), follows a symlink only when
    /// `follow` (a path typed by the user) and never when the file was
    /// found in a cache by its key, and refuses anything but a regular file
    /// before reading a byte.
    pub fn open_named(path: &Path, follow: bool) -> Result<CheckpointFile, OpenError> {
        let file = crate::sys::open_read(path, follow).map_err(|e| {
            if crate::sys::is_symlink_error(&e) && !follow {
                io::Error::other("is a symbolic link; kvc does not follow links in a cache")
            } else {
                e
            }
        })?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("is not a regular file").into());
        }
        Self::from_file_sized(path, file, meta.len())
    }

    /// Like [`open_unchecked`](Self::open_unchecked) on a file already open.
    pub(crate) fn from_file(path: &Path, file: File) -> Result<CheckpointFile, OpenError> {
        let size = file.metadata()?.len();
        Self::from_file_sized(path, file, size)
    }

    /// [`from_file`](Self::from_file) when the caller already did the
    /// `fstat` (a scan needs the mode too): one system call less per file.
    /// `size` must come from `fstat` of this very descriptor.
    pub(crate) fn from_file_sized(
        path: &Path,
        file: File,
        size: u64,
    ) -> Result<CheckpointFile, OpenError> {
        Self::from_file_owned(path.to_path_buf(), file, size)
    }

    /// [`from_file_sized`](Self::from_file_sized) taking the path it keeps
    /// (a scan passes an empty one: it names files by its own records, and
    /// a path per file was an allocation per file).
    pub(crate) fn from_file_owned(
        path: PathBuf,
        file: File,
        size: u64,
    ) -> Result<CheckpointFile, OpenError> {
        if size == 0 {
            return Err(Defect::Empty.into());
        }
        if size < PREFIX_LEN as u64 {
            return Err(Defect::ShortHeader { size }.into());
        }
        let mut prefix = [0u8; PREFIX_LEN];
        read_exact_or_short(&file, &mut prefix, 0, size)?;
        let header = Header::decode(prefix[..HEADER_LEN].try_into().expect("48 bytes"));
        let text_len = u32::from_le_bytes(prefix[HEADER_LEN..].try_into().expect("4 bytes"));
        Ok(CheckpointFile {
            path,
            file,
            size,
            header,
            text_len,
        })
    }

    /// Open, then check the envelope: magic, version, and that the text and
    /// payload fit in the file (FORMAT.md §3). What a ds4 reader checks
    /// before it trusts a file.
    pub fn open(path: &Path) -> Result<CheckpointFile, OpenError> {
        let cf = Self::open_unchecked(path)?;
        cf.check_envelope()?;
        Ok(cf)
    }

    /// The structural checks of [`open`](Self::open).
    pub fn check_envelope(&self) -> Result<(), Defect> {
        check_envelope(&self.header, self.text_len, self.size)
    }

    /// Offset of the payload. Meaningful once the envelope checked out.
    pub fn payload_offset(&self) -> u64 {
        TEXT_OFFSET + self.text_len as u64
    }

    /// Offset just past the payload (where trailers start).
    pub fn payload_end(&self) -> u64 {
        payload_end(&self.header, self.text_len)
    }

    /// Bytes after the payload: trailer sections, or garbage.
    pub fn trailer_len(&self) -> u64 {
        self.size.saturating_sub(self.payload_end())
    }

    /// The stored text. Its length was checked against the file size.
    pub fn read_text(&self) -> io::Result<Vec<u8>> {
        let len = self.text_len as u64;
        if TEXT_OFFSET + len > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Defect::TextLength {
                    text_len: self.text_len,
                    size: self.size,
                },
            ));
        }
        let mut buf = vec![0u8; len as usize];
        read_exact_or_short(&self.file, &mut buf, TEXT_OFFSET, self.size)?;
        Ok(buf)
    }

    /// Feed the text to `f` in pieces of at most 64 KiB, never holding it
    /// whole: `kvc cat` writes a 512 MiB text through one small buffer.
    pub fn stream_text(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let len = self.text_len as u64;
        if TEXT_OFFSET + len > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Defect::TextLength {
                    text_len: self.text_len,
                    size: self.size,
                },
            ));
        }
        let mut buf = vec![0u8; (64usize << 10).min(len as usize)];
        let mut pos = 0u64;
        while pos < len {
            let n = (len - pos).min(buf.len() as u64) as usize;
            read_exact_or_short(&self.file, &mut buf[..n], TEXT_OFFSET + pos, self.size)?;
            f(&buf[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// `len` payload bytes at `off` within the payload, checked against both
    /// the payload length and the file size.
    pub fn read_payload_at(&self, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = off.checked_add(len);
        if end.is_none_or(|e| e > self.header.payload_bytes) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "payload range {off}+{len} outside the {}-byte payload",
                    self.header.payload_bytes
                ),
            ));
        }
        // The header's payload length is only trusted once `check_envelope`
        // passed, and a file opened unchecked (to show a broken one) may
        // claim any length: bound the read by the file itself before
        // allocating for it.
        let start = self.payload_offset() + off;
        if start.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "payload range {off}+{len} runs past the end of the {}-byte file",
                    self.size
                ),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        read_exact_or_short(&self.file, &mut buf, start, self.size)?;
        Ok(buf)
    }

    /// The DSV4 layout of the payload, when it has the DSV4 magic and its
    /// count arrays lie inside the payload. `Ok(None)` for opaque payloads.
    pub fn read_dsv4(&self) -> io::Result<Option<Dsv4Layout>> {
        if self.header.payload_bytes < dsv4::HEADER_LEN as u64 {
            return Ok(None);
        }
        let head = self.read_payload_at(0, dsv4::HEADER_LEN as u64)?;
        let Some(header) = Dsv4Header::decode(&head) else {
            return Ok(None);
        };
        let off = header.counts_offset();
        let len = header.counts_len();
        // Arrays past the payload, or past the file when the envelope was
        // not checked, are missing, not an error: the header still shows.
        let in_file = |end: u64| {
            self.payload_offset()
                .checked_add(end)
                .is_some_and(|e| e <= self.size)
        };
        let counts = match off.checked_add(len) {
            Some(end) if end <= self.header.payload_bytes && in_file(end) => {
                let raw = self.read_payload_at(off, len)?;
                header.parse_counts(&raw)
            }
            _ => None,
        };
        Ok(Some(Dsv4Layout { header, counts }))
    }

    /// The open file, for streaming reads (deep verification, export).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Dialect checks read through the open file, bounded by its `fstat` size.
impl crate::format::dialect::Probe for CheckpointFile {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        off.checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.size)
            && self.file.read_exact_at(buf, off).is_ok()
    }
}

/// Offset just past the payload of a file with this header and text
/// length (where trailers start), for a caller that holds a scanned
/// checkpoint rather than an open file. Saturates on a header that lies.
pub fn payload_end(header: &Header, text_len: u32) -> u64 {
    (TEXT_OFFSET + text_len as u64).saturating_add(header.payload_bytes)
}

/// The envelope checks of FORMAT.md §3 on a prefix already decoded: magic,
/// version, and that the text and the payload fit in `size` bytes. Shared by
/// [`CheckpointFile::check_envelope`] and by readers of a byte stream (import),
/// which have no file to open.
pub fn check_envelope(header: &Header, text_len: u32, size: u64) -> Result<(), Defect> {
    header.check()?;
    if TEXT_OFFSET + text_len as u64 > size {
        return Err(Defect::TextLength { text_len, size });
    }
    let need = TEXT_OFFSET as u128 + text_len as u128 + header.payload_bytes as u128;
    if need > size as u128 {
        return Err(Defect::Truncated { need, size });
    }
    Ok(())
}

/// A DSV4 header and, when they lie inside the payload, its count arrays.
#[derive(Clone, Debug)]
pub struct Dsv4Layout {
    pub header: Dsv4Header,
    /// `(n_comp, n_index)`; `None` when the arrays would run past the payload.
    pub counts: Option<(Vec<u32>, Vec<u32>)>,
}

impl Dsv4Layout {
    /// The exact payload size the layout implies under `schedule` (`None`
    /// when the counts are missing or the arithmetic overflows).
    pub fn exact_size(&self, schedule: crate::format::dsv4::Schedule) -> Option<u64> {
        let (c, i) = self.counts.as_ref()?;
        self.header.exact_size(schedule, c, i)
    }
}

/// `read_exact_at`, but a file that shrank since `fstat` (an engine rewrote
/// or truncated it) reports which read came up short instead of a bare EOF.
fn read_exact_or_short(file: &File, buf: &mut [u8], off: u64, size: u64) -> io::Result<()> {
    file.read_exact_at(buf, off).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file shrank while reading: {} bytes at offset {off} of a {size}-byte file",
                    buf.len()
                ),
            )
        } else {
            e
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_names() {
        let k = Key::from_file_name("D78BECAF80C3DD16ECEC443553E5305B2557ACB3.kv").unwrap();
        assert_eq!(k.as_str(), "d78becaf80c3dd16ecec443553e5305b2557acb3");
        assert_eq!(k.short(), "d78becaf80c3");
        assert_eq!(Key::from_file_name("sysprompt.kv"), Some(Key::Sysprompt));
        assert_eq!(Key::from_file_name("d78becaf.kv"), None);
        assert_eq!(Key::from_file_name("notes.txt"), None);
    }

    #[test]
    fn key_of_text_is_sha1() {
        // SHA-1 of the empty string.
        assert_eq!(
            Key::of_text(b"").as_str(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }
}
