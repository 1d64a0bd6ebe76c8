//! Test environment and fixture writers for the integration tests.
//!
//! Fixtures are assembled byte by byte from FORMAT.md here, never with the
//! library's own encoders, so a bug shared by kvc's reader and writer
//! cannot hide itself.
#![allow(dead_code)]

pub mod dialects;
pub mod engine;

use assert_cmd::Command;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tempfile::TempDir;

/// Fixed clock for reproducible scores: fixtures are created around here.
pub const NOW: u64 = 1_763_710_000;
pub const CREATED: u64 = 1_763_700_000;

pub const REASON_UNKNOWN: u8 = 0;
pub const REASON_COLD: u8 = 1;
pub const REASON_CONTINUED: u8 = 2;
pub const REASON_EVICT: u8 = 3;
pub const REASON_SHUTDOWN: u8 = 4;
pub const REASON_AGENT_SYSTEM: u8 = 5;
pub const REASON_AGENT_SESSION: u8 = 6;

pub fn sha1_hex(b: &[u8]) -> String {
    Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A chat text the way ds4 renders it, with one user turn.
pub fn chat(user: &str) -> Vec<u8> {
    format!("<｜begin▁of▁sentence｜>You are helpful.<｜User｜>{user}<｜Assistant｜>").into_bytes()
}

/// The small DSV4 layout of the shared fixtures (EXPECTED.md).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub layers: u32,
    pub head_dim: u32,
    pub indexer_head_dim: u32,
    pub vocab: u32,
    pub raw_window: u32,
    pub raw_cap: u32,
    pub comp_cap: u32,
}

pub const SMALL: Layout = Layout {
    layers: 4,
    head_dim: 8,
    indexer_head_dim: 4,
    vocab: 16,
    raw_window: 4,
    raw_cap: 8,
    comp_cap: 64,
};

/// A DSV4 payload per FORMAT.md §6. `n_comp`/`n_index` count rows per layer.
pub fn dsv4_payload(tokens: u32, ctx: u32, l: Layout, n_comp: u32, n_index: u32) -> Vec<u8> {
    let raw_live = tokens.min(l.raw_window);
    let mut p = Vec::new();
    for v in [
        0x3456_5344u32,
        1,
        ctx,
        256,
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
        p.extend_from_slice(&v.to_le_bytes());
    }
    for t in 0..tokens {
        p.extend_from_slice(&(t % l.vocab).to_le_bytes());
    }
    for i in 0..l.vocab {
        p.extend_from_slice(&(i as f32 * 0.5).to_le_bytes());
    }
    let comp = |il: u32| if il < 2 { 0 } else { n_comp };
    let index = |il: u32| {
        if il >= 2 && il.is_multiple_of(2) {
            n_index
        } else {
            0
        }
    };
    for il in 0..l.layers {
        p.extend_from_slice(&comp(il).to_le_bytes());
    }
    for il in 0..l.layers {
        p.extend_from_slice(&index(il).to_le_bytes());
    }
    let mut floats: u64 = 0;
    for il in 0..l.layers {
        let r: u64 = if il < 2 {
            0
        } else if il.is_multiple_of(2) {
            4
        } else {
            128
        };
        let c: u64 = if r == 4 { 2 } else { 1 };
        let (hd, ihd) = (l.head_dim as u64, l.indexer_head_dim as u64);
        floats += raw_live as u64 * hd;
        if r > 0 {
            floats += comp(il) as u64 * hd + 2 * c * hd * c * r;
        }
        if r == 4 {
            floats += index(il) as u64 * ihd + 2 * c * ihd * c * r;
        }
    }
    for i in 0..floats {
        p.extend_from_slice(&((i % 7) as f32).to_le_bytes());
    }
    p
}

/// A tool-id map section per FORMAT.md §5.
pub fn tool_map(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = b"KTM\x01".to_vec();
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (id, dsml) in entries {
        b.extend_from_slice(&(id.len() as u32).to_le_bytes());
        b.extend_from_slice(&(dsml.len() as u32).to_le_bytes());
        b.extend_from_slice(id);
        b.extend_from_slice(dsml);
    }
    b
}

/// One checkpoint file, every header field settable.
#[derive(Clone, Debug)]
pub struct Ckpt {
    pub magic: [u8; 3],
    pub version: u8,
    pub quant_bits: u8,
    pub reason: u8,
    pub ext_flags: u8,
    pub model_id: u8,
    pub tokens: u32,
    pub hits: u32,
    pub ctx_size: u32,
    pub payload_abi: u8,
    pub created: u64,
    pub last_used: u64,
    pub text: Vec<u8>,
    pub payload: Vec<u8>,
    pub trailer: Vec<u8>,
    /// Header payload_bytes when it must lie.
    pub payload_bytes: Option<u64>,
    /// text_len when it must lie.
    pub text_len: Option<u32>,
    /// File name when it must not be the key.
    pub name: Option<String>,
    /// Bytes 21-23 (0 in mainline; forks put codecs and fingerprints here).
    pub reserved: [u8; 3],
}

