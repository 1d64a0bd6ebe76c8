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

/// `kvc` as a plain `std` command with a clean environment.
pub fn kvc_command(env: &TestEnv) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"));
    c.env_clear()
        .env("HOME", env.root.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(env.root.path());
    c
}
