//! kvc: read and manage KV-cache checkpoint directories of local LLM
//! inference engines (ds4-server, ds4-agent, ds4 forks, hanzo-engine).
//!
//! The byte-level reference is FORMAT.md; section numbers in comments refer
//! to it. This library never prints and never exits: it returns typed
//! results and [`Error`]s, and the `kvc` binary decides how to show them.
//!
//! # Module map
//!
//! What is on disk, read without judging:
//! - [`format`](mod@format): the 48-byte header (one layout table, named offsets), the
//!   checkpoint reader, the trailers (tool-id maps walked entry by entry,
//!   session titles), the DSV4 payload, and the dialects of FORMAT.md §9.
//!
//! Reading a directory (never writes):
//! - [`scan`]: sorting a directory into checkpoints, invalid and foreign
//!   files, temp files and strays; texts streamed, never held.
//! - [`resolve`]: the one resolver of KEY arguments.
//! - [`policy`] (and `prefix`): the engines' eviction orders and the
//!   superseded test, streaming prefix hashes.
//! - [`verify`]: every check of a file, each a [`finding::Finding`].
//! - [`matching`]: ds4 mainline's lookup for a prompt, explained offline.
//! - [`stats`], [`tree`], [`report`], [`enginelog`]: what a cache holds
//!   and is worth, its prefix forest, an HTML report, and ds4-server's
//!   kv-cache log lines.
//! - [`search`]: which of many strings occur in a text, in one pass.
//! - [`text`]: titles and making untrusted bytes safe to show.
//!
//! Writing, always as a read-only `plan` (the `--dry-run`) then
//! `apply(&mut Session, plan, hooks)` returning typed outcomes:
//! - [`session`]: the one write path: locks (canonical, ordered, visible
//!   while waiting, `--wait`), the journal, the clock, identity-checked
//!   unlinks, and `verify --quarantine` ([`session::quarantine`]).
//! - [`evict`], [`gc`], [`rm`]: what each removes, and why; [`guard`]:
//!   how much one run may remove (`--max-delete`).
//! - [`trailer`]: rewriting tool-id maps crash-safely.
//! - [`bundle`]: export (read-only) and install, over a tar grammar.
//! - [`remote`]: push, pull and trim checkpoints on S3-compatible object
//!   storage (object_store; its async runtime stays inside the module).
//!
//! Shared:
//! - [`code`]: every stable code (findings, invalid reasons, outcomes),
//!   with its severity and meaning; the docs' tables come from it.
//! - [`sys`]: every system call beyond `std`, relative to directory
//!   descriptors, through `rustix`; [`fsutil`]: temp-then-rename writes.
//! - [`size`]: sizes with units; `error`: [`Error`].

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bundle;
pub mod code;
pub mod enginelog;
mod error;
pub mod evict;
pub mod finding;
pub mod format;
pub mod fsutil;
pub mod gc;
pub mod guard;
pub mod matching;
pub mod policy;
pub(crate) mod prefix;
pub mod remote;
pub mod report;
pub mod resolve;
pub mod rm;
pub mod scan;
pub mod search;
pub mod session;
pub mod size;
pub mod stats;
pub mod sys;
pub mod text;
pub mod trailer;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use format::checkpoint::{CheckpointFile, Defect, HexKey, Key};
pub use format::{ExtFlags, Header, Reason};
pub use policy::Policy;
pub use scan::{scan_dir, Checkpoint, Scan, ScanOptions};