impl Ckpt {
    /// A healthy ds4 cold checkpoint of 600 tokens with a DSV4 payload.
    pub fn new(text: impl Into<Vec<u8>>) -> Ckpt {
        Ckpt {
            magic: *b"KVC",
            version: 1,
            quant_bits: 2,
            reason: REASON_COLD,
            ext_flags: 0,
            model_id: 0,
            tokens: 600,
            hits: 0,
            ctx_size: 32768,
            payload_abi: 0,
            created: CREATED,
            last_used: CREATED,
            text: text.into(),
            payload: dsv4_payload(600, 32768, SMALL, 3, 2),
            trailer: Vec::new(),
            payload_bytes: None,
            text_len: None,
            name: None,
            reserved: [0; 3],
        }
    }

    /// As ds4 mainline writes it since 2026-05-26 (dialect D3): payload ABI
    /// 2 in byte 20 and DSV4 payload version 2 (FORMAT.md §3, §6).
    pub fn mainline(mut self) -> Ckpt {
        self.payload_abi = 2;
        if self.payload.get(..4) == Some(&0x3456_5344u32.to_le_bytes()[..]) {
            self.payload[4..8].copy_from_slice(&2u32.to_le_bytes());
        }
        self
    }

    /// Set tokens and ctx, regenerating a matching DSV4 payload.
    pub fn tokens(mut self, tokens: u32, ctx: u32) -> Ckpt {
        self.tokens = tokens;
        self.ctx_size = ctx;
        self.payload = dsv4_payload(tokens, ctx, SMALL, 3, 2);
        self
    }

    pub fn reason(mut self, r: u8) -> Ckpt {
        self.reason = r;
        self
    }

    pub fn hits(mut self, hits: u32, last_used: u64) -> Ckpt {
        self.hits = hits;
        self.last_used = last_used;
        self
    }

    pub fn opaque_payload(mut self, len: usize) -> Ckpt {
        self.payload = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        self
    }

    pub fn with_tool_map(mut self, entries: &[(&[u8], &[u8])]) -> Ckpt {
        self.trailer = tool_map(entries);
        self.ext_flags |= 1;
        self
    }

    pub fn key(&self) -> String {
        sha1_hex(&self.text)
    }

    pub fn file_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}.kv", self.key()))
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.magic);
        b.push(self.version);
        b.push(self.quant_bits);
        b.push(self.reason);
        b.push(self.ext_flags);
        b.push(self.model_id);
        b.extend_from_slice(&self.tokens.to_le_bytes());
        b.extend_from_slice(&self.hits.to_le_bytes());
        b.extend_from_slice(&self.ctx_size.to_le_bytes());
        b.push(self.payload_abi);
        b.extend_from_slice(&self.reserved);
        b.extend_from_slice(&self.created.to_le_bytes());
        b.extend_from_slice(&self.last_used.to_le_bytes());
        let pb = self.payload_bytes.unwrap_or(self.payload.len() as u64);
        b.extend_from_slice(&pb.to_le_bytes());
        assert_eq!(b.len(), 48);
        let tl = self.text_len.unwrap_or(self.text.len() as u32);
        b.extend_from_slice(&tl.to_le_bytes());
        b.extend_from_slice(&self.text);
        b.extend_from_slice(&self.payload);
        b.extend_from_slice(&self.trailer);
        b
    }
}

