//! kvc: read and manage KV-cache checkpoint directories of local LLM
//! inference engines (ds4-server, ds4-agent, ds4 forks, hanzo-engine).
//!
//! The byte-level reference is FORMAT.md; section numbers in comments refer
//! to it. This library never prints and never exits: it returns typed
//! results and [`Error`]s, and the `kvc` binary decides how to show them.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bundle;
pub mod code;
pub mod error;
pub mod evict;
pub mod finding;
pub mod format;
pub mod fsutil;
pub mod gc;
pub mod policy;
pub mod prefix;
pub mod resolve;
pub mod rm;
pub mod scan;
pub mod search;
pub mod session;
pub mod size;
pub mod sys;
pub mod text;
pub mod trailer;
pub mod verify;

pub use error::{Error, Result};
pub use format::checkpoint::{CheckpointFile, Defect, Key};
pub use format::{ExtFlags, Header, Reason};
pub use policy::Policy;
pub use scan::{scan_dir, Checkpoint, Scan, ScanOptions};
