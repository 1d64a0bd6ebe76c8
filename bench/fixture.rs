//! The benchmark's own fixture writer: synthetic cache directories whose
//! bytes are assembled here from FORMAT.md, never with kvc's encoders, so a
//! benchmark cannot quietly measure a reader against its own writer's
//! mistakes.
//!
//! A dataset is described by a [`DataSpec`]; the same spec always produces
//! the same bytes (a seeded generator, fixed timestamps), and a directory
//! built once is reused by later runs while its spec is unchanged.

use serde::Serialize;
use sha1::{Digest, Sha1};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Files and directories are private, as the engines create them: the
/// texts are verbatim conversations.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Timestamps sit a few days before a fixed instant so a dataset's bytes do
/// not depend on when it was built.
const EPOCH: u64 = 1_763_700_000;
const SPREAD_SECS: u64 = 5 * 86_400;

/// Streaming chunk for large payloads: big enough to be cheap, small enough
/// that a 2 GiB payload never sits in memory.
const CHUNK: usize = 1 << 20;

/// ds4 reasons (FORMAT.md §3, offset 5).
const REASON_COLD: u8 = 1;
const REASON_CONTINUED: u8 = 2;
const REASON_EVICT: u8 = 3;
const REASON_SHUTDOWN: u8 = 4;
const REASON_AGENT_SESSION: u8 = 6;

/// Rendered text is roughly four bytes a token.
const BYTES_PER_TOKEN: usize = 4;

/// A DSV4 layout (FORMAT.md §6). The real model's is layers 43, head_dim
/// 512, indexer 128, vocab 129280; the small one keeps listing datasets light.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Dsv4Layout {
    pub layers: u32,
    pub head_dim: u32,
    pub indexer_head_dim: u32,
    pub vocab: u32,
    pub raw_window: u32,
    pub raw_cap: u32,
    pub comp_cap: u32,
    /// Compressed rows per compressed layer, indexer rows per indexed layer.
    pub n_comp: u32,
    pub n_index: u32,
}

pub const SMALL_DSV4: Dsv4Layout = Dsv4Layout {
    layers: 4,
    head_dim: 8,
    indexer_head_dim: 4,
    vocab: 16,
    raw_window: 4,
    raw_cap: 8,
    comp_cap: 64,
    n_comp: 3,
    n_index: 2,
};

/// A layout that makes payloads of about 1.5 MiB, for datasets that read
/// every payload byte (`verify --deep`): the real vocabulary (129,280
/// logits, half a MiB, every one checked for being finite) and the real
/// 43 layers with their compression ratios, but narrow heads and a short
/// raw window, so a few thousand checkpoints make gigabytes, not
/// terabytes.
pub const MEDIUM_DSV4: Dsv4Layout = Dsv4Layout {
    layers: 43,
    head_dim: 32,
    indexer_head_dim: 8,
    vocab: 129_280,
    raw_window: 16,
    raw_cap: 32,
    comp_cap: 64,
    n_comp: 32,
    n_index: 16,
};

/// What follows the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Payload {
    /// A DSV4 payload whose token count is the checkpoint's.
    Dsv4(Dsv4Layout),
    /// Opaque bytes (newer fork ABIs, hanzo-engine), this many per file.
    Opaque { bytes: u64 },
}

/// What `--scale` shrinks or grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleBy {
    /// The number of checkpoints (listing-style datasets).
    Count,
    /// The opaque payload size of each file (few big files).
    PayloadBytes,
}