/// A temporary cache directory plus a HOME without `~/.ds4`, and a `kvc`
/// command that runs there with a clean environment.
pub struct TestEnv {
    pub root: TempDir,
    pub cache: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(root.path().join("home")).unwrap();
        TestEnv { root, cache }
    }

    /// A copy of one of the shared sample directories (`ds4`, `broken`, …).
    pub fn with_sample(name: &str) -> TestEnv {
        let env = TestEnv::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let dst = env.cache.join(e.file_name());
            fs::copy(e.path(), &dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o600)).unwrap();
        }
        env
    }

    /// Write a checkpoint (mode 0600) and return its path.
    pub fn add(&self, c: &Ckpt) -> PathBuf {
        let p = self.cache.join(c.file_name());
        fs::write(&p, c.bytes()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Write any file into the cache.
    pub fn add_raw(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.cache.join(name);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// `kvc` with HOME pointing at an empty home and no KVC_DIR.
    pub fn kvc(&self) -> Command {
        let mut c = Command::cargo_bin("kvc").unwrap();
        c.env_clear()
            .env("HOME", self.root.path().join("home"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(self.root.path());
        c
    }

    /// Every file under the cache with its bytes, mode and mtime: compare two
    /// snapshots to prove a command changed nothing.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32, SystemTime)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.cache.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                    out.insert(
                        e.path(),
                        (Vec::new(), m.permissions().mode(), m.modified().unwrap()),
                    );
                } else {
                    let bytes = if m.is_file() {
                        fs::read(e.path()).unwrap()
                    } else {
                        Vec::new()
                    };
                    out.insert(
                        e.path(),
                        (bytes, m.permissions().mode(), m.modified().unwrap()),
                    );
                }
            }
        }
        out
    }

    /// `kvc export -o <root>/<name> --dir <cache> ARGS…`, which must succeed;
    /// the bundle's path.
    pub fn export_to(&self, name: &str, args: &[&str]) -> PathBuf {
        let path = self.root.path().join(name);
        let out = self
            .kvc()
            .arg("export")
            .arg("-o")
            .arg(&path)
            .arg("--dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.kvc().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kvc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `kvc verify --json PATH` (a directory or one file): its error findings
/// as `file: code` lines, empty when the path verifies cleanly.
pub fn verify_errors(path: &Path) -> Vec<String> {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"))
        .env_clear()
        .args(["verify", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "kvc verify could not run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut errors = Vec::new();
    for f in v["files"].as_array().unwrap() {
        for x in f["findings"].as_array().unwrap() {
            if x["severity"] == "error" {
                errors.push(format!("{}: {}", f["file"], x["code"]));
            }
        }
    }
    errors
}

// --- verify (dialects) ---
//
// Builders for the dialects of FORMAT.md §9 and the engines' payloads and
// trailers, byte by byte from FORMAT.md revision 2 (never with kvc's code).

/// "DSV4" as the first payload bytes.
pub const DSV4_MAGIC: u32 = 0x3456_5344;

/// The per-layer compression schedule of FORMAT.md §6: layers 0 and 1 are
/// uncompressed on V4 Flash (model 0) and 128:1 on V4 PRO (model 1); from
/// layer 2 on, even layers 4:1 (with an indexer), odd ones 128:1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Flash,
    Pro,
}

/// A DSV4 payload of any version and schedule; `n_comp` rows on every
/// compressed layer, `n_index` on every indexer layer.
pub fn dsv4_payload_of(
    version: u32,
    schedule: Schedule,
    tokens: u32,
    ctx: u32,
    l: Layout,
    n_comp: u32,
    n_index: u32,
) -> Vec<u8> {
    let ratio = |il: u32| -> u64 {
        match (il < 2, schedule) {
            (true, Schedule::Flash) => 0,
            (true, Schedule::Pro) => 128,
            (false, _) if il.is_multiple_of(2) => 4,
            (false, _) => 128,
        }
    };
    let raw_live = tokens.min(l.raw_window);
    let mut p = Vec::new();
    for v in [
        DSV4_MAGIC,
        version,
        ctx,
        256,
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
        p.extend_from_slice(&v.to_le_bytes());
    }
    for t in 0..tokens {
        p.extend_from_slice(&(t % l.vocab).to_le_bytes());
    }
    for i in 0..l.vocab {
        p.extend_from_slice(&(i as f32 * 0.25).to_le_bytes());
    }
    let comp = |il: u32| if ratio(il) > 0 { n_comp } else { 0 };
    let index = |il: u32| if ratio(il) == 4 { n_index } else { 0 };
    for il in 0..l.layers {
        p.extend_from_slice(&comp(il).to_le_bytes());
    }
    for il in 0..l.layers {
        p.extend_from_slice(&index(il).to_le_bytes());
    }
    let (hd, ihd) = (l.head_dim as u64, l.indexer_head_dim as u64);
    let mut floats: u64 = 0;
    for il in 0..l.layers {
        let r = ratio(il);
        let c: u64 = if r == 4 { 2 } else { 1 };
        floats += raw_live as u64 * hd;
        if r > 0 {
            floats += comp(il) as u64 * hd + 2 * c * hd * c * r;
        }
        if r == 4 {
            floats += index(il) as u64 * ihd + 2 * c * ihd * c * r;
        }
    }
    for i in 0..floats {
        p.extend_from_slice(&((i % 5) as f32).to_le_bytes());
    }
    p
}

/// A GLM-5.2 payload (model 2, mainline since 005afed): the DSV4 magic and
/// a version-2 header whose fields mean other things, then GLM's own body,
/// which is no DSV4 body (its size follows none of §6's rules).
pub fn glm_payload(tokens: u32, ctx: u32) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [
        DSV4_MAGIC, 2, ctx, 256, ctx, ctx, 512, tokens, 78, 256, 256, 154_880, tokens,
    ] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    // Far fewer bytes than 154880 logits: a DSV4 reading would call it
    // cut short.
    p.extend((0..3000u32).map(|i| (i * 7 % 251) as u8));
    p
}

/// The name ds4-agent gives a session with ext bit 3: SHA-1 of the title
/// up to its first NUL (the agent hashes `strlen(title)` bytes) followed by
/// `created` as u64 little-endian (FORMAT.md §2, §5b).
pub fn session_identity(title: &[u8], created: u64) -> String {
    let end = title.iter().position(|&b| b == 0).unwrap_or(title.len());
    let mut b = title[..end].to_vec();
    b.extend_from_slice(&created.to_le_bytes());
    sha1_hex(&b)
}

/// A session-title trailer (§5b): u32 length, the title, no magic.
pub fn title_trailer(title: &[u8]) -> Vec<u8> {
    let mut t = (title.len() as u32).to_le_bytes().to_vec();
    t.extend_from_slice(title);
    t
}

impl Ckpt {
    /// A ds4-agent session (reason 6) saved since bfe070a: ext bit 3, the
    /// title trailer after the payload, named by its identity.
    pub fn titled(mut self, title: &[u8]) -> Ckpt {
        self.reason = REASON_AGENT_SESSION;
        self.ext_flags |= 1 << 3;
        self.trailer = title_trailer(title);
        self.name = Some(format!("{}.kv", session_identity(title, self.created)));
        self
    }

    /// Stripped by the agent's `/strip`: no payload at all.
    pub fn stripped(mut self) -> Ckpt {
        self.payload.clear();
        self
    }

    /// A DSV4 payload of this version and schedule for the current tokens
    /// and ctx.
    pub fn dsv4(mut self, version: u32, schedule: Schedule) -> Ckpt {
        self.payload = dsv4_payload_of(version, schedule, self.tokens, self.ctx_size, SMALL, 3, 2);
        self
    }

    /// A hanzo-engine prefix-cache spill (D20, disk_kv_cache.rs): quant 0,
    /// reason evict, ext 0, ctx 0, model and bytes 20-23 zero, text = the
    /// token ids as little-endian u32, payload = version byte 1, a u64
    /// model fingerprint, then per-layer data.
    pub fn hanzo_spill(ids: &[u32]) -> Ckpt {
        let text: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
        let mut payload = vec![1u8];
        payload.extend_from_slice(&0x5eed_f00d_u64.to_le_bytes());
        payload.extend_from_slice(&2u32.to_le_bytes());
        payload.extend((0..40u8).map(|i| i.wrapping_mul(13)));
        Ckpt {
            quant_bits: 0,
            reason: REASON_EVICT,
            tokens: ids.len() as u32,
            ctx_size: 0,
            payload,
            ..Ckpt::new(text)
        }
    }
}

/// A D8 file (LZ4-compressed payload fork): header `version`, byte 20
/// `abi`, byte 21 = codec 1 (LZ4), byte 22 = log2(4096), the text at 52
/// hashing to the name, payload = `u64 uncompressed_total, u32
/// chunk_count`, then per chunk `u32 raw_len, u32 comp_len, bytes`.
pub fn d8_file(text: &[u8], version: u8, abi: u8) -> Ckpt {
    let mut payload = Vec::new();
    payload.extend_from_slice(&4096u64.to_le_bytes());
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&4096u32.to_le_bytes());
    payload.extend_from_slice(&5u32.to_le_bytes());
    payload.extend_from_slice(b"\x1f\x00\x01\x00\xff");
    let mut c = Ckpt::new(text.to_vec());
    c.version = version;
    c.payload_abi = abi;
    c.reserved = [1, 12, 0];
    c.payload = payload;
    c
}

/// A D13 file (the fork with a 72-byte header): version 2, ABI 2, then
/// u64 conv_id @48, u64 model_fp @56, u32 bucket @64, u8 level @68, u8
/// stale @69, two zero bytes, u32 text_len @72, the text @76; named by the
/// text's SHA-1. Returns the name and the bytes.
pub fn d13_file(text: &[u8]) -> (String, Vec<u8>) {
    let mut c = Ckpt::new(Vec::new());
    c.version = 2;
    c.payload_abi = 2;
    c.payload.clear();
    let payload = vec![0x42u8; 64];
    c.payload_bytes = Some(payload.len() as u64);
    let mut b = c.bytes()[..48].to_vec();
    b.extend_from_slice(&77u64.to_le_bytes());
    b.extend_from_slice(&0xfeed_u64.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes());
    b.push(1);
    b.push(0);
    b.extend_from_slice(&[0, 0]);
    assert_eq!(b.len(), 72);
    b.extend_from_slice(&(text.len() as u32).to_le_bytes());
    b.extend_from_slice(text);
    b.extend_from_slice(&payload);
    (format!("{}.kv", sha1_hex(text)), b)
}

/// A D14 file (tail-indexed growing file): version 2, ABI 3, the u64 at 40
/// = the file offset of a `TAIL` block. Its name is no hash of anything.
pub fn d14_file(magic: &[u8; 4]) -> Vec<u8> {
    let mut c = Ckpt::new(b"segment one".to_vec());
    c.version = 2;
    c.payload_abi = 3;
    c.payload = vec![0x33; 40];
    let tail_at = 52 + c.text.len() as u64 + c.payload.len() as u64;
    c.payload_bytes = Some(tail_at);
    let mut b = c.bytes();
    b.extend_from_slice(magic);
    b.extend_from_slice(&[0u8; 12]);
    b
}

// --- writes (sessions, dialects) ---

impl Ckpt {
    /// Bytes a fork or a newer engine owns, which kvc must carry through
    /// its writes untouched: model id 2 (GLM-5.2 in mainline), payload ABI
    /// 2 with bytes 21-23 set (D11's fingerprint), reason 7 (pulsar's
    /// sys-prefix, unknown to ds4) and an opaque payload.
    pub fn with_unowned_bytes(mut self) -> Ckpt {
        self.model_id = 2;
        self.payload_abi = 2;
        self.reserved = [0xAB, 0xCD, 0xEF];
        self.reason = 7;
        self.opaque_payload(300)
    }
}

/// A checkpoint file's bytes with hits (offset 12) and last_used (32)
/// replaced: what `--reset-stats` may change, and nothing else.
pub fn with_stats(bytes: &[u8], hits: u32, last_used: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[12..16].copy_from_slice(&hits.to_le_bytes());
    b[32..40].copy_from_slice(&last_used.to_le_bytes());
    b
}

// --- evict (population) ---

/// A hanzo-engine prefix-cache spill as `spill_prefix` writes it (FORMAT.md
/// §9, D20; engines.md §10): quant 0, reason evict, ctx 0, payload ABI 0,
/// text = the token ids as little-endian u32 (key = SHA-1 of those bytes),
/// payload = version byte 1, a u64 model fingerprint, a u32 layer count.
pub fn hanzo_spill(ids: &[u32], last_used: u64) -> Ckpt {
    let mut text = Vec::new();
    for id in ids {
        text.extend_from_slice(&id.to_le_bytes());
    }
    let mut payload = vec![1u8];
    payload.extend_from_slice(&0x5eed_f00d_cafe_beefu64.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    Ckpt {
        quant_bits: 0,
        reason: REASON_EVICT,
        tokens: ids.len() as u32,
        ctx_size: 0,
        payload_abi: 0,
        created: CREATED,
        last_used,
        payload,
        ..Ckpt::new(text)
    }
}

/// A checkpoint of the LZ4-compressed payload fork (FORMAT.md §9, D8) in
/// its version-1 form: payload ABI 2, byte 21 = codec 1 (LZ4), byte 22 =
/// log2(chunk) 12, payload = `u64 uncompressed_total, u32 chunk_count`,
/// then one chunk `u32 raw_len, u32 comp_len, bytes`. Its header passes
/// mainline ds4's reader.
pub fn lz4_v1(text: impl Into<Vec<u8>>) -> Ckpt {
    let mut payload = Vec::new();
    payload.extend_from_slice(&4096u64.to_le_bytes());
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&4096u32.to_le_bytes());
    payload.extend_from_slice(&5u32.to_le_bytes());
    payload.extend_from_slice(b"lz4!!");
    Ckpt {
        payload_abi: 2,
        reserved: [1, 12, 0],
        payload,
        ..Ckpt::new(text)
    }
}

impl TestEnv {
    /// Write `c` with a payload of `payload_len` bytes left as a hole: a file
    /// of that size that takes no disk (hanzo-engine never budgets below
    /// 64 MiB). Only the payload's length is in the header; nothing reads
    /// its bytes when headers are all a scan reads.
    pub fn add_sparse(&self, c: &Ckpt, payload_len: u64) -> PathBuf {
        let mut c = c.clone();
        c.payload = Vec::new();
        c.payload_bytes = Some(payload_len);
        let head = c.bytes();
        let p = self.add(&c);
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(head.len() as u64 + payload_len)
            .unwrap();
        p
    }

    /// A directory inside the cache.
    pub fn add_dir(&self, name: &str) -> PathBuf {
        let p = self.cache.join(name);
        fs::create_dir(&p).unwrap();
        p
    }

    /// A symbolic link inside the cache.
    pub fn add_symlink(&self, name: &str, target: &Path) -> PathBuf {
        let p = self.cache.join(name);
        std::os::unix::fs::symlink(target, &p).unwrap();
        p
    }

    /// The cache's entry names in `readdir` order, the order the engines'
    /// loops break ties by.
    pub fn readdir_names(&self) -> Vec<String> {
        fs::read_dir(&self.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

// --- match ---

impl Ckpt {
    /// Named `<stem>.kv` whatever its text says.
    pub fn named(mut self, stem: &str) -> Ckpt {
        self.name = Some(format!("{stem}.kv"));
        self
    }

    /// The ext flag byte (bit 1 responses-visible, 2 thinking-visible, 3
    /// session title).
    pub fn ext(mut self, bits: u8) -> Ckpt {
        self.ext_flags = bits;
        self
    }

    pub fn model(mut self, id: u8) -> Ckpt {
        self.model_id = id;
        self
    }

    pub fn quant(mut self, bits: u8) -> Ckpt {
        self.quant_bits = bits;
        self
    }
}

/// A mainline (D3) checkpoint of `text`: 600 tokens, ctx 32768, model 0,
/// quant 2 — past every default filter of ds4-server.
pub fn mainline(text: impl Into<Vec<u8>>) -> Ckpt {
    Ckpt::new(text).mainline()
}

/// The D8 chunk framing of FORMAT.md §9: `u64 uncompressed_total, u32
/// chunk_count`, then per chunk `u32 raw_len, u32 comp_len, bytes`.
pub fn lz4_framing(raw: u32, comp: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(raw as u64).to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&raw.to_le_bytes());
    p.extend_from_slice(&(comp.len() as u32).to_le_bytes());
    p.extend_from_slice(comp);
    p
}

/// The LZ4 fork's file (D8) in envelope version 1 with payload ABI 2:
/// byte 21 = codec 1, byte 22 = log2(4096). Its header passes mainline's
/// reader; its payload is not mainline's.
pub fn d8_v1(text: impl Into<Vec<u8>>) -> Ckpt {
    let mut c = Ckpt::new(text);
    c.payload_abi = 2;
    c.reserved = [1, 12, 0];
    c.payload = lz4_framing(4096, b"compressed");
    c
}

impl TestEnv {
    /// Write `prompt` beside the cache and run `kvc match --json --dir
    /// CACHE PROMPT ARGS…`: the JSON and the exit code (which must be 0,
    /// a hit, or 1, a miss).
    pub fn kvc_match(&self, prompt: &[u8], args: &[&str]) -> (serde_json::Value, i32) {
        let path = self.root.path().join("prompt.txt");
        fs::write(&path, prompt).unwrap();
        let out = self
            .kvc()
            .args(["match", "--json", "--dir"])
            .arg(&self.cache)
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 1,
            "kvc match exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        (v, code)
    }
}

/// The candidate of `kvc match --json` in file `file`.
pub fn match_candidate<'a>(v: &'a serde_json::Value, file: &str) -> &'a serde_json::Value {
    v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["file"] == file)
        .unwrap_or_else(|| panic!("no candidate {file} in {v:#}"))
}
// --- stats ---
//
// Builders for `kvc stats`, `kvc tree` and `kvc report`: a copy of a cache
// to run a real command on, a cache of every kind of entry, and
// ds4-server's kv-cache log lines built from its own format strings.

/// Set a file's modification time `by` into the past.
pub fn age_file(path: &Path, by: std::time::Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - by)
        .unwrap();
}

/// A ds4-server temp-file pid that surely is not running: above Linux's
/// PID_MAX_LIMIT (2^22), and not six digits (which may be a mkstemp name).
pub const DEAD_PID: u32 = 99_999_999;

impl TestEnv {
    /// A new environment whose cache holds a copy of this one's regular
    /// files (bytes, modes and modification times kept), for running a
    /// command that deletes and comparing.
    pub fn copy(&self) -> TestEnv {
        let env = TestEnv::new();
        for e in fs::read_dir(&self.cache).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            if !m.is_file() {
                continue;
            }
            let dst = env.cache.join(e.file_name());
            fs::copy(e.path(), &dst).unwrap();
            fs::set_permissions(&dst, m.permissions()).unwrap();
            fs::File::options()
                .write(true)
                .open(&dst)
                .unwrap()
                .set_modified(m.modified().unwrap())
                .unwrap();
        }
        env
    }

    /// Bytes of the cache's top-level entries, kvc's own `.kvc/` left out.
    pub fn cache_bytes(&self) -> u64 {
        fs::read_dir(&self.cache)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != ".kvc")
            .map(|e| fs::symlink_metadata(e.path()).unwrap().len())
            .sum()
    }

    /// Run `kvc ARGS`, which must exit 0; its standard output.
    pub fn stdout(&self, args: &[&str]) -> Vec<u8> {
        let out = self.kvc().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kvc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn cache_str(&self) -> String {
        self.cache.to_str().unwrap().to_string()
    }
}