/// One synthetic cache directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataSpec {
    /// Directory name under the data root; also the cache key.
    pub name: String,
    pub checkpoints: usize,
    /// Checkpoints per conversation: a cold one, then `continued` ones whose
    /// texts extend it, as ds4-server saves a growing chat. The last of a
    /// conversation is an evict or shutdown checkpoint, and every 16th
    /// conversation is an agent session.
    pub turns: usize,
    /// Bytes of text a conversation's first checkpoint holds; each later
    /// turn adds as much again.
    pub text_bytes: usize,
    pub payload: Payload,
    /// Also write each text, alone, to `<name>.texts/<key>.txt`: the same
    /// bytes for reference tools such as `sha1sum`.
    pub write_texts: bool,
    pub scale_by: ScaleBy,
    pub seed: u64,
    /// Byte 20 of every header: 0 (ds4 before 2026-05-26, the default) or
    /// 2 (mainline since; DSV4 payloads then have version 2).
    #[serde(skip_serializing_if = "is_zero")]
    pub payload_abi: u8,
    /// Also write a rendered prompt of this many bytes beside the
    /// directory (`<name>.prompt`), for `kvc match`: the last text of the
    /// first conversation (so every checkpoint of that conversation is a
    /// prefix of it), extended with more turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_bytes: Option<usize>,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl DataSpec {
    /// A listing dataset: `checkpoints` chat checkpoints of a few KiB of
    /// text with small DSV4 payloads.
    pub fn chats(name: &str, checkpoints: usize) -> DataSpec {
        DataSpec {
            name: name.to_string(),
            checkpoints,
            turns: 4,
            text_bytes: 2048,
            payload: Payload::Dsv4(SMALL_DSV4),
            write_texts: false,
            scale_by: ScaleBy::Count,
            seed: 0x6b76_6331,
            payload_abi: 0,
            prompt_bytes: None,
        }
    }

    /// A few big checkpoints with opaque payloads of `bytes` each.
    pub fn big(name: &str, checkpoints: usize, bytes: u64) -> DataSpec {
        DataSpec {
            turns: 1,
            payload: Payload::Opaque { bytes },
            scale_by: ScaleBy::PayloadBytes,
            ..DataSpec::chats(name, checkpoints)
        }
    }

    pub fn with_texts(mut self) -> DataSpec {
        self.write_texts = true;
        self
    }

    pub fn with_text_bytes(mut self, bytes: usize) -> DataSpec {
        self.text_bytes = bytes;
        self
    }

    /// Files as ds4 mainline writes them since 2026-05-26 (payload ABI 2),
    /// which its reader (and so `kvc match`) loads.
    pub fn mainline(mut self) -> DataSpec {
        self.payload_abi = 2;
        self
    }

    pub fn with_prompt(mut self, bytes: usize) -> DataSpec {
        self.prompt_bytes = Some(bytes);
        self
    }

    pub fn with_payload(mut self, payload: Payload) -> DataSpec {
        self.payload = payload;
        self
    }

    /// The spec at `scale` (at least one checkpoint, at least one byte).
    /// A scaled dataset gets its own directory (`chats-10k-x0.1`), so a
    /// `--quick` run does not replace the full-size data, which takes
    /// minutes to write for the big cases.
    pub fn scaled(&self, scale: f64) -> DataSpec {
        let mut s = self.clone();
        if scale != 1.0 {
            s.name = format!("{}-x{scale}", self.name);
        }
        match self.scale_by {
            ScaleBy::Count => {
                s.checkpoints = ((self.checkpoints as f64 * scale).round() as usize).max(1)
            }
            ScaleBy::PayloadBytes => {
                if let Payload::Opaque { bytes } = self.payload {
                    s.payload = Payload::Opaque {
                        bytes: ((bytes as f64 * scale).round() as u64).max(1),
                    };
                }
            }
        }
        s
    }
}

/// A dataset on disk.
#[derive(Clone, Debug, Serialize)]
pub struct Dataset {
    pub spec: DataSpec,
    pub dir: PathBuf,
    /// `Some` when the spec asked for the texts alone.
    pub texts_dir: Option<PathBuf>,
    /// `Some` when the spec asked for a prompt.
    pub prompt: Option<PathBuf>,
    pub files: usize,
    pub bytes: u64,
}