/// What [`mixed_cache`] put where.
pub struct Mixed {
    /// Counted mainline checkpoints.
    pub counted: Vec<Ckpt>,
    /// Pre-ABI (D1) files mainline never loads.
    pub unloadable: Vec<Ckpt>,
    /// A `continued` waypoint and the longer checkpoint that supersedes it.
    pub waypoint: Ckpt,
    pub longer: Ckpt,
    /// A foreign (D8, LZ4) file name.
    pub foreign: String,
    /// Temp files: stale (dead pid, old), fresh (dead pid, new).
    pub stale_temp: PathBuf,
    pub fresh_temp: PathBuf,
}

/// A ds4 mainline cache with one of everything: counted checkpoints of
/// several reasons, hits and ages; unloadable pre-ABI files; a superseded
/// waypoint; an agent session and `sysprompt.kv`; a foreign LZ4 file; an
/// invalid file; stale and fresh temp files; a stray.
pub fn mixed_cache(env: &TestEnv) -> Mixed {
    let c = |text: &str, reason: u8| Ckpt::new(chat(text)).reason(reason).mainline();
    let counted = vec![
        c("cold one", REASON_COLD).hits(3, NOW - 600),
        c("evicted one", REASON_EVICT).hits(0, NOW - 3 * 86_400),
        c("shutdown one", REASON_SHUTDOWN)
            .tokens(2000, 32768)
            .hits(1, NOW - 10 * 86_400),
    ];
    let unloadable = vec![
        Ckpt::new(chat("old abi one")),
        Ckpt::new(chat("old abi two")).reason(REASON_CONTINUED),
    ];
    let waypoint = c("a growing chat", REASON_CONTINUED);
    let mut longer_text = waypoint.text.clone();
    longer_text.extend_from_slice(b" and the next turn<\xef\xbd\x9cUser\xef\xbd\x9c>more");
    let longer = Ckpt::new(longer_text)
        .reason(REASON_CONTINUED)
        .tokens(900, 32768)
        .mainline();
    for x in counted.iter().chain(&unloadable) {
        env.add(x);
    }
    env.add(&waypoint);
    env.add(&longer);
    let session = Ckpt::new(chat("agent chat"))
        .mainline()
        .titled(b"my session");
    env.add(&session);
    let mut sys = Ckpt::new(b"You are helpful.".to_vec())
        .reason(REASON_AGENT_SYSTEM)
        .mainline();
    sys.name = Some("sysprompt.kv".into());
    env.add(&sys);
    let lz4 = lz4_v1(chat("compressed"));
    let foreign = lz4.file_name();
    env.add(&lz4);
    env.add_raw(&format!("{}.kv", sha1_hex(b"cut short")), b"KVC\x01short");
    let key = Ckpt::new(chat("being saved")).key();
    let stale_temp = env.add_raw(&format!("{key}.kv.tmp.{DEAD_PID}"), &[1u8; 3000]);
    age_file(&stale_temp, std::time::Duration::from_secs(2 * 3600));
    let fresh_temp = env.add_raw(&format!("{key}.kv.tmp.{}", DEAD_PID - 1), &[3u8; 10]);
    env.add_raw("notes.txt", b"not a checkpoint");
    Mixed {
        counted,
        unloadable,
        waypoint,
        longer,
        foreign,
        stale_temp,
        fresh_temp,
    }
}

/// ds4-server's kv-cache log lines, each from its format string in ds4
/// mainline b030961 (ds4_kvstore.c, ds4_server.c), with ds4-server's
/// `%m%d %H:%M:%S ` prefix (`server_log`) when `stamp` is given.
pub mod ds4log {
    /// `0805 14:03:22 ` for a month, day and time.
    pub fn stamp(month: u32, day: u32, hms: &str) -> String {
        format!("{month:02}{day:02} {hms} ")
    }

    fn mib(bytes: u64) -> f64 {
        bytes as f64 / (1024.0 * 1024.0)
    }

    /// ds4_kvstore.c:1140.
    pub fn stored(tokens: u32, reason: &str, key: &str, bytes: u64, save_ms: f64) -> String {
        format!(
            "ds4-server: kv cache stored tokens={tokens} trimmed=32 reason={reason} key={key} size={:.2} MiB save={save_ms:.1} ms",
            mib(bytes)
        )
    }

    /// ds4_kvstore.c:1323; `consumed` is the form before 24fa85e.
    pub fn hit(tokens: u32, load_ms: f64, consumed: bool, path: &str) -> String {
        format!(
            "ds4-server: kv cache hit text tokens={tokens} text=31337 quant=2 key=token-text load={load_ms:.1} ms {}file={path}",
            if consumed { "consumed " } else { "" }
        )
    }