/// A small deterministic generator (splitmix64): fixtures must be the same
/// bytes on every machine, and no statistical quality is needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "the",
    "parser",
    "returns",
    "a",
    "list",
    "of",
    "tokens",
    "for",
    "each",
    "file",
    "in",
    "this",
    "repository",
    "and",
    "explain",
    "why",
    "cache",
    "layout",
    "function",
    "module",
    "error",
    "handling",
    "should",
    "be",
    "moved",
    "into",
    "its",
    "own",
    "crate",
    "test",
    "passes",
    "now",
    "with",
    "fixed",
    "input",
    "buffer",
    "size",
    "read",
    "write",
    "directory",
    "checkpoint",
];

/// About `n` bytes of prose.
fn prose(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        if !s.is_empty() {
            s.push(if rng.below(12) == 0 { '\n' } else { ' ' });
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s
}

/// The texts of one conversation, each extending the previous one, in ds4's
/// rendering (FORMAT.md §4).
fn conversation(rng: &mut Rng, turns: usize, turn_bytes: usize) -> Vec<Vec<u8>> {
    let mut text = String::from("<｜begin▁of▁sentence｜>You are a helpful coding assistant.");
    let mut out = Vec::with_capacity(turns);
    for _ in 0..turns {
        let user = prose(rng, turn_bytes / 4);
        let answer = prose(rng, turn_bytes - turn_bytes / 4);
        text.push_str("<｜User｜>");
        text.push_str(&user);
        text.push_str("<｜Assistant｜></think>");
        text.push_str(&answer);
        text.push_str("<｜end▁of▁sentence｜>");
        out.push(text.clone().into_bytes());
    }
    out
}

fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Header fields the dataset varies (FORMAT.md §3).
struct Fields {
    quant_bits: u8,
    reason: u8,
    tokens: u32,
    hits: u32,
    ctx_size: u32,
    created: u64,
    last_used: u64,
    payload_bytes: u64,
    payload_abi: u8,
}

/// The 48-byte header and the u32 text_len, byte by byte from FORMAT.md §3.
fn prefix(f: &Fields, text_len: u32) -> [u8; 52] {
    let mut b = [0u8; 52];
    b[0..3].copy_from_slice(b"KVC");
    b[3] = 1; // version
    b[4] = f.quant_bits;
    b[5] = f.reason;
    b[6] = 0; // ext_flags: no trailer
    b[7] = 0; // model_id: ds4
    b[8..12].copy_from_slice(&f.tokens.to_le_bytes());
    b[12..16].copy_from_slice(&f.hits.to_le_bytes());
    b[16..20].copy_from_slice(&f.ctx_size.to_le_bytes());
    b[20] = f.payload_abi; // 21..24 reserved 0
    b[24..32].copy_from_slice(&f.created.to_le_bytes());
    b[32..40].copy_from_slice(&f.last_used.to_le_bytes());
    b[40..48].copy_from_slice(&f.payload_bytes.to_le_bytes());
    b[48..52].copy_from_slice(&text_len.to_le_bytes());
    b
}

/// DSV4 compression ratio of layer `il` (FORMAT.md §6).
fn ratio(il: u32) -> u64 {
    if il < 2 {
        0
    } else if il.is_multiple_of(2) {
        4
    } else {
        128
    }
}

fn dsv4_counts(l: &Dsv4Layout) -> (Vec<u32>, Vec<u32>) {
    let comp = (0..l.layers)
        .map(|il| if ratio(il) > 0 { l.n_comp } else { 0 })
        .collect();
    let index = (0..l.layers)
        .map(|il| if ratio(il) == 4 { l.n_index } else { 0 })
        .collect();
    (comp, index)
}

/// f32 values after the count arrays: per layer raw rows, compressed rows
/// and two state tensors, then indexer rows and two state tensors.
fn dsv4_floats(l: &Dsv4Layout, raw_live: u32) -> u64 {
    let (comp, index) = dsv4_counts(l);
    let (hd, ihd) = (l.head_dim as u64, l.indexer_head_dim as u64);
    let mut floats = 0u64;
    for il in 0..l.layers {
        let r = ratio(il);
        let c: u64 = if r == 4 { 2 } else { 1 };
        floats += raw_live as u64 * hd;
        if r > 0 {
            floats += comp[il as usize] as u64 * hd + 2 * c * hd * c * r;
        }
        if r == 4 {
            floats += index[il as usize] as u64 * ihd + 2 * c * ihd * c * r;
        }
    }
    floats
}

fn dsv4_len(l: &Dsv4Layout, tokens: u32) -> u64 {
    let raw_live = tokens.min(l.raw_window);
    13 * 4
        + tokens as u64 * 4
        + l.vocab as u64 * 4
        + l.layers as u64 * 8
        + dsv4_floats(l, raw_live) * 4
}

/// Write `n` filler bytes in chunks.
fn write_filler(out: &mut impl Write, mut n: u64, seed: u8) -> io::Result<()> {
    let chunk: Vec<u8> = (0..CHUNK)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    while n > 0 {
        let k = n.min(CHUNK as u64) as usize;
        out.write_all(&chunk[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn write_dsv4(
    out: &mut impl Write,
    l: &Dsv4Layout,
    tokens: u32,
    ctx: u32,
    version: u32,
) -> io::Result<()> {
    let raw_live = tokens.min(l.raw_window);
    for v in [
        0x3456_5344u32, // "DSV4"
        version,
        ctx,
        256, // prefill_chunk
        l.raw_cap,
        l.raw_window,
        l.comp_cap,
        tokens,
        l.layers,
        l.head_dim,
        l.indexer_head_dim,
        l.vocab,
        raw_live,
    ] {
        out.write_all(&v.to_le_bytes())?;
    }
    for t in 0..tokens {
        out.write_all(&(t % l.vocab.max(1)).to_le_bytes())?;
    }
    for i in 0..l.vocab {
        out.write_all(&(i as f32 * 0.5).to_le_bytes())?;
    }
    let (comp, index) = dsv4_counts(l);
    for v in comp.iter().chain(&index) {
        out.write_all(&v.to_le_bytes())?;
    }
    write_filler(out, dsv4_floats(l, raw_live) * 4, 7)
}

fn private_dir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(p)
}

fn create_private(p: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(p)
}

/// Build `spec` under `root`, or reuse the copy a previous run built from
/// the same spec. The spec is recorded beside the directory (not in it: a
/// file in it would be a stray to kvc).
pub fn ensure(root: &Path, spec: &DataSpec) -> io::Result<Dataset> {
    let dir = root.join(&spec.name);
    let texts_dir = spec
        .write_texts
        .then(|| root.join(format!("{}.texts", spec.name)));
    let stamp = root.join(format!("{}.spec.json", spec.name));
    let want = serde_json::to_string_pretty(spec).expect("spec serializes");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && dir.is_dir() {
        let prompt = ensure_prompt(root, spec)?;
        return measure(spec, dir, texts_dir, prompt);
    }
    let _ = fs::remove_file(&stamp);
    for d in [Some(&dir), texts_dir.as_ref()].into_iter().flatten() {
        match fs::remove_dir_all(d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        private_dir(d)?;
    }
    write_all(spec, &dir, texts_dir.as_deref())?;
    let prompt = ensure_prompt(root, spec)?;
    fs::write(&stamp, want)?;
    measure(spec, dir, texts_dir, prompt)
}

/// The spec's prompt, `<name>.prompt` beside the directory (not in it: a
/// file in it would be a stray), written when missing or of another size.
/// It is the last text of the dataset's first conversation, generated
/// from the same seed, followed by more turns of prose up to exactly
/// `prompt_bytes` (the cut falls in ASCII prose, padded with spaces if a
/// character boundary needs it).
fn ensure_prompt(root: &Path, spec: &DataSpec) -> io::Result<Option<PathBuf>> {
    let Some(n) = spec.prompt_bytes else {
        return Ok(None);
    };
    let path = root.join(format!("{}.prompt", spec.name));
    if fs::metadata(&path).is_ok_and(|m| m.len() == n as u64) {
        return Ok(Some(path));
    }
    let mut rng = Rng(spec.seed);
    let first = conversation(&mut rng, spec.turns.max(1), spec.text_bytes);
    let mut prompt =
        String::from_utf8(first.last().expect("a turn").clone()).expect("conversations are UTF-8");
    let mut more = Rng(spec.seed ^ 0x7072_6f6d_7074);
    while prompt.len() < n {
        prompt.push_str("<｜User｜>");
        prompt.push_str(&prose(&mut more, spec.text_bytes / 4));
        prompt.push_str("<｜Assistant｜></think>");
        prompt.push_str(&prose(&mut more, spec.text_bytes));
        prompt.push_str("<｜end▁of▁sentence｜>");
    }
    let mut cut = n;
    while !prompt.is_char_boundary(cut) {
        cut -= 1;
    }
    prompt.truncate(cut);
    while prompt.len() < n {
        prompt.push(' ');
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&path)?;
    f.write_all(prompt.as_bytes())?;
    Ok(Some(path))
}

fn measure(
    spec: &DataSpec,
    dir: PathBuf,
    texts_dir: Option<PathBuf>,
    prompt: Option<PathBuf>,
) -> io::Result<Dataset> {
    let mut files = 0;
    let mut bytes = 0;
    for e in fs::read_dir(&dir)? {
        files += 1;
        bytes += e?.metadata()?.len();
    }
    Ok(Dataset {
        spec: spec.clone(),
        dir,
        texts_dir,
        prompt,
        files,
        bytes,
    })
}

fn write_all(spec: &DataSpec, dir: &Path, texts_dir: Option<&Path>) -> io::Result<()> {
    let mut rng = Rng(spec.seed);
    let turns = spec.turns.max(1);
    let mut written = 0;
    let mut conv = 0usize;
    while written < spec.checkpoints {
        let texts = conversation(&mut rng, turns, spec.text_bytes);
        let agent = conv % 16 == 15;
        for (t, text) in texts.iter().enumerate() {
            if written == spec.checkpoints {
                break;
            }
            let reason = if agent {
                REASON_AGENT_SESSION
            } else if t == 0 {
                REASON_COLD
            } else if t + 1 < turns {
                REASON_CONTINUED
            } else if conv.is_multiple_of(2) {
                REASON_EVICT
            } else {
                REASON_SHUTDOWN
            };
            let tokens = (text.len() / BYTES_PER_TOKEN).max(1) as u32;
            let ctx_size = if rng.below(2) == 0 { 32_768 } else { 65_536 };
            let created = EPOCH - rng.below(SPREAD_SECS);
            let hits = if rng.below(3) == 0 {
                0
            } else {
                rng.below(20) as u32
            };
            let last_used = if hits == 0 {
                created
            } else {
                created + rng.below(EPOCH - created + 1)
            };
            let payload_bytes = match spec.payload {
                Payload::Dsv4(l) => dsv4_len(&l, tokens),
                Payload::Opaque { bytes } => bytes,
            };
            let fields = Fields {
                quant_bits: if rng.below(4) == 0 { 4 } else { 2 },
                reason,
                tokens,
                hits,
                ctx_size,
                created,
                last_used,
                payload_bytes,
                payload_abi: spec.payload_abi,
            };
            let key = sha1_hex(text);
            let f = create_private(&dir.join(format!("{key}.kv")))?;
            let mut out = BufWriter::with_capacity(CHUNK, f);
            out.write_all(&prefix(&fields, text.len() as u32))?;
            out.write_all(text)?;
            match spec.payload {
                // Mainline's payload ABI 2 came with DSV4 version 2 (FORMAT.md §6).
                Payload::Dsv4(l) => {
                    let version = if spec.payload_abi == 2 { 2 } else { 1 };
                    write_dsv4(&mut out, &l, tokens, ctx_size, version)?
                }
                Payload::Opaque { bytes } => write_filler(&mut out, bytes, written as u8)?,
            }
            out.into_inner().map_err(|e| e.into_error())?;
            if let Some(td) = texts_dir {
                create_private(&td.join(format!("{key}.txt")))?.write_all(text)?;
            }
            written += 1;
        }
        conv += 1;
    }
    Ok(())
}