    /// The hit line of a Responses-API request (`text%s%s` = ` RESPPROTO`).
    pub fn hit_respproto(tokens: u32, path: &str) -> String {
        format!(
            "ds4-server: kv cache hit text RESPPROTO tokens={tokens} text=100 quant=4 key=responses-visible load=3.0 ms file={path}"
        )
    }

    /// ds4_kvstore.c:591.
    pub fn evicted(tokens: u32, hits: u32, bytes: u64, path: &str) -> String {
        format!(
            "ds4-server: kv cache evicted reason=disk-cache-full tokens={tokens} hits={hits} size={:.2} MiB file={path}",
            mib(bytes)
        )
    }

    /// ds4_kvstore.c:956, 976, 986, 1011, 1030, 1115: one per cause.
    pub fn skips() -> Vec<String> {
        vec![
            "ds4-server: kv cache skipped tokens=700 reason=cold because live checkpoint is at 650".into(),
            "ds4-server: kv cache skipped tokens=700 because rendered text is too large".into(),
            "ds4-server: kv cache skipped tokens=700 reason=continued because tool map size overflowed".into(),
            "ds4-server: kv cache skipped tokens=700 reason=evict because KV payload staging failed: No space left on device".into(),
            "ds4-server: kv cache skipped tokens=700 reason=cold because estimated file size 5000.00 MiB (5050.00 MiB with safety) exceeds budget 4096.00 MiB".into(),
            "ds4-server: kv cache skipped tokens=700 reason=cold because final file size 5000.00 MiB (5050.00 MiB with safety) exceeds budget 4096.00 MiB save=12.5 ms".into(),
        ]
    }

    /// ds4_kvstore.c:1307.
    pub fn load_failed(path: &str) -> String {
        format!("ds4-server: kv cache load failed {path}: cached text hash mismatch load=0.4 ms")
    }

    /// ds4_kvstore.c:1298.
    pub fn discarded_corrupt(path: &str) -> String {
        format!("ds4-server: kv cache discarded corrupt text-prefix payload RESPPROTO {path}")
    }

    /// ds4_server.c:9582.
    pub fn discarded_prefill(path: &str) -> String {
        format!("ds4-server: kv cache discarded reason=prefill-failed file={path}")
    }

    /// ds4_kvstore.c:1125 and 1061.
    pub fn store_failures(path: &str) -> Vec<String> {
        vec![
            "ds4-server: kv cache store failed (cold): No space left on device save=3.2 ms".into(),
            format!("ds4-server: kv cache failed to create {path}.tmp.77: Permission denied save=0.1 ms"),
        ]
    }

    /// ds4_kvstore.c:859.
    pub fn replaced(path: &str) -> String {
        format!("ds4-server: kv cache replaced incompatible file {path}")
    }

    /// ds4_kvstore.c:631: the line the engine logs when it opens its cache.
    pub fn opened(dir: &str, budget_mib: u64) -> String {
        format!(
            "ds4-server: KV disk cache {dir} (budget={budget_mib} MiB, cross-quant=accept, min=512, cold_max=30000, continued=8192, trim=32, align=2048, hit_half_life=21600s)"
        )
    }

    /// ds4_server.c:11216: the in-memory cache, not the disk's.
    pub fn live_miss() -> String {
        "ds4-server: live kv cache miss live=100 prompt=200 common=50 reason=diverged".into()
    }
}

/// `kvc` as a plain `std` command with a clean environment.
pub fn kvc_command(env: &TestEnv) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"));
    c.env_clear()
        .env("HOME", env.root.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(env.root.path());
    c
}
